//! The sync driver: the only code that awaits. It feeds the sans-IO [`Outbox`] and [`Listener`]
//! events, carries out their commands with [`Remote`], [`ListenChannel`] and [`Store`], and
//! publishes what the UI shows through signals.
//!
//! In the leader tab, while the page is visible and online, the listener keeps a WebChannel
//! Listen stream on the shop's `devices` collection and on the products on screen; snapshots go
//! through the same store path as pulls. The three-second pull runs only when listening is off
//! (battery saver, `?realtime=off`) or the stream is not healthy (not open, or its targets not
//! consistent yet); otherwise pulls happen only when the listener asks for them.
//!
//! In the service worker, on a Background Sync event, the same driver drains the outbox with
//! no page open ([`SyncDriver::drain_in_background`]): the same engine, commits, markers and
//! tokens, holding the leader lock the worker's script took for it, with no pulls, no listening
//! and no screen, until the outbox is empty or the network or the person's sign-in stops it.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use counterbook_firestore_wire::{Code, Document, TargetKind, Timestamp, Value};
use counterbook_shop::actions::{APPROVED_BY_FIELD, AUDIT_COLLECTION};
use counterbook_shop::{AuditEntry, Record, UnitOfWork};
use counterbook_sync::sorted_map::SortedMap;
use counterbook_sync::{
    target_key, BaseVersion, ChangeKind, Command, ConflictEntry, DeadLetterReason, DocumentChange,
    DocumentWrite, Event, FieldPath, ListenCommand, ListenConfig, ListenEvent, Listener, Operator,
    Outbox, OutboxConfig, PullQueryId, PullReason, PushFailure, QueryBuilder, QueryError,
    SyncProblem, TargetSlot, Unit, UnitLabel, UnitState, DEVICES_COLLECTION, UPDATED_AT,
};
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;

use crate::global_scope;
use crate::model::Product;
use crate::settings::Settings;
use crate::storage::{OutboxContents, PreparedDocuments, StorageError, Store};
use crate::sync::change_log::ChangeLog;
use crate::sync::listen_channel::{ChannelEvent, ChannelTarget, ListenChannel};
use crate::sync::remote::Remote;
use crate::sync::session::Sessions;
use crate::sync::tabs::{
    ask_for_background_sync, background_sync_is_running, leader_heartbeat_is_stale,
    request_leadership, write_leader_heartbeat, Leadership, TabChannel, TabMessage,
};

/// How often a visible, online page pulls when it is not listening in real time.
const PULL_INTERVAL_MILLIS: i32 = 3_000;
/// How long a hidden leader tab keeps its listen stream (a quick app switch keeps it).
const LISTEN_HIDDEN_GRACE_MILLIS: i64 = 2_000;
/// The collection the shop's pages show (the counter's and the products page's), listened to
/// while one of them is open.
const SCREEN_COLLECTION: &str = "products";
/// The collections a tablet keeps from other tablets' work, pulled when it starts leading and
/// on the periodic pull: the products, the customers, the shop profile, and the bills and their
/// refunds (so that a bill sold or refunded on another tablet shows here as it stands, and only
/// what is still possible is offered).
const KEPT_COLLECTIONS: [&str; 5] = [
    SCREEN_COLLECTION,
    counterbook_shop::customer::CUSTOMERS_COLLECTION,
    counterbook_shop::settings::SETTINGS_COLLECTION,
    counterbook_shop::records::BILLS_COLLECTION,
    counterbook_shop::refunds::REFUNDS_COLLECTION,
];
/// Documents per pulled page: an empty tablet's first sync is pages of this many, each one
/// `:runQuery` and one IndexedDB transaction (100 made 1,000 round trips of each for 100,000
/// products; a page of 500 products is about 350 KB of JSON).
const PULL_PAGE_SIZE: i32 = 500;
/// A slow wake-up in case a timer or an event was missed.
const SLOW_TICK_MILLIS: i32 = 15_000;
/// The longest a Background Sync drain goes on (server errors back off meanwhile); what is left
/// then waits for the browser's next try. Chromium gives a `sync` event five minutes.
const BACKGROUND_DRAIN_LIMIT_MILLIS: i64 = 60_000;

/// How a Background Sync drain in the service worker ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DrainOutcome {
    /// Every unit the outbox held is on the server (dead letters aside: they wait for a person).
    Drained,
    /// The outbox waits for someone to sign in again on the tablet.
    NeedsSignIn,
    /// The network or the server is not there: the browser should try again later.
    Unreachable,
    /// Units were still going after [`BACKGROUND_DRAIN_LIMIT_MILLIS`]: try again later.
    Unfinished,
}

impl DrainOutcome {
    /// Whether the browser should fire the `sync` event again later.
    pub fn wants_another_try(self) -> bool {
        matches!(self, DrainOutcome::Unreachable | DrainOutcome::Unfinished)
    }

    pub fn describe(self) -> &'static str {
        match self {
            DrainOutcome::Drained => "the outbox is on the server",
            DrainOutcome::NeedsSignIn => "the outbox waits for a sign-in on the tablet",
            DrainOutcome::Unreachable => "the server is not reachable",
            DrainOutcome::Unfinished => "units were still being sent",
        }
    }
}

/// A drain of the outbox in the service worker (see [`SyncDriver::drain_in_background`]).
struct BackgroundRun {
    /// The engine has loaded the outbox: from then on, an empty outbox means drained.
    loaded: Cell<bool>,
    /// A request found no network or no server.
    unreachable: Cell<bool>,
    /// Told once, when the drain ends.
    settled: RefCell<Option<futures::channel::oneshot::Sender<DrainOutcome>>>,
    deadline_timer: Cell<Option<i32>>,
}

/// A unit that stopped for good, as the UI lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    pub unit_id: String,
    pub label: UnitLabel,
    pub reason: DeadLetterReason,
}

/// The last problem the status panel and the sync page show, typed: the screens word it in
/// the tablet's language, the details in it (a server's reply, the browser's words) are data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LastProblem {
    /// The sync engine's: a send or a pull failed.
    Sync(SyncProblem),
    /// The tablet's database failed (a screen's read, or the engine's own writes).
    Storage(StorageError),
    /// Real-time updates could not be set up: why, in the app's words for support.
    Listen(String),
}

impl std::fmt::Display for LastProblem {
    fn fmt(&self, out: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LastProblem::Sync(problem) => problem.fmt(out),
            LastProblem::Storage(error) => error.fmt(out),
            LastProblem::Listen(detail) => write!(out, "cannot listen: {detail}"),
        }
    }
}

/// Everything the header badge and the status panel show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncStatus {
    /// `navigator.onLine`.
    pub browser_online: bool,
    /// Whether this tab runs the sync engine (one tab per browser profile does).
    pub leader: bool,
    /// Whether the last request got any reply from the server.
    pub server_reachable: bool,
    /// Units not yet on the server, dead letters excluded.
    pub pending: usize,
    /// Units in a commit on the wire.
    pub in_flight: usize,
    /// Entries in the conflict inbox.
    pub conflicts: usize,
    /// When a commit last succeeded, Unix ms.
    pub last_push_millis: Option<i64>,
    pub dead_letters: Vec<DeadLetter>,
    pub paused_for_sign_in: bool,
    /// Units not yet on the server (dead letters excluded), by the user id whose sign-in
    /// sends them (`None`: units naming nobody): "Sign in again to send N sales" counts a
    /// person's own.
    pub pending_by_sender: SortedMap<Option<String>, usize>,
    pub last_error: Option<LastProblem>,
    /// When the last pull finished, Unix ms.
    pub last_pull_millis: Option<i64>,
    /// The listen stream delivers changes as they happen (open, every target consistent).
    pub realtime: bool,
}

impl Default for SyncStatus {
    fn default() -> Self {
        SyncStatus {
            browser_online: true,
            leader: false,
            server_reachable: true,
            pending: 0,
            in_flight: 0,
            conflicts: 0,
            last_push_millis: None,
            dead_letters: Vec::new(),
            paused_for_sign_in: false,
            pending_by_sender: SortedMap::new(),
            last_error: None,
            last_pull_millis: None,
            realtime: false,
        }
    }
}

/// Why a listen target could not be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
enum TargetError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("the listen query is not valid: {0}")]
    Query(#[from] QueryError),
}

/// Why the app could not start.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Storage(#[from] StorageError),
}

struct Inner {
    /// `Some` in the service worker, draining the outbox on a Background Sync event.
    background: Option<BackgroundRun>,
    /// A Background Sync was asked for since the outbox last emptied (in a page).
    background_sync_asked: Cell<bool>,
    settings: Settings,
    device_id: String,
    store: Rc<Store>,
    /// Who is signed in; the token every request carries.
    sessions: Sessions,
    remote: Remote,
    /// The engine; only the leader tab feeds it. A follower's stays empty.
    outbox: RefCell<Outbox>,
    outbox_config: OutboxConfig,
    /// `Some` while this tab leads (runs push and pull).
    leadership: RefCell<Option<Leadership>>,
    /// A forced takeover from a stale leader is under way.
    stealing: Cell<bool>,
    channel: RefCell<Option<TabChannel>>,
    /// What a follower shows: the outbox as last read from the store.
    stored_outbox: RefCell<OutboxContents>,
    status: RwSignal<SyncStatus>,
    /// What changed, for the screens to re-read (this tab's writes and the other tabs').
    changes: ChangeLog,
    /// The collection the open page shows (`None`: a page showing none), the listener's
    /// screen target.
    screen_collection: RefCell<Option<String>>,
    server_reachable: Cell<bool>,
    last_pull_millis: Cell<Option<i64>>,
    last_push_millis: Cell<Option<i64>>,
    /// Units the server confirmed whose outbox records are still being deleted.
    finishing: RefCell<std::collections::BTreeSet<String>>,
    /// When battery saver last pulled on its timer.
    last_periodic_pull_millis: Cell<Option<i64>>,
    /// The conflict inbox, as the UI shows it.
    conflicts: RwSignal<Vec<ConflictEntry>>,
    wake_timer: Cell<Option<i32>>,
    /// The listen state machine; only the leader tab feeds it.
    listener: RefCell<Listener>,
    listen_config: ListenConfig,
    channel_to_server: ListenChannel,
    listen_timer: Cell<Option<i32>>,
    /// Pulls the listener asked for, by collection, not yet reported back to it; `true` once
    /// one of their steps failed.
    listener_pulls: RefCell<SortedMap<String, bool>>,
    /// The screen's collection has never been pulled on this tablet: its listen target waits
    /// until the first pull reaches the end (see [`SyncDriver::screen_target`]).
    screen_waits_for_pull: Cell<bool>,
    /// Collections whose pull ran to the end since this tab began leading.
    pulled_to_end: RefCell<std::collections::BTreeSet<String>>,
    /// Pulled pages prepared for the store as their replies came (while the page before was
    /// being stored), by the query they answered; taken when the engine has them stored.
    /// Each with its collection.
    prepared_pages: RefCell<SortedMap<PullQueryId, (String, PreparedDocuments)>>,
}

/// The most pages kept prepared at once: each pull has at most one being stored and one
/// waiting, and replies to a pull that stopped are dropped from the oldest.
const MOST_PREPARED_PAGES: usize = 2 * KEPT_COLLECTIONS.len();

/// A handle on the running sync engine; cheap to clone.
#[derive(Clone)]
pub struct SyncDriver {
    inner: Rc<Inner>,
}

/// A structured log line for the browser console: `{"event": ..., key: value, ...}`.
fn log_event(event: &str, details: &[(&str, &str)]) {
    let mut line = serde_json::Map::new();
    line.insert("event".into(), event.into());
    for (key, value) in details {
        line.insert((*key).into(), (*value).into());
    }
    web_sys::console::info_1(&serde_json::Value::Object(line).to_string().into());
}

/// Runs `callback` once at `at` (Unix ms), replacing the timer held in `slot`: an engine asks
/// for one wake-up at a time, and a later request supersedes an earlier one.
fn schedule_once(slot: &Cell<Option<i32>>, at: i64, callback: impl FnOnce() + 'static) {
    if let Some(previous) = slot.take() {
        global_scope::clear_timeout(previous);
    }
    let delay = (at - now_millis()).clamp(0, i64::from(i32::MAX)) as i32;
    let callback = Closure::once_into_js(callback);
    slot.set(global_scope::set_timeout(callback.unchecked_ref(), delay));
}

fn now_millis() -> i64 {
    js_sys::Date::now() as i64
}

/// Why a document could not be read from the server.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("the tablet is offline or the server cannot be reached")]
    Offline,
    #[error("the server refused: {0}")]
    Server(String),
}

fn browser_online() -> bool {
    global_scope::on_line()
}

fn page_visible() -> bool {
    web_sys::window()
        .and_then(|w| w.document())
        .map(|d| d.visibility_state() == web_sys::VisibilityState::Visible)
        .unwrap_or(true)
}

/// The refusal a unit meets whose sender must sign in again: what the backend answers to a
/// token that no longer works, so the engine holds their units as it would after one.
fn sign_in_ended(must_sign_in: &crate::sync::session::SenderMustSignIn) -> PushFailure {
    PushFailure::Server {
        http_status: 401,
        code: Code::Unauthenticated,
        message: must_sign_in.to_string(),
        retry_after_millis: None,
    }
}

/// The approver an audit document of this commit names (`approvedBy`), if any.
fn approver_named_in(request: &counterbook_firestore_wire::CommitRequest) -> Option<String> {
    request
        .writes
        .iter()
        .find_map(|write| match &write.operation {
            counterbook_firestore_wire::WriteOperation::Update(document)
                if document.name.contains(&format!("/{AUDIT_COLLECTION}/")) =>
            {
                match document.fields.get(APPROVED_BY_FIELD) {
                    Some(counterbook_firestore_wire::Value::String(approver)) => {
                        Some(approver.clone())
                    }
                    _ => None,
                }
            }
            _ => None,
        })
}

impl SyncDriver {
    /// Opens the store, shows what it holds, and asks to lead the tabs of this profile: the
    /// leader pushes and pulls, the others follow its changes (see [`crate::sync::tabs`]).
    pub async fn start(settings: Settings) -> Result<SyncDriver, StartError> {
        let driver = SyncDriver::assemble(settings, None).await?;
        spawn_local(async {
            crate::storage::request_persistent_storage().await;
        });
        // What the service worker needs to drain the outbox with no page open (it has no
        // `localStorage` and no URL to read the settings from).
        let saver = driver.clone();
        spawn_local(async move {
            let outcome = saver
                .inner
                .store
                .save_sync_settings(&saver.inner.settings)
                .await;
            saver.report_storage(outcome);
        });
        driver.listen_to_the_browser();
        driver.ask_to_lead(false);
        Ok(driver)
    }

    /// Drains the outbox in the service worker on a Background Sync event, with no page open:
    /// the engine loads the pending units and pushes them as the leader tab would (commits with
    /// their markers, the people's tokens from the store, refreshed when refused), with no pull,
    /// no listening and no screen. The caller holds the leader lock for it (and the lock that
    /// tells tabs a worker leads, [`crate::sync::tabs::background_sync_lock_name`]) until this
    /// returns.
    pub async fn drain_in_background(settings: Settings) -> Result<DrainOutcome, StartError> {
        let (settled, outcome) = futures::channel::oneshot::channel();
        let run = BackgroundRun {
            loaded: Cell::new(false),
            unreachable: Cell::new(false),
            settled: RefCell::new(Some(settled)),
            deadline_timer: Cell::new(None),
        };
        let driver = SyncDriver::assemble(settings, Some(run)).await?;
        *driver.inner.leadership.borrow_mut() = Some(Leadership::held_by_caller());
        driver.begin_leading().await;
        if !driver.is_leader() {
            // The outbox could not be read (the store said why on the console).
            return Ok(DrainOutcome::Unfinished);
        }
        if let Some(run) = &driver.inner.background {
            run.loaded.set(true);
            let this = driver.clone();
            schedule_once(
                &run.deadline_timer,
                now_millis() + BACKGROUND_DRAIN_LIMIT_MILLIS,
                move || this.settle_background(DrainOutcome::Unfinished),
            );
        }
        driver.settle_background_if_done();
        Ok(outcome.await.unwrap_or(DrainOutcome::Unfinished))
    }

    /// Ends a background drain with `outcome` if it has not ended yet, and lets go of the
    /// engine (requests still on the wire finish; their markers make a later resend harmless).
    fn settle_background(&self, outcome: DrainOutcome) {
        let Some(run) = &self.inner.background else {
            return;
        };
        let Some(settled) = run.settled.borrow_mut().take() else {
            return;
        };
        if let Some(timer) = run.deadline_timer.take() {
            global_scope::clear_timeout(timer);
        }
        log_event("background.drained", &[("outcome", outcome.describe())]);
        self.stop_leading();
        let _ = settled.send(outcome);
    }

    /// Ends a background drain once nothing is left to do: the outbox is empty, or it waits
    /// for a sign-in nobody can give here, or the network is gone.
    fn settle_background_if_done(&self) {
        let Some(run) = &self.inner.background else {
            return;
        };
        if !run.loaded.get() || run.settled.borrow().is_none() {
            return;
        }
        let outcome = {
            let engine = self.inner.outbox.borrow().status();
            let unsent = engine.pending + self.inner.finishing.borrow().len();
            if run.unreachable.get() {
                Some(DrainOutcome::Unreachable)
            } else if unsent > 0
                && engine.in_flight == 0
                && self.all_wait_for_a_sign_in(&engine, unsent)
            {
                Some(DrainOutcome::NeedsSignIn)
            } else if unsent == 0 && engine.in_flight == 0 {
                Some(DrainOutcome::Drained)
            } else {
                None
            }
        };
        if let Some(outcome) = outcome {
            self.settle_background(outcome);
        }
    }

    /// Whether all `unsent` units wait for senders whose sign-in has ended (a refresh under way
    /// for one of them may still let its units go: then not).
    fn all_wait_for_a_sign_in(
        &self,
        engine: &counterbook_sync::OutboxStatus,
        unsent: usize,
    ) -> bool {
        let waiting: usize = engine.waiting_for_sign_in.values().sum();
        let sessions = &self.inner.sessions;
        waiting == unsent
            && engine
                .waiting_for_sign_in
                .keys()
                .all(|sender| match sender {
                    Some(user_id) => sessions
                        .person(user_id)
                        .is_none_or(|person| person.needs_sign_in),
                    None => sessions.nobody_can_send(),
                })
    }

    fn in_background(&self) -> bool {
        self.inner.background.is_some()
    }

    /// The driver over the store, the people and the engines, not yet leading nor listening to
    /// the browser.
    async fn assemble(
        settings: Settings,
        background: Option<BackgroundRun>,
    ) -> Result<SyncDriver, StartError> {
        let store = Rc::new(Store::open(&settings.database_name).await?);
        let device_id = store.device_id().await?;
        let sessions = Sessions::load(Rc::clone(&store), settings.clone()).await?;
        let stored_outbox = store.outbox().await?;
        let conflicts = store.conflicts().await?;

        let mut config = OutboxConfig::new(
            &settings.project,
            &settings.shop_id,
            &device_id,
            crate::ids::random_seed(),
        );
        config.record_device_changes = true;
        config.pull_page_size = PULL_PAGE_SIZE;
        let mut listen_config =
            ListenConfig::new(&settings.project, &device_id, crate::ids::random_seed());
        listen_config.hidden_grace_millis = LISTEN_HIDDEN_GRACE_MILLIS;
        // Filled in below, once the driver exists to receive its events.
        let events_for: Rc<RefCell<Option<SyncDriver>>> = Rc::new(RefCell::new(None));
        let events_to = Rc::clone(&events_for);
        let channel_to_server = ListenChannel::new(
            ChannelTarget {
                endpoint: settings.endpoint.clone(),
                database: listen_config.database.clone(),
                bearer: sessions.bearer(),
            },
            move |event| {
                let driver = events_to.borrow().clone();
                if let Some(driver) = driver {
                    driver.on_channel_event(event);
                }
            },
        );
        let driver = SyncDriver {
            inner: Rc::new(Inner {
                background,
                background_sync_asked: Cell::new(false),
                listener: RefCell::new(Listener::new(listen_config.clone())),
                listen_config,
                channel_to_server,
                listen_timer: Cell::new(None),
                listener_pulls: RefCell::new(SortedMap::new()),
                remote: Remote::new(&settings.endpoint, &settings.project, sessions.bearer()),
                settings,
                device_id,
                store,
                sessions,
                outbox: RefCell::new(Outbox::new(config.clone())),
                outbox_config: config,
                leadership: RefCell::new(None),
                stealing: Cell::new(false),
                channel: RefCell::new(None),
                stored_outbox: RefCell::new(stored_outbox),
                status: RwSignal::new(SyncStatus::default()),
                changes: ChangeLog::new(),
                screen_collection: RefCell::new(Some(SCREEN_COLLECTION.to_owned())),
                server_reachable: Cell::new(true),
                last_pull_millis: Cell::new(None),
                last_push_millis: Cell::new(None),
                finishing: RefCell::new(std::collections::BTreeSet::new()),
                // Leading starts with a pull; the timer's first one comes a period later.
                last_periodic_pull_millis: Cell::new(Some(now_millis())),
                conflicts: RwSignal::new(conflicts),
                wake_timer: Cell::new(None),
                screen_waits_for_pull: Cell::new(false),
                pulled_to_end: RefCell::new(std::collections::BTreeSet::new()),
                prepared_pages: RefCell::new(SortedMap::new()),
            }),
        };
        // The channel's callback holds the driver weakly in spirit: both live as long as the page.
        *events_for.borrow_mut() = Some(driver.clone());
        let listener = driver.clone();
        let channel = TabChannel::open(&driver.inner.settings.database_name, move |message| {
            listener.on_tab_message(message)
        });
        *driver.inner.channel.borrow_mut() = channel;
        // Every committed change reaches this tab's screens and the other tabs' (which share
        // the database and re-read the same records).
        let announcer = driver.clone();
        driver.inner.store.on_change(move |changed| {
            announcer.inner.changes.publish(changed);
            announcer.tell_other_tabs(TabMessage::DataChanged {
                changed: Some(changed.clone()),
            });
        });
        // A refreshed token or a new sign-in lets the paused outbox and listener go on.
        let resumer = driver.clone();
        driver
            .inner
            .sessions
            .on_resume(move |user_id| resumer.signed_in(user_id));
        driver.publish_status();
        Ok(driver)
    }

    /// Who is signed in on this tablet, and the token requests carry.
    pub fn sessions(&self) -> &Sessions {
        &self.inner.sessions
    }

    /// The email of who is at the counter, for audit entries and receipts.
    pub fn person_at_counter(&self) -> Option<String> {
        self.inner
            .sessions
            .active_person()
            .map(|person| person.display_name().to_owned())
    }

    /// "Sign out and clear this tablet": every record, unit, person and device setting is
    /// removed (the caller starts the app again).
    pub async fn clear_tablet(&self) -> Result<(), StorageError> {
        self.stop_leading();
        self.inner.store.clear_everything().await?;
        crate::settings::forget_device_settings();
        self.tell_other_tabs(TabMessage::PeopleChanged);
        Ok(())
    }

    /// `user_id`'s requests carry a good token again: their units, the units naming nobody
    /// (the tablet's token may be theirs now) and the listener go on where they paused.
    fn signed_in(&self, user_id: String) {
        self.dispatch(Event::SignedIn {
            sender: Some(user_id),
        });
        self.dispatch(Event::SignedIn { sender: None });
        self.listen(ListenEvent::SignedIn);
        self.tell_other_tabs(TabMessage::PeopleChanged);
        self.pull_soon();
    }

    /// Whether this tab runs the sync engine.
    pub fn is_leader(&self) -> bool {
        self.inner.leadership.borrow().is_some()
    }

    /// Queues for leadership, or with `steal` takes it from a leader that stopped its heartbeat.
    fn ask_to_lead(&self, steal: bool) {
        let granted = self.clone();
        let stolen = self.clone();
        request_leadership(
            &self.inner.settings.database_name,
            steal,
            move |leadership| {
                if granted.is_leader() {
                    // Already leading through another request of this tab.
                    return;
                }
                *granted.inner.leadership.borrow_mut() = Some(leadership);
                write_leader_heartbeat(&granted.inner.settings.database_name);
                spawn_local(async move { granted.begin_leading().await });
            },
            move || {
                // Another tab took over while this one was frozen: follow, and queue again.
                if let Some(leadership) = stolen.inner.leadership.borrow_mut().take() {
                    leadership.forget();
                }
                stolen.stop_leading();
                stolen.ask_to_lead(false);
            },
        );
    }

    /// Called on every slow timer tick: the leader says it is alive; a follower takes over from
    /// a leader whose heartbeat stopped.
    fn check_leadership(&self) {
        let database = &self.inner.settings.database_name;
        if self.is_leader() {
            write_leader_heartbeat(database);
        } else if leader_heartbeat_is_stale(database) && !self.inner.stealing.replace(true) {
            let this = self.clone();
            spawn_local(async move {
                let database = &this.inner.settings.database_name;
                if background_sync_is_running(database).await {
                    // The leader without a heartbeat is the service worker draining the outbox
                    // (Background Sync), not a frozen tab: this tab's queued request gets the
                    // lock when it is done.
                    log_event("leader.background_sync_leads", &[]);
                    this.inner.stealing.set(false);
                } else {
                    this.ask_to_lead(true);
                }
            });
        }
    }

    /// Becoming the leader: a fresh engine loaded from the store, then push and pull.
    async fn begin_leading(&self) {
        self.inner.stealing.set(false);
        let contents = match self.inner.store.outbox().await {
            Ok(contents) => contents,
            Err(error) => {
                // Without its outbox this tab cannot push; let another tab lead.
                self.report_storage(Err(error));
                self.stop_leading();
                return;
            }
        };
        *self.inner.outbox.borrow_mut() = Outbox::new(self.inner.outbox_config.clone());
        self.inner.pulled_to_end.borrow_mut().clear();
        self.dispatch(Event::Online(browser_online()));
        self.dispatch(Event::Loaded {
            pending: contents.pending,
            dead_letters: contents.dead_letters,
        });
        if self.in_background() {
            return;
        }
        self.pull_soon();
        self.begin_listening().await;
    }

    /// The listen target of a whole collection of the shop.
    fn collection_target(&self, collection: &str) -> Result<TargetKind, QueryError> {
        let parent = format!(
            "{}/documents/shops/{}",
            self.inner.listen_config.database, self.inner.settings.shop_id
        );
        Ok(TargetKind::Query(
            QueryBuilder::new(parent, collection).build()?,
        ))
    }

    /// The screen's listen target for `collection`: its documents stamped after what the
    /// pulls have settled (`updatedAt` > the checkpoint's settled time), so the first snapshot
    /// holds what changed since the last pull, not the whole collection (100,000 products on a
    /// tablet that pulled them already). Everything up to that time is on the tablet; every
    /// later change, a soft delete included, stamps `updatedAt` and so enters the target.
    ///
    /// `None` while the collection was never pulled: an empty tablet's first sync is the pull
    /// (pages committed one by one, resumable), and the target follows once it reaches the end
    /// ([`SyncDriver::watch_screen_after_pull`]). A collection still without a checkpoint after
    /// a pull to the end is empty on the server, so the whole collection is the target.
    async fn screen_target(&self, collection: &str) -> Result<Option<TargetKind>, TargetError> {
        let Some(checkpoint) = self.inner.store.checkpoint(collection).await? else {
            let pulled = self.inner.pulled_to_end.borrow().contains(collection);
            return Ok(pulled
                .then(|| self.collection_target(collection))
                .transpose()?);
        };
        let overlap_micros = self
            .inner
            .outbox_config
            .pull_overlap_millis
            .saturating_mul(1_000);
        let parent = format!(
            "{}/documents/shops/{}",
            self.inner.listen_config.database, self.inner.settings.shop_id
        );
        Ok(Some(TargetKind::Query(
            QueryBuilder::new(parent, collection)
                .where_field(
                    FieldPath::from_segments([UPDATED_AT]),
                    Operator::GreaterThan,
                    Value::Timestamp(checkpoint.settled(overlap_micros)),
                )
                .build()?,
        )))
    }

    /// Watches the screen's collection (see [`SyncDriver::screen_target`]), or waits for its
    /// first pull, which this starts.
    async fn watch_screen(&self, collection: String) {
        let target = match self.screen_target(&collection).await {
            Ok(target) => target,
            Err(TargetError::Storage(error)) => return self.report_storage_error(error),
            Err(error) => return self.report_problem(LastProblem::Listen(error.to_string())),
        };
        // The page may have changed meanwhile.
        if self.inner.screen_collection.borrow().as_deref() != Some(collection.as_str()) {
            return;
        }
        let Some(target) = target else {
            self.inner.screen_waits_for_pull.set(true);
            // The start's pull of this collection may be under way already: the target follows
            // when it ends (`watch_screen_after_pull`), and a second pull would fetch it again.
            if !self.inner.outbox.borrow().is_pulling(&collection) {
                self.pull_collection(collection);
            }
            return;
        };
        self.inner.screen_waits_for_pull.set(false);
        // The tokens of the queries watched before this one are of no more use.
        let mut kept = vec![target_key(&target)];
        kept.extend(
            self.collection_target(DEVICES_COLLECTION)
                .ok()
                .map(|devices| target_key(&devices)),
        );
        if let Err(error) = self.inner.store.forget_resume_tokens_except(&kept).await {
            self.report_storage(Err(error));
        }
        let resume_token = match self.inner.store.resume_token(&target_key(&target)).await {
            Ok(token) => token,
            Err(error) => {
                self.report_storage(Err(error));
                None
            }
        };
        self.listen(ListenEvent::Watch {
            slot: TargetSlot::Screen,
            target,
            resume_token,
        });
    }

    /// A step of `collection`'s pull finished: once a pull the screen's target waits for
    /// reached the end, watch it.
    fn watch_screen_after_pull(&self, collection: &str, failed: bool) {
        if failed || self.inner.outbox.borrow().is_pulling(collection) {
            return;
        }
        self.inner
            .pulled_to_end
            .borrow_mut()
            .insert(collection.to_owned());
        let waits = self.inner.screen_waits_for_pull.get()
            && self.inner.screen_collection.borrow().as_deref() == Some(collection);
        if waits && self.is_leader() {
            self.inner.screen_waits_for_pull.set(false);
            let this = self.clone();
            let collection = collection.to_owned();
            spawn_local(async move { this.watch_screen(collection).await });
        }
    }

    /// The open page shows `collection` (`None`: no collection): the listener's screen target
    /// follows it. Other collections still arrive by the pulls the `devices` target triggers.
    pub fn show_collection(&self, collection: Option<&str>) {
        let collection = collection.map(str::to_owned);
        if *self.inner.screen_collection.borrow() == collection {
            return;
        }
        *self.inner.screen_collection.borrow_mut() = collection.clone();
        self.inner.screen_waits_for_pull.set(false);
        if !self.is_leader() {
            return;
        }
        let Some(collection) = collection else {
            return self.listen(ListenEvent::Unwatch {
                slot: TargetSlot::Screen,
            });
        };
        let this = self.clone();
        spawn_local(async move { this.watch_screen(collection).await });
    }

    /// A fresh listener, told the page's state and its targets with their saved resume tokens.
    async fn begin_listening(&self) {
        if !self.is_leader() {
            return;
        }
        *self.inner.listener.borrow_mut() = Listener::new(self.inner.listen_config.clone());
        self.inner.listener_pulls.borrow_mut().clear();
        self.listen(ListenEvent::Enabled(self.inner.settings.listens()));
        self.listen(ListenEvent::Online(browser_online()));
        self.listen(ListenEvent::Visible(page_visible()));
        let devices = match self.collection_target(DEVICES_COLLECTION) {
            Ok(devices) => devices,
            Err(error) => {
                return self.report_problem(LastProblem::Listen(format!(
                    "cannot listen to the shop's devices: {error}"
                )))
            }
        };
        let resume_token = match self.inner.store.resume_token(&target_key(&devices)).await {
            Ok(token) => token,
            Err(error) => {
                self.report_storage(Err(error));
                None
            }
        };
        self.listen(ListenEvent::Watch {
            slot: TargetSlot::Devices,
            target: devices,
            resume_token,
        });
        let screen = self.inner.screen_collection.borrow().clone();
        if let Some(collection) = screen {
            self.watch_screen(collection).await;
        }
    }

    /// Whether the listen stream delivers: open, with every target consistent. While it does,
    /// the periodic pull is not needed.
    fn listening_healthy(&self) -> bool {
        if self.inner.screen_waits_for_pull.get() {
            // The screen's collection arrives by pulls until its target is watched.
            return false;
        }
        let status = self.inner.listener.borrow().status();
        status.listening && status.targets > 0 && status.current_targets == status.targets
    }

    /// Feeds one event to the listener and carries out what it asks for (leader only).
    fn listen(&self, event: ListenEvent) {
        if !self.is_leader() || self.in_background() {
            return;
        }
        let commands = self.inner.listener.borrow_mut().handle(now_millis(), event);
        for command in commands {
            self.execute_listen(command);
        }
        self.publish_status();
    }

    fn on_channel_event(&self, event: ChannelEvent) {
        match event {
            ChannelEvent::Opened => log_event("listen.opened", &[]),
            ChannelEvent::Response(response) => self.listen(ListenEvent::Response(*response)),
            ChannelEvent::Closed { error } => {
                let reason = error
                    .as_ref()
                    .map(|status| format!("{:?} {}", status.status, status.message))
                    .unwrap_or_default();
                log_event("listen.closed", &[("error", &reason)]);
                if error.as_ref().map(|status| status.status) == Some(Code::Unauthenticated) {
                    self.inner.sessions.token_refused(None);
                }
                self.listen(ListenEvent::StreamClosed { error });
                // Until the stream is back, the periodic pull keeps the screen fresh.
                self.pull_soon();
            }
        }
    }

    fn execute_listen(&self, command: ListenCommand) {
        match command {
            ListenCommand::OpenStream => {
                self.inner.channel_to_server.open();
                // The channel queues requests until its opening POST leaves, and the first ones
                // travel in it, as the Firebase SDK sends them; a failed open comes back as
                // `Closed`.
                self.listen(ListenEvent::StreamOpened);
            }
            ListenCommand::SendRequest(request) => self.inner.channel_to_server.send(*request),
            ListenCommand::CloseStream => self.inner.channel_to_server.close(),
            ListenCommand::Snapshot { slot, changes, .. } => {
                if slot == TargetSlot::Screen {
                    let this = self.clone();
                    spawn_local(async move { this.apply_snapshot(changes).await });
                }
            }
            ListenCommand::PullCollection { collection, reason } => {
                if collection == AUDIT_COLLECTION {
                    // Every unit writes its audit entry for the owner to read; no tablet reads
                    // another's back, so there is nothing to pull: answer at once.
                    let up_to = match reason {
                        PullReason::DeviceChanged { at, .. } => at,
                        PullReason::CatchUp => Timestamp::from_unix_millis(now_millis()),
                    };
                    return self.listen(ListenEvent::CollectionPulled { collection, up_to });
                }
                log_event(
                    "listen.pull",
                    &[
                        ("collection", &collection),
                        ("reason", &format!("{reason:?}")),
                    ],
                );
                self.inner
                    .listener_pulls
                    .borrow_mut()
                    .insert(collection.clone(), false);
                self.pull_collection(collection);
            }
            ListenCommand::SaveResumeToken { target_key, token } => {
                let this = self.clone();
                spawn_local(async move {
                    let outcome = this
                        .inner
                        .store
                        .save_resume_token(&target_key, token.as_deref())
                        .await;
                    this.report_storage(outcome);
                });
            }
            ListenCommand::TargetFailed { slot, status } => log_event(
                "listen.target_failed",
                &[
                    ("slot", &format!("{slot:?}")),
                    ("status", &format!("{:?} {}", status.code(), status.message)),
                ],
            ),
            ListenCommand::ProtocolError { message } => {
                log_event("listen.protocol_error", &[("message", &message)])
            }
            ListenCommand::WakeAt(at) => self.listen_wake_at(at),
        }
    }

    /// A snapshot of the products on screen: applied like a pulled page (base copies, pending
    /// units laid over, business rules), then shown here and in the other tabs.
    async fn apply_snapshot(&self, changes: Vec<DocumentChange>) {
        let rules = self.inner.outbox_config.business_rules.clone();
        let mut documents = Vec::new();
        let mut removed = Vec::new();
        for change in changes {
            match change.kind {
                ChangeKind::Removed => {
                    if let Ok(name) =
                        counterbook_firestore_wire::DocumentName::parse(&change.document.name)
                    {
                        removed.push(name.relative_path());
                    }
                }
                ChangeKind::Added | ChangeKind::Modified => documents.push(change.document),
            }
        }
        let conflicts: Vec<ConflictEntry> = documents.iter().flat_map(|d| rules.check(d)).collect();
        let outcome = self
            .inner
            .store
            .apply_listened_documents(&documents, &removed, &conflicts)
            .await;
        if outcome.is_ok() && !conflicts.is_empty() {
            self.refresh_conflicts().await;
            self.tell_other_tabs(TabMessage::ConflictsChanged);
        }
        self.report_storage(outcome);
    }

    /// Reports pulls the listener asked for once the engine has finished them.
    fn report_finished_pulls(&self, collection: &str, failed: bool) {
        let finished = {
            let mut asked = self.inner.listener_pulls.borrow_mut();
            let Some(already_failed) = asked.get_mut(collection) else {
                return;
            };
            *already_failed |= failed;
            if self.inner.outbox.borrow().is_pulling(collection) {
                return;
            }
            asked.remove(collection)
        };
        let Some(failed) = finished else {
            return;
        };
        let collection = collection.to_owned();
        if failed {
            return self.listen(ListenEvent::PullFailed { collection });
        }
        let this = self.clone();
        spawn_local(async move {
            match this.inner.store.checkpoint(&collection).await {
                Ok(Some(checkpoint)) => this.listen(ListenEvent::CollectionPulled {
                    collection,
                    up_to: checkpoint.updated_at,
                }),
                Ok(None) => {}
                Err(error) => this.report_storage(Err(error)),
            }
        });
    }

    fn listen_wake_at(&self, at: i64) {
        let this = self.clone();
        schedule_once(&self.inner.listen_timer, at, move || {
            this.inner.listen_timer.set(None);
            this.listen(ListenEvent::Tick);
        });
    }

    /// Lets the next tab lead (this one is being frozen). Requests already on the wire finish;
    /// a resend by the next leader is harmless thanks to the unit's marker.
    fn stop_leading(&self) {
        if let Some(leadership) = self.inner.leadership.borrow_mut().take() {
            leadership.release();
        }
        self.inner.stealing.set(false);
        *self.inner.outbox.borrow_mut() = Outbox::new(self.inner.outbox_config.clone());
        self.inner.pulled_to_end.borrow_mut().clear();
        *self.inner.listener.borrow_mut() = Listener::new(self.inner.listen_config.clone());
        self.inner.channel_to_server.close();
        for timer in [&self.inner.wake_timer, &self.inner.listen_timer] {
            if let Some(timer) = timer.take() {
                global_scope::clear_timeout(timer);
            }
        }
        self.refresh_stored_outbox();
        // Messages from the new leader may have been missed while this tab was stopped.
        self.inner.changes.publish_everything();
    }

    fn on_tab_message(&self, message: TabMessage) {
        let this = self.clone();
        match message {
            // The records are in the shared database already; the screens re-read them.
            TabMessage::DataChanged { changed } => match changed {
                Some(changed) => self.inner.changes.publish(&changed),
                None => self.inner.changes.publish_everything(),
            },
            TabMessage::ConflictsChanged => spawn_local(async move {
                this.refresh_conflicts().await;
            }),
            TabMessage::PeopleChanged => spawn_local(async move {
                this.inner.sessions.reload().await;
                // Another tab signed someone in (or refreshed them): whoever holds a sign-in
                // now may send again.
                let people = this.inner.sessions.people().get_untracked();
                for person in people.into_iter().filter(|person| !person.needs_sign_in) {
                    this.dispatch(Event::SignedIn {
                        sender: Some(person.user_id),
                    });
                }
                this.dispatch(Event::SignedIn { sender: None });
                this.listen(ListenEvent::SignedIn);
            }),
            TabMessage::OutboxChanged => {
                if self.is_leader() {
                    spawn_local(async move { this.adopt_outbox_changes().await });
                } else {
                    self.refresh_stored_outbox();
                }
            }
        }
    }

    /// The leader brings its engine in line with outbox changes another tab made in the store:
    /// new units, and dead letters retried or discarded there.
    async fn adopt_outbox_changes(&self) {
        let contents = match self.inner.store.outbox().await {
            Ok(contents) => contents,
            Err(error) => return self.report_storage(Err(error)),
        };
        for unit in contents.pending {
            let known_as_dead = matches!(
                self.inner.outbox.borrow().state_of(&unit.id),
                Some(UnitState::DeadLetter { .. })
            );
            if known_as_dead {
                self.dispatch(Event::RetryDeadLetter { unit_id: unit.id });
            } else {
                self.dispatch(Event::LocalWrite(unit));
            }
        }
        let stored_dead: Vec<String> = contents
            .dead_letters
            .iter()
            .map(|(unit, _)| unit.id.clone())
            .collect();
        let engine_dead: Vec<String> = self
            .inner
            .outbox
            .borrow()
            .dead_letters()
            .into_iter()
            .map(|(unit, _)| unit.id.clone())
            .collect();
        for unit_id in engine_dead {
            if !stored_dead.contains(&unit_id) {
                self.dispatch(Event::DiscardDeadLetter { unit_id });
            }
        }
    }

    fn refresh_stored_outbox(&self) {
        let this = self.clone();
        spawn_local(async move {
            match this.inner.store.outbox().await {
                Ok(contents) => *this.inner.stored_outbox.borrow_mut() = contents,
                Err(error) => this.report_storage(Err(error)),
            }
            this.publish_status();
        });
    }

    fn tell_other_tabs(&self, message: TabMessage) {
        if let Some(channel) = self.inner.channel.borrow().as_ref() {
            channel.post(&message);
        }
    }

    pub fn status(&self) -> RwSignal<SyncStatus> {
        self.inner.status
    }

    /// What changed, for screens to re-read only those records.
    pub fn changes(&self) -> ChangeLog {
        self.inner.changes
    }

    pub fn conflicts(&self) -> RwSignal<Vec<ConflictEntry>> {
        self.inner.conflicts
    }

    /// Reads documents from the server and shows them (their base copies move on too).
    async fn refresh_documents(&self, paths: Vec<String>) {
        // One request for the whole unit (an import's unit names hundreds of documents).
        let documents = match self.inner.remote.batch_get(&paths).await {
            Ok(documents) => documents,
            // The next pull brings them instead.
            Err(_) => return self.pull_soon(),
        };
        let outcome = self.inner.store.apply_server_documents(&documents).await;
        self.report_storage(outcome);
    }

    async fn refresh_conflicts(&self) {
        match self.inner.store.conflicts().await {
            Ok(conflicts) => self.inner.conflicts.set(conflicts),
            Err(error) => self.report_storage(Err(error)),
        }
        self.publish_status();
    }

    /// The user read a conflict inbox entry and keeps the server's result.
    pub async fn dismiss_conflict(&self, id: &str) {
        let outcome = self.inner.store.remove_conflict(id).await;
        self.report_storage(outcome);
        self.refresh_conflicts().await;
        self.tell_other_tabs(TabMessage::ConflictsChanged);
    }

    /// "Use mine": re-applies the value that lost, as a new edit on top of the server's
    /// version, and clears the entry.
    pub async fn reapply_conflict(&self, entry: &ConflictEntry) {
        let base = match self.base_of(&entry.path).await {
            Ok(base) => base,
            Err(error) => return self.report_storage(Err(error)),
        };
        let Some(write) = entry.reapply(base) else {
            return self.dismiss_conflict(&entry.id).await;
        };
        let records = match self.locally_applied(&write).await {
            Ok(records) => records,
            Err(error) => return self.report_storage(Err(error)),
        };
        let unit = Unit {
            id: crate::ids::new_id(),
            label: UnitLabel::ReapplyChange {
                field: entry.field.clone(),
            },
            writes: vec![write],
            created_at_millis: now_millis(),
            sender: self
                .inner
                .sessions
                .active_person()
                .map(|person| person.user_id),
        };
        let outcome = self.submit_unit(&records, &[], unit).await;
        self.report_storage(outcome);
        self.dismiss_conflict(&entry.id).await;
    }

    /// The local records a re-applied write changes (products only, for now).
    async fn locally_applied(&self, write: &DocumentWrite) -> Result<Vec<Record>, StorageError> {
        let Some(base) = self.inner.store.base_copy(&write.path).await? else {
            return Ok(Vec::new());
        };
        let mut document = base.to_document();
        for (field, value) in &write.fields {
            document.fields.insert(field.clone(), value.clone());
        }
        Ok(Product::from_document(&document)
            .map(|product| vec![Record::Product(product)])
            .unwrap_or_default())
    }

    /// Reads one document from the server now (`Ok(None)`: it has none), for a screen that
    /// needs a document this tablet does not keep, such as another tablet's bill.
    /// `FetchError::Offline` without asking when the browser is offline.
    pub async fn fetch_document(&self, path: &str) -> Result<Option<Document>, FetchError> {
        if !browser_online() {
            return Err(FetchError::Offline);
        }
        self.inner
            .remote
            .get_document(path)
            .await
            .map_err(|failure| match failure {
                PushFailure::Network(_) => FetchError::Offline,
                other => FetchError::Server(other.describe()),
            })
    }

    /// The server's last known version of a document (the base of an edit), if pulled before.
    pub async fn base_of(&self, path: &str) -> Result<Option<BaseVersion>, StorageError> {
        Ok(self
            .inner
            .store
            .base_copy(path)
            .await?
            .map(|base| base.to_base_version()))
    }

    /// Saves one unit of work (records, audit, outbox) in one transaction and starts pushing
    /// it. Every shop action ends here ([`crate::actions`]).
    pub async fn submit_unit(
        &self,
        records: &[Record],
        audit: &[AuditEntry],
        unit: Unit,
    ) -> Result<(), StorageError> {
        self.inner.store.commit_unit(records, audit, &unit).await?;
        self.push_soon(unit);
        Ok(())
    }

    /// Saves one of `counterbook-shop`'s units of work (its records, audit entries and unit)
    /// in one transaction and starts pushing it.
    pub async fn submit_work(&self, work: UnitOfWork) -> Result<(), StorageError> {
        self.inner.store.commit_work(&work).await?;
        self.push_soon(work.unit);
        Ok(())
    }

    /// A unit just saved: the leader's engine takes it; a follower tells the leader.
    fn push_soon(&self, unit: Unit) {
        self.tell_other_tabs(TabMessage::OutboxChanged);
        self.ask_for_background_sync_if_cut_off();
        if self.is_leader() {
            self.dispatch(Event::LocalWrite(unit));
        } else {
            self.refresh_stored_outbox();
        }
    }

    /// A unit another part of the app has just written to the store, with its records, in
    /// one transaction (the counter's sale): tell the other tabs and start pushing it. The
    /// product list is not re-read here: a sale's screen shows what it wrote already.
    pub fn unit_saved(&self, unit: Unit) {
        self.tell_other_tabs(TabMessage::OutboxChanged);
        self.ask_for_background_sync_if_cut_off();
        if self.is_leader() {
            self.dispatch(Event::LocalWrite(unit));
        } else {
            self.refresh_stored_outbox();
        }
    }

    /// A unit waits while the browser is offline or the server is unreachable: ask for a
    /// Background Sync, so that the service worker sends it once the network is back, even if
    /// the app is closed by then (where the browser has Background Sync).
    fn ask_for_background_sync_if_cut_off(&self) {
        let cut_off = !browser_online() || !self.inner.server_reachable.get();
        if cut_off && !self.in_background() && !self.inner.background_sync_asked.replace(true) {
            ask_for_background_sync(&self.inner.settings.database_name);
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub fn device_id(&self) -> &str {
        &self.inner.device_id
    }

    /// The local store, for screens' reads (queries by index; writes go through units).
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn retry_dead_letter(&self, unit_id: String) {
        if self.is_leader() {
            self.dispatch(Event::RetryDeadLetter { unit_id });
            return;
        }
        // A follower changes the store; the leader notices through the channel.
        let this = self.clone();
        spawn_local(async move {
            let outcome = this.inner.store.set_dead_letter(&unit_id, None).await;
            this.report_storage(outcome.map(|_| ()));
            this.tell_other_tabs(TabMessage::OutboxChanged);
            this.refresh_stored_outbox();
        });
    }

    pub fn discard_dead_letter(&self, unit_id: String) {
        if self.is_leader() {
            // The store first: once the screen stops listing it, it is gone for good, even if
            // the page reloads at once. The engine's own `Discard` then deletes nothing.
            let this = self.clone();
            spawn_local(async move {
                let outcome = this.inner.store.discard_unit(&unit_id).await;
                this.report_storage(outcome);
                this.dispatch(Event::DiscardDeadLetter { unit_id });
            });
            return;
        }
        let this = self.clone();
        spawn_local(async move {
            let outcome = this.inner.store.discard_unit(&unit_id).await;
            this.report_storage(outcome);
            this.tell_other_tabs(TabMessage::OutboxChanged);
            this.refresh_stored_outbox();
        });
    }

    /// Feeds one event to the engine and carries out what it asks for. Only the leader runs
    /// the engine; in a follower this does nothing.
    fn dispatch(&self, event: Event) {
        if !self.is_leader() {
            return;
        }
        let commands = self.inner.outbox.borrow_mut().handle(now_millis(), event);
        for command in commands {
            self.execute(command);
        }
        // After the commands: a unit the engine just finished is still counted as pending
        // (`finishing`) until its outbox record is deleted, and `execute` is what records that.
        self.publish_status();
    }

    fn execute(&self, command: Command) {
        let this = self.clone();
        match command {
            Command::SendCommit { unit_id, request } => spawn_local(async move {
                // A unit goes with its sender's own sign-in (who made it, or the manager who
                // approved it), never with anyone else's.
                let sender = this.sender_of(&unit_id, Some(&request));
                let as_token = match this.token_of(sender.as_deref()).await {
                    Ok(token) => token,
                    Err(failure) => {
                        this.dispatch(Event::CommitFailed { unit_id, failure });
                        return;
                    }
                };
                let event = match this.inner.remote.commit(&request, as_token).await {
                    Ok(response) => {
                        this.note_reply(None, sender.as_deref());
                        this.inner.last_push_millis.set(Some(now_millis()));
                        log_event("commit.applied", &[("unit", &unit_id)]);
                        Event::CommitApplied { unit_id, response }
                    }
                    Err(failure) => {
                        this.note_reply(Some(&failure), sender.as_deref());
                        log_event(
                            "commit.failed",
                            &[("unit", &unit_id), ("failure", &failure.describe())],
                        );
                        Event::CommitFailed { unit_id, failure }
                    }
                };
                this.dispatch(event);
            }),
            Command::ReadMarker { unit_id, path } => spawn_local(async move {
                let sender = this.sender_of(&unit_id, None);
                let event = match this.token_of(sender.as_deref()).await {
                    Err(failure) => Event::MarkerReadFailed { unit_id, failure },
                    Ok(token) => match this.inner.remote.get_document_as(&path, token).await {
                        Ok(marker) => {
                            this.note_reply(None, sender.as_deref());
                            Event::MarkerRead {
                                unit_id,
                                exists: marker.is_some(),
                            }
                        }
                        Err(failure) => {
                            this.note_reply(Some(&failure), sender.as_deref());
                            Event::MarkerReadFailed { unit_id, failure }
                        }
                    },
                };
                this.dispatch(event);
            }),
            Command::MarkDone { unit_id } => {
                // Still counted as pending until its outbox record is gone: a reload in between
                // would load it again, so the badge must not say 0 before that.
                self.inner.finishing.borrow_mut().insert(unit_id.clone());
                spawn_local(async move {
                    let unit = this.inner.store.pending_unit(&unit_id).await.ok().flatten();
                    // If this fails the unit is loaded again next start; its marker makes the
                    // resend harmless, so the only cost is one extra request.
                    this.report_storage(this.inner.store.mark_unit_done(&unit_id).await);
                    this.inner.finishing.borrow_mut().remove(&unit_id);
                    this.publish_status();
                    this.tell_other_tabs(TabMessage::OutboxChanged);
                    // The unit's documents as the server now has them (other tablets' changes
                    // included), so the screen shows the truth without waiting for a pull.
                    // (Not in the service worker: the app's next pull brings them.)
                    if let Some(unit) = unit.filter(|_| !this.in_background()) {
                        this.refresh_documents(
                            unit.writes.iter().map(|w| w.path.clone()).collect(),
                        )
                        .await;
                    }
                })
            }
            Command::MarkDeadLetter { unit_id, reason } => spawn_local(async move {
                let outcome = this
                    .inner
                    .store
                    .set_dead_letter(&unit_id, Some(&reason))
                    .await;
                // A refused void or refund was undone and left the store: the engine forgets
                // it too (its own `Discard` then deletes nothing).
                if let Ok(true) = outcome {
                    this.dispatch(Event::DiscardDeadLetter {
                        unit_id: unit_id.clone(),
                    });
                }
                this.report_storage(outcome.map(|_| ()));
                this.tell_other_tabs(TabMessage::OutboxChanged);
            }),
            Command::MarkPending { unit_id } => spawn_local(async move {
                let outcome = this.inner.store.set_dead_letter(&unit_id, None).await;
                this.report_storage(outcome.map(|_| ()));
                this.tell_other_tabs(TabMessage::OutboxChanged);
            }),
            Command::Discard { unit_id } => spawn_local(async move {
                this.report_storage(this.inner.store.discard_unit(&unit_id).await);
                this.tell_other_tabs(TabMessage::OutboxChanged);
            }),
            Command::ReadDocuments { unit_id, paths } => spawn_local(async move {
                let sender = this.sender_of(&unit_id, None);
                let token = match this.token_of(sender.as_deref()).await {
                    Ok(token) => token,
                    Err(failure) => {
                        this.dispatch(Event::DocumentsReadFailed { unit_id, failure });
                        return;
                    }
                };
                let mut documents = Vec::new();
                for path in paths {
                    match this
                        .inner
                        .remote
                        .get_document_as(&path, token.clone())
                        .await
                    {
                        Ok(document) => documents.push((path, document)),
                        Err(failure) => {
                            this.note_reply(Some(&failure), sender.as_deref());
                            this.dispatch(Event::DocumentsReadFailed { unit_id, failure });
                            return;
                        }
                    }
                }
                this.note_reply(None, sender.as_deref());
                this.dispatch(Event::DocumentsRead { unit_id, documents });
            }),
            Command::Reject { unit_id } => spawn_local(async move {
                this.report_storage(this.inner.store.reject_unit(&unit_id).await);
                this.tell_other_tabs(TabMessage::OutboxChanged);
            }),
            Command::RewriteUnit { unit } => spawn_local(async move {
                this.report_storage(this.inner.store.rewrite_unit(&unit).await);
            }),
            Command::RecordConflicts { entries } => spawn_local(async move {
                this.report_storage(this.inner.store.add_conflicts(&entries).await);
                this.refresh_conflicts().await;
                this.tell_other_tabs(TabMessage::ConflictsChanged);
            }),
            Command::RunPullQuery {
                collection,
                query_id,
                query,
            } => spawn_local(async move {
                let parent = format!("shops/{}", this.inner.settings.shop_id);
                let event = match this.inner.remote.run_query(&parent, &query).await {
                    Ok(reply) => {
                        this.inner.last_pull_millis.set(Some(now_millis()));
                        let was_unreachable = !this.inner.server_reachable.replace(true);
                        if was_unreachable {
                            this.dispatch(Event::ServerReachable);
                        }
                        this.prepare_page(&collection, query_id, &reply.documents);
                        Event::PullPage {
                            collection: collection.clone(),
                            query_id,
                            documents: reply.documents,
                            read_time: reply.read_time,
                        }
                    }
                    Err(failure) => {
                        this.note_reply(Some(&failure), None);
                        Event::PullFailed {
                            collection: collection.clone(),
                            query_id,
                            failure,
                        }
                    }
                };
                let failed = matches!(event, Event::PullFailed { .. });
                this.dispatch(event);
                this.watch_screen_after_pull(&collection, failed);
                this.report_finished_pulls(&collection, failed);
            }),
            Command::ApplyPulledPage(page) => spawn_local(async move {
                let collection = page.collection.clone();
                let query_id = page.query_id;
                let prepared = this.take_prepared_page(&collection, query_id);
                let stored = match prepared {
                    Some(prepared) => this.inner.store.apply_prepared_page(&page, prepared).await,
                    None => this.inner.store.apply_pulled_page(&page).await,
                };
                let event = match stored {
                    Ok(()) => {
                        this.inner.last_pull_millis.set(Some(now_millis()));
                        if !page.conflicts.is_empty() {
                            this.refresh_conflicts().await;
                            this.tell_other_tabs(TabMessage::ConflictsChanged);
                        }
                        Event::PulledPageApplied {
                            collection: collection.clone(),
                            query_id,
                        }
                    }
                    Err(error) => {
                        let failure = PushFailure::Network(format!(
                            "the page could not be saved on this device: {error}"
                        ));
                        this.report_storage(Err(error));
                        Event::PullFailed {
                            collection: collection.clone(),
                            query_id,
                            failure,
                        }
                    }
                };
                let failed = matches!(event, Event::PullFailed { .. });
                this.dispatch(event);
                this.watch_screen_after_pull(&collection, failed);
                this.report_finished_pulls(&collection, failed);
            }),
            Command::WakeAt(at) => self.wake_at(at),
        }
    }

    /// Prepares a pulled page for the store as soon as it arrives: the page before it is
    /// usually still being stored, and IndexedDB does that work away from this thread, so
    /// the preparing costs the first sync nothing (a page that cannot be prepared is prepared
    /// again when stored, which reports why).
    fn prepare_page(&self, collection: &str, query_id: PullQueryId, documents: &[Document]) {
        let Ok(prepared) = PreparedDocuments::of(documents) else {
            return;
        };
        let mut pages = self.inner.prepared_pages.borrow_mut();
        pages.insert(query_id, (collection.to_owned(), prepared));
        while pages.len() > MOST_PREPARED_PAGES {
            pages.pop_first();
        }
    }

    /// The page of `collection`'s query `query_id` as prepared, if it was; the collection's
    /// pages of earlier queries go (a pull stores its pages in query order, and a new pull
    /// asks new queries, so none of them will be stored).
    fn take_prepared_page(
        &self,
        collection: &str,
        query_id: PullQueryId,
    ) -> Option<PreparedDocuments> {
        let mut pages = self.inner.prepared_pages.borrow_mut();
        let prepared = pages.remove(&query_id).map(|(_, prepared)| prepared);
        pages.retain(|id, (of, _)| *id > query_id || of != collection);
        prepared
    }

    /// Shows `problem` as the last problem (logged in English).
    pub fn report_problem(&self, problem: LastProblem) {
        web_sys::console::error_1(&format!("counterbook: {problem}").into());
        self.inner.status.update(|s| s.last_error = Some(problem));
    }

    /// Shows a failed read or write of the tablet's database (a screen's, the engine's) as
    /// the last problem.
    pub fn report_storage_error(&self, error: StorageError) {
        self.report_problem(LastProblem::Storage(error));
    }

    fn report_storage(&self, outcome: Result<(), StorageError>) {
        if let Err(error) = outcome {
            self.report_storage_error(error);
        }
    }

    /// Records whether the server answered at all (any HTTP reply counts), and whether it
    /// took the token of `sent_as` (`None`: the tablet's token).
    fn note_reply(&self, failure: Option<&PushFailure>, sent_as: Option<&str>) {
        let reachable = !matches!(failure, Some(PushFailure::Network(_)));
        self.inner.server_reachable.set(reachable);
        if !reachable {
            if let Some(run) = &self.inner.background {
                run.unreachable.set(true);
            } else if self.inner.outbox.borrow().status().pending > 0 {
                self.ask_for_background_sync_if_cut_off();
            }
        }
        match failure {
            None => self.inner.sessions.request_accepted(sent_as),
            Some(PushFailure::Server {
                code: Code::Unauthenticated,
                ..
            }) => self.inner.sessions.token_refused(sent_as),
            Some(_) => {}
        }
    }

    /// Whose sign-in sends the unit `unit_id` (and the commit it leads, `request`): the sender
    /// it names, or for a unit stored before units named one, the approver its audit entry
    /// names (the server requires `approvedBy` to be the writer).
    /// The token a unit of `sender` goes with, or, when that person's sign-in has ended, what
    /// the backend would answer to a token that no longer works (the unit then waits).
    async fn token_of(&self, sender: Option<&str>) -> Result<Option<String>, PushFailure> {
        self.inner
            .sessions
            .token_for_sender(sender)
            .await
            .map_err(|must_sign_in| sign_in_ended(&must_sign_in))
    }

    fn sender_of(
        &self,
        unit_id: &str,
        request: Option<&counterbook_firestore_wire::CommitRequest>,
    ) -> Option<String> {
        let named = self
            .inner
            .outbox
            .borrow()
            .unit(unit_id)
            .and_then(|unit| unit.sender.clone());
        named.or_else(|| request.and_then(approver_named_in))
    }

    fn publish_status(&self) {
        let leader = self.is_leader();
        let to_dead_letter =
            |(unit, reason): (&counterbook_sync::Unit, &DeadLetterReason)| DeadLetter {
                unit_id: unit.id.clone(),
                label: unit.label.clone(),
                reason: reason.clone(),
            };
        let status = if leader {
            let outbox = self.inner.outbox.borrow();
            let engine = outbox.status();
            SyncStatus {
                browser_online: browser_online(),
                leader,
                server_reachable: self.inner.server_reachable.get(),
                pending: engine.pending + self.inner.finishing.borrow().len(),
                in_flight: engine.in_flight,
                conflicts: self.inner.conflicts.with_untracked(Vec::len),
                last_push_millis: self.inner.last_push_millis.get(),
                dead_letters: outbox
                    .dead_letters()
                    .into_iter()
                    .map(to_dead_letter)
                    .collect(),
                paused_for_sign_in: engine.paused_for_sign_in,
                pending_by_sender: engine.pending_by_sender,
                last_error: engine.last_error.map(LastProblem::Sync),
                last_pull_millis: self.inner.last_pull_millis.get(),
                realtime: self.listening_healthy(),
            }
        } else {
            // A follower shows the outbox as the store holds it; the leader tab syncs it.
            let stored = self.inner.stored_outbox.borrow();
            SyncStatus {
                browser_online: browser_online(),
                leader,
                server_reachable: true,
                pending: stored.pending.len(),
                in_flight: 0,
                conflicts: self.inner.conflicts.with_untracked(Vec::len),
                last_push_millis: None,
                dead_letters: stored
                    .dead_letters
                    .iter()
                    .map(|(unit, reason)| to_dead_letter((unit, reason)))
                    .collect(),
                paused_for_sign_in: false,
                pending_by_sender: stored.pending.iter().fold(
                    SortedMap::new(),
                    |mut counts, unit| {
                        *counts.get_or_insert_with(unit.sender.clone(), usize::default) += 1;
                        counts
                    },
                ),
                last_error: None,
                last_pull_millis: None,
                realtime: false,
            }
        };
        if leader && status.pending == 0 {
            // The next unit cut off from the server asks again.
            self.inner.background_sync_asked.set(false);
        }
        if self.inner.status.get_untracked() != status {
            self.inner.status.set(status);
        }
        self.settle_background_if_done();
    }

    fn wake_at(&self, at: i64) {
        let this = self.clone();
        schedule_once(&self.inner.wake_timer, at, move || {
            this.inner.wake_timer.set(None);
            this.dispatch(Event::Tick);
        });
    }

    /// Online/offline events, visibility changes and the periodic timers. They live as long as
    /// the page, so their closures are leaked on purpose.
    fn listen_to_the_browser(&self) {
        let Some(window) = web_sys::window() else {
            return;
        };
        for (event_name, online) in [("online", true), ("offline", false)] {
            let this = self.clone();
            let callback = Closure::<dyn Fn()>::new(move || {
                if online {
                    this.inner.sessions.browser_online();
                }
                this.dispatch(Event::Online(online));
                this.listen(ListenEvent::Online(online));
                if online && !this.listening_healthy() {
                    this.pull_soon();
                }
            });
            let _ = window
                .add_event_listener_with_callback(event_name, callback.as_ref().unchecked_ref());
            callback.forget();
        }
        if let Some(document) = window.document() {
            // A frozen leader (a background tab the browser suspended) would hold the lock while
            // doing nothing: let go on freeze, ask again on resume.
            let this = self.clone();
            let on_freeze = Closure::<dyn Fn()>::new(move || this.stop_leading());
            let _ = document
                .add_event_listener_with_callback("freeze", on_freeze.as_ref().unchecked_ref());
            on_freeze.forget();
            let this = self.clone();
            let on_resume = Closure::<dyn Fn()>::new(move || {
                if !this.is_leader() {
                    this.ask_to_lead(false);
                }
            });
            let _ = document
                .add_event_listener_with_callback("resume", on_resume.as_ref().unchecked_ref());
            on_resume.forget();
            let this = self.clone();
            let callback = Closure::<dyn Fn()>::new(move || {
                let visible = page_visible();
                this.listen(ListenEvent::Visible(visible));
                if visible {
                    this.dispatch(Event::Tick);
                    // Listening, the listener's own catch-up pull covers the time away.
                    if !this.inner.settings.listens() {
                        this.pull_soon();
                    }
                }
            });
            let _ = document.add_event_listener_with_callback(
                "visibilitychange",
                callback.as_ref().unchecked_ref(),
            );
            callback.forget();
        }
        let this = self.clone();
        let pull = Closure::<dyn Fn()>::new(move || {
            this.check_leadership();
            if !this.listening_healthy() && this.periodic_pull_due() {
                this.pull_soon();
            }
        });
        let _ = window.set_interval_with_callback_and_timeout_and_arguments_0(
            pull.as_ref().unchecked_ref(),
            PULL_INTERVAL_MILLIS,
        );
        pull.forget();
        let this = self.clone();
        let tick = Closure::<dyn Fn()>::new(move || this.dispatch(Event::Tick));
        let _ = window.set_interval_with_callback_and_timeout_and_arguments_0(
            tick.as_ref().unchecked_ref(),
            SLOW_TICK_MILLIS,
        );
        tick.forget();
    }

    /// Whether the periodic pull should run now: on every tick normally, but only every
    /// `battery_saver_minutes` in battery saver (pulls on becoming visible are not counted).
    fn periodic_pull_due(&self) -> bool {
        let settings = &self.inner.settings;
        if !settings.battery_saver {
            return true;
        }
        let interval = i64::from(settings.battery_saver_minutes) * 60_000;
        let now = now_millis();
        match self.inner.last_periodic_pull_millis.get() {
            Some(last) if now - last < interval => false,
            _ => {
                self.inner.last_periodic_pull_millis.set(Some(now));
                true
            }
        }
    }

    /// Asks the engine to pull the kept collections (products, customers, the shop profile,
    /// bills, refunds),
    /// unless this tab does not lead, the page is hidden or the browser is offline. The engine
    /// runs one pull per collection at a time and goes on to the end again if asked meanwhile.
    fn pull_soon(&self) {
        if !self.is_leader() || self.in_background() || !page_visible() || !browser_online() {
            return;
        }
        for collection in KEPT_COLLECTIONS {
            self.pull_collection(collection.to_owned());
        }
    }

    /// Asks the engine to pull `collection` from its stored checkpoint.
    fn pull_collection(&self, collection: String) {
        let this = self.clone();
        spawn_local(async move {
            match this.inner.store.checkpoint(&collection).await {
                Ok(checkpoint) => {
                    this.dispatch(Event::PullRequested {
                        collection: collection.clone(),
                        checkpoint,
                    });
                    // A pull that found nothing to start (not leading) is reported at once.
                    this.report_finished_pulls(&collection, false);
                }
                Err(error) => {
                    this.report_storage(Err(error));
                    this.report_finished_pulls(&collection, true);
                }
            }
        });
    }
}
