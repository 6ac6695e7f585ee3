//! Password hashing with argon2id (OWASP parameters: 19 MiB, 2 passes, 1 lane), run on the
//! blocking pool so that a burst of logins never stalls the async workers.
//!
//! Each check holds 19 MiB while it runs, so the number running at once is bounded (one per
//! core: the work is CPU-bound, more would only hold more memory) and so is the queue behind
//! them. A check beyond the queue is refused at once as `Unavailable` (503 with `Retry-After`)
//! instead of waiting: an unauthenticated flood of logins can neither exhaust memory nor hold
//! requests open.

use argon2::password_hash::rand_core::OsRng;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use argon2::PasswordVerifier;
use argon2::password_hash::{PasswordHasher as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use async_trait::async_trait;
use gad_domain::error::StoreError;
use gad_domain::users::{Password, PasswordCheck, PasswordHash, PasswordHasher};
use tokio::sync::Semaphore;

/// Checks that may wait behind each running one before further ones are refused.
const QUEUED_PER_RUNNING: usize = 8;

#[derive(Debug, Clone)]
pub struct Argon2Hasher {
    params: Params,
    /// Verified against when the account does not exist, so that both cases cost the same.
    dummy: Arc<str>,
    admission: Admission,
}

impl Argon2Hasher {
    /// OWASP parameters; as many checks run at once as there are cores.
    pub fn owasp() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Self::with_limits(cores, cores * QUEUED_PER_RUNNING)
    }

    /// OWASP parameters; `running` checks at once and `queued` more waiting.
    pub fn with_limits(running: usize, queued: usize) -> Self {
        let params = owasp_params();
        let salt = SaltString::generate(&mut OsRng);
        let dummy = argon2id(&params)
            .hash_password(b"no account has this password", &salt)
            .map_or_else(|_| Arc::from(""), |hash| Arc::from(hash.to_string()));
        Self { params, dummy, admission: Admission::new(running, queued) }
    }
}

/// Admission to the hashing threads: `running` at once, `queued` more waiting, the rest refused.
#[derive(Debug, Clone)]
struct Admission {
    running: Arc<Semaphore>,
    /// Admitted checks, running or waiting.
    admitted: Arc<AtomicUsize>,
    capacity: usize,
}

/// A place among the admitted checks, given back when dropped.
#[derive(Debug)]
struct Admitted(Arc<AtomicUsize>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Admission {
    fn new(running: usize, queued: usize) -> Self {
        let running = running.max(1);
        Self {
            running: Arc::new(Semaphore::new(running)),
            admitted: Arc::new(AtomicUsize::new(0)),
            capacity: running + queued,
        }
    }

    /// Runs `work` on the blocking pool once a place is free. The place and the permit travel
    /// with the work, so a client that gives up cannot free them while the hash still runs.
    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, StoreError> {
        let admitted = self.admit()?;
        let permit = Arc::clone(&self.running).acquire_owned().await.map_err(StoreError::unexpected)?;
        tokio::task::spawn_blocking(move || {
            let _held = (admitted, permit);
            work()
        })
        .await
        .map_err(StoreError::unexpected)
    }

    fn admit(&self) -> Result<Admitted, StoreError> {
        let admitted = self.admitted.fetch_add(1, Ordering::AcqRel);
        let place = Admitted(Arc::clone(&self.admitted));
        if admitted >= self.capacity {
            metrics::counter!("password_checks_refused_total").increment(1);
            return Err(StoreError::Unavailable("too many password checks at once".into()));
        }
        Ok(place)
    }
}

fn argon2id(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

/// Whether `stored` matches `candidate`; imported bcrypt hashes (`$2a$`, `$2b$`, `$2y$`) too.
fn matches(stored: &str, candidate: &str) -> bool {
    if stored.starts_with("$2") {
        return bcrypt::verify(candidate, stored).unwrap_or(false);
    }
    argon2::PasswordHash::new(stored)
        .is_ok_and(|parsed| Argon2::default().verify_password(candidate.as_bytes(), &parsed).is_ok())
}

/// A hash that is not argon2id with today's parameters is replaced at the next login.
fn is_outdated(stored: &str, params: &Params) -> bool {
    let Ok(parsed) = argon2::PasswordHash::new(stored) else {
        return true;
    };
    parsed.algorithm != Algorithm::Argon2id.ident()
        || Params::try_from(&parsed)
            .map_or(true, |current| current.m_cost() < params.m_cost() || current.t_cost() < params.t_cost())
}

#[expect(clippy::expect_used, reason = "constant parameters that argon2 accepts")]
fn owasp_params() -> Params {
    Params::new(19 * 1024, 2, 1, None).expect("OWASP argon2id parameters are valid")
}

fn hash_with(params: &Params, password: &str) -> Result<PasswordHash, StoreError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2id(params)
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| PasswordHash::new(hash.to_string()))
        .map_err(|error| StoreError::Unexpected(error.to_string().into()))
}

#[async_trait]
impl PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: Password) -> Result<PasswordHash, StoreError> {
        let params = self.params.clone();
        self.admission.run(move || hash_with(&params, password.expose())).await?
    }

    async fn verify(&self, stored: Option<PasswordHash>, candidate: String) -> Result<PasswordCheck, StoreError> {
        let params = self.params.clone();
        let dummy = Arc::clone(&self.dummy);
        self.admission
            .run(move || {
                let Some(stored) = stored else {
                    matches(&dummy, &candidate);
                    return Ok(PasswordCheck::Invalid);
                };
                if !matches(stored.as_str(), &candidate) {
                    return Ok(PasswordCheck::Invalid);
                }
                let rehash =
                    if is_outdated(stored.as_str(), &params) { Some(hash_with(&params, &candidate)?) } else { None };
                Ok(PasswordCheck::Valid { rehash })
            })
            .await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_with_argon2id_and_verifies() {
        let password = Password::parse("correct horse battery staple".into()).expect("valid");
        let hash = Argon2Hasher::owasp().hash(password.clone()).await.expect("hashed");
        assert!(hash.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        let parsed = argon2::PasswordHash::new(hash.as_str()).expect("PHC string");
        assert!(Argon2::default().verify_password(password.expose().as_bytes(), &parsed).is_ok());
        assert!(Argon2::default().verify_password(b"wrong password!!", &parsed).is_err());
    }

    #[tokio::test]
    async fn current_hashes_verify_without_rehash_and_wrong_passwords_fail() {
        let hasher = Argon2Hasher::owasp();
        let password = Password::parse("correct horse battery staple".into()).expect("valid");
        let hash = hasher.hash(password.clone()).await.expect("hashed");
        let check = hasher.verify(Some(hash.clone()), password.expose().to_owned()).await.expect("verified");
        assert_eq!(check, PasswordCheck::Valid { rehash: None });
        let wrong = hasher.verify(Some(hash), "wrong horse battery staple".into()).await.expect("verified");
        assert_eq!(wrong, PasswordCheck::Invalid);
        let unknown = hasher.verify(None, "no account has this password".into()).await.expect("verified");
        assert_eq!(unknown, PasswordCheck::Invalid, "the dummy hash never lets anyone in");
    }

    #[tokio::test]
    async fn imported_bcrypt_hashes_verify_and_are_rehashed_to_argon2id() {
        let imported = bcrypt::hash("legacy password 2019", 4).expect("bcrypt");
        assert!(imported.starts_with("$2b$04$"));
        let hasher = Argon2Hasher::owasp();
        let check = hasher.verify(Some(PasswordHash::new(imported.clone())), "legacy password 2019".into()).await;
        let Ok(PasswordCheck::Valid { rehash: Some(rehash) }) = check else { panic!("expected a rehash: {check:?}") };
        assert!(rehash.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        let again = hasher.verify(Some(rehash), "legacy password 2019".into()).await.expect("verified");
        assert_eq!(again, PasswordCheck::Valid { rehash: None });
        let wrong = hasher.verify(Some(PasswordHash::new(imported)), "not it".into()).await.expect("verified");
        assert_eq!(wrong, PasswordCheck::Invalid);
    }

    #[tokio::test]
    async fn checks_beyond_the_running_and_queued_ones_are_refused_at_once() {
        let hasher = Argon2Hasher::with_limits(1, 1);
        let check = || hasher.verify(None, "no account has this password".into());
        // Polled in order: the first runs, the second waits, the third finds no place.
        let (first, second, third) = tokio::join!(check(), check(), check());
        assert_eq!(first.expect("ran"), PasswordCheck::Invalid);
        assert_eq!(second.expect("waited, then ran"), PasswordCheck::Invalid);
        assert!(matches!(third, Err(StoreError::Unavailable(_))), "{third:?}");
        let later = check().await;
        assert_eq!(later.expect("places are given back"), PasswordCheck::Invalid);
    }

    #[tokio::test]
    async fn weaker_argon2_parameters_are_upgraded() {
        let weak = Params::new(4096, 1, 1, None).expect("params");
        let stored = hash_with(&weak, "an old but valid password").expect("hashed");
        let check = Argon2Hasher::owasp().verify(Some(stored), "an old but valid password".into()).await;
        assert!(matches!(check, Ok(PasswordCheck::Valid { rehash: Some(_) })), "{check:?}");
    }
}
