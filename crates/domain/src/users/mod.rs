//! Users, their roles and the rules about who they are.

mod create;
mod email;
mod login;
mod name;
mod national_id;
mod password;
pub mod policy;
mod role;
mod session;
mod user;

pub use create::{
    CreateUser, CreateUserError, ListUsersError, NewUser, PasswordChange, ProfileChanges, ReadUserError,
    UpdateUserError, UserChanges, UserQuery, UserStore, UserUpdate, create_user, list_users, read_user, update_user,
};
pub use email::EmailAddress;
pub use login::{LOCKOUT, LoginAttempt, LoginError, LoginRecord, LoginStore, MAX_FAILED_LOGINS, NewSession, login};
pub use name::PersonName;
pub use national_id::{NationalId, PhoneNumber};
pub use password::{Password, PasswordCheck, PasswordHash, PasswordHasher};
pub use role::Role;
pub use session::{
    Revocation, RevocationLog, RevocationSet, Revocations, RevokedToken, Rotation, SessionStore, TokenIdentity,
};
pub use user::User;

crate::ids::id_type!(
    /// Identifies a user.
    UserId
);

/// A value that failed validation, with a message fit for the API's field-level details.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub &'static str);
