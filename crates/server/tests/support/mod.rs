//! Helpers shared by the tests: a server on a temporary data directory, driven in process with
//! `oneshot` requests, JSON builders for the bodies the app sends, (`binary`) the real binary
//! and the emulator started as processes, and (`accounts`) HTTP calls, shops and people made
//! with the admin CLI, and signing in, for tests of the binary with accounts.

#![allow(dead_code)] // Each test file uses a different subset.

pub mod accounts;
pub mod binary;

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use counterbook_server::{app, AppState, ServerConfig};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

pub const PROJECT: &str = "demo-counterbook";
pub const ROOT: &str = "projects/demo-counterbook/databases/(default)/documents";

/// A server on its own temporary data directory.
pub struct TestServer {
    pub data_directory: tempfile::TempDir,
    pub router: Router,
}

/// A response: status, headers and the body (JSON when it parses as JSON, else a string).
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
}

pub fn open_app(data_directory: &Path, app_directory: Option<PathBuf>) -> Router {
    let state = AppState::open(ServerConfig {
        data_directory: data_directory.to_owned(),
        app_directory,
        dev_mode: true,
    })
    .expect("opening the data directory");
    app(state)
}

impl TestServer {
    pub fn new() -> TestServer {
        let data_directory = tempfile::tempdir().unwrap();
        let router = open_app(data_directory.path(), None);
        TestServer {
            data_directory,
            router,
        }
    }

    /// Drops the running app and opens the same data directory again, as after a restart.
    pub fn reopen(self) -> TestServer {
        let TestServer {
            data_directory,
            router,
        } = self;
        drop(router);
        let router = open_app(data_directory.path(), None);
        TestServer {
            data_directory,
            router,
        }
    }

    pub async fn send(&self, request: Request<Body>) -> TestResponse {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        TestResponse {
            status,
            headers,
            body,
        }
    }

    /// POSTs `body` (raw text) to `/v1/{ROOT}{suffix}` with the given content type.
    pub async fn post_raw(&self, suffix: &str, content_type: &str, body: &str) -> TestResponse {
        let request = Request::post(format!("/v1/{ROOT}{suffix}"))
            .header("content-type", content_type)
            .body(Body::from(body.to_owned()))
            .unwrap();
        self.send(request).await
    }

    pub async fn post(&self, suffix: &str, body: Value) -> TestResponse {
        self.post_raw(suffix, "application/json", &body.to_string())
            .await
    }

    /// Commits and asserts success; returns the CommitResponse JSON.
    pub async fn commit_ok(&self, writes: Value) -> Value {
        let response = self.post(":commit", json!({ "writes": writes })).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
        response.body
    }

    pub async fn commit(&self, writes: Value) -> TestResponse {
        self.post(":commit", json!({ "writes": writes })).await
    }

    pub async fn get(&self, relative_path: &str) -> TestResponse {
        let request = Request::get(format!("/v1/{ROOT}/{relative_path}"))
            .body(Body::empty())
            .unwrap();
        self.send(request).await
    }

    /// Runs a structured query under `parent` ("" for the root) and asserts success.
    pub async fn run_query(&self, parent: &str, structured_query: Value) -> Vec<Value> {
        let suffix = if parent.is_empty() {
            ":runQuery".to_owned()
        } else {
            format!("/{parent}:runQuery")
        };
        let response = self
            .post(&suffix, json!({ "structuredQuery": structured_query }))
            .await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
        response.body.as_array().expect("a JSON array").clone()
    }
}

/// The full name of a document path.
pub fn name(relative_path: &str) -> String {
    format!("{ROOT}/{relative_path}")
}

/// An `update` write replacing the whole document.
pub fn update(relative_path: &str, fields: Value) -> Value {
    json!({"update": {"name": name(relative_path), "fields": fields}})
}

/// Asserts the Firestore error shape and returns the message.
pub fn assert_error(response: &TestResponse, http_status: u16, status: &str) -> String {
    assert_eq!(
        response.status.as_u16(),
        http_status,
        "status of {}",
        response.body
    );
    let error = &response.body["error"];
    assert_eq!(error["code"], json!(http_status), "{}", response.body);
    assert_eq!(error["status"], json!(status), "{}", response.body);
    let message = error["message"].as_str().expect("a message").to_owned();
    assert!(!message.is_empty());
    message
}
