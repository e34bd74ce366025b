//! The sync driver: the only code that awaits sync work. This is its shell side, what every
//! page needs: the status it publishes through signals, the change log, the tabs and their
//! leadership, the people's sessions, the store, and the units of work saved there
//! ([`SyncDriver::submit_unit`], [`SyncDriver::unit_saved`]). The engine side, which feeds the
//! sans-IO `Outbox` and `Listener` events and carries out their commands with the REST client,
//! the Listen channel and the store, is [`crate::sync::engine`]: a wasm module of its own in
//! the release app, loaded as soon as the app starts and reached only through its
//! [`SyncMachinery`] trait object. A tab leads once it holds the leader lock and the engine is
//! loaded; until then a sale is stored and waits in the outbox like any other unit, and the
//! status says the engine is starting (or that it could not be loaded: it is tried again on
//! the three-second timer and when the browser comes online).
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

use counterbook_shop::{AuditEntry, Bill, Record, UnitOfWork};
use counterbook_sync::sorted_map::SortedMap;
use counterbook_sync::{
    BaseVersion, ConflictEntry, DeadLetterReason, DocumentWrite, SyncProblem, Unit, UnitLabel,
};
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;

use crate::global_scope;
use crate::model::Product;
use crate::settings::Settings;
use crate::storage::{OutboxContents, OutboxSummary, StorageError, Store};
use crate::sync::change_log::ChangeLog;
use crate::sync::engine::{sync_engine, EngineNotLoaded, SyncMachinery};
use crate::sync::session::Sessions;
use crate::sync::tabs::{
    ask_for_background_sync, background_sync_is_running, leader_heartbeat_is_stale,
    request_leadership, write_leader_heartbeat, Leadership, TabChannel, TabMessage,
};

/// How often a visible, online page pulls when it is not listening in real time.
const PULL_INTERVAL_MILLIS: i32 = 3_000;
/// The collection the shop's pages show (the counter's and the products page's), listened to
/// while one of them is open.
pub(super) const SCREEN_COLLECTION: &str = "products";
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
pub(super) struct BackgroundRun {
    /// The engine has loaded the outbox: from then on, an empty outbox means drained.
    loaded: Cell<bool>,
    /// A request found no network or no server.
    pub(super) unreachable: Cell<bool>,
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
    /// The sync engine's module could not be fetched or instantiated (tried again on the
    /// three-second timer and when the browser comes online); units wait in the outbox.
    EngineNotLoaded,
}

impl std::fmt::Display for LastProblem {
    fn fmt(&self, out: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LastProblem::Sync(problem) => problem.fmt(out),
            LastProblem::Storage(error) => error.fmt(out),
            LastProblem::Listen(detail) => write!(out, "cannot listen: {detail}"),
            LastProblem::EngineNotLoaded => write!(out, "the sync engine could not be loaded"),
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
    /// The sync engine's module is not loaded yet (or could not be: then `last_error` says
    /// so); nothing is sent or pulled meanwhile.
    pub starting: bool,
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
            starting: true,
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

/// Why the app could not start.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The outbox as a follower shows it, read from the store.
#[derive(Default)]
struct StoredOutbox {
    /// Whose sign-in sends each pending unit.
    pending_senders: Vec<Option<String>>,
    /// Listed once the engine, which decodes whole units, is loaded (until then none).
    dead_letters: Vec<DeadLetter>,
}

impl StoredOutbox {
    fn of_summary(summary: OutboxSummary) -> StoredOutbox {
        StoredOutbox {
            pending_senders: summary.pending_senders,
            dead_letters: Vec::new(),
        }
    }

    fn of_contents(contents: OutboxContents) -> StoredOutbox {
        StoredOutbox {
            pending_senders: contents
                .pending
                .into_iter()
                .map(|unit| unit.sender)
                .collect(),
            dead_letters: contents
                .dead_letters
                .into_iter()
                .map(|(unit, reason)| DeadLetter {
                    unit_id: unit.id,
                    label: unit.label,
                    reason,
                })
                .collect(),
        }
    }
}

/// Where the sync engine stands in this tab.
enum EngineSlot {
    /// Not asked for yet (the driver is being assembled).
    NotAsked,
    /// Its module is being fetched and instantiated.
    Loading,
    Loaded(Rc<dyn SyncMachinery>),
    /// Its module could not be had; tried again on the next timer or `online` event.
    NotLoaded,
}

pub(super) struct Inner {
    /// `Some` in the service worker, draining the outbox on a Background Sync event.
    pub(super) background: Option<BackgroundRun>,
    /// A Background Sync was asked for since the outbox last emptied (in a page).
    background_sync_asked: Cell<bool>,
    settings: Settings,
    device_id: String,
    store: Rc<Store>,
    /// Who is signed in; the token every request carries.
    sessions: Sessions,
    /// The engine: pushes, pulls and listens while this tab leads.
    engine: RefCell<EngineSlot>,
    /// Told when a load of the engine ends (its outcome is in `engine`).
    engine_waiters: RefCell<Vec<futures::channel::oneshot::Sender<()>>>,
    /// `Some` while this tab holds the leader lock; it leads once the engine is loaded too.
    leadership: RefCell<Option<Leadership>>,
    /// A forced takeover from a stale leader is under way.
    stealing: Cell<bool>,
    channel: RefCell<Option<TabChannel>>,
    /// What a follower shows: the outbox as last read from the store.
    stored_outbox: RefCell<StoredOutbox>,
    status: RwSignal<SyncStatus>,
    /// What changed, for the screens to re-read (this tab's writes and the other tabs').
    changes: ChangeLog,
    /// The collection the open page shows (`None`: a page showing none), the listener's
    /// screen target.
    pub(super) screen_collection: RefCell<Option<String>>,
    pub(super) server_reachable: Cell<bool>,
    /// The conflict inbox, as the UI shows it.
    conflicts: RwSignal<Vec<ConflictEntry>>,
}

/// A handle on the running sync engine; cheap to clone.
#[derive(Clone)]
pub struct SyncDriver {
    pub(super) inner: Rc<Inner>,
}

/// A structured log line for the browser console: `{"event": ..., key: value, ...}`.
pub(super) fn log_event(event: &str, details: &[(&str, &str)]) {
    let mut line = serde_json::Map::new();
    line.insert("event".into(), event.into());
    for (key, value) in details {
        line.insert((*key).into(), (*value).into());
    }
    web_sys::console::info_1(&serde_json::Value::Object(line).to_string().into());
}

/// Runs `callback` once at `at` (Unix ms), replacing the timer held in `slot`: an engine asks
/// for one wake-up at a time, and a later request supersedes an earlier one.
pub(super) fn schedule_once(slot: &Cell<Option<i32>>, at: i64, callback: impl FnOnce() + 'static) {
    if let Some(previous) = slot.take() {
        global_scope::clear_timeout(previous);
    }
    let delay = (at - now_millis()).clamp(0, i64::from(i32::MAX)) as i32;
    let callback = Closure::once_into_js(callback);
    slot.set(global_scope::set_timeout(callback.unchecked_ref(), delay));
}

pub(super) fn now_millis() -> i64 {
    js_sys::Date::now() as i64
}

/// Why a document could not be read from the server.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("the tablet is offline or the server cannot be reached")]
    Offline,
    #[error("the server refused: {0}")]
    Server(String),
    #[error("the sync engine could not be loaded")]
    EngineNotLoaded,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

pub(super) fn browser_online() -> bool {
    global_scope::on_line()
}

pub(super) fn page_visible() -> bool {
    web_sys::window()
        .and_then(|w| w.document())
        .map(|d| d.visibility_state() == web_sys::VisibilityState::Visible)
        .unwrap_or(true)
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
        // The engine's module is fetched at once, beside the counter's start: a tab leads
        // once it holds the lock and has the engine, and a first sync should not wait for
        // the lock before the module is asked for.
        driver.load_engine();
        driver.listen_to_the_browser();
        driver.ask_to_lead(false);
        Ok(driver)
    }

    /// The engine, if it is loaded.
    fn engine(&self) -> Option<Rc<dyn SyncMachinery>> {
        match &*self.inner.engine.borrow() {
            EngineSlot::Loaded(engine) => Some(Rc::clone(engine)),
            EngineSlot::NotAsked | EngineSlot::Loading | EngineSlot::NotLoaded => None,
        }
    }

    /// Starts loading the engine unless it is loaded or loading: once loaded, this tab leads
    /// if it holds the lock; if it cannot be, the status says so and a later call tries again.
    fn load_engine(&self) {
        {
            let mut slot = self.inner.engine.borrow_mut();
            if matches!(*slot, EngineSlot::Loaded(_) | EngineSlot::Loading) {
                return;
            }
            *slot = EngineSlot::Loading;
        }
        let this = self.clone();
        spawn_local(async move {
            let loaded = this.engine_module().await;
            *this.inner.engine.borrow_mut() = match loaded {
                Ok(engine) => {
                    log_event("engine.loaded", &[]);
                    EngineSlot::Loaded(engine)
                }
                Err(EngineNotLoaded) => {
                    log_event("engine.not_loaded", &[]);
                    EngineSlot::NotLoaded
                }
            };
            for waiter in this.inner.engine_waiters.borrow_mut().drain(..) {
                let _ = waiter.send(());
            }
            // The dead letters a follower lists are decoded by the engine.
            this.refresh_stored_outbox();
            if this.engine().is_some() && this.inner.leadership.borrow().is_some() {
                this.begin_leading().await;
            }
        });
    }

    #[cfg(feature = "split")]
    async fn engine_module(&self) -> Result<Rc<dyn SyncMachinery>, EngineNotLoaded> {
        sync_engine(self.clone()).await
    }

    #[cfg(not(feature = "split"))]
    async fn engine_module(&self) -> Result<Rc<dyn SyncMachinery>, EngineNotLoaded> {
        sync_engine(self.clone())
    }

    /// The engine, loaded first if it is not (a screen's read that needs it waits for it).
    async fn loaded_engine(&self) -> Result<Rc<dyn SyncMachinery>, EngineNotLoaded> {
        if let Some(engine) = self.engine() {
            return Ok(engine);
        }
        let (told, loaded) = futures::channel::oneshot::channel();
        self.inner.engine_waiters.borrow_mut().push(told);
        self.load_engine();
        let _ = loaded.await;
        self.engine().ok_or(EngineNotLoaded)
    }

    /// Tries again to load an engine that could not be loaded.
    fn retry_engine_if_not_loaded(&self) {
        if matches!(*self.inner.engine.borrow(), EngineSlot::NotLoaded) {
            self.load_engine();
        }
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
        if driver.loaded_engine().await.is_err() {
            // The worker could not load the engine's module (precached with the app): the
            // browser tries again later.
            return Ok(DrainOutcome::Unfinished);
        }
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
        let Some(engine) = self.engine() else {
            return;
        };
        let outcome = {
            let status = engine.status();
            let unsent = status.outbox.pending + status.finishing;
            let engine = status.outbox;
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

    pub(super) fn in_background(&self) -> bool {
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
        let stored_outbox = StoredOutbox::of_summary(store.outbox_summary().await?);
        let conflicts = store.conflicts().await?;

        let driver = SyncDriver {
            inner: Rc::new(Inner {
                background,
                background_sync_asked: Cell::new(false),
                settings,
                device_id,
                store,
                sessions,
                engine: RefCell::new(EngineSlot::NotAsked),
                engine_waiters: RefCell::new(Vec::new()),
                leadership: RefCell::new(None),
                stealing: Cell::new(false),
                channel: RefCell::new(None),
                stored_outbox: RefCell::new(stored_outbox),
                status: RwSignal::new(SyncStatus::default()),
                changes: ChangeLog::new(),
                screen_collection: RefCell::new(Some(SCREEN_COLLECTION.to_owned())),
                server_reachable: Cell::new(true),
                conflicts: RwSignal::new(conflicts),
            }),
        };
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
        if let Some(engine) = self.engine() {
            engine.signed_in(vec![Some(user_id), None], true);
        }
        self.tell_other_tabs(TabMessage::PeopleChanged);
    }

    /// Whether this tab runs the sync engine: it holds the leader lock and has the engine.
    pub fn is_leader(&self) -> bool {
        self.inner.leadership.borrow().is_some()
            && matches!(*self.inner.engine.borrow(), EngineSlot::Loaded(_))
    }

    /// Queues for leadership, or with `steal` takes it from a leader that stopped its heartbeat.
    fn ask_to_lead(&self, steal: bool) {
        let granted = self.clone();
        let stolen = self.clone();
        request_leadership(
            &self.inner.settings.database_name,
            steal,
            move |leadership| {
                if granted.inner.leadership.borrow().is_some() {
                    // Already leading through another request of this tab.
                    return;
                }
                *granted.inner.leadership.borrow_mut() = Some(leadership);
                write_leader_heartbeat(&granted.inner.settings.database_name);
                // Without the engine yet, this tab leads once it is loaded.
                if granted.engine().is_some() {
                    spawn_local(async move { granted.begin_leading().await });
                }
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
        if self.inner.leadership.borrow().is_some() {
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

    /// Becoming the leader (the lock held, the engine loaded): the engine loaded with the
    /// outbox from the store, then push and pull.
    async fn begin_leading(&self) {
        self.inner.stealing.set(false);
        let Some(engine) = self.engine() else {
            return;
        };
        if let Err(error) = engine.begin_leading().await {
            // Without its outbox this tab cannot push; let another tab lead.
            self.report_storage(Err(error));
            self.stop_leading();
            return;
        }
        self.publish_status();
    }

    /// The open page shows `collection` (`None`: no collection): the listener's screen target
    /// follows it, once the engine runs.
    pub fn show_collection(&self, collection: Option<&str>) {
        let collection = collection.map(str::to_owned);
        if *self.inner.screen_collection.borrow() == collection {
            return;
        }
        *self.inner.screen_collection.borrow_mut() = collection.clone();
        if let Some(engine) = self.engine() {
            engine.follow_screen(collection);
        }
    }

    /// Lets the next tab lead (this one is being frozen). Requests already on the wire finish;
    /// a resend by the next leader is harmless thanks to the unit's marker.
    pub(super) fn stop_leading(&self) {
        if let Some(leadership) = self.inner.leadership.borrow_mut().take() {
            leadership.release();
        }
        self.inner.stealing.set(false);
        if let Some(engine) = self.engine() {
            engine.stop_leading();
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
                let mut senders: Vec<Option<String>> = people
                    .into_iter()
                    .filter(|person| !person.needs_sign_in)
                    .map(|person| Some(person.user_id))
                    .collect();
                senders.push(None);
                if let Some(engine) = this.engine() {
                    engine.signed_in(senders, false);
                }
            }),
            TabMessage::OutboxChanged => match self.engine().filter(|_| self.is_leader()) {
                Some(engine) => engine.adopt_outbox_changes(),
                None => {
                    self.refresh_stored_outbox();
                }
            },
        }
    }

    fn refresh_stored_outbox(&self) {
        let this = self.clone();
        spawn_local(async move {
            let read = match this.engine() {
                Some(engine) => engine.stored_outbox().await.map(StoredOutbox::of_contents),
                None => (this.inner.store.outbox_summary().await).map(StoredOutbox::of_summary),
            };
            match read {
                Ok(stored) => *this.inner.stored_outbox.borrow_mut() = stored,
                Err(error) => this.report_storage(Err(error)),
            }
            this.publish_status();
        });
    }

    pub(super) fn tell_other_tabs(&self, message: TabMessage) {
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

    pub(super) async fn refresh_conflicts(&self) {
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

    /// Reads a bill this tablet does not keep (another tablet's, its receipt's QR code
    /// scanned) from the server now, and stores it as the server has it, so that a void of it
    /// starts from that version (`Ok(None)`: the server has none). Through the engine, loaded
    /// first if it is not: reading and storing server documents is its code.
    /// `FetchError::Offline` without asking when the browser is offline.
    pub async fn read_server_bill(&self, path: &str) -> Result<Option<Bill>, FetchError> {
        if !browser_online() {
            return Err(FetchError::Offline);
        }
        let engine = self
            .loaded_engine()
            .await
            .map_err(|EngineNotLoaded| FetchError::EngineNotLoaded)?;
        engine.read_server_bill(path.to_owned()).await
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
        match self.engine().filter(|_| self.is_leader()) {
            Some(engine) => engine.local_write(unit),
            None => self.refresh_stored_outbox(),
        }
    }

    /// A unit another part of the app has just written to the store, with its records, in
    /// one transaction (the counter's sale): tell the other tabs and start pushing it. The
    /// product list is not re-read here: a sale's screen shows what it wrote already.
    pub fn unit_saved(&self, unit: Unit) {
        self.tell_other_tabs(TabMessage::OutboxChanged);
        self.ask_for_background_sync_if_cut_off();
        match self.engine().filter(|_| self.is_leader()) {
            Some(engine) => engine.local_write(unit),
            None => self.refresh_stored_outbox(),
        }
    }

    /// A unit waits while the browser is offline or the server is unreachable: ask for a
    /// Background Sync, so that the service worker sends it once the network is back, even if
    /// the app is closed by then (where the browser has Background Sync).
    pub(super) fn ask_for_background_sync_if_cut_off(&self) {
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
        if let Some(engine) = self.engine().filter(|_| self.is_leader()) {
            return engine.retry_dead_letter(unit_id);
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
        if let Some(engine) = self.engine().filter(|_| self.is_leader()) {
            return engine.discard_dead_letter(unit_id);
        }
        let this = self.clone();
        spawn_local(async move {
            let outcome = this.inner.store.discard_unit(&unit_id).await;
            this.report_storage(outcome);
            this.tell_other_tabs(TabMessage::OutboxChanged);
            this.refresh_stored_outbox();
        });
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

    pub(super) fn report_storage(&self, outcome: Result<(), StorageError>) {
        if let Err(error) = outcome {
            self.report_storage_error(error);
        }
    }

    pub(super) fn publish_status(&self) {
        let leader = self.is_leader();
        let engine = self.engine();
        let starting = engine.is_none();
        let engine_problem = matches!(*self.inner.engine.borrow(), EngineSlot::NotLoaded)
            .then_some(LastProblem::EngineNotLoaded);
        let mut status = match engine.filter(|_| leader) {
            Some(engine) => {
                let engine = engine.status();
                SyncStatus {
                    browser_online: browser_online(),
                    leader,
                    starting,
                    server_reachable: self.inner.server_reachable.get(),
                    pending: engine.outbox.pending + engine.finishing,
                    in_flight: engine.outbox.in_flight,
                    conflicts: self.inner.conflicts.with_untracked(Vec::len),
                    last_push_millis: engine.last_push_millis,
                    dead_letters: engine.dead_letters,
                    paused_for_sign_in: engine.outbox.paused_for_sign_in,
                    pending_by_sender: engine.outbox.pending_by_sender,
                    last_error: engine.outbox.last_error.map(LastProblem::Sync),
                    last_pull_millis: engine.last_pull_millis,
                    realtime: engine.realtime,
                }
            }
            None => {
                // A follower (or a tab whose engine is not loaded yet) shows the outbox as the
                // store holds it; the leader tab syncs it.
                let stored = self.inner.stored_outbox.borrow();
                SyncStatus {
                    browser_online: browser_online(),
                    leader,
                    starting,
                    server_reachable: true,
                    pending: stored.pending_senders.len(),
                    in_flight: 0,
                    conflicts: self.inner.conflicts.with_untracked(Vec::len),
                    last_push_millis: None,
                    dead_letters: stored.dead_letters.clone(),
                    paused_for_sign_in: false,
                    pending_by_sender: stored.pending_senders.iter().fold(
                        SortedMap::new(),
                        |mut counts, sender| {
                            *counts.get_or_insert_with(sender.clone(), usize::default) += 1;
                            counts
                        },
                    ),
                    last_error: None,
                    last_pull_millis: None,
                    realtime: false,
                }
            }
        };
        if engine_problem.is_some() {
            status.last_error = engine_problem;
        }
        if leader && status.pending == 0 {
            // The next unit cut off from the server asks again.
            self.inner.background_sync_asked.set(false);
        }
        if self.inner.status.get_untracked() != status {
            self.inner.status.set(status);
        }
        self.settle_background_if_done();
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
                    this.retry_engine_if_not_loaded();
                }
                if let Some(engine) = this.engine() {
                    engine.browser_online(online);
                }
                this.publish_status();
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
                if this.inner.leadership.borrow().is_none() {
                    this.ask_to_lead(false);
                }
            });
            let _ = document
                .add_event_listener_with_callback("resume", on_resume.as_ref().unchecked_ref());
            on_resume.forget();
            let this = self.clone();
            let callback = Closure::<dyn Fn()>::new(move || {
                if let Some(engine) = this.engine() {
                    engine.page_visible(page_visible());
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
            this.retry_engine_if_not_loaded();
            if let Some(engine) = this.engine() {
                engine.pull_interval();
            }
        });
        let _ = window.set_interval_with_callback_and_timeout_and_arguments_0(
            pull.as_ref().unchecked_ref(),
            PULL_INTERVAL_MILLIS,
        );
        pull.forget();
        let this = self.clone();
        let tick = Closure::<dyn Fn()>::new(move || {
            if let Some(engine) = this.engine() {
                engine.tick();
            }
        });
        let _ = window.set_interval_with_callback_and_timeout_and_arguments_0(
            tick.as_ref().unchecked_ref(),
            SLOW_TICK_MILLIS,
        );
        tick.forget();
    }
}
