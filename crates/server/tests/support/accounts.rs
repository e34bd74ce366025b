//! Accounts for black-box tests of the real binary: plain HTTP calls with an optional bearer
//! token ([`call`]), shops and people made with the admin CLI ([`add_shop`], [`add_person`]),
//! signing in over the Firebase-Auth-shaped endpoint ([`sign_in`], [`id_token`]) and reading a
//! token's claims. `tests/access_control.rs` and `tests/people.rs` set their servers up with
//! these.

use std::path::Path;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use super::binary::run_admin;

/// Every person these tests make has this password.
pub const PASSWORD: &str = "correct horse battery";
/// Firebase Auth's sign-in path, as counterbook-server answers it.
pub const SIGN_IN_PATH: &str =
    "/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword?key=k";
/// Firebase Auth's refresh path, as counterbook-server answers it.
pub const REFRESH_PATH: &str = "/securetoken.googleapis.com/v1/token?key=k";

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// (status, body) of a request with an optional bearer token; the body as JSON when it is
/// JSON, else as a string.
pub fn call(method: &str, url: &str, token: Option<&str>, body: Option<&Value>) -> (u16, Value) {
    let agent = agent();
    let bearer = token.map(|token| format!("Bearer {token}"));
    let mut response = match method {
        "GET" | "DELETE" => {
            let mut request = if method == "GET" {
                agent.get(url)
            } else {
                agent.delete(url)
            };
            if let Some(bearer) = &bearer {
                request = request.header("Authorization", bearer);
            }
            request.call()
        }
        "POST" | "PATCH" => {
            let mut request = if method == "POST" {
                agent.post(url)
            } else {
                agent.patch(url)
            }
            .header("Content-Type", "application/json");
            if let Some(bearer) = &bearer {
                request = request.header("Authorization", bearer);
            }
            request.send(body.map_or_else(String::new, Value::to_string))
        }
        other => panic!("no such method in these tests: {other}"),
    }
    .unwrap_or_else(|error| panic!("{method} {url}: {error}"));
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// Asserts a Firestore-shaped error reply: the HTTP status and the `google.rpc` status name.
pub fn assert_status(reply: &(u16, Value), http: u16, status: &str) {
    assert_eq!(reply.0, http, "{}", reply.1);
    assert_eq!(reply.1["error"]["status"], status, "{}", reply.1);
}

/// Creates shop `shop` with the admin CLI.
pub fn add_shop(data_directory: &Path, shop: &str) {
    run_admin(data_directory, &["shop", "create", "--shop", shop], None);
}

/// Adds `email` to `shop` as `role` with the admin CLI, with [`PASSWORD`].
pub fn add_person(data_directory: &Path, shop: &str, email: &str, role: &str) {
    run_admin(
        data_directory,
        &[
            "user",
            "add",
            "--shop",
            shop,
            "--email",
            email,
            "--role",
            role,
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
}

/// Signs in over the Firebase-Auth-shaped endpoint: the reply as it comes.
pub fn sign_in(base_url: &str, email: &str, password: &str) -> (u16, Value) {
    call(
        "POST",
        &format!("{base_url}{SIGN_IN_PATH}"),
        None,
        Some(&json!({"email": email, "password": password, "returnSecureToken": true})),
    )
}

/// Signs in with [`PASSWORD`] and asserts it worked: the ID token and the user id.
pub fn signed_in(base_url: &str, email: &str) -> (String, String) {
    let (status, body) = sign_in(base_url, email, PASSWORD);
    assert_eq!(status, 200, "sign in {email}: {body}");
    (
        body["idToken"].as_str().unwrap().to_owned(),
        body["localId"].as_str().unwrap().to_owned(),
    )
}

/// The ID token of `email` (signed in with [`PASSWORD`]).
pub fn id_token(base_url: &str, email: &str) -> String {
    signed_in(base_url, email).0
}

/// Exchanges a refresh token for a new ID token: the reply as it comes.
pub fn refresh(base_url: &str, refresh_token: &str) -> (u16, Value) {
    call(
        "POST",
        &format!("{base_url}{REFRESH_PATH}"),
        None,
        Some(&json!({"grant_type": "refresh_token", "refresh_token": refresh_token})),
    )
}

/// The claims of a JWT (its middle part, not verified).
pub fn token_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}
