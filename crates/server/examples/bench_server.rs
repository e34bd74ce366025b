//! `make bench-server`: commits per second and commit latency of counterbook-server, side by
//! side with Google's Firestore emulator on the same machine in the same run, and the SQLite
//! ceiling under them. A benchmark, not a test: it asserts nothing and is not part of
//! `make test`.
//!
//! Each client is a thread with its own keep-alive HTTP connection that sends, one after the
//! other, the commit a finalized bill becomes: 5 writes (the bill, two product stock counters,
//! a stock move and the `ops/{unit}` marker with `exists: false`), every one with an `updatedAt`
//! `REQUEST_TIME` transform and the products with an `increment`. Runs 1, 10 and 100 clients
//! for `--seconds` each (10 by default) against the release server (`--dev`, a fresh data
//! directory on disk) and then against the emulator (its own process group, stopped with the
//! group). The SQLite ceiling is measured in this process: one transaction per insert into a
//! table of the server's `documents` shape with its settings (WAL, `synchronous = FULL`).
//!
//! ```text
//! cargo build --release -p counterbook-server
//! cargo run --release -p counterbook-server --example bench_server -- [--seconds N]
//!     [--server target/release/counterbook-server] [--clients 1,10,100] [--skip-emulator]
//! ```

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::json;

const EMULATOR: &str =
    "/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud_firestore_emulator";
/// Products the bills draw from: enough that concurrent bills rarely touch the same one.
const PRODUCTS: u64 = 1000;
/// Unmeasured commits before each backend's runs (the emulator's JIT needs them most).
const WARM_UP_COMMITS: usize = 300;

struct Options {
    seconds: u64,
    server: PathBuf,
    clients: Vec<usize>,
    skip_emulator: bool,
}

fn parse_options() -> anyhow::Result<Options> {
    let executable = std::env::current_exe().context("locating this example")?;
    // target/release/examples/bench_server -> target/release/counterbook-server
    let default_server = executable
        .parent()
        .and_then(Path::parent)
        .map(|release| release.join("counterbook-server"))
        .context("locating target/release")?;
    let mut options = Options {
        seconds: 10,
        server: default_server,
        clients: vec![1, 10, 100],
        skip_emulator: false,
    };
    let mut arguments = std::env::args().skip(1);
    while let Some(argument) = arguments.next() {
        let mut value = || {
            arguments
                .next()
                .with_context(|| format!("{argument} needs a value"))
        };
        match argument.as_str() {
            "--seconds" => options.seconds = value()?.parse().context("--seconds")?,
            "--server" => options.server = PathBuf::from(value()?),
            "--clients" => {
                options.clients = value()?
                    .split(',')
                    .map(|count| count.trim().parse().context("--clients"))
                    .collect::<anyhow::Result<_>>()?;
            }
            "--skip-emulator" => options.skip_emulator = true,
            other => bail!("unknown argument {other}"),
        }
    }
    if !options.server.is_file() {
        bail!(
            "no server binary at {}: run `cargo build --release -p counterbook-server` first",
            options.server.display()
        );
    }
    Ok(options)
}

/// A process in its own process group (so the emulator's launcher script and the java process
/// it starts stop together), stopped when dropped.
struct Backend {
    child: Child,
    url: String,
}

impl Backend {
    fn start(mut command: Command, ready: &str, what: &str) -> anyhow::Result<Backend> {
        let mut child = command
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {what}"))?;
        let (lines, received) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let lines = lines.clone();
            // Keeps draining the pipe after startup, so the process never blocks on a full one.
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = lines.send(line);
                }
            });
        }
        let mut backend = Backend {
            child,
            url: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match received.recv_timeout(left) {
                Ok(line) if line.contains(ready) => {
                    if let Some(url) = line.split_whitespace().find(|w| w.starts_with("http://")) {
                        backend.url = url.to_owned();
                    }
                    return Ok(backend);
                }
                Ok(_) => {}
                Err(_) => bail!("{what} did not print {ready:?} within two minutes"),
            }
        }
    }

    fn start_server(binary: &Path, data_directory: &Path) -> anyhow::Result<Backend> {
        let mut command = Command::new(binary);
        command
            .args(["serve", "--addr", "127.0.0.1:0", "--dev", "--data"])
            .arg(data_directory)
            .env("RUST_LOG", "counterbook_server=warn");
        Backend::start(command, "listening on http://", "counterbook-server")
    }

    fn start_emulator() -> anyhow::Result<Backend> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut command = Command::new(EMULATOR);
        command.args(["start", "--host=127.0.0.1", &format!("--port={port}")]);
        let mut backend = Backend::start(
            command,
            "Dev App Server is now running",
            "the Firestore emulator",
        )?;
        backend.url = format!("http://127.0.0.1:{port}");
        Ok(backend)
    }

    fn signal_group(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([signal, "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.signal_group("-TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                // The group may hold more than the leader (the emulator's java process).
                self.signal_group("-KILL");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.signal_group("-KILL");
        let _ = self.child.wait();
    }
}

/// SplitMix64: product choice per client, reproducible, no dependency.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The commit a finalized bill becomes: 5 writes, each with transforms.
fn bill_commit(root: &str, bill: &str, random: &mut Random) -> String {
    let shop = format!("{root}/shops/bench");
    let updated_at = json!({"fieldPath": "updatedAt", "setToServerValue": "REQUEST_TIME"});
    let product = |id: u64| {
        json!({
            "update": {"name": format!("{shop}/products/p{id}"), "fields": {}},
            "updateMask": {"fieldPaths": []},
            "updateTransforms": [
                updated_at,
                {"fieldPath": "stock", "increment": {"integerValue": "-1"}}
            ]
        })
    };
    let first = random.next() % PRODUCTS;
    let second = (first + 1 + random.next() % (PRODUCTS - 1)) % PRODUCTS;
    json!({"writes": [
        {
            "update": {"name": format!("{shop}/bills/{bill}"), "fields": {
                "number": {"stringValue": bill},
                "status": {"stringValue": "final"},
                "total": {"integerValue": "12500"},
                "lines": {"arrayValue": {"values": [
                    {"mapValue": {"fields": {"product": {"stringValue": format!("p{first}")},
                                             "qty": {"integerValue": "1"}}}},
                    {"mapValue": {"fields": {"product": {"stringValue": format!("p{second}")},
                                             "qty": {"integerValue": "1"}}}}
                ]}}
            }},
            "updateTransforms": [updated_at]
        },
        product(first),
        product(second),
        {
            "update": {"name": format!("{shop}/stockMoves/{bill}"), "fields": {
                "kind": {"stringValue": "sale"}, "bill": {"stringValue": bill}
            }},
            "updateTransforms": [updated_at]
        },
        {
            "update": {"name": format!("{shop}/ops/{bill}"), "fields": {
                "expireAt": {"timestampValue": "2099-01-01T00:00:00Z"}
            }},
            "currentDocument": {"exists": false},
            "updateTransforms": [updated_at]
        }
    ]})
    .to_string()
}

fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build(),
    )
}

/// What one configuration measured.
struct Measured {
    commits: usize,
    errors: usize,
    first_error: Option<String>,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Measured {
    fn commits_per_second(&self) -> f64 {
        self.commits as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile_millis(&self, percentile: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let rank = ((self.latencies.len() as f64 * percentile).ceil() as usize).max(1) - 1;
        self.latencies[rank.min(self.latencies.len() - 1)].as_secs_f64() * 1000.0
    }
}

/// `clients` threads commit bills to `base_url` for `duration` (or `budget` commits in all,
/// for the warm-up); every thread starts at the same instant. `run` keeps bill ids (and so
/// the `exists: false` markers) distinct between runs against one backend.
fn run_clients(
    base_url: &str,
    project: &str,
    run: &str,
    clients: usize,
    duration: Duration,
    budget: Option<usize>,
) -> Measured {
    let root = format!("projects/{project}/databases/(default)/documents");
    let url = format!("{base_url}/v1/{root}:commit");
    let start_line = std::sync::Arc::new(std::sync::Barrier::new(clients + 1));
    let per_client_budget = budget.map(|total| total.div_ceil(clients));
    let threads: Vec<_> = (0..clients)
        .map(|client| {
            let (url, root, start_line) = (url.clone(), root.clone(), start_line.clone());
            let run = run.to_owned();
            std::thread::spawn(move || {
                let agent = agent();
                let mut random = Random(client as u64 * 7919 + 1);
                let mut latencies = Vec::new();
                let (mut errors, mut first_error) = (0, None);
                start_line.wait();
                let deadline = Instant::now() + duration;
                let mut number = 0u64;
                while Instant::now() < deadline
                    && per_client_budget.is_none_or(|limit| latencies.len() + errors < limit)
                {
                    number += 1;
                    let bill = format!("{run}-c{client}-{number}");
                    let body = bill_commit(&root, &bill, &mut random);
                    let sent = Instant::now();
                    let outcome = agent
                        .post(&url)
                        .header("Content-Type", "application/json")
                        .send(body)
                        .map_err(|error| error.to_string())
                        .and_then(|mut response| {
                            let status = response.status().as_u16();
                            let text = response.body_mut().read_to_string().unwrap_or_default();
                            if status == 200 {
                                Ok(())
                            } else {
                                Err(format!("{status}: {text}"))
                            }
                        });
                    match outcome {
                        Ok(()) => latencies.push(sent.elapsed()),
                        Err(error) => {
                            errors += 1;
                            first_error.get_or_insert(error);
                        }
                    }
                }
                (latencies, errors, first_error)
            })
        })
        .collect();
    start_line.wait();
    let started = Instant::now();
    let mut measured = Measured {
        commits: 0,
        errors: 0,
        first_error: None,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    for thread in threads {
        let (latencies, errors, first_error) = thread.join().expect("a client thread panicked");
        measured.errors += errors;
        if measured.first_error.is_none() {
            measured.first_error = first_error;
        }
        measured.latencies.extend(latencies);
    }
    measured.elapsed = started.elapsed();
    measured.commits = measured.latencies.len();
    measured.latencies.sort_unstable();
    measured
}

/// Runs every configuration against one backend, after a warm-up.
fn measure_backend(name: &str, base_url: &str, options: &Options) -> Vec<(usize, Measured)> {
    let project = format!("bench-{}", std::process::id());
    let warm_up = run_clients(
        base_url,
        &project,
        "warm-up",
        10,
        Duration::from_secs(60),
        Some(WARM_UP_COMMITS),
    );
    eprintln!(
        "{name}: warmed up with {} commits ({} errors)",
        warm_up.commits, warm_up.errors
    );
    options
        .clients
        .iter()
        .map(|&clients| {
            let measured = run_clients(
                base_url,
                &project,
                &format!("run{clients}"),
                clients,
                Duration::from_secs(options.seconds),
                None,
            );
            eprintln!(
                "{name}: {clients:>3} clients: {:>8.1} commits/s, p50 {:.2} ms, p99 {:.2} ms, {} errors{}",
                measured.commits_per_second(),
                measured.percentile_millis(0.50),
                measured.percentile_millis(0.99),
                measured.errors,
                measured
                    .first_error
                    .as_deref()
                    .map(|error| format!(" (first: {})", error.chars().take(200).collect::<String>()))
                    .unwrap_or_default()
            );
            (clients, measured)
        })
        .collect()
}

/// Inserts per second into a table of the server's `documents` shape, WAL and
/// `synchronous = FULL` as the server sets them, one transaction per `rows_per_transaction`.
fn sqlite_ceiling(
    directory: &Path,
    rows_per_transaction: usize,
    duration: Duration,
) -> anyhow::Result<f64> {
    let path = directory.join(format!("ceiling-{rows_per_transaction}.sqlite3"));
    let connection = rusqlite::Connection::open(&path)?;
    connection.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         CREATE TABLE documents (
             database TEXT NOT NULL,
             parent TEXT NOT NULL,
             collection_id TEXT NOT NULL,
             document_id TEXT NOT NULL,
             fields_json TEXT NOT NULL,
             create_time_micros INTEGER NOT NULL,
             update_time_micros INTEGER NOT NULL,
             PRIMARY KEY (database, parent, collection_id, document_id)
         ) WITHOUT ROWID;",
    )?;
    let fields = r#"{"kind":{"stringValue":"sale"},"bill":{"stringValue":"c1-000001"},"updatedAt":{"timestampValue":"2026-01-01T00:00:00.000001Z"}}"#;
    let started = Instant::now();
    let mut transactions = 0u64;
    while started.elapsed() < duration {
        let transaction = connection.unchecked_transaction()?;
        {
            let mut insert = transaction.prepare_cached(
                "INSERT INTO documents VALUES ('projects/bench/databases/(default)', 'shops/bench',
                                               'stockMoves', ?1, ?2, ?3, ?3)",
            )?;
            for row in 0..rows_per_transaction {
                let id = transactions * rows_per_transaction as u64 + row as u64;
                insert.execute(rusqlite::params![format!("m{id:012}"), fields, id as i64])?;
            }
        }
        transaction.commit()?;
        transactions += 1;
    }
    Ok(transactions as f64 / started.elapsed().as_secs_f64())
}

fn main() -> anyhow::Result<()> {
    let options = parse_options()?;
    let scratch = tempfile::tempdir().context("making a scratch directory")?;
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    eprintln!(
        "bench-server: {} s per configuration, clients {:?}, {cores} cores, scratch {}",
        options.seconds,
        options.clients,
        scratch.path().display()
    );

    let server_results = {
        let data = scratch.path().join("server-data");
        let server = Backend::start_server(&options.server, &data)?;
        measure_backend("counterbook-server", &server.url, &options)
    };
    let emulator_results = if options.skip_emulator {
        None
    } else {
        let emulator = Backend::start_emulator()?;
        Some(measure_backend(
            "firestore-emulator",
            &emulator.url,
            &options,
        ))
    };
    let ceiling_seconds = Duration::from_secs(options.seconds.min(5));
    let ceiling_one = sqlite_ceiling(scratch.path(), 1, ceiling_seconds)?;
    let ceiling_five = sqlite_ceiling(scratch.path(), 5, ceiling_seconds)?;

    println!();
    println!(
        "5-write commits with REQUEST_TIME + increment transforms, loopback, {cores} cores, {} s per row",
        options.seconds
    );
    println!();
    println!("| clients | server commits/s | server p50 ms | server p99 ms | emulator commits/s | emulator p50 ms | emulator p99 ms | commits/s server/emulator | p99 server/emulator |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (index, (clients, server)) in server_results.iter().enumerate() {
        let emulator = emulator_results.as_ref().map(|results| &results[index].1);
        let cell = |value: Option<f64>, decimals: usize| {
            value.map_or_else(|| "-".to_owned(), |value| format!("{value:.decimals$}"))
        };
        println!(
            "| {clients} | {:.1} | {:.2} | {:.2} | {} | {} | {} | {} | {} |",
            server.commits_per_second(),
            server.percentile_millis(0.50),
            server.percentile_millis(0.99),
            cell(emulator.map(Measured::commits_per_second), 1),
            cell(emulator.map(|e| e.percentile_millis(0.50)), 2),
            cell(emulator.map(|e| e.percentile_millis(0.99)), 2),
            cell(
                emulator.map(|e| server.commits_per_second() / e.commits_per_second()),
                2
            ),
            cell(
                emulator.map(|e| server.percentile_millis(0.99) / e.percentile_millis(0.99)),
                2
            ),
        );
    }
    let errors: usize = server_results
        .iter()
        .chain(emulator_results.iter().flatten())
        .map(|(_, measured)| measured.errors)
        .sum();
    println!();
    println!(
        "SQLite ceiling (in process, documents-shaped table, WAL, synchronous=FULL): \
         {ceiling_one:.0} inserts/s at one insert per transaction; \
         {ceiling_five:.0} transactions/s at five inserts per transaction"
    );
    println!("failed commits in all measured runs: {errors}");
    Ok(())
}
