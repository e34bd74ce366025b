//! The sync engine's moving parts, loaded apart from the app shell: the [`Outbox`] engine's
//! commands (commits and their markers, re-reads, dead letters), the [`Listener`] and the
//! pulls of `counterbook-sync`, the Listen channel ([`ListenChannel`]), the REST client
//! ([`Remote`]) and the store's path for server documents (pulled pages, snapshots, re-reads,
//! conflicts).
//!
//! A sale never needs any of it: every action is stored in IndexedDB first, as a unit in the
//! outbox, by the shell's [`SyncDriver`]. So the shell reaches this code only through one
//! [`SyncMachinery`] trait object, made by one split point, [`sync_engine`]: in the release app
//! (cargo feature `split`) its code and whatever only it reaches move into a wasm module of
//! their own, which the driver starts loading as soon as the app starts, in parallel with the
//! counter (see [`crate::ui::lazy`] for how a split point is built; without the feature it is a
//! plain call). The driver leads the tabs once it holds the leader lock and the engine is
//! there; until then units wait in the outbox, and the badge says "Starting sync".
//!
//! The engine keeps its own state (the sans-IO machines, the timers, the pulls under way) and
//! uses the shell's for what every page shares: the store, the people's sessions, the status
//! signal, the tabs.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use counterbook_firestore_wire::{Code, Document, TargetKind, Timestamp, Value};
use counterbook_shop::actions::{APPROVED_BY_FIELD, AUDIT_COLLECTION};
use counterbook_shop::Bill;
use counterbook_sync::sorted_map::SortedMap;
use counterbook_sync::{
    target_key, ChangeKind, Command, ConflictEntry, DeadLetterReason, DocumentChange, Event,
    FieldPath, ListenCommand, ListenConfig, ListenEvent, Listener, Operator, Outbox, OutboxConfig,
    OutboxStatus, PullQueryId, PullReason, PushFailure, QueryBuilder, QueryError, TargetSlot, Unit,
    UnitState, DEVICES_COLLECTION, UPDATED_AT,
};
use futures::future::LocalBoxFuture;
use leptos::task::spawn_local;

use crate::storage::{OutboxContents, PreparedDocuments, StorageError};
use crate::sync::driver::{
    browser_online, log_event, now_millis, page_visible, schedule_once, DeadLetter, FetchError,
    LastProblem, SyncDriver, SCREEN_COLLECTION,
};
use crate::sync::listen_channel::{ChannelEvent, ChannelTarget, ListenChannel};
use crate::sync::remote::Remote;
use crate::sync::tabs::TabMessage;

/// How long a hidden leader tab keeps its listen stream (a quick app switch keeps it).
const LISTEN_HIDDEN_GRACE_MILLIS: i64 = 2_000;
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
/// The most pages kept prepared at once: each pull has at most one being stored and one
/// waiting, and replies to a pull that stopped are dropped from the oldest.
const MOST_PREPARED_PAGES: usize = 2 * KEPT_COLLECTIONS.len();

/// What the shell asks of the sync engine. Every method but [`SyncMachinery::status`] and the
/// two reads returns at once (the work goes on in tasks); outside a leading tab the engine's
/// machines stay empty and the calls that feed them do nothing.
pub trait SyncMachinery {
    /// This tab leads now: a fresh engine loaded with the outbox as the store holds it, then
    /// push, and in a page pull and listen. Resolves once the outbox is loaded (`Err`: it
    /// could not be read, and this tab cannot push).
    fn begin_leading(&self) -> LocalBoxFuture<'static, Result<(), StorageError>>;
    /// The outbox as the store holds it, decoded whole (what a follower lists).
    fn stored_outbox(&self) -> LocalBoxFuture<'static, Result<OutboxContents, StorageError>>;
    /// This tab no longer leads: the machines are emptied, the stream and timers stop.
    fn stop_leading(&self);
    /// A unit just saved in the store, to be sent.
    fn local_write(&self, unit: Unit);
    /// Another tab changed the outbox in the store: new units, dead letters retried or
    /// discarded there.
    fn adopt_outbox_changes(&self);
    fn retry_dead_letter(&self, unit_id: String);
    /// Removes a dead letter from the store, then from the engine.
    fn discard_dead_letter(&self, unit_id: String);
    /// These senders' requests carry a good token again (`None`: the units naming nobody);
    /// the listener goes on, and with `pull` a pull catches up.
    fn signed_in(&self, senders: Vec<Option<String>>, pull: bool);
    /// The browser's `online`/`offline` event.
    fn browser_online(&self, online: bool);
    /// The page became visible or hidden.
    fn page_visible(&self, visible: bool);
    /// The slow timer, in case a wake-up was missed.
    fn tick(&self);
    /// The periodic pull's timer: a pull when listening does not deliver.
    fn pull_interval(&self);
    /// The open page shows `collection` now (the shell has noted it).
    fn follow_screen(&self, collection: Option<String>);
    /// What the engine holds, for the status the shell publishes.
    fn status(&self) -> EngineStatus;
    /// Reads the bill at `path` from the server now (`Ok(None)`: it has none) and stores it as
    /// the server has it (its base copy moves on, pending units are laid over it).
    fn read_server_bill(
        &self,
        path: String,
    ) -> LocalBoxFuture<'static, Result<Option<Bill>, FetchError>>;
}

/// The engine's side of the sync status.
#[derive(Clone, Debug)]
pub struct EngineStatus {
    pub outbox: OutboxStatus,
    /// Units the server confirmed whose outbox records are still being deleted (still
    /// pending, for the badge).
    pub finishing: usize,
    pub dead_letters: Vec<DeadLetter>,
    pub last_push_millis: Option<i64>,
    pub last_pull_millis: Option<i64>,
    /// The listen stream delivers changes as they happen.
    pub realtime: bool,
}

/// The engine's module could not be fetched or instantiated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineNotLoaded;

#[cfg(feature = "split")]
impl From<wasm_split_helpers::SplitLoaderError> for EngineNotLoaded {
    fn from(_: wasm_split_helpers::SplitLoaderError) -> Self {
        EngineNotLoaded
    }
}

/// The sync engine for `shell`: the one way into this module's code (a split point).
#[cfg_attr(
    feature = "split",
    wasm_split_helpers::wasm_split(sync_engine, fallible)
)]
pub fn sync_engine(shell: SyncDriver) -> Result<Rc<dyn SyncMachinery>, EngineNotLoaded> {
    Ok(Rc::new(Engine::new(shell)))
}

/// Why a listen target could not be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
enum TargetError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("the listen query is not valid: {0}")]
    Query(#[from] QueryError),
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

struct EngineInner {
    shell: SyncDriver,
    remote: Remote,
    /// The outbox engine; only the leader tab feeds it.
    outbox: RefCell<Outbox>,
    outbox_config: OutboxConfig,
    /// Units the server confirmed whose outbox records are still being deleted.
    finishing: RefCell<std::collections::BTreeSet<String>>,
    last_pull_millis: Cell<Option<i64>>,
    last_push_millis: Cell<Option<i64>>,
    /// When battery saver last pulled on its timer.
    last_periodic_pull_millis: Cell<Option<i64>>,
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
    /// until the first pull reaches the end (see [`Engine::screen_target`]).
    screen_waits_for_pull: Cell<bool>,
    /// Collections whose pull ran to the end since this tab began leading.
    pulled_to_end: RefCell<std::collections::BTreeSet<String>>,
    /// Pulled pages prepared for the store as their replies came (while the page before was
    /// being stored), by the query they answered; taken when the engine has them stored.
    /// Each with its collection.
    prepared_pages: RefCell<SortedMap<PullQueryId, (String, PreparedDocuments)>>,
}

/// The engine; cheap to clone (its tasks hold clones).
#[derive(Clone)]
struct Engine {
    inner: Rc<EngineInner>,
}

impl Engine {
    fn new(shell: SyncDriver) -> Engine {
        let settings = shell.settings().clone();
        let device_id = shell.device_id().to_owned();
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
        let bearer = shell.sessions().bearer();
        let inner = Rc::new_cyclic(|engine: &Weak<EngineInner>| {
            // The channel's callback holds the engine weakly: the engine owns the channel.
            let events_to = engine.clone();
            let channel_to_server = ListenChannel::new(
                ChannelTarget {
                    endpoint: settings.endpoint.clone(),
                    database: listen_config.database.clone(),
                    bearer: bearer.clone(),
                },
                move |event| {
                    if let Some(inner) = events_to.upgrade() {
                        Engine { inner }.on_channel_event(event);
                    }
                },
            );
            EngineInner {
                remote: Remote::new(&settings.endpoint, &settings.project, bearer),
                outbox: RefCell::new(Outbox::new(config.clone())),
                outbox_config: config,
                finishing: RefCell::new(std::collections::BTreeSet::new()),
                last_pull_millis: Cell::new(None),
                last_push_millis: Cell::new(None),
                // Leading starts with a pull; the timer's first one comes a period later.
                last_periodic_pull_millis: Cell::new(Some(now_millis())),
                wake_timer: Cell::new(None),
                listener: RefCell::new(Listener::new(listen_config.clone())),
                listen_config,
                channel_to_server,
                listen_timer: Cell::new(None),
                listener_pulls: RefCell::new(SortedMap::new()),
                screen_waits_for_pull: Cell::new(false),
                pulled_to_end: RefCell::new(std::collections::BTreeSet::new()),
                prepared_pages: RefCell::new(SortedMap::new()),
                shell,
            }
        });
        Engine { inner }
    }

    fn shell(&self) -> &SyncDriver {
        &self.inner.shell
    }

    fn is_leader(&self) -> bool {
        self.shell().is_leader()
    }

    fn in_background(&self) -> bool {
        self.shell().in_background()
    }

    fn publish_status(&self) {
        self.shell().publish_status();
    }

    fn report_problem(&self, problem: LastProblem) {
        self.shell().report_problem(problem);
    }

    fn report_storage_error(&self, error: StorageError) {
        self.shell().report_storage_error(error);
    }

    fn report_storage(&self, outcome: Result<(), StorageError>) {
        self.shell().report_storage(outcome);
    }

    fn tell_other_tabs(&self, message: TabMessage) {
        self.shell().tell_other_tabs(message);
    }

    fn ask_for_background_sync_if_cut_off(&self) {
        self.shell().ask_for_background_sync_if_cut_off();
    }

    async fn refresh_conflicts(&self) {
        self.shell().refresh_conflicts().await;
    }

    /// This tab no longer leads: empty machines, no stream, no timers.
    fn stop(&self) {
        *self.inner.outbox.borrow_mut() = Outbox::new(self.inner.outbox_config.clone());
        self.inner.pulled_to_end.borrow_mut().clear();
        *self.inner.listener.borrow_mut() = Listener::new(self.inner.listen_config.clone());
        self.inner.channel_to_server.close();
        for timer in [&self.inner.wake_timer, &self.inner.listen_timer] {
            if let Some(timer) = timer.take() {
                crate::global_scope::clear_timeout(timer);
            }
        }
    }

    /// Becoming the leader with the outbox as the store holds it: a fresh engine loaded with
    /// it, then push and pull (in a page; the service worker only pushes).
    fn begin(&self, contents: OutboxContents) {
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
        let this = self.clone();
        spawn_local(async move { this.begin_listening().await });
    }

    /// The listen target of a whole collection of the shop.
    fn collection_target(&self, collection: &str) -> Result<TargetKind, QueryError> {
        let parent = format!(
            "{}/documents/shops/{}",
            self.inner.listen_config.database,
            self.shell().settings().shop_id
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
    /// ([`Engine::watch_screen_after_pull`]). A collection still without a checkpoint after
    /// a pull to the end is empty on the server, so the whole collection is the target.
    async fn screen_target(&self, collection: &str) -> Result<Option<TargetKind>, TargetError> {
        let Some(checkpoint) = self.shell().store().checkpoint(collection).await? else {
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
            self.inner.listen_config.database,
            self.shell().settings().shop_id
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

    /// Watches the screen's collection (see [`Engine::screen_target`]), or waits for its
    /// first pull, which this starts.
    async fn watch_screen(&self, collection: String) {
        let target = match self.screen_target(&collection).await {
            Ok(target) => target,
            Err(TargetError::Storage(error)) => return self.report_storage_error(error),
            Err(error) => return self.report_problem(LastProblem::Listen(error.to_string())),
        };
        // The page may have changed meanwhile.
        if self.shell().inner.screen_collection.borrow().as_deref() != Some(collection.as_str()) {
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
        if let Err(error) = self
            .shell()
            .store()
            .forget_resume_tokens_except(&kept)
            .await
        {
            self.report_storage(Err(error));
        }
        self.watch_resuming(TargetSlot::Screen, target).await;
    }

    /// Watches `target` in `slot` from its saved resume token (none if it cannot be read).
    async fn watch_resuming(&self, slot: TargetSlot, target: TargetKind) {
        let resume_token = match self
            .shell()
            .store()
            .resume_token(&target_key(&target))
            .await
        {
            Ok(token) => token,
            Err(error) => {
                self.report_storage(Err(error));
                None
            }
        };
        self.listen(ListenEvent::Watch {
            slot,
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
            && self.shell().inner.screen_collection.borrow().as_deref() == Some(collection);
        if waits && self.is_leader() {
            self.inner.screen_waits_for_pull.set(false);
            let this = self.clone();
            let collection = collection.to_owned();
            spawn_local(async move { this.watch_screen(collection).await });
        }
    }

    /// The open page shows `collection` (`None`: no collection; the shell has noted it as the
    /// screen's): the listener's screen target follows it. Other collections still arrive by
    /// the pulls the `devices` target triggers.
    fn follow_screen(&self, collection: Option<String>) {
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
        self.listen(ListenEvent::Enabled(self.shell().settings().listens()));
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
        self.watch_resuming(TargetSlot::Devices, devices).await;
        let screen = self.shell().inner.screen_collection.borrow().clone();
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
                    self.shell().sessions().token_refused(None);
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
                        .shell()
                        .store()
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
            .shell()
            .store()
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
            match this.shell().store().checkpoint(&collection).await {
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

    /// The leader brings its engine in line with outbox changes another tab made in the store:
    /// new units, and dead letters retried or discarded there.
    async fn adopt_outbox_changes(&self) {
        let contents = match self.shell().store().outbox().await {
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

    /// Reads documents from the server and shows them (their base copies move on too).
    async fn refresh_documents(&self, paths: Vec<String>) {
        // One request for the whole unit (an import's unit names hundreds of documents).
        let documents = match self.inner.remote.batch_get(&paths).await {
            Ok(documents) => documents,
            // The next pull brings them instead.
            Err(_) => return self.pull_soon(),
        };
        let outcome = self
            .shell()
            .store()
            .apply_server_documents(&documents)
            .await;
        self.report_storage(outcome);
    }

    /// Reads one document from the server now (`Ok(None)`: it has none), for a screen that
    /// needs a document this tablet does not keep, such as another tablet's bill.
    /// `FetchError::Offline` without asking when the browser is offline.
    async fn fetch_document(&self, path: &str) -> Result<Option<Document>, FetchError> {
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
                    let unit = this
                        .shell()
                        .store()
                        .pending_unit(&unit_id)
                        .await
                        .ok()
                        .flatten();
                    // If this fails the unit is loaded again next start; its marker makes the
                    // resend harmless, so the only cost is one extra request.
                    this.report_storage(this.shell().store().mark_unit_done(&unit_id).await);
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
                    .shell()
                    .store()
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
                let outcome = this.shell().store().set_dead_letter(&unit_id, None).await;
                this.report_storage(outcome.map(|_| ()));
                this.tell_other_tabs(TabMessage::OutboxChanged);
            }),
            Command::Discard { unit_id } => spawn_local(async move {
                this.report_storage(this.shell().store().discard_unit(&unit_id).await);
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
                this.report_storage(this.shell().store().reject_unit(&unit_id).await);
                this.tell_other_tabs(TabMessage::OutboxChanged);
            }),
            Command::RewriteUnit { unit } => spawn_local(async move {
                this.report_storage(this.shell().store().rewrite_unit(&unit).await);
            }),
            Command::RecordConflicts { entries } => spawn_local(async move {
                this.report_storage(this.shell().store().add_conflicts(&entries).await);
                this.refresh_conflicts().await;
                this.tell_other_tabs(TabMessage::ConflictsChanged);
            }),
            Command::RunPullQuery {
                collection,
                query_id,
                query,
            } => spawn_local(async move {
                let parent = format!("shops/{}", this.shell().settings().shop_id);
                let event = match this.inner.remote.run_query(&parent, &query).await {
                    Ok(reply) => {
                        this.inner.last_pull_millis.set(Some(now_millis()));
                        let was_unreachable = !this.shell().inner.server_reachable.replace(true);
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
                    Some(prepared) => {
                        this.shell()
                            .store()
                            .apply_prepared_page(&page, prepared)
                            .await
                    }
                    None => this.shell().store().apply_pulled_page(&page).await,
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

    /// Records whether the server answered at all (any HTTP reply counts), and whether it
    /// took the token of `sent_as` (`None`: the tablet's token).
    fn note_reply(&self, failure: Option<&PushFailure>, sent_as: Option<&str>) {
        let reachable = !matches!(failure, Some(PushFailure::Network(_)));
        self.shell().inner.server_reachable.set(reachable);
        if !reachable {
            if let Some(run) = &self.shell().inner.background {
                run.unreachable.set(true);
            } else if self.inner.outbox.borrow().status().pending > 0 {
                self.ask_for_background_sync_if_cut_off();
            }
        }
        match failure {
            None => self.shell().sessions().request_accepted(sent_as),
            Some(PushFailure::Server {
                code: Code::Unauthenticated,
                ..
            }) => self.shell().sessions().token_refused(sent_as),
            Some(_) => {}
        }
    }

    /// Whose sign-in sends the unit `unit_id` (and the commit it leads, `request`): the sender
    /// it names, or for a unit stored before units named one, the approver its audit entry
    /// names (the server requires `approvedBy` to be the writer).
    /// The token a unit of `sender` goes with, or, when that person's sign-in has ended, what
    /// the backend would answer to a token that no longer works (the unit then waits).
    async fn token_of(&self, sender: Option<&str>) -> Result<Option<String>, PushFailure> {
        self.shell()
            .sessions()
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

    fn wake_at(&self, at: i64) {
        let this = self.clone();
        schedule_once(&self.inner.wake_timer, at, move || {
            this.inner.wake_timer.set(None);
            this.dispatch(Event::Tick);
        });
    }

    /// Whether the periodic pull should run now: on every tick normally, but only every
    /// `battery_saver_minutes` in battery saver (pulls on becoming visible are not counted).
    fn periodic_pull_due(&self) -> bool {
        let settings = &self.shell().settings();
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
            match this.shell().store().checkpoint(&collection).await {
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

impl SyncMachinery for Engine {
    fn begin_leading(&self) -> LocalBoxFuture<'static, Result<(), StorageError>> {
        let this = self.clone();
        Box::pin(async move {
            let contents = this.shell().store().outbox().await?;
            this.begin(contents);
            Ok(())
        })
    }

    fn stored_outbox(&self) -> LocalBoxFuture<'static, Result<OutboxContents, StorageError>> {
        let this = self.clone();
        Box::pin(async move { this.shell().store().outbox().await })
    }

    fn stop_leading(&self) {
        self.stop();
    }

    fn local_write(&self, unit: Unit) {
        self.dispatch(Event::LocalWrite(unit));
    }

    fn adopt_outbox_changes(&self) {
        let this = self.clone();
        spawn_local(async move { this.adopt_outbox_changes().await });
    }

    fn retry_dead_letter(&self, unit_id: String) {
        self.dispatch(Event::RetryDeadLetter { unit_id });
    }

    fn discard_dead_letter(&self, unit_id: String) {
        // The store first: once the screen stops listing it, it is gone for good, even if
        // the page reloads at once. The engine's own `Discard` then deletes nothing.
        let this = self.clone();
        spawn_local(async move {
            let outcome = this.shell().store().discard_unit(&unit_id).await;
            this.report_storage(outcome);
            this.dispatch(Event::DiscardDeadLetter { unit_id });
        });
    }

    fn signed_in(&self, senders: Vec<Option<String>>, pull: bool) {
        for sender in senders {
            self.dispatch(Event::SignedIn { sender });
        }
        self.listen(ListenEvent::SignedIn);
        if pull {
            self.pull_soon();
        }
    }

    fn browser_online(&self, online: bool) {
        self.dispatch(Event::Online(online));
        self.listen(ListenEvent::Online(online));
        if online && !self.listening_healthy() {
            self.pull_soon();
        }
    }

    fn page_visible(&self, visible: bool) {
        self.listen(ListenEvent::Visible(visible));
        if visible {
            self.dispatch(Event::Tick);
            // Listening, the listener's own catch-up pull covers the time away.
            if !self.shell().settings().listens() {
                self.pull_soon();
            }
        }
    }

    fn tick(&self) {
        self.dispatch(Event::Tick);
    }

    fn pull_interval(&self) {
        if !self.listening_healthy() && self.periodic_pull_due() {
            self.pull_soon();
        }
    }

    fn follow_screen(&self, collection: Option<String>) {
        Engine::follow_screen(self, collection);
    }

    fn status(&self) -> EngineStatus {
        let outbox = self.inner.outbox.borrow();
        EngineStatus {
            outbox: outbox.status(),
            finishing: self.inner.finishing.borrow().len(),
            dead_letters: outbox
                .dead_letters()
                .into_iter()
                .map(|(unit, reason): (&Unit, &DeadLetterReason)| DeadLetter {
                    unit_id: unit.id.clone(),
                    label: unit.label.clone(),
                    reason: reason.clone(),
                })
                .collect(),
            last_push_millis: self.inner.last_push_millis.get(),
            last_pull_millis: self.inner.last_pull_millis.get(),
            realtime: self.listening_healthy(),
        }
    }

    fn read_server_bill(
        &self,
        path: String,
    ) -> LocalBoxFuture<'static, Result<Option<Bill>, FetchError>> {
        let this = self.clone();
        Box::pin(async move {
            let Some(document) = this.fetch_document(&path).await? else {
                return Ok(None);
            };
            let bill = Bill::from_document(&document)
                .map_err(|invalid| FetchError::Server(invalid.reason))?;
            this.shell()
                .store()
                .apply_server_documents(std::slice::from_ref(&document))
                .await
                .map_err(FetchError::Storage)?;
            Ok(Some(bill))
        })
    }
}
