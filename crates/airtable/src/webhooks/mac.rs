//! The `X-Airtable-Content-MAC` of webhook notifications.
//!
//! Airtable signs each notification ping with HMAC-SHA256 over the raw
//! request body, keyed by the base64-decoded `macSecretBase64` it returned
//! when the webhook was created, and sends `hmac-sha256=` followed by the
//! lowercase hex digest.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::{Error, Result};

type HmacSha256 = Hmac<Sha256>;

/// The header value's prefix.
const PREFIX: &str = "hmac-sha256=";

/// Whether `header_value` is the right `X-Airtable-Content-MAC` for
/// `raw_body` (the exact bytes received, before any parsing).
///
/// The digest comparison runs in constant time. A malformed secret or
/// header is simply a mismatch.
///
/// ```
/// use airsync_airtable::{content_mac, verify_content_mac};
///
/// let secret = "c2VjcmV0IGtleSBieXRlcw=="; // base64 of the key bytes
/// let body = br#"{"base":{"id":"appA"},"webhook":{"id":"achA"},"timestamp":"2024-05-01T00:00:00.000Z"}"#;
/// let header = content_mac(secret, body).unwrap();
/// assert!(verify_content_mac(secret, body, &header));
/// assert!(!verify_content_mac(secret, b"tampered", &header));
/// ```
pub fn verify_content_mac(mac_secret_base64: &str, raw_body: &[u8], header_value: &str) -> bool {
    let Ok(key) = BASE64.decode(mac_secret_base64.trim()) else {
        return false;
    };
    let Some(hex) = header_value.trim().strip_prefix(PREFIX) else {
        return false;
    };
    let Some(given) = decode_hex(hex) else {
        return false;
    };
    let Ok(mut mac) = HmacSha256::new_from_slice(&key) else {
        return false;
    };
    mac.update(raw_body);
    // `verify_slice` compares with `subtle`'s constant-time equality.
    mac.verify_slice(&given).is_ok()
}

/// The `X-Airtable-Content-MAC` value Airtable would send for `raw_body`;
/// for tests and tools that play Airtable's part.
pub fn content_mac(mac_secret_base64: &str, raw_body: &[u8]) -> Result<String> {
    let key = BASE64
        .decode(mac_secret_base64.trim())
        .map_err(|e| Error::InvalidInput(format!("the MAC secret is not base64: {e}")))?;
    let mut mac = HmacSha256::new_from_slice(&key)
        .map_err(|e| Error::InvalidInput(format!("the MAC secret is unusable: {e}")))?;
    mac.update(raw_body);
    let digest = mac.finalize().into_bytes();
    let mut header = String::with_capacity(PREFIX.len() + 64);
    header.push_str(PREFIX);
    for byte in digest {
        header.push(char::from(HEX[usize::from(byte >> 4)]));
        header.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    Ok(header)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Decodes a 64-digit hex digest; `None` for any other length or digit.
fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    bytes
        .chunks(2)
        .map(|pair| {
            let high = char::from(pair[0]).to_digit(16)?;
            let low = char::from(pair[1]).to_digit(16)?;
            u8::try_from(high * 16 + low).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "c2VjcmV0IGtleSBieXRlcw==";

    #[test]
    fn the_mac_matches_an_independently_computed_hmac() {
        // printf hello | openssl dgst -sha256 -hmac "secret key bytes"
        let expected = "hmac-sha256=\
            5e1cc14aca2d1cb569c4329c9e16d9cbd2ce6f41284192115bdf78f7d0f1aaab";
        assert_eq!(
            content_mac(SECRET, b"hello").ok().as_deref(),
            Some(expected)
        );
        assert!(verify_content_mac(SECRET, b"hello", expected));
    }

    #[test]
    fn a_wrong_body_secret_prefix_or_digest_is_refused() {
        let header = content_mac(SECRET, b"body").unwrap_or_default();
        assert!(verify_content_mac(SECRET, b"body", &header));
        assert!(!verify_content_mac(SECRET, b"body ", &header));
        assert!(!verify_content_mac("b3RoZXI=", b"body", &header));
        let typo = header.replace("hmac-sha256=", "hmac-sha256-");
        assert!(!verify_content_mac(SECRET, b"body", &typo));
        assert!(!verify_content_mac(SECRET, b"body", "hmac-sha256=abc"));
        assert!(!verify_content_mac("not base64!", b"body", &header));
        let mut flipped = header.clone();
        let last = if flipped.ends_with('0') { '1' } else { '0' };
        flipped.pop();
        flipped.push(last);
        assert!(!verify_content_mac(SECRET, b"body", &flipped));
    }

    #[test]
    fn the_hex_digest_is_lowercase() {
        let header = content_mac(SECRET, b"x").unwrap_or_default();
        let digest = header.trim_start_matches(PREFIX);
        assert!(digest
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase()));
    }
}
