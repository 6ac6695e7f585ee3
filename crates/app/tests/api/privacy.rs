//! The subject's rights (SPEC §7): the export is complete against the data map, erasure leaves
//! no identifier anywhere while tasks survive, both follow the role matrix, and retention is
//! enforced by `gad purge` and by the periodic job of `gad serve`.

use std::time::Duration;

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use futures_util::future::join_all;
use gad_domain::users::Role;
use gad_pg::privacy::data_map::{Class, DATA_MAP};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::cli::gad;
use crate::helpers::{PASSWORD, TestApp, hours_from_now};

/// The identifiers of the subject; after erasure none may appear anywhere.
const EMAIL: &str = "zacarias.quintanilla@corp.example";
const FIRST_NAME: &str = "Zacarías";
const LAST_NAME: &str = "Quintanilla-Bermúdez";
const NATIONAL_ID: &str = "X9876543Q";
const PHONE: &str = "+34699887766";
const BADGE: &str = "ZQ-4711";
const TELEGRAM_USERNAME: &str = "zquintanilla";

/// A subject with rows in every table of the data map that can hold rows about a person.
struct Subject {
    id: Uuid,
    officer_id: String,
    token: String,
    task_id: String,
    admin: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

async fn count(app: &TestApp, sql: &str, subject: Uuid) -> i64 {
    diesel::sql_query(sql).bind::<SqlUuid, _>(subject).get_result::<Count>(&mut app.db().await).await.unwrap().count
}

async fn execute(app: &TestApp, sql: &str, subject: Uuid) {
    diesel::sql_query(sql).bind::<SqlUuid, _>(subject).execute(&mut app.db().await).await.unwrap();
}

async fn expect_status(response: reqwest::Response, status: StatusCode) -> Value {
    let actual = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(actual, status, "{body}");
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

async fn arrange_subject(app: &TestApp) -> Subject {
    app.create_user("admin@x.org", Role::Admin).await;
    app.create_user("operator@x.org", Role::Operator).await;
    let admin = app.login("admin@x.org").await.access_token;
    let operator = app.login("operator@x.org").await.access_token;
    let user = json!({"email": EMAIL, "password": PASSWORD, "first_name": FIRST_NAME, "last_name": LAST_NAME,
                      "national_id": NATIONAL_ID, "phone": PHONE, "role": "officer"});
    let created =
        expect_status(app.send(Method::POST, "/api/v1/users", &admin, Some(user)).await, StatusCode::CREATED).await;
    let id: Uuid = created["id"].as_str().unwrap().parse().unwrap();
    let profile = json!({"user_id": id, "badge_number": BADGE, "rank": "Agente", "unit": "Centro",
                         "specialty": "Tráfico", "availability": "available"});
    let officer =
        expect_status(app.send(Method::POST, "/api/v1/officers", &admin, Some(profile)).await, StatusCode::CREATED)
            .await;
    let officer_id = officer["id"].as_str().unwrap().to_owned();

    // One session logged out (a revoked access token), one kept.
    let spent = app.login(EMAIL).await.access_token;
    expect_status(app.send(Method::POST, "/api/v1/auth/logout", &spent, None).await, StatusCode::NO_CONTENT).await;
    let token = app.login(EMAIL).await.access_token;

    let consent = json!({"consent_type": "location_tracking", "granted": true, "policy_version": "1"});
    let consents = format!("/api/v1/users/{id}/consents");
    expect_status(app.send(Method::POST, &consents, &token, Some(consent)).await, StatusCode::CREATED).await;
    for step in 0..3 {
        let here = json!({"lat": 40.41 + f64::from(step) / 1000.0, "lng": -3.70, "accuracy_m": 5.0});
        let location = format!("/api/v1/officers/{officer_id}/location");
        expect_status(app.send(Method::PUT, &location, &token, Some(here)).await, StatusCode::OK).await;
    }

    let task = json!({"title": "Escort to the court", "kind": "patrol", "scheduled_start": hours_from_now(1),
                      "description": format!("Call {FIRST_NAME} {LAST_NAME} ({PHONE}, {EMAIL}) first"),
                      "officer_ids": [officer_id]});
    let task =
        expect_status(app.send(Method::POST, "/api/v1/tasks", &operator, Some(task)).await, StatusCode::CREATED).await;
    let task_id = task["id"].as_str().unwrap().to_owned();
    let start = json!({"action": "start", "reason": "on my way"});
    let transitions = format!("/api/v1/tasks/{task_id}/transitions");
    expect_status(app.send(Method::POST, &transitions, &token, Some(start)).await, StatusCode::OK).await;
    expect_status(app.send(Method::POST, "/api/v1/ws/tickets", &token, None).await, StatusCode::CREATED).await;

    // The bot's tables, filled as the bot fills them (its own tests drive it through the fake
    // Bot API; here only the rows matter).
    execute(
        app,
        &format!(
            "INSERT INTO telegram_links (user_id, chat_id, username) VALUES ($1, 987654321, '{TELEGRAM_USERNAME}')"
        ),
        id,
    )
    .await;
    // An update from the subject's chat not processed yet: what they sent is in its payload.
    execute(
        app,
        &format!(
            "INSERT INTO telegram_processed_updates (update_id, chat_id, payload, lease_owner, lease_until) \
             VALUES (77, 987654321, '{{\"update_id\": 77, \"message\": {{\"text\": \"Llamadme al {PHONE}\", \
             \"chat\": {{\"id\": 987654321}}}}}}', gen_random_uuid(), now() + interval '1 hour')"
        ),
        id,
    )
    .await;
    execute(
        app,
        "INSERT INTO telegram_link_codes (code, user_id, expires_at) VALUES ('code-' || replace($1::text, '-', ''), $1, now() + interval '10 minutes')",
        id,
    )
    .await;
    execute(
        app,
        "INSERT INTO telegram_outbox (event_seq, user_id, task_id, kind, task, committed_at) \
         VALUES (1, $1, gen_random_uuid(), 'assigned', '{\"code\": \"T-000001\", \"title\": \"Night patrol\"}', now())",
        id,
    )
    .await;
    execute(
        app,
        &format!("INSERT INTO telegram_conversations (chat_id, user_id, state) VALUES (987654321, $1, '{{\"step\": \"title\", \"phone\": \"{PHONE}\"}}')"),
        id,
    )
    .await;
    execute(
        app,
        "INSERT INTO idempotency_keys (owner_id, scope, key, request_hash, expires_at) \
         VALUES ($1, 'tasks.create', 'retry-1', sha256('body'::bytea), now() + interval '1 day')",
        id,
    )
    .await;
    Subject { id, officer_id, token, task_id, admin }
}

async fn export(app: &TestApp, subject: Uuid, token: &str) -> Value {
    let response = app.get_as(&format!("/api/v1/users/{subject}/data-export"), token).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    let disposition = response.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert!(disposition.starts_with("attachment;") && disposition.contains(&subject.to_string()), "{disposition}");
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_export_holds_every_personal_column_of_the_data_map_and_no_credential() {
    let app = TestApp::spawn().await;
    let subject = arrange_subject(&app).await;
    let document = export(&app, subject.id, &subject.token).await;
    assert_eq!(document["subject_id"], subject.id.to_string());
    for table in DATA_MAP.iter().filter(|table| table.subject_rows.is_some()) {
        let rows = document["tables"][table.name].as_array().unwrap_or_else(|| panic!("{} is missing", table.name));
        assert!(!rows.is_empty(), "the subject has rows in {}", table.name);
        for row in rows {
            for column in table.columns {
                let present = row.get(column.name).is_some();
                assert_eq!(present, column.class != Class::Credential, "{}.{} in {row}", table.name, column.name);
            }
        }
    }
    let tables = &document["tables"];
    let user = &tables["users"][0];
    assert_eq!(
        (&user["email"], &user["national_id"], &user["phone"]),
        (&json!(EMAIL), &json!(NATIONAL_ID), &json!(PHONE))
    );
    assert_eq!(tables["officer_locations"].as_array().unwrap().len(), 3, "the whole history");
    assert_eq!(tables["officer_locations"][0]["location"]["type"], "Point", "positions as GeoJSON");
    assert_eq!(tables["tasks"][0]["id"], subject.task_id);
    assert_eq!(tables["task_status_history"][0]["reason"], "on my way");
    assert_eq!(tables["telegram_links"][0]["username"], TELEGRAM_USERNAME);
    let actions: Vec<_> = tables["audit_events"].as_array().unwrap().iter().map(|row| row["action"].clone()).collect();
    for action in ["user.create", "auth.login", "auth.logout", "consent.grant", "user.export"] {
        assert!(actions.contains(&json!(action)), "{action} in {actions:?}");
    }

    // An admin exports anyone; rectification shows at once.
    let rename = json!({"first_name": "Zacarías Ignacio", "phone": "+34600000001"});
    let path = format!("/api/v1/users/{}", subject.id);
    expect_status(app.send(Method::PATCH, &path, &subject.token, Some(rename)).await, StatusCode::OK).await;
    let by_admin = export(&app, subject.id, &subject.admin).await;
    let user = &by_admin["tables"]["users"][0];
    assert_eq!((&user["first_name"], &user["phone"]), (&json!("Zacarías Ignacio"), &json!("+34600000001")));
}

#[tokio::test]
async fn a_long_history_streams_as_one_valid_document() {
    let app = TestApp::spawn().await;
    let subject = arrange_subject(&app).await;
    execute(
        &app,
        "INSERT INTO officer_locations (officer_id, location, accuracy_m, recorded_at) \
         SELECT o.id, ST_SetSRID(ST_MakePoint(-3.7, 40.4 + n / 100000.0), 4326)::geography, 3, now() - n * interval '1 minute' \
         FROM officers o, generate_series(1, 5000) n WHERE o.user_id = $1",
        subject.id,
    )
    .await;
    let document = export(&app, subject.id, &subject.token).await;
    assert_eq!(
        document["tables"]["officer_locations"].as_array().unwrap().len(),
        5003,
        "more than a chunk and a fetch"
    );
}

/// Every text-like value of every table that contains `needle`, as `table.column`.
async fn occurrences(app: &TestApp, needle: &str) -> Vec<String> {
    #[derive(QueryableByName)]
    struct Column {
        #[diesel(sql_type = Text)]
        table_name: String,
        #[diesel(sql_type = Text)]
        column_name: String,
        #[diesel(sql_type = Text)]
        data_type: String,
    }
    let mut conn = app.db().await;
    let columns: Vec<Column> = diesel::sql_query(
        "SELECT c.table_name::text AS table_name, c.column_name::text AS column_name, c.data_type::text AS data_type \
         FROM information_schema.columns c JOIN information_schema.tables t USING (table_schema, table_name) \
         WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' AND c.table_name <> 'spatial_ref_sys' \
           AND c.data_type IN ('text', 'character varying', 'character', 'json', 'jsonb', 'ARRAY', 'bytea', 'inet')",
    )
    .load(&mut conn)
    .await
    .unwrap();
    assert!(columns.len() > 30, "the scan covers the schema: {}", columns.len());
    let mut found = Vec::new();
    for column in columns {
        // Hashes (32 bytes) are not text: only longer byte strings, stored responses, are read.
        let value = match column.data_type.as_str() {
            "bytea" => format!(
                "CASE WHEN octet_length({name}) > 32 THEN convert_from({name}, 'UTF8') END",
                name = column.column_name
            ),
            _ => format!("{}::text", column.column_name),
        };
        let sql = format!("SELECT count(*) AS count FROM {} WHERE {value} ILIKE '%' || $1 || '%'", column.table_name);
        let hits: Count = diesel::sql_query(sql).bind::<Text, _>(needle).get_result(&mut conn).await.unwrap();
        if hits.count > 0 {
            found.push(format!("{}.{}", column.table_name, column.column_name));
        }
    }
    found
}

#[tokio::test]
async fn erasure_leaves_no_identifier_in_any_row_while_tasks_keep_a_pseudonymous_reference() {
    let app = TestApp::spawn().await;
    let subject = arrange_subject(&app).await;
    for identifier in [EMAIL, NATIONAL_ID, PHONE, FIRST_NAME, LAST_NAME] {
        assert!(!occurrences(&app, identifier).await.is_empty(), "the scan finds {identifier} before erasure");
    }

    let path = format!("/api/v1/users/{}/gdpr-delete", subject.id);
    let receipt = expect_status(app.send(Method::DELETE, &path, &subject.token, None).await, StatusCode::OK).await;
    assert_eq!(receipt["user_id"], subject.id.to_string());
    assert_eq!(receipt["already_erased"], false);
    let rows = |table: &str| {
        receipt["records"].as_array().unwrap().iter().find(|record| record["table"] == table).cloned().unwrap()
    };
    assert_eq!(rows("officer_locations"), json!({"table": "officer_locations", "treatment": "deleted", "rows": 3}));
    assert_eq!(rows("users")["treatment"], "pseudonymised");
    assert_eq!(rows("telegram_links")["rows"], 1);
    assert_eq!(
        rows("telegram_processed_updates"),
        json!({"table": "telegram_processed_updates", "treatment": "pseudonymised", "rows": 1}),
        "the chat's pending update is dropped unprocessed"
    );

    for identifier in [EMAIL, NATIONAL_ID, PHONE, FIRST_NAME, LAST_NAME, BADGE, TELEGRAM_USERNAME] {
        assert_eq!(occurrences(&app, identifier).await, Vec::<String>::new(), "{identifier} survived erasure");
    }
    let id = subject.id;
    let traces =
        "SELECT count(*) AS count FROM audit_events WHERE actor_id = $1 AND (ip IS NOT NULL OR user_agent IS NOT NULL)";
    assert_eq!(count(&app, traces, id).await, 0, "the subject's addresses and user agents are gone");
    assert_eq!(count(&app, "SELECT count(*) AS count FROM tasks WHERE id IN (SELECT task_id FROM task_assignments a JOIN officers o ON o.id = a.officer_id WHERE o.user_id = $1)", id).await, 1, "the task stays, assigned to the pseudonym");
    assert_eq!(count(&app, "SELECT count(*) AS count FROM task_status_history WHERE actor_id = $1", id).await, 1);
    assert_eq!(
        count(&app, "SELECT count(*) AS count FROM consents WHERE user_id = $1 AND granted", id).await,
        1,
        "proof of consent kept"
    );
    assert_eq!(count(&app, "SELECT count(*) AS count FROM officer_locations l JOIN officers o ON o.id = l.officer_id WHERE o.user_id = $1", id).await, 0);
    assert_eq!(
        count(&app, "SELECT count(*) AS count FROM audit_events WHERE action = 'user.erase' AND resource_id = $1 AND ip IS NULL AND user_agent IS NULL", id).await,
        1,
        "one audit row, identifying nobody"
    );
    let task = app.get_as(&format!("/api/v1/tasks/{}", subject.task_id), &subject.admin).await;
    let task: Value = task.json().await.unwrap();
    assert_eq!(task["officer_ids"], json!([subject.officer_id]));
    assert!(task["description"].as_str().unwrap().contains("[erased]"), "{}", task["description"]);

    // The subject's token died with the data; the user is gone for the API.
    assert_eq!(app.get_as("/api/v1/auth/me", &subject.token).await.status(), StatusCode::UNAUTHORIZED);
    let login = app.post_json("/api/v1/auth/login", &json!({"email": EMAIL, "password": PASSWORD}), None).await;
    assert_eq!(login.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.get_as(&format!("/api/v1/users/{id}"), &subject.admin).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        app.get_as(&format!("/api/v1/users/{id}/data-export"), &subject.admin).await.status(),
        StatusCode::NOT_FOUND
    );

    // Idempotent: a repeat returns the first receipt.
    let again = expect_status(app.send(Method::DELETE, &path, &subject.admin, None).await, StatusCode::OK).await;
    assert_eq!(again["already_erased"], true);
    assert_eq!((&again["erased_at"], &again["records"]), (&receipt["erased_at"], &receipt["records"]));
    assert_eq!(
        count(&app, "SELECT count(*) AS count FROM audit_events WHERE action = 'user.erase' AND resource_id = $1", id)
            .await,
        1
    );
}

#[tokio::test]
async fn the_last_active_admin_is_not_erased_and_unknown_ids_are_not_found() {
    let app = TestApp::spawn().await;
    let admin_id = app.create_user("only-admin@x.org", Role::Admin).await;
    let admin = app.login("only-admin@x.org").await.access_token;
    let path = format!("/api/v1/users/{admin_id}/gdpr-delete");
    let refused = expect_status(app.send(Method::DELETE, &path, &admin, None).await, StatusCode::CONFLICT).await;
    assert_eq!(refused["error"]["code"], "conflict");
    assert!(refused["error"]["message"].as_str().unwrap().contains("last active administrator"), "{refused}");
    assert_eq!(app.get_as("/api/v1/auth/me", &admin).await.status(), StatusCode::OK, "nothing changed");

    let unknown = format!("/api/v1/users/{}/gdpr-delete", Uuid::now_v7());
    expect_status(app.send(Method::DELETE, &unknown, &admin, None).await, StatusCode::NOT_FOUND).await;
    let unknown = format!("/api/v1/users/{}/data-export", Uuid::now_v7());
    assert_eq!(app.get_as(&unknown, &admin).await.status(), StatusCode::NOT_FOUND);

    // With a second admin the first may go.
    app.create_user("second-admin@x.org", Role::Admin).await;
    expect_status(app.send(Method::DELETE, &path, &admin, None).await, StatusCode::OK).await;
}

#[tokio::test]
async fn export_and_erasure_follow_the_role_matrix() {
    let app = TestApp::spawn().await;
    let target = app.create_user("target@x.org", Role::Officer).await;
    for (role, may_act_on_others) in
        [(Role::Admin, true), (Role::Supervisor, false), (Role::Operator, false), (Role::Officer, false)]
    {
        let email = format!("{role}@x.org");
        let me = app.create_user(&email, role).await;
        let token = app.login(&email).await.access_token;
        let other_export = app.get_as(&format!("/api/v1/users/{target}/data-export"), &token).await;
        let expected = if may_act_on_others { StatusCode::OK } else { StatusCode::FORBIDDEN };
        assert_eq!(other_export.status(), expected, "{role} exports another");
        assert_eq!(
            export(&app, me.as_uuid(), &token).await["tables"]["users"][0]["email"],
            email,
            "{role} exports self"
        );
        if !may_act_on_others {
            let erase = app.send(Method::DELETE, &format!("/api/v1/users/{target}/gdpr-delete"), &token, None).await;
            let body = expect_status(erase, StatusCode::FORBIDDEN).await;
            assert_eq!(body["error"]["code"], "forbidden");
        }
    }
    assert_eq!(app.get(&format!("/api/v1/users/{target}/data-export")).await.status(), StatusCode::UNAUTHORIZED);
    let anonymous = reqwest::Client::new()
        .delete(format!("{}/api/v1/users/{target}/gdpr-delete", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        count(&app, "SELECT count(*) AS count FROM users WHERE id = $1 AND erased_at IS NULL", target.as_uuid()).await,
        1,
        "refusals changed nothing"
    );

    // Everyone may erase themselves (the admin last, once it is not the only one).
    for role in [Role::Supervisor, Role::Operator, Role::Officer] {
        let email = format!("{role}@x.org");
        let me = app.login(&email).await.access_token;
        let id: Value = app.get_as("/api/v1/auth/me", &me).await.json().await.unwrap();
        let path = format!("/api/v1/users/{}/gdpr-delete", id["id"].as_str().unwrap());
        expect_status(app.send(Method::DELETE, &path, &me, None).await, StatusCode::OK).await;
    }
    let admin = app.login("admin@x.org").await.access_token;
    let erase_target = format!("/api/v1/users/{target}/gdpr-delete");
    expect_status(app.send(Method::DELETE, &erase_target, &admin, None).await, StatusCode::OK).await;
}

#[tokio::test]
async fn erasure_racing_the_subjects_own_writes_leaves_nothing_behind() {
    let app = TestApp::spawn().await;
    let subject = arrange_subject(&app).await;
    let location = format!("/api/v1/officers/{}/location", subject.officer_id);
    let erase = format!("/api/v1/users/{}/gdpr-delete", subject.id);
    let writes = (0..20).map(|step| {
        let here = json!({"lat": 40.0 + f64::from(step) / 100.0, "lng": -3.7});
        app.send(Method::PUT, &location, &subject.token, Some(here))
    });
    let (writes, erased) = tokio::join!(join_all(writes), app.send(Method::DELETE, &erase, &subject.admin, None));
    assert_eq!(erased.status(), StatusCode::OK);
    for write in writes {
        let status = write.status();
        assert!(
            [StatusCode::OK, StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN, StatusCode::NOT_FOUND].contains(&status),
            "a clear answer, never a 500: {status}"
        );
    }
    let left =
        "SELECT count(*) AS count FROM officer_locations l JOIN officers o ON o.id = l.officer_id WHERE o.user_id = $1";
    assert_eq!(count(&app, left, subject.id).await, 0, "no position survives the erasure");
}

/// Rows before and after their retention in every purged table, for `subject`.
async fn arrange_expired_rows(app: &TestApp, subject: Uuid, old_locations: i64) {
    execute(
        app,
        &format!(
            "INSERT INTO officer_locations (officer_id, location, recorded_at, received_at) \
             SELECT o.id, ST_SetSRID(ST_MakePoint(-3.7, 40.4), 4326)::geography, now() - interval '40 days', \
                    now() - interval '40 days' - n * interval '1 second' \
             FROM officers o, generate_series(1, {old_locations}) n WHERE o.user_id = $1"
        ),
        subject,
    )
    .await;
    for statement in [
        "INSERT INTO audit_events (id, at, actor_id, action, resource_type, outcome) \
         VALUES (gen_random_uuid(), now() - interval '400 days', $1, 'auth.login', 'user', 'success')",
        "INSERT INTO telegram_processed_updates (update_id, processed_at) VALUES (1, now() - interval '8 days'), (2, now())",
        // Never processed, received long ago: its payload goes too.
        "INSERT INTO telegram_processed_updates (update_id, received_at, chat_id, payload, lease_until) \
         VALUES (3, now() - interval '8 days', 1, '{}', now() - interval '8 days')",
        "INSERT INTO telegram_outbox (event_seq, user_id, task_id, kind, task, committed_at, status, settled_at) \
         VALUES (1001, $1, gen_random_uuid(), 'assigned', '{}', now() - interval '9 days', 'sent', now() - interval '8 days'), \
                (1002, $1, gen_random_uuid(), 'assigned', '{}', now(), 'pending', NULL)",
        "INSERT INTO ws_tickets (ticket_hash, user_id, created_at, expires_at, role, token_jti, session_id, token_issued_at, token_expires_at) \
         VALUES (sha256('old'::bytea), $1, now() - interval '9 days', now() - interval '8 days', 'officer', gen_random_uuid(), gen_random_uuid(), now(), now())",
        "INSERT INTO idempotency_keys (owner_id, scope, key, request_hash, created_at, expires_at) \
         VALUES ($1, 'tasks.create', 'old', sha256('x'::bytea), now() - interval '9 days', now() - interval '8 days')",
    ] {
        execute(app, statement, subject).await;
    }
}

fn purged(stdout: &str, table: &str) -> u64 {
    let line = stdout.lines().find(|line| line.starts_with(table) && line[table.len()..].starts_with(' ')).unwrap();
    line.split_whitespace().rev().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn gad_purge_counts_in_a_dry_run_then_deletes_only_what_is_past_retention_in_batches() {
    let app = TestApp::spawn().await;
    let subject = arrange_subject(&app).await;
    arrange_expired_rows(&app, subject.id, 25).await;
    let locations =
        "SELECT count(*) AS count FROM officer_locations l JOIN officers o ON o.id = l.officer_id WHERE o.user_id = $1";
    assert_eq!(count(&app, locations, subject.id).await, 28);
    let env = [("DATABASE_URL", app.database_url()), ("GAD__RETENTION__PURGE_BATCH_SIZE", "10")];

    let dry_run = gad(&["purge", "--dry-run"], &env, None);
    assert!(dry_run.status.success(), "{}", String::from_utf8_lossy(&dry_run.stderr));
    let stdout = String::from_utf8(dry_run.stdout).unwrap();
    assert!(stdout.contains("would delete"), "{stdout}");
    for (table, rows) in [
        ("officer_locations", 25),
        ("audit_events", 1),
        ("telegram_processed_updates", 2),
        ("telegram_outbox", 1),
        ("ws_tickets", 1),
        ("idempotency_keys", 1),
    ] {
        assert_eq!(purged(&stdout, table), rows, "{table} in {stdout}");
    }
    assert_eq!(count(&app, locations, subject.id).await, 28, "a dry run deletes nothing");

    let real = gad(&["purge"], &env, None);
    assert!(real.status.success(), "{}", String::from_utf8_lossy(&real.stderr));
    let stdout = String::from_utf8(real.stdout).unwrap();
    assert_eq!(purged(&stdout, "officer_locations"), 25, "three batches of at most 10: {stdout}");
    assert_eq!(count(&app, locations, subject.id).await, 3, "recent positions stay");
    assert_eq!(
        count(&app, "SELECT count(*) AS count FROM telegram_processed_updates WHERE $1 IS NOT NULL", subject.id).await,
        2,
        "the recent one and the subject's pending one stay"
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS count FROM audit_events WHERE at < now() - interval '365 days' AND $1 IS NOT NULL",
            subject.id
        )
        .await,
        0
    );
    assert_eq!(
        count(&app, "SELECT count(*) AS count FROM idempotency_keys WHERE owner_id = $1", subject.id).await,
        1,
        "the live key stays"
    );

    let again = gad(&["purge"], &env, None);
    assert_eq!(purged(&String::from_utf8(again.stdout).unwrap(), "officer_locations"), 0, "nothing left to purge");
    let bad =
        gad(&["purge"], &[("DATABASE_URL", app.database_url()), ("GAD__RETENTION__LOCATION_HISTORY_DAYS", "0")], None);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("at least 1 day"));
}

#[tokio::test]
async fn the_periodic_job_of_gad_serve_purges_expired_rows() {
    let app = TestApp::spawn_configured(Default::default(), |settings| {
        settings.retention.purge_interval_s = 1;
        settings.retention.purge_batch_size = 7;
    })
    .await;
    let subject = arrange_subject(&app).await;
    arrange_expired_rows(&app, subject.id, 30).await;
    let old = "SELECT count(*) AS count FROM officer_locations l JOIN officers o ON o.id = l.officer_id \
               WHERE o.user_id = $1 AND l.received_at < now() - interval '30 days'";
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while count(&app, old, subject.id).await > 0 {
        assert!(tokio::time::Instant::now() < deadline, "the job purged within 20 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let recent =
        "SELECT count(*) AS count FROM officer_locations l JOIN officers o ON o.id = l.officer_id WHERE o.user_id = $1";
    assert_eq!(count(&app, recent, subject.id).await, 3, "recent positions stay");
}
