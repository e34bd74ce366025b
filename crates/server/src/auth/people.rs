//! The owner's people endpoints: the shop's users, beside the admin CLI.
//!
//! - `GET /counterbook/v1/shops/{shop}/people` → `{"people": [person, …]}` by email;
//! - `POST /counterbook/v1/shops/{shop}/people` `{email, password, displayName, role}` adds a
//!   cashier or a manager → the person;
//! - `PATCH /counterbook/v1/shops/{shop}/people/{userId}` with any of `{role, disabled,
//!   displayName, password}` → the person as changed.
//!
//! A person is `{userId, email, displayName, role, disabled, createdAt}`. Only the owner of
//! `{shop}` may call these (the same rule as the policy's owner-only documents): no token or a
//! bad one is 401 `UNAUTHENTICATED`, a manager or cashier of the shop, or anyone of another
//! shop, 403 `PERMISSION_DENIED` (another shop's people are never shown). A user of another
//! shop named in a `PATCH` is 404, as if absent. Owners are changed with the CLI only: the
//! owner cannot demote or disable an owner, themself included (400 `FAILED_PRECONDITION`).
//!
//! Disabling revokes the user's refresh tokens and is seen at once by this server's token
//! checks (`AuthState::forget_account_state`): their ID tokens are refused from the next
//! request and their Listen sessions end within seconds. A role change likewise refuses the
//! tokens that claim the old role; the client's refresh gives one with the new role.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, patch};
use axum::{Json, Router};
use counterbook_firestore_wire::Timestamp;
use serde::Deserialize;
use serde_json::{json, Value};

use super::accounts::{is_valid_email, normalize_email, AccountsError, UserChanges, UserRecord};
use super::password_checks::PasswordCheckError;
use super::passwords::{hash_password, MINIMUM_PASSWORD_LENGTH};
use super::policy::{Principal, Role};
use super::AuthState;
use crate::error::ServerError;
use crate::AppState;

pub const PEOPLE_PATH: &str = "/counterbook/v1/shops/{shop}/people";
pub const PERSON_PATH: &str = "/counterbook/v1/shops/{shop}/people/{user}";

/// People bodies are small; anything bigger is not one.
const MAX_PEOPLE_BODY_BYTES: usize = 64 * 1024;
const MAX_DISPLAY_NAME_CHARACTERS: usize = 200;

/// The routes of the people endpoints.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(PEOPLE_PATH, get(list_people).post(add_person))
        .route(PERSON_PATH, patch(change_person))
}

/// The caller, if they are the owner of `shop`.
fn owner_of(
    state: &AppState,
    headers: &HeaderMap,
    shop: &str,
) -> Result<(Arc<AuthState>, Principal), ServerError> {
    let Some(auth) = state.auth().cloned() else {
        return Err(ServerError::FailedPrecondition(
            "counterbook-server runs with --dev: there are no accounts".into(),
        ));
    };
    let principal = auth.authenticate(headers)?;
    if principal.shop != shop || principal.role != Role::Owner {
        return Err(ServerError::PermissionDenied(
            "Missing or insufficient permissions: only the shop's owner manages its people".into(),
        ));
    }
    Ok((auth, principal))
}

fn person_json(user: &UserRecord) -> Value {
    json!({
        "userId": user.user_id,
        "email": user.email,
        "displayName": user.display_name,
        "role": user.role.as_str(),
        "disabled": user.disabled,
        "createdAt": Timestamp::from_unix_micros(user.created_at_seconds.saturating_mul(1_000_000)).to_string(),
    })
}

fn accounts_failed(error: AccountsError) -> ServerError {
    match error {
        AccountsError::DuplicateEmail(_) => {
            ServerError::AlreadyExists("A user with this email already exists.".into())
        }
        AccountsError::InvalidEmail(_) => invalid("email", "an email address"),
        AccountsError::UnknownUser(_) | AccountsError::UnknownShop(_) => {
            ServerError::NotFound("No such person in this shop.".into())
        }
        other => ServerError::Unavailable(format!("cannot read or change the accounts: {other}")),
    }
}

fn invalid(field: &str, why: &str) -> ServerError {
    ServerError::InvalidArgument(format!("Invalid value at '{field}': {why}"))
}

/// Runs accounts work on the blocking pool.
async fn with_accounts<T: Send + 'static>(
    auth: &AuthState,
    work: impl FnOnce(&super::accounts::Accounts) -> Result<T, AccountsError> + Send + 'static,
) -> Result<T, ServerError> {
    let accounts = Arc::clone(&auth.accounts);
    tokio::task::spawn_blocking(move || work(&accounts))
        .await
        .map_err(|error| ServerError::StorageTaskFailed(error.to_string()))?
        .map_err(accounts_failed)
}

/// Hashes a new password on the password-check threads.
async fn hashed(auth: &AuthState, password: String) -> Result<String, ServerError> {
    if password.chars().count() < MINIMUM_PASSWORD_LENGTH {
        return Err(invalid(
            "password",
            &format!("at least {MINIMUM_PASSWORD_LENGTH} characters"),
        ));
    }
    match auth
        .password_checks
        .run(move || hash_password(&password))
        .await
    {
        Ok(Ok(hash)) => Ok(hash),
        Ok(Err(error)) => Err(ServerError::AuthSetup(format!(
            "cannot hash the password: {error}"
        ))),
        Err(PasswordCheckError::Busy) => Err(ServerError::Unavailable(
            "The server is checking too many passwords at once; try again.".into(),
        )),
        Err(error @ PasswordCheckError::Failed) => {
            Err(ServerError::StorageTaskFailed(error.to_string()))
        }
    }
}

fn parse_body<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, ServerError> {
    if bytes.len() > MAX_PEOPLE_BODY_BYTES {
        return Err(ServerError::PayloadTooLarge {
            limit_bytes: MAX_PEOPLE_BODY_BYTES,
        });
    }
    serde_json::from_slice(bytes).map_err(ServerError::MalformedBody)
}

fn checked_display_name(display_name: &str) -> Result<String, ServerError> {
    let display_name = display_name.trim();
    if display_name.chars().count() > MAX_DISPLAY_NAME_CHARACTERS {
        return Err(invalid(
            "displayName",
            &format!("at most {MAX_DISPLAY_NAME_CHARACTERS} characters"),
        ));
    }
    Ok(display_name.to_owned())
}

/// A role the owner may give: cashier or manager (owners are made with the CLI).
fn checked_role(role: &str) -> Result<Role, ServerError> {
    match Role::parse(role) {
        Some(role @ (Role::Cashier | Role::Manager)) => Ok(role),
        _ => Err(invalid("role", "cashier or manager")),
    }
}

async fn list_people(
    State(state): State<AppState>,
    Path(shop): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ServerError> {
    let (auth, _) = owner_of(&state, &headers, &shop)?;
    let people = with_accounts(&auth, move |accounts| accounts.users_of_shop(&shop)).await?;
    Ok(Json(
        json!({"people": people.iter().map(person_json).collect::<Vec<_>>()}),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AddPersonRequest {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    role: String,
}

async fn add_person(
    State(state): State<AppState>,
    Path(shop): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ServerError> {
    let (auth, _) = owner_of(&state, &headers, &shop)?;
    let request: AddPersonRequest = parse_body(&body)?;
    let email = normalize_email(&request.email);
    if !is_valid_email(&email) {
        return Err(invalid("email", "an email address"));
    }
    let role = checked_role(&request.role)?;
    let display_name = checked_display_name(&request.display_name)?;
    let password_hash = hashed(&auth, request.password).await?;
    let now = auth.now();
    let added = with_accounts(&auth, move |accounts| {
        let user_id =
            accounts.add_named_user(&shop, &email, &display_name, role, &password_hash, now)?;
        accounts
            .find_user_by_id(&user_id)?
            .ok_or(AccountsError::UnknownUser(user_id))
    })
    .await?;
    tracing::info!(shop = %added.shop, email = %added.email, role = %added.role, "the owner added a person");
    Ok(Json(person_json(&added)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ChangePersonRequest {
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    disabled: Option<bool>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

async fn change_person(
    State(state): State<AppState>,
    Path((shop, user_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ServerError> {
    let (auth, _) = owner_of(&state, &headers, &shop)?;
    let request: ChangePersonRequest = parse_body(&body)?;
    let role = request.role.as_deref().map(checked_role).transpose()?;
    let display_name = request
        .display_name
        .as_deref()
        .map(checked_display_name)
        .transpose()?;
    let lookup_id = user_id.clone();
    let target = with_accounts(&auth, move |accounts| accounts.find_user_by_id(&lookup_id))
        .await?
        .filter(|user| user.shop == shop)
        .ok_or_else(|| ServerError::NotFound("No such person in this shop.".into()))?;
    if target.role == Role::Owner {
        return Err(ServerError::FailedPrecondition(
            "An owner is changed with the counterbook-server CLI only, not here.".into(),
        ));
    }
    let password_hash = match request.password {
        Some(password) => Some(hashed(&auth, password).await?),
        None => None,
    };
    let changes = UserChanges {
        role,
        disabled: request.disabled,
        display_name,
        password_hash,
    };
    let changed_id = user_id.clone();
    let changed = with_accounts(&auth, move |accounts| {
        accounts.change_user(&changed_id, &changes)
    })
    .await?;
    auth.forget_account_state(&user_id);
    tracing::info!(shop = %changed.shop, email = %changed.email, role = %changed.role, disabled = changed.disabled, "the owner changed a person");
    Ok(Json(person_json(&changed)))
}
