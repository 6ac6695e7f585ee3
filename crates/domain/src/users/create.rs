use async_trait::async_trait;
use time::OffsetDateTime;

use super::policy::{Actor, may_administer_users, may_edit_profile, may_list_users, may_read_user};
use super::{
    EmailAddress, NationalId, Password, PasswordCheck, PasswordHash, PasswordHasher, PersonName, PhoneNumber,
    Revocation, Role, User, UserId,
};
use crate::audit::{AuditEntry, Outcome, RequestContext};
use crate::error::StoreError;

/// A user about to be stored, built only from validated values.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: UserId,
    pub email: EmailAddress,
    pub first_name: PersonName,
    pub last_name: PersonName,
    pub national_id: Option<NationalId>,
    pub phone: Option<PhoneNumber>,
    pub role: Role,
    pub password_hash: PasswordHash,
}

/// What a caller asks for when creating a user.
#[derive(Debug, Clone)]
pub struct CreateUser {
    pub email: EmailAddress,
    pub first_name: PersonName,
    pub last_name: PersonName,
    pub national_id: Option<NationalId>,
    pub phone: Option<PhoneNumber>,
    pub role: Role,
    pub password: Password,
}

/// Why a user could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("only administrators create users")]
    Forbidden,
    /// Another user already holds this unique value (`email` or `national_id`).
    #[error("a user with this {0} already exists")]
    Duplicate(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A change to a user's record; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ProfileChanges {
    pub email: Option<EmailAddress>,
    pub first_name: Option<PersonName>,
    pub last_name: Option<PersonName>,
    /// `Some(None)` clears the value.
    pub national_id: Option<Option<NationalId>>,
    pub phone: Option<Option<PhoneNumber>>,
    pub role: Option<Role>,
    pub is_active: Option<bool>,
}

impl ProfileChanges {
    /// Whether this change, applied to an active administrator, would leave it no longer one:
    /// another role, or deactivation.
    pub fn withdraws_administration(&self) -> bool {
        self.role.is_some_and(|role| role != Role::Admin) || self.is_active == Some(false)
    }
}

/// What a caller asks to change.
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    pub profile: ProfileChanges,
    pub password: Option<PasswordChange>,
}

/// A new password; changing one's own requires the current one.
#[derive(Debug, Clone)]
pub struct PasswordChange {
    pub new: Password,
    pub current: Option<String>,
}

/// The change as stored: the password already hashed, the token cut-off decided.
#[derive(Debug, Clone, Default)]
pub struct UserUpdate {
    pub profile: ProfileChanges,
    pub password_hash: Option<PasswordHash>,
    /// Revoke every token and session issued before this instant.
    pub revoke_tokens_before: Option<OffsetDateTime>,
    /// Refuse the change (`LastActiveAdmin`) when the user is the last active administrator,
    /// decided in the write's own transaction so that concurrent changes cannot both pass.
    pub keep_an_active_admin: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum UpdateUserError {
    #[error("the user does not exist")]
    NotFound,
    #[error("this change is not allowed")]
    Forbidden,
    #[error("a user with this {0} already exists")]
    Duplicate(&'static str),
    #[error("changing your own password requires current_password")]
    CurrentPasswordRequired,
    #[error("current_password is incorrect")]
    WrongCurrentPassword,
    #[error(
        "this is the last active administrator: demoting or deactivating it would leave nobody able to \
         manage GAD; make another user an administrator first"
    )]
    LastActiveAdmin,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Filters and page of a user listing; newest first, by id.
#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    pub role: Option<Role>,
    pub is_active: Option<bool>,
    /// Matches e-mail and names, case-insensitively.
    pub q: Option<String>,
    pub before: Option<UserId>,
    pub limit: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ListUsersError {
    #[error("this role may not list users")]
    Forbidden,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Persists users. Error contract: a unique violation is `Duplicate` naming the field; an
/// update that would leave no active administrator (see [`UserUpdate::keep_an_active_admin`])
/// is `LastActiveAdmin` and changes nothing; connection problems are
/// [`StoreError::Unavailable`]. Every write also appends its audit row in the same transaction.
#[async_trait]
pub trait UserStore: Send + Sync {
    async fn insert(&self, user: NewUser, audit: AuditEntry) -> Result<User, CreateUserError>;

    /// The user with this id, unless it does not exist or was erased.
    async fn find(&self, id: UserId) -> Result<Option<User>, StoreError>;

    async fn list(&self, query: &UserQuery) -> Result<Vec<User>, StoreError>;

    async fn password_hash(&self, id: UserId) -> Result<Option<PasswordHash>, StoreError>;

    /// Applies the update; `Ok(None)` when the user does not exist. A token cut-off also
    /// revokes every refresh-token family of the user.
    async fn update(&self, id: UserId, update: UserUpdate, audit: AuditEntry) -> Result<Option<User>, UpdateUserError>;
}

fn audit(actor: Option<Actor>, action: &'static str, user: UserId, context: RequestContext) -> AuditEntry {
    AuditEntry {
        actor: actor.map(|actor| (actor.id, actor.role)),
        action,
        resource_type: "user",
        resource_id: Some(user.as_uuid()),
        outcome: Outcome::Success,
        context,
    }
}

/// Creates a user with a freshly hashed password. `actor` is `None` for the command line.
pub async fn create_user(
    store: &dyn UserStore,
    hasher: &dyn PasswordHasher,
    actor: Option<Actor>,
    request: CreateUser,
    context: RequestContext,
) -> Result<User, CreateUserError> {
    if actor.is_some_and(|actor| !may_administer_users(actor)) {
        return Err(CreateUserError::Forbidden);
    }
    let password_hash = hasher.hash(request.password).await?;
    let user = NewUser {
        id: UserId::generate(),
        email: request.email,
        first_name: request.first_name,
        last_name: request.last_name,
        national_id: request.national_id,
        phone: request.phone,
        role: request.role,
        password_hash,
    };
    let entry = audit(actor, "user.create", user.id, context);
    store.insert(user, entry).await
}

pub async fn list_users(store: &dyn UserStore, actor: Actor, query: &UserQuery) -> Result<Vec<User>, ListUsersError> {
    if !may_list_users(actor) {
        return Err(ListUsersError::Forbidden);
    }
    Ok(store.list(query).await?)
}

/// Why a user could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadUserError {
    #[error("the user does not exist")]
    NotFound,
    /// The caller's role reads no user but themselves (SPEC §3: a refusal, 403).
    #[error("the caller may not read other users")]
    Forbidden,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ReadUserError> for UpdateUserError {
    fn from(error: ReadUserError) -> Self {
        match error {
            ReadUserError::NotFound => Self::NotFound,
            ReadUserError::Forbidden => Self::Forbidden,
            ReadUserError::Store(error) => Self::Store(error),
        }
    }
}

/// The user, if the actor may read it.
pub async fn read_user(store: &dyn UserStore, actor: Actor, id: UserId) -> Result<User, ReadUserError> {
    if !may_read_user(actor, id) {
        return Err(ReadUserError::Forbidden);
    }
    store.find(id).await?.ok_or(ReadUserError::NotFound)
}

/// Changes a user (PATCH and PUT, rectification, deactivation). Returns the updated user and,
/// when its tokens were cut off (role change, deactivation), the revocation to announce.
pub async fn update_user(
    store: &dyn UserStore,
    hasher: &dyn PasswordHasher,
    actor: Actor,
    id: UserId,
    changes: UserChanges,
    context: RequestContext,
) -> Result<(User, Option<Revocation>), UpdateUserError> {
    let current = read_user(store, actor, id).await?;
    let administrative = changes.profile.role.is_some() || changes.profile.is_active.is_some();
    if !may_edit_profile(actor, id) || (administrative && !may_administer_users(actor)) {
        return Err(UpdateUserError::Forbidden);
    }
    let password_hash = match changes.password {
        Some(change) => {
            if actor.id == id {
                let given = change.current.ok_or(UpdateUserError::CurrentPasswordRequired)?;
                let stored = store.password_hash(id).await?;
                if !matches!(hasher.verify(stored, given).await?, PasswordCheck::Valid { .. }) {
                    return Err(UpdateUserError::WrongCurrentPassword);
                }
            }
            Some(hasher.hash(change.new).await?)
        }
        None => None,
    };
    let role_changes = changes.profile.role.is_some_and(|role| role != current.role);
    let deactivates = changes.profile.is_active == Some(false) && current.is_active;
    let revoke_tokens_before = (role_changes || deactivates).then(OffsetDateTime::now_utc);
    let action = if deactivates { "user.deactivate" } else { "user.update" };
    let keep_an_active_admin = changes.profile.withdraws_administration();
    let update = UserUpdate { profile: changes.profile, password_hash, revoke_tokens_before, keep_an_active_admin };
    let user =
        store.update(id, update, audit(Some(actor), action, id, context)).await?.ok_or(UpdateUserError::NotFound)?;
    let revocation = revoke_tokens_before.map(|before| Revocation::User { user_id: id, before });
    Ok((user, revocation))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::task::{Context, Poll, Waker};

    use super::*;

    /// Runs a future of the in-memory fakes below, which never wait.
    fn ready<F: Future>(future: F) -> F::Output {
        match std::pin::pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(output) => output,
            Poll::Pending => panic!("the fakes never wait"),
        }
    }

    /// Users in memory, keeping the store's contract on the last active administrator.
    #[derive(Default)]
    struct Users(Mutex<Vec<User>>);

    impl Users {
        fn add(&self, role: Role) -> UserId {
            let now = OffsetDateTime::now_utc();
            let id = UserId::generate();
            self.0.lock().expect("not poisoned").push(User {
                id,
                email: format!("{id}@example.org"),
                first_name: "Eva".into(),
                last_name: "Núñez".into(),
                national_id: None,
                phone: None,
                role,
                is_active: true,
                telegram_linked: false,
                created_at: now,
                updated_at: now,
                last_login_at: None,
            });
            id
        }

        fn get(&self, id: UserId) -> User {
            self.0
                .lock()
                .expect("not poisoned")
                .iter()
                .find(|user| user.id == id)
                .cloned()
                .expect("a user of this test")
        }
    }

    #[async_trait]
    impl UserStore for Users {
        async fn insert(&self, _: NewUser, _: AuditEntry) -> Result<User, CreateUserError> {
            unreachable!("not used here")
        }

        async fn find(&self, id: UserId) -> Result<Option<User>, StoreError> {
            Ok(self.0.lock().expect("not poisoned").iter().find(|user| user.id == id).cloned())
        }

        async fn list(&self, _: &UserQuery) -> Result<Vec<User>, StoreError> {
            unreachable!("not used here")
        }

        async fn password_hash(&self, _: UserId) -> Result<Option<PasswordHash>, StoreError> {
            unreachable!("not used here")
        }

        async fn update(&self, id: UserId, update: UserUpdate, _: AuditEntry) -> Result<Option<User>, UpdateUserError> {
            let mut users = self.0.lock().expect("not poisoned");
            let active_admin = |user: &User| user.role == Role::Admin && user.is_active;
            let others = users.iter().filter(|user| user.id != id && active_admin(user)).count();
            let Some(user) = users.iter_mut().find(|user| user.id == id) else { return Ok(None) };
            if update.keep_an_active_admin && active_admin(user) && others == 0 {
                return Err(UpdateUserError::LastActiveAdmin);
            }
            user.role = update.profile.role.unwrap_or(user.role);
            user.is_active = update.profile.is_active.unwrap_or(user.is_active);
            Ok(Some(user.clone()))
        }
    }

    struct NoPasswords;

    #[async_trait]
    impl PasswordHasher for NoPasswords {
        async fn hash(&self, _: Password) -> Result<PasswordHash, StoreError> {
            unreachable!("no password changes here")
        }

        async fn verify(&self, _: Option<PasswordHash>, _: String) -> Result<PasswordCheck, StoreError> {
            unreachable!("no password changes here")
        }
    }

    fn change(users: &Users, actor: UserId, id: UserId, profile: ProfileChanges) -> Result<User, UpdateUserError> {
        let actor = Actor { id: actor, role: users.get(actor).role };
        let changes = UserChanges { profile, password: None };
        ready(update_user(users, &NoPasswords, actor, id, changes, RequestContext::default())).map(|(user, _)| user)
    }

    fn role(role: Role) -> ProfileChanges {
        ProfileChanges { role: Some(role), ..ProfileChanges::default() }
    }

    fn active(is_active: bool) -> ProfileChanges {
        ProfileChanges { is_active: Some(is_active), ..ProfileChanges::default() }
    }

    #[test]
    fn another_role_or_deactivation_withdraws_administration() {
        assert!(role(Role::Supervisor).withdraws_administration());
        assert!(role(Role::Officer).withdraws_administration());
        assert!(active(false).withdraws_administration());
        assert!(!role(Role::Admin).withdraws_administration());
        assert!(!active(true).withdraws_administration());
        assert!(!ProfileChanges::default().withdraws_administration());
    }

    #[test]
    fn the_last_active_admin_is_neither_demoted_nor_deactivated() {
        let users = Users::default();
        let admin = users.add(Role::Admin);
        let before = users.get(admin);
        for refused in [role(Role::Operator), active(false)] {
            let outcome = change(&users, admin, admin, refused.clone());
            assert!(matches!(outcome, Err(UpdateUserError::LastActiveAdmin)), "{refused:?}: {outcome:?}");
        }
        assert_eq!(users.get(admin), before, "nothing changed");

        let renamed =
            ProfileChanges { first_name: Some(PersonName::parse("Ana").expect("valid")), ..role(Role::Admin) };
        assert!(change(&users, admin, admin, renamed).is_ok(), "other changes stay allowed");
    }

    #[test]
    fn with_another_active_admin_one_may_demote_the_other() {
        let users = Users::default();
        let first = users.add(Role::Admin);
        let second = users.add(Role::Admin);
        assert_eq!(
            change(&users, first, second, role(Role::Supervisor)).expect("another admin remains").role,
            Role::Supervisor
        );
        let outcome = change(&users, first, first, active(false));
        assert!(matches!(outcome, Err(UpdateUserError::LastActiveAdmin)), "now the last: {outcome:?}");
    }
}
