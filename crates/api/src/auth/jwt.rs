//! Access tokens: HS256 JSON Web Tokens, signed with `JWT_SECRET`. A small
//! implementation of the one algorithm we use, so that no token can choose
//! another (`alg: none` and friends are refused by construction).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::domain::{Role, UserId};

type HmacSha256 = Hmac<Sha256>;

const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// What an access token says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id.
    pub sub: UserId,
    /// The user's role when the token was issued.
    pub role: Role,
    /// The user's time zone when the token was issued.
    pub tz: String,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
}

/// Signs and checks access tokens.
#[derive(Clone)]
pub struct TokenSigner {
    key: Vec<u8>,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner(***)")
    }
}

impl TokenSigner {
    pub fn new(key: &[u8]) -> TokenSigner {
        TokenSigner { key: key.to_vec() }
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length, so this cannot fail.
        match HmacSha256::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        }
    }

    /// A signed token carrying `claims`.
    pub fn sign(&self, claims: &Claims) -> String {
        let header = URL_SAFE_NO_PAD.encode(HEADER);
        // Serialising a struct of plain fields cannot fail.
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
        let signing_input = format!("{header}.{payload}");
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{signature}")
    }

    /// The claims of a token that is ours, well-formed and not expired.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Option<Claims> {
        let mut parts = token.split('.');
        let (header, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let header_json: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
        if header_json.get("alg")?.as_str()? != "HS256" {
            return None;
        }
        let mut mac = self.mac();
        mac.update(header.as_bytes());
        mac.update(b".");
        mac.update(payload.as_bytes());
        mac.verify_slice(&URL_SAFE_NO_PAD.decode(signature).ok()?)
            .ok()?;
        let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        (claims.exp > now.timestamp()).then_some(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: UserId(Uuid::new_v4()),
            role: Role::User,
            tz: "Europe/Amsterdam".into(),
            iat: 0,
            exp,
        }
    }

    #[test]
    fn a_signed_token_verifies_until_it_expires() {
        let signer = TokenSigner::new(b"0123456789abcdef0123456789abcdef");
        let now = Utc::now();
        let token = signer.sign(&claims(now.timestamp() + 60));
        assert!(signer.verify(&token, now).is_some());
        assert!(signer
            .verify(&token, now + chrono::Duration::seconds(61))
            .is_none());
    }

    #[test]
    fn a_token_signed_with_another_key_or_altered_is_refused() {
        let signer = TokenSigner::new(b"0123456789abcdef0123456789abcdef");
        let other = TokenSigner::new(b"fedcba9876543210fedcba9876543210");
        let now = Utc::now();
        let token = other.sign(&claims(now.timestamp() + 60));
        assert!(signer.verify(&token, now).is_none());
        let mine = signer.sign(&claims(now.timestamp() + 60));
        let mut tampered = mine.clone();
        tampered.insert(mine.find('.').unwrap() + 2, 'x');
        assert!(signer.verify(&tampered, now).is_none());
    }

    #[test]
    fn an_unsigned_token_is_refused() {
        let signer = TokenSigner::new(b"0123456789abcdef0123456789abcdef");
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(i64::MAX)).unwrap());
        assert!(signer
            .verify(&format!("{header}.{payload}."), Utc::now())
            .is_none());
    }
}
