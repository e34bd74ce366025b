//! `make soak-server`: the mixed hostile load of `tests/bounds.rs`, run for minutes at once
//! against the real release binary, sampling the server's memory (`VmRSS`, `VmHWM` from
//! `/proc/<pid>/status`) to show that it stays flat while an honest shop keeps being served.
//! A soak, not a test: not part of `make test`. It fails (exit status 1) if the honest shop
//! stops being served, or if the resident memory of the last third of the run exceeds the
//! middle third's by more than 25 % and 64 MiB.
//!
//! The load, all on loopback, each kind in its own task, repeated until the time is up:
//! - slow clients: up to 200 connections from 127.0.0.2 that never finish their headers
//!   (reopened as the server closes them);
//! - a 10.7 MiB commit of 700,000 empty maps refused after parsing, and a 10 MiB commit whose
//!   unknown field holds 3.5 million `{}`;
//! - Listen opens without a token carrying a 9.9 MiB form, and sessions of one user that
//!   never acknowledge their output, opened up to the user's cap and past it;
//! - transactions begun up to the user's cap and past it, then left to expire;
//! - documents of 60,000 fields;
//!
//! while a cashier of another shop commits and reads in a loop, counting answers.
//!
//! ```text
//! cargo build --release -p counterbook-server --bin counterbook-server --example soak_server
//! ./target/release/examples/soak_server [--seconds 180] [--server target/release/counterbook-server]
//! ```

use std::io::{BufRead, BufReader, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const PROJECT: &str = "soak";
const DATABASE: &str = "projects/soak/databases/(default)";
const PASSWORD: &str = "correct horse battery";
const SAMPLE_EVERY: Duration = Duration::from_secs(5);

struct Options {
    seconds: u64,
    server: PathBuf,
}

fn parse_options() -> anyhow::Result<Options> {
    let executable = std::env::current_exe().context("locating this example")?;
    // target/<profile>/examples/soak_server -> target/<profile>/counterbook-server
    let default_server = executable
        .parent()
        .and_then(Path::parent)
        .map(|profile| profile.join("counterbook-server"))
        .context("locating the target directory")?;
    let mut options = Options {
        seconds: 180,
        server: default_server,
    };
    let mut arguments = std::env::args().skip(1);
    while let Some(argument) = arguments.next() {
        match argument.as_str() {
            "--seconds" => {
                options.seconds = arguments
                    .next()
                    .context("--seconds needs a number")?
                    .parse()
                    .context("--seconds needs a number")?;
            }
            "--server" => {
                options.server = arguments.next().context("--server needs a path")?.into()
            }
            other => bail!("unknown option {other}; use --seconds N or --server PATH"),
        }
    }
    Ok(options)
}

/// The server process, killed when dropped.
struct Server {
    child: Child,
    address: SocketAddr,
    _data: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn administer(server: &Path, data: &Path, arguments: &[&str]) -> anyhow::Result<()> {
    let status = Command::new(server)
        .args(arguments)
        .arg("--data")
        .arg(data)
        .stdout(Stdio::null())
        .status()
        .with_context(|| format!("running {arguments:?}"))?;
    if !status.success() {
        bail!("{arguments:?} failed: {status}");
    }
    Ok(())
}

fn start_server(binary: &Path) -> anyhow::Result<Server> {
    let data = tempfile::tempdir()?;
    let password_file = data.path().join("password");
    std::fs::write(&password_file, PASSWORD)?;
    let password_file = password_file.to_str().context("a UTF-8 temporary path")?;
    for shop in ["hostile", "honest"] {
        administer(binary, data.path(), &["shop", "create", "--shop", shop])?;
        let email = format!("cashier@{shop}.test");
        administer(
            binary,
            data.path(),
            &[
                "user",
                "add",
                "--shop",
                shop,
                "--email",
                &email,
                "--role",
                "cashier",
                "--password-file",
                password_file,
            ],
        )?;
    }
    std::fs::remove_file(data.path().join("password"))?;
    let mut child = Command::new(binary)
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--project",
            PROJECT,
            "--data",
        ])
        .arg(data.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting the server")?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("the server's stdout")?).read_line(&mut line)?;
    let address = line
        .trim()
        .strip_prefix("counterbook-server listening on http://")
        .with_context(|| format!("unexpected first line {line:?}"))?
        .parse()?;
    Ok(Server {
        child,
        address,
        _data: data,
    })
}

/// `VmRSS` and `VmHWM` of a process, in MiB.
fn memory_of(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse::<u64>().ok())
            .map_or(0, |kib| kib / 1024)
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

/// One request on a fresh connection from 127.0.0.1; the status (0 if the connection failed)
/// and the body.
async fn request(
    address: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> (u16, String) {
    let Ok(mut stream) = TcpStream::connect(address).await else {
        return (0, String::new());
    };
    let authorization = token
        .map(|token| format!("Authorization: Bearer {token}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{authorization}\
         Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body).await;
    let mut response = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let reading = async {
        while let Ok(read) = stream.read(&mut buffer).await {
            if read == 0 {
                break;
            }
            response.extend_from_slice(&buffer[..read]);
        }
    };
    if tokio::time::timeout(Duration::from_secs(30), reading)
        .await
        .is_err()
    {
        return (0, String::new());
    }
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

async fn sign_in(address: SocketAddr, email: &str) -> anyhow::Result<String> {
    let body = json!({"email": email, "password": PASSWORD, "returnSecureToken": true});
    let (status, reply) = request(
        address,
        "POST",
        "/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword",
        None,
        body.to_string().as_bytes(),
    )
    .await;
    if status != 200 {
        bail!("signing in {email}: {status} {reply}");
    }
    let reply: Value = serde_json::from_str(&reply)?;
    Ok(reply["idToken"].as_str().context("an idToken")?.to_owned())
}

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

fn listen_url() -> String {
    format!(
        "/google.firestore.v1.Firestore/Listen/channel?VER=8&database={}&RID=1&CVER=22",
        percent_encode(DATABASE)
    )
}

fn listen_form(token: Option<&str>, shop: &str) -> String {
    let target = json!({
        "database": DATABASE,
        "addTarget": {
            "query": {
                "parent": format!("{DATABASE}/documents/shops/{shop}"),
                "structuredQuery": {"from": [{"collectionId": "products"}]}
            },
            "targetId": 1
        }
    });
    let headers = token
        .map(|token| {
            format!(
                "headers={}&",
                percent_encode(&format!("Authorization:Bearer {token}\r\n"))
            )
        })
        .unwrap_or_default();
    format!(
        "{headers}count=1&ofs=0&req0___data__={}",
        percent_encode(&target.to_string())
    )
}

/// Counts of what the load got back, by kind.
#[derive(Default)]
struct Tally {
    honest_served: AtomicU64,
    honest_failed: AtomicU64,
    hostile_requests: AtomicU64,
    slow_connections: AtomicU64,
}

/// Repeats `attack` until `stop`, counting each round.
async fn repeat<F, Fut>(stop: Arc<AtomicBool>, tally: Arc<Tally>, mut attack: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    while !stop.load(Ordering::Relaxed) {
        attack().await;
        tally.hostile_requests.fetch_add(1, Ordering::Relaxed);
    }
}

async fn slow_clients(address: SocketAddr, stop: Arc<AtomicBool>, tally: Arc<Tally>) {
    let mut open: Vec<TcpStream> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        // Drop the ones the server closed, then top up to 200.
        let mut alive = Vec::new();
        for mut stream in open.drain(..) {
            let mut byte = [0u8; 1];
            match tokio::time::timeout(Duration::from_millis(1), stream.read(&mut byte)).await {
                Ok(Ok(0) | Err(_)) => {}
                _ => alive.push(stream),
            }
        }
        open = alive;
        while open.len() < 200 {
            let Ok(socket) = TcpSocket::new_v4() else {
                break;
            };
            if socket.bind("127.0.0.2:0".parse().unwrap()).is_err() {
                break;
            }
            let Ok(Ok(mut stream)) =
                tokio::time::timeout(Duration::from_secs(1), socket.connect(address)).await
            else {
                break;
            };
            let _ = stream
                .write_all(b"POST /v1/projects/soak/databases/(default)/documents:commit HTTP/1.1\r\nHost: x\r\n")
                .await;
            open.push(stream);
            tally.slow_connections.fetch_add(1, Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let options = parse_options()?;
    let server = start_server(&options.server)?;
    let address = server.address;
    let pid = server.child.id();
    let hostile = sign_in(address, "cashier@hostile.test").await?;
    let honest = sign_in(address, "cashier@honest.test").await?;
    let (rss_at_start, _) = memory_of(pid)?;
    println!(
        "soak of {} s against {} (pid {pid}), {rss_at_start} MiB resident at start",
        options.seconds,
        options.server.display()
    );

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(slow_clients(
        address,
        stop.clone(),
        tally.clone(),
    )));

    let tiny_maps = Arc::new(
        format!(
            r#"{{"writes":[{{"update":{{"name":"projects/other/databases/(default)/documents/shops/hostile/products/x","fields":{{"a":{{"arrayValue":{{"values":[{}]}}}}}}}}}}]}}"#,
            vec![r#"{"mapValue":{}}"#; 700_000].join(",")
        )
        .into_bytes(),
    );
    let unknown_field = Arc::new(
        format!(
            r#"{{"writes":[{{"update":{{"name":"{DATABASE}/documents/shops/hostile/products/x","fields":{{}}}},"x":[{}]}}]}}"#,
            vec!["{}"; 3_500_000].join(",")
        )
        .into_bytes(),
    );
    let wide_document = Arc::new({
        let fields: serde_json::Map<String, Value> = (0..60_000)
            .map(|index| (format!("f{index}"), json!({"integerValue": "1"})))
            .collect();
        json!({"writes": [{"update": {
            "name": format!("{DATABASE}/documents/shops/hostile/products/wide"),
            "fields": fields
        }}]})
        .to_string()
        .into_bytes()
    });
    let huge_form = Arc::new(
        format!(
            "{}&padding={}",
            listen_form(None, "honest"),
            "x".repeat(9_900_000)
        )
        .into_bytes(),
    );
    let commit_path = format!("/v1/{DATABASE}/documents:commit");

    for body in [tiny_maps, unknown_field, wide_document] {
        let (token, path) = (hostile.clone(), commit_path.clone());
        tasks.push(tokio::spawn(repeat(
            stop.clone(),
            tally.clone(),
            move || {
                let (token, path, body) = (token.clone(), path.clone(), body.clone());
                async move {
                    request(address, "POST", &path, Some(&token), &body).await;
                }
            },
        )));
    }
    tasks.push(tokio::spawn(repeat(
        stop.clone(),
        tally.clone(),
        move || {
            let body = huge_form.clone();
            async move {
                request(address, "POST", &listen_url(), None, &body).await;
            }
        },
    )));
    {
        let token = hostile.clone();
        tasks.push(tokio::spawn(repeat(
            stop.clone(),
            tally.clone(),
            move || {
                let token = token.clone();
                async move {
                    let form = listen_form(Some(&token), "hostile");
                    request(address, "POST", &listen_url(), None, form.as_bytes()).await;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        )));
    }
    {
        let token = hostile.clone();
        let path = format!("/v1/{DATABASE}/documents:beginTransaction");
        tasks.push(tokio::spawn(repeat(
            stop.clone(),
            tally.clone(),
            move || {
                let (token, path) = (token.clone(), path.clone());
                async move {
                    request(address, "POST", &path, Some(&token), b"{}").await;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
        )));
    }

    // The honest shop: a commit and a read, one after the other (of `devices` documents, which
    // a cashier may change again and again).
    let honest_task = {
        let (stop, tally) = (stop.clone(), tally.clone());
        tokio::spawn(async move {
            let mut sequence = 0u64;
            while !stop.load(Ordering::Relaxed) {
                sequence += 1;
                let commit = json!({"writes": [{"update": {
                    "name": format!("{DATABASE}/documents/shops/honest/devices/p{}", sequence % 100),
                    "fields": {"stock": {"integerValue": sequence.to_string()}}
                }}]});
                let (committed, _) = request(
                    address,
                    "POST",
                    &format!("/v1/{DATABASE}/documents:commit"),
                    Some(&honest),
                    commit.to_string().as_bytes(),
                )
                .await;
                let (read, _) = request(
                    address,
                    "GET",
                    &format!(
                        "/v1/{DATABASE}/documents/shops/honest/devices/p{}",
                        sequence % 100
                    ),
                    Some(&honest),
                    b"",
                )
                .await;
                let counter = if committed == 200 && read == 200 {
                    &tally.honest_served
                } else {
                    &tally.honest_failed
                };
                counter.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    let started = Instant::now();
    let mut samples: Vec<(u64, u64, u64)> = Vec::new();
    println!(
        "{:>6} {:>9} {:>9} {:>8} {:>8} {:>9} {:>6}",
        "s", "RSS MiB", "HWM MiB", "honest", "failed", "hostile", "slow"
    );
    while started.elapsed() < Duration::from_secs(options.seconds) {
        tokio::time::sleep(SAMPLE_EVERY).await;
        let (rss, hwm) = memory_of(pid)?;
        let seconds = started.elapsed().as_secs();
        samples.push((seconds, rss, hwm));
        println!(
            "{seconds:>6} {rss:>9} {hwm:>9} {:>8} {:>8} {:>9} {:>6}",
            tally.honest_served.load(Ordering::Relaxed),
            tally.honest_failed.load(Ordering::Relaxed),
            tally.hostile_requests.load(Ordering::Relaxed),
            tally.slow_connections.load(Ordering::Relaxed),
        );
        std::io::stdout().flush()?;
    }
    stop.store(true, Ordering::Relaxed);
    honest_task.abort();
    for task in tasks {
        task.abort();
    }

    let third = samples.len() / 3;
    let peak = |slice: &[(u64, u64, u64)]| slice.iter().map(|(_, rss, _)| *rss).max().unwrap_or(0);
    let middle = peak(&samples[third..2 * third]);
    let last = peak(&samples[2 * third..]);
    let served = tally.honest_served.load(Ordering::Relaxed);
    let failed = tally.honest_failed.load(Ordering::Relaxed);
    println!(
        "resident at start {rss_at_start} MiB; peak in the middle third {middle} MiB, in the last \
         third {last} MiB; high-water mark {} MiB; honest shop served {served} times, failed \
         {failed}; {} hostile requests, {} slow connections",
        samples.last().map_or(0, |(_, _, hwm)| *hwm),
        tally.hostile_requests.load(Ordering::Relaxed),
        tally.slow_connections.load(Ordering::Relaxed),
    );
    if served == 0 || failed * 20 > served {
        bail!("the honest shop was not served: {served} served, {failed} failed");
    }
    if last > middle + middle / 4 && last > middle + 64 {
        bail!("memory grew: {middle} MiB in the middle third, {last} MiB in the last");
    }
    println!("flat: the honest shop was served throughout and memory did not grow");
    Ok(())
}
