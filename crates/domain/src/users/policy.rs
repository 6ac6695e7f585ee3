//! Who may do what to users and their records (the matrix of SPEC §3). Every handler and
//! socket asks these functions; none decides on its own.
//!
//! Rule for objects: a caller who may not *read* an object is told it does not exist (404);
//! a caller who may read it but not change it is refused (403).

use super::{Role, UserId};

/// The authenticated caller, as far as authorization is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    pub id: UserId,
    pub role: Role,
}

impl Actor {
    fn is(self, user: UserId) -> bool {
        self.id == user
    }
}

pub fn may_list_users(actor: Actor) -> bool {
    matches!(actor.role, Role::Admin | Role::Supervisor)
}

pub fn may_read_user(actor: Actor, user: UserId) -> bool {
    may_list_users(actor) || actor.is(user)
}

/// Names, phone, e-mail and password (rectification): the subject, or an admin.
pub fn may_edit_profile(actor: Actor, user: UserId) -> bool {
    actor.role == Role::Admin || actor.is(user)
}

/// Creating users, changing roles and activity, deactivating.
pub fn may_administer_users(actor: Actor) -> bool {
    actor.role == Role::Admin
}

pub fn may_read_audit(actor: Actor) -> bool {
    actor.role == Role::Admin
}

/// Consent is given or withdrawn by the subject alone.
pub fn may_record_consent(actor: Actor, subject: UserId) -> bool {
    actor.is(subject)
}

pub fn may_read_consents(actor: Actor, subject: UserId) -> bool {
    actor.role == Role::Admin || actor.is(subject)
}

/// Export and erasure of personal data (SPEC §3): the subject, or an admin for anyone.
pub fn may_exercise_privacy_rights(actor: Actor, subject: UserId) -> bool {
    actor.role == Role::Admin || actor.is(subject)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(role: Role) -> Actor {
        Actor { id: UserId::generate(), role }
    }

    #[test]
    fn the_user_matrix_of_the_spec() {
        let other = UserId::generate();
        for (role, list, read_other, edit_other, administer, audit) in [
            (Role::Admin, true, true, true, true, true),
            (Role::Supervisor, true, true, false, false, false),
            (Role::Operator, false, false, false, false, false),
            (Role::Officer, false, false, false, false, false),
        ] {
            let actor = actor(role);
            assert_eq!(may_list_users(actor), list, "{role} list");
            assert_eq!(may_read_user(actor, other), read_other, "{role} read other");
            assert!(may_read_user(actor, actor.id), "{role} reads self");
            assert_eq!(may_edit_profile(actor, other), edit_other, "{role} edit other");
            assert!(may_edit_profile(actor, actor.id), "{role} edits self");
            assert_eq!(may_administer_users(actor), administer, "{role} administer");
            assert_eq!(may_read_audit(actor), audit, "{role} audit");
            assert!(may_record_consent(actor, actor.id) && !may_record_consent(actor, other), "{role} consent");
            assert_eq!(may_read_consents(actor, other), role == Role::Admin, "{role} read consents");
            assert!(may_exercise_privacy_rights(actor, actor.id), "{role} exports and erases self");
            assert_eq!(may_exercise_privacy_rights(actor, other), role == Role::Admin, "{role} privacy of other");
        }
    }
}
