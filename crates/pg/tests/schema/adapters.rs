//! The adapter translates database outcomes into the domain's contract.

use gad_domain::audit::{AuditEntry, Outcome};
use gad_domain::error::StoreError;
use gad_domain::health::{DependencyCheck, DependencyStatus};
use gad_domain::users::{CreateUserError, EmailAddress, NewUser, PasswordHash, PersonName, Role, UserId, UserStore};
use gad_pg::{PgSettings, PgUserStore, PostgresCheck, build_pool};
use gad_test_support::TestDatabase;
use std::time::Duration;

fn pool(url: &str) -> gad_pg::PgPool {
    build_pool(
        &PgSettings {
            url: url.to_owned(),
            max_connections: 2,
            acquire_timeout: Duration::from_millis(500),
            connect_timeout: Duration::from_millis(500),
            statement_timeout: Duration::from_secs(5),
        },
        "gad-test",
    )
    .unwrap()
}

fn entry() -> AuditEntry {
    AuditEntry {
        actor: None,
        action: "user.create",
        resource_type: "user",
        resource_id: None,
        outcome: Outcome::Success,
        context: Default::default(),
    }
}

fn new_user(email: &str) -> NewUser {
    NewUser {
        id: UserId::generate(),
        email: EmailAddress::parse(email).unwrap(),
        first_name: PersonName::parse("Ana").unwrap(),
        last_name: PersonName::parse("García").unwrap(),
        national_id: None,
        phone: None,
        role: Role::Operator,
        password_hash: PasswordHash::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
    }
}

#[tokio::test]
async fn duplicate_emails_are_reported_as_such() {
    let database = TestDatabase::migrated().await;
    let store = PgUserStore::new(pool(database.url()));
    store.insert(new_user("ana@example.org"), entry()).await.unwrap();
    let duplicate = store.insert(new_user("ANA@example.org"), entry()).await;
    assert!(matches!(duplicate, Err(CreateUserError::Duplicate("email"))), "{duplicate:?}");
}

#[tokio::test]
async fn an_unreachable_database_is_unavailable_not_unexpected() {
    let store = PgUserStore::new(pool("postgres://postgres@127.0.0.1:1/gad"));
    let outcome = store.insert(new_user("ana@example.org"), entry()).await;
    assert!(matches!(outcome, Err(CreateUserError::Store(StoreError::Unavailable(_)))), "{outcome:?}");
}

#[tokio::test]
async fn connections_carry_the_application_name_and_statement_timeout() {
    use diesel::sql_types::Text;
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Session {
        #[diesel(sql_type = Text)]
        application_name: String,
        #[diesel(sql_type = Text)]
        statement_timeout: String,
    }
    let database = TestDatabase::migrated().await;
    let pool = pool(database.url());
    let mut conn = pool.get().await.unwrap();
    let session: Session = diesel::sql_query(
        "SELECT current_setting('application_name') AS application_name, \
                current_setting('statement_timeout') AS statement_timeout",
    )
    .get_result(&mut conn)
    .await
    .unwrap();
    assert_eq!(session.application_name, "gad-test");
    assert_eq!(session.statement_timeout, "5s");
}

#[tokio::test]
async fn readiness_follows_the_schema() {
    let migrated = TestDatabase::migrated().await;
    assert_eq!(PostgresCheck::new(pool(migrated.url())).check().await, DependencyStatus::Up);

    let empty = TestDatabase::empty().await;
    match PostgresCheck::new(pool(empty.url())).check().await {
        DependencyStatus::Down(reason) => assert!(reason.contains("not migrated"), "{reason}"),
        DependencyStatus::Up => panic!("an empty database is not ready"),
    }

    match PostgresCheck::new(pool("postgres://postgres@127.0.0.1:1/gad")).check().await {
        DependencyStatus::Down(reason) => assert!(reason.contains("connection"), "{reason}"),
        DependencyStatus::Up => panic!("an unreachable database is not ready"),
    }
}
