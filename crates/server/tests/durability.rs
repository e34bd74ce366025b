//! Durability of the real `counterbook-server` binary, black box over real HTTP: commits
//! acknowledged with a 200 survive `kill -9` in the middle of a stream of commits, and
//! `counterbook-server backup`, taken while clients write, makes a consistent file that holds
//! every commit acknowledged before it began and that a new server serves after a restore.
//!
//! Every commit here is one "sale": it creates `shops/s1/sales/{seq}` (with `exists: false`
//! and an `updatedAt` REQUEST_TIME transform) and increments `shops/s1/counters/total.sold`.
//! So a database is consistent exactly when the counter equals the number of sales, whatever
//! moment it was cut at, and each acknowledged sale must carry its commit's time.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use counterbook_firestore_wire::Timestamp;
use serde_json::{json, Value};
use support::binary::{RunningServer, SERVER_BINARY};

const ROOT: &str = "projects/durability/databases/(default)/documents";
/// How long any single wait in these tests may take before it counts as a failure.
const DEADLINE: Duration = Duration::from_secs(60);

/// The real binary in dev mode, and its API's base URL.
struct Server {
    running: RunningServer,
    api: String,
}

impl Server {
    fn start(data_directory: &Path) -> Server {
        let running = RunningServer::start_dev(data_directory);
        Server {
            api: format!("{}/v1/{ROOT}", running.base_url),
            running,
        }
    }

    /// SIGKILL: no shutdown, no flush, no checkpoint; whatever SQLite has not made durable
    /// by now is gone.
    fn kill_hard(self) {
        self.running.kill_hard();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build(),
    )
}

/// POSTs JSON; `Err` for a transport failure (the server is gone) or a non-200 answer.
fn post(agent: &ureq::Agent, url: &str, body: &Value) -> Result<Value, String> {
    let mut response = agent
        .post(url)
        .header("Content-Type", "application/json")
        .send(body.to_string())
        .map_err(|error| error.to_string())?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .read_to_string()
        .map_err(|error| error.to_string())?;
    if status != 200 {
        return Err(format!("{status}: {text}"));
    }
    serde_json::from_str(&text).map_err(|error| format!("{error}: {text}"))
}

/// Commits sale number `seq`; returns the commit time of the 200 reply.
fn commit_sale(agent: &ureq::Agent, api: &str, seq: u64) -> Result<Timestamp, String> {
    let body = json!({"writes": [
        {
            "update": {"name": format!("{ROOT}/shops/s1/sales/{seq:08}"),
                       "fields": {"seq": {"integerValue": seq.to_string()}}},
            "currentDocument": {"exists": false},
            "updateTransforms": [{"fieldPath": "updatedAt", "setToServerValue": "REQUEST_TIME"}]
        },
        {
            "update": {"name": format!("{ROOT}/shops/s1/counters/total"), "fields": {}},
            "updateMask": {"fieldPaths": []},
            "updateTransforms": [{"fieldPath": "sold", "increment": {"integerValue": "1"}}]
        }
    ]});
    let reply = post(agent, &format!("{api}:commit"), &body)?;
    let time = reply["commitTime"].as_str().ok_or("no commitTime")?;
    Timestamp::parse(time).map_err(|error| error.to_string())
}

/// What a server holds: each sale's `updatedAt` by seq, and the counter.
struct Holdings {
    sales: BTreeMap<u64, Timestamp>,
    sold: u64,
}

fn read_holdings(api: &str) -> Holdings {
    let agent = agent();
    let items = post(
        &agent,
        &format!("{api}/shops/s1:runQuery"),
        &json!({"structuredQuery": {"from": [{"collectionId": "sales"}]}}),
    )
    .expect("runQuery");
    let mut sales = BTreeMap::new();
    for item in items.as_array().expect("an array") {
        let Some(document) = item.get("document") else {
            continue;
        };
        let seq = document["fields"]["seq"]["integerValue"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let updated_at = Timestamp::parse(
            document["fields"]["updatedAt"]["timestampValue"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        sales.insert(seq, updated_at);
    }
    let counter = agent
        .get(format!("{api}/shops/s1/counters/total"))
        .call()
        .expect("GET the counter");
    let sold = if counter.status() == 404 {
        0
    } else {
        let mut counter = counter;
        let document: Value =
            serde_json::from_str(&counter.body_mut().read_to_string().unwrap()).unwrap();
        document["fields"]["sold"]["integerValue"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    Holdings { sales, sold }
}

/// Asserts that the server is consistent and holds every acknowledged sale with the commit
/// time its reply carried, and that a new commit (sale `fresh_seq`) gets a later time than
/// anything stored; returns that commit's time.
fn assert_holds_every_acknowledged_sale(
    api: &str,
    acknowledged: &BTreeMap<u64, Timestamp>,
    fresh_seq: u64,
) -> Timestamp {
    let holdings = read_holdings(api);
    for (seq, commit_time) in acknowledged {
        assert_eq!(
            holdings.sales.get(seq),
            Some(commit_time),
            "acknowledged sale {seq} (committed at {commit_time}) is missing or changed"
        );
    }
    assert_eq!(
        holdings.sold,
        holdings.sales.len() as u64,
        "every commit applied both of its writes or neither"
    );
    let distinct_times: std::collections::BTreeSet<_> = holdings.sales.values().collect();
    assert_eq!(
        distinct_times.len(),
        holdings.sales.len(),
        "commit times strictly increase, so no two commits share one"
    );
    let latest = holdings.sales.values().max().copied().unwrap_or_default();
    let next = commit_sale(&agent(), api, fresh_seq).expect("a commit after the restart");
    assert!(
        next > latest,
        "the clock still increases: {next} after {latest}"
    );
    next
}

/// Client threads that commit sales until told to stop or until the server is gone, sending
/// each acknowledged sale down the channel.
struct Writers {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    acknowledgements: mpsc::Receiver<(u64, Timestamp)>,
}

impl Writers {
    fn start(api: &str, clients: usize, next_seq: &Arc<AtomicU64>) -> Writers {
        let stop = Arc::new(AtomicBool::new(false));
        let (sender, acknowledgements) = mpsc::channel();
        let threads = (0..clients)
            .map(|_| {
                let (api, stop, sender, next_seq) = (
                    api.to_owned(),
                    Arc::clone(&stop),
                    sender.clone(),
                    Arc::clone(next_seq),
                );
                std::thread::spawn(move || {
                    let agent = agent();
                    while !stop.load(Ordering::SeqCst) {
                        let seq = next_seq.fetch_add(1, Ordering::SeqCst);
                        match commit_sale(&agent, &api, seq) {
                            Ok(time) => sender.send((seq, time)).unwrap(),
                            // The server was killed: this commit's fate is unknown, and it
                            // was never acknowledged, so it may or may not be there.
                            Err(_) => break,
                        }
                    }
                })
            })
            .collect();
        Writers {
            stop,
            threads,
            acknowledgements,
        }
    }

    /// Waits (up to the deadline) until `count` more acknowledgements arrive, adding them to
    /// `into`.
    fn wait_for(&self, count: usize, into: &mut BTreeMap<u64, Timestamp>) {
        let deadline = Instant::now() + DEADLINE;
        for _ in 0..count {
            let left = deadline.saturating_duration_since(Instant::now());
            let (seq, time) = self
                .acknowledgements
                .recv_timeout(left)
                .expect("the writers stopped getting replies");
            into.insert(seq, time);
        }
    }

    /// Stops (or, once the server is dead, just collects) the threads and the rest of the
    /// acknowledgements.
    fn finish(self, into: &mut BTreeMap<u64, Timestamp>) {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads {
            thread.join().unwrap();
        }
        into.extend(self.acknowledgements.try_iter());
    }
}

#[test]
fn every_acknowledged_commit_survives_kill_9_mid_stream_and_the_clock_keeps_increasing() {
    let data_directory = tempfile::tempdir().unwrap();
    let next_seq = Arc::new(AtomicU64::new(0));
    let mut acknowledged = BTreeMap::new();
    for _round in 0..3 {
        let server = Server::start(data_directory.path());
        let fresh_seq = next_seq.fetch_add(1, Ordering::SeqCst);
        let fresh_time =
            assert_holds_every_acknowledged_sale(&server.api, &acknowledged, fresh_seq);
        acknowledged.insert(fresh_seq, fresh_time);
        let writers = Writers::start(&server.api, 4, &next_seq);
        writers.wait_for(60, &mut acknowledged);
        // Four clients have commits in flight: the kill lands in the middle of some.
        server.kill_hard();
        writers.finish(&mut acknowledged);
    }
    let server = Server::start(data_directory.path());
    assert_holds_every_acknowledged_sale(
        &server.api,
        &acknowledged,
        next_seq.fetch_add(1, Ordering::SeqCst),
    );
    assert!(acknowledged.len() >= 180);
}

fn run_backup(data_directory: &Path, target: &Path) -> std::process::Output {
    Command::new(SERVER_BINARY)
        .args(["backup", "--data"])
        .arg(data_directory)
        .arg("--to")
        .arg(target)
        .output()
        .expect("running counterbook-server backup")
}

#[test]
fn a_backup_taken_during_writes_is_consistent_and_serves_its_documents_after_a_restore() {
    let data_directory = tempfile::tempdir().unwrap();
    let backups = tempfile::tempdir().unwrap();
    let backup_file = backups.path().join("shop.sqlite3");
    let server = Server::start(data_directory.path());
    let next_seq = Arc::new(AtomicU64::new(0));
    let writers = Writers::start(&server.api, 3, &next_seq);
    let mut acknowledged_before_backup = BTreeMap::new();
    writers.wait_for(40, &mut acknowledged_before_backup);
    acknowledged_before_backup.extend(writers.acknowledgements.try_iter());

    let output = run_backup(data_directory.path(), &backup_file);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "backup failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.starts_with("backed up "), "{stdout}");
    // The server kept taking commits while and after the backup ran.
    let mut acknowledged_later = BTreeMap::new();
    writers.wait_for(20, &mut acknowledged_later);
    writers.finish(&mut acknowledged_later);
    drop(server);

    // One self-contained, sound SQLite file, and nothing else left beside it.
    let beside: Vec<_> = std::fs::read_dir(backups.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(beside, ["shop.sqlite3"]);
    let copy = rusqlite::Connection::open(&backup_file).unwrap();
    let check: String = copy
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let journal_mode: String = copy
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(journal_mode, "delete");
    drop(copy);

    let restored = tempfile::tempdir().unwrap();
    std::fs::copy(&backup_file, restored.path().join("counterbook.sqlite3")).unwrap();
    let server = Server::start(restored.path());
    let holdings = read_holdings(&server.api);
    for (seq, time) in &holdings.sales {
        let acknowledged = acknowledged_before_backup
            .get(seq)
            .or_else(|| acknowledged_later.get(seq));
        assert_eq!(
            acknowledged,
            Some(time),
            "sale {seq} is the acknowledged one"
        );
    }
    assert_holds_every_acknowledged_sale(
        &server.api,
        &acknowledged_before_backup,
        next_seq.fetch_add(1, Ordering::SeqCst),
    );
    assert!(
        stdout.contains(&format!("backed up {} documents", holdings.sales.len() + 1)),
        "the report counts the sales and the counter: {stdout}"
    );
}

#[test]
fn backup_errors_name_what_is_wrong() {
    let data_directory = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("backup.sqlite3");
    let stderr_of = |data: &Path, target: &Path| {
        let output = run_backup(data, target);
        assert!(!output.status.success());
        String::from_utf8_lossy(&output.stderr).into_owned()
    };

    let missing = data_directory.path().join("nope");
    assert!(stderr_of(&missing, &target).contains("does not exist"));
    // An empty directory is not a data directory: never back up (or create) an empty database.
    let empty = stderr_of(data_directory.path(), &target);
    assert!(empty.contains("has no counterbook.sqlite3"), "{empty}");
    assert!(!data_directory.path().join("counterbook.sqlite3").exists());

    drop(Server::start(data_directory.path()));
    let database = data_directory.path().join("counterbook.sqlite3");
    let onto_itself = stderr_of(data_directory.path(), &database);
    assert!(
        onto_itself.contains("is the live database"),
        "{onto_itself}"
    );
    let into_directory = stderr_of(data_directory.path(), elsewhere.path());
    assert!(
        into_directory.contains("is a directory"),
        "{into_directory}"
    );
    let no_directory = stderr_of(
        data_directory.path(),
        &elsewhere.path().join("missing").join("b.sqlite3"),
    );
    assert!(no_directory.contains("does not exist"), "{no_directory}");
    // Not writable whoever runs the test (root writes anywhere a plain directory allows).
    let unwritable = stderr_of(
        data_directory.path(),
        Path::new("/proc/counterbook.sqlite3"),
    );
    assert!(
        unwritable.contains("cannot write the backup"),
        "{unwritable}"
    );

    assert!(!target.exists(), "no failed attempt leaves a file behind");
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
    assert!(run_backup(data_directory.path(), &target).status.success());
    assert!(target.is_file());
}
