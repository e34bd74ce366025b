//! The Listen stream's transport: a WebChannel (BrowserChannel v8) session over `fetch`, spoken
//! exactly as the Firebase JS SDK speaks it (`webchannel-capture.md` beside DESIGN.md). With
//! `remote`, the only module that touches the network.
//!
//! A session is plain HTTP requests to `{endpoint}/google.firestore.v1.Firestore/Listen/channel`:
//! - the opening `POST` carries the first `ListenRequest`s in a form (`count`, `ofs`,
//!   `req{i}___data__`) and answers `[[0,["c","<SID>",…]]]`;
//! - the back channel, a streaming `GET` (`RID=rpc&SID=…&AID=<last array id seen>`), brings
//!   length-prefixed frames `[[<array id>,[<message>]],…]`; it ends after about a minute and is
//!   opened again with the same `SID` (as it is after 45 s of silence, the Firebase SDK's limit);
//! - later requests go in forward `POST`s (`SID`, the next `RID`, `AID`, `count`, `ofs`);
//! - `TYPE=terminate` ends the session.
//!
//! [`ListenChannel`] reports what happens as [`ChannelEvent`]s through one callback: opened,
//! each `ListenResponse`, and closed (with the error, if any). Every failure (no reply, an HTTP
//! error, `Unknown SID`, a malformed frame, an error message on the stream) becomes a `Closed`
//! event, never a panic; the sans-IO `Listener` decides when to reconnect. [`FrameReader`] is the
//! pure frame parser, tested byte split by byte split below.

use std::cell::RefCell;
use std::rc::Rc;

use counterbook_firestore_wire::{Code, ListenRequest, ListenResponse, RpcStatus, Status};
use serde_json::value::RawValue;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::{spawn_local, JsFuture};

use crate::sync::identity::BearerToken;

/// The path of Firestore's Listen channel.
const LISTEN_CHANNEL_PATH: &str = "/google.firestore.v1.Firestore/Listen/channel";
/// A back channel that ends sooner than this after opening, having brought nothing, counts as a
/// failure (a server that ends them at once would otherwise be asked again in a tight loop).
const SHORT_BACK_CHANNEL_MILLIS: f64 = 1_000.0;
/// Short empty back channels in a row before the session is given up.
const MAX_SHORT_BACK_CHANNELS: u32 = 3;
/// A back channel silent for this long may be dead (a half-open connection after the network
/// went away unnoticed): it is abandoned and a new one opened on the same session, as the
/// Firebase SDK's channel does after 45 s. If the network is really gone, that request fails and
/// the session ends.
const SILENT_BACK_CHANNEL_MILLIS: i32 = 45_000;

/// What the channel tells its owner.
#[derive(Clone, Debug, PartialEq)]
pub enum ChannelEvent {
    /// The session is open (its opening request was answered).
    Opened,
    Response(Box<ListenResponse>),
    /// The session ended without being asked to; `None`: it ended without an error status.
    Closed {
        error: Option<Status>,
    },
}

/// Why a frame stream cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("a frame length line is not a number: {0:?}")]
    BadLength(String),
    #[error("the frame text is not UTF-8")]
    NotUtf8,
    #[error("a frame does not end on a character boundary")]
    SplitCharacter,
    #[error("a frame is not a list of [id, [message]] arrays: {0}")]
    BadArrays(String),
}

/// Splits a channel response body into frames: `<length>\n<text>`, where the length counts
/// UTF-16 code units of the decoded text (as the JavaScript client counts), and any frame may
/// arrive split across reads at any byte.
#[derive(Debug, Default)]
pub struct FrameReader {
    /// Bytes not yet decoded (an incomplete UTF-8 sequence at the end of a read).
    undecoded: Vec<u8>,
    /// Decoded text not yet framed.
    text: String,
}

impl FrameReader {
    pub fn new() -> Self {
        FrameReader::default()
    }

    /// Takes the bytes of one read; returns the texts of the frames now complete, in order.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<String>, FrameError> {
        self.undecoded.extend_from_slice(bytes);
        let decoded_up_to = match std::str::from_utf8(&self.undecoded) {
            Ok(text) => text.len(),
            // An incomplete sequence at the end waits for the next read.
            Err(error) if error.error_len().is_none() => error.valid_up_to(),
            Err(_) => return Err(FrameError::NotUtf8),
        };
        let rest = self.undecoded.split_off(decoded_up_to);
        let decoded = std::mem::replace(&mut self.undecoded, rest);
        self.text
            .push_str(std::str::from_utf8(&decoded).map_err(|_| FrameError::NotUtf8)?);
        let mut frames = Vec::new();
        while let Some(frame) = self.next_frame()? {
            frames.push(frame);
        }
        Ok(frames)
    }

    fn next_frame(&mut self) -> Result<Option<String>, FrameError> {
        let Some(newline) = self.text.find('\n') else {
            if self.text.len() > 20 || !self.text.chars().all(|c| c.is_ascii_digit()) {
                return Err(FrameError::BadLength(self.text.chars().take(40).collect()));
            }
            return Ok(None);
        };
        let length_text = self.text[..newline].trim();
        let length: usize = length_text
            .parse()
            .map_err(|_| FrameError::BadLength(length_text.chars().take(40).collect()))?;
        let body = &self.text[newline + 1..];
        let mut units = 0;
        let mut end = None;
        for (index, character) in body.char_indices() {
            if units == length {
                end = Some(index);
                break;
            }
            units += character.len_utf16();
            if units > length {
                return Err(FrameError::SplitCharacter);
            }
        }
        let end = match end {
            Some(end) => end,
            None if units == length => body.len(),
            None => return Ok(None),
        };
        let frame = body[..end].to_owned();
        self.text.drain(..newline + 1 + end);
        Ok(Some(frame))
    }
}

/// One entry of a frame: `[<array id>, [<message>]]`.
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelArray {
    pub id: u64,
    /// The message's JSON text, as it came.
    pub message: String,
}

/// Reads a frame's text: `[[<id>,[<message>]],…]`.
///
/// Messages stay JSON text until [`classify`] reads each as what it is (a `ListenResponse`
/// straight from the text): never through a `serde_json::Value` tree, whose conversions into
/// the wire types were about 10 KB of the gzipped wasm (README's *Size*).
pub fn parse_arrays(frame: &str) -> Result<Vec<ChannelArray>, FrameError> {
    let bad = |what: &str| FrameError::BadArrays(format!("{what} in {:.120}", frame));
    let entries: Vec<(u64, Box<RawValue>)> =
        serde_json::from_str(frame).map_err(|error| bad(&error.to_string()))?;
    entries
        .into_iter()
        .map(|(id, payload)| {
            // The payload is a one-element list holding the message.
            let message = match serde_json::from_str::<Vec<&RawValue>>(payload.get()) {
                Ok(list) if list.len() == 1 => list[0].get().to_owned(),
                _ => payload.get().to_owned(),
            };
            Ok(ChannelArray { id, message })
        })
        .collect()
}

/// What one array of the back channel means.
#[derive(Clone, Debug, PartialEq)]
enum Incoming {
    Noop,
    /// The handshake `["c", SID, …]`.
    Handshake(String),
    Response(Box<ListenResponse>),
    /// `{"error": status}`, `"close"` or `["stop"]`: the session is over.
    End(Option<Status>),
}

/// A message that may be `{"error": status}`.
#[derive(serde::Deserialize)]
struct ErrorMessage<'a> {
    #[serde(borrow)]
    error: Option<&'a RawValue>,
}

fn classify(message: &str) -> Incoming {
    match message.trim_start().as_bytes().first() {
        Some(b'"') => match serde_json::from_str::<String>(message).as_deref() {
            Ok("noop") => return Incoming::Noop,
            Ok("close" | "stop") => return Incoming::End(None),
            _ => {}
        },
        Some(b'[') => {
            let items: Vec<serde_json::Value> = serde_json::from_str(message).unwrap_or_default();
            return match items.first().and_then(|v| v.as_str()) {
                Some("c") => Incoming::Handshake(
                    items
                        .get(1)
                        .and_then(|v| v.as_str())
                        .unwrap_or_default()
                        .to_owned(),
                ),
                Some("stop") | Some("close") => Incoming::End(None),
                Some("noop") => Incoming::Noop,
                _ => Incoming::End(Some(Status::new(
                    Code::Internal,
                    format!("unexpected channel message {message}"),
                ))),
            };
        }
        _ => {}
    }
    match serde_json::from_str::<ListenResponse>(message) {
        Ok(response) => Incoming::Response(Box::new(response)),
        Err(error) => match serde_json::from_str::<ErrorMessage>(message) {
            Ok(ErrorMessage {
                error: Some(status),
            }) => Incoming::End(Some(error_status(status.get()))),
            _ => Incoming::End(Some(Status::new(
                Code::Internal,
                format!("unreadable listen message ({error}): {message:.200}"),
            ))),
        },
    }
}

/// An error on the stream: `google.rpc.Status` in its REST shape (`status` as a name) or its
/// gRPC shape (`code` as a number).
fn error_status(error: &str) -> Status {
    if let Ok(status) = serde_json::from_str::<Status>(error) {
        return status;
    }
    if let Ok(status) = serde_json::from_str::<RpcStatus>(error) {
        return Status::new(status.code(), status.message);
    }
    Status::new(Code::Unknown, format!("listen stream error {error}"))
}

/// The settings a channel is opened with.
#[derive(Clone)]
pub struct ChannelTarget {
    /// The REST base without `/v1`.
    pub endpoint: String,
    /// `projects/{project}/databases/(default)`.
    pub database: String,
    /// The ID token the opening form's `headers` carry (as the Firebase SDK sends it).
    pub bearer: BearerToken,
}

impl ChannelTarget {
    fn url(&self, parameters: &[(&str, String)]) -> String {
        let mut url = format!(
            "{}{LISTEN_CHANNEL_PATH}?VER=8&database={}",
            self.endpoint.trim_end_matches('/'),
            encode(&self.database)
        );
        for (name, value) in parameters {
            url.push('&');
            url.push_str(name);
            url.push('=');
            url.push_str(&encode(value));
        }
        url.push_str("&t=1");
        url
    }
}

fn encode(text: &str) -> String {
    String::from(js_sys::encode_uri_component(text))
}

/// The form of a POST carrying `requests`, numbered from `first_map`; the opening one has the
/// `headers` field (`Name:value` lines) with the bearer token, if any.
fn request_form(
    requests: &[ListenRequest],
    first_map: u64,
    headers: Option<Option<&str>>,
) -> String {
    let mut form = String::new();
    if let Some(token) = headers {
        let mut lines = String::from("Content-Type:text/plain\r\n");
        if let Some(token) = token {
            lines.push_str(&format!("Authorization:Bearer {token}\r\n"));
        }
        form.push_str("headers=");
        form.push_str(&encode(&lines));
        form.push('&');
    }
    form.push_str(&format!("count={}&ofs={first_map}", requests.len()));
    for (index, request) in requests.iter().enumerate() {
        let json = serde_json::to_string(request).unwrap_or_default();
        form.push_str(&format!("&req{index}___data__={}", encode(&json)));
    }
    form
}

#[derive(Debug, Default)]
struct Session {
    /// Bumped on every open and close: tasks of an older session stop quietly.
    generation: u64,
    /// `None` until the handshake arrived.
    sid: Option<String>,
    /// The opening POST is on the wire.
    handshaking: bool,
    next_rid: u64,
    /// The last array id seen on the back channel.
    last_array_id: u64,
    /// The next client map number (`ofs`).
    next_map: u64,
    /// Requests waiting for the handshake or for the forward POST in flight.
    queued: Vec<ListenRequest>,
    forward_in_flight: bool,
    /// Aborts the requests of this session.
    abort: Option<web_sys::AbortController>,
    /// Aborts the back channel request now open.
    back_channel_abort: Option<web_sys::AbortController>,
}

/// One Listen channel at a time; cheap to clone.
#[derive(Clone)]
pub struct ListenChannel {
    target: ChannelTarget,
    session: Rc<RefCell<Session>>,
    on_event: Rc<dyn Fn(ChannelEvent)>,
}

impl ListenChannel {
    pub fn new(target: ChannelTarget, on_event: impl Fn(ChannelEvent) + 'static) -> Self {
        ListenChannel {
            target,
            session: Rc::new(RefCell::new(Session::default())),
            on_event: Rc::new(on_event),
        }
    }

    /// Opens a new session (ending any open one). Requests [`send`](Self::send) before the
    /// opening POST leaves ride in it, as the SDK's first request does.
    pub fn open(&self) {
        self.close();
        let generation = {
            let mut session = self.session.borrow_mut();
            session.handshaking = true;
            session.next_rid = 10_000 + (js_sys::Math::random() * 80_000.0) as u64;
            session.abort = web_sys::AbortController::new().ok();
            session.generation
        };
        let this = self.clone();
        // Runs after the current task: the requests the Listener sends right after opening are
        // queued by then and travel in the opening POST.
        spawn_local(async move { this.handshake(generation).await });
    }

    /// Sends one request on the session (queued until it is open).
    pub fn send(&self, request: ListenRequest) {
        let ready = {
            let mut session = self.session.borrow_mut();
            session.queued.push(request);
            session.sid.is_some() && !session.forward_in_flight
        };
        if ready {
            self.flush();
        }
    }

    /// Ends the session: its requests are aborted and the server is told (`TYPE=terminate`). No
    /// `Closed` event follows.
    pub fn close(&self) {
        let (sid, rid, aid, abort) = {
            let mut session = self.session.borrow_mut();
            let generation = session.generation + 1;
            let old = std::mem::take(&mut *session);
            session.generation = generation;
            (
                old.sid,
                old.next_rid,
                old.last_array_id,
                [old.abort, old.back_channel_abort],
            )
        };
        for abort in abort.into_iter().flatten() {
            abort.abort();
        }
        if let Some(sid) = sid {
            let url = self.target.url(&[
                ("SID", sid),
                ("RID", rid.to_string()),
                ("AID", aid.to_string()),
                ("TYPE", "terminate".to_owned()),
            ]);
            spawn_local(async move {
                // Best effort: the server also drops idle sessions on its own.
                let _ = fetch_text("POST", &url, Some(String::new()), None).await;
            });
        }
    }

    fn is_current(&self, generation: u64) -> bool {
        self.session.borrow().generation == generation
    }

    /// Ends the session after a failure and reports it, unless it was closed meanwhile.
    fn fail(&self, generation: u64, error: Option<Status>) {
        if !self.is_current(generation) {
            return;
        }
        self.close();
        (self.on_event)(ChannelEvent::Closed { error });
    }

    fn signal(&self) -> Option<web_sys::AbortSignal> {
        self.session
            .borrow()
            .abort
            .as_ref()
            .map(web_sys::AbortController::signal)
    }

    async fn handshake(&self, generation: u64) {
        let (url, form) = {
            let mut session = self.session.borrow_mut();
            if session.generation != generation {
                return;
            }
            let requests = std::mem::take(&mut session.queued);
            let first_map = session.next_map;
            session.next_map += requests.len() as u64;
            let rid = session.next_rid;
            session.next_rid += 1;
            let url = self.target.url(&[
                ("RID", rid.to_string()),
                ("CVER", "22".to_owned()),
                ("X-HTTP-Session-Id", "gsessionid".to_owned()),
            ]);
            let token = self.target.bearer.get();
            (
                url,
                request_form(&requests, first_map, Some(token.as_deref())),
            )
        };
        let text = match fetch_text("POST", &url, Some(form), self.signal()).await {
            Ok(text) => text,
            Err(error) => return self.fail(generation, Some(error)),
        };
        let mut reader = FrameReader::new();
        let handshake = reader
            .push(text.as_bytes())
            .ok()
            .and_then(|frames| frames.into_iter().next())
            .and_then(|frame| parse_arrays(&frame).ok())
            .and_then(|arrays| arrays.into_iter().next())
            .map(|array| (array.id, classify(&array.message)));
        let Some((id, Incoming::Handshake(sid))) = handshake else {
            let excerpt: String = text.chars().take(200).collect();
            return self.fail(
                generation,
                Some(Status::new(
                    Code::Unavailable,
                    format!("the listen channel did not open: {excerpt}"),
                )),
            );
        };
        {
            let mut session = self.session.borrow_mut();
            if session.generation != generation {
                return;
            }
            session.sid = Some(sid);
            session.handshaking = false;
            session.last_array_id = id;
        }
        (self.on_event)(ChannelEvent::Opened);
        if self.is_current(generation) && !self.session.borrow().queued.is_empty() {
            self.flush();
        }
        let this = self.clone();
        spawn_local(async move { this.run_back_channel(generation).await });
    }

    /// Sends what is queued in one forward POST, then whatever was queued meanwhile.
    fn flush(&self) {
        let this = self.clone();
        spawn_local(async move {
            loop {
                let (generation, url, form) = {
                    let mut session = this.session.borrow_mut();
                    let Some(sid) = session.sid.clone() else {
                        return;
                    };
                    if session.queued.is_empty() {
                        session.forward_in_flight = false;
                        return;
                    }
                    session.forward_in_flight = true;
                    let requests = std::mem::take(&mut session.queued);
                    let first_map = session.next_map;
                    session.next_map += requests.len() as u64;
                    let rid = session.next_rid;
                    session.next_rid += 1;
                    let url = this.target.url(&[
                        ("SID", sid),
                        ("RID", rid.to_string()),
                        ("AID", session.last_array_id.to_string()),
                    ]);
                    (
                        session.generation,
                        url,
                        request_form(&requests, first_map, None),
                    )
                };
                if let Err(error) = fetch_text("POST", &url, Some(form), this.signal()).await {
                    return this.fail(generation, Some(error));
                }
            }
        });
    }

    /// Reads back channels one after the other for as long as the session lives.
    async fn run_back_channel(&self, generation: u64) {
        let mut short_in_a_row = 0;
        loop {
            let url = {
                let session = self.session.borrow();
                if session.generation != generation {
                    return;
                }
                let Some(sid) = session.sid.clone() else {
                    return;
                };
                self.target.url(&[
                    ("RID", "rpc".to_owned()),
                    ("SID", sid),
                    ("AID", session.last_array_id.to_string()),
                    ("CI", "0".to_owned()),
                    ("TYPE", "xmlhttp".to_owned()),
                ])
            };
            let started = js_sys::Date::now();
            match self.read_back_channel(generation, &url).await {
                Ok(BackChannelEnd::Ended { delivered }) => {
                    let short = js_sys::Date::now() - started < SHORT_BACK_CHANNEL_MILLIS;
                    short_in_a_row = if short && !delivered {
                        short_in_a_row + 1
                    } else {
                        0
                    };
                    if short_in_a_row >= MAX_SHORT_BACK_CHANNELS {
                        return self.fail(
                            generation,
                            Some(Status::new(
                                Code::Unavailable,
                                "the listen back channel keeps ending at once",
                            )),
                        );
                    }
                }
                Ok(BackChannelEnd::Silent) => short_in_a_row = 0,
                Ok(BackChannelEnd::SessionOver(error)) => return self.fail(generation, error),
                Ok(BackChannelEnd::Stale) => return,
                Err(error) => return self.fail(generation, Some(error)),
            }
        }
    }

    /// Aborts the back channel if it stays silent too long, and notes it in `silent`. Returns
    /// the timer to clear once a read completes.
    fn watchdog(&self, silent: &Rc<std::cell::Cell<bool>>) -> Option<i32> {
        let abort = self.session.borrow().back_channel_abort.clone()?;
        let silent = Rc::clone(silent);
        let callback = wasm_bindgen::closure::Closure::once_into_js(move || {
            silent.set(true);
            abort.abort();
        });
        web_sys::window()?
            .set_timeout_with_callback_and_timeout_and_arguments_0(
                callback.unchecked_ref(),
                SILENT_BACK_CHANNEL_MILLIS,
            )
            .ok()
    }

    async fn read_back_channel(
        &self,
        generation: u64,
        url: &str,
    ) -> Result<BackChannelEnd, Status> {
        // Its own abort controller, so that a silent back channel can be given up alone.
        let abort = web_sys::AbortController::new()
            .map_err(|error| network_status("abort controller", &error))?;
        let signal = abort.signal();
        self.session.borrow_mut().back_channel_abort = Some(abort);
        let silent = Rc::new(std::cell::Cell::new(false));
        let watchdog = self.watchdog(&silent);
        let response = start_fetch("GET", url, None, Some(signal)).await;
        if let (Some(window), Some(timer)) = (web_sys::window(), watchdog) {
            window.clear_timeout_with_handle(timer);
        }
        if silent.get() && self.is_current(generation) {
            return Ok(BackChannelEnd::Silent);
        }
        let response = response?;
        if !response.ok() {
            let text = match response.text() {
                Ok(promise) => JsFuture::from(promise)
                    .await
                    .ok()
                    .and_then(|v| v.as_string())
                    .unwrap_or_default(),
                Err(_) => String::new(),
            };
            return Err(http_failure(response.status(), &text));
        }
        let reader: web_sys::ReadableStreamDefaultReader = response
            .body()
            .ok_or_else(|| Status::new(Code::Unavailable, "the back channel has no body"))?
            .get_reader()
            .unchecked_into();
        let mut frames = FrameReader::new();
        let mut delivered = false;
        loop {
            let watchdog = self.watchdog(&silent);
            let chunk = JsFuture::from(reader.read()).await;
            if let (Some(window), Some(timer)) = (web_sys::window(), watchdog) {
                window.clear_timeout_with_handle(timer);
            }
            if silent.get() && self.is_current(generation) {
                return Ok(BackChannelEnd::Silent);
            }
            let chunk =
                chunk.map_err(|error| network_status("reading the back channel", &error))?;
            if !self.is_current(generation) {
                return Ok(BackChannelEnd::Stale);
            }
            let done = js_sys::Reflect::get(&chunk, &JsValue::from_str("done"))
                .ok()
                .and_then(|v| v.as_bool())
                .unwrap_or(true);
            if done {
                return Ok(BackChannelEnd::Ended { delivered });
            }
            let bytes = js_sys::Reflect::get(&chunk, &JsValue::from_str("value"))
                .map(|value| js_sys::Uint8Array::new(&value).to_vec())
                .unwrap_or_default();
            let texts = frames.push(&bytes).map_err(malformed)?;
            for text in texts {
                for array in parse_arrays(&text).map_err(malformed)? {
                    {
                        let mut session = self.session.borrow_mut();
                        if session.generation != generation {
                            return Ok(BackChannelEnd::Stale);
                        }
                        if array.id <= session.last_array_id {
                            // Sent again after a back channel broke off: already delivered.
                            continue;
                        }
                        session.last_array_id = array.id;
                    }
                    match classify(&array.message) {
                        Incoming::Noop | Incoming::Handshake(_) => {}
                        Incoming::Response(response) => {
                            delivered = true;
                            (self.on_event)(ChannelEvent::Response(response));
                            if !self.is_current(generation) {
                                return Ok(BackChannelEnd::Stale);
                            }
                        }
                        Incoming::End(error) => return Ok(BackChannelEnd::SessionOver(error)),
                    }
                }
            }
        }
    }
}

enum BackChannelEnd {
    /// The server ended this back channel normally; the next one opens.
    Ended { delivered: bool },
    /// It said nothing for too long and was abandoned; the next one opens.
    Silent,
    /// The server ended the session.
    SessionOver(Option<Status>),
    /// The session was closed or replaced meanwhile.
    Stale,
}

fn malformed(error: FrameError) -> Status {
    Status::new(Code::Internal, format!("listen back channel: {error}"))
}

fn network_status(what: &str, error: &JsValue) -> Status {
    let detail = error
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| error.as_string())
        .unwrap_or_else(|| format!("{error:?}"));
    Status::new(Code::Unavailable, format!("{what}: {detail}"))
}

/// An HTTP error from the channel: the protocol's own plain-text errors (`Unknown SID`) or a
/// Firestore error body.
fn http_failure(status: u16, text: &str) -> Status {
    if let Ok(reply) = serde_json::from_str::<counterbook_firestore_wire::ErrorResponse>(text) {
        return reply.error;
    }
    let excerpt: String = text.chars().take(200).collect();
    let code = match status {
        // `Unknown SID` and other protocol errors: the session is gone; open a new one.
        400 => Code::Unavailable,
        other => Code::from_http_status(other),
    };
    Status::new(
        code,
        format!("listen channel answered HTTP {status}: {excerpt}"),
    )
}

async fn start_fetch(
    method: &str,
    url: &str,
    form: Option<String>,
    signal: Option<web_sys::AbortSignal>,
) -> Result<web_sys::Response, Status> {
    let window = web_sys::window().ok_or_else(|| Status::new(Code::Unavailable, "no window"))?;
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    if let Some(signal) = &signal {
        init.set_signal(Some(signal));
    }
    if let Some(form) = &form {
        init.set_body(&JsValue::from_str(form));
        let headers = web_sys::Headers::new().map_err(|error| network_status("headers", &error))?;
        headers
            .set("Content-Type", "application/x-www-form-urlencoded")
            .map_err(|error| network_status("headers", &error))?;
        init.set_headers(&headers);
    }
    let request = web_sys::Request::new_with_str_and_init(url, &init)
        .map_err(|error| network_status("bad listen URL", &error))?;
    Ok(JsFuture::from(window.fetch_with_request(&request))
        .await
        .map_err(|error| network_status("listen request failed", &error))?
        .unchecked_into())
}

/// A whole (non-streaming) channel request; `Ok` with the body for a 2xx status.
async fn fetch_text(
    method: &str,
    url: &str,
    form: Option<String>,
    signal: Option<web_sys::AbortSignal>,
) -> Result<String, Status> {
    let response = start_fetch(method, url, form, signal).await?;
    let promise = response
        .text()
        .map_err(|error| network_status("reading the listen reply", &error))?;
    let text = JsFuture::from(promise)
        .await
        .map_err(|error| network_status("reading the listen reply", &error))?
        .as_string()
        .unwrap_or_default();
    if response.ok() {
        Ok(text)
    } else {
        Err(http_failure(response.status(), &text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    /// Feeds `input` split at `split` (and whole when `split` is `None`) and returns the frames.
    fn frames_of(input: &[u8], split: Option<usize>) -> Vec<String> {
        let mut reader = FrameReader::new();
        let mut frames = Vec::new();
        match split {
            Some(at) => {
                frames.extend(reader.push(&input[..at]).unwrap());
                frames.extend(reader.push(&input[at..]).unwrap());
            }
            None => frames.extend(reader.push(input).unwrap()),
        }
        frames
    }

    fn check_every_split(input: &str, expected: &[&str]) {
        let bytes = input.as_bytes();
        for split in 0..=bytes.len() {
            assert_eq!(
                frames_of(bytes, Some(split)),
                expected,
                "split at byte {split}"
            );
        }
        // One byte at a time.
        let mut reader = FrameReader::new();
        let mut frames = Vec::new();
        for byte in bytes {
            frames.extend(reader.push(&[*byte]).unwrap());
        }
        assert_eq!(frames, expected, "byte by byte");
    }

    #[wasm_bindgen_test]
    fn frames_split_at_every_byte_come_out_whole() {
        let first = r#"[[1,[{"targetChange":{"targetChangeType":"ADD","targetIds":[2]}}]]]"#;
        let noop = r#"[[2,["noop"]]]"#;
        let input = format!("{}\n{first}{}\n{noop}", first.len(), noop.len());
        check_every_split(&input, &[first, noop]);
    }

    #[wasm_bindgen_test]
    fn lengths_count_utf16_code_units_of_non_ascii_text() {
        // "é" is one UTF-16 unit and two bytes; "🧂" is two units and four bytes.
        let frame = r#"[[3,[{"documentChange":{"document":{"name":"x","fields":{"n":{"stringValue":"Thé 🧂"}}}}}]]]"#;
        let units: usize = frame.encode_utf16().count();
        assert_ne!(units, frame.len());
        let input = format!("{units}\n{frame}9\n[[4,[1]]]");
        check_every_split(&input, &[frame, "[[4,[1]]]"]);
    }

    #[wasm_bindgen_test]
    fn a_frame_with_several_arrays_yields_each_message_in_order() {
        let frame = r#"[[1,[{"targetChange":{"targetChangeType":"ADD","targetIds":[2]}}]],[2,["noop"]],[3,[{"targetChange":{"readTime":"2026-11-22T00:03:53.763475Z","resumeToken":"CgkI"}}]]]"#;
        let arrays = parse_arrays(frame).unwrap();
        assert_eq!(arrays.iter().map(|a| a.id).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(matches!(
            classify(&arrays[0].message),
            Incoming::Response(_)
        ));
        assert_eq!(classify(&arrays[1].message), Incoming::Noop);
        let Incoming::Response(response) = classify(&arrays[2].message) else {
            panic!("{arrays:?}")
        };
        let ListenResponse::TargetChange(change) = *response else {
            panic!()
        };
        assert_eq!(change.resume_token.as_deref(), Some("CgkI"));
    }

    #[wasm_bindgen_test]
    fn the_handshake_errors_and_stops_are_recognised() {
        let arrays =
            parse_arrays(r#"[[0,["c","D4ntPizKVkZhWAssBYDupA==","",8,12,30000]]]"#).unwrap();
        assert_eq!(
            classify(&arrays[0].message),
            Incoming::Handshake("D4ntPizKVkZhWAssBYDupA==".into())
        );
        let arrays = parse_arrays(
            r#"[[5,[{"error":{"code":503,"message":"too old","status":"UNAVAILABLE"}}]]]"#,
        )
        .unwrap();
        let Incoming::End(Some(status)) = classify(&arrays[0].message) else {
            panic!()
        };
        assert_eq!(status.status, Code::Unavailable);
        let arrays =
            parse_arrays(r#"[[6,[{"error":{"code":7,"message":"no"}}]],[7,["stop"]]]"#).unwrap();
        let Incoming::End(Some(status)) = classify(&arrays[0].message) else {
            panic!()
        };
        assert_eq!(status.status, Code::PermissionDenied);
        assert_eq!(classify(&arrays[1].message), Incoming::End(None));
    }

    #[wasm_bindgen_test]
    fn messages_are_read_from_their_text_whatever_their_shape() {
        // Guards the Value-free reading of messages: a payload that is not a one-element list
        // is the message itself, a string other than noop/close/stop and an object that is
        // neither a response nor an error end the session with an error.
        let arrays = parse_arrays(r#"[[8,"close"],[9,["what"]],[10,[{"nothing":1}]]]"#).unwrap();
        assert_eq!(arrays[0].message, r#""close""#);
        assert_eq!(classify(&arrays[0].message), Incoming::End(None));
        for array in &arrays[1..] {
            let Incoming::End(Some(status)) = classify(&array.message) else {
                panic!("{array:?}")
            };
            assert_eq!(status.status, Code::Internal, "{array:?}");
        }
        assert!(parse_arrays(r#"[[1,["noop"],3]]"#).is_err());
    }

    #[wasm_bindgen_test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(FrameReader::new().push(b"<html>").is_err());
        // An incomplete frame waits for more.
        assert_eq!(FrameReader::new().push(b"20\n[[1,[\"noop\"]]"), Ok(vec![]));
        assert!(parse_arrays("[1,2,7]").is_err());
        assert!(FrameReader::new()
            .push(&[b'3', b'\n', 0xff, 0xfe, 0xfd])
            .is_err());
        // A length ending inside a surrogate pair.
        assert_eq!(
            FrameReader::new().push("1\n🧂".as_bytes()),
            Err(FrameError::SplitCharacter)
        );
    }

    #[wasm_bindgen_test]
    fn the_opening_form_carries_the_bearer_token_in_its_headers_field() {
        let form = request_form(&[], 0, Some(Some("abc.def.ghi")));
        assert!(
            form.starts_with("headers=Content-Type%3Atext%2Fplain%0D%0AAuthorization%3ABearer%20abc.def.ghi%0D%0A&"),
            "{form}"
        );
        let without = request_form(&[], 0, Some(None));
        assert!(!without.contains("Authorization"), "{without}");
    }

    #[wasm_bindgen_test]
    fn request_forms_number_their_maps_as_the_sdk_does() {
        let request = ListenRequest::remove("projects/p/databases/(default)", 1002);
        let form = request_form(&[request], 1, None);
        assert_eq!(
            form,
            "count=1&ofs=1&req0___data__=%7B%22database%22%3A%22projects%2Fp%2Fdatabases%2F(default)%22%2C%22removeTarget%22%3A1002%7D"
        );
        let target = ChannelTarget {
            endpoint: "http://h:1/".into(),
            database: "projects/p/databases/(default)".into(),
            bearer: BearerToken::default(),
        };
        assert_eq!(
            target.url(&[("SID", "a=b".into()), ("RID", "rpc".into())]),
            "http://h:1/google.firestore.v1.Firestore/Listen/channel?VER=8&database=projects%2Fp%2Fdatabases%2F(default)&SID=a%3Db&RID=rpc&t=1"
        );
    }
}
