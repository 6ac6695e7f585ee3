//! Password hashing with argon2id (OWASP parameters: 19 MiB, 2 passes, 1 lane), run on the
//! blocking pool so that a burst of logins never stalls the async workers.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHasher as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use async_trait::async_trait;
use gad_domain::error::StoreError;
use gad_domain::users::{Password, PasswordHash, PasswordHasher};

#[derive(Debug, Clone)]
pub struct Argon2Hasher {
    params: Params,
}

impl Argon2Hasher {
    pub fn owasp() -> Self {
        Self { params: owasp_params() }
    }
}

#[expect(clippy::expect_used, reason = "constant parameters that argon2 accepts")]
fn owasp_params() -> Params {
    Params::new(19 * 1024, 2, 1, None).expect("OWASP argon2id parameters are valid")
}

#[async_trait]
impl PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: Password) -> Result<PasswordHash, StoreError> {
        let params = self.params.clone();
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                .hash_password(password.expose().as_bytes(), &salt)
                .map(|hash| PasswordHash::new(hash.to_string()))
                .map_err(|error| StoreError::Unexpected(error.to_string().into()))
        })
        .await
        .map_err(StoreError::unexpected)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordVerifier;

    #[tokio::test]
    async fn hashes_with_argon2id_and_verifies() {
        let password = Password::parse("correct horse battery staple".into()).expect("valid");
        let hash = Argon2Hasher::owasp().hash(password.clone()).await.expect("hashed");
        assert!(hash.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        let parsed = argon2::PasswordHash::new(hash.as_str()).expect("PHC string");
        assert!(Argon2::default().verify_password(password.expose().as_bytes(), &parsed).is_ok());
        assert!(Argon2::default().verify_password(b"wrong password!!", &parsed).is_err());
    }
}
