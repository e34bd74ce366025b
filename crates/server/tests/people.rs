//! First-run setup and the owner's people endpoints over real HTTP, on the real binary
//! (`counterbook-server serve` without `--dev`): the setup code printed at start, the status
//! endpoint, claiming (a wrong code, bad fields, two claims racing, the code reused, no code
//! after a restart), the owner's people endpoints (list, add, change role, disable and enable)
//! and everyone else refused; and, in process on a hand-moved clock, wrong setup codes
//! rate-limited and short-lived ID tokens expiring with Firestore's `UNAUTHENTICATED`.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use counterbook_server::auth::setup::SETUP_CODE_LINE_PREFIX;
use counterbook_server::{app, AppState, AuthConfig, ManualClock, ServerConfig};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use support::accounts::{
    add_person, add_shop, assert_status, call, id_token, refresh, sign_in, token_claims, PASSWORD,
    REFRESH_PATH,
};
use support::binary::RunningServer;
use tower::ServiceExt;

const PROJECT: &str = "demo-counterbook";

/// The setup code the server printed, if it printed one.
fn setup_code(server: &RunningServer) -> Option<String> {
    server.startup_output.iter().find_map(|line| {
        let (_, rest) = line.split_once(SETUP_CODE_LINE_PREFIX)?;
        Some(rest.split_whitespace().next()?.to_owned())
    })
}

/// Claims the server at `claim_url` with `code` for an owner `email`.
fn claim(claim_url: &str, code: &str, email: &str) -> (u16, Value) {
    call("POST", claim_url, None, Some(&claim_body(code, email)))
}

fn claim_body(code: &str, email: &str) -> Value {
    json!({
        "setupCode": code, "shopName": "Kirana One", "currency": "INR", "country": "IN",
        "locale": "en-IN", "email": email, "password": PASSWORD, "displayName": "Asha",
        "shopId": "kirana-1",
    })
}

fn document_url(base: &str, path: &str) -> String {
    format!("{base}/v1/projects/{PROJECT}/databases/(default)/documents/{path}")
}

#[test]
fn the_server_is_claimed_once_with_the_code_it_printed() {
    let data = tempfile::tempdir().unwrap();
    let server = RunningServer::start(data.path(), &["--project", PROJECT]);
    let base = server.base_url.clone();
    let code = setup_code(&server).expect("an unclaimed server prints a setup code");
    let status = call("GET", &format!("{base}/counterbook/v1/setup"), None, None);
    assert_eq!(
        status,
        (
            200,
            json!({"mode": "accounts", "claimed": false, "project": PROJECT})
        )
    );

    let claim_url = format!("{base}/counterbook/v1/setup:claim");
    // A wrong code is refused, and so are bad answers (checked before the code).
    let wrong = claim(&claim_url, "AAAA-BBBB-CCCC", "owner@kirana.test");
    assert_status(&wrong, 403, "PERMISSION_DENIED");
    for (field, value) in [
        ("currency", json!("rupees")),
        ("country", json!("India")),
        ("email", json!("not an email")),
        ("password", json!("short")),
        ("shopName", json!("  ")),
        ("shopId", json!("../other")),
    ] {
        let mut body = claim_body(&code, "owner@kirana.test");
        body[field] = value;
        let reply = call("POST", &claim_url, None, Some(&body));
        assert_status(&reply, 400, "INVALID_ARGUMENT");
        assert!(
            reply.1["error"]["message"]
                .as_str()
                .unwrap()
                .contains(field),
            "{field}: {}",
            reply.1
        );
    }
    assert_eq!(
        call("GET", &format!("{base}/counterbook/v1/setup"), None, None).1["claimed"],
        false
    );

    // Two claims race with the right code: exactly one wins.
    let racers: Vec<_> = ["first@kirana.test", "second@kirana.test"]
        .into_iter()
        .map(|email| {
            let (url, body) = (claim_url.clone(), claim_body(&code, email));
            std::thread::spawn(move || call("POST", &url, None, Some(&body)))
        })
        .collect();
    let outcomes: Vec<(u16, Value)> = racers
        .into_iter()
        .map(|racer| racer.join().unwrap())
        .collect();
    let winners: Vec<&(u16, Value)> = outcomes.iter().filter(|reply| reply.0 == 200).collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    let loser = outcomes.iter().find(|reply| reply.0 != 200).unwrap();
    assert_status(loser, 409, "ALREADY_EXISTS");
    let owner = &winners[0].1;
    assert_eq!(owner["kind"], "identitytoolkit#VerifyPasswordResponse");
    assert_eq!(owner["shopId"], "kirana-1");
    assert_eq!(owner["displayName"], "Asha");
    assert_eq!(owner["registered"], true);
    assert_eq!(owner["expiresIn"], "3600");
    let owner_email = owner["email"].as_str().unwrap().to_owned();
    let owner_token = owner["idToken"].as_str().unwrap().to_owned();
    assert!(owner["refreshToken"]
        .as_str()
        .is_some_and(|token| !token.is_empty()));

    // The code is spent: reusing it, or any other, says the server is claimed.
    let reused = claim(&claim_url, &code, "third@kirana.test");
    assert_status(&reused, 409, "ALREADY_EXISTS");
    assert_eq!(
        call("GET", &format!("{base}/counterbook/v1/setup"), None, None),
        (
            200,
            json!({"mode": "accounts", "claimed": true, "project": PROJECT})
        )
    );
    // The owner is signed in: the shop document holds what was given, and sign-in works.
    let (status, shop) = call(
        "GET",
        &document_url(&base, "shops/kirana-1"),
        Some(&owner_token),
        None,
    );
    assert_eq!(status, 200, "{shop}");
    assert_eq!(shop["fields"]["name"], json!({"stringValue": "Kirana One"}));
    assert_eq!(shop["fields"]["currency"], json!({"stringValue": "INR"}));
    assert_eq!(shop["fields"]["country"], json!({"stringValue": "IN"}));
    assert_eq!(shop["fields"]["locale"], json!({"stringValue": "en-IN"}));
    let signed_in = sign_in(&base, &owner_email, PASSWORD);
    assert_eq!(signed_in.0, 200, "{}", signed_in.1);
    assert_eq!(signed_in.1["displayName"], "Asha");
    let claims = token_claims(signed_in.1["idToken"].as_str().unwrap());
    assert_eq!(
        (claims["shop"].as_str(), claims["role"].as_str()),
        (Some("kirana-1"), Some("owner"))
    );

    // Restarted, a claimed server prints no code.
    drop(server);
    let restarted = RunningServer::start(data.path(), &["--project", PROJECT]);
    assert_eq!(
        setup_code(&restarted),
        None,
        "{:?}",
        restarted.startup_output
    );
    let reclaim = claim(
        &format!("{}/counterbook/v1/setup:claim", restarted.base_url),
        &code,
        "fourth@kirana.test",
    );
    assert_status(&reclaim, 409, "ALREADY_EXISTS");
}

#[test]
fn each_start_of_an_unclaimed_server_has_a_new_code_and_dev_mode_has_none() {
    let data = tempfile::tempdir().unwrap();
    let first = RunningServer::start(data.path(), &["--project", PROJECT]);
    let first_code = setup_code(&first).unwrap();
    drop(first);
    let second = RunningServer::start(
        data.path(),
        &["--project", PROJECT, "--token-lifetime-seconds", "5"],
    );
    let second_code = setup_code(&second).unwrap();
    assert_ne!(first_code, second_code);
    let claim_url = format!("{}/counterbook/v1/setup:claim", second.base_url);
    let stale = claim(&claim_url, &first_code, "owner@kirana.test");
    assert_status(&stale, 403, "PERMISSION_DENIED");
    // The code is typed loosely: lowercase, spaces for dashes. Tokens live 5 s here.
    let typed = second_code.to_lowercase().replace('-', " ");
    let (status, owner) = claim(&claim_url, &typed, "owner@kirana.test");
    assert_eq!(status, 200, "{owner}");
    assert_eq!(owner["expiresIn"], "5");
    drop(second);

    let dev_data = tempfile::tempdir().unwrap();
    let dev = RunningServer::start_dev(dev_data.path());
    assert_eq!(setup_code(&dev), None);
    assert_eq!(
        call(
            "GET",
            &format!("{}/counterbook/v1/setup", dev.base_url),
            None,
            None
        ),
        (
            200,
            json!({"mode": "dev", "claimed": true, "project": null})
        )
    );
    let refused = claim(
        &format!("{}/counterbook/v1/setup:claim", dev.base_url),
        "AAAA-BBBB-CCCC",
        "owner@kirana.test",
    );
    assert_status(&refused, 400, "FAILED_PRECONDITION");
}

/// The owner's people endpoints of one shop, called with a token.
struct PeopleOfShop {
    url: String,
}

impl PeopleOfShop {
    fn new(base: &str, shop: &str) -> PeopleOfShop {
        PeopleOfShop {
            url: format!("{base}/counterbook/v1/shops/{shop}/people"),
        }
    }

    fn list(&self, token: Option<&str>) -> (u16, Value) {
        call("GET", &self.url, token, None)
    }

    fn add(&self, token: &str, person: Value) -> (u16, Value) {
        call("POST", &self.url, Some(token), Some(&person))
    }

    fn change(&self, token: &str, user_id: &str, change: Value) -> (u16, Value) {
        call(
            "PATCH",
            &format!("{}/{user_id}", self.url),
            Some(token),
            Some(&change),
        )
    }
}

#[test]
fn only_the_owner_manages_the_shops_people_and_changes_take_effect_at_once() {
    let data = tempfile::tempdir().unwrap();
    // Shop s2 and its owner come from the CLI: a server holding a shop prints no code.
    for shop in ["s2", "s1"] {
        add_shop(data.path(), shop);
        add_person(data.path(), shop, &format!("owner@{shop}.test"), "owner");
    }
    let server = RunningServer::start(data.path(), &["--project", PROJECT]);
    assert_eq!(setup_code(&server), None);
    let base = server.base_url.clone();
    let people = PeopleOfShop::new(&base, "s1");
    let owner = id_token(&base, "owner@s1.test");

    let (status, listed) = people.list(Some(&owner));
    assert_eq!(status, 200, "{listed}");
    let list = listed["people"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{listed}");
    assert_eq!(list[0]["email"], "owner@s1.test");
    assert_eq!(list[0]["role"], "owner");
    assert_eq!(list[0]["disabled"], false);
    let owner_id = list[0]["userId"].as_str().unwrap().to_owned();

    let add = |email: &str, role: &str| {
        people.add(
            &owner,
            json!({"email": email, "password": PASSWORD, "displayName": "Ravi", "role": role}),
        )
    };
    let (status, cashier) = add("Ravi@S1.test", "cashier");
    assert_eq!(status, 200, "{cashier}");
    assert_eq!(cashier["email"], "ravi@s1.test");
    assert_eq!(
        (cashier["role"].as_str(), cashier["displayName"].as_str()),
        (Some("cashier"), Some("Ravi"))
    );
    assert!(
        cashier["createdAt"].as_str().unwrap().ends_with('Z'),
        "{cashier}"
    );
    let cashier_id = cashier["userId"].as_str().unwrap().to_owned();
    let (status, manager) = add("meena@s1.test", "manager");
    assert_eq!(status, 200, "{manager}");
    assert_status(&add("ravi@s1.test", "manager"), 409, "ALREADY_EXISTS");
    assert_status(&add("owner@s2.test", "cashier"), 409, "ALREADY_EXISTS");
    assert_status(&add("new@s1.test", "owner"), 400, "INVALID_ARGUMENT");
    assert_status(&add("not an email", "cashier"), 400, "INVALID_ARGUMENT");
    let short = people.add(
        &owner,
        json!({"email": "short@s1.test", "password": "abc", "role": "cashier"}),
    );
    assert_status(&short, 400, "INVALID_ARGUMENT");
    let (_, listed) = people.list(Some(&owner));
    let emails: Vec<&str> = listed["people"]
        .as_array()
        .unwrap()
        .iter()
        .map(|person| person["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["meena@s1.test", "owner@s1.test", "ravi@s1.test"]);

    // Nobody but the owner of s1: not its manager or cashier, not another shop's owner, not
    // a stranger; another shop's people are invisible.
    let cashier_token = id_token(&base, "ravi@s1.test");
    let manager_token = id_token(&base, "meena@s1.test");
    let other_owner = id_token(&base, "owner@s2.test");
    for token in [&cashier_token, &manager_token, &other_owner] {
        let new_manager = json!({"email": "x@s1.test", "password": PASSWORD, "role": "manager"});
        for reply in [
            people.list(Some(token)),
            people.add(token, new_manager),
            people.change(token, &cashier_id, json!({"role": "manager"})),
        ] {
            assert_status(&reply, 403, "PERMISSION_DENIED");
        }
    }
    for token in [None, Some("not-a-token")] {
        assert_status(&people.list(token), 401, "UNAUTHENTICATED");
    }
    let (_, theirs) = PeopleOfShop::new(&base, "s2").list(Some(&other_owner));
    let their_owner_id = theirs["people"][0]["userId"].as_str().unwrap().to_owned();
    assert_status(
        &people.change(&owner, &their_owner_id, json!({"disabled": true})),
        404,
        "NOT_FOUND",
    );
    assert_status(
        &people.change(&owner, &owner_id, json!({"role": "cashier"})),
        400,
        "FAILED_PRECONDITION",
    );
    assert_status(
        &people.change(&owner, &cashier_id, json!({"role": "owner"})),
        400,
        "INVALID_ARGUMENT",
    );
    assert_status(
        &people.change(&owner, &cashier_id, json!({"rank": "owner"})),
        400,
        "INVALID_ARGUMENT",
    );

    // A role change: the token claiming the old role stops at once; a refresh has the new one.
    let product = document_url(&base, "shops/s1/bills/b1");
    let write = json!({"fields": {"total": {"integerValue": "1"}}});
    assert_eq!(
        call("PATCH", &product, Some(&cashier_token), Some(&write)).0,
        200
    );
    let signed_in = sign_in(&base, "ravi@s1.test", PASSWORD).1;
    let refresh_token = signed_in["refreshToken"].as_str().unwrap().to_owned();
    let (status, promoted) = people.change(
        &owner,
        &cashier_id,
        json!({"role": "manager", "displayName": "Ravi K"}),
    );
    assert_eq!(status, 200, "{promoted}");
    assert_eq!(
        (promoted["role"].as_str(), promoted["displayName"].as_str()),
        (Some("manager"), Some("Ravi K"))
    );
    assert_status(
        &call("PATCH", &product, Some(&cashier_token), Some(&write)),
        401,
        "UNAUTHENTICATED",
    );
    let (status, refreshed) = refresh(&base, &refresh_token);
    assert_eq!(status, 200, "{refreshed}");
    let promoted_token = refreshed["id_token"].as_str().unwrap().to_owned();
    assert_eq!(token_claims(&promoted_token)["role"], "manager");
    assert_eq!(
        call("PATCH", &product, Some(&promoted_token), Some(&write)).0,
        200
    );

    // Disabling: the token stops at once, sign-in and refresh say USER_DISABLED; enabling
    // lets the person sign in again.
    let (status, disabled) = people.change(&owner, &cashier_id, json!({"disabled": true}));
    assert_eq!(
        (status, disabled["disabled"].as_bool()),
        (200, Some(true)),
        "{disabled}"
    );
    assert_status(
        &call("PATCH", &product, Some(&promoted_token), Some(&write)),
        401,
        "UNAUTHENTICATED",
    );
    let refused = sign_in(&base, "ravi@s1.test", PASSWORD);
    assert_eq!(
        (refused.0, refused.1["error"]["message"].as_str()),
        (400, Some("USER_DISABLED")),
        "{}",
        refused.1
    );
    let (status, refused) = refresh(&base, &refresh_token);
    assert_eq!(status, 400, "{refused}");
    let (status, enabled) = people.change(&owner, &cashier_id, json!({"disabled": false}));
    assert_eq!(
        (status, enabled["disabled"].as_bool()),
        (200, Some(false)),
        "{enabled}"
    );
    let again = id_token(&base, "ravi@s1.test");
    assert_eq!(call("PATCH", &product, Some(&again), Some(&write)).0, 200);

    // A new password from the owner: the old one stops working.
    let (status, _) = people.change(&owner, &cashier_id, json!({"password": "a brand new one"}));
    assert_eq!(status, 200);
    assert_eq!(
        sign_in(&base, "ravi@s1.test", PASSWORD).1["error"]["message"],
        "INVALID_LOGIN_CREDENTIALS"
    );
    assert_eq!(sign_in(&base, "ravi@s1.test", "a brand new one").0, 200);
}

/// An unclaimed server in process, on a hand-moved clock.
struct InProcess {
    _data_directory: tempfile::TempDir,
    router: axum::Router,
    clock: Arc<ManualClock>,
    code: String,
}

const START: i64 = 1_800_000_000;

impl InProcess {
    fn new(token_lifetime_seconds: i64) -> InProcess {
        let data_directory = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::starting_at(START));
        let state = AppState::open_authenticated(
            ServerConfig {
                data_directory: data_directory.path().to_owned(),
                app_directory: None,
                dev_mode: false,
            },
            AuthConfig {
                clock: clock.clone(),
                id_token_lifetime_seconds: token_lifetime_seconds,
                ..AuthConfig::new(PROJECT)
            },
        )
        .unwrap();
        let code = state.auth().unwrap().pending_setup_code().unwrap();
        InProcess {
            _data_directory: data_directory,
            router: app(state),
            clock,
            code,
        }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> (StatusCode, axum::http::HeaderMap, Value) {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let mut request = request.body(Body::from(body.to_string())).unwrap();
        let address: SocketAddr = "192.0.2.9:40000".parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(address));
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            headers,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }
}

#[tokio::test]
async fn wrong_setup_codes_are_rate_limited_like_passwords() {
    let server = InProcess::new(3600);
    let claim = |code: &str| claim_body(code, "owner@kirana.test");
    for _ in 0..3 {
        let (status, _, body) = server
            .send(
                "POST",
                "/counterbook/v1/setup:claim",
                None,
                claim("AAAA-BBBB-CCCC"),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }
    // Even the right code waits now: the limit is checked before any code.
    let (status, headers, body) = server
        .send(
            "POST",
            "/counterbook/v1/setup:claim",
            None,
            claim(&server.code),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(headers["retry-after"], "5");
    server.clock.advance(5);
    let (status, _, body) = server
        .send(
            "POST",
            "/counterbook/v1/setup:claim",
            None,
            claim(&server.code),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["shopId"], "kirana-1");
}

#[tokio::test]
async fn a_short_lived_token_expires_with_firestores_unauthenticated_and_a_refresh_renews_it() {
    let server = InProcess::new(5);
    let (status, _, owner) = server
        .send(
            "POST",
            "/counterbook/v1/setup:claim",
            None,
            claim_body(&server.code, "owner@kirana.test"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{owner}");
    assert_eq!(owner["expiresIn"], "5");
    let token = owner["idToken"].as_str().unwrap().to_owned();
    let shop = format!("/v1/projects/{PROJECT}/databases/(default)/documents/shops/kirana-1");
    let (status, _, body) = server.send("GET", &shop, Some(&token), Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    server.clock.advance(4);
    assert_eq!(
        server.send("GET", &shop, Some(&token), Value::Null).await.0,
        StatusCode::OK
    );
    server.clock.advance(1);
    let (status, _, body) = server.send("GET", &shop, Some(&token), Value::Null).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], 401);
    assert_eq!(body["error"]["status"], "UNAUTHENTICATED");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Request had invalid authentication credentials"),
        "{body}"
    );
    let (status, _, refreshed) = server
        .send(
            "POST",
            REFRESH_PATH,
            None,
            json!({"grant_type": "refresh_token", "refresh_token": owner["refreshToken"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    assert_eq!(refreshed["expires_in"], "5");
    let renewed = refreshed["id_token"].as_str().unwrap();
    assert_eq!(
        server
            .send("GET", &shop, Some(renewed), Value::Null)
            .await
            .0,
        StatusCode::OK
    );
}
