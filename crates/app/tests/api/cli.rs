//! The `gad` binary's commands, run as an operator would.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use diesel::QueryableByName;
use diesel::sql_types::{Bool, Text};
use diesel_async::RunQueryDsl;
use gad_test_support::TestDatabase;

/// Runs `gad` with only the given environment (nothing leaks in from the caller's).
pub fn gad(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gad"))
        .args(args)
        .env_clear()
        // `just test-future` shifts the clock through these: the binary must live in the tests' time.
        .envs(["LD_PRELOAD", "FAKETIME"].into_iter().filter_map(|name| Some((name, std::env::var(name).ok()?))))
        .env("GAD_ENV", "test")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[derive(QueryableByName)]
struct StoredUser {
    #[diesel(sql_type = Text)]
    email: String,
    #[diesel(sql_type = Text)]
    role: String,
    #[diesel(sql_type = Text)]
    password_hash: String,
    #[diesel(sql_type = Text)]
    first_name: String,
    #[diesel(sql_type = Bool)]
    is_active: bool,
}

async fn users(database: &TestDatabase) -> Vec<StoredUser> {
    let mut conn = database.connect().await;
    diesel::sql_query(
        "SELECT email, role::text AS role, password_hash, first_name, is_active FROM users ORDER BY email",
    )
    .load(&mut conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn migrate_then_create_admin_from_the_environment_or_stdin() {
    let database = TestDatabase::empty().await;
    let url = database.url();

    let first = gad(&["migrate"], &[("DATABASE_URL", url)], None);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(stderr(&first).contains("applied migration"));
    let again = gad(&["migrate"], &[("DATABASE_URL", url)], None);
    assert!(again.status.success());
    assert!(stderr(&again).contains("up to date"));

    let created = gad(
        &["create-admin", "--email", "Chief@Example.ORG"],
        &[("DATABASE_URL", url), ("GAD_ADMIN_PASSWORD", "a long enough password")],
        None,
    );
    assert!(created.status.success(), "{}", stderr(&created));
    let piped = gad(
        &["create-admin", "--email", "duty@example.org", "--role", "supervisor", "--first-name", "Ana"],
        &[("DATABASE_URL", url)],
        Some("another long password\n"),
    );
    assert!(piped.status.success(), "{}", stderr(&piped));

    let stored = users(&database).await;
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0].email, "chief@example.org", "stored normalised");
    assert_eq!(stored[0].role, "admin");
    assert!(stored[0].is_active);
    assert!(stored[0].password_hash.starts_with("$argon2id$"), "never the plain password");
    assert_eq!(stored[1].role, "supervisor");
    assert_eq!(stored[1].first_name, "Ana");
}

#[tokio::test]
async fn create_admin_refuses_duplicates_and_bad_input_and_changes_nothing() {
    let database = TestDatabase::migrated().await;
    let env = [("DATABASE_URL", database.url()), ("GAD_ADMIN_PASSWORD", "a long enough password")];
    assert!(gad(&["create-admin", "--email", "boss@example.org"], &env, None).status.success());

    let duplicate = gad(&["create-admin", "--email", "BOSS@example.org"], &env, None);
    assert!(!duplicate.status.success());
    assert!(stderr(&duplicate).contains("already exists"), "{}", stderr(&duplicate));

    let short = gad(
        &["create-admin", "--email", "new@example.org"],
        &[("DATABASE_URL", database.url()), ("GAD_ADMIN_PASSWORD", "short")],
        None,
    );
    assert!(!short.status.success());
    assert!(stderr(&short).contains("at least 12 characters"), "{}", stderr(&short));

    let bad_email = gad(&["create-admin", "--email", "not-an-email"], &env, None);
    assert!(!bad_email.status.success());
    let bad_role = gad(&["create-admin", "--email", "x@example.org", "--role", "root"], &env, None);
    assert!(!bad_role.status.success());

    assert_eq!(users(&database).await.len(), 1, "failed attempts store nothing");
}

#[tokio::test]
async fn create_admin_reports_an_unreachable_database() {
    let output = gad(
        &["create-admin", "--email", "boss@example.org"],
        &[("DATABASE_URL", crate::helpers::REFUSED_POSTGRES), ("GAD_ADMIN_PASSWORD", "a long enough password")],
        None,
    );
    assert!(!output.status.success());
    assert!(stderr(&output).contains("unavailable"), "{}", stderr(&output));
}

#[test]
fn openapi_prints_the_served_document() {
    let output = gad(&["openapi"], &[], None);
    assert!(output.status.success(), "{}", stderr(&output));
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(printed, serde_json::to_value(gad_http::openapi::document()).unwrap());
}

#[test]
fn check_config_shows_redacted_settings_and_refuses_unsafe_ones() {
    let output = gad(
        &["check-config"],
        &[("DATABASE_URL", "postgres://gad:pw-123@db/gad"), ("GAD_JWT_SECRET", "jwt-secret-value")],
        None,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let shown = String::from_utf8_lossy(&output.stdout);
    let settings: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(settings["environment"], "test");
    assert_eq!(settings["database"]["url"], "postgres://gad:***@db/gad");
    assert_eq!(settings["auth"]["jwt_secret"], "<set>");
    assert!(!shown.contains("pw-123") && !shown.contains("jwt-secret-value"));

    let production = gad(&["check-config"], &[("GAD_ENV", "production")], None);
    assert!(!production.status.success());
    assert!(stderr(&production).contains("GAD_JWT_SECRET is required"), "{}", stderr(&production));

    // Otherwise sound production settings that would leave /metrics public: check-config and
    // serve both refuse, naming the fix.
    let public_metrics = [
        ("GAD_ENV", "production"),
        ("DATABASE_URL", "postgres://gad@127.0.0.1:1/gad"),
        ("GAD_JWT_SECRET", "a-production-signing-key-of-40-bytes-xxxx"),
        ("GAD_BIND", "127.0.0.1:0"),
    ];
    let refused = gad(&["check-config"], &public_metrics, None);
    assert!(!refused.status.success(), "check-config accepted public metrics");
    let message = stderr(&refused);
    assert!(message.contains("GAD_METRICS_BIND") && message.contains("GAD_METRICS_TOKEN"), "{message}");
    let mut serve = Command::new(env!("CARGO_BIN_EXE_gad"))
        .arg("serve")
        .env_clear()
        .envs(public_metrics)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while serve.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            serve.kill().unwrap();
            panic!("gad serve started with public metrics in production");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let served = serve.wait_with_output().unwrap();
    assert!(!served.status.success());
    assert!(stderr(&served).contains("/metrics would be public"), "{}", stderr(&served));
    let guarded = [public_metrics.as_slice(), &[("GAD_METRICS_TOKEN", "a-token-for-the-scraper")]].concat();
    assert!(gad(&["check-config"], &guarded, None).status.success(), "a metrics token makes it safe");
}
