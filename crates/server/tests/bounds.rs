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
use counterbook_server::webchannel::ChannelLimits;
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
    state: AppState,
    /// Holds `data/`, the data directory, which the server creates.
    root: tempfile::TempDir,
    /// The authentication clock (token expiry, account-state cache), moved by hand.
    clock: Arc<ManualClock>,
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
        Self::start_with(limits, ChannelLimits::default()).await
    }

    async fn start_with(limits: ConnectionLimits, channel_limits: ChannelLimits) -> LoopbackServer {
        Self::start_with_store_clock(limits, channel_limits, None).await
    }

    /// With the store's wall clock (microseconds since the epoch) replaced, if given.
    async fn start_with_store_clock(
        limits: ConnectionLimits,
        channel_limits: ChannelLimits,
        store_clock: Option<fn() -> i64>,
    ) -> LoopbackServer {
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
        let config = ServerConfig {
            data_directory,
            app_directory: None,
            dev_mode: false,
        };
        let auth_config = AuthConfig {
            clock: clock.clone(),
            ..AuthConfig::new(PROJECT)
        };
        let state = match store_clock {
            None => AppState::open_authenticated(config, auth_config),
            Some(store_clock) => {
                AppState::open_authenticated_with_store_clock(config, auth_config, store_clock)
            }
        }
        .unwrap()
        .with_channel_limits(channel_limits);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(connections::serve(
            listener,
            app(state.clone()),
            limits,
            async {
                let _ = stopped.await;
            },
        ));
        LoopbackServer {
            address,
            state,
            root,
            clock,
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

const DATABASE: &str = "projects/bounds/databases/(default)";
const LISTEN_CHANNEL: &str = "/google.firestore.v1.Firestore/Listen/channel";

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn listen_url(parameters: &str) -> String {
    format!(
        "{LISTEN_CHANNEL}?VER=8&database={}&{parameters}",
        percent_encode(DATABASE)
    )
}

/// The opening form of a Listen channel as the SDK sends it, the token in `headers`.
fn listen_form(token: Option<&str>, requests: &[Value]) -> String {
    let mut parts = Vec::new();
    if let Some(token) = token {
        parts.push(format!(
            "headers={}",
            percent_encode(&format!("Authorization:Bearer {token}\r\n"))
        ));
    }
    parts.push(format!("count={}&ofs=0", requests.len()));
    for (index, request) in requests.iter().enumerate() {
        parts.push(format!(
            "req{index}___data__={}",
            percent_encode(&request.to_string())
        ));
    }
    parts.join("&")
}

/// A Listen target on a shop's products.
fn products_target(shop: &str, target_id: i64) -> Value {
    collection_target(shop, "products", target_id)
}

/// A Listen target on one of a shop's collections.
fn collection_target(shop: &str, collection: &str, target_id: i64) -> Value {
    json!({
        "database": DATABASE,
        "addTarget": {
            "query": {
                "parent": format!("{DATABASE}/documents/shops/{shop}"),
                "structuredQuery": {"from": [{"collectionId": collection}]}
            },
            "targetId": target_id
        }
    })
}

impl LoopbackServer {
    /// Opens a Listen channel: the status, and the session id (or the answer when refused).
    async fn open_listen(&self, token: Option<&str>, requests: &[Value]) -> (u16, String) {
        let (status, body) = self
            .request(
                "POST",
                &listen_url("RID=1&CVER=22"),
                None,
                &listen_form(token, requests),
            )
            .await;
        if status != 200 {
            return (status, body);
        }
        let (_, arrays) = body.split_once('\n').unwrap();
        let arrays: Value = serde_json::from_str(arrays).unwrap();
        (status, arrays[0][1][1].as_str().unwrap().to_owned())
    }

    /// Reads a session's back channel (acknowledging nothing) until one of `needles` appears,
    /// at most `within`; the needle seen.
    async fn back_channel_until(
        &self,
        session_id: &str,
        needles: &[&str],
        within: Duration,
    ) -> Option<String> {
        let mut stream = TcpStream::connect(self.address).await.unwrap();
        let head = format!(
            "GET {} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            listen_url(&format!("RID=rpc&SID={session_id}&AID=0&CI=0&TYPE=xmlhttp"))
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let deadline = tokio::time::Instant::now() + within;
        let mut text = Vec::new();
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let seen = String::from_utf8_lossy(&text);
            if let Some(needle) = needles.iter().find(|needle| seen.contains(**needle)) {
                return Some((*needle).to_owned());
            }
            match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
                Ok(Ok(read)) if read > 0 => text.extend_from_slice(&buffer[..read]),
                _ => return None,
            }
        }
    }

    async fn commit(&self, token: &str, writes: Value) -> (u16, String) {
        self.request(
            "POST",
            &format!("/v1/{DATABASE}/documents:commit"),
            Some(token),
            &json!({ "writes": writes }).to_string(),
        )
        .await
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
    // A server that refuses a large body may answer and close before it has all been sent:
    // what matters is the answer.
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let mut response = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    while let Ok(read) = stream.read(&mut buffer).await {
        if read == 0 {
            break;
        }
        response.extend_from_slice(&buffer[..read]);
    }
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
        ..ConnectionLimits::default()
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

/// Regression test: an open without a token parsed its whole form (9.9 MiB) and started a
/// session before the token was checked. Now the form is capped and the token comes first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthenticated_listen_open_parses_no_large_form_and_makes_no_session() {
    let server = LoopbackServer::start(ConnectionLimits::default()).await;
    let padding = "x".repeat(9_900_000);
    let huge_form = format!(
        "{}&padding={padding}",
        listen_form(None, &[products_target("s1", 1)])
    );
    let started = Instant::now();
    let (status, body) = server
        .request("POST", &listen_url("RID=1&CVER=22"), None, &huge_form)
        .await;
    assert_eq!(status, 413, "{body}");
    eprintln!("a 9.9 MiB opening form refused in {:?}", started.elapsed());

    let (status, body) = server.open_listen(None, &[products_target("s1", 1)]).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("UNAUTHENTICATED"), "{body}");
    let (status, body) = server
        .open_listen(Some("not-a-token"), &[products_target("s1", 1)])
        .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        server.state.channels().len(),
        0,
        "no session for a stranger"
    );

    let token = server.id_token("cashier@s1.test").await;
    let (status, session) = server
        .open_listen(Some(&token), &[products_target("s1", 1)])
        .await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(server.state.channels().len(), 1);
    assert!(server.shop_is_served(&token, "s1").await);
}

/// The head of the answer to one keep-alive request with `body`, on a fresh connection.
async fn response_head(server: &LoopbackServer, path: &str, body: &str) -> String {
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    // The server may answer and stop reading before the whole body is sent.
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let mut response = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    while !String::from_utf8_lossy(&response).contains("\r\n\r\n") {
        let read = stream.read(&mut buffer).await.unwrap();
        assert!(read > 0, "closed before an answer: {response:?}");
        response.extend_from_slice(&buffer[..read]);
    }
    let response = String::from_utf8_lossy(&response).to_lowercase();
    response.split("\r\n\r\n").next().unwrap().to_owned()
}

/// Regression test (the hostile suite's intermittent "Peer disconnected"): a refused upload
/// left its body unread, so hyper closed the connection after the 413, but the answer did not
/// say so; a client pooled the connection and its next request met a closed socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_that_leaves_the_body_unread_says_the_connection_closes() {
    let server = LoopbackServer::start(ConnectionLimits::default()).await;
    let padding = "x".repeat(2 * 1024 * 1024);
    let refused = response_head(
        &server,
        &listen_url("RID=1&CVER=22"),
        &format!("count=0&ofs=0&padding={padding}"),
    )
    .await;
    assert!(refused.starts_with("http/1.1 413"), "{refused}");
    assert!(refused.contains("\r\nconnection: close"), "{refused}");

    // A body read to its end keeps the connection open for the next request.
    let sign_in =
        json!({"email": "nobody@s1.test", "password": "wrong", "returnSecureToken": true});
    let answered = response_head(
        &server,
        "/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword",
        &sign_in.to_string(),
    )
    .await;
    assert!(answered.starts_with("http/1.1 400"), "{answered}");
    assert!(!answered.contains("connection: close"), "{answered}");
}

/// Regression test: one signed-in user could open all 1024 Listen sessions, and every other
/// shop got 503. Now a user and a shop each hold at most their share.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_user_or_shop_cannot_hold_every_listen_session() {
    let channel_limits = ChannelLimits {
        max_sessions: 8,
        max_sessions_per_user: 3,
        max_sessions_per_shop: 5,
        ..ChannelLimits::default()
    };
    let server = LoopbackServer::start_with(ConnectionLimits::default(), channel_limits).await;
    let cashier = server.id_token("cashier@s1.test").await;
    let other = server.id_token("other@s1.test").await;
    let stranger_shop = server.id_token("cashier@s2.test").await;
    for _ in 0..3 {
        let (status, body) = server.open_listen(Some(&cashier), &[]).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = server.open_listen(Some(&cashier), &[]).await;
    assert_eq!(status, 429, "the user's fourth: {body}");
    assert!(body.contains("RESOURCE_EXHAUSTED"), "{body}");
    for _ in 0..2 {
        let (status, body) = server.open_listen(Some(&other), &[]).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = server.open_listen(Some(&other), &[]).await;
    assert_eq!(status, 429, "the shop's sixth: {body}");

    // Another shop is still served, with a snapshot of its own.
    let (status, session) = server
        .open_listen(Some(&stranger_shop), &[products_target("s2", 7)])
        .await;
    assert_eq!(status, 200, "{session}");
    let seen = server
        .back_channel_until(&session, &["CURRENT"], Duration::from_secs(10))
        .await;
    assert_eq!(seen.as_deref(), Some("CURRENT"));
    assert_eq!(server.state.channels().len(), 6);
}

/// Regression test: unacknowledged Listen output could reach 32 MiB per session × 1024
/// sessions. Now it has one budget for all sessions; when a message does not fit, the session
/// holding the most ends with `RESOURCE_EXHAUSTED`, and other shops' sessions keep working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_listen_output_stays_within_one_budget_for_all_sessions() {
    const BUDGET: usize = 1024 * 1024;
    let channel_limits = ChannelLimits {
        max_unacknowledged_bytes: 700 * 1024,
        max_unacknowledged_bytes_total: BUDGET,
        ..ChannelLimits::default()
    };
    let server = LoopbackServer::start_with(ConnectionLimits::default(), channel_limits).await;
    let cashier = server.id_token("cashier@s1.test").await;
    let writes: Vec<Value> = (0..4)
        .map(|index| {
            json!({"update": {
                // Bills: the documents a cashier writes (they add no products).
                "name": format!("{DATABASE}/documents/shops/s1/bills/big{index}"),
                "fields": {"name": {"stringValue": "x".repeat(100_000)}}
            }})
        })
        .collect();
    let (status, body) = server.commit(&cashier, json!(writes)).await;
    assert_eq!(status, 200, "{body}");

    // Three sessions whose client reads but never acknowledges: 400 kB each.
    let mut sessions = Vec::new();
    for target_id in 1..=3 {
        let (status, session) = server
            .open_listen(
                Some(&cashier),
                &[collection_target("s1", "bills", target_id)],
            )
            .await;
        assert_eq!(status, 200, "{session}");
        let seen = server
            .back_channel_until(
                &session,
                &["CURRENT", "RESOURCE_EXHAUSTED"],
                Duration::from_secs(10),
            )
            .await;
        assert!(seen.is_some(), "session {target_id} answered nothing");
        assert!(server.state.channels().unacknowledged_bytes_total() <= BUDGET);
        sessions.push(session);
    }
    let mut ended = 0;
    for session in &sessions {
        let seen = server
            .back_channel_until(
                session,
                &["RESOURCE_EXHAUSTED", "CURRENT"],
                Duration::from_secs(10),
            )
            .await;
        if seen.as_deref() == Some("RESOURCE_EXHAUSTED") {
            ended += 1;
        }
    }
    assert!(
        ended >= 1,
        "the third session's output did not fit beside the other two"
    );

    // Another shop's session is served meanwhile.
    let other_shop = server.id_token("cashier@s2.test").await;
    let (status, body) = server
        .commit(
            &other_shop,
            json!([{"update": {
                "name": format!("{DATABASE}/documents/shops/s2/bills/tea"),
                "fields": {"name": {"stringValue": "tea"}}
            }}]),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, session) = server
        .open_listen(Some(&other_shop), &[collection_target("s2", "bills", 9)])
        .await;
    assert_eq!(status, 200, "{session}");
    let seen = server
        .back_channel_until(&session, &["shops/s2/bills/tea"], Duration::from_secs(10))
        .await;
    assert!(seen.is_some(), "the other shop's snapshot");
    assert!(server.state.channels().unacknowledged_bytes_total() <= BUDGET);
}

/// The store clock of the transaction test, moved by hand.
static TRANSACTION_TEST_MICROS: std::sync::atomic::AtomicI64 =
    std::sync::atomic::AtomicI64::new(START * 1_000_000);

fn transaction_test_clock() -> i64 {
    TRANSACTION_TEST_MICROS.load(std::sync::atomic::Ordering::SeqCst)
}

fn advance_transaction_test_clock(seconds: i64) {
    TRANSACTION_TEST_MICROS.fetch_add(seconds * 1_000_000, std::sync::atomic::Ordering::SeqCst);
}

/// Regression test: transactions had no cap, lived an hour, and anyone holding an id could
/// use it. Now a user holds at most 50, ids are bound to their user, and a transaction idle for
/// 60 s or older than 270 s has expired, as on Cloud Firestore.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_are_capped_bound_to_their_user_and_expire_as_on_firestore() {
    let server = LoopbackServer::start_with_store_clock(
        ConnectionLimits::default(),
        ChannelLimits::default(),
        Some(transaction_test_clock),
    )
    .await;
    let cashier = server.id_token("cashier@s1.test").await;
    let colleague = server.id_token("other@s1.test").await;
    let other_shop = server.id_token("cashier@s2.test").await;
    let begin = |token: String| {
        let server = &server;
        async move {
            let (status, body) = server
                .request(
                    "POST",
                    &format!("/v1/{DATABASE}/documents:beginTransaction"),
                    Some(&token),
                    "{}",
                )
                .await;
            let id = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|reply| reply["transaction"].as_str().map(str::to_owned));
            (status, id.unwrap_or(body))
        }
    };
    let commit_in = |token: String, id: String| {
        let server = &server;
        async move {
            server
                .request(
                    "POST",
                    &format!("/v1/{DATABASE}/documents:commit"),
                    Some(&token),
                    &json!({"writes": [], "transaction": id}).to_string(),
                )
                .await
        }
    };
    let read_in = |token: String, id: String| {
        let server = &server;
        async move {
            server
                .request(
                    "GET",
                    &format!(
                        "/v1/{DATABASE}/documents/shops/s1/products/p1?transaction={}",
                        percent_encode(&id)
                    ),
                    Some(&token),
                    "",
                )
                .await
        }
    };

    let mut held = Vec::new();
    for _ in 0..50 {
        let (status, id) = begin(cashier.clone()).await;
        assert_eq!(status, 200, "{id}");
        held.push(id);
    }
    let (status, body) = begin(cashier.clone()).await;
    assert_eq!(status, 429, "the user's 51st: {body}");
    assert!(body.contains("RESOURCE_EXHAUSTED"), "{body}");
    let (status, body) = begin(other_shop.clone()).await;
    assert_eq!(status, 200, "another shop is served: {body}");

    // A colleague holding the cashier's id can neither use it nor end it.
    let (status, body) = commit_in(colleague.clone(), held[0].clone()).await;
    assert_eq!(
        (status, body.contains("Invalid transaction.")),
        (400, true),
        "{body}"
    );
    let (status, body) = server
        .request(
            "POST",
            &format!("/v1/{DATABASE}/documents:rollback"),
            Some(&colleague),
            &json!({"transaction": held[0]}).to_string(),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = read_in(colleague.clone(), held[1].clone()).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = commit_in(cashier.clone(), held[0].clone()).await;
    assert_eq!(status, 200, "the owner's commit: {body}");

    // Idle for 61 s: expired, with Cloud Firestore's answer, and the cap is free again.
    advance_transaction_test_clock(61);
    let (status, body) = commit_in(cashier.clone(), held[2].clone()).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("The referenced transaction has expired or is no longer valid."),
        "{body}"
    );
    let (status, id) = begin(cashier.clone()).await;
    assert_eq!(status, 200, "{id}");

    // Used every 50 s it stays open, until 270 s after it began.
    for _ in 0..5 {
        advance_transaction_test_clock(50);
        let (status, body) = read_in(cashier.clone(), id.clone()).await;
        assert_eq!(
            status, 404,
            "a read in the transaction at 250 s at most: {body}"
        );
    }
    advance_transaction_test_clock(25);
    let (status, body) = read_in(cashier.clone(), id.clone()).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("has expired"), "{body}");
}

/// Regression test: a 60,000-field document took 583 ms and 26 MB of index rows. Cloud
/// Firestore refuses documents with more than 40,000 index entries, and so does this server,
/// before anything is indexed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_past_forty_thousand_index_entries_is_refused_as_firestore_refuses_it() {
    let server = LoopbackServer::start(ConnectionLimits::default()).await;
    let cashier = server.id_token("cashier@s1.test").await;
    let wide: serde_json::Map<String, Value> = (0..60_000)
        .map(|index| (format!("f{index}"), json!({"integerValue": "1"})))
        .collect();
    let started = Instant::now();
    let (status, body) = server
        .commit(
            &cashier,
            json!([{"update": {
                "name": format!("{DATABASE}/documents/shops/s1/bills/wide"),
                "fields": wide
            }}]),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("INVALID_ARGUMENT"), "{body}");
    assert!(
        body.contains("too many index entries for entity /shops/s1/bills/wide"),
        "{body}"
    );
    eprintln!("a 60,000-field document refused in {:?}", started.elapsed());
    let other_shop = server.id_token("cashier@s2.test").await;
    assert!(server.shop_is_served(&other_shop, "s2").await);
    let (status, body) = server
        .commit(
            &cashier,
            json!([{"update": {
                "name": format!("{DATABASE}/documents/shops/s1/bills/narrow"),
                "fields": {"name": {"stringValue": "tea"}}
            }}]),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// Regression test: nothing bounded the time a request body may take, so a client sending a
/// byte now and then held its request, and its connection, for ever. Now the body must arrive
/// within its deadline or the request is answered 408 `DEADLINE_EXCEEDED` and ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_does_not_arrive_in_time_is_answered_408_and_its_connection_ends() {
    let limits = ConnectionLimits {
        body_read_timeout: Duration::from_secs(1),
        ..ConnectionLimits::default()
    };
    let server = LoopbackServer::start(limits).await;
    let token = server.id_token("cashier@s1.test").await;
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    let head = format!(
        "POST /v1/{DATABASE}/documents:commit HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Authorization: Bearer {token}\r\nContent-Length: 1000\r\n\r\n{{\"writes\": ["
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut response = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Ok(Ok(read)) if read > 0 => response.extend_from_slice(&buffer[..read]),
            Ok(_) => break,
            Err(_) => panic!("no answer within 10 s"),
        }
    }
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(response.contains("DEADLINE_EXCEEDED"), "{response}");
    eprintln!("a stalled body answered after {:?}", started.elapsed());
    let other_shop = server.id_token("cashier@s2.test").await;
    assert!(server.shop_is_served(&other_shop, "s2").await);
}

/// Regression test: a disabled user's ID tokens kept working until they expired (up to an
/// hour), and so did their open Listen sessions. Now the account's flag is read at most every
/// two seconds: requests are refused and Listen sessions end within seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_users_tokens_and_listen_sessions_stop_within_seconds() {
    let server = LoopbackServer::start(ConnectionLimits::default()).await;
    let leaving = server.id_token("other@s1.test").await;
    let staying = server.id_token("cashier@s1.test").await;
    assert!(server.shop_is_served(&leaving, "s1").await);
    let (status, session) = server
        .open_listen(Some(&leaving), &[products_target("s1", 3)])
        .await;
    assert_eq!(status, 200, "{session}");
    let seen = server
        .back_channel_until(&session, &["CURRENT"], Duration::from_secs(10))
        .await;
    assert_eq!(seen.as_deref(), Some("CURRENT"));

    Accounts::open(&server.root.path().join("data"))
        .unwrap()
        .disable_user("other@s1.test")
        .unwrap();
    server
        .clock
        .advance(counterbook_server::auth::ACCOUNT_STATE_CACHE_SECONDS);
    let (status, body) = server
        .request(
            "GET",
            &format!("/v1/{DATABASE}/documents/shops/s1/products/p1"),
            Some(&leaving),
            "",
        )
        .await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("disabled"), "{body}");
    let started = Instant::now();
    let seen = server
        .back_channel_until(&session, &["UNAUTHENTICATED"], Duration::from_secs(10))
        .await;
    assert_eq!(
        seen.as_deref(),
        Some("UNAUTHENTICATED"),
        "the open session ends"
    );
    eprintln!(
        "a disabled user's Listen session ended {:?} later",
        started.elapsed()
    );
    let (status, body) = server
        .open_listen(Some(&leaving), &[products_target("s1", 4)])
        .await;
    assert_eq!(status, 401, "{body}");
    assert!(server.shop_is_served(&staying, "s1").await);
}
