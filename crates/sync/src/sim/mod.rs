//! Deterministic simulation of several tablets syncing through an unreliable network
//! (FoundationDB-style). Everything — users, network, clocks, crashes — comes from one seed, so
//! any failure replays exactly (`--seed N --verbose` in `examples/simulate.rs`).
//!
//! Fault model, per run: requests and replies dropped (a reply lost after the server applied the
//! commit), delayed past the client's timeout (so a "failed" request applies later), duplicated
//! (the server applies a request twice; the marker must refuse the second), reordered (random
//! latency), transient server errors (503 with and without `Retry-After`, 429), tablets
//! restarted mid-flight (the engine's memory is lost, the store is kept; replies to the old life
//! are dropped), and tablets cut off from the server for long spells, sometimes knowing it
//! (`Online(false)`), sometimes not. The backend stamps `updatedAt` up to
//! [`SimOptions::request_time_lag_max_millis`] before the commit becomes visible, as Google's
//! emulator does, so `updatedAt` order differs from visibility order and a commit can appear
//! stamped earlier than one a tablet already pulled. Every applied commit also reaches the
//! tablets as a listen snapshot of its documents, over its own connection with its own latency
//! (often lost, sometimes late), so snapshots and pulled pages arrive out of order: the store
//! must never let an older version replace a newer one. Every tablet's user meanwhile edits the
//! same products, sells the same stock, voids the same bills.
//!
//! After the active phase every fault stops, partitions heal, every outbox drains, each tablet
//! discards its dead letters and pulls every collection to the end. Then [`run`] checks:
//! all tablets hold exactly the server's documents; every counter equals its initial value plus
//! the movements of the units applied; every unit was applied exactly once (one marker, and the
//! commit that created it applied exactly its movements) or rejected for a reason the rules give
//! (a second void of one bill); no dead letter except the poison units a retry cannot fix.

pub mod device;
pub mod server;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use counterbook_firestore_wire::{
    Code, CommitRequest, CommitResponse, Document, StructuredQuery, Timestamp, Value,
    WriteOperation,
};

use crate::backoff::{Backoff, SplitMix64};
use crate::outbox::{Command, Event, OutboxConfig, PushFailure};
use crate::pull::{PullQueryId, PulledPage};
use crate::unit::UnitId;
use device::{Device, LedgerEntry, COLLECTIONS};
use server::ServerModel;

const SHOP: &str = "s";
const PROJECT: &str = "p";
/// The client gives up on a request after this long.
const TIMEOUT_MILLIS: i64 = 3_000;

/// How big and how hostile a run is.
#[derive(Clone, Debug)]
pub struct SimOptions {
    pub devices: usize,
    /// How long users act, in simulated milliseconds.
    pub active_millis: i64,
    /// Mean time between one user's actions.
    pub mean_action_gap_millis: u64,
    /// Per mille: request lost, reply lost, request duplicated, transient server error,
    /// latency beyond the client's timeout.
    pub drop_request_per_mille: u64,
    pub drop_reply_per_mille: u64,
    pub duplicate_per_mille: u64,
    pub server_error_per_mille: u64,
    pub late_per_mille: u64,
    /// The backend stamps `REQUEST_TIME` up to this long before its commit becomes visible
    /// (0: at the commit time, as Cloud Firestore and counterbook-server do).
    pub request_time_lag_max_millis: u64,
    /// The tablets' pull overlap window ([`OutboxConfig::pull_overlap_millis`]).
    pub pull_overlap_millis: i64,
    /// Applied commits reach the tablets as listen snapshots too.
    pub listen: bool,
    /// Record a line per event, for `--verbose`.
    pub trace: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            devices: 3,
            active_millis: 60_000,
            mean_action_gap_millis: 2_500,
            drop_request_per_mille: 60,
            drop_reply_per_mille: 80,
            duplicate_per_mille: 40,
            server_error_per_mille: 50,
            late_per_mille: 30,
            request_time_lag_max_millis: 1_500,
            pull_overlap_millis: crate::outbox::DEFAULT_PULL_OVERLAP_MILLIS,
            listen: true,
            trace: false,
        }
    }
}

/// What one run found.
#[derive(Clone, Debug, Default)]
pub struct RunReport {
    pub seed: u64,
    /// Tablets or counters disagreeing with the server (or with the users' movements).
    pub diverged: bool,
    /// Units neither applied nor rightly rejected or dead-lettered.
    pub lost: usize,
    /// Units applied more than once, or commits that applied more than their units.
    pub duplicated: usize,
    pub problems: Vec<String>,
    pub trace: Vec<String>,
    pub units: usize,
    pub commits: usize,
    pub conflicts: usize,
    pub rejected: usize,
    pub restarts: usize,
}

impl RunReport {
    pub fn passed(&self) -> bool {
        !self.diverged && self.lost == 0 && self.duplicated == 0 && self.problems.is_empty()
    }
}

/// A request on its way to the server.
#[derive(Clone, Debug)]
enum Request {
    Commit {
        unit_id: UnitId,
        request: CommitRequest,
    },
    ReadMarker {
        unit_id: UnitId,
        path: String,
    },
    ReadDocuments {
        unit_id: UnitId,
        paths: Vec<String>,
    },
    Query {
        collection: String,
        query_id: PullQueryId,
        query: StructuredQuery,
    },
}

#[derive(Clone, Debug)]
enum Reply {
    Committed(CommitResponse),
    Marker(bool),
    Documents(Vec<(String, Option<Document>)>),
    Page(Vec<Document>, Timestamp),
}

#[derive(Clone, Debug)]
enum SimEvent {
    UserActs(usize),
    /// The request reaches the server; `reply` says whether its answer gets back.
    Arrives {
        device: usize,
        incarnation: u32,
        request: Request,
        answer_lost: bool,
        deadline: i64,
        client_waits: bool,
    },
    /// An event for a device's engine (a reply, or a failure the driver saw).
    Deliver {
        device: usize,
        incarnation: u32,
        event: Event,
    },
    Wake {
        device: usize,
        incarnation: u32,
    },
    /// A listen snapshot with the documents a commit wrote reaches a tablet's store.
    Snapshot {
        device: usize,
        incarnation: u32,
        documents: Vec<Document>,
    },
    /// The store transaction of a pulled page commits (a restart before it loses the page).
    PageStored {
        device: usize,
        incarnation: u32,
        page: PulledPage,
    },
    PullTimer(usize),
    Restart(usize),
    PartitionStarts {
        device: usize,
        until: i64,
        browser_knows: bool,
    },
    PartitionEnds(usize),
}

struct Simulation {
    options: SimOptions,
    rng: SplitMix64,
    now: i64,
    queue: BinaryHeap<Reverse<(i64, u64)>>,
    events: BTreeMap<u64, SimEvent>,
    next_sequence: u64,
    server: ServerModel,
    devices: Vec<Device>,
    partitioned_until: Vec<i64>,
    faults_on: bool,
    ledger: BTreeMap<UnitId, LedgerEntry>,
    report: RunReport,
}

/// Runs one seeded simulation and checks it.
pub fn run(seed: u64, options: &SimOptions) -> RunReport {
    let mut rng = SplitMix64::new(seed);
    let devices = (0..options.devices)
        .map(|index| {
            let mut config =
                OutboxConfig::new(PROJECT, SHOP, &format!("dev-{index}"), rng.next_u64());
            config.backoff = Backoff {
                base_millis: 200,
                cap_millis: 20_000,
            };
            config.pull_page_size = 1 + rng.up_to(7) as i32;
            config.pull_overlap_millis = options.pull_overlap_millis;
            config.max_commits_in_flight = 1 + rng.up_to(3) as usize;
            config.max_units_per_commit = 1 + rng.up_to(5) as usize;
            Device::new(index, config)
        })
        .collect();
    let mut simulation = Simulation {
        options: options.clone(),
        rng,
        now: 0,
        queue: BinaryHeap::new(),
        events: BTreeMap::new(),
        next_sequence: 0,
        server: ServerModel::new(PROJECT),
        devices,
        partitioned_until: vec![i64::MIN; options.devices],
        faults_on: true,
        ledger: BTreeMap::new(),
        report: RunReport {
            seed,
            ..RunReport::default()
        },
    };
    simulation.run();
    simulation.report
}

impl Simulation {
    fn schedule(&mut self, at: i64, event: SimEvent) {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        self.queue.push(Reverse((at.max(self.now), sequence)));
        self.events.insert(sequence, event);
    }

    fn trace(&mut self, line: impl FnOnce() -> String) {
        if self.options.trace {
            let line = format!("{:>8} {}", self.now, line());
            self.report.trace.push(line);
        }
    }

    fn chance(&mut self, per_mille: u64) -> bool {
        self.faults_on && self.rng.up_to(999) < per_mille
    }

    fn latency(&mut self) -> i64 {
        if self.chance(self.options.late_per_mille) {
            TIMEOUT_MILLIS + self.rng.up_to(5_000) as i64
        } else {
            5 + self.rng.up_to(300) as i64
        }
    }

    fn is_partitioned(&self, device: usize) -> bool {
        self.faults_on && self.partitioned_until[device] > self.now
    }

    fn run(&mut self) {
        let active = self.options.active_millis;
        for device in 0..self.options.devices {
            let first = self.rng.up_to(self.options.mean_action_gap_millis) as i64;
            self.schedule(first, SimEvent::UserActs(device));
            let pull = self.rng.up_to(2_000) as i64;
            self.schedule(pull, SimEvent::PullTimer(device));
            for _ in 0..self.rng.up_to(2) {
                let at = self.rng.up_to(active as u64) as i64;
                self.schedule(at, SimEvent::Restart(device));
            }
            for _ in 0..self.rng.up_to(2) {
                let at = self.rng.up_to(active as u64) as i64;
                let length = 2_000 + self.rng.up_to(active as u64 / 3) as i64;
                let browser_knows = self.rng.up_to(1) == 0;
                self.schedule(
                    at,
                    SimEvent::PartitionStarts {
                        device,
                        until: at + length,
                        browser_knows,
                    },
                );
            }
        }
        // The active phase, then the faults stop and everything drains.
        self.run_until(active);
        self.faults_on = false;
        self.trace(|| "--- faults stop, partitions heal ---".into());
        for device in 0..self.options.devices {
            self.partitioned_until[device] = i64::MIN;
            let commands = self.devices[device]
                .engine
                .handle(self.now, Event::Online(true));
            self.execute(device, commands);
            let commands = self.devices[device]
                .engine
                .handle(self.now, Event::ServerReachable);
            self.execute(device, commands);
        }
        self.run_until(i64::MAX);
        // Dead letters: each must be a poison unit; the user discards them.
        for device in 0..self.options.devices {
            let dead: Vec<(UnitId, String)> = self.devices[device]
                .engine
                .dead_letters()
                .into_iter()
                .map(|(unit, reason)| (unit.id.clone(), reason.to_string()))
                .collect();
            for (unit_id, reason) in dead {
                if !self.ledger.get(&unit_id).is_some_and(|entry| entry.poison) {
                    self.report.lost += 1;
                    self.report.problems.push(format!(
                        "dev-{device}: unit {unit_id} is a dead letter a retry would fix: {reason}"
                    ));
                }
                let commands = self.devices[device]
                    .engine
                    .handle(self.now, Event::DiscardDeadLetter { unit_id });
                self.execute(device, commands);
            }
        }
        // Every tablet pulls every collection to the end.
        for device in 0..self.options.devices {
            self.request_pulls(device);
        }
        self.run_until(i64::MAX);
        self.check();
    }

    fn run_until(&mut self, end: i64) {
        while let Some(Reverse((at, sequence))) = self.queue.peek().copied() {
            if at > end {
                break;
            }
            self.queue.pop();
            self.now = at;
            let event = self.events.remove(&sequence).expect("scheduled event");
            self.step(event);
        }
        if end != i64::MAX {
            self.now = end;
        }
    }

    fn step(&mut self, event: SimEvent) {
        let active = self.now < self.options.active_millis;
        match event {
            SimEvent::UserActs(device) => {
                if !active {
                    return;
                }
                let mut rng = SplitMix64::new(self.rng.next_u64());
                let now = self.now;
                if let Some((unit, ledger)) = self.devices[device].act(now, &mut rng) {
                    self.trace(|| {
                        let voids = ledger.voids.as_deref().unwrap_or("");
                        let base = unit.writes[0].required_update_time();
                        format!(
                            "dev-{device} user: {} {} {voids} base={base:?}",
                            ledger.label, unit.id
                        )
                    });
                    self.report.units += 1;
                    self.ledger.insert(unit.id.clone(), ledger);
                    let commands = self.devices[device]
                        .engine
                        .handle(now, Event::LocalWrite(unit));
                    self.execute(device, commands);
                }
                let gap = 1 + self.rng.up_to(2 * self.options.mean_action_gap_millis) as i64;
                self.schedule(now + gap, SimEvent::UserActs(device));
            }
            SimEvent::Arrives {
                device,
                incarnation,
                request,
                answer_lost,
                deadline,
                client_waits,
            } => self.arrive(
                device,
                incarnation,
                request,
                answer_lost,
                deadline,
                client_waits,
            ),
            SimEvent::Deliver {
                device,
                incarnation,
                event,
            } => {
                if self.devices[device].incarnation != incarnation {
                    return;
                }
                self.trace(|| format!("dev-{device} <- {}", describe_event(&event)));
                let commands = self.devices[device].engine.handle(self.now, event);
                self.execute(device, commands);
            }
            SimEvent::Wake {
                device,
                incarnation,
            } => {
                let this = &mut self.devices[device];
                if this.incarnation != incarnation || this.scheduled_wake != Some(self.now) {
                    return;
                }
                this.scheduled_wake = None;
                let commands = this.engine.handle(self.now, Event::Tick);
                self.execute(device, commands);
            }
            SimEvent::Snapshot {
                device,
                incarnation,
                documents,
            } => {
                if self.devices[device].incarnation != incarnation || self.is_partitioned(device) {
                    return;
                }
                self.trace(|| format!("dev-{device} <- snapshot ({} documents)", documents.len()));
                for document in documents {
                    self.devices[device].store.take_server_document(document);
                }
            }
            SimEvent::PageStored {
                device,
                incarnation,
                page,
            } => {
                if self.devices[device].incarnation != incarnation {
                    return;
                }
                // One transaction: documents, conflicts and checkpoint together.
                let store = &mut self.devices[device].store;
                for document in &page.upserts {
                    store.take_server_document(document.clone());
                }
                for entry in page.conflicts {
                    store.inbox.insert(entry.id.clone(), entry);
                }
                store
                    .checkpoints
                    .insert(page.collection.clone(), page.checkpoint);
                self.trace(|| format!("dev-{device} stored a page of {}", page.collection));
                let commands = self.devices[device].engine.handle(
                    self.now,
                    Event::PulledPageApplied {
                        collection: page.collection,
                        query_id: page.query_id,
                    },
                );
                self.execute(device, commands);
            }
            SimEvent::PullTimer(device) => {
                if !active {
                    return;
                }
                if !self.is_partitioned(device) || self.rng.up_to(3) == 0 {
                    self.request_pulls(device);
                }
                let gap = 1_000 + self.rng.up_to(3_000) as i64;
                self.schedule(self.now + gap, SimEvent::PullTimer(device));
            }
            SimEvent::Restart(device) => {
                self.report.restarts += 1;
                self.trace(|| format!("dev-{device} RESTARTS"));
                let seed = self.rng.next_u64();
                let commands = self.devices[device].restart(self.now, seed);
                self.execute(device, commands);
                if self.is_partitioned(device) {
                    let commands = self.devices[device]
                        .engine
                        .handle(self.now, Event::Online(false));
                    self.execute(device, commands);
                }
            }
            SimEvent::PartitionStarts {
                device,
                until,
                browser_knows,
            } => {
                if !self.faults_on {
                    return;
                }
                self.trace(|| format!("dev-{device} cut off until {until}"));
                self.partitioned_until[device] = self.partitioned_until[device].max(until);
                self.schedule(until, SimEvent::PartitionEnds(device));
                if browser_knows {
                    let commands = self.devices[device]
                        .engine
                        .handle(self.now, Event::Online(false));
                    self.execute(device, commands);
                }
            }
            SimEvent::PartitionEnds(device) => {
                if self.partitioned_until[device] > self.now {
                    return;
                }
                self.trace(|| format!("dev-{device} reconnected"));
                let commands = self.devices[device]
                    .engine
                    .handle(self.now, Event::Online(true));
                self.execute(device, commands);
            }
        }
    }

    fn request_pulls(&mut self, device: usize) {
        for collection in COLLECTIONS {
            let checkpoint = self.devices[device]
                .store
                .checkpoints
                .get(collection)
                .cloned();
            let commands = self.devices[device].engine.handle(
                self.now,
                Event::PullRequested {
                    collection: collection.into(),
                    checkpoint,
                },
            );
            self.execute(device, commands);
        }
    }

    /// Carries out an engine's commands, as the browser driver does.
    fn execute(&mut self, device: usize, commands: Vec<Command>) {
        let mut queue: std::collections::VecDeque<Command> = commands.into();
        while let Some(command) = queue.pop_front() {
            let store = &mut self.devices[device].store;
            match command {
                Command::SendCommit { unit_id, request } => {
                    self.trace(|| {
                        format!(
                            "dev-{device} -> commit {unit_id} ({} writes)",
                            request.writes.len()
                        )
                    });
                    self.send(device, Request::Commit { unit_id, request });
                }
                Command::ReadMarker { unit_id, path } => {
                    self.send(device, Request::ReadMarker { unit_id, path })
                }
                Command::ReadDocuments { unit_id, paths } => {
                    self.send(device, Request::ReadDocuments { unit_id, paths })
                }
                Command::RunPullQuery {
                    collection,
                    query_id,
                    query,
                } => self.send(
                    device,
                    Request::Query {
                        collection,
                        query_id,
                        query,
                    },
                ),
                Command::MarkDone { unit_id } => {
                    store.outbox.remove(&unit_id);
                }
                Command::RewriteUnit { unit } => {
                    if let Some(stored) = store.outbox.get_mut(&unit.id) {
                        stored.0 = unit;
                    }
                }
                Command::RecordConflicts { entries } => {
                    self.report.conflicts += entries.len();
                    for entry in entries {
                        store.inbox.insert(entry.id.clone(), entry);
                    }
                }
                Command::Reject { unit_id } => {
                    self.trace(|| format!("dev-{device} rejected {unit_id}"));
                    let store = &mut self.devices[device].store;
                    store.outbox.remove(&unit_id);
                    store.rejected.insert(unit_id);
                    self.report.rejected += 1;
                }
                Command::MarkDeadLetter { unit_id, reason } => {
                    if let Some(stored) = store.outbox.get_mut(&unit_id) {
                        stored.1 = Some(reason);
                    }
                }
                Command::MarkPending { unit_id } => {
                    if let Some(stored) = store.outbox.get_mut(&unit_id) {
                        stored.1 = None;
                    }
                }
                Command::Discard { unit_id } => {
                    store.outbox.remove(&unit_id);
                    store.discarded.insert(unit_id);
                }
                Command::ApplyPulledPage(page) => {
                    // The transaction takes a while, so the pull's next reply may come first.
                    let incarnation = self.devices[device].incarnation;
                    let at = self.now + self.rng.up_to(40) as i64;
                    self.schedule(
                        at,
                        SimEvent::PageStored {
                            device,
                            incarnation,
                            page,
                        },
                    );
                }
                Command::WakeAt(at) => {
                    let this = &mut self.devices[device];
                    if this.scheduled_wake.is_none_or(|scheduled| at < scheduled) {
                        this.scheduled_wake = Some(at.max(self.now));
                        let incarnation = this.incarnation;
                        self.schedule(
                            at,
                            SimEvent::Wake {
                                device,
                                incarnation,
                            },
                        );
                    }
                }
            }
        }
    }

    /// Puts a request on the network, deciding its fate.
    fn send(&mut self, device: usize, request: Request) {
        let incarnation = self.devices[device].incarnation;
        let deadline = self.now + TIMEOUT_MILLIS;
        if self.is_partitioned(device) || self.chance(self.options.drop_request_per_mille) {
            let failure = failure_event(&request, "request lost");
            self.schedule(
                deadline,
                SimEvent::Deliver {
                    device,
                    incarnation,
                    event: failure,
                },
            );
            return;
        }
        let latency = self.latency();
        let answer_lost = self.chance(self.options.drop_reply_per_mille);
        if latency > TIMEOUT_MILLIS {
            // The client gives up first; the request still arrives and applies later.
            let failure = failure_event(&request, "timed out");
            self.schedule(
                deadline,
                SimEvent::Deliver {
                    device,
                    incarnation,
                    event: failure,
                },
            );
        }
        if self.chance(self.options.duplicate_per_mille) {
            let again = self.latency();
            self.schedule(
                self.now + again,
                SimEvent::Arrives {
                    device,
                    incarnation,
                    request: request.clone(),
                    answer_lost: true,
                    deadline,
                    client_waits: false,
                },
            );
        }
        self.schedule(
            self.now + latency,
            SimEvent::Arrives {
                device,
                incarnation,
                request,
                answer_lost,
                deadline,
                client_waits: latency <= TIMEOUT_MILLIS,
            },
        );
    }

    fn arrive(
        &mut self,
        device: usize,
        incarnation: u32,
        request: Request,
        answer_lost: bool,
        deadline: i64,
        client_waits: bool,
    ) {
        let outcome = if self.chance(self.options.server_error_per_mille) {
            let (code, retry_after) = match self.rng.up_to(2) {
                0 => (Code::Unavailable, None),
                1 => (Code::Unavailable, Some(500 + self.rng.up_to(3_000))),
                _ => (Code::ResourceExhausted, Some(1_000)),
            };
            Err(PushFailure::Server {
                http_status: code.http_status(),
                code,
                message: "overloaded".into(),
                retry_after_millis: retry_after,
            })
        } else {
            self.serve(&request)
        };
        if let (Request::Commit { unit_id, request }, Ok(_)) = (&request, &outcome) {
            self.report.commits += 1;
            self.trace(|| format!("server applied commit {unit_id} from dev-{device}"));
            if self.options.listen {
                self.send_snapshots(request);
            }
        }
        if !client_waits {
            return;
        }
        let back = self.latency();
        let arrives = self.now + back;
        if answer_lost || arrives > deadline || self.is_partitioned(device) {
            // Connection reset, or the reply comes too late: the client sees a network error.
            let at = if answer_lost {
                arrives.min(deadline)
            } else {
                deadline
            };
            let event = failure_event(&request, "reply lost");
            self.schedule(
                at,
                SimEvent::Deliver {
                    device,
                    incarnation,
                    event,
                },
            );
        } else {
            let event = reply_event(request, outcome, self.rng.up_to(1) == 0);
            self.schedule(
                arrives,
                SimEvent::Deliver {
                    device,
                    incarnation,
                    event,
                },
            );
        }
    }

    /// The documents `request` wrote, as they are now, on their way to every tablet listening.
    fn send_snapshots(&mut self, request: &CommitRequest) {
        let documents: Vec<Document> = request
            .writes
            .iter()
            .filter_map(|write| match &write.operation {
                WriteOperation::Update(document) => Some(document.name.as_str()),
                _ => None,
            })
            .filter_map(|name| name.split_once("/documents/").map(|(_, path)| path))
            .filter(|path| !path.contains("/ops/"))
            .filter_map(|path| self.server.get(path))
            .collect();
        for device in 0..self.options.devices {
            if self.is_partitioned(device) || self.chance(self.options.drop_reply_per_mille) {
                continue;
            }
            let latency = self.latency();
            let incarnation = self.devices[device].incarnation;
            self.schedule(
                self.now + latency,
                SimEvent::Snapshot {
                    device,
                    incarnation,
                    documents: documents.clone(),
                },
            );
        }
    }

    fn serve(&mut self, request: &Request) -> Result<Reply, PushFailure> {
        match request {
            Request::Commit { request, .. } => {
                let lag_micros = if self.options.request_time_lag_max_millis == 0 {
                    0
                } else {
                    self.rng
                        .up_to(self.options.request_time_lag_max_millis * 1_000)
                        as i64
                };
                self.server
                    .commit_stamped_early(request, self.now, lag_micros)
                    .map(Reply::Committed)
            }
            Request::ReadMarker { path, .. } => Ok(Reply::Marker(self.server.get(path).is_some())),
            Request::ReadDocuments { paths, .. } => Ok(Reply::Documents(
                paths
                    .iter()
                    .map(|path| (path.clone(), self.server.get(path)))
                    .collect(),
            )),
            Request::Query { query, .. } => {
                let read_time = self.server.read_time(self.now);
                self.server
                    .run_query(&format!("shops/{SHOP}"), query)
                    .map(|documents| Reply::Page(documents, read_time))
            }
        }
    }

    fn check(&mut self) {
        let report = &mut self.report;
        // 1. Every tablet holds exactly the server's documents.
        let synced: BTreeMap<&String, &server::StoredDocument> = self
            .server
            .documents
            .iter()
            .filter(|(path, _)| !path.contains("/ops/"))
            .collect();
        for device in &self.devices {
            if !device.engine.is_idle() || !device.store.outbox.is_empty() {
                report.lost += device.store.outbox.len();
                report.problems.push(format!(
                    "dev-{}: {} units never finished: {:?}",
                    device.index,
                    device.store.outbox.len(),
                    device.store.outbox.keys().collect::<Vec<_>>()
                ));
            }
            for (path, stored) in &synced {
                match device.store.base_copies.get(*path) {
                    Some(copy)
                        if copy.fields == stored.fields
                            && copy.update_time == Some(stored.update_time) => {}
                    other => {
                        report.diverged = true;
                        report.problems.push(format!(
                            "dev-{} holds {path} as {:?}, the server as {:?}",
                            device.index,
                            other.map(|d| &d.fields),
                            stored.fields
                        ));
                    }
                }
            }
            for path in device.store.base_copies.keys() {
                if !synced.contains_key(path) {
                    report.diverged = true;
                    report.problems.push(format!(
                        "dev-{} holds {path}, unknown to the server",
                        device.index
                    ));
                }
            }
        }
        // 2. Units: applied once, or rejected by the rules, or poison.
        let mut applications: BTreeMap<&str, usize> = BTreeMap::new();
        for commit in &self.server.log {
            for unit_id in &commit.markers {
                *applications.entry(unit_id.as_str()).or_insert(0) += 1;
            }
        }
        let mut voids_applied: BTreeMap<&str, usize> = BTreeMap::new();
        for (unit_id, entry) in &self.ledger {
            let applied = applications.get(unit_id.as_str()).copied().unwrap_or(0);
            let device = &self.devices[entry.device];
            if applied > 1 {
                report.duplicated += 1;
                report.problems.push(format!(
                    "unit {unit_id} ({}) applied {applied} times",
                    entry.label
                ));
            }
            if applied == 1 {
                if entry.poison {
                    report
                        .problems
                        .push(format!("poison unit {unit_id} was applied"));
                }
                if let Some(bill) = &entry.voids {
                    *voids_applied.entry(bill).or_insert(0) += 1;
                }
                continue;
            }
            if entry.poison && device.store.discarded.contains(unit_id) {
                continue;
            }
            let rightly_rejected = device.store.rejected.contains(unit_id)
                && entry.voids.as_ref().is_some_and(|bill| {
                    self.server
                        .documents
                        .get(bill)
                        .and_then(|d| d.fields.get("status"))
                        == Some(&Value::String("void".into()))
                });
            if !rightly_rejected {
                report.lost += 1;
                report.problems.push(format!(
                    "unit {unit_id} ({}) of dev-{} was never applied (rejected: {})",
                    entry.label,
                    entry.device,
                    device.store.rejected.contains(unit_id)
                ));
            }
        }
        for (bill, count) in voids_applied {
            if count > 1 {
                report.duplicated += count - 1;
                report
                    .problems
                    .push(format!("bill {bill} voided {count} times"));
            }
        }
        // 3. Each commit applied exactly the movements of the units whose markers it created.
        for (index, commit) in self.server.log.iter().enumerate() {
            let mut expected: BTreeMap<(String, String), i64> = BTreeMap::new();
            for unit_id in &commit.markers {
                if let Some(entry) = self.ledger.get(unit_id) {
                    for (key, delta) in &entry.movements {
                        *expected.entry(key.clone()).or_insert(0) += delta;
                    }
                }
            }
            expected.retain(|_, delta| *delta != 0);
            let mut applied = commit.increments.clone();
            applied.retain(|_, delta| *delta != 0);
            if applied != expected {
                report.duplicated += 1;
                report.problems.push(format!(
                    "commit #{index} ({:?}) applied {applied:?}, its units moved {expected:?}",
                    commit.markers
                ));
            }
        }
        // 4. Every counter is its initial value plus the movements of the applied units.
        let mut counters: BTreeMap<(String, String), i64> = BTreeMap::new();
        for (unit_id, entry) in &self.ledger {
            if applications.get(unit_id.as_str()).copied().unwrap_or(0) == 0 {
                continue;
            }
            for (key, value) in entry.initial_counters.iter().chain(&entry.movements) {
                *counters.entry(key.clone()).or_insert(0) += value;
            }
        }
        for ((path, field), expected) in &counters {
            let actual = self
                .server
                .documents
                .get(path)
                .and_then(|d| d.fields.get(field))
                .and_then(Value::as_integer);
            if actual != Some(*expected) {
                report.diverged = true;
                report.problems.push(format!(
                    "{path}.{field} is {actual:?}, the users' movements say {expected}"
                ));
            }
        }
    }
}

fn failure_event(request: &Request, why: &str) -> Event {
    let failure = PushFailure::Network(why.into());
    match request {
        Request::Commit { unit_id, .. } => Event::CommitFailed {
            unit_id: unit_id.clone(),
            failure,
        },
        Request::ReadMarker { unit_id, .. } => Event::MarkerReadFailed {
            unit_id: unit_id.clone(),
            failure,
        },
        Request::ReadDocuments { unit_id, .. } => Event::DocumentsReadFailed {
            unit_id: unit_id.clone(),
            failure,
        },
        Request::Query {
            collection,
            query_id,
            ..
        } => Event::PullFailed {
            collection: collection.clone(),
            query_id: *query_id,
            failure,
        },
    }
}

fn reply_event(request: Request, outcome: Result<Reply, PushFailure>, with_times: bool) -> Event {
    match (request, outcome) {
        (Request::Commit { unit_id, .. }, Ok(Reply::Committed(response))) => {
            if with_times {
                Event::CommitApplied { unit_id, response }
            } else {
                Event::CommitSucceeded { unit_id }
            }
        }
        (Request::Commit { unit_id, .. }, Err(failure)) => Event::CommitFailed { unit_id, failure },
        (Request::ReadMarker { unit_id, .. }, Ok(Reply::Marker(exists))) => {
            Event::MarkerRead { unit_id, exists }
        }
        (Request::ReadMarker { unit_id, .. }, Err(failure)) => {
            Event::MarkerReadFailed { unit_id, failure }
        }
        (Request::ReadDocuments { unit_id, .. }, Ok(Reply::Documents(documents))) => {
            Event::DocumentsRead { unit_id, documents }
        }
        (Request::ReadDocuments { unit_id, .. }, Err(failure)) => {
            Event::DocumentsReadFailed { unit_id, failure }
        }
        (
            Request::Query {
                collection,
                query_id,
                ..
            },
            Ok(Reply::Page(documents, read_time)),
        ) => Event::PullPage {
            collection,
            query_id,
            documents,
            read_time: Some(read_time),
        },
        (
            Request::Query {
                collection,
                query_id,
                ..
            },
            Err(failure),
        ) => Event::PullFailed {
            collection,
            query_id,
            failure,
        },
        (request, outcome) => unreachable!("{request:?} cannot get {outcome:?}"),
    }
}

fn describe_event(event: &Event) -> String {
    match event {
        Event::CommitApplied { unit_id, .. } => format!("CommitApplied {unit_id}"),
        Event::PullPage {
            collection,
            documents,
            ..
        } => format!("PullPage {collection} ({} documents)", documents.len()),
        Event::DocumentsRead { unit_id, documents } => {
            format!("DocumentsRead {unit_id} ({} documents)", documents.len())
        }
        other => format!("{other:?}"),
    }
}
