//! The sync driver: the only code that awaits. It feeds the sans-IO [`Outbox`] events, carries
//! out its commands with [`Remote`] and [`Store`], pulls other tablets' changes while the page
//! is visible, and publishes what the UI shows through signals.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use counterbook_sync::{
    checkpoint_after, pull_query, Command, Event, Outbox, OutboxConfig, PushFailure, UnitState,
};
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;

use crate::entities::{AuditEntry, BaseCopy};
use crate::model::{add_product_unit, Product};
use crate::remote::Remote;
use crate::settings::Settings;
use crate::storage::{OutboxContents, StorageError, Store};
use crate::tabs::{
    leader_heartbeat_is_stale, request_leadership, write_leader_heartbeat, Leadership, TabChannel,
    TabMessage,
};

/// How often a visible, online page pulls (until real-time listeners arrive).
const PULL_INTERVAL_MILLIS: i32 = 3_000;
/// A slow wake-up in case a timer or an event was missed.
const SLOW_TICK_MILLIS: i32 = 15_000;
/// Documents per pull page.
const PULL_PAGE_SIZE: i32 = 100;

/// A unit that stopped for good, as the UI lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    pub unit_id: String,
    pub label: String,
    pub reason: String,
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
    pub dead_letters: Vec<DeadLetter>,
    pub paused_for_sign_in: bool,
    pub last_error: Option<String>,
    /// When the last pull finished, Unix ms.
    pub last_pull_millis: Option<i64>,
}

impl Default for SyncStatus {
    fn default() -> Self {
        SyncStatus {
            browser_online: true,
            leader: false,
            server_reachable: true,
            pending: 0,
            dead_letters: Vec::new(),
            paused_for_sign_in: false,
            last_error: None,
            last_pull_millis: None,
        }
    }
}

/// Why the app could not start.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What a pull run can fail on.
enum PullError {
    Remote(PushFailure),
    Storage(StorageError),
}

struct Inner {
    settings: Settings,
    device_id: String,
    store: Store,
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
    products: RwSignal<Vec<Product>>,
    pulling: Cell<bool>,
    server_reachable: Cell<bool>,
    last_pull_millis: Cell<Option<i64>>,
    pull_error: RefCell<Option<String>>,
    wake_timer: Cell<Option<i32>>,
}

/// A handle on the running sync engine; cheap to clone.
#[derive(Clone)]
pub struct SyncDriver {
    inner: Rc<Inner>,
}

fn now_millis() -> i64 {
    js_sys::Date::now() as i64
}

fn browser_online() -> bool {
    web_sys::window()
        .map(|w| w.navigator().on_line())
        .unwrap_or(true)
}

fn page_visible() -> bool {
    web_sys::window()
        .and_then(|w| w.document())
        .map(|d| d.visibility_state() == web_sys::VisibilityState::Visible)
        .unwrap_or(true)
}

impl SyncDriver {
    /// Opens the store, shows what it holds, and asks to lead the tabs of this profile: the
    /// leader pushes and pulls, the others follow its changes (see [`crate::tabs`]).
    pub async fn start(settings: Settings) -> Result<SyncDriver, StartError> {
        let store = Store::open(&settings.database_name).await?;
        let device_id = store.device_id().await?;
        let stored_outbox = store.outbox().await?;
        let products = store.products().await?;
        spawn_local(async {
            crate::storage::request_persistent_storage().await;
        });

        let config = OutboxConfig::new(
            &settings.project,
            &settings.shop_id,
            &device_id,
            crate::ids::random_seed(),
        );
        let driver = SyncDriver {
            inner: Rc::new(Inner {
                remote: Remote::new(&settings.endpoint, &settings.project),
                settings,
                device_id,
                store,
                outbox: RefCell::new(Outbox::new(config.clone())),
                outbox_config: config,
                leadership: RefCell::new(None),
                stealing: Cell::new(false),
                channel: RefCell::new(None),
                stored_outbox: RefCell::new(stored_outbox),
                status: RwSignal::new(SyncStatus::default()),
                products: RwSignal::new(products),
                pulling: Cell::new(false),
                server_reachable: Cell::new(true),
                last_pull_millis: Cell::new(None),
                pull_error: RefCell::new(None),
                wake_timer: Cell::new(None),
            }),
        };
        let listener = driver.clone();
        let channel = TabChannel::open(&driver.inner.settings.database_name, move |message| {
            listener.on_tab_message(message)
        });
        *driver.inner.channel.borrow_mut() = channel;
        driver.publish_status();
        driver.listen_to_the_browser();
        driver.ask_to_lead(false);
        Ok(driver)
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
            self.ask_to_lead(true);
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
        self.dispatch(Event::Online(browser_online()));
        self.dispatch(Event::Loaded {
            pending: contents.pending,
            dead_letters: contents.dead_letters,
        });
        self.pull_soon();
    }

    /// Lets the next tab lead (this one is being frozen). Requests already on the wire finish;
    /// a resend by the next leader is harmless thanks to the unit's marker.
    fn stop_leading(&self) {
        if let Some(leadership) = self.inner.leadership.borrow_mut().take() {
            leadership.release();
        }
        self.inner.stealing.set(false);
        *self.inner.outbox.borrow_mut() = Outbox::new(self.inner.outbox_config.clone());
        if let (Some(window), Some(timer)) = (web_sys::window(), self.inner.wake_timer.take()) {
            window.clear_timeout_with_handle(timer);
        }
        self.refresh_stored_outbox();
        // Messages from the new leader may have been missed while this tab was stopped.
        let this = self.clone();
        spawn_local(async move { this.refresh_products().await });
    }

    fn on_tab_message(&self, message: TabMessage) {
        let this = self.clone();
        match message {
            TabMessage::DataChanged => spawn_local(async move { this.refresh_products().await }),
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

    pub fn products(&self) -> RwSignal<Vec<Product>> {
        self.inner.products
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub fn device_id(&self) -> &str {
        &self.inner.device_id
    }

    /// Saves a new product with its outbox unit, shows it, and starts pushing it.
    pub async fn add_product(&self, name: &str, price_minor: i64) -> Result<Product, StorageError> {
        let settings = &self.inner.settings;
        let product = Product::new(
            crate::ids::new_id(),
            name.trim(),
            price_minor,
            &settings.currency,
        );
        let unit = add_product_unit(
            crate::ids::new_id(),
            &product,
            &settings.shop_id,
            now_millis(),
        );
        let audit = AuditEntry {
            id: crate::ids::new_id(),
            at_millis: now_millis(),
            device_id: self.device_id().to_owned(),
            cashier: None,
            action: "product.create".into(),
            path: product.document_path(&settings.shop_id),
            before: None,
            after: Some(product.to_fields()),
        };
        self.inner
            .store
            .add_product(&product, &[audit], &unit)
            .await?;
        self.refresh_products().await;
        self.tell_other_tabs(TabMessage::DataChanged);
        self.tell_other_tabs(TabMessage::OutboxChanged);
        if self.is_leader() {
            self.dispatch(Event::LocalWrite(unit));
        } else {
            self.refresh_stored_outbox();
        }
        Ok(product)
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
            this.report_storage(outcome);
            this.tell_other_tabs(TabMessage::OutboxChanged);
            this.refresh_stored_outbox();
        });
    }

    pub fn discard_dead_letter(&self, unit_id: String) {
        if self.is_leader() {
            self.dispatch(Event::DiscardDeadLetter { unit_id });
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
        self.publish_status();
        for command in commands {
            self.execute(command);
        }
    }

    fn execute(&self, command: Command) {
        let this = self.clone();
        match command {
            Command::SendCommit { unit_id, request } => spawn_local(async move {
                let event = match this.inner.remote.commit(&request).await {
                    Ok(_) => {
                        this.note_reply(None);
                        Event::CommitSucceeded { unit_id }
                    }
                    Err(failure) => {
                        this.note_reply(Some(&failure));
                        Event::CommitFailed { unit_id, failure }
                    }
                };
                this.dispatch(event);
            }),
            Command::ReadMarker { unit_id, path } => spawn_local(async move {
                let event = match this.inner.remote.get_document(&path).await {
                    Ok(marker) => {
                        this.note_reply(None);
                        Event::MarkerRead {
                            unit_id,
                            exists: marker.is_some(),
                        }
                    }
                    Err(failure) => {
                        this.note_reply(Some(&failure));
                        Event::MarkerReadFailed { unit_id, failure }
                    }
                };
                this.dispatch(event);
            }),
            Command::MarkDone { unit_id } => spawn_local(async move {
                // If this fails the unit is loaded again next start; its marker makes the
                // resend harmless, so the only cost is one extra request.
                this.report_storage(this.inner.store.mark_unit_done(&unit_id).await);
                this.tell_other_tabs(TabMessage::OutboxChanged);
                // Pull soon so that the server's `updatedAt` comes back to this device.
                this.pull_soon();
            }),
            Command::MarkDeadLetter { unit_id, reason } => spawn_local(async move {
                let outcome = this
                    .inner
                    .store
                    .set_dead_letter(&unit_id, Some(&reason))
                    .await;
                this.report_storage(outcome);
                this.tell_other_tabs(TabMessage::OutboxChanged);
            }),
            Command::MarkPending { unit_id } => spawn_local(async move {
                let outcome = this.inner.store.set_dead_letter(&unit_id, None).await;
                this.report_storage(outcome);
                this.tell_other_tabs(TabMessage::OutboxChanged);
            }),
            Command::Discard { unit_id } => spawn_local(async move {
                this.report_storage(this.inner.store.discard_unit(&unit_id).await);
                this.tell_other_tabs(TabMessage::OutboxChanged);
            }),
            Command::ReadDocuments { unit_id, paths } => spawn_local(async move {
                let mut documents = Vec::new();
                for path in paths {
                    match this.inner.remote.get_document(&path).await {
                        Ok(document) => documents.push((path, document)),
                        Err(failure) => {
                            this.note_reply(Some(&failure));
                            this.dispatch(Event::DocumentsReadFailed { unit_id, failure });
                            return;
                        }
                    }
                }
                this.note_reply(None);
                this.dispatch(Event::DocumentsRead { unit_id, documents });
            }),
            Command::Reject { unit_id } => spawn_local(async move {
                this.report_storage(this.inner.store.discard_unit(&unit_id).await);
            }),
            Command::WakeAt(at) => self.wake_at(at),
            // The engine asks for these only for units whose writes carry base versions and for
            // pulls it runs itself; this driver makes neither yet.
            other @ (Command::RewriteUnit { .. }
            | Command::RecordConflicts { .. }
            | Command::RunPullQuery { .. }
            | Command::ApplyPulledPage(_)) => {
                web_sys::console::warn_1(
                    &format!("counterbook: sync command not handled yet: {other:?}").into(),
                );
            }
        }
    }

    fn report_storage(&self, outcome: Result<(), StorageError>) {
        if let Err(error) = outcome {
            web_sys::console::error_1(&format!("counterbook storage: {error}").into());
            self.inner
                .status
                .update(|s| s.last_error = Some(error.to_string()));
        }
    }

    /// Records whether the server answered at all (any HTTP reply counts).
    fn note_reply(&self, failure: Option<&PushFailure>) {
        let reachable = !matches!(failure, Some(PushFailure::Network(_)));
        self.inner.server_reachable.set(reachable);
    }

    fn publish_status(&self) {
        let leader = self.is_leader();
        let to_dead_letter = |(unit, reason): (&counterbook_sync::Unit, &str)| DeadLetter {
            unit_id: unit.id.clone(),
            label: unit.label.clone(),
            reason: reason.to_owned(),
        };
        let status = if leader {
            let outbox = self.inner.outbox.borrow();
            let engine = outbox.status();
            SyncStatus {
                browser_online: browser_online(),
                leader,
                server_reachable: self.inner.server_reachable.get(),
                pending: engine.pending,
                dead_letters: outbox
                    .dead_letters()
                    .into_iter()
                    .map(to_dead_letter)
                    .collect(),
                paused_for_sign_in: engine.paused_for_sign_in,
                last_error: engine
                    .last_error
                    .or_else(|| self.inner.pull_error.borrow().clone()),
                last_pull_millis: self.inner.last_pull_millis.get(),
            }
        } else {
            // A follower shows the outbox as the store holds it; the leader tab syncs it.
            let stored = self.inner.stored_outbox.borrow();
            SyncStatus {
                browser_online: browser_online(),
                leader,
                server_reachable: true,
                pending: stored.pending.len(),
                dead_letters: stored
                    .dead_letters
                    .iter()
                    .map(|(unit, reason)| to_dead_letter((unit, reason.as_str())))
                    .collect(),
                paused_for_sign_in: false,
                last_error: None,
                last_pull_millis: None,
            }
        };
        if self.inner.status.get_untracked() != status {
            self.inner.status.set(status);
        }
    }

    fn wake_at(&self, at: i64) {
        let Some(window) = web_sys::window() else {
            return;
        };
        if let Some(previous) = self.inner.wake_timer.take() {
            window.clear_timeout_with_handle(previous);
        }
        let this = self.clone();
        let delay = (at - now_millis()).clamp(0, i64::from(i32::MAX)) as i32;
        let callback = Closure::once_into_js(move || {
            this.inner.wake_timer.set(None);
            this.dispatch(Event::Tick);
        });
        let handle = window
            .set_timeout_with_callback_and_timeout_and_arguments_0(callback.unchecked_ref(), delay)
            .ok();
        self.inner.wake_timer.set(handle);
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
                this.dispatch(Event::Online(online));
                if online {
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
                if page_visible() {
                    this.dispatch(Event::Tick);
                    this.pull_soon();
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
            this.pull_soon();
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

    /// Starts a pull unless one is running, the page is hidden or the browser is offline.
    fn pull_soon(&self) {
        if !self.is_leader()
            || !page_visible()
            || !browser_online()
            || self.inner.pulling.replace(true)
        {
            return;
        }
        let this = self.clone();
        spawn_local(async move {
            let outcome = this.pull_products().await;
            this.inner.pulling.set(false);
            match outcome {
                Ok(()) => {
                    let was_unreachable = !this.inner.server_reachable.replace(true);
                    this.inner.last_pull_millis.set(Some(now_millis()));
                    if was_unreachable {
                        this.dispatch(Event::ServerReachable);
                    }
                }
                Err(PullError::Remote(failure)) => {
                    this.note_reply(Some(&failure));
                    *this.inner.pull_error.borrow_mut() =
                        Some(format!("pull failed: {}", failure.describe()));
                }
                Err(PullError::Storage(error)) => {
                    *this.inner.pull_error.borrow_mut() = Some(error.to_string());
                }
            }
            this.publish_status();
        });
    }

    /// Pulls every page of products changed since the checkpoint, each page and its checkpoint
    /// applied in one transaction.
    async fn pull_products(&self) -> Result<(), PullError> {
        let store = &self.inner.store;
        let parent = format!("shops/{}", self.inner.settings.shop_id);
        let mut skipped: Vec<String> = Vec::new();
        loop {
            let checkpoint = store
                .checkpoint("products")
                .await
                .map_err(PullError::Storage)?;
            let query = pull_query("products", checkpoint.as_ref(), PULL_PAGE_SIZE);
            let page = self
                .inner
                .remote
                .run_query(&parent, &query)
                .await
                .map_err(PullError::Remote)?;
            let Some(next_checkpoint) = checkpoint_after(&page) else {
                break;
            };
            let mut upserts = Vec::new();
            let mut deleted_ids = Vec::new();
            let bases: Vec<BaseCopy> = page.iter().filter_map(base_copy_of).collect();
            for document in &page {
                match Product::from_document(document) {
                    Ok(product) if Product::is_deleted(document) => deleted_ids.push(product.id),
                    Ok(product) => upserts.push(product),
                    // A document this version cannot read is skipped (and reported) rather
                    // than blocking every later change behind it.
                    Err(invalid) => skipped.push(invalid.to_string()),
                }
            }
            store
                .apply_pulled_products(&upserts, &deleted_ids, &bases, &next_checkpoint)
                .await
                .map_err(PullError::Storage)?;
            self.refresh_products().await;
            self.tell_other_tabs(TabMessage::DataChanged);
            if (page.len() as i32) < PULL_PAGE_SIZE {
                break;
            }
        }
        *self.inner.pull_error.borrow_mut() = match skipped.as_slice() {
            [] => None,
            [first, ..] => Some(format!(
                "skipped {} unreadable product document(s); first: {first}",
                skipped.len()
            )),
        };
        Ok(())
    }

    async fn refresh_products(&self) {
        match self.inner.store.products().await {
            Ok(products) => self.inner.products.set(products),
            Err(error) => self.report_storage(Err(error)),
        }
    }
}

/// The base copy of a pulled document: its fields as the server has them, keyed by the path
/// below the database root.
fn base_copy_of(document: &counterbook_firestore_wire::Document) -> Option<BaseCopy> {
    let name = counterbook_firestore_wire::DocumentName::parse(&document.name).ok()?;
    Some(BaseCopy {
        path: name.relative_path(),
        fields: document.fields.clone(),
        update_time_micros: document.update_time?.to_unix_micros(),
    })
}
