//! Black-box tests of the real `counterbook-server` binary over real HTTP: startup line with the
//! bound port, a commit and a query, clean refusal without `--dev` or `--project`, and shutdown
//! on SIGTERM; the demo data of `make demo`. The admin CLI and authenticated serving are exercised in `access_control.rs`.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};
use support::binary::{RunningServer, SERVER_BINARY};

fn start_server(data_directory: &Path, extra_arguments: &[&str]) -> RunningServer {
    let mut arguments = vec!["--dev"];
    arguments.extend_from_slice(extra_arguments);
    RunningServer::start(data_directory, &arguments)
}

fn post_json(url: &str, body: &Value) -> Value {
    let mut response = ureq::post(url)
        .header("Content-Type", "text/plain;charset=UTF-8")
        .send(body.to_string())
        .unwrap_or_else(|error| panic!("POST {url}: {error}"));
    serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap()
}

#[test]
fn commit_and_query_over_real_http_then_stop_on_sigterm() {
    let data_directory = tempfile::tempdir().unwrap();
    let server = start_server(data_directory.path(), &[]);
    assert!(
        server.base_url.starts_with("http://127.0.0.1:"),
        "{}",
        server.base_url
    );
    let port: u16 = server.base_url.rsplit(':').next().unwrap().parse().unwrap();
    assert_ne!(port, 0, "the real bound port is printed");

    let root = "projects/black-box/databases/(default)/documents";
    let api = format!("{}/v1/{root}", server.base_url);
    let commit = post_json(
        &format!("{api}:commit?key=fake"),
        &json!({"writes": [{
            "update": {"name": format!("{root}/shops/s1/products/p1"), "fields": {"n": {"integerValue": "1"}}},
            "updateTransforms": [{"fieldPath": "updatedAt", "setToServerValue": "REQUEST_TIME"}]
        }]}),
    );
    let commit_time = commit["commitTime"].as_str().unwrap().to_owned();

    let items = post_json(
        &format!("{api}/shops/s1:runQuery"),
        &json!({"structuredQuery": {
            "from": [{"collectionId": "products"}],
            "where": {"fieldFilter": {"field": {"fieldPath": "updatedAt"}, "op": "GREATER_THAN_OR_EQUAL",
                                      "value": {"timestampValue": commit_time}}},
            "orderBy": [{"field": {"fieldPath": "updatedAt"}}, {"field": {"fieldPath": "__name__"}}],
            "limit": 100
        }}),
    );
    let items = items.as_array().unwrap();
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(
        items[0]["document"]["name"],
        json!(format!("{root}/shops/s1/products/p1"))
    );
    assert_eq!(items[0]["done"], json!(true));

    // GET over the wire, with the database id percent-encoded as some clients send it.
    let mut response = ureq::get(format!(
        "{}/v1/projects/black-box/databases/%28default%29/documents/shops/s1/products/p1",
        server.base_url
    ))
    .call()
    .unwrap();
    let document: Value =
        serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(
        document["fields"]["updatedAt"]["timestampValue"],
        json!(commit_time)
    );

    // SIGTERM: graceful shutdown, exit status 0.
    let exit = server.terminate();
    assert!(exit.success(), "exit after SIGTERM: {exit:?}");
}

#[test]
fn the_binary_refuses_to_start_without_dev_mode_or_a_project() {
    let data_directory = tempfile::tempdir().unwrap();
    let output = Command::new(SERVER_BINARY)
        .args(["serve", "--addr", "127.0.0.1:0", "--data"])
        .arg(data_directory.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("authentication is on and needs the project id its tokens are for: pass --project PROJECT"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty(), "it must not claim to listen");
}

#[test]
fn raw_traversal_requests_never_reach_files_outside_the_app_directory() {
    let root = tempfile::tempdir().unwrap();
    let dist = root.path().join("dist");
    std::fs::create_dir_all(&dist).unwrap();
    std::fs::write(dist.join("index.html"), "<title>Counterbook</title>").unwrap();
    std::fs::write(root.path().join("secret.txt"), "TOP SECRET").unwrap();
    let data_directory = tempfile::tempdir().unwrap();
    let server = start_server(data_directory.path(), &["--app", dist.to_str().unwrap()]);
    let address = server.address().to_owned();
    for path in ["/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt"] {
        // A raw request: HTTP clients would normalise the dots away before sending.
        let mut stream = TcpStream::connect(&address).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {address}\r\nAccept: text/html\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(!response.contains("TOP SECRET"), "{path}: {response}");
    }
}

#[test]
fn demo_data_is_seeded_once_in_dev_mode_only() {
    let data_directory = tempfile::tempdir().unwrap();
    let documents = |server: &RunningServer, collection: &str| -> Vec<Value> {
        let url = format!(
            "{}/v1/projects/counterbook/databases/(default)/documents/shops/demo-shop/{collection}",
            server.base_url
        );
        let mut response = ureq::get(&url).call().unwrap();
        let body: Value =
            serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
        body["documents"].as_array().cloned().unwrap_or_default()
    };
    let server = start_server(data_directory.path(), &["--demo-data"]);
    let products = documents(&server, "products");
    assert_eq!(products.len(), 7);
    assert_eq!(documents(&server, "customers").len(), 2);
    let tea = products
        .iter()
        .find(|product| product["name"].as_str().unwrap().ends_with("/demo-tea"))
        .unwrap();
    assert_eq!(tea["fields"]["price"], json!({"integerValue": "28500"}));
    assert!(
        tea["fields"]["updatedAt"]["timestampValue"].is_string(),
        "{tea}"
    );
    // A sale since then is not undone by a restart with --demo-data.
    let root = "projects/counterbook/databases/(default)/documents";
    post_json(
        &format!("{}/v1/{root}:commit", server.base_url),
        &json!({"writes": [{"update": {"name": format!("{root}/shops/demo-shop/products/demo-tea")},
                            "updateMask": {"fieldPaths": []},
                            "updateTransforms": [{"fieldPath": "stock", "increment": {"integerValue": "-1"}}]}]}),
    );
    drop(server);
    let restarted = start_server(data_directory.path(), &["--demo-data"]);
    let products = documents(&restarted, "products");
    assert_eq!(products.len(), 7);
    let tea = products
        .iter()
        .find(|product| product["name"].as_str().unwrap().ends_with("/demo-tea"))
        .unwrap();
    assert_eq!(tea["fields"]["stock"], json!({"integerValue": "39"}));
    drop(restarted);

    let status = Command::new(SERVER_BINARY)
        .args(["serve", "--addr", "127.0.0.1:0", "--data"])
        .arg(data_directory.path())
        .args(["--project", "p", "--demo-data"])
        .output()
        .unwrap()
        .status;
    assert_eq!(status.code(), Some(2), "--demo-data needs --dev");
}
