//! Every bound on what a stranger or one tenant can make the server hold (connections, bodies,
//! Listen sessions and their output, transactions, index entries, disabled accounts), each
//! proved by applying the load over real loopback HTTP to a server running in this process,
//! and showing that another shop is still served while it lasts. Loads are bounded in count
//! and time; the limits are lowered where the defaults would make a test slow.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use counterbook_server::auth::accounts::Accounts;
use counterbook_server::auth::passwords::hash_password;
use counterbook_server::auth::policy::Role;
use counterbook_server::connections::{self, ConnectionLimits};
use counterbook_server::{app, AppState, AuthConfig, ManualClock, ServerConfig};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const PROJECT: &str = "bounds";
const START: i64 = 1_900_000_000;
const PASSWORD: &str = "correct horse battery";

/// A server on a temporary data directory, serving on 127.0.0.1 from this process's runtime;
/// it stops when dropped.
struct LoopbackServer {
    address: SocketAddr,
    /// Holds `data/`, the data directory, which the server creates.
    root: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl LoopbackServer {
    /// Authenticated, with shops `s1`, `s2` and `s3` and a cashier in each
    /// (`cashier@s1.test`, ...), plus a second cashier in `s1` (`other@s1.test`).
    async fn start(limits: ConnectionLimits) -> LoopbackServer {
        let root = tempfile::tempdir().unwrap();
        let data_directory = root.path().join("data");
        let accounts = Accounts::open(&data_directory).unwrap();
        let password_hash = hash_password(PASSWORD).unwrap();
        for shop in ["s1", "s2", "s3"] {
            accounts.create_shop(shop, shop, START).unwrap();
            accounts
                .add_user(
                    shop,
                    &format!("cashier@{shop}.test"),
                    Role::Cashier,
                    &password_hash,
                    START,
                )
                .unwrap();
        }
        accounts
            .add_user("s1", "other@s1.test", Role::Cashier, &password_hash, START)
            .unwrap();
        let clock = Arc::new(ManualClock::starting_at(START));
        let state = AppState::open_authenticated(
            ServerConfig {
                data_directory,
                app_directory: None,
                dev_mode: false,
            },
            AuthConfig {
                clock: clock.clone(),
                ..AuthConfig::new(PROJECT)
            },
        )
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(connections::serve(listener, app(state), limits, async {
            let _ = stopped.await;
        }));
        LoopbackServer {
            address,
            root,
            stop: Some(stop),
        }
    }

    /// One HTTP/1.1 request on a fresh connection from 127.0.0.1; status and body.
    async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &str,
    ) -> (u16, String) {
        let stream = TcpStream::connect(self.address).await.unwrap();
        exchange(stream, method, path, token, body).await
    }

    async fn id_token(&self, email: &str) -> String {
        let body = json!({"email": email, "password": PASSWORD, "returnSecureToken": true});
        let (status, reply) = self
            .request(
                "POST",
                "/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword",
                None,
                &body.to_string(),
            )
            .await;
        assert_eq!(status, 200, "{reply}");
        let reply: Value = serde_json::from_str(&reply).unwrap();
        reply["idToken"].as_str().unwrap().to_owned()
    }

    /// A shop reading its own (missing) product: 404 when served.
    async fn shop_is_served(&self, token: &str, shop: &str) -> bool {
        let (status, body) = self
            .request(
                "GET",
                &format!(
                    "/v1/projects/{PROJECT}/databases/(default)/documents/shops/{shop}/products/p1"
                ),
                Some(token),
                "",
            )
            .await;
        assert!(status == 404 || status == 200, "{status} {body}");
        true
    }
}

/// Sends one request with `Connection: close` and reads the whole answer.
async fn exchange(
    mut stream: TcpStream,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String) {
    let authorization = token
        .map(|token| format!("Authorization: Bearer {token}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{authorization}\
         Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// A connection from `source` (any 127.0.0.0/8 address is this machine) that starts a request
/// and never finishes its headers.
async fn slow_connection(source: &str, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let mut stream = socket.connect(server).await.unwrap();
    stream
        .write_all(b"POST /v1/projects/bounds/databases/(default)/documents:commit HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    stream
}

/// Waits until the server closes `stream` (EOF or reset), at most until `deadline`; whether
/// it did.
async fn closed_by_server(stream: &mut TcpStream, deadline: tokio::time::Instant) -> bool {
    let mut buffer = [0u8; 1024];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            // A 408 or similar before closing is fine; keep reading until the close.
            Ok(Ok(_)) => {}
        }
    }
}

/// Regression test for slowloris: 1,040 connections with unfinished headers made the server
/// unreachable (no header timeout, no connection cap). Now one address holds at most its share,
/// the rest of the table waits for header timeouts, and another shop is served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_neither_fill_the_server_nor_live_past_the_header_timeout() {
    let limits = ConnectionLimits {
        max_connections: 48,
        max_connections_per_address: 16,
        header_read_timeout: Duration::from_secs(1),
        shutdown_grace: Duration::from_secs(1),
    };
    let server = LoopbackServer::start(limits).await;
    let token = server.id_token("cashier@s2.test").await;

    // One stranger opens 40 slow connections: past its 16 the server closes them at once.
    let mut stranger = Vec::new();
    for _ in 0..40 {
        stranger.push(slow_connection("127.0.0.2", server.address).await);
    }
    let mut closed_at_once = 0;
    let soon = tokio::time::Instant::now() + Duration::from_millis(300);
    for stream in &mut stranger {
        if closed_by_server(stream, soon).await {
            closed_at_once += 1;
        }
    }
    assert_eq!(
        closed_at_once,
        40 - 16,
        "connections past the per-address cap"
    );
    let started = Instant::now();
    assert!(server.shop_is_served(&token, "s2").await);
    let served_after_one_stranger = started.elapsed();

    // Three more addresses fill the whole table (16 × 4 > 48): a new client waits in the
    // backlog until header timeouts free room, and is then served.
    let mut crowd = Vec::new();
    for source in ["127.0.0.3", "127.0.0.4", "127.0.0.5"] {
        for _ in 0..16 {
            crowd.push(slow_connection(source, server.address).await);
        }
    }
    let started = Instant::now();
    assert!(server.shop_is_served(&token, "s2").await);
    let served_with_a_full_table = started.elapsed();
    assert!(
        served_with_a_full_table < Duration::from_secs(10),
        "{served_with_a_full_table:?}"
    );

    // Every slow connection is closed by its header timeout.
    let later = tokio::time::Instant::now() + Duration::from_secs(5);
    for stream in stranger.iter_mut().chain(crowd.iter_mut()) {
        assert!(closed_by_server(stream, later).await);
    }
    eprintln!(
        "served in {served_after_one_stranger:?} beside one stranger's 40 slow connections, \
         in {served_with_a_full_table:?} with a full table"
    );
}

/// Regression test: the data directory and the database (every shop's books and the password
/// hashes) were created with the umask's modes, usually readable by every local user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_directory_and_database_files_are_private_to_the_owner() {
    use std::os::unix::fs::PermissionsExt;
    let server = LoopbackServer::start(ConnectionLimits::default()).await;
    let token = server.id_token("cashier@s1.test").await;
    assert!(server.shop_is_served(&token, "s1").await);
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let directory = &server.root.path().join("data");
    assert_eq!(mode(directory), 0o700);
    let mut files = 0;
    for entry in std::fs::read_dir(directory).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains("counterbook.sqlite3") {
            assert_eq!(mode(&path), 0o600, "{}", path.display());
            files += 1;
        }
    }
    assert_eq!(files, 3, "the database with its -wal and -shm");
}
