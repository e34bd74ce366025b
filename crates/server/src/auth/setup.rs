//! First run: the one-time setup code of a server that holds no shop yet, and claiming the
//! server with it.
//!
//! A server started with accounts (not `--dev`) whose accounts tables hold no shop makes a
//! random setup code at start and `main.rs` prints it on standard output (as Jupyter prints
//! its token), so only someone who can read the server's log can claim it: a stranger on the
//! shop's network cannot set the shop up first. The code lives in memory only; every start
//! while the server is unclaimed makes a new one, and none is made once a shop exists.
//!
//! - `GET /counterbook/v1/setup` answers `{mode, claimed, project}` to anyone: whether the app
//!   should offer "Set up your shop" or sign-in.
//! - `POST /counterbook/v1/setup:claim` with the code, the shop's name, currency, country and
//!   locale and the owner's email and password creates the shop and its owner in one accounts
//!   transaction (`Accounts::claim_first_shop`: of two racing claims exactly one wins, the other
//!   gets 409 `ALREADY_EXISTS`), writes the shop document `shops/{shopId}`, and signs the owner
//!   in with the body `accounts:signInWithPassword` answers, plus `shopId`.
//!
//! Wrong codes are rate-limited like wrong passwords (`rate_limit`, with its own budget: three
//! free failures per client network, then growing waits, at most 30 per network in five
//! minutes), and a refused attempt does not check the code at all. With 12 characters from a
//! 31-letter alphabet (about 59 bits) guessing is hopeless within those bounds. Errors have
//! Firestore's `google.rpc.Status` shape (`ServerError`), as these are not Firebase endpoints.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use counterbook_firestore_wire::{CommitRequest, Document, Value, Write, WriteOperation};
use rand::Rng;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::accounts::{
    is_valid_email, is_valid_shop_id, normalize_email, AccountsError, FirstShop,
};
use super::password_checks::PasswordCheckError;
use super::passwords::{hash_password, MINIMUM_PASSWORD_LENGTH};
use super::sign_in::client_address;
use super::{AuthState, DEFAULT_DATABASE};
use crate::commit::{run_commit, AdmitEveryWrite};
use crate::documents::DatabaseId;
use crate::error::ServerError;
use crate::AppState;

pub const SETUP_STATUS_PATH: &str = "/counterbook/v1/setup";
pub const CLAIM_PATH: &str = "/counterbook/v1/setup:claim";
/// What `main.rs` prints before the code; tests and scripts look for it.
pub const SETUP_CODE_LINE_PREFIX: &str = "counterbook-server setup code: ";

/// Letters and digits that cannot be misread for one another (no 0/O, 1/I/L).
const CODE_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
const CODE_GROUPS: usize = 3;
const CODE_GROUP_LENGTH: usize = 4;
/// Claim bodies are small; anything bigger is not a claim.
const MAX_CLAIM_BODY_BYTES: usize = 64 * 1024;
/// The key wrong codes are counted under in the rate limiter, per client network.
const RATE_LIMIT_KEY: &str = "setup-code";
const MAX_SHOP_NAME_CHARACTERS: usize = 200;
const MAX_DISPLAY_NAME_CHARACTERS: usize = 200;

/// The setup code while the server is unclaimed; `None` once claimed (or never made).
pub struct SetupCode {
    /// A std Mutex: held for a comparison or a take, never across an await.
    pending: Mutex<Option<String>>,
}

impl SetupCode {
    /// No code: the server already holds a shop.
    pub fn none() -> SetupCode {
        SetupCode {
            pending: Mutex::new(None),
        }
    }

    /// A fresh random code, `XXXX-XXXX-XXXX`.
    pub fn generate() -> SetupCode {
        let mut random = rand::rng();
        let groups: Vec<String> = (0..CODE_GROUPS)
            .map(|_| {
                (0..CODE_GROUP_LENGTH)
                    .map(|_| char::from(CODE_ALPHABET[random.random_range(0..CODE_ALPHABET.len())]))
                    .collect()
            })
            .collect();
        SetupCode {
            pending: Mutex::new(Some(groups.join("-"))),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn pending(&self) -> Option<String> {
        self.lock().clone()
    }

    /// Whether `typed` is the pending code, ignoring case, spaces and dashes. Compared as
    /// SHA-256 digests, so the time taken tells nothing about how much of it was right.
    fn matches(&self, typed: &str) -> bool {
        let Some(pending) = self.lock().clone() else {
            return false;
        };
        Sha256::digest(normalize_code(typed).as_bytes())
            == Sha256::digest(normalize_code(&pending).as_bytes())
    }

    /// The code has been used: it never works again.
    fn consume(&self) {
        *self.lock() = None;
    }
}

fn normalize_code(code: &str) -> String {
    code.chars()
        .filter(|character| !character.is_whitespace() && *character != '-')
        .flat_map(char::to_uppercase)
        .collect()
}

/// The routes of first-run setup.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(SETUP_STATUS_PATH, get(setup_status))
        .route(CLAIM_PATH, post(claim_server))
}

async fn setup_status(
    State(state): State<AppState>,
) -> Result<Json<serde_json::Value>, ServerError> {
    let Some(auth) = state.auth().cloned() else {
        return Ok(Json(
            json!({"mode": "dev", "claimed": true, "project": null}),
        ));
    };
    let accounts = Arc::clone(&auth.accounts);
    let claimed = tokio::task::spawn_blocking(move || accounts.holds_a_shop())
        .await
        .map_err(|error| ServerError::StorageTaskFailed(error.to_string()))?
        .map_err(accounts_unavailable)?;
    Ok(Json(json!({
        "mode": "accounts",
        "claimed": claimed,
        "project": auth.project(),
    })))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ClaimRequest {
    #[serde(default)]
    setup_code: String,
    #[serde(default)]
    shop_name: String,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    country: String,
    #[serde(default)]
    locale: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    shop_id: Option<String>,
}

/// A claim's answers, checked.
struct CheckedClaim {
    shop_id: String,
    shop_name: String,
    currency: String,
    country: String,
    locale: String,
    email: String,
    display_name: String,
}

fn invalid(field: &str, why: &str) -> ServerError {
    ServerError::InvalidArgument(format!("Invalid value at '{field}': {why}"))
}

fn check_claim(request: &ClaimRequest) -> Result<CheckedClaim, ServerError> {
    let shop_name = request.shop_name.trim();
    if shop_name.is_empty() || shop_name.chars().count() > MAX_SHOP_NAME_CHARACTERS {
        return Err(invalid(
            "shopName",
            &format!("give the shop a name of 1 to {MAX_SHOP_NAME_CHARACTERS} characters"),
        ));
    }
    if request.currency.len() != 3
        || !request
            .currency
            .bytes()
            .all(|byte| byte.is_ascii_uppercase())
    {
        return Err(invalid(
            "currency",
            "an ISO 4217 code of three capital letters, like INR",
        ));
    }
    if request.country.len() != 2
        || !request
            .country
            .bytes()
            .all(|byte| byte.is_ascii_uppercase())
    {
        return Err(invalid(
            "country",
            "an ISO 3166 code of two capital letters, like IN",
        ));
    }
    let locale_is_valid = (2..=35).contains(&request.locale.len())
        && request
            .locale
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-');
    if !locale_is_valid {
        return Err(invalid(
            "locale",
            "a BCP 47 language tag, like en-IN or ar-DZ",
        ));
    }
    let email = normalize_email(&request.email);
    if !is_valid_email(&email) {
        return Err(invalid("email", "an email address"));
    }
    if request.password.chars().count() < MINIMUM_PASSWORD_LENGTH {
        return Err(invalid(
            "password",
            &format!("at least {MINIMUM_PASSWORD_LENGTH} characters"),
        ));
    }
    let display_name = request.display_name.trim();
    if display_name.chars().count() > MAX_DISPLAY_NAME_CHARACTERS {
        return Err(invalid(
            "displayName",
            &format!("at most {MAX_DISPLAY_NAME_CHARACTERS} characters"),
        ));
    }
    let shop_id = match &request.shop_id {
        Some(shop_id) if is_valid_shop_id(shop_id) => shop_id.clone(),
        Some(_) => {
            return Err(invalid(
                "shopId",
                "1 to 100 letters, digits, '-' or '_' (or leave it out)",
            ))
        }
        None => new_shop_id(),
    };
    Ok(CheckedClaim {
        shop_id,
        shop_name: shop_name.to_owned(),
        currency: request.currency.clone(),
        country: request.country.clone(),
        locale: request.locale.clone(),
        email,
        display_name: display_name.to_owned(),
    })
}

/// `shop-` and eight random lowercase letters and digits.
fn new_shop_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut random = rand::rng();
    let suffix: String = (0..8)
        .map(|_| char::from(ALPHABET[random.random_range(0..ALPHABET.len())]))
        .collect();
    format!("shop-{suffix}")
}

fn accounts_unavailable(error: AccountsError) -> ServerError {
    ServerError::Unavailable(format!("cannot read the accounts: {error}"))
}

fn already_claimed() -> ServerError {
    ServerError::AlreadyExists(
        "This server already holds a shop: sign in instead (the setup code works once).".into(),
    )
}

async fn claim_server(State(state): State<AppState>, request: Request) -> Response {
    match claim(state, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn claim(state: AppState, request: Request) -> Result<Response, ServerError> {
    let Some(auth) = state.auth().cloned() else {
        return Err(ServerError::FailedPrecondition(
            "counterbook-server runs with --dev: there are no accounts to set up".into(),
        ));
    };
    let address = client_address(&request);
    let bytes: Bytes = axum::body::to_bytes(request.into_body(), MAX_CLAIM_BODY_BYTES)
        .await
        .map_err(|_| ServerError::PayloadTooLarge {
            limit_bytes: MAX_CLAIM_BODY_BYTES,
        })?;
    let body: ClaimRequest = serde_json::from_slice(&bytes).map_err(ServerError::MalformedBody)?;
    // Claimed already: say so at once, whatever the code (the status endpoint tells anyone).
    if auth.setup_code.pending().is_none() {
        return Err(already_claimed());
    }
    let claim = check_claim(&body)?;
    let now = auth.now();
    let attempt = match auth
        .setup_rate_limiter
        .begin_attempt(RATE_LIMIT_KEY, address, now)
    {
        Ok(attempt) => attempt,
        Err(retry) => {
            let mut response = ServerError::ResourceExhausted(format!(
                "Too many wrong setup codes from your network: try again in {} seconds.",
                retry.seconds
            ))
            .into_response();
            if let Ok(value) = HeaderValue::from_str(&retry.seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            return Ok(response);
        }
    };
    if !auth.setup_code.matches(&body.setup_code) {
        // The attempt stays counted as a failure.
        drop(attempt);
        return Err(ServerError::PermissionDenied(
            "The setup code is wrong: use the one counterbook-server printed when it started."
                .into(),
        ));
    }
    attempt.succeeded();
    let password = body.password;
    let password_hash = match auth
        .password_checks
        .run(move || hash_password(&password))
        .await
    {
        Ok(Ok(hash)) => hash,
        Ok(Err(error)) => {
            return Err(ServerError::AuthSetup(format!(
                "cannot hash the password: {error}"
            )))
        }
        Err(PasswordCheckError::Busy) => {
            return Err(ServerError::Unavailable(
                "The server is checking too many passwords at once; try again.".into(),
            ))
        }
        Err(error @ PasswordCheckError::Failed) => {
            return Err(ServerError::StorageTaskFailed(error.to_string()))
        }
    };
    let accounts = Arc::clone(&auth.accounts);
    let (shop_id, shop_name, email, display_name) = (
        claim.shop_id.clone(),
        claim.shop_name.clone(),
        claim.email.clone(),
        claim.display_name.clone(),
    );
    let claimed = tokio::task::spawn_blocking(move || {
        let user_id = accounts.claim_first_shop(
            &FirstShop {
                shop_id: &shop_id,
                shop_name: &shop_name,
                owner_email: &email,
                owner_display_name: &display_name,
                owner_password_hash: &password_hash,
            },
            now,
        )?;
        accounts.find_user_by_id(&user_id)
    })
    .await
    .map_err(|error| ServerError::StorageTaskFailed(error.to_string()))?;
    let owner = match claimed {
        Ok(Some(owner)) => owner,
        Ok(None) => {
            return Err(ServerError::StorageTaskFailed(
                "the new owner was not found after claiming".into(),
            ))
        }
        Err(AccountsError::AlreadyClaimed) => return Err(already_claimed()),
        Err(AccountsError::DuplicateEmail(_)) => {
            return Err(ServerError::AlreadyExists(
                "A user with this email already exists.".into(),
            ))
        }
        Err(error) => return Err(accounts_unavailable(error)),
    };
    auth.setup_code.consume();
    tracing::info!(shop = %claim.shop_id, owner = %owner.email, "the server was claimed");
    write_shop_document(&state, &auth, &claim).await?;
    let mut body = super::sign_in::signed_in_body(&auth, &owner, now)
        .await
        .map_err(|error| {
            ServerError::Unavailable(format!("cannot sign the owner in: {error:?}"))
        })?;
    body["shopId"] = json!(claim.shop_id);
    Ok(Json(body).into_response())
}

/// `shops/{shopId}` = `{name, currency, country, locale}`, as the owner gave them.
async fn write_shop_document(
    state: &AppState,
    auth: &AuthState,
    claim: &CheckedClaim,
) -> Result<(), ServerError> {
    let database = DatabaseId {
        project: auth.project().to_owned(),
        database: DEFAULT_DATABASE.to_owned(),
    };
    let name = format!(
        "{}/documents/shops/{}",
        database.resource_name(),
        claim.shop_id
    );
    let fields = [
        ("name", &claim.shop_name),
        ("currency", &claim.currency),
        ("country", &claim.country),
        ("locale", &claim.locale),
    ]
    .into_iter()
    .map(|(field, value)| (field.to_owned(), Value::String(value.clone())))
    .collect();
    let request = CommitRequest {
        database: None,
        writes: vec![Write {
            operation: WriteOperation::Update(Document {
                name,
                fields,
                ..Document::default()
            }),
            update_mask: None,
            update_transforms: Vec::new(),
            current_document: None,
        }],
        transaction: None,
    };
    state
        .run_blocking(move |store| run_commit(store, &database, request, &AdmitEveryWrite))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_three_groups_of_unambiguous_characters_and_match_loosely() {
        let code = SetupCode::generate();
        let text = code.pending().unwrap();
        assert_eq!(text.len(), 14, "{text}");
        assert!(text
            .split('-')
            .all(|group| group.len() == 4 && group.bytes().all(|b| CODE_ALPHABET.contains(&b))));
        assert!(code.matches(&text));
        assert!(code.matches(&text.to_lowercase().replace('-', " ")));
        assert!(!code.matches(""));
        assert!(!code.matches(&text[..13]));
        code.consume();
        assert!(!code.matches(&text));
        assert_ne!(SetupCode::generate().pending(), Some(text));
    }
}
