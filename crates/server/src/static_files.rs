//! Serving the built PWA (`--app DIST_DIR`) next to the API.
//!
//! Files come from `tower_http`'s `ServeDir`, which decodes the path and refuses any `..` or
//! absolute component, so nothing outside the directory can be reached. A GET that finds no file
//! but accepts `text/html` is a client-side route of the single-page app and gets `index.html`.
//! Without `--app`, `/` answers a short plain-text note.
//!
//! Caching: a file whose name carries Trunk's content hash (`style-c5ec9c89aa5b4e41.css`,
//! `counterbook-66eab09cf58a86e6_bg.wasm`) never changes, so it is `immutable` for a year;
//! everything else (`index.html`, `sw.js`, `boot.js`, the manifest, icons) is `no-cache`: the
//! browser revalidates it on every load, so a new deployment reaches installed apps and the
//! service worker decides what is kept offline.
//!
//! Compression: the build writes `FILE.br` and `FILE.gz` beside each compressible file
//! (`tools/finish-build.mjs`); a browser that accepts brotli or gzip gets those bytes with
//! `Content-Encoding`, and every file's answer says `Vary: Accept-Encoding`. The content type
//! is the original file's (`application/wasm` for the wasm, which streaming compilation needs).
//!
//! Every answer here carries `X-Content-Type-Options: nosniff` (a file is only ever what its
//! extension says), `X-Frame-Options: DENY` and the `Content-Security-Policy` of
//! `ContentSecurityPolicy` (no framing, no inline script, connections only to this server and
//! the configured sync endpoints), and `Referrer-Policy: no-referrer` (a link out of the app
//! says nothing of the shop's URLs). `sw.js` also says `Service-Worker-Allowed: /`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::Request;
use axum::http::header::{ACCEPT, CACHE_CONTROL, VARY};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

use crate::AppState;

const NO_APP_NOTE: &str = "counterbook-server is running.\n\
The Firestore REST API is at /v1/projects/{project}/databases/(default)/documents.\n\
Start it with --app DIST_DIR to serve the Counterbook app here.\n";

/// `Cache-Control` of a file whose name carries its content hash.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of every other file: revalidate on each use.
pub const NO_CACHE: &str = "no-cache";

/// The router for everything outside `/v1`: the app's files, or the note when there is no app.
pub fn router(app_directory: Option<PathBuf>, policy: &ContentSecurityPolicy) -> Router<AppState> {
    let policy = HeaderValue::from_str(&policy.header_value())
        .unwrap_or_else(|_| HeaderValue::from_static(ContentSecurityPolicy::FALLBACK));
    files_router(app_directory).layer(axum::middleware::map_response(move |response: Response| {
        let policy = policy.clone();
        async move { with_security_headers(response, policy) }
    }))
}

/// The headers every answer of this router carries besides its `Content-Security-Policy`.
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
];

fn with_security_headers(mut response: Response, policy: HeaderValue) -> Response {
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    headers.insert(HeaderName::from_static("content-security-policy"), policy);
    response
}

/// What the app's pages may load and reach: its own files, its WebAssembly (compiled from
/// bytes, hence `'wasm-unsafe-eval'`, which allows no JavaScript `eval`), and connections to
/// this server and to the sync endpoints it is configured with. No inline script anywhere
/// (Trunk's loader is `www/boot.js`) and no inline style: styles come from the app's own
/// style sheets, and what the app sets at run time goes through the CSSOM, which a policy does
/// not govern (the products list places its rows with `style:top`, which Leptos sets with
/// `style.setProperty`, never a `style` attribute; the receipt's paper size is an `@page` rule
/// in a constructed style sheet, never a `<style>` element).
#[derive(Clone, Debug, Default)]
pub struct ContentSecurityPolicy {
    /// Origins besides this server's own that the app may connect to (`connect-src`).
    pub sync_endpoints: Vec<String>,
    /// Dev mode: also any port on `127.0.0.1` and `localhost` over plain HTTP, where the
    /// Firestore emulator and other test servers run.
    pub allow_loopback_endpoints: bool,
}

impl ContentSecurityPolicy {
    /// Used only if a configured endpoint makes the header invalid (it was checked at start).
    const FALLBACK: &'static str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
        style-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

    /// The header's value.
    pub fn header_value(&self) -> String {
        let mut connect_sources = vec!["'self'".to_owned()];
        if self.allow_loopback_endpoints {
            connect_sources.push("http://127.0.0.1:*".to_owned());
            connect_sources.push("http://localhost:*".to_owned());
        }
        connect_sources.extend(self.sync_endpoints.iter().cloned());
        format!(
            "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
             style-src 'self'; img-src 'self' data: blob:; \
             connect-src {}; worker-src 'self'; manifest-src 'self'; object-src 'none'; \
             base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            connect_sources.join(" ")
        )
    }
}

/// Checks an origin given for `connect-src`: `scheme://host[:port]`, nothing a policy header
/// could misread (no spaces, quotes, semicolons or commas).
pub fn check_sync_endpoint(origin: &str) -> Result<(), String> {
    let valid_scheme = origin.starts_with("https://") || origin.starts_with("http://");
    let valid_characters = origin
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '/' | '.' | '-' | '*' | '[' | ']'));
    let host = origin.split_once("://").map_or("", |(_, rest)| rest);
    if valid_scheme && valid_characters && !host.is_empty() && !host.contains('/') {
        Ok(())
    } else {
        Err(format!(
            "{origin:?} is not an origin such as https://firestore.googleapis.com"
        ))
    }
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

/// Whether a file name carries Trunk's content hash: a `-` and 12 to 16 lowercase hex digits
/// before the extension (or before wasm-bindgen's `_bg`). Trunk writes the 64-bit hash in hex
/// without leading zeros, so one name in sixteen has 15 digits (`counter-c6efb2887c52a7b.css`),
/// one in 256 has 14, and so on.
pub fn has_content_hash(file_name: &str) -> bool {
    let stem = file_name.split('.').next().unwrap_or("");
    let stem = stem.strip_suffix("_bg").unwrap_or(stem);
    match stem.rsplit_once('-') {
        Some((name, hash)) => {
            !name.is_empty()
                && (12..=16).contains(&hash.len())
                && hash
                    .bytes()
                    .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
        }
        None => false,
    }
}

async fn serve_app_file(directory: &Path, request: Request) -> Response {
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

    let served = match ServeDir::new(directory)
        .precompressed_br()
        .precompressed_gzip()
        .oneshot(request)
        .await
    {
        Ok(response) => response.map(axum::body::Body::new),
        Err(infallible) => match infallible {},
    };
    let (mut response, cache_control) =
        if served.status() == StatusCode::NOT_FOUND && is_read && accepts_html {
            let index = match ServeFile::new(directory.join("index.html"))
                .precompressed_br()
                .precompressed_gzip()
                .oneshot(index_request)
                .await
            {
                Ok(response) => response.map(axum::body::Body::new),
                Err(infallible) => match infallible {},
            };
            (index, NO_CACHE)
        } else {
            let file_name = path.rsplit('/').next().unwrap_or("");
            let cache_control = if has_content_hash(file_name) {
                IMMUTABLE
            } else {
                NO_CACHE
            };
            (served.into_response(), cache_control)
        };
    let status = response.status();
    if status.is_success() || status == StatusCode::NOT_MODIFIED {
        let headers = response.headers_mut();
        headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache_control));
        headers.append(VARY, HeaderValue::from_static("accept-encoding"));
        if path == "/sw.js" {
            headers.insert(
                HeaderName::from_static("service-worker-allowed"),
                HeaderValue::from_static("/"),
            );
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_hashed(file_name: &str, expected: bool) {
        assert_eq!(has_content_hash(file_name), expected, "{file_name}");
    }

    #[test]
    fn trunk_hashed_names_are_told_from_plain_ones() {
        check_hashed("style-c5ec9c89aa5b4e41.css", true);
        check_hashed("counterbook-66eab09cf58a86e6_bg.wasm", true);
        check_hashed("counterbook-66eab09cf58a86e6.js", true);
        check_hashed("counterbook-66eab09cf58a86e6_bg.wasm.br", true);
        check_hashed("index.html", false);
        check_hashed("sw.js", false);
        check_hashed("boot.js", false);
        check_hashed("icon-192.png", false);
        check_hashed("manifest.webmanifest", false);
        check_hashed("-66eab09cf58a86e6.js", false);
        check_hashed("style-C5EC9C89AA5B4E41.css", false);
        // Trunk drops the hash's leading zeros: 15 digits are as hashed as 16.
        check_hashed("counter-c6efb2887c52a7b.css", true);
        check_hashed("style-c5ec9c8.css", false);
        check_hashed("icon-192.png", false);
        check_hashed("style-c5ec9c89aa5b4e41a.css", false);
    }

    #[test]
    fn the_policy_allows_only_this_server_and_the_configured_endpoints() {
        let policy = ContentSecurityPolicy {
            sync_endpoints: vec!["https://firestore.googleapis.com".to_owned()],
            allow_loopback_endpoints: false,
        }
        .header_value();
        assert!(policy.contains("script-src 'self' 'wasm-unsafe-eval';"));
        assert!(policy.contains("connect-src 'self' https://firestore.googleapis.com;"));
        assert!(policy.contains("frame-ancestors 'none'"));
        assert!(!policy.contains("127.0.0.1"));
        assert!(!policy.contains(" 'unsafe-eval'"));
        assert!(!policy.contains("script-src 'self' 'unsafe-inline'"));
        // No inline style either, for elements or attributes (the app uses the CSSOM).
        assert!(policy.contains("style-src 'self';"));
        assert!(!policy.contains("'unsafe-inline'"));
        let dev = ContentSecurityPolicy {
            allow_loopback_endpoints: true,
            ..ContentSecurityPolicy::default()
        }
        .header_value();
        assert!(dev.contains("connect-src 'self' http://127.0.0.1:* http://localhost:*;"));
    }

    #[test]
    fn sync_endpoints_must_be_plain_origins() {
        assert!(check_sync_endpoint("https://firestore.googleapis.com").is_ok());
        assert!(check_sync_endpoint("http://192.168.1.10:8080").is_ok());
        for bad in [
            "firestore.googleapis.com",
            "https://",
            "https://a.example/path",
            "https://a.example; script-src *",
            "https://a.example 'unsafe-inline'",
        ] {
            assert!(check_sync_endpoint(bad).is_err(), "{bad}");
        }
    }
}
