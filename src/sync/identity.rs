//! Signing in: Firebase Auth's REST API, one client for every backend. counterbook-server
//! answers at the Firebase Auth emulator's paths (`/identitytoolkit.googleapis.com/v1/...` and
//! `/securetoken.googleapis.com/v1/...` under its own origin), the Firebase Auth emulator at
//! the same paths under its origin, and Google's Firebase Auth at
//! `https://identitytoolkit.googleapis.com/v1/...` and `https://securetoken.googleapis.com/v1/...`
//! with the project's web API key. Only the base differs ([`AuthEndpoints`]).
//!
//! - `accounts:signInWithPassword` with `{email, password, returnSecureToken}` gives an ID token,
//!   a refresh token and the seconds the ID token lives;
//! - `token` with `grant_type=refresh_token&refresh_token=…` gives a fresh ID token.
//!
//! The ID token is a JWT whose claims say who signed in (`sub`, `email`), until when (`exp`)
//! and, as custom claims, the shop and role (`shop`, `role`): [`TokenClaims::of`] reads them
//! (the signature is the backend's business; the tablet only needs to know what it holds).
//!
//! [`BearerToken`] is the token requests carry right now: `remote` sets it on every REST call
//! and `listen_channel` in the opening form of every Listen session.

use std::cell::RefCell;
use std::rc::Rc;

use serde::Deserialize;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// The ID token that requests carry now (`None`: no `Authorization` header, as for `--dev`
/// servers and the emulator); cheap to clone, every clone sees the same token.
#[derive(Clone, Default)]
pub struct BearerToken(Rc<RefCell<Option<String>>>);

impl BearerToken {
    pub fn get(&self) -> Option<String> {
        self.0.borrow().clone()
    }

    pub fn set(&self, token: Option<String>) {
        *self.0.borrow_mut() = token;
    }
}

/// Where the two Auth APIs answer, and the web API key they are called with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthEndpoints {
    identity_toolkit: String,
    secure_token: String,
    api_key: String,
}

impl AuthEndpoints {
    /// counterbook-server, or the Firebase Auth emulator, at `origin`: the Google host names
    /// become the first segment of the path.
    pub fn at_origin(origin: &str, api_key: &str) -> AuthEndpoints {
        let origin = origin.trim_end_matches('/');
        AuthEndpoints {
            identity_toolkit: format!("{origin}/identitytoolkit.googleapis.com/v1"),
            secure_token: format!("{origin}/securetoken.googleapis.com/v1"),
            api_key: api_key.to_owned(),
        }
    }

    /// Google's Firebase Auth, for Cloud Firestore.
    pub fn google(api_key: &str) -> AuthEndpoints {
        AuthEndpoints {
            identity_toolkit: "https://identitytoolkit.googleapis.com/v1".to_owned(),
            secure_token: "https://securetoken.googleapis.com/v1".to_owned(),
            api_key: api_key.to_owned(),
        }
    }

    fn sign_in_url(&self) -> String {
        format!(
            "{}/accounts:signInWithPassword?key={}",
            self.identity_toolkit,
            encode(&self.api_key)
        )
    }

    fn refresh_url(&self) -> String {
        format!("{}/token?key={}", self.secure_token, encode(&self.api_key))
    }
}

fn encode(text: &str) -> String {
    String::from(js_sys::encode_uri_component(text))
}

/// Fresh tokens from a sign-in or a refresh.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedTokens {
    pub id_token: String,
    pub refresh_token: String,
    /// How long the ID token lives, from now.
    pub expires_in_seconds: i64,
}

/// Why signing in or refreshing did not give tokens.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignInError {
    #[error("The email or password is wrong.")]
    WrongCredentials,
    #[error("This account is disabled. Ask the shop's owner.")]
    Disabled,
    #[error("Too many attempts. Wait a little and try again.")]
    TooManyAttempts,
    /// The refresh token is no longer accepted (revoked, expired, another project).
    #[error("This sign-in has ended. Sign in again.")]
    SessionEnded,
    #[error("The server cannot be reached ({0}). Check the network and try again.")]
    Network(String),
    /// Any other refusal, with the backend's code (`OPERATION_NOT_ALLOWED : …`, …).
    #[error("The server refused: {0}")]
    Refused(String),
    #[error("The server's answer could not be read: {0}")]
    MalformedReply(String),
}

impl SignInError {
    /// Whether trying again later, with the same refresh token, may succeed.
    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            SignInError::Network(_) | SignInError::TooManyAttempts | SignInError::MalformedReply(_)
        )
    }

    /// Reads Firebase Auth's error code: the message up to " : ".
    fn from_code(message: &str) -> SignInError {
        let code = message.split(" : ").next().unwrap_or(message).trim();
        match code {
            "INVALID_LOGIN_CREDENTIALS"
            | "INVALID_PASSWORD"
            | "EMAIL_NOT_FOUND"
            | "INVALID_EMAIL"
            | "MISSING_PASSWORD" => SignInError::WrongCredentials,
            "USER_DISABLED" => SignInError::Disabled,
            "TOO_MANY_ATTEMPTS_TRY_LATER" => SignInError::TooManyAttempts,
            "INVALID_REFRESH_TOKEN"
            | "TOKEN_EXPIRED"
            | "USER_NOT_FOUND"
            | "INVALID_ID_TOKEN"
            | "PROJECT_NUMBER_MISMATCH" => SignInError::SessionEnded,
            _ => SignInError::Refused(message.to_owned()),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignInReply {
    id_token: String,
    refresh_token: String,
    #[serde(default)]
    expires_in: Option<String>,
}

#[derive(Deserialize)]
struct RefreshReply {
    id_token: String,
    refresh_token: String,
    #[serde(default)]
    expires_in: Option<String>,
}

#[derive(Deserialize)]
struct ErrorReply {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: String,
}

/// Firebase's default when a reply does not say: one hour.
const DEFAULT_LIFETIME_SECONDS: i64 = 3600;

fn lifetime(expires_in: Option<&str>) -> i64 {
    expires_in
        .and_then(|text| text.trim().parse::<i64>().ok())
        .filter(|seconds| *seconds > 0)
        .unwrap_or(DEFAULT_LIFETIME_SECONDS)
}

/// Signs in with email and password.
pub async fn sign_in_with_password(
    endpoints: &AuthEndpoints,
    email: &str,
    password: &str,
) -> Result<IssuedTokens, SignInError> {
    let body = serde_json::json!({
        "email": email.trim(),
        "password": password,
        "returnSecureToken": true,
    })
    .to_string();
    let text = post(&endpoints.sign_in_url(), "application/json", body).await?;
    let reply: SignInReply = serde_json::from_str(&text)
        .map_err(|error| SignInError::MalformedReply(error.to_string()))?;
    Ok(IssuedTokens {
        expires_in_seconds: lifetime(reply.expires_in.as_deref()),
        id_token: reply.id_token,
        refresh_token: reply.refresh_token,
    })
}

/// Exchanges a refresh token for a fresh ID token.
pub async fn refresh_id_token(
    endpoints: &AuthEndpoints,
    refresh_token: &str,
) -> Result<IssuedTokens, SignInError> {
    let body = format!(
        "grant_type=refresh_token&refresh_token={}",
        encode(refresh_token)
    );
    let text = post(
        &endpoints.refresh_url(),
        "application/x-www-form-urlencoded",
        body,
    )
    .await?;
    let reply: RefreshReply = serde_json::from_str(&text)
        .map_err(|error| SignInError::MalformedReply(error.to_string()))?;
    Ok(IssuedTokens {
        expires_in_seconds: lifetime(reply.expires_in.as_deref()),
        id_token: reply.id_token,
        refresh_token: reply.refresh_token,
    })
}

/// POSTs `body`; `Ok` with the reply's text for a 2xx status, else the reply's error code.
pub(crate) async fn post(
    url: &str,
    content_type: &str,
    body: String,
) -> Result<String, SignInError> {
    let (status, text) = send(url, "POST", Some((content_type, body)), None).await?;
    if (200..300).contains(&status) {
        return Ok(text);
    }
    Err(error_of(status, &text))
}

/// Reads an error reply of the Auth APIs (or of counterbook-server's own endpoints, which use
/// the same `{"error": {"message": "CODE : detail"}}` shape).
pub(crate) fn error_of(status: u16, text: &str) -> SignInError {
    match serde_json::from_str::<ErrorReply>(text) {
        Ok(reply) if !reply.error.message.is_empty() => {
            SignInError::from_code(&reply.error.message)
        }
        _ => {
            let excerpt: String = text.chars().take(200).collect();
            SignInError::Refused(format!("HTTP {status}: {excerpt}"))
        }
    }
}

/// How long a sign-in request may take before it counts as no answer.
const REQUEST_TIMEOUT_MILLIS: i32 = 15_000;

/// One request with an optional body and bearer token: the status and the reply's text.
pub(crate) async fn send(
    url: &str,
    method: &str,
    body: Option<(&str, String)>,
    bearer: Option<&str>,
) -> Result<(u16, String), SignInError> {
    let network = |error: JsValue| SignInError::Network(describe(&error));
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    let headers = web_sys::Headers::new().map_err(network)?;
    if let Some((content_type, body)) = &body {
        headers.set("Content-Type", content_type).map_err(network)?;
        init.set_body(&JsValue::from_str(body));
    }
    if let Some(token) = bearer {
        headers
            .set("Authorization", &format!("Bearer {token}"))
            .map_err(network)?;
    }
    init.set_headers(&headers);
    let controller = web_sys::AbortController::new().map_err(network)?;
    init.set_signal(Some(&controller.signal()));
    let request = web_sys::Request::new_with_str_and_init(url, &init).map_err(network)?;
    let abort = wasm_bindgen::closure::Closure::once_into_js(move || controller.abort());
    let timer = crate::global_scope::set_timeout(abort.unchecked_ref(), REQUEST_TIMEOUT_MILLIS);
    let outcome = async {
        let response: web_sys::Response = JsFuture::from(crate::global_scope::fetch(&request))
            .await
            .map_err(network)?
            .unchecked_into();
        let text = JsFuture::from(response.text().map_err(network)?)
            .await
            .map_err(network)?
            .as_string()
            .unwrap_or_default();
        Ok((response.status(), text))
    }
    .await;
    if let Some(timer) = timer {
        crate::global_scope::clear_timeout(timer);
    }
    outcome
}

fn describe(error: &JsValue) -> String {
    error
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| error.as_string())
        .unwrap_or_else(|| format!("{error:?}"))
}

/// What an ID token says about its bearer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenClaims {
    pub user_id: String,
    pub email: String,
    /// The `shop` custom claim (`None` on an account no shop has claimed).
    pub shop: Option<String>,
    /// The `role` custom claim: `owner`, `manager` or `cashier`.
    pub role: Option<String>,
    /// `exp`, Unix seconds.
    pub expires_at_seconds: i64,
    /// `iat`, Unix seconds.
    pub issued_at_seconds: i64,
    /// `aud`: the project.
    pub project: String,
}

#[derive(Deserialize)]
struct RawClaims {
    #[serde(default)]
    sub: String,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    email: String,
    #[serde(default)]
    shop: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    exp: i64,
    #[serde(default)]
    iat: i64,
    #[serde(default)]
    aud: String,
}

impl TokenClaims {
    /// The claims of a JWT (its middle part); `None` for anything that is not one.
    pub fn of(token: &str) -> Option<TokenClaims> {
        let payload = token.split('.').nth(1)?;
        let bytes = base64url_decode(payload)?;
        let raw: RawClaims = serde_json::from_slice(&bytes).ok()?;
        let user_id = raw.user_id.unwrap_or(raw.sub);
        if user_id.is_empty() {
            return None;
        }
        Some(TokenClaims {
            user_id,
            email: raw.email,
            shop: raw.shop,
            role: raw.role,
            expires_at_seconds: raw.exp,
            issued_at_seconds: raw.iat,
            project: raw.aud,
        })
    }
}

/// Decodes unpadded (or padded) base64url; `None` for any other character.
fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let mut bits: u32 = 0;
    let mut bit_count = 0;
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for byte in text.trim_end_matches('=').bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(value);
        bit_count += 6;
        if bit_count >= 8 {
            bit_count -= 8;
            out.push((bits >> bit_count) as u8);
            bits &= (1 << bit_count) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn base64url_decodes_with_and_without_padding() {
        assert_eq!(base64url_decode("aGk").unwrap(), b"hi");
        assert_eq!(base64url_decode("aGk=").unwrap(), b"hi");
        assert_eq!(base64url_decode("-_8").unwrap(), vec![0xfb, 0xff]);
        assert_eq!(base64url_decode("a b"), None);
    }

    #[wasm_bindgen_test]
    fn claims_are_read_from_the_middle_of_a_jwt() {
        // {"sub":"u1","email":"asha@example.com","shop":"s1","role":"cashier","exp":1700000000,"aud":"p"}
        let payload = "eyJzdWIiOiJ1MSIsImVtYWlsIjoiYXNoYUBleGFtcGxlLmNvbSIsInNob3AiOiJzMSIsInJvbGUiOiJjYXNoaWVyIiwiZXhwIjoxNzAwMDAwMDAwLCJhdWQiOiJwIn0";
        let claims = TokenClaims::of(&format!("x.{payload}.y")).unwrap();
        assert_eq!(claims.user_id, "u1");
        assert_eq!(claims.email, "asha@example.com");
        assert_eq!(claims.shop.as_deref(), Some("s1"));
        assert_eq!(claims.role.as_deref(), Some("cashier"));
        assert_eq!(claims.expires_at_seconds, 1_700_000_000);
        assert_eq!(claims.project, "p");
        assert_eq!(TokenClaims::of("not a token"), None);
    }

    #[wasm_bindgen_test]
    fn firebase_error_codes_become_reasons() {
        let refused = |message: &str| {
            error_of(
                400,
                &serde_json::json!({"error": {"code": 400, "message": message}}).to_string(),
            )
        };
        assert_eq!(
            refused("INVALID_LOGIN_CREDENTIALS"),
            SignInError::WrongCredentials
        );
        assert_eq!(
            refused("TOO_MANY_ATTEMPTS_TRY_LATER : Access disabled"),
            SignInError::TooManyAttempts
        );
        assert_eq!(refused("INVALID_REFRESH_TOKEN"), SignInError::SessionEnded);
        assert_eq!(refused("USER_DISABLED"), SignInError::Disabled);
        assert!(matches!(
            error_of(502, "<html>bad gateway</html>"),
            SignInError::Refused(ref m) if m.contains("502")
        ));
    }
}
