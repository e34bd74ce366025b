//! WebChannel (Closure's BrowserChannel, protocol version 8): the transport the Firebase JS SDK
//! uses for Firestore's streams, Listen (`listen`) and Write (`write_stream`), at
//! `/google.firestore.v1.Firestore/{Listen,Write}/channel`.
//!
//! A channel is a session (`SID`) made of plain HTTP requests, as `webchannel-capture.md` beside
//! DESIGN.md shows the SDK and Google's emulator exchanging:
//! - the opening `POST` (no `SID`) carries a form: `count`, `ofs`, `req{i}___data__` (one JSON
//!   request message each) and `headers` (`Name:value` lines, where the SDK puts
//!   `Authorization: Bearer …`); it answers `<length>\n[[0,["c","<SID>","",8,12,30000]]]`;
//! - the back channel is a streaming `GET` with `RID=rpc&SID=…&AID=<last array id seen>`: frames
//!   `<length>\n[[<array id>,[<message>]],…]`, a `"noop"` when it opens and after
//!   `HEARTBEAT` of silence (the client gives up on a silent back channel after 1.5 × 30 s). It
//!   ends after `BACK_CHANNEL_LIFETIME`, as the emulator's does after 60 s, and the client opens
//!   the next one with the same `SID`; messages it has not acknowledged (`AID`) are sent again;
//! - later client messages come in `POST`s with `SID`; each map has a number (`ofs` + index),
//!   so a retried `POST` is not applied twice; the answer is `[<back channel open: 1/0>,
//!   <last array id>, <unsent bytes>]`, length-prefixed;
//! - a stream that ends normally sends `"close"`; one that fails sends `{"error": <google.rpc.Status>}`
//!   (the SDK closes the stream with that status) and the back channel ends after it;
//! - `TYPE=terminate` (a `POST`, or a `GET` image beacon) ends the session; an unknown or ended
//!   `SID` answers 400 `Unknown SID` (the emulator answers 400 with an empty body; the text is
//!   what Google's production front end sends and what the client recognises).
//!
//! Frame lengths are counted by the client in UTF-16 code units of the decoded text; every JSON
//! message here is written with non-ASCII characters escaped, so bytes and code units agree.
//!
//! Sessions live in memory (`ChannelSessions`, a std `Mutex<HashMap>`: nothing is awaited while
//! it is held). A server restart drops them; the client then gets `Unknown SID`, opens a new
//! channel and resumes its targets with their resume tokens. Their number (in all, per user and
//! per shop), idle time, age and unacknowledged output (per session and in all: an
//! `OutputBudget` shared by every session) are bounded (`ChannelLimits`). The opening request's
//! form is read only up to `max_form_bytes`, and its token is checked before its requests are
//! parsed or a session exists (`auth::authenticate_stream`): an open without a valid token is
//! answered 401 at once. A forward `POST` names a live session before its form is read. The
//! queue of client messages a session's stream has not taken yet is bounded too
//! (`ChannelStream::REQUEST_QUEUE_LENGTH`: a forward `POST` waits for room), and a session reads
//! one forward `POST` at a time (as the client sends them; another waits, its body unread).
//!
//! What the messages mean is not this module's business: a stream (`ChannelStream`,
//! implemented by `listen::ListenStream` and `write_stream::WriteStream`) parses each client
//! message, gets the parsed messages of its session in order, and pushes what it says into the
//! session's `Outbox`. `router::<S>(path)` serves one stream's channel at `path`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use counterbook_firestore_wire::Status;
use futures_util::future::BoxFuture;
use percent_encoding::percent_decode_str;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::auth::policy::Principal;
use crate::error::ServerError;
use crate::store::DatabaseId;
use crate::AppState;

/// The only protocol version spoken (`VER=8`).
const PROTOCOL_VERSION: &str = "8";

/// Client messages a session's stream may have waiting unless the stream says otherwise; a
/// forward `POST` with more waits until the stream has taken some.
pub const DEFAULT_REQUEST_QUEUE_LENGTH: usize = 64;

/// A Firestore stream served over this transport: how its client messages are parsed, and the
/// task that serves a new session.
pub trait ChannelStream: 'static {
    /// One parsed client message.
    type Request: Send + 'static;
    /// The stream's name in errors (`Listen`, `Write`).
    const NAME: &'static str;
    /// Parsed client messages that may wait for the stream's task.
    const REQUEST_QUEUE_LENGTH: usize = DEFAULT_REQUEST_QUEUE_LENGTH;
    /// Parses one client message (a `req{i}___data__` field); an error refuses the whole
    /// forward request with that error, before anything in it is delivered.
    fn parse_request(text: &str) -> Result<Self::Request, ServerError>;
    /// The largest form a forward `POST` on an open session may carry (an opening `POST` is
    /// bounded by `ChannelLimits::max_form_bytes`, before its token is checked).
    fn max_forward_form_bytes(limits: &ChannelLimits) -> usize {
        limits.max_form_bytes
    }
    /// Starts serving a session just opened: its first messages are already in
    /// `session.requests`. The stream ends the session by closing its outbox (or the session
    /// expires); `session.requests` ends when the session is dropped.
    fn start(state: AppState, session: OpenedSession<Self::Request>);
}

/// What a stream gets of a new session.
pub struct OpenedSession<Request> {
    /// The `SID`.
    pub id: String,
    /// The `database` of the opening request.
    pub database: DatabaseId,
    /// Where the stream's messages go.
    pub outbox: Arc<Outbox>,
    /// The client's messages, in order, each once.
    pub requests: mpsc::Receiver<Request>,
    /// Who opened it (`None` in dev mode), from the token in `headers`.
    pub principal: Option<Principal>,
    /// The opening request's `headers` field (where the SDK sends `Authorization`).
    pub headers: HeaderMap,
}

/// The bounds of the session table and of each session.
#[derive(Clone, Debug)]
pub struct ChannelLimits {
    /// Open sessions at most, of every stream together; a new one beyond this is refused with
    /// 503.
    pub max_sessions: usize,
    /// Open sessions of one signed-in user at most; beyond it 429 `RESOURCE_EXHAUSTED`.
    pub max_sessions_per_user: usize,
    /// Open sessions of one shop's users at most; beyond it 429 `RESOURCE_EXHAUSTED`.
    pub max_sessions_per_shop: usize,
    /// The largest form a channel `POST` may carry; beyond it 413.
    pub max_form_bytes: usize,
    /// A back channel that has said nothing for this long sends a `"noop"`.
    pub heartbeat: Duration,
    /// A back channel response ends after this long; the client opens the next one.
    pub back_channel_lifetime: Duration,
    /// A session with no back channel and no request for this long is dropped.
    pub idle_timeout: Duration,
    /// A session older than this is ended with `UNAVAILABLE` (the client reconnects and resumes,
    /// presenting a fresh ID token).
    pub max_age: Duration,
    /// Output one session's client has not acknowledged, at most; past it the session ends
    /// with `RESOURCE_EXHAUSTED` (the client reconnects and resumes from its resume token).
    pub max_unacknowledged_bytes: usize,
    /// Output not acknowledged by any session, at most, in all. A message that would pass it
    /// first ends the session holding the most, with `RESOURCE_EXHAUSTED`, until it fits.
    pub max_unacknowledged_bytes_total: usize,
}

impl Default for ChannelLimits {
    fn default() -> Self {
        ChannelLimits {
            max_sessions: 1024,
            max_sessions_per_user: 16,
            max_sessions_per_shop: 128,
            max_form_bytes: 1024 * 1024,
            heartbeat: Duration::from_secs(25),
            back_channel_lifetime: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(90),
            max_age: Duration::from_secs(3600),
            max_unacknowledged_bytes: 16 * 1024 * 1024,
            max_unacknowledged_bytes_total: 256 * 1024 * 1024,
        }
    }
}

/// The open sessions of this server.
pub struct ChannelSessions {
    sessions: Mutex<HashMap<String, Session>>,
    limits: ChannelLimits,
    budget: Arc<OutputBudget>,
}

/// Who opened a session: a signed-in user of a shop (`None` in dev mode).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionOwner {
    pub user_id: String,
    pub shop: String,
}

/// One session as the table holds it. Dropping it drops `requests`, which ends the session's
/// stream task.
struct Session {
    outbox: Arc<Outbox>,
    requests: Arc<dyn RequestSink>,
    database: DatabaseId,
    owner: Option<SessionOwner>,
    /// `ChannelStream::NAME` of the stream it was opened on: a session is found only at its own
    /// path.
    stream: &'static str,
    /// One permit: the forward `POST` being read and delivered.
    forward_turn: Arc<tokio::sync::Semaphore>,
}

/// Where the forward channel delivers a session's client messages: parsed by its stream, then
/// queued for the stream's task.
trait RequestSink: Send + Sync {
    /// Parses every message, then queues them in order, waiting for room; nothing is queued if
    /// one does not parse. Messages for a stream that has ended are dropped.
    fn deliver<'a>(&'a self, texts: &'a [&'a str]) -> BoxFuture<'a, Result<(), ServerError>>;
}

/// The `RequestSink` of a stream whose messages parse into `Request`.
struct ParsingSink<Request> {
    parse: fn(&str) -> Result<Request, ServerError>,
    queue: mpsc::Sender<Request>,
}

impl<Request: Send + 'static> RequestSink for ParsingSink<Request> {
    fn deliver<'a>(&'a self, texts: &'a [&'a str]) -> BoxFuture<'a, Result<(), ServerError>> {
        Box::pin(async move {
            let parsed = texts
                .iter()
                .map(|text| (self.parse)(text))
                .collect::<Result<Vec<_>, _>>()?;
            for request in parsed {
                if self.queue.send(request).await.is_err() {
                    // The stream's task has ended; the client learns it on its back channel.
                    break;
                }
            }
            Ok(())
        })
    }
}

impl Default for ChannelSessions {
    fn default() -> Self {
        ChannelSessions::new(ChannelLimits::default())
    }
}

impl ChannelSessions {
    pub fn new(limits: ChannelLimits) -> ChannelSessions {
        ChannelSessions {
            sessions: Mutex::new(HashMap::new()),
            budget: Arc::new(OutputBudget::new(limits.max_unacknowledged_bytes_total)),
            limits,
        }
    }

    /// Output not yet acknowledged by any session's client, in bytes.
    pub fn unacknowledged_bytes_total(&self) -> usize {
        self.budget.used()
    }

    /// Ends every session of `user_id` with `error` (sent to the client first).
    pub fn end_sessions_of_user(&self, user_id: &str, error: &ServerError) {
        let outboxes: Vec<Arc<Outbox>> = self
            .lock()
            .values()
            .filter(|session| {
                session
                    .owner
                    .as_ref()
                    .is_some_and(|owner| owner.user_id == user_id)
            })
            .map(|session| Arc::clone(&session.outbox))
            .collect();
        for outbox in outboxes {
            outbox.push_error_and_close(error);
        }
    }

    pub fn limits(&self) -> &ChannelLimits {
        &self.limits
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        // Nothing panics while the table is held; a poisoned table is still consistent.
        self.sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many sessions are open.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ends a session: its stream's task stops, its back channel ends.
    pub(crate) fn remove(&self, id: &str) {
        if let Some(session) = self.lock().remove(id) {
            session.outbox.close();
        }
    }

    /// A session of `stream`: its outbox, its request sink and its database. An expired session
    /// is dropped here and unknown.
    fn find(&self, stream: &str, id: &str) -> Option<FoundSession> {
        let mut sessions = self.lock();
        if sessions
            .get(id)
            .is_some_and(|session| session.outbox.is_expired(&self.limits))
        {
            if let Some(session) = sessions.remove(id) {
                session.outbox.close();
            }
            return None;
        }
        sessions
            .get(id)
            .filter(|session| session.stream == stream)
            .map(|session| FoundSession {
                outbox: Arc::clone(&session.outbox),
                requests: Arc::clone(&session.requests),
                database: session.database.clone(),
                forward_turn: Arc::clone(&session.forward_turn),
            })
    }

    /// Drops sessions that are closed, idle or too old, then registers a new one if there is
    /// room: in all, for its user and for its shop.
    fn open(
        &self,
        stream: &'static str,
        database: DatabaseId,
        owner: Option<SessionOwner>,
        requests: Arc<dyn RequestSink>,
    ) -> Result<(String, Arc<Outbox>), ServerError> {
        let mut sessions = self.lock();
        sessions.retain(|_, session| !session.outbox.is_expired(&self.limits));
        if sessions.len() >= self.limits.max_sessions {
            return Err(ServerError::Unavailable(format!(
                "too many open channels (at most {}); try again later",
                self.limits.max_sessions
            )));
        }
        if let Some(owner) = &owner {
            let owners = || {
                sessions
                    .values()
                    .filter_map(|session| session.owner.as_ref())
            };
            let of_user = owners()
                .filter(|other| other.user_id == owner.user_id)
                .count();
            if of_user >= self.limits.max_sessions_per_user {
                return Err(ServerError::ResourceExhausted(format!(
                    "this user has {of_user} open channels, the most one user may hold; \
                     close one or try again later"
                )));
            }
            let of_shop = owners().filter(|other| other.shop == owner.shop).count();
            if of_shop >= self.limits.max_sessions_per_shop {
                return Err(ServerError::ResourceExhausted(format!(
                    "this shop has {of_shop} open channels, the most one shop may hold; \
                     close one or try again later"
                )));
            }
        }
        let id = new_session_id();
        let outbox = Outbox::new(
            Arc::clone(&self.budget),
            self.limits.max_unacknowledged_bytes,
        );
        sessions.insert(
            id.clone(),
            Session {
                outbox: Arc::clone(&outbox),
                requests,
                database,
                owner,
                stream,
                forward_turn: Arc::new(tokio::sync::Semaphore::new(1)),
            },
        );
        Ok((id, outbox))
    }
}

/// A session as a request on it sees it.
struct FoundSession {
    outbox: Arc<Outbox>,
    requests: Arc<dyn RequestSink>,
    database: DatabaseId,
    forward_turn: Arc<tokio::sync::Semaphore>,
}

/// 128 random bits, URL-safe base64 (the emulator's ids are standard base64; the client treats
/// them as opaque and escapes them in URLs either way).
fn new_session_id() -> String {
    use base64::Engine;
    let bytes: [u8; 16] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The unacknowledged output of every session together, against one budget. Each session's
/// `Outbox` reserves what it queues here and releases it when acknowledged or dropped. When a
/// reservation does not fit, the session holding the most is ended (its queue freed) until it
/// does: a tenant whose clients do not read loses its sessions, not the other shops theirs.
struct OutputBudget {
    limit: usize,
    used: AtomicUsize,
    /// Every live outbox, to find the one holding the most.
    outboxes: Mutex<Vec<Weak<Outbox>>>,
}

impl OutputBudget {
    fn new(limit: usize) -> OutputBudget {
        OutputBudget {
            limit,
            used: AtomicUsize::new(0),
            outboxes: Mutex::new(Vec::new()),
        }
    }

    fn used(&self) -> usize {
        self.used.load(Ordering::SeqCst)
    }

    fn register(&self, outbox: &Arc<Outbox>) {
        let mut outboxes = self.outboxes.lock().unwrap_or_else(|p| p.into_inner());
        outboxes.retain(|weak| weak.strong_count() > 0);
        outboxes.push(Arc::downgrade(outbox));
    }

    /// Takes `bytes` from the budget if they fit.
    fn try_reserve(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                let after = used.checked_add(bytes)?;
                (after <= self.limit).then_some(after)
            })
            .is_ok()
    }

    fn release(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::SeqCst);
    }

    /// Ends the open session whose client has left the most unacknowledged; whether there was
    /// one to end.
    fn end_the_largest(&self) -> bool {
        let largest = {
            let outboxes = self.outboxes.lock().unwrap_or_else(|p| p.into_inner());
            outboxes
                .iter()
                .filter_map(Weak::upgrade)
                .map(|outbox| (outbox.reserved_bytes(), outbox))
                .filter(|(reserved, _)| *reserved > 0)
                .max_by_key(|(reserved, _)| *reserved)
        };
        match largest {
            Some((_, outbox)) => {
                outbox.end_for_exhaustion(
                    "the server's memory for unacknowledged channel output is full and this \
                     channel held the most of it; reconnect and resume",
                );
                true
            }
            None => false,
        }
    }
}

/// What a session has to send, numbered with array ids, kept until the client acknowledges it.
pub struct Outbox {
    state: Mutex<OutboxState>,
    /// Bumped on every change a back channel may be waiting for.
    changed: watch::Sender<u64>,
    budget: Arc<OutputBudget>,
    max_unacknowledged_bytes: usize,
}

/// What an entry of the outbox reserves from the budget beyond its message: the array id and
/// the brackets around it, at most.
const ENTRY_OVERHEAD_BYTES: usize = 32;

struct OutboxState {
    /// The last array id given out (0 is the handshake).
    last_array_id: u64,
    /// `[<id>,<message>]` texts not yet acknowledged, in id order, with what each reserved
    /// from the budget.
    unacknowledged: VecDeque<(u64, String, usize)>,
    unacknowledged_bytes: usize,
    /// What the unacknowledged entries reserved from the budget in all.
    reserved_bytes: usize,
    /// The highest array id written to some back channel.
    last_written: u64,
    /// The next client map number expected (`ofs` + index); lower ones are retries.
    next_client_map: u64,
    /// The back channel currently attached: its number, if one is open.
    back_channel: Option<u64>,
    back_channels_opened: u64,
    last_activity: Instant,
    created: Instant,
    /// No more output: the back channel ends once it has written what is queued.
    closed: bool,
}

impl Drop for Outbox {
    fn drop(&mut self) {
        let reserved = self.lock().reserved_bytes;
        self.budget.release(reserved);
    }
}

impl Outbox {
    fn new(budget: Arc<OutputBudget>, max_unacknowledged_bytes: usize) -> Arc<Outbox> {
        let now = Instant::now();
        let outbox = Arc::new(Outbox {
            state: Mutex::new(OutboxState {
                last_array_id: 0,
                unacknowledged: VecDeque::new(),
                unacknowledged_bytes: 0,
                reserved_bytes: 0,
                last_written: 0,
                next_client_map: 0,
                back_channel: None,
                back_channels_opened: 0,
                last_activity: now,
                created: now,
                closed: false,
            }),
            changed: watch::channel(0).0,
            budget: Arc::clone(&budget),
            max_unacknowledged_bytes,
        });
        budget.register(&outbox);
        outbox
    }

    fn reserved_bytes(&self) -> usize {
        self.lock().reserved_bytes
    }

    /// Frees everything queued, then queues a `RESOURCE_EXHAUSTED` error (outside the budget:
    /// it is small and the last message) and closes the session.
    fn end_for_exhaustion(&self, message: &str) {
        {
            let mut state = self.lock();
            if state.closed {
                return;
            }
            self.budget.release(state.reserved_bytes);
            state.reserved_bytes = 0;
            state.unacknowledged.clear();
            state.unacknowledged_bytes = 0;
            let status = ServerError::ResourceExhausted(message.to_owned()).to_status();
            let error = ascii_json(&serde_json::json!({ "error": status }));
            state.last_array_id += 1;
            let id = state.last_array_id;
            let entry = format!("[{id},[{error}]]");
            state.unacknowledged_bytes += entry.len();
            state.unacknowledged.push_back((id, entry, 0));
            state.closed = true;
        }
        tracing::info!("a channel ended: {message}");
        self.wake();
    }

    fn lock(&self) -> MutexGuard<'_, OutboxState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn wake(&self) {
        self.changed.send_modify(|version| *version += 1);
    }

    /// Queues one message (the JSON inside the array entry's message list).
    pub(crate) fn push(&self, message: &serde_json::Value) {
        self.push_raw(ascii_json(message));
    }

    fn push_raw(&self, message_json: String) {
        let reserve = message_json.len() + ENTRY_OVERHEAD_BYTES;
        if self.is_closed() {
            return;
        }
        if self.reserved_bytes() + reserve > self.max_unacknowledged_bytes {
            return self.end_for_exhaustion(
                "this channel's client left too much output unacknowledged; reconnect \
                 and resume",
            );
        }
        // Not under this outbox's lock: ending the largest session may pick this one.
        let mut reserved = self.budget.try_reserve(reserve);
        while !reserved && self.budget.end_the_largest() {
            if self.is_closed() {
                return;
            }
            reserved = self.budget.try_reserve(reserve);
        }
        if !reserved {
            return self.end_for_exhaustion(
                "the server's memory for unacknowledged channel output is full; reconnect and \
                 resume",
            );
        }
        {
            let mut state = self.lock();
            if state.closed {
                drop(state);
                self.budget.release(reserve);
                return;
            }
            state.last_array_id += 1;
            let id = state.last_array_id;
            let entry = format!("[{id},[{message_json}]]");
            state.unacknowledged_bytes += entry.len();
            state.reserved_bytes += reserve;
            state.unacknowledged.push_back((id, entry, reserve));
        }
        self.wake();
    }

    /// Queues a `google.rpc.Status` error, which makes the SDK close the stream with that code,
    /// and closes the session after it.
    pub(crate) fn push_error_and_close(&self, error: &ServerError) {
        let status: Status = error.to_status();
        self.push(&serde_json::json!({ "error": status }));
        self.close();
    }

    /// Ends the stream normally: `"close"`, as the emulator ends a Write stream the client
    /// half-closed, then no more output.
    pub(crate) fn push_end_and_close(&self) {
        self.push_raw("\"close\"".into());
        self.close();
    }

    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.wake();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Closed with everything written to a back channel that is gone now, idle without a back
    /// channel, or never acknowledging: the session can be dropped.
    pub(crate) fn is_expired(&self, limits: &ChannelLimits) -> bool {
        let state = self.lock();
        let idle = Instant::now().duration_since(state.last_activity) > limits.idle_timeout;
        // Closed, with everything queued written to a back channel that is gone now.
        let finished = state.closed && state.last_written >= state.last_array_id;
        state.back_channel.is_none() && (finished || idle)
            || state.unacknowledged_bytes > limits.max_unacknowledged_bytes
    }

    /// Older than `max_age`: the session should end (its task closes it with an error first).
    pub(crate) fn is_too_old(&self, limits: &ChannelLimits) -> bool {
        Instant::now().duration_since(self.lock().created) > limits.max_age
    }

    /// The client has every array up to `array_id`.
    fn acknowledge(&self, array_id: u64) {
        let mut state = self.lock();
        let mut released = 0;
        while let Some((id, entry, reserved)) = state.unacknowledged.front() {
            if *id > array_id {
                break;
            }
            let length = entry.len();
            released += *reserved;
            state.unacknowledged_bytes -= length;
            state.unacknowledged.pop_front();
        }
        state.reserved_bytes -= released;
        self.budget.release(released);
        state.last_activity = Instant::now();
    }

    /// Which of the client's maps numbered `first..first + count` are new (not recorded yet).
    fn new_client_maps(&self, first: u64, count: u64) -> std::ops::Range<u64> {
        let state = self.lock();
        let start = first.max(state.next_client_map);
        let end = first.saturating_add(count);
        start..end.max(start)
    }

    /// Which of the client's maps numbered `first..first + count` are new, and records them.
    fn accept_client_maps(&self, first: u64, count: u64) -> std::ops::Range<u64> {
        let mut state = self.lock();
        state.last_activity = Instant::now();
        let start = first.max(state.next_client_map);
        let end = first.saturating_add(count);
        state.next_client_map = state.next_client_map.max(end);
        start..end.max(start)
    }

    /// The forward channel's answer: back channel open, last array id, bytes not yet written.
    fn forward_answer(&self) -> String {
        let state = self.lock();
        let unsent: usize = state
            .unacknowledged
            .iter()
            .filter(|(id, _, _)| *id > state.last_written)
            .map(|(_, entry, _)| entry.len())
            .sum();
        let open = u8::from(state.back_channel.is_some());
        format!("[{open},{},{unsent}]", state.last_array_id)
    }

    fn attach_back_channel(&self) -> u64 {
        let mut state = self.lock();
        state.back_channels_opened += 1;
        let number = state.back_channels_opened;
        state.back_channel = Some(number);
        state.last_activity = Instant::now();
        drop(state);
        // A back channel this one replaces notices and ends.
        self.wake();
        number
    }

    fn detach_back_channel(&self, number: u64) {
        let mut state = self.lock();
        if state.back_channel == Some(number) {
            state.back_channel = None;
        }
        state.last_activity = Instant::now();
    }
}

/// Writes JSON with every non-ASCII character escaped (`\uXXXX`, surrogate pairs above the
/// BMP), so that its byte length is the length the client counts.
fn ascii_json(value: &serde_json::Value) -> String {
    let text = value.to_string();
    if text.is_ascii() {
        return text;
    }
    let mut escaped = String::with_capacity(text.len() + 16);
    for character in text.chars() {
        if character.is_ascii() {
            escaped.push(character);
        } else {
            let mut units = [0u16; 2];
            for unit in character.encode_utf16(&mut units) {
                escaped.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    escaped
}

/// `<length>\n<text>`: the framing of every channel response body.
fn length_prefixed(text: &str) -> String {
    format!("{}\n{text}", text.len())
}

/// The route of stream `S`'s channel at `path`: back channels and terminations (`GET`),
/// opening and forward requests (`POST`).
pub fn router<S: ChannelStream>(path: &str) -> Router<AppState> {
    Router::new().route(path, get(channel_get::<S>).post(channel_post::<S>))
}

/// A channel request's query string: `VER`, `database`, `SID`, `RID`, `AID`, `TYPE`, ….
struct ChannelParameters {
    pairs: Vec<(String, String)>,
}

impl ChannelParameters {
    fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }

    fn number(&self, key: &str) -> Result<Option<u64>, ChannelError> {
        self.get(key)
            .map(|text| {
                text.parse().map_err(|_| {
                    ChannelError::bad_request(format!("{key}={text:?} is not a number"))
                })
            })
            .transpose()
    }
}

/// Decodes `application/x-www-form-urlencoded` text (also query strings).
fn parse_form(text: &str) -> Result<Vec<(String, String)>, ChannelError> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((decode_form_component(name)?, decode_form_component(value)?))
        })
        .collect()
}

fn decode_form_component(text: &str) -> Result<String, ChannelError> {
    let spaced = text.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| ChannelError::bad_request("a form field is not UTF-8 once decoded".into()))
}

/// A channel-level failure: answered with a status and a short text (the protocol's own
/// errors are plain text, as Google's front end sends them), or a Firestore error.
#[derive(Debug)]
enum ChannelError {
    UnknownSession,
    BadRequest(String),
    Firestore(ServerError),
}

impl ChannelError {
    fn bad_request(message: String) -> ChannelError {
        ChannelError::BadRequest(message)
    }
}

impl From<ServerError> for ChannelError {
    fn from(error: ServerError) -> Self {
        ChannelError::Firestore(error)
    }
}

impl IntoResponse for ChannelError {
    fn into_response(self) -> Response {
        match self {
            ChannelError::UnknownSession => {
                text_response(StatusCode::BAD_REQUEST, "Unknown SID".into())
            }
            ChannelError::BadRequest(message) => text_response(StatusCode::BAD_REQUEST, message),
            ChannelError::Firestore(error) => error.into_response(),
        }
    }
}

fn text_response(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=0"),
    );
    response
}

fn parameters_of(request: &Request) -> Result<ChannelParameters, ChannelError> {
    let parameters = ChannelParameters {
        pairs: parse_form(request.uri().query().unwrap_or(""))?,
    };
    match parameters.get("VER") {
        Some(PROTOCOL_VERSION) | None => Ok(parameters),
        Some(other) => Err(ChannelError::bad_request(format!(
            "unsupported WebChannel version VER={other}; this server speaks 8"
        ))),
    }
}

/// `database=projects/P/databases/D`.
fn database_parameter(parameters: &ChannelParameters) -> Result<Option<DatabaseId>, ChannelError> {
    let Some(text) = parameters.get("database") else {
        return Ok(None);
    };
    match text.split('/').collect::<Vec<_>>().as_slice() {
        ["projects", project, "databases", database]
            if !project.is_empty() && !database.is_empty() =>
        {
            Ok(Some(DatabaseId {
                project: (*project).to_owned(),
                database: (*database).to_owned(),
            }))
        }
        _ => Err(ChannelError::Firestore(ServerError::InvalidArgument(
            format!("database={text:?} is not projects/{{project}}/databases/{{database}}"),
        ))),
    }
}

async fn channel_get<S: ChannelStream>(
    State(state): State<AppState>,
    request: Request,
) -> Response {
    match serve_get(S::NAME, state, request) {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn channel_post<S: ChannelStream>(
    State(state): State<AppState>,
    request: Request,
) -> Response {
    match serve_post::<S>(state, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

fn serve_get(stream: &str, state: AppState, request: Request) -> Result<Response, ChannelError> {
    let parameters = parameters_of(&request)?;
    let sessions = state.channels();
    let session_id = parameters.get("SID").ok_or_else(|| {
        ChannelError::bad_request("a back channel needs SID (open the channel with a POST)".into())
    })?;
    if parameters.get("TYPE") == Some("terminate") {
        return terminate(sessions, stream, session_id);
    }
    if parameters.get("RID") != Some("rpc") {
        return Err(ChannelError::bad_request(
            "a GET is a back channel (RID=rpc) or a terminate (TYPE=terminate)".into(),
        ));
    }
    let outbox = sessions
        .find(stream, session_id)
        .ok_or(ChannelError::UnknownSession)?
        .outbox;
    let acknowledged = parameters.number("AID")?.unwrap_or(0);
    outbox.acknowledge(acknowledged);
    let number = outbox.attach_back_channel();
    let stream = back_channel_stream(
        outbox,
        number,
        acknowledged,
        sessions.limits().heartbeat,
        sessions.limits().back_channel_lifetime,
    );
    let mut response = text_response(StatusCode::OK, String::new());
    *response.body_mut() = Body::from_stream(stream);
    Ok(response)
}

fn terminate(
    sessions: &ChannelSessions,
    stream: &str,
    session_id: &str,
) -> Result<Response, ChannelError> {
    if sessions.find(stream, session_id).is_none() {
        return Err(ChannelError::UnknownSession);
    }
    sessions.remove(session_id);
    Ok(text_response(StatusCode::OK, String::new()))
}

async fn serve_post<S: ChannelStream>(
    state: AppState,
    request: Request,
) -> Result<Response, ChannelError> {
    let parameters = parameters_of(&request)?;
    let sessions = state.channels();
    // A forward request names a live session of this stream before its form is read.
    let session = match parameters.get("SID") {
        None => None,
        Some(session_id) => Some(
            sessions
                .find(S::NAME, session_id)
                .ok_or(ChannelError::UnknownSession)?,
        ),
    };
    let form_limit = match session {
        None => sessions.limits().max_form_bytes,
        Some(_) => S::max_forward_form_bytes(sessions.limits()),
    };
    // One forward request of a session at a time is read and delivered; a terminate need not
    // wait for its turn.
    let _forward_turn = match &session {
        Some(session) if parameters.get("TYPE") != Some("terminate") => Some(
            Arc::clone(&session.forward_turn)
                .acquire_owned()
                .await
                .map_err(|_| ChannelError::UnknownSession)?,
        ),
        _ => None,
    };
    let body = axum::body::to_bytes(request.into_body(), form_limit)
        .await
        .map_err(|_| {
            ChannelError::Firestore(ServerError::PayloadTooLarge {
                limit_bytes: form_limit,
            })
        })?;
    let body = std::str::from_utf8(&body)
        .map_err(|_| ChannelError::bad_request("the form body is not UTF-8".into()))?;
    let form = ClientMaps::parse(body)?;
    let (Some(session_id), Some(session)) = (parameters.get("SID"), session) else {
        let database = database_parameter(&parameters)?.ok_or_else(|| {
            ChannelError::Firestore(ServerError::InvalidArgument(format!(
                "opening a {} channel needs database=projects/{{project}}/databases/{{database}}",
                S::NAME
            )))
        })?;
        return open_session::<S>(&state, database, form).await;
    };
    if parameters.get("TYPE") == Some("terminate") {
        return terminate(sessions, S::NAME, session_id);
    }
    if let Some(asked) = database_parameter(&parameters)? {
        if asked != session.database {
            return Err(ChannelError::bad_request(
                "database differs from the channel's".into(),
            ));
        }
    }
    if let Some(acknowledged) = parameters.number("AID")? {
        session.outbox.acknowledge(acknowledged);
    }
    let count = form.data.len() as u64;
    let fresh = session.outbox.new_client_maps(form.offset, count);
    let fresh_texts: Vec<&str> = (form.offset..)
        .zip(&form.data)
        .filter(|(number, _)| fresh.contains(number))
        .map(|(_, text)| text.as_str())
        .collect();
    session.requests.deliver(&fresh_texts).await?;
    session.outbox.accept_client_maps(form.offset, count);
    Ok(text_response(
        StatusCode::OK,
        length_prefixed(&session.outbox.forward_answer()),
    ))
}

/// Opens a session for a form whose `headers` carry a valid token (in dev mode, any form).
/// The token is checked before the form's requests are parsed and before a session exists:
/// an open without one is answered 401 `UNAUTHENTICATED` (another project or database 403) and
/// leaves nothing behind.
async fn open_session<S: ChannelStream>(
    state: &AppState,
    database: DatabaseId,
    form: ClientMaps,
) -> Result<Response, ChannelError> {
    let headers = form.headers()?;
    let principal =
        crate::auth::authenticate_stream(state.auth().map(Arc::as_ref), &database, &headers)?;
    let (queue, requests) = mpsc::channel(S::REQUEST_QUEUE_LENGTH);
    let sink = Arc::new(ParsingSink {
        parse: S::parse_request,
        queue,
    });
    // Parsed before the session exists: a malformed opening request opens nothing. The queue is
    // read only once the stream starts, so the opening request may hold no more than it takes.
    let texts: Vec<&str> = form.data.iter().map(String::as_str).collect();
    if texts.len() > S::REQUEST_QUEUE_LENGTH {
        return Err(ChannelError::bad_request(format!(
            "count={}: at most {} maps in an opening request",
            texts.len(),
            S::REQUEST_QUEUE_LENGTH
        )));
    }
    sink.deliver(&texts).await?;
    let sessions = state.channels();
    let owner = principal.as_ref().map(|principal| SessionOwner {
        user_id: principal.user_id.clone(),
        shop: principal.shop.clone(),
    });
    let (session_id, outbox) = sessions.open(S::NAME, database.clone(), owner, sink)?;
    outbox.accept_client_maps(form.offset, texts.len() as u64);
    S::start(
        state.clone(),
        OpenedSession {
            id: session_id.clone(),
            database,
            outbox,
            requests,
            principal,
            headers,
        },
    );
    let handshake = serde_json::json!([[0, ["c", session_id, "", 8, 12, 30000]]]);
    Ok(text_response(
        StatusCode::OK,
        length_prefixed(&ascii_json(&handshake)),
    ))
}

/// The maps of one forward-channel form: `count`, `ofs`, `req{i}___data__`, and (on the opening
/// request) `headers`.
struct ClientMaps {
    offset: u64,
    data: Vec<String>,
    headers: Option<String>,
}

impl ClientMaps {
    fn parse(body: &str) -> Result<ClientMaps, ChannelError> {
        let pairs = parse_form(body)?;
        let field = |key: &str| {
            pairs
                .iter()
                .rev()
                .find(|(name, _)| name == key)
                .map(|(_, value)| value.as_str())
        };
        let number = |key: &str| -> Result<u64, ChannelError> {
            field(key)
                .map(|text| {
                    text.parse().map_err(|_| {
                        ChannelError::bad_request(format!("{key}={text:?} is not a number"))
                    })
                })
                .transpose()
                .map(Option::unwrap_or_default)
        };
        let count = number("count")?;
        let offset = number("ofs")?;
        // The client sends at most 1000 maps a request.
        if count > 1000 {
            return Err(ChannelError::bad_request(format!(
                "count={count}: at most 1000 maps per request"
            )));
        }
        let data = (0..count)
            .map(|index| {
                field(&format!("req{index}___data__"))
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        ChannelError::bad_request(format!(
                            "count={count} but req{index}___data__ is missing"
                        ))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ClientMaps {
            offset,
            data,
            headers: field("headers").map(str::to_owned),
        })
    }

    /// The `headers` field as a header map (`Name:value` lines).
    fn headers(&self) -> Result<HeaderMap, ChannelError> {
        let mut headers = HeaderMap::new();
        for line in self.headers.as_deref().unwrap_or("").lines() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let (name, value) = line.split_once(':').ok_or_else(|| {
                ChannelError::bad_request(format!("headers line {line:?} has no ':'"))
            })?;
            let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
                ChannelError::bad_request(format!("headers line {line:?} has a bad name"))
            })?;
            let value = HeaderValue::from_str(value.trim()).map_err(|_| {
                ChannelError::bad_request(format!("headers line {line:?} has a bad value"))
            })?;
            headers.append(name, value);
        }
        Ok(headers)
    }
}

/// Where a back channel stream is.
struct BackChannel {
    outbox: Arc<Outbox>,
    number: u64,
    changes: watch::Receiver<u64>,
    /// The last array id written on this stream.
    cursor: u64,
    last_write: Instant,
    ends_at: Instant,
    heartbeat: Duration,
    opened: bool,
}

impl Drop for BackChannel {
    fn drop(&mut self) {
        self.outbox.detach_back_channel(self.number);
    }
}

impl BackChannel {
    /// The frame of every queued array after the cursor, if any.
    fn take_frame(&mut self) -> Option<Bytes> {
        let mut state = self.outbox.lock();
        let entries: Vec<&str> = state
            .unacknowledged
            .iter()
            .filter(|(id, _, _)| *id > self.cursor)
            .map(|(_, entry, _)| entry.as_str())
            .collect();
        if entries.is_empty() {
            return None;
        }
        let frame = length_prefixed(&format!("[{}]", entries.join(",")));
        let last = state
            .unacknowledged
            .back()
            .map_or(self.cursor, |(id, _, _)| *id);
        self.cursor = last;
        state.last_written = state.last_written.max(last);
        Some(Bytes::from(frame))
    }

    /// The next chunk, or `None` when the stream should end. An ending stream detaches at once,
    /// before the client can see the end, so that a closed session is unknown to the client's
    /// next request.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        let chunk = self.next_chunk_or_end().await;
        if chunk.is_none() {
            self.outbox.detach_back_channel(self.number);
        }
        chunk
    }

    async fn next_chunk_or_end(&mut self) -> Option<Bytes> {
        if !self.opened {
            self.opened = true;
            // Something at once, as the emulator sends, so that proxies pass the headers on.
            if self
                .outbox
                .lock()
                .unacknowledged
                .iter()
                .all(|(id, _, _)| *id <= self.cursor)
            {
                self.outbox.push_raw("\"noop\"".into());
            }
        }
        loop {
            // Mark the current version seen before looking, so no change is missed.
            self.changes.borrow_and_update();
            if self.outbox.lock().back_channel != Some(self.number) {
                return None;
            }
            if let Some(frame) = self.take_frame() {
                self.last_write = Instant::now();
                return Some(frame);
            }
            if self.outbox.is_closed() {
                return None;
            }
            let heartbeat_at = self.last_write + self.heartbeat;
            tokio::select! {
                changed = self.changes.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
                () = tokio::time::sleep_until(heartbeat_at) => {
                    self.outbox.push_raw("\"noop\"".into());
                }
                () = tokio::time::sleep_until(self.ends_at) => return None,
            }
        }
    }
}

fn back_channel_stream(
    outbox: Arc<Outbox>,
    number: u64,
    acknowledged: u64,
    heartbeat: Duration,
    lifetime: Duration,
) -> impl futures_util::Stream<Item = Result<Bytes, std::convert::Infallible>> + Send + 'static {
    let now = Instant::now();
    let changes = outbox.changed.subscribe();
    let back_channel = BackChannel {
        outbox,
        number,
        changes,
        cursor: acknowledged,
        last_write: now,
        ends_at: now + lifetime,
        heartbeat,
        opened: false,
    };
    futures_util::stream::unfold(back_channel, |mut back_channel| async move {
        let chunk = back_channel.next_chunk().await?;
        Some((Ok(chunk), back_channel))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_plus_and_percent_escapes() {
        let pairs =
            parse_form("count=1&ofs=0&req0___data__=%7B%22a%22%3A%22x+y%22%7D&flag").unwrap();
        assert_eq!(
            pairs,
            [
                ("count".to_owned(), "1".to_owned()),
                ("ofs".to_owned(), "0".to_owned()),
                ("req0___data__".to_owned(), "{\"a\":\"x y\"}".to_owned()),
                ("flag".to_owned(), String::new()),
            ]
        );
        assert!(parse_form("a=%FF").is_err());
    }

    #[test]
    fn client_maps_need_every_counted_request() {
        assert!(ClientMaps::parse("count=2&ofs=0&req0___data__=%7B%7D").is_err());
        assert!(ClientMaps::parse("count=x&ofs=0").is_err());
        assert!(ClientMaps::parse("count=1001&ofs=0").is_err());
        let maps = ClientMaps::parse("headers=Authorization%3ABearer%20t%0D%0AX-Goog-Api-Client%3Agl-js%2F%20fire%2F12&count=1&ofs=3&req0___data__=%7B%22database%22%3A%22d%22%7D").unwrap();
        assert_eq!(maps.offset, 3);
        let headers = maps.headers().unwrap();
        assert_eq!(headers["authorization"], "Bearer t");
        assert_eq!(headers["x-goog-api-client"], "gl-js/ fire/12");
        assert_eq!(maps.data, ["{\"database\":\"d\"}"]);
    }

    #[test]
    fn non_ascii_is_escaped_so_lengths_count_utf16_units() {
        let text = ascii_json(&serde_json::json!({"name": "चाय 🍵"}));
        assert!(text.is_ascii());
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            serde_json::json!({"name": "चाय 🍵"})
        );
        assert!(text.contains("\\ud83c\\udf75"));
    }

    #[test]
    fn retried_client_maps_are_accepted_once() {
        let outbox = Outbox::new(Arc::new(OutputBudget::new(1 << 20)), 1 << 20);
        assert_eq!(outbox.new_client_maps(0, 2), 0..2);
        assert_eq!(outbox.accept_client_maps(0, 2), 0..2);
        assert_eq!(outbox.new_client_maps(1, 2), 2..3);
        assert_eq!(outbox.accept_client_maps(1, 2), 2..3);
        assert!(outbox.accept_client_maps(0, 1).is_empty());
        assert_eq!(outbox.accept_client_maps(3, 1), 3..4);
    }

    #[test]
    fn a_full_request_queue_makes_delivery_wait_and_a_bad_message_queues_nothing() {
        use futures_util::FutureExt;
        let (queue, mut receiver) = mpsc::channel(1);
        let sink = ParsingSink {
            parse: |text: &str| match text {
                "bad" => Err(ServerError::InvalidArgument("bad".into())),
                text => Ok(text.to_owned()),
            },
            queue,
        };
        assert!(sink.deliver(&["a"]).now_or_never().unwrap().is_ok());
        let mut second = sink.deliver(&["b"]);
        assert!((&mut second).now_or_never().is_none(), "no room yet");
        assert_eq!(receiver.try_recv().unwrap(), "a");
        assert!(second.now_or_never().unwrap().is_ok());
        assert_eq!(receiver.try_recv().unwrap(), "b");
        assert!(sink.deliver(&["c", "bad"]).now_or_never().unwrap().is_err());
        assert!(
            receiver.try_recv().is_err(),
            "nothing of a refused request is queued"
        );
    }

    #[test]
    fn acknowledged_arrays_are_dropped_and_answers_count_the_rest() {
        let outbox = Outbox::new(Arc::new(OutputBudget::new(1 << 20)), 1 << 20);
        outbox.push(&serde_json::json!({"a": 1}));
        outbox.push(&serde_json::json!({"b": 2}));
        // `[1,[{"a":1}]]` and `[2,[{"b":2}]]` are 13 bytes each.
        assert_eq!(outbox.forward_answer(), "[0,2,26]");
        outbox.acknowledge(1);
        assert_eq!(outbox.lock().unacknowledged.len(), 1);
        assert_eq!(outbox.forward_answer(), "[0,2,13]");
    }
}
