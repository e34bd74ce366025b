//! What a tablet sees before it trusts the server: the `/setup/ca` page that lets it download
//! and install the local certificate authority (`tls`), and, for plain HTTP, a redirect to
//! HTTPS for everything else.
//!
//! - `GET /setup/ca`: a short page with the CA's SHA-256 fingerprint (compare it with the one
//!   the server printed when it started, since a page fetched over plain HTTP could have been
//!   changed on the way), a download link and steps for Android and desktop Chrome.
//! - `GET /setup/ca.crt`: the CA certificate in DER as `application/x-x509-ca-cert`, the type
//!   Android's and Windows' certificate installers open; `GET /setup/ca.pem`: the same in PEM.
//! - Plain HTTP (`plain_http_router`): `/setup/…` as above, since a tablet that does not trust
//!   the CA yet cannot open it over HTTPS without a warning; every other request is answered
//!   `308 Permanent Redirect` to the same path on `https://`, on the same port (a connection
//!   whose first byte is not a TLS handshake, `connections::serve_tls`) or on the HTTPS
//!   listener's port (`--http-addr`).

use std::sync::Arc;

use axum::extract::Request;
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE, HOST, LOCATION};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::tls::LocalCaCertificate;

/// The setup page's path.
pub const SETUP_CA_PATH: &str = "/setup/ca";
/// The CA certificate in DER.
pub const CA_CERTIFICATE_PATH: &str = "/setup/ca.crt";
/// The CA certificate in PEM.
pub const CA_CERTIFICATE_PEM_PATH: &str = "/setup/ca.pem";
/// The name a downloaded CA certificate is saved under.
pub const CA_DOWNLOAD_NAME: &str = "counterbook-local-ca.crt";

/// Where a plain-HTTP request is sent.
#[derive(Clone, Copy, Debug)]
pub enum HttpsRedirect {
    /// The same host and port as the request's `Host` (HTTP and HTTPS share the port).
    SamePort,
    /// The request's host on this port (a separate `--http-addr` listener).
    Port(u16),
}

/// The routes of the setup page for a server with a local CA, for any router state.
pub fn router<S: Clone + Send + Sync + 'static>(
    authority: Arc<LocalCaCertificate>,
    redirect: HttpsRedirect,
) -> Router<S> {
    let page = Arc::clone(&authority);
    let der = Arc::clone(&authority);
    let pem = authority;
    Router::new()
        .route(
            SETUP_CA_PATH,
            get(move |request: Request| {
                let page = Arc::clone(&page);
                async move { setup_page(&page, &request, redirect) }
            }),
        )
        .route(
            CA_CERTIFICATE_PATH,
            get(move || {
                let der = Arc::clone(&der);
                async move { certificate_download(der.der.clone(), "application/x-x509-ca-cert") }
            }),
        )
        .route(
            CA_CERTIFICATE_PEM_PATH,
            get(move || {
                let pem = Arc::clone(&pem);
                async move {
                    certificate_download(pem.pem.clone().into_bytes(), "application/x-pem-file")
                }
            }),
        )
}

/// The router of plain-HTTP connections: the setup page (when there is a local CA) and a
/// redirect to HTTPS for everything else.
pub fn plain_http_router(
    authority: Option<Arc<LocalCaCertificate>>,
    redirect: HttpsRedirect,
) -> Router {
    let fallback = Router::new()
        .fallback(move |request: Request| async move { redirect_to_https(&request, redirect) });
    match authority {
        Some(authority) => router(authority, redirect).merge(fallback),
        None => fallback,
    }
}

fn certificate_download(bytes: Vec<u8>, content_type: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"counterbook-local-ca.crt\""),
            ),
            (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                axum::http::HeaderName::from_static("x-content-type-options"),
                HeaderValue::from_static("nosniff"),
            ),
        ],
        bytes,
    )
        .into_response()
}

/// The request's `Host`, if it is a plain `host[:port]` (no path, user or odd characters).
fn request_host(request: &Request) -> Option<&str> {
    let host = request.headers().get(HOST)?.to_str().ok()?;
    let plain = !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b".-:[]".contains(&byte));
    plain.then_some(host)
}

/// `host` with its port replaced by `port` (none for 443).
fn with_port(host: &str, port: u16) -> String {
    let bare = match host.rfind(']') {
        // An IPv6 literal: the port, if any, follows the bracket.
        Some(bracket) => &host[..=bracket],
        None => host.split(':').next().unwrap_or(host),
    };
    if port == 443 {
        bare.to_owned()
    } else {
        format!("{bare}:{port}")
    }
}

/// The HTTPS origin a request on `host` is sent to.
fn https_origin(host: &str, redirect: HttpsRedirect) -> String {
    match redirect {
        HttpsRedirect::SamePort => format!("https://{host}"),
        HttpsRedirect::Port(port) => format!("https://{}", with_port(host, port)),
    }
}

fn redirect_to_https(request: &Request, redirect: HttpsRedirect) -> Response {
    let Some(host) = request_host(request) else {
        return (
            StatusCode::BAD_REQUEST,
            "this server answers over HTTPS; the request named no host to send it to\n",
        )
            .into_response();
    };
    let path_and_query = request
        .uri()
        .path_and_query()
        .map_or("/", |path| path.as_str());
    let location = format!("{}{path_and_query}", https_origin(host, redirect));
    match HeaderValue::from_str(&location) {
        Ok(location) => (
            StatusCode::PERMANENT_REDIRECT,
            [(LOCATION, location)],
            "this server answers over HTTPS\n",
        )
            .into_response(),
        Err(_) => (StatusCode::BAD_REQUEST, "bad request target\n").into_response(),
    }
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn setup_page(
    authority: &LocalCaCertificate,
    request: &Request,
    redirect: HttpsRedirect,
) -> Response {
    let app_url = request_host(request).map_or_else(
        || "the server's https:// address".to_owned(),
        |host| format!("{}/", https_origin(host, redirect)),
    );
    let app_url = escape_html(&app_url);
    let fingerprint = authority.fingerprint_sha256();
    let html = format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Install Counterbook's certificate</title>
</head>
<body>
<h1>Install this server's certificate</h1>
<p>This Counterbook server made its own certificate authority. Install it once on each tablet
or computer, and the till opens over HTTPS at <a href="{app_url}">{app_url}</a>, where it works
offline and can be installed as an app.</p>
<p><a href="{CA_CERTIFICATE_PATH}" download="{CA_DOWNLOAD_NAME}" data-testid="download-ca"><strong>Download the certificate</strong></a>
({CA_DOWNLOAD_NAME}; also as <a href="{CA_CERTIFICATE_PEM_PATH}">PEM</a>)</p>
<p>Its SHA-256 fingerprint must be exactly the one the server printed when it started:</p>
<p><code data-testid="ca-fingerprint">{fingerprint}</code></p>
<h2>Android</h2>
<ol>
<li>Download the certificate above.</li>
<li>Open <em>Settings</em>, <em>Security and privacy</em> (or <em>Security</em>), <em>More security settings</em>,
<em>Encryption and credentials</em>, <em>Install a certificate</em>, <em>CA certificate</em>.</li>
<li>Tap <em>Install anyway</em>, confirm with the screen lock, and choose {CA_DOWNLOAD_NAME} from <em>Downloads</em>.</li>
<li>Open <a href="{app_url}">{app_url}</a> in Chrome.</li>
</ol>
<h2>Chrome on a computer</h2>
<ol>
<li>Download the certificate above.</li>
<li>Open <code>chrome://certificate-manager</code>, choose <em>Local certificates</em>, then
<em>Custom</em>, <em>Installed by you</em>, <em>Trusted certificates</em>, <em>Import</em>, and pick
{CA_DOWNLOAD_NAME}. (Windows and macOS: you may instead open the file and add it to the trusted
root certificate authorities, or the System keychain set to <em>Always Trust</em>.)</li>
<li>Open <a href="{app_url}">{app_url}</a>.</li>
</ol>
</body>
</html>
"#
    );
    (
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                axum::http::HeaderName::from_static("content-security-policy"),
                HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
            ),
        ],
        html,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redirect_keeps_the_host_and_puts_the_https_port() {
        assert_eq!(
            https_origin("192.168.1.10:8443", HttpsRedirect::SamePort),
            "https://192.168.1.10:8443"
        );
        assert_eq!(
            https_origin("192.168.1.10:8080", HttpsRedirect::Port(8443)),
            "https://192.168.1.10:8443"
        );
        assert_eq!(
            https_origin("shop.local", HttpsRedirect::Port(443)),
            "https://shop.local"
        );
        assert_eq!(
            https_origin("[fd00::5]:80", HttpsRedirect::Port(8443)),
            "https://[fd00::5]:8443"
        );
    }
}
