//! The data map: every column of every table, classified, with the rows each table holds about
//! a subject. The export, the erasure check and `docs/GDPR_DATA_MAPPING.md` all derive from it,
//! and a schema test fails when a migration adds a column that is not classified here.

/// What a column holds, from the point of view of the person the row is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Identifies or describes the subject (GDPR art. 4(1)).
    Personal,
    /// A reference to a user or officer by id: meaningless once that person is erased.
    Pseudonymous,
    /// About the system, not about a person.
    Operational,
    /// A secret or a hash of one: never exported, removed with the subject.
    Credential,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Personal => "personal",
            Self::Pseudonymous => "pseudonymous",
            Self::Operational => "operational",
            Self::Credential => "credential",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub class: Class,
    /// A PostGIS geography, exported as GeoJSON.
    pub geography: bool,
}

impl Column {
    const fn new(name: &'static str, class: Class) -> Self {
        Self { name, class, geography: false }
    }

    const fn geography(mut self) -> Self {
        self.geography = true;
        self
    }
}

const fn personal(name: &'static str) -> Column {
    Column::new(name, Class::Personal)
}

const fn pseudonymous(name: &'static str) -> Column {
    Column::new(name, Class::Pseudonymous)
}

const fn operational(name: &'static str) -> Column {
    Column::new(name, Class::Operational)
}

const fn credential(name: &'static str) -> Column {
    Column::new(name, Class::Credential)
}

#[derive(Debug, Clone, Copy)]
pub struct Table {
    pub name: &'static str,
    /// Why the table exists.
    pub purpose: &'static str,
    /// The SQL condition selecting the rows about the subject, `$subject` standing for the
    /// subject's id; `None` for tables that hold nothing about any person.
    pub subject_rows: Option<&'static str>,
    /// The order of the rows in an export.
    pub order_by: &'static str,
    /// What erasure does to the subject's rows.
    pub erasure: &'static str,
    /// How long rows are kept (the `[retention]` settings, docs/CONFIGURATION.md).
    pub retention: &'static str,
    pub columns: &'static [Column],
}

impl Table {
    /// The columns an export shows: all but credentials.
    pub fn exported_columns(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|column| column.class != Class::Credential)
    }
}

/// Every table of the schema, in the order of an export.
pub const DATA_MAP: &[Table] = &[
    Table {
        name: "users",
        purpose: "accounts: identity, contact, role and login bookkeeping",
        subject_rows: Some("id = $subject"),
        order_by: "id",
        erasure: "pseudonymised: e-mail replaced by erased-<id>@erased.invalid, names by \"Erased\", national id, phone and login traces cleared, password unusable, deactivated",
        retention: "while the account exists; erasure on request",
        columns: &[
            pseudonymous("id"),
            personal("email"),
            credential("password_hash"),
            personal("first_name"),
            personal("last_name"),
            personal("national_id"),
            personal("phone"),
            personal("role"),
            personal("is_active"),
            personal("failed_login_attempts"),
            personal("locked_until"),
            personal("last_login_at"),
            operational("tokens_valid_after"),
            operational("erased_at"),
            personal("created_at"),
            operational("updated_at"),
        ],
    },
    Table {
        name: "officers",
        purpose: "field officers' profiles, availability and current position (dispatch)",
        subject_rows: Some("user_id = $subject"),
        order_by: "created_at, id",
        erasure: "pseudonymised: badge replaced by a random ERASED-… value, rank, unit, specialty and position cleared, profile soft-deleted",
        retention: "while the profile exists; erasure on request",
        columns: &[
            pseudonymous("id"),
            pseudonymous("user_id"),
            personal("badge_number"),
            personal("rank"),
            personal("unit"),
            personal("specialty"),
            personal("availability"),
            personal("location").geography(),
            personal("location_accuracy_m"),
            personal("location_updated_at"),
            operational("created_at"),
            operational("updated_at"),
            operational("deleted_at"),
        ],
    },
    Table {
        name: "officer_locations",
        purpose: "history of reported positions (location_tracking consent)",
        subject_rows: Some("officer_id IN (SELECT id FROM officers WHERE user_id = $subject)"),
        order_by: "recorded_at, id",
        erasure: "deleted",
        retention: "retention.location_history_days (default 30)",
        columns: &[
            operational("id"),
            pseudonymous("officer_id"),
            personal("location").geography(),
            personal("accuracy_m"),
            personal("recorded_at"),
            operational("received_at"),
        ],
    },
    Table {
        name: "consents",
        purpose: "append-only record of consents given and withdrawn",
        subject_rows: Some("user_id = $subject"),
        order_by: "recorded_at, id",
        erasure: "kept as pseudonymous proof of what was granted; IP address and user agent cleared",
        retention: "for as long as the processing they justify, and then as proof (art. 7(1))",
        columns: &[
            operational("id"),
            pseudonymous("user_id"),
            personal("consent_type"),
            personal("granted"),
            personal("policy_version"),
            personal("channel"),
            personal("user_agent"),
            personal("ip"),
            personal("recorded_at"),
        ],
    },
    Table {
        name: "tasks",
        purpose: "field work: created, delegated or assigned",
        subject_rows: Some(
            "created_by = $subject OR delegate_id = $subject OR id IN \
             (SELECT task_id FROM task_assignments WHERE officer_id IN (SELECT id FROM officers WHERE user_id = $subject))",
        ),
        order_by: "created_at, id",
        erasure: "kept with the subject's id as a pseudonymous reference; the subject's e-mail, phone, national id and full name are replaced by [erased] in the free texts",
        retention: "operational records of the operator (not purged by GAD)",
        columns: &[
            operational("id"),
            operational("code"),
            operational("title"),
            operational("description"),
            operational("kind"),
            operational("priority"),
            operational("status"),
            operational("scheduled_start"),
            operational("scheduled_end"),
            operational("actual_start"),
            operational("actual_end"),
            operational("paused_at"),
            operational("total_paused_seconds"),
            operational("location").geography(),
            operational("location_description"),
            pseudonymous("delegate_id"),
            pseudonymous("created_by"),
            operational("notes"),
            operational("version"),
            operational("created_at"),
            operational("updated_at"),
            operational("deleted_at"),
        ],
    },
    Table {
        name: "task_assignments",
        purpose: "which officers work on which task",
        subject_rows: Some(
            "officer_id IN (SELECT id FROM officers WHERE user_id = $subject) OR assigned_by = $subject",
        ),
        order_by: "assigned_at, task_id",
        erasure: "kept with pseudonymous references",
        retention: "as the task",
        columns: &[
            operational("task_id"),
            pseudonymous("officer_id"),
            personal("assigned_at"),
            pseudonymous("assigned_by"),
            operational("in_progress"),
        ],
    },
    Table {
        name: "task_status_history",
        purpose: "every transition of a task, with who made it",
        subject_rows: Some("actor_id = $subject"),
        order_by: "at, id",
        erasure: "kept with the actor's id as a pseudonymous reference; identifiers in the reason replaced by [erased]",
        retention: "as the task",
        columns: &[
            operational("id"),
            operational("task_id"),
            operational("from_status"),
            operational("to_status"),
            operational("action"),
            pseudonymous("actor_id"),
            personal("reason"),
            personal("at"),
        ],
    },
    Table {
        name: "telegram_links",
        purpose: "which Telegram chat belongs to which user",
        subject_rows: Some("user_id = $subject"),
        order_by: "linked_at",
        erasure: "deleted",
        retention: "until unlinked or erased",
        columns: &[pseudonymous("user_id"), personal("chat_id"), personal("username"), personal("linked_at")],
    },
    Table {
        name: "telegram_link_codes",
        purpose: "one-time codes that link a chat (10 minutes)",
        subject_rows: Some("user_id = $subject"),
        order_by: "created_at",
        erasure: "deleted",
        retention: "retention.expired_credentials_days after expiry",
        columns: &[
            credential("code"),
            pseudonymous("user_id"),
            operational("created_at"),
            operational("expires_at"),
            operational("used_at"),
        ],
    },
    Table {
        name: "telegram_conversations",
        purpose: "state of a guided bot conversation",
        subject_rows: Some("user_id = $subject"),
        order_by: "updated_at",
        erasure: "deleted",
        retention: "while the conversation lasts",
        columns: &[personal("chat_id"), pseudonymous("user_id"), personal("state"), operational("updated_at")],
    },
    Table {
        name: "telegram_outbox",
        purpose: "Telegram notifications queued for a user (assignment, unassignment, emergency)",
        subject_rows: Some("user_id = $subject"),
        order_by: "id",
        erasure: "deleted",
        retention: "sent, skipped or failed: retention.processed_telegram_updates_days after settling; pending: until unlinked",
        columns: &[
            operational("id"),
            operational("event_seq"),
            pseudonymous("user_id"),
            operational("task_id"),
            operational("kind"),
            personal("task"),
            operational("committed_at"),
            operational("status"),
            operational("attempts"),
            operational("next_attempt_at"),
            operational("claimed_until"),
            operational("last_error"),
            operational("settled_at"),
        ],
    },
    Table {
        name: "telegram_processed_updates",
        purpose: "the inbox of Bot API updates: each stored once, processed once, then kept without payload or chat to recognise redeliveries",
        subject_rows: Some("chat_id IN (SELECT chat_id FROM telegram_links WHERE user_id = $subject)"),
        order_by: "update_id",
        erasure: "pending updates of the subject's chat dropped unprocessed: payload and chat cleared (processed ones hold neither)",
        retention: "retention.processed_telegram_updates_days (default 7) after processing, or after receipt when never processed",
        columns: &[
            operational("update_id"),
            operational("processed_at"),
            operational("received_at"),
            personal("chat_id"),
            personal("payload"),
            operational("lease_owner"),
            operational("lease_until"),
            operational("attempts"),
        ],
    },
    Table {
        name: "audit_events",
        purpose: "append-only log of authentication events and writes (security, accountability)",
        subject_rows: Some(
            "actor_id = $subject OR (resource_type IN ('user', 'consent') AND resource_id = $subject) \
             OR (resource_type = 'officer' AND resource_id IN (SELECT id FROM officers WHERE user_id = $subject))",
        ),
        order_by: "at, id",
        erasure: "kept with pseudonymous references; the subject's IP addresses and user agents cleared",
        retention: "retention.audit_days (default 365)",
        columns: &[
            operational("id"),
            operational("at"),
            pseudonymous("actor_id"),
            personal("actor_role"),
            operational("action"),
            operational("resource_type"),
            pseudonymous("resource_id"),
            operational("outcome"),
            operational("request_id"),
            personal("ip"),
            personal("user_agent"),
            operational("details"),
        ],
    },
    Table {
        name: "event_log",
        purpose: "outbox of changes for WebSocket delivery, replay and notifications",
        subject_rows: Some(
            "actor_id = $subject OR $subject = ANY (audience) \
             OR officer_id IN (SELECT id FROM officers WHERE user_id = $subject)",
        ),
        order_by: "created_at, id",
        erasure: "the subject's officer events lose their payload (position, badge) and keep only the officer id; in the events of the subject's tasks the subject's identifiers are replaced by [erased]",
        retention: "retention.event_log_days (default 7), never before every consumer has read it",
        columns: &[
            operational("seq"),
            operational("id"),
            operational("event_type"),
            operational("task_id"),
            pseudonymous("officer_id"),
            pseudonymous("audience"),
            pseudonymous("actor_id"),
            operational("request_id"),
            personal("payload"),
            operational("created_at"),
        ],
    },
    Table {
        name: "event_log_head",
        purpose: "the last number given to an event",
        subject_rows: None,
        order_by: "singleton",
        erasure: "nothing about any person",
        retention: "one row, always",
        columns: &[operational("singleton"), operational("last_seq")],
    },
    Table {
        name: "event_consumers",
        purpose: "how far each consumer of the event log has read",
        subject_rows: None,
        order_by: "name",
        erasure: "nothing about any person",
        retention: "one row per consumer",
        columns: &[operational("name"), operational("last_seq"), operational("updated_at")],
    },
    Table {
        name: "refresh_token_families",
        purpose: "login sessions (rotating refresh tokens)",
        subject_rows: Some("user_id = $subject"),
        order_by: "created_at, id",
        erasure: "deleted with their tokens",
        retention: "retention.expired_credentials_days after the last token expired",
        columns: &[
            operational("id"),
            pseudonymous("user_id"),
            personal("created_at"),
            operational("revoked_at"),
            operational("revoke_reason"),
        ],
    },
    Table {
        name: "refresh_tokens",
        purpose: "hashes of refresh tokens",
        subject_rows: Some("family_id IN (SELECT id FROM refresh_token_families WHERE user_id = $subject)"),
        order_by: "created_at, id",
        erasure: "deleted",
        retention: "retention.expired_credentials_days after expiry",
        columns: &[
            operational("id"),
            operational("family_id"),
            credential("token_hash"),
            operational("created_at"),
            operational("expires_at"),
            operational("used_at"),
        ],
    },
    Table {
        name: "revoked_access_tokens",
        purpose: "access tokens revoked before their expiry (denylist)",
        subject_rows: Some("user_id = $subject"),
        order_by: "revoked_at, jti",
        erasure: "kept until expiry (pseudonymous; needed to keep the tokens refused)",
        retention: "retention.expired_credentials_days after expiry",
        columns: &[operational("jti"), pseudonymous("user_id"), operational("expires_at"), operational("revoked_at")],
    },
    Table {
        name: "ws_tickets",
        purpose: "one-time WebSocket tickets (30 seconds)",
        subject_rows: Some("user_id = $subject"),
        order_by: "created_at",
        erasure: "deleted",
        retention: "retention.expired_credentials_days after expiry",
        columns: &[
            credential("ticket_hash"),
            pseudonymous("user_id"),
            operational("created_at"),
            operational("expires_at"),
            operational("used_at"),
            personal("role"),
            operational("token_jti"),
            operational("session_id"),
            operational("token_issued_at"),
            operational("token_expires_at"),
        ],
    },
    Table {
        name: "idempotency_keys",
        purpose: "stored responses for Idempotency-Key (24 hours)",
        subject_rows: Some("owner_id = $subject"),
        order_by: "created_at, key",
        erasure: "deleted: the subject's own, and any stored response that mentions the subject's identifiers",
        retention: "retention.expired_credentials_days after expiry",
        columns: &[
            pseudonymous("owner_id"),
            operational("scope"),
            operational("key"),
            credential("request_hash"),
            operational("response_status"),
            operational("response_headers"),
            operational("response_body"),
            operational("created_at"),
            operational("expires_at"),
        ],
    },
    Table {
        name: "__diesel_schema_migrations",
        purpose: "which migrations ran",
        subject_rows: None,
        order_by: "version",
        erasure: "nothing about any person",
        retention: "always",
        columns: &[operational("version"), operational("run_on")],
    },
];

/// The rows of `table` about `subject`, as an SQL condition.
pub fn subject_condition(table: &Table, subject: uuid::Uuid) -> Option<String> {
    table.subject_rows.map(|condition| condition.replace("$subject", &format!("'{subject}'::uuid")))
}

/// The data map as the Markdown tables of `docs/GDPR_DATA_MAPPING.md`.
pub fn render_markdown() -> String {
    let mut out = String::new();
    for table in DATA_MAP {
        out.push_str(&format!("### `{}`\n\n{}.\n\n", table.name, table.purpose));
        out.push_str(&format!(
            "- Rows about a subject: {}\n",
            match table.subject_rows {
                Some(condition) => format!("`{}`", condition.split_whitespace().collect::<Vec<_>>().join(" ")),
                None => "none".into(),
            }
        ));
        out.push_str(&format!("- Erasure: {}\n- Retention: {}\n\n", table.erasure, table.retention));
        out.push_str("| column | class |\n|---|---|\n");
        for column in table.columns {
            out.push_str(&format!("| `{}` | {} |\n", column.name, column.class.as_str()));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn tables_and_columns_are_named_once() {
        let mut tables: Vec<_> = DATA_MAP.iter().map(|table| table.name).collect();
        tables.sort_unstable();
        tables.dedup();
        assert_eq!(tables.len(), DATA_MAP.len());
        for table in DATA_MAP {
            let mut columns: Vec<_> = table.columns.iter().map(|column| column.name).collect();
            columns.sort_unstable();
            columns.dedup();
            assert_eq!(columns.len(), table.columns.len(), "{}", table.name);
        }
    }

    #[test]
    fn every_table_with_personal_data_says_which_rows_are_the_subjects() {
        for table in DATA_MAP {
            let personal = table.columns.iter().any(|column| column.class == Class::Personal);
            assert!(!personal || table.subject_rows.is_some(), "{} holds personal data", table.name);
        }
    }

    const BEGIN: &str = "<!-- data-map:begin (generated by `just data-map`) -->\n";
    const END: &str = "<!-- data-map:end -->";

    /// With `GAD_UPDATE_DATA_MAP` set (`just data-map`), rewrites the document's tables instead.
    #[test]
    fn the_documented_map_is_the_map_in_code() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/GDPR_DATA_MAPPING.md");
        let document = std::fs::read_to_string(&path).unwrap();
        let (head, rest) = document.split_once(BEGIN).expect("the document marks where the tables begin");
        let (current, tail) = rest.split_once(END).expect("the document marks where the tables end");
        let generated = render_markdown();
        if std::env::var_os("GAD_UPDATE_DATA_MAP").is_some() {
            std::fs::write(&path, format!("{head}{BEGIN}{generated}{END}{tail}")).unwrap();
        } else {
            assert_eq!(current, generated, "docs/GDPR_DATA_MAPPING.md is out of date: run `just data-map`");
        }
    }
}
