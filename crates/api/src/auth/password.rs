//! Password hashing with argon2id. Hashing is slow on purpose, so it runs on
//! the blocking pool, never on the request's executor thread.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::domain::Password;
use crate::error::{Error, Result};

/// The cost of hashing a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashCost {
    /// OWASP's argon2id recommendation: 19 MiB, 2 passes, 1 lane.
    Standard,
    /// Cheap parameters for tests, where hundreds of hashes run per suite.
    /// Never use in production.
    InsecureFastForTests,
}

/// Hashes and verifies passwords.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    params: Params,
    /// A hash of a random password, verified against when an email is unknown
    /// so that an unknown email costs the same time as a wrong password.
    dummy_hash: String,
}

impl PasswordHasher {
    pub fn new(cost: HashCost) -> Result<PasswordHasher> {
        let params = match cost {
            HashCost::Standard => Params::new(19 * 1024, 2, 1, None),
            HashCost::InsecureFastForTests => Params::new(256, 1, 1, None),
        }
        .map_err(|err| Error::invariant(format!("argon2 parameters: {err}")))?;
        let mut hasher = PasswordHasher {
            params,
            dummy_hash: String::new(),
        };
        let dummy = uuid::Uuid::new_v4().to_string();
        hasher.dummy_hash = hasher.hash_now(&dummy)?;
        Ok(hasher)
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    fn hash_now(&self, clear: &str) -> Result<String> {
        let salt = SaltString::generate(&mut OsRng);
        self.argon2()
            .hash_password(clear.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|err| Error::invariant(format!("hashing a password: {err}")))
    }

    /// The PHC string of a new password.
    pub async fn hash(&self, password: &Password) -> Result<String> {
        let hasher = self.clone();
        let clear = password.expose().to_owned();
        tokio::task::spawn_blocking(move || hasher.hash_now(&clear))
            .await
            .map_err(Error::internal)?
    }

    /// Whether `password` matches `stored`. With no stored hash (unknown
    /// email, or no password set yet) a dummy hash is verified instead and
    /// the answer is false, so that every "no" takes about the same time.
    pub async fn verify(&self, password: &Password, stored: Option<&str>) -> Result<bool> {
        let hasher = self.clone();
        let clear = password.expose().to_owned();
        let (hash, real) = match stored {
            Some(hash) => (hash.to_owned(), true),
            None => (self.dummy_hash.clone(), false),
        };
        tokio::task::spawn_blocking(move || {
            let parsed = match PasswordHash::new(&hash) {
                Ok(parsed) => parsed,
                Err(_) => {
                    // A stored hash we cannot read: verify the dummy so the
                    // timing stays the same, and refuse.
                    tracing::warn!("a stored password hash does not parse");
                    let dummy = PasswordHash::new(&hasher.dummy_hash).ok();
                    if let Some(dummy) = dummy {
                        let _ = hasher.argon2().verify_password(clear.as_bytes(), &dummy);
                    }
                    return false;
                }
            };
            // The hash's own parameters apply (argon2 reads them from the
            // PHC string), so older hashes keep verifying after a change.
            let matches = hasher
                .argon2()
                .verify_password(clear.as_bytes(), &parsed)
                .is_ok();
            matches && real
        })
        .await
        .map_err(Error::internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hashed_password_verifies_and_a_wrong_one_does_not() {
        let hasher = PasswordHasher::new(HashCost::InsecureFastForTests).unwrap();
        let password = Password::parse_new("correct horse battery").unwrap();
        let hash = hasher.hash(&password).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(hasher.verify(&password, Some(&hash)).await.unwrap());
        let wrong = Password::parse_presented("wrong horse battery").unwrap();
        assert!(!hasher.verify(&wrong, Some(&hash)).await.unwrap());
        assert!(!hasher.verify(&password, None).await.unwrap());
    }
}
