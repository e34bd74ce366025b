//! HTTPS over real loopback connections: the generated local CA and server certificate as a
//! TLS client that trusts only that CA sees them (also after a restart), a given certificate,
//! plain HTTP on the HTTPS port answered with a redirect or the setup page, the `--http-addr`
//! redirect listener, the app's headers and precompressed files over TLS, and the connection
//! bounds that TLS must keep (a silent client and a stalled handshake are dropped within the
//! header read timeout).

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use counterbook_server::connections::{self, ConnectionLimits};
use counterbook_server::setup_page::{self, HttpsRedirect};
use counterbook_server::{app, tls, AppState, ServerConfig};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use support::binary::RunningServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An answer as a client sees it.
struct Answer {
    status: u16,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map_or("", |value| value.to_str().unwrap())
    }
}

/// A TLS client configuration that trusts exactly `roots`.
fn client_trusting(roots: &[CertificateDer<'static>]) -> Arc<rustls::ClientConfig> {
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store.add(root.clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(store)
            .with_no_client_auth(),
    )
}

fn ca_from_data_directory(data_directory: &Path) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(tls::tls_directory(data_directory).join("ca-certificate.pem"))
        .unwrap()
}

/// One GET over TLS to `address`, verifying the server as `server_name`.
async fn https_get(
    address: SocketAddr,
    client: Arc<rustls::ClientConfig>,
    server_name: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Answer, String> {
    let tcp = TcpStream::connect(address).await.unwrap();
    let name = ServerName::try_from(server_name.to_owned()).unwrap();
    let stream = tokio_rustls::TlsConnector::from(client)
        .connect(name, tcp)
        .await
        .map_err(|error| error.to_string())?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut request = hyper::Request::get(path).header("host", server_name);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = sender
        .send_request(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Ok(Answer {
        status,
        headers,
        body: body.to_vec(),
    })
}

/// One plain-HTTP request written by hand; the whole answer as text (`Connection: close`).
async fn plain_http(address: SocketAddr, path: &str, host: &str) -> String {
    let mut stream = TcpStream::connect(address).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

/// A built app with a hashed wasm and its precompressed copies, as the build writes them.
fn write_app(dist: &Path) {
    std::fs::create_dir_all(dist).unwrap();
    std::fs::write(
        dist.join("index.html"),
        "<!doctype html><title>Counterbook</title>",
    )
    .unwrap();
    std::fs::write(dist.join("app-0123456789abcdef_bg.wasm"), b"\0asm plain").unwrap();
    std::fs::write(
        dist.join("app-0123456789abcdef_bg.wasm.br"),
        b"BROTLI BYTES",
    )
    .unwrap();
    std::fs::write(dist.join("app-0123456789abcdef_bg.wasm.gz"), b"GZIP BYTES").unwrap();
}

/// A dev-mode server over HTTPS with a generated certificate, in this process.
struct TlsServer {
    address: SocketAddr,
    _root: tempfile::TempDir,
    authority: tls::LocalCaCertificate,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl TlsServer {
    async fn start(limits: ConnectionLimits) -> TlsServer {
        let root = tempfile::tempdir().unwrap();
        let data_directory = root.path().join("data");
        let dist = root.path().join("dist");
        write_app(&dist);
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let tls::LocalIdentity {
            identity,
            authority,
            ..
        } = tls::local_identity(&data_directory, &names, time::OffsetDateTime::now_utc()).unwrap();
        let state = AppState::open(ServerConfig {
            data_directory,
            app_directory: Some(dist),
            dev_mode: true,
        })
        .unwrap()
        .with_local_ca(authority.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let plain_router = setup_page::plain_http_router(
            Some(Arc::new(authority.clone())),
            HttpsRedirect::SamePort,
        );
        let config = tls::server_config(identity).unwrap();
        tokio::spawn(connections::serve_tls(
            listener,
            app(state),
            plain_router,
            config,
            limits,
            async {
                let _ = stopped.await;
            },
        ));
        TlsServer {
            address,
            _root: root,
            authority,
            stop: Some(stop),
        }
    }

    fn client(&self) -> Arc<rustls::ClientConfig> {
        client_trusting(&[CertificateDer::from(self.authority.der.clone())])
    }
}

#[tokio::test]
async fn a_client_trusting_only_the_local_ca_reaches_the_server_by_each_of_its_names() {
    let server = TlsServer::start(ConnectionLimits::default()).await;
    for name in ["127.0.0.1", "localhost"] {
        let answer = https_get(
            server.address,
            server.client(),
            name,
            "/",
            &[("accept", "text/html")],
        )
        .await
        .unwrap();
        assert_eq!(answer.status, 200, "{name}");
        assert!(String::from_utf8_lossy(&answer.body).contains("<title>Counterbook</title>"));
    }
    // A name the certificate does not hold is refused, and so is a client trusting another CA.
    let error = https_get(server.address, server.client(), "till.example", "/", &[])
        .await
        .err()
        .expect("a name outside the certificate");
    assert!(error.contains("not valid for name"), "{error}");
    let other_root = tempfile::tempdir().unwrap();
    let other = tls::local_identity(
        other_root.path(),
        &["localhost".into()],
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    let stranger = client_trusting(&[CertificateDer::from(other.authority.der.clone())]);
    let error = https_get(server.address, stranger, "127.0.0.1", "/", &[])
        .await
        .err()
        .expect("a client trusting another CA");
    assert!(error.contains("UnknownIssuer"), "{error}");
}

#[tokio::test]
async fn the_app_over_https_has_its_headers_and_precompressed_files() {
    let server = TlsServer::start(ConnectionLimits::default()).await;
    let wasm = "/app-0123456789abcdef_bg.wasm";
    let answer = https_get(
        server.address,
        server.client(),
        "127.0.0.1",
        wasm,
        &[("accept-encoding", "gzip, deflate, br")],
    )
    .await
    .unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, b"BROTLI BYTES");
    assert_eq!(answer.header("content-encoding"), "br");
    assert_eq!(answer.header("content-type"), "application/wasm");
    assert_eq!(
        answer.header("cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert!(answer.header("vary").contains("accept-encoding"));
    assert!(answer
        .header("content-security-policy")
        .contains("script-src 'self' 'wasm-unsafe-eval'"));
    // HSTS on HTTPS answers, for this host only (a LAN name has no business for its subdomains).
    assert_eq!(
        answer.header("strict-transport-security"),
        connections::STRICT_TRANSPORT_SECURITY
    );
    assert_eq!(
        connections::STRICT_TRANSPORT_SECURITY,
        "max-age=31536000",
        "a year, no includeSubDomains, no preload"
    );

    let answer = https_get(server.address, server.client(), "127.0.0.1", wasm, &[])
        .await
        .unwrap();
    assert_eq!(answer.body, b"\0asm plain");
    assert_eq!(answer.header("content-encoding"), "");

    let answer = https_get(
        server.address,
        server.client(),
        "127.0.0.1",
        "/setup/ca",
        &[],
    )
    .await
    .unwrap();
    assert_eq!(answer.status, 200);
    assert!(String::from_utf8_lossy(&answer.body).contains(&server.authority.fingerprint_sha256()));
}

#[tokio::test]
async fn plain_http_on_the_https_port_redirects_but_hands_out_the_ca() {
    let server = TlsServer::start(ConnectionLimits::default()).await;
    let host = format!("127.0.0.1:{}", server.address.port());
    let answer = plain_http(server.address, "/counter?shop=s1", &host).await;
    assert!(answer.starts_with("HTTP/1.1 308"), "{answer}");
    assert!(
        answer.contains(&format!("location: https://{host}/counter?shop=s1\r\n")),
        "{answer}"
    );

    let answer = plain_http(server.address, "/setup/ca", &host).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(&server.authority.fingerprint_sha256()));
    assert!(answer.contains(&format!("https://{host}/")));
    // Strict-Transport-Security goes only with HTTPS answers (RFC 6797 section 7.2).
    assert!(
        !answer
            .to_ascii_lowercase()
            .contains("strict-transport-security"),
        "{answer}"
    );

    let mut stream = TcpStream::connect(server.address).await.unwrap();
    let request =
        format!("GET /setup/ca.crt HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&answer[..split]).to_ascii_lowercase();
    assert!(
        head.contains("content-type: application/x-x509-ca-cert"),
        "{head}"
    );
    assert!(head.contains("content-disposition: attachment"), "{head}");
    assert_eq!(&answer[split + 4..], &server.authority.der[..]);

    let answer = plain_http(server.address, "/", "evil.example/path").await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
}

/// Regression guard for the bounds: before TLS, a silent connection was closed at the header
/// read timeout by hyper; a TLS server must close one that never sends its first byte, or that
/// stalls in the handshake, just as soon.
#[tokio::test]
async fn a_silent_client_and_a_stalled_handshake_are_dropped_within_the_header_timeout() {
    let limits = ConnectionLimits {
        header_read_timeout: Duration::from_millis(500),
        ..ConnectionLimits::default()
    };
    let server = TlsServer::start(limits).await;
    for opening in [&b""[..], &[0x16, 0x03, 0x01][..]] {
        let started = Instant::now();
        let mut stream = TcpStream::connect(server.address).await.unwrap();
        stream.write_all(opening).await.unwrap();
        let mut buffer = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer))
            .await
            .expect("the server closes the connection");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(400) && waited < Duration::from_secs(5),
            "{opening:?}: closed after {waited:?}"
        );
    }
}

fn start_binary(data: &Path, dist: &Path, extra: &[&str]) -> RunningServer {
    let mut arguments = vec!["--dev", "--tls", "--app", dist.to_str().unwrap()];
    arguments.extend_from_slice(extra);
    RunningServer::start(data, &arguments)
}

fn https_address(server: &RunningServer) -> SocketAddr {
    server
        .base_url
        .strip_prefix("https://")
        .expect("an https:// address")
        .parse()
        .unwrap()
}

#[tokio::test]
async fn the_binary_keeps_its_ca_across_restarts_and_redirects_its_http_listener() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let dist = root.path().join("dist");
    write_app(&dist);
    let http_port = support::binary::free_port();
    let http_addr = format!("127.0.0.1:{http_port}");
    let server = start_binary(
        &data,
        &dist,
        &["--http-addr", &http_addr, "--tls-name", "till.example"],
    );
    let address = https_address(&server);
    let ca = ca_from_data_directory(&data);
    let ca_key = tls::tls_directory(&data).join("ca-key.pem");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&ca_key).unwrap().permissions())
            & 0o777,
        0o600
    );
    for name in ["127.0.0.1", "localhost", "till.example"] {
        let answer = https_get(
            address,
            client_trusting(std::slice::from_ref(&ca)),
            name,
            "/",
            &[("accept", "text/html")],
        )
        .await
        .unwrap();
        assert_eq!(answer.status, 200, "{name}");
    }
    let answer = plain_http(http_addr.parse().unwrap(), "/products", &http_addr).await;
    assert!(
        answer.contains(&format!(
            "location: https://127.0.0.1:{}/products\r\n",
            address.port()
        )),
        "{answer}"
    );
    drop(server);

    // The same CA signs the next start's certificate: tablets that installed it keep working.
    let server = start_binary(&data, &dist, &[]);
    assert_eq!(ca_from_data_directory(&data), ca);
    let answer = https_get(
        https_address(&server),
        client_trusting(&[ca]),
        "127.0.0.1",
        "/",
        &[("accept", "text/html")],
    )
    .await
    .unwrap();
    assert_eq!(answer.status, 200);
}

#[tokio::test]
async fn the_binary_serves_a_given_certificate() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let dist = root.path().join("dist");
    write_app(&dist);
    let key = rcgen::KeyPair::generate().unwrap();
    let certificate = rcgen::CertificateParams::new(vec!["shop.example".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let certificate_file: PathBuf = root.path().join("cert.pem");
    let key_file: PathBuf = root.path().join("key.pem");
    std::fs::write(&certificate_file, certificate.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    let server = RunningServer::start(
        &data,
        &[
            "--dev",
            "--app",
            dist.to_str().unwrap(),
            "--tls-cert",
            certificate_file.to_str().unwrap(),
            "--tls-key",
            key_file.to_str().unwrap(),
        ],
    );
    let client = client_trusting(&[certificate.der().clone()]);
    let answer = https_get(
        https_address(&server),
        client,
        "shop.example",
        "/",
        &[("accept", "text/html")],
    )
    .await
    .unwrap();
    assert_eq!(answer.status, 200);
    // No local CA: nothing is generated, and the setup page is not there.
    assert!(!tls::tls_directory(&data).exists());
    let client = client_trusting(&[certificate.der().clone()]);
    let answer = https_get(
        https_address(&server),
        client,
        "shop.example",
        "/setup/ca.crt",
        &[],
    )
    .await
    .unwrap();
    assert_ne!(answer.status, 200);
}

/// Whether the server certificate the binary wrote in `data` (with its CA) is valid for
/// `address`, as a client trusting only that CA judges it.
fn written_certificate_is_valid_for(data: &Path, address: &str) -> bool {
    use rustls::client::danger::ServerCertVerifier;
    let chain =
        CertificateDer::pem_file_iter(tls::tls_directory(data).join("server-certificate.pem"))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca_from_data_directory(data)).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .unwrap();
    verifier
        .verify_server_cert(
            &chain[0],
            &chain[1..],
            &ServerName::try_from(address.to_owned()).unwrap(),
            &[],
            rustls::pki_types::UnixTime::now(),
        )
        .is_ok()
}

/// Regression guard for a shop whose router hands the server another LAN address: the
/// certificate is made at every start from the machine's interface addresses, so a restart
/// covers the new address (and no longer the old one) with the same CA. The machine is a
/// fresh network namespace (`unshare -n`, as root) whose loopback interface carries the "LAN"
/// address, changed between the two starts.
#[tokio::test]
async fn a_restart_after_the_lan_address_changed_covers_the_new_address() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let dist = root.path().join("dist");
    write_app(&dist);
    let mut authority = None;
    for (address, previous) in [
        ("192.168.77.5", None),
        ("192.168.77.6", Some("192.168.77.5")),
    ] {
        let script =
            format!("ip link set lo up && ip addr add {address}/32 dev lo && exec \"$0\" \"$@\"");
        let arguments: Vec<String> = [
            "-n",
            "sh",
            "-c",
            script.as_str(),
            support::binary::SERVER_BINARY,
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--data",
            data.to_str().unwrap(),
            "--dev",
            "--tls",
            "--app",
            dist.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec();
        let (server, _, output) = support::binary::start_group_with_output(
            "counterbook-server in a network namespace",
            "unshare",
            &arguments,
            support::binary::LISTENING_PREFIX,
            Duration::from_secs(60),
        );
        let names = output
            .iter()
            .find(|line| line.contains("certificate for "))
            .unwrap_or_else(|| panic!("no certificate line in {output:?}"));
        assert!(names.contains(&format!(" {address}")), "{names}");
        assert!(written_certificate_is_valid_for(&data, address), "{names}");
        if let Some(previous) = previous {
            assert!(!names.contains(previous), "{names}");
            assert!(
                !written_certificate_is_valid_for(&data, previous),
                "{names}"
            );
        }
        let ca = ca_from_data_directory(&data);
        assert_eq!(authority.get_or_insert_with(|| ca.clone()), &ca);
        drop(server);
    }
}
