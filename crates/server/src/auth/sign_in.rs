//! Firebase Auth's REST API for email/password sign-in, at the paths the Firebase Auth emulator
//! uses, so the app (and the Firebase Auth JS SDK with `connectAuthEmulator`) signs in against
//! this server exactly as against Firebase:
//!
//! - `POST /identitytoolkit.googleapis.com/v1/accounts:signInWithPassword?key=…` with
//!   `{email, password, returnSecureToken}` answers `{kind, localId, email, displayName,
//!   idToken, registered, refreshToken, expiresIn}`;
//! - `POST /identitytoolkit.googleapis.com/v1/accounts:lookup?key=…` with `{idToken}` answers
//!   `{kind, users: [{localId, email, …}]}`: the Firebase Auth SDK loads the user with it right
//!   after signing in;
//! - `POST /securetoken.googleapis.com/v1/token?key=…` with `grant_type=refresh_token&
//!   refresh_token=…` (form-encoded as the SDK sends it, or JSON) answers `{access_token,
//!   expires_in, token_type, refresh_token, id_token, user_id, project_id}`.
//!
//! Errors have Firebase Auth's own shapes (not Firestore's), in `AuthApiError`. As on current
//! Firebase projects (email enumeration protection), a wrong password and an unknown email both
//! answer `INVALID_LOGIN_CREDENTIALS`, and `USER_DISABLED` is told only to whoever knows the
//! password. `?key=` is accepted and ignored, as on the emulator.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use percent_encoding::percent_decode_str;
use serde::Deserialize;
use serde_json::{json, Value};

use super::accounts::{is_valid_email, normalize_email, UserRecord};
use super::password_checks::PasswordCheckError;
use super::passwords::{verify_against_nobody, verify_password};
use super::policy::Principal;
use super::tokens::{hash_refresh_token, new_refresh_token};
use super::AuthState;
use crate::AppState;

pub const SIGN_IN_WITH_PASSWORD_PATH: &str =
    "/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword";
pub const LOOKUP_PATH: &str = "/identitytoolkit.googleapis.com/v1/accounts:lookup";
pub const REFRESH_TOKEN_PATH: &str = "/securetoken.googleapis.com/v1/token";

/// Sign-in bodies are small; anything bigger is not a sign-in.
const MAX_SIGN_IN_BODY_BYTES: usize = 64 * 1024;

/// The message current Firebase sends when an account is rate limited; the SDK reads the part
/// before " : " as the code.
const TOO_MANY_ATTEMPTS: &str = "TOO_MANY_ATTEMPTS_TRY_LATER : Access to this account has been \
     temporarily disabled due to many failed login attempts. You can immediately restore it by \
     resetting your password or you can try again later.";

/// The same code when the server is checking as many passwords as it will at once.
const TOO_MANY_PASSWORD_CHECKS: &str = "TOO_MANY_ATTEMPTS_TRY_LATER : The server is checking \
     too many passwords at once. Try again in a moment.";

/// The routes of the sign-in API.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(SIGN_IN_WITH_PASSWORD_PATH, post(sign_in_with_password))
        .route(LOOKUP_PATH, post(look_up_account))
        .route(REFRESH_TOKEN_PATH, post(refresh_id_token))
}

/// Which API answers: the two Google APIs shape their errors differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AuthApi {
    /// identitytoolkit: `{"error":{"code","message","errors":[{"message","domain","reason"}]}}`.
    IdentityToolkit,
    /// securetoken: `{"error":{"code","message","status"}}`.
    SecureToken,
}

/// An error of the sign-in API, in Firebase Auth's shape.
#[derive(Debug)]
pub struct AuthApiError {
    api: AuthApi,
    http_status: StatusCode,
    message: String,
}

impl AuthApiError {
    fn bad_request(api: AuthApi, message: &str) -> AuthApiError {
        AuthApiError {
            api,
            http_status: StatusCode::BAD_REQUEST,
            message: message.to_owned(),
        }
    }

    fn internal(api: AuthApi, error: impl std::fmt::Display) -> AuthApiError {
        tracing::error!(%error, "sign-in failed on the server side");
        AuthApiError {
            api,
            http_status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "INTERNAL_ERROR".to_owned(),
        }
    }
}

impl IntoResponse for AuthApiError {
    fn into_response(self) -> Response {
        let code = self.http_status.as_u16();
        let body = match self.api {
            AuthApi::IdentityToolkit => json!({"error": {
                "code": code,
                "message": self.message,
                "errors": [{"message": self.message, "domain": "global", "reason": "invalid"}],
            }}),
            AuthApi::SecureToken => json!({"error": {
                "code": code,
                "message": self.message,
                "status": if code == 400 { "INVALID_ARGUMENT" } else { "INTERNAL" },
            }}),
        };
        (self.http_status, Json(body)).into_response()
    }
}

fn auth_state(state: &AppState, api: AuthApi) -> Result<Arc<AuthState>, AuthApiError> {
    state.auth().cloned().ok_or_else(|| {
        AuthApiError::bad_request(
            api,
            "OPERATION_NOT_ALLOWED : counterbook-server runs with --dev: there is no sign-in \
             and requests need no token",
        )
    })
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct SignInWithPasswordRequest {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

async fn sign_in_with_password(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<Value>, AuthApiError> {
    let api = AuthApi::IdentityToolkit;
    let auth = auth_state(&state, api)?;
    let address = client_address(&request);
    let bytes = read_body(request.into_body(), api).await?;
    let body: SignInWithPasswordRequest = serde_json::from_slice(&bytes)
        .map_err(|_| AuthApiError::bad_request(api, "INVALID_ARGUMENT : the body is not JSON"))?;
    let email = normalize_email(body.email.as_deref().unwrap_or(""));
    if !is_valid_email(&email) {
        return Err(AuthApiError::bad_request(api, "INVALID_EMAIL"));
    }
    let Some(password) = body.password.filter(|password| !password.is_empty()) else {
        return Err(AuthApiError::bad_request(api, "MISSING_PASSWORD"));
    };
    let now = auth.now();
    // Counted as a failure from here on, unless it succeeds or is withdrawn.
    let attempt = auth
        .rate_limiter
        .begin_attempt(&email, address, now)
        .map_err(|_| AuthApiError::bad_request(api, TOO_MANY_ATTEMPTS))?;
    let accounts = Arc::clone(&auth.accounts);
    let lookup_email = email.clone();
    // Argon2 takes tens of milliseconds of CPU and about 19 MiB: on the few threads of the
    // password-check pool, off the async workers, or refused when the pool is full.
    let checked = auth
        .password_checks
        .run(move || match accounts.find_user_by_email(&lookup_email)? {
            Some(user) => Ok(verify_password(&password, &user.password_hash).then_some(user)),
            None => {
                verify_against_nobody(&password);
                Ok(None)
            }
        })
        .await;
    let verified: Option<UserRecord> = match checked {
        Err(PasswordCheckError::Busy) => {
            attempt.withdraw();
            return Err(AuthApiError::bad_request(api, TOO_MANY_PASSWORD_CHECKS));
        }
        Err(error @ PasswordCheckError::Failed) => return Err(AuthApiError::internal(api, error)),
        Ok(found) => found
            .map_err(|error: super::accounts::AccountsError| AuthApiError::internal(api, error))?,
    };

    let Some(user) = verified else {
        // The attempt stays counted as a failure.
        drop(attempt);
        return Err(AuthApiError::bad_request(api, "INVALID_LOGIN_CREDENTIALS"));
    };
    attempt.succeeded();
    if user.disabled {
        return Err(AuthApiError::bad_request(api, "USER_DISABLED"));
    }
    Ok(Json(signed_in_body(&auth, &user, now).await?))
}

/// The body `accounts:signInWithPassword` answers, with fresh tokens for `user`; claiming the
/// server signs its owner in with the same body.
pub(crate) async fn signed_in_body(
    auth: &Arc<AuthState>,
    user: &UserRecord,
    now: i64,
) -> Result<Value, AuthApiError> {
    let tokens = issue_tokens(auth, user, now, AuthApi::IdentityToolkit).await?;
    Ok(json!({
        "kind": "identitytoolkit#VerifyPasswordResponse",
        "localId": user.user_id,
        "email": user.email,
        "displayName": user.display_name,
        "idToken": tokens.id_token,
        "registered": true,
        "refreshToken": tokens.refresh_token,
        "expiresIn": auth.signer.lifetime_seconds().to_string(),
    }))
}

struct IssuedTokens {
    id_token: String,
    refresh_token: String,
}

async fn issue_tokens(
    auth: &Arc<AuthState>,
    user: &UserRecord,
    now: i64,
    api: AuthApi,
) -> Result<IssuedTokens, AuthApiError> {
    let id_token = auth.signer.issue_id_token(&principal_of(user), now);
    let refresh_token = new_refresh_token();
    let accounts = Arc::clone(&auth.accounts);
    let digest = hash_refresh_token(&refresh_token);
    let user_id = user.user_id.clone();
    tokio::task::spawn_blocking(move || accounts.store_refresh_token(&digest, &user_id, now))
        .await
        .map_err(|error| AuthApiError::internal(api, error))?
        .map_err(|error| AuthApiError::internal(api, error))?;
    Ok(IssuedTokens {
        id_token,
        refresh_token,
    })
}

fn principal_of(user: &UserRecord) -> Principal {
    Principal {
        user_id: user.user_id.clone(),
        email: user.email.clone(),
        shop: user.shop.clone(),
        role: user.role,
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct LookupRequest {
    #[serde(default)]
    id_token: Option<String>,
}

/// The account of the ID token's user, in `GetAccountInfoResponse`'s shape.
async fn look_up_account(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<Value>, AuthApiError> {
    let api = AuthApi::IdentityToolkit;
    let auth = auth_state(&state, api)?;
    let bytes = read_body(request.into_body(), api).await?;
    let body: LookupRequest = serde_json::from_slice(&bytes).unwrap_or_default();
    let principal = body
        .id_token
        .and_then(|token| auth.signer.verify_id_token(&token, auth.now()).ok())
        .ok_or_else(|| AuthApiError::bad_request(api, "INVALID_ID_TOKEN"))?;
    let accounts = Arc::clone(&auth.accounts);
    let user = tokio::task::spawn_blocking(move || accounts.find_user_by_id(&principal.user_id))
        .await
        .map_err(|error| AuthApiError::internal(api, error))?
        .map_err(|error| AuthApiError::internal(api, error))?
        .ok_or_else(|| AuthApiError::bad_request(api, "USER_NOT_FOUND"))?;
    let created_at_millis = (user.created_at_seconds * 1000).to_string();
    Ok(Json(json!({
        "kind": "identitytoolkit#GetAccountInfoResponse",
        "users": [{
            "localId": user.user_id,
            "email": user.email,
            "displayName": user.display_name,
            "emailVerified": false,
            "disabled": user.disabled,
            "providerUserInfo": [{
                "providerId": "password",
                "email": user.email,
                "federatedId": user.email,
                "rawId": user.email,
            }],
            "validSince": user.created_at_seconds.to_string(),
            "createdAt": created_at_millis,
            "lastLoginAt": created_at_millis,
            "customAttributes": json!({"shop": user.shop, "role": user.role.as_str()}).to_string(),
        }],
    })))
}

#[derive(Deserialize, Default)]
struct RefreshRequest {
    #[serde(default)]
    grant_type: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
}

async fn refresh_id_token(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<Value>, AuthApiError> {
    let api = AuthApi::SecureToken;
    let auth = auth_state(&state, api)?;
    let bytes = read_body(request.into_body(), api).await?;
    // The Firebase SDK posts a form; other clients post JSON. The body says which.
    let body = match serde_json::from_slice::<RefreshRequest>(&bytes) {
        Ok(body) => body,
        Err(_) => parse_form(&bytes),
    };
    if body.grant_type.as_deref() != Some("refresh_token") {
        return Err(AuthApiError::bad_request(api, "INVALID_GRANT_TYPE"));
    }
    let Some(refresh_token) = body.refresh_token.filter(|token| !token.is_empty()) else {
        return Err(AuthApiError::bad_request(api, "MISSING_REFRESH_TOKEN"));
    };
    let accounts = Arc::clone(&auth.accounts);
    let digest = hash_refresh_token(&refresh_token);
    let user = tokio::task::spawn_blocking(move || accounts.find_user_by_refresh_token(&digest))
        .await
        .map_err(|error| AuthApiError::internal(api, error))?
        .map_err(|error| AuthApiError::internal(api, error))?
        .ok_or_else(|| AuthApiError::bad_request(api, "INVALID_REFRESH_TOKEN"))?;
    if user.disabled {
        return Err(AuthApiError::bad_request(api, "USER_DISABLED"));
    }
    let id_token = auth.signer.issue_id_token(&principal_of(&user), auth.now());
    Ok(Json(json!({
        // The Firebase JS SDK reads `access_token`; the REST reference documents `id_token`.
        // Google answers with both, the same token.
        "access_token": id_token,
        "expires_in": auth.signer.lifetime_seconds().to_string(),
        "token_type": "Bearer",
        "refresh_token": refresh_token,
        "id_token": id_token,
        "user_id": user.user_id,
        "project_id": auth.project,
    })))
}

/// `application/x-www-form-urlencoded`: `a=b&c=d`, `+` for spaces, percent escapes.
fn parse_form(bytes: &[u8]) -> RefreshRequest {
    let mut request = RefreshRequest::default();
    let text = String::from_utf8_lossy(bytes);
    for pair in text.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode_str(&value.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned();
        match key {
            "grant_type" => request.grant_type = Some(value),
            "refresh_token" => request.refresh_token = Some(value),
            _ => {}
        }
    }
    request
}

async fn read_body(body: Body, api: AuthApi) -> Result<axum::body::Bytes, AuthApiError> {
    axum::body::to_bytes(body, MAX_SIGN_IN_BODY_BYTES)
        .await
        .map_err(|_| AuthApiError::bad_request(api, "INVALID_ARGUMENT : the body is too large"))
}

/// The peer address, when the server was started with connect info (the binary is; in-process
/// tests may insert one).
pub(super) fn client_address(request: &Request) -> Option<IpAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_forms_are_decoded() {
        let form = parse_form(b"grant_type=refresh_token&refresh_token=a%2Bb+c&extra=1");
        assert_eq!(form.grant_type.as_deref(), Some("refresh_token"));
        assert_eq!(form.refresh_token.as_deref(), Some("a+b c"));
    }
}
