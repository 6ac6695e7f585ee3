//! `/api/v1/users` (SPEC §3): listing, creation, reading, rectification (PATCH and PUT) and
//! deactivation. Input is parsed into the domain's validated types with field-level errors.

use actix_web::http::{StatusCode, header};
use actix_web::web::Query;
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, put, web};
use gad_domain::users::policy::may_administer_users;
use gad_domain::users::{
    CreateUser, CreateUserError, EmailAddress, InvalidValue, ListUsersError, NationalId, Password, PasswordChange,
    PersonName, PhoneNumber, ProfileChanges, Role, UpdateUserError, User, UserChanges, UserId, UserQuery, create_user,
    list_users, read_user, update_user,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::{Principal, request_context};
use crate::error::{ApiError, ErrorBody, FieldError};
use crate::extract::Json;
use crate::pagination::PageRequest;
use crate::state::Services;
use crate::validation::{Fields, present};

/// A user (SPEC §3). Times are RFC 3339 in UTC.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserView {
    id: Uuid,
    email: String,
    first_name: String,
    last_name: String,
    national_id: Option<String>,
    phone: Option<String>,
    #[schema(value_type = String, example = "operator")]
    role: Role,
    is_active: bool,
    telegram_linked: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    last_login_at: Option<OffsetDateTime>,
}

impl From<User> for UserView {
    fn from(user: User) -> Self {
        Self {
            id: user.id.as_uuid(),
            email: user.email,
            first_name: user.first_name,
            last_name: user.last_name,
            national_id: user.national_id,
            phone: user.phone,
            role: user.role,
            is_active: user.is_active,
            telegram_linked: user.telegram_linked,
            created_at: user.created_at,
            updated_at: user.updated_at,
            last_login_at: user.last_login_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserPage {
    items: Vec<UserView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub(crate) struct UserListQuery {
    /// `admin`, `supervisor`, `operator` or `officer`.
    role: Option<String>,
    /// `true` or `false`.
    is_active: Option<String>,
    /// Part of the e-mail or a name, case-insensitive.
    q: Option<String>,
    /// 1..=200, default 50.
    limit: Option<i64>,
    cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateUserRequest {
    email: String,
    /// 12..=128 characters.
    password: String,
    first_name: String,
    last_name: String,
    national_id: Option<String>,
    /// E.164, e.g. `+34600111222`.
    phone: Option<String>,
    #[schema(example = "operator")]
    role: String,
}

/// Partial change: absent fields stay as they are; `null` clears `national_id` or `phone`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PatchUserRequest {
    email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    national_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    phone: Option<Option<String>>,
    /// Admins only.
    role: Option<String>,
    /// Admins only.
    is_active: Option<bool>,
    password: Option<String>,
    /// Required to change one's own password.
    current_password: Option<String>,
}

/// Full replacement of the profile: absent `national_id` or `phone` are cleared.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PutUserRequest {
    email: String,
    first_name: String,
    last_name: String,
    national_id: Option<String>,
    phone: Option<String>,
    /// Admins only.
    role: Option<String>,
    /// Admins only.
    is_active: Option<bool>,
    password: Option<String>,
    current_password: Option<String>,
}

fn parse_role(raw: &str) -> Result<Role, InvalidValue> {
    raw.parse()
}

fn create_error(error: CreateUserError) -> ApiError {
    match error {
        CreateUserError::Forbidden => ApiError::forbidden(),
        CreateUserError::Duplicate(field) => ApiError::duplicate(field),
        CreateUserError::Store(error) => error.into(),
    }
}

fn update_error(error: UpdateUserError) -> ApiError {
    let current_password = |message: &str| {
        ApiError::validation(vec![FieldError { field: "current_password".into(), message: message.into() }])
    };
    match error {
        UpdateUserError::NotFound => ApiError::not_found(),
        UpdateUserError::Forbidden => ApiError::forbidden(),
        UpdateUserError::Duplicate(field) => ApiError::duplicate(field),
        UpdateUserError::CurrentPasswordRequired => current_password("is required to change your own password"),
        UpdateUserError::WrongCurrentPassword => current_password("is incorrect"),
        UpdateUserError::LastActiveAdmin => ApiError::new(StatusCode::CONFLICT, "conflict", error.to_string()),
        UpdateUserError::Store(error) => error.into(),
    }
}

/// List users (admins and supervisors), newest first.
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    params(UserListQuery),
    responses(
        (status = 200, description = "a page of users", body = UserPage),
        (status = 401, description = "not authenticated", body = ErrorBody),
        (status = 403, description = "operators and officers may not list users", body = ErrorBody),
        (status = 422, description = "a bad filter, limit or cursor", body = ErrorBody),
    )
)]
#[get("/api/v1/users")]
pub(crate) async fn list_users_route(
    principal: Principal,
    query: Query<UserListQuery>,
    services: web::Data<Services>,
) -> Result<web::Json<UserPage>, ApiError> {
    let mut fields = Fields::default();
    let role = fields.optional("role", query.role.as_deref(), parse_role);
    let is_active = match query.is_active.as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => fields.check("is_active", Err(InvalidValue("must be true or false"))),
    };
    let page =
        PageRequest::parse(query.limit, query.cursor.as_deref()).map_err(|details| fields.0.extend(details)).ok();
    let q = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty()).map(str::to_owned);
    if query.q.as_deref().is_some_and(|q| q.chars().count() > 100) {
        fields.push("q", "must be at most 100 characters");
    }
    let page = fields.finish_with(|| page)?;
    let request = UserQuery { role, is_active, q, before: page.after.map(UserId::from_uuid), limit: page.limit + 1 };
    let users = list_users(&*services.users, principal.actor(), &request).await.map_err(|error| match error {
        ListUsersError::Forbidden => ApiError::forbidden(),
        ListUsersError::Store(error) => error.into(),
    })?;
    let (users, next_cursor) = page.page(users, |user| user.id.as_uuid());
    Ok(web::Json(UserPage { items: users.into_iter().map(UserView::from).collect(), next_cursor }))
}

/// Create a user (admins).
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    request_body = CreateUserRequest,
    responses(
        (status = 201, description = "created; `Location` names it", body = UserView),
        (status = 401, description = "not authenticated", body = ErrorBody),
        (status = 403, description = "only admins create users", body = ErrorBody),
        (status = 409, description = "`duplicate` e-mail or national id", body = ErrorBody),
        (status = 422, description = "invalid fields", body = ErrorBody),
    )
)]
#[post("/api/v1/users")]
pub(crate) async fn create_user_route(
    req: HttpRequest,
    principal: Principal,
    body: Json<CreateUserRequest>,
    services: web::Data<Services>,
) -> Result<HttpResponse, ApiError> {
    // The caller's right comes before the body's faults: a non-admin learns nothing more.
    if !may_administer_users(principal.actor()) {
        return Err(ApiError::forbidden());
    }
    let body = body.into_inner();
    let mut fields = Fields::default();
    let email = fields.check("email", EmailAddress::parse(&body.email));
    let password = fields.check("password", Password::parse(body.password));
    let first_name = fields.check("first_name", PersonName::parse(&body.first_name));
    let last_name = fields.check("last_name", PersonName::parse(&body.last_name));
    let national_id = fields.optional("national_id", body.national_id.as_deref(), NationalId::parse);
    let phone = fields.optional("phone", body.phone.as_deref(), PhoneNumber::parse);
    let role = fields.check("role", parse_role(&body.role));
    let request = fields.finish_with(|| {
        Some(CreateUser {
            email: email?,
            first_name: first_name?,
            last_name: last_name?,
            national_id,
            phone,
            role: role?,
            password: password?,
        })
    })?;
    let user =
        create_user(&*services.users, &*services.hasher, Some(principal.actor()), request, request_context(&req))
            .await
            .map_err(create_error)?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/users/{}", user.id)))
        .json(UserView::from(user)))
}

/// Read a user: admins and supervisors any, others themselves (anyone else is 404 to them).
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "user id")),
    responses(
        (status = 200, description = "the user", body = UserView),
        (status = 401, description = "not authenticated", body = ErrorBody),
        (status = 403, description = "the caller's role may not read another user", body = ErrorBody),
        (status = 404, description = "no such user", body = ErrorBody),
    )
)]
#[get("/api/v1/users/{id}")]
pub(crate) async fn get_user(
    principal: Principal,
    id: web::Path<Uuid>,
    services: web::Data<Services>,
) -> Result<web::Json<UserView>, ApiError> {
    let user = read_user(&*services.users, principal.actor(), UserId::from_uuid(*id)).await?;
    Ok(web::Json(UserView::from(user)))
}

async fn apply(
    req: &HttpRequest,
    principal: Principal,
    id: Uuid,
    changes: UserChanges,
    services: &Services,
) -> Result<User, ApiError> {
    let (user, revocation) = update_user(
        &*services.users,
        &*services.hasher,
        principal.actor(),
        UserId::from_uuid(id),
        changes,
        request_context(req),
    )
    .await
    .map_err(update_error)?;
    if let Some(revocation) = revocation {
        services.revocations.announce(revocation).await;
    }
    Ok(user)
}

fn password_change(fields: &mut Fields, password: Option<String>, current: Option<String>) -> Option<PasswordChange> {
    let new = password.and_then(|raw| fields.check("password", Password::parse(raw)))?;
    Some(PasswordChange { new, current })
}

/// Change some fields of a user. Subjects edit their own profile (names, phone, e-mail,
/// password with `current_password`); only admins change `role` or `is_active`, which revokes
/// the user's tokens at once.
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "user id")),
    request_body = PatchUserRequest,
    responses(
        (status = 200, description = "the updated user", body = UserView),
        (status = 401, description = "not authenticated", body = ErrorBody),
        (status = 403, description = "visible but not editable by the caller, or an admin-only field", body = ErrorBody),
        (status = 404, description = "no such user", body = ErrorBody),
        (status = 409, description = "`duplicate` e-mail or national id, or `conflict`: the last active administrator cannot take another role or be deactivated", body = ErrorBody),
        (status = 422, description = "invalid fields", body = ErrorBody),
    )
)]
#[patch("/api/v1/users/{id}")]
pub(crate) async fn patch_user(
    req: HttpRequest,
    principal: Principal,
    id: web::Path<Uuid>,
    body: Json<PatchUserRequest>,
    services: web::Data<Services>,
) -> Result<web::Json<UserView>, ApiError> {
    let changes = parse_changes(body.into_inner())?;
    Ok(web::Json(UserView::from(apply(&req, principal, *id, changes, &services).await?)))
}

/// Parses a partial change into validated values, naming every bad field at once.
fn parse_changes(body: PatchUserRequest) -> Result<UserChanges, ApiError> {
    let mut fields = Fields::default();
    let profile = ProfileChanges {
        email: fields.optional("email", body.email.as_deref(), EmailAddress::parse),
        first_name: fields.optional("first_name", body.first_name.as_deref(), PersonName::parse),
        last_name: fields.optional("last_name", body.last_name.as_deref(), PersonName::parse),
        national_id: body.national_id.map(|value| fields.optional("national_id", value.as_deref(), NationalId::parse)),
        phone: body.phone.map(|value| fields.optional("phone", value.as_deref(), PhoneNumber::parse)),
        role: fields.optional("role", body.role.as_deref(), parse_role),
        is_active: body.is_active,
    };
    let password = password_change(&mut fields, body.password, body.current_password);
    fields.finish_with(|| Some(UserChanges { profile, password }))
}

/// A replacement is a change of every profile field: absent optional ones are cleared.
impl From<PutUserRequest> for PatchUserRequest {
    fn from(put: PutUserRequest) -> Self {
        Self {
            email: Some(put.email),
            first_name: Some(put.first_name),
            last_name: Some(put.last_name),
            national_id: Some(put.national_id),
            phone: Some(put.phone),
            role: put.role,
            is_active: put.is_active,
            password: put.password,
            current_password: put.current_password,
        }
    }
}

/// Replace a user's profile (rectification); the same rules as PATCH.
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "user id")),
    request_body = PutUserRequest,
    responses(
        (status = 200, description = "the updated user", body = UserView),
        (status = 401, description = "not authenticated", body = ErrorBody),
        (status = 403, description = "visible but not editable by the caller, or an admin-only field", body = ErrorBody),
        (status = 404, description = "no such user", body = ErrorBody),
        (status = 409, description = "`duplicate` e-mail or national id, or `conflict`: the last active administrator cannot take another role or be deactivated", body = ErrorBody),
        (status = 422, description = "invalid fields", body = ErrorBody),
    )
)]
#[put("/api/v1/users/{id}")]
pub(crate) async fn put_user(
    req: HttpRequest,
    principal: Principal,
    id: web::Path<Uuid>,
    body: Json<PutUserRequest>,
    services: web::Data<Services>,
) -> Result<web::Json<UserView>, ApiError> {
    let changes = parse_changes(PatchUserRequest::from(body.into_inner()))?;
    Ok(web::Json(UserView::from(apply(&req, principal, *id, changes, &services).await?)))
}

/// Deactivate a user (admins): the account can no longer log in and its tokens stop working.
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "user id")),
    responses(
        (status = 204, description = "deactivated"),
        (status = 401, description = "not authenticated", body = ErrorBody),
        (status = 403, description = "only admins deactivate users", body = ErrorBody),
        (status = 404, description = "no such user", body = ErrorBody),
        (status = 409, description = "`conflict`: the last active administrator cannot be deactivated", body = ErrorBody),
    )
)]
#[delete("/api/v1/users/{id}")]
pub(crate) async fn delete_user(
    req: HttpRequest,
    principal: Principal,
    id: web::Path<Uuid>,
    services: web::Data<Services>,
) -> Result<HttpResponse, ApiError> {
    let changes =
        UserChanges { profile: ProfileChanges { is_active: Some(false), ..ProfileChanges::default() }, password: None };
    apply(&req, principal, *id, changes, &services).await?;
    Ok(HttpResponse::NoContent().finish())
}
