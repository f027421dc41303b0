//! Access tokens: HS256 JSON Web Tokens, signed with `JWT_SECRET`, made
//! and read by `jsonwebtoken`. The algorithm is pinned: a token that names
//! another (`alg: none`, RS256 with the secret as a public key, ...) is
//! refused before its signature is looked at. Time is checked here, on the
//! API's clock, with [`LEEWAY_SECS`] for clocks of several processes that
//! differ a little.

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::domain::{Role, UserId};

/// How far a token's expiry and not-before may be off the API's clock.
pub const LEEWAY_SECS: i64 = 5;

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
    /// Not before, seconds since the epoch. The API issues none (a token is
    /// good from its issue); one that is present is checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
}

/// Signs and checks access tokens.
#[derive(Clone)]
pub struct TokenSigner {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner(***)")
    }
}

impl TokenSigner {
    /// A signer with `key`; `jsonwebtoken` refuses an empty one.
    pub fn new(key: &[u8]) -> Result<TokenSigner, String> {
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry and not-before are checked against the API's clock below
        // (tests move it); the claims type makes `exp` required.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        Ok(TokenSigner {
            encoding: EncodingKey::from_secret(key).map_err(|err| err.to_string())?,
            decoding: DecodingKey::from_secret(key).map_err(|err| err.to_string())?,
            validation,
        })
    }

    /// A signed token carrying `claims`.
    pub fn sign(&self, claims: &Claims) -> String {
        // HS256 over a struct of plain fields cannot fail.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .unwrap_or_default()
    }

    /// The claims of a token that is ours, well-formed, not expired and
    /// not before its time, at `now`.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Option<Claims> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()?
            .claims;
        let now = now.timestamp();
        let current = claims.exp.saturating_add(LEEWAY_SECS) > now
            && claims
                .nbf
                .is_none_or(|nbf| nbf <= now.saturating_add(LEEWAY_SECS));
        current.then_some(claims)
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
            nbf: None,
            exp,
        }
    }

    #[test]
    fn a_signed_token_verifies_until_it_expires() {
        let signer = TokenSigner::new(b"0123456789abcdef0123456789abcdef").unwrap();
        let now = Utc::now();
        let token = signer.sign(&claims(now.timestamp() + 60));
        assert!(signer.verify(&token, now).is_some());
        let within_leeway = now + chrono::Duration::seconds(60 + LEEWAY_SECS - 1);
        assert!(signer.verify(&token, within_leeway).is_some());
        assert!(signer
            .verify(&token, now + chrono::Duration::seconds(60 + LEEWAY_SECS))
            .is_none());
    }

    #[test]
    fn a_token_is_refused_before_its_not_before_and_one_without_it_passes() {
        let signer = TokenSigner::new(b"0123456789abcdef0123456789abcdef").unwrap();
        let now = Utc::now();
        let mut early = claims(now.timestamp() + 600);
        early.nbf = Some(now.timestamp() + 60);
        let token = signer.sign(&early);
        assert!(signer.verify(&token, now).is_none());
        assert!(signer
            .verify(&token, now + chrono::Duration::seconds(60))
            .is_some());
        early.nbf = Some(now.timestamp() + LEEWAY_SECS);
        assert!(
            signer.verify(&signer.sign(&early), now).is_some(),
            "within the leeway"
        );
    }

    #[test]
    fn a_token_signed_by_the_hand_written_signer_still_verifies() {
        // Made by the code before `jsonwebtoken` (header, claims without
        // `nbf`, HMAC-SHA256 over them): a rolling deploy's old tokens.
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine;
        use hmac::{Hmac, Mac};
        let key = b"0123456789abcdef0123456789abcdef";
        let now = Utc::now();
        let old = claims(now.timestamp() + 60);
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&old).unwrap());
        let input = format!("{header}.{payload}");
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
        mac.update(input.as_bytes());
        let token = format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        );
        assert_eq!(
            TokenSigner::new(key).unwrap().verify(&token, now),
            Some(old)
        );
    }

    #[test]
    fn a_token_signed_with_another_key_or_altered_is_refused() {
        let signer = TokenSigner::new(b"0123456789abcdef0123456789abcdef").unwrap();
        let other = TokenSigner::new(b"fedcba9876543210fedcba9876543210").unwrap();
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
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine;
        let signer = TokenSigner::new(b"0123456789abcdef0123456789abcdef").unwrap();
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(i64::MAX)).unwrap());
        assert!(signer
            .verify(&format!("{header}.{payload}."), Utc::now())
            .is_none());
    }
}
