//! Serving the built PWA with `--app`: the index at `/`, the single-page-app fallback, no-cache
//! headers on the files that must revalidate and immutable ones on hashed files, precompressed
//! copies by `Accept-Encoding`, the Content-Security-Policy, and no way out of the directory.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use support::TestServer;

struct AppFixture {
    // Holds dist/ and, beside it, a secret file that must never be served.
    _root: tempfile::TempDir,
    server: TestServer,
}

fn fixture() -> AppFixture {
    let root = tempfile::tempdir().unwrap();
    let dist = root.path().join("dist");
    std::fs::create_dir_all(dist.join("assets")).unwrap();
    std::fs::write(
        dist.join("index.html"),
        "<!doctype html><title>Counterbook</title>",
    )
    .unwrap();
    std::fs::write(
        dist.join("sw.js"),
        "self.addEventListener('fetch', () => {});",
    )
    .unwrap();
    std::fs::write(dist.join("assets/app.css"), "body{}").unwrap();
    std::fs::write(dist.join("style-0123456789abcdef.css"), "p{}").unwrap();
    std::fs::write(dist.join("style-0123456789abcdef.css.gz"), "GZIP").unwrap();
    std::fs::write(dist.join("manifest.webmanifest"), "{}").unwrap();
    std::fs::write(root.path().join("secret.txt"), "TOP SECRET").unwrap();
    let data_directory = tempfile::tempdir().unwrap();
    let router = support::open_app(data_directory.path(), Some(dist));
    AppFixture {
        _root: root,
        server: TestServer {
            data_directory,
            router,
        },
    }
}

async fn get(fixture: &AppFixture, uri: &str, accept: &str) -> support::TestResponse {
    let request = Request::get(uri)
        .header("accept", accept)
        .body(Body::empty())
        .unwrap();
    fixture.server.send(request).await
}

fn text(body: &Value) -> &str {
    body.as_str().unwrap_or_default()
}

fn cache_control(response: &support::TestResponse) -> &str {
    response
        .headers
        .get("cache-control")
        .map(|value| value.to_str().unwrap())
        .unwrap_or("")
}

#[tokio::test]
async fn the_root_serves_index_html_without_caching() {
    let fixture = fixture();
    let response = get(&fixture, "/", "text/html").await;
    assert_eq!(response.status, StatusCode::OK);
    assert!(text(&response.body).contains("<title>Counterbook</title>"));
    assert_eq!(cache_control(&response), "no-cache");
}

#[tokio::test]
async fn client_side_routes_fall_back_to_index_html_only_for_html_requests() {
    let fixture = fixture();
    let response = get(&fixture, "/some/route", "text/html,application/xhtml+xml").await;
    assert_eq!(response.status, StatusCode::OK);
    assert!(text(&response.body).contains("<title>Counterbook</title>"));
    assert_eq!(cache_control(&response), "no-cache");

    let response = get(&fixture, "/missing.js", "*/*").await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_service_worker_is_never_cached_and_assets_are_served() {
    let fixture = fixture();
    let response = get(&fixture, "/sw.js", "*/*").await;
    assert_eq!(response.status, StatusCode::OK);
    assert!(text(&response.body).contains("addEventListener"));
    assert_eq!(cache_control(&response), "no-cache");

    assert_eq!(response.headers.get("service-worker-allowed").unwrap(), "/");

    let response = get(&fixture, "/assets/app.css", "text/css").await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(text(&response.body), "body{}");
    assert_eq!(cache_control(&response), "no-cache");

    let response = get(&fixture, "/manifest.webmanifest", "*/*").await;
    assert_eq!(cache_control(&response), "no-cache");
    assert_eq!(
        response.headers.get("content-type").unwrap(),
        "application/manifest+json"
    );
}

#[tokio::test]
async fn hashed_files_are_immutable_and_sent_precompressed_when_accepted() {
    let fixture = fixture();
    let request = |encoding: &str| {
        Request::get("/style-0123456789abcdef.css")
            .header("accept-encoding", encoding)
            .body(Body::empty())
            .unwrap()
    };
    let response = fixture.server.send(request("gzip, br")).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(text(&response.body), "GZIP");
    assert_eq!(response.headers.get("content-encoding").unwrap(), "gzip");
    assert_eq!(response.headers.get("content-type").unwrap(), "text/css");
    assert_eq!(
        cache_control(&response),
        "public, max-age=31536000, immutable"
    );
    let vary: Vec<_> = response.headers.get_all("vary").iter().collect();
    assert!(
        vary.iter()
            .any(|value| value.to_str().unwrap().contains("accept-encoding")),
        "{vary:?}"
    );

    let response = fixture.server.send(request("identity")).await;
    assert_eq!(text(&response.body), "p{}");
    assert!(response.headers.get("content-encoding").is_none());
}

#[tokio::test]
async fn paths_cannot_escape_the_app_directory() {
    let fixture = fixture();
    for uri in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/assets/../../secret.txt",
        "/..%2fsecret.txt",
        "/%2e%2e%2fsecret.txt",
    ] {
        for accept in ["*/*", "text/html"] {
            let response = get(&fixture, uri, accept).await;
            assert!(
                !text(&response.body).contains("TOP SECRET"),
                "{uri} with {accept} leaked the file"
            );
            if accept == "*/*" {
                assert_eq!(response.status, StatusCode::NOT_FOUND, "{uri}");
            }
        }
    }
}

#[tokio::test]
async fn the_api_is_not_shadowed_by_the_app() {
    let fixture = fixture();
    let response = get(
        &fixture,
        "/v1/projects/p/databases/(default)/documents/t/missing",
        "text/html",
    )
    .await;
    support::assert_error(&response, 404, "NOT_FOUND");
}

/// Regression test: the app's answers carried no `nosniff`, framing or referrer policy, so any
/// site could frame the till.
#[tokio::test]
async fn every_app_answer_refuses_framing_sniffing_and_referrers() {
    let fixture = fixture();
    for (uri, accept) in [
        ("/", "text/html"),
        ("/some/route", "text/html"),
        ("/assets/app.css", "text/css"),
        ("/missing.js", "*/*"),
    ] {
        let response = get(&fixture, uri, accept).await;
        for (name, value) in [
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "DENY"),
            ("referrer-policy", "no-referrer"),
        ] {
            assert_eq!(
                response.headers.get(name).map(|v| v.to_str().unwrap()),
                Some(value),
                "{uri}: {name}"
            );
        }
        let policy = response.headers.get("content-security-policy").unwrap();
        let policy = policy.to_str().unwrap();
        for directive in [
            "frame-ancestors 'none'",
            "script-src 'self' 'wasm-unsafe-eval';",
            "object-src 'none'",
        ] {
            assert!(policy.contains(directive), "{uri}: {policy}");
        }
    }
}
