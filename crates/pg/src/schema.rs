// @generated automatically by Diesel CLI.

pub mod sql_types {
    #[derive(diesel::query_builder::QueryId, Clone, std::fmt::Debug, diesel::sql_types::SqlType)]
    #[diesel(postgres_type(name = "audit_outcome"))]
    pub struct AuditOutcome;

    #[derive(diesel::query_builder::QueryId, Clone, std::fmt::Debug, diesel::sql_types::SqlType)]
    #[diesel(postgres_type(name = "consent_type"))]
    pub struct ConsentType;

    #[derive(diesel::query_builder::QueryId, Clone, std::fmt::Debug, diesel::sql_types::SqlType)]
    #[diesel(postgres_type(name = "officer_availability"))]
    pub struct OfficerAvailability;

    #[derive(diesel::query_builder::QueryId, Clone, std::fmt::Debug, diesel::sql_types::SqlType)]
    #[diesel(postgres_type(name = "task_action"))]
    pub struct TaskAction;

    #[derive(diesel::query_builder::QueryId, Clone, std::fmt::Debug, diesel::sql_types::SqlType)]
    #[diesel(postgres_type(name = "task_kind"))]
    pub struct TaskKind;

    #[derive(diesel::query_builder::QueryId, Clone, std::fmt::Debug, diesel::sql_types::SqlType)]
    #[diesel(postgres_type(name = "task_priority"))]
    pub struct TaskPriority;

    #[derive(diesel::query_builder::QueryId, Clone, std::fmt::Debug, diesel::sql_types::SqlType)]
    #[diesel(postgres_type(name = "task_status"))]
    pub struct TaskStatus;

    #[derive(diesel::query_builder::QueryId, Clone, std::fmt::Debug, diesel::sql_types::SqlType)]
    #[diesel(postgres_type(name = "user_role"))]
    pub struct UserRole;
}

diesel::table! {
    use diesel::sql_types::*;
    use postgis_diesel::sql_types::*;
    use super::sql_types::UserRole;
    use super::sql_types::AuditOutcome;

    audit_events (id) {
        id -> Uuid,
        at -> Timestamptz,
        actor_id -> Nullable<Uuid>,
        actor_role -> Nullable<UserRole>,
        action -> Text,
        resource_type -> Text,
        resource_id -> Nullable<Uuid>,
        outcome -> AuditOutcome,
        request_id -> Nullable<Text>,
        ip -> Nullable<Inet>,
        user_agent -> Nullable<Text>,
        details -> Jsonb,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use postgis_diesel::sql_types::*;
    use super::sql_types::ConsentType;

    consents (id) {
        id -> Uuid,
        user_id -> Uuid,
        consent_type -> ConsentType,
        granted -> Bool,
        policy_version -> Text,
        channel -> Text,
        user_agent -> Nullable<Text>,
        ip -> Nullable<Inet>,
        recorded_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use postgis_diesel::sql_types::*;

    event_consumers (name) {
        name -> Text,
        last_seq -> Int8,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use postgis_diesel::sql_types::*;

    event_log (id) {
        seq -> Nullable<Int8>,
        id -> Uuid,
        event_type -> Text,
        task_id -> Nullable<Uuid>,
        officer_id -> Nullable<Uuid>,
        audience -> Array<Nullable<Uuid>>,
        actor_id -> Nullable<Uuid>,
        request_id -> Nullable<Text>,
        payload -> Jsonb,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use postgis_diesel::sql_types::*;

    event_log_head (singleton) {
        singleton -> Bool,
        last_seq -> Int8,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use postgis_diesel::sql_types::*;

    idempotency_keys (owner_id, scope, key) {
        owner_id -> Uuid,
        scope -> Text,
        key -> Text,
        request_hash -> Bytea,
        response_status -> Nullable<Int2>,
        response_headers -> Nullable<Jsonb>,
        response_body -> Nullable<Bytea>,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use postgis_diesel::sql_types::*;

    officer_locations (id) {
        id -> Int8,
        officer_id -> Uuid,
        location -> Geography,
        accuracy_m -> Nullable<Float8>,
        recorded_at -> Timestamptz,
        received_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use postgis_diesel::sql_types::*;
    use super::sql_types::OfficerAvailability;

    officers (id) {
        id -> Uuid,
        user_id -> Uuid,
        badge_number -> Text,
        rank -> Nullable<Text>,
        unit -> Nullable<Text>,
        specialty -> Nullable<Text>,
        availability -> OfficerAvailability,
        location -> Nullable<Geography>,
        location_accuracy_m -> Nullable<Float8>,
        location_updated_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use postgis_diesel::sql_types::*;

    refresh_token_families (id) {
        id -> Uuid,
        user_id -> Uuid,
        created_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
        revoke_reason -> Nullable<Text>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use postgis_diesel::sql_types::*;

    refresh_tokens (id) {
        id -> Uuid,
        family_id -> Uuid,
        token_hash -> Bytea,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use postgis_diesel::sql_types::*;

    revoked_access_tokens (jti) {
        jti -> Uuid,
        user_id -> Uuid,
        expires_at -> Timestamptz,
        revoked_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use postgis_diesel::sql_types::*;

    task_assignments (task_id, officer_id) {
        task_id -> Uuid,
        officer_id -> Uuid,
        assigned_at -> Timestamptz,
        assigned_by -> Nullable<Uuid>,
        in_progress -> Bool,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use postgis_diesel::sql_types::*;
    use super::sql_types::TaskStatus;
    use super::sql_types::TaskAction;

    task_status_history (id) {
        id -> Int8,
        task_id -> Uuid,
        from_status -> TaskStatus,
        to_status -> TaskStatus,
        action -> TaskAction,
        actor_id -> Nullable<Uuid>,
        reason -> Nullable<Text>,
        at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use postgis_diesel::sql_types::*;
    use super::sql_types::TaskKind;
    use super::sql_types::TaskPriority;
    use super::sql_types::TaskStatus;

    tasks (id) {
        id -> Uuid,
        code -> Text,
        title -> Text,
        description -> Nullable<Text>,
        kind -> TaskKind,
        priority -> TaskPriority,
        status -> TaskStatus,
        scheduled_start -> Timestamptz,
        scheduled_end -> Nullable<Timestamptz>,
        actual_start -> Nullable<Timestamptz>,
        actual_end -> Nullable<Timestamptz>,
        paused_at -> Nullable<Timestamptz>,
        total_paused_seconds -> Int8,
        location -> Nullable<Geography>,
        location_description -> Nullable<Text>,
        delegate_id -> Uuid,
        created_by -> Uuid,
        notes -> Nullable<Text>,
        version -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use postgis_diesel::sql_types::*;

    telegram_conversations (chat_id) {
        chat_id -> Int8,
        user_id -> Uuid,
        state -> Jsonb,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use postgis_diesel::sql_types::*;

    telegram_link_codes (code) {
        code -> Text,
        user_id -> Uuid,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use postgis_diesel::sql_types::*;

    telegram_links (user_id) {
        user_id -> Uuid,
        chat_id -> Int8,
        username -> Nullable<Text>,
        linked_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use postgis_diesel::sql_types::*;

    telegram_outbox (id) {
        id -> Int8,
        event_seq -> Int8,
        user_id -> Uuid,
        task_id -> Uuid,
        kind -> Text,
        task -> Jsonb,
        committed_at -> Timestamptz,
        status -> Text,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        claimed_until -> Nullable<Timestamptz>,
        last_error -> Nullable<Text>,
        settled_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use postgis_diesel::sql_types::*;

    telegram_processed_updates (update_id) {
        update_id -> Int8,
        processed_at -> Nullable<Timestamptz>,
        received_at -> Timestamptz,
        chat_id -> Nullable<Int8>,
        payload -> Nullable<Text>,
        lease_owner -> Nullable<Uuid>,
        lease_until -> Nullable<Timestamptz>,
        attempts -> Int4,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use postgis_diesel::sql_types::*;
    use super::sql_types::UserRole;

    users (id) {
        id -> Uuid,
        email -> Text,
        password_hash -> Text,
        first_name -> Text,
        last_name -> Text,
        national_id -> Nullable<Text>,
        phone -> Nullable<Text>,
        role -> UserRole,
        is_active -> Bool,
        failed_login_attempts -> Int4,
        locked_until -> Nullable<Timestamptz>,
        last_login_at -> Nullable<Timestamptz>,
        tokens_valid_after -> Nullable<Timestamptz>,
        erased_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use postgis_diesel::sql_types::*;
    use super::sql_types::UserRole;

    ws_tickets (ticket_hash) {
        ticket_hash -> Bytea,
        user_id -> Uuid,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
        role -> UserRole,
        token_jti -> Uuid,
        session_id -> Uuid,
        token_issued_at -> Timestamptz,
        token_expires_at -> Timestamptz,
    }
}

diesel::joinable!(audit_events -> users (actor_id));
diesel::joinable!(consents -> users (user_id));
diesel::joinable!(idempotency_keys -> users (owner_id));
diesel::joinable!(officer_locations -> officers (officer_id));
diesel::joinable!(officers -> users (user_id));
diesel::joinable!(refresh_token_families -> users (user_id));
diesel::joinable!(refresh_tokens -> refresh_token_families (family_id));
diesel::joinable!(revoked_access_tokens -> users (user_id));
diesel::joinable!(task_assignments -> officers (officer_id));
diesel::joinable!(task_assignments -> tasks (task_id));
diesel::joinable!(task_assignments -> users (assigned_by));
diesel::joinable!(task_status_history -> tasks (task_id));
diesel::joinable!(task_status_history -> users (actor_id));
diesel::joinable!(telegram_conversations -> users (user_id));
diesel::joinable!(telegram_link_codes -> users (user_id));
diesel::joinable!(telegram_links -> users (user_id));
diesel::joinable!(telegram_outbox -> users (user_id));
diesel::joinable!(ws_tickets -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    audit_events,
    consents,
    event_consumers,
    event_log,
    event_log_head,
    idempotency_keys,
    officer_locations,
    officers,
    refresh_token_families,
    refresh_tokens,
    revoked_access_tokens,
    task_assignments,
    task_status_history,
    tasks,
    telegram_conversations,
    telegram_link_codes,
    telegram_links,
    telegram_outbox,
    telegram_processed_updates,
    users,
    ws_tickets,
);
