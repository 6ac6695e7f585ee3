use async_trait::async_trait;

use super::{EmailAddress, Password, PasswordHash, PasswordHasher, PersonName, Role, UserId};
use crate::error::StoreError;

/// A user about to be stored, built only from validated values.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: UserId,
    pub email: EmailAddress,
    pub first_name: PersonName,
    pub last_name: PersonName,
    pub role: Role,
    pub password_hash: PasswordHash,
}

/// Why a user could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    /// Another user already holds this unique value (`email` or `national_id`).
    #[error("a user with this {0} already exists")]
    Duplicate(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Persists users. Error contract: a unique violation is [`CreateUserError::Duplicate`] naming
/// the field; connection problems are [`StoreError::Unavailable`].
#[async_trait]
pub trait UserStore: Send + Sync {
    async fn insert(&self, user: NewUser) -> Result<(), CreateUserError>;

    /// The user with this id, unless it does not exist or was erased.
    async fn find(&self, id: UserId) -> Result<Option<super::User>, StoreError>;
}

/// What a caller asks for when creating a user.
#[derive(Debug, Clone)]
pub struct CreateUser {
    pub email: EmailAddress,
    pub first_name: PersonName,
    pub last_name: PersonName,
    pub role: Role,
    pub password: Password,
}

/// Creates a user with a freshly hashed password and returns its id.
pub async fn create_user(
    store: &dyn UserStore,
    hasher: &dyn PasswordHasher,
    request: CreateUser,
) -> Result<UserId, CreateUserError> {
    let password_hash = hasher.hash(request.password).await?;
    let user = NewUser {
        id: UserId::generate(),
        email: request.email,
        first_name: request.first_name,
        last_name: request.last_name,
        role: request.role,
        password_hash,
    };
    let id = user.id;
    store.insert(user).await?;
    Ok(id)
}
