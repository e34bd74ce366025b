//! Serving the built PWA (`--app DIST_DIR`) next to the API.
//!
//! Files come from `tower_http`'s `ServeDir`, which decodes the path and refuses any `..` or
//! absolute component, so nothing outside the directory can be reached. A GET that finds no file
//! but accepts `text/html` is a client-side route of the single-page app and gets `index.html`.
//! `index.html` and `sw.js` are sent with `Cache-Control: no-cache` so that a new deployment
//! reaches installed apps: the service worker decides about caching, not the HTTP cache.
//! Without `--app`, `/` answers a short plain-text note.
//!
//! Every answer here carries `X-Content-Type-Options: nosniff` (a file is only ever what its
//! extension says), `Content-Security-Policy: frame-ancestors 'none'` and `X-Frame-Options:
//! DENY` (no other site can frame the till and trick a cashier into clicks), and
//! `Referrer-Policy: no-referrer` (a link out of the app says nothing of the shop's URLs).

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::header::{ACCEPT, CACHE_CONTROL};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

use crate::AppState;

const NO_APP_NOTE: &str = "counterbook-server is running.\n\
The Firestore REST API is at /v1/projects/{project}/databases/(default)/documents.\n\
Start it with --app DIST_DIR to serve the Counterbook app here.\n";

/// Files that must be revalidated on every load.
const NO_CACHE_PATHS: &[&str] = &["/", "/index.html", "/sw.js"];

/// The router for everything outside `/v1`: the app's files, or the note when there is no app.
pub fn router(app_directory: Option<PathBuf>) -> Router<AppState> {
    files_router(app_directory).layer(axum::middleware::map_response(with_security_headers))
}

/// The headers every answer of this router carries (see the module doc).
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("x-content-type-options", "nosniff"),
    ("content-security-policy", "frame-ancestors 'none'"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
];

async fn with_security_headers(mut response: Response) -> Response {
    for (name, value) in SECURITY_HEADERS {
        response.headers_mut().insert(
            axum::http::HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    response
}

fn files_router(app_directory: Option<PathBuf>) -> Router<AppState> {
    match app_directory {
        Some(directory) => {
            let directory = Arc::new(directory);
            Router::new().fallback(move |request: Request| {
                let directory = Arc::clone(&directory);
                async move { serve_app_file(&directory, request).await }
            })
        }
        None => Router::new()
            .route("/", get(|| async { NO_APP_NOTE }))
            .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") }),
    }
}

async fn serve_app_file(directory: &std::path::Path, request: Request) -> Response {
    let is_read = request.method() == Method::GET || request.method() == Method::HEAD;
    let accepts_html = request
        .headers()
        .get(ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    let path = request.uri().path().to_owned();
    // Kept to ask for index.html if the file turns out not to exist.
    let mut index_request = Request::new(axum::body::Body::empty());
    *index_request.method_mut() = request.method().clone();
    *index_request.headers_mut() = request.headers().clone();

    let served = match ServeDir::new(directory).oneshot(request).await {
        Ok(response) => response.map(axum::body::Body::new),
        Err(infallible) => match infallible {},
    };
    let (mut response, no_cache) =
        if served.status() == StatusCode::NOT_FOUND && is_read && accepts_html {
            let index = match ServeFile::new(directory.join("index.html"))
                .oneshot(index_request)
                .await
            {
                Ok(response) => response.map(axum::body::Body::new),
                Err(infallible) => match infallible {},
            };
            (index, true)
        } else {
            let no_cache = NO_CACHE_PATHS.contains(&path.as_str());
            (served.into_response(), no_cache)
        };
    if no_cache && response.status().is_success() {
        response
            .headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    response
}
