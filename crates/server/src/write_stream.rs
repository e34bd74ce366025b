//! Firestore's Write stream, at `/google.firestore.v1.Firestore/Write/channel`: how the full
//! Firebase JS SDK writes (`setDoc`, `updateDoc`, `deleteDoc`, `writeBatch`); a `ChannelStream`
//! of the WebChannel transport (`webchannel`).
//!
//! The exchange, as Google's emulator answers it (`webchannel-capture.md` beside DESIGN.md, and
//! the SDK's `PersistentWriteStream`):
//! - the handshake: the first request carries `database` and no writes; the answer is
//!   `{"streamId": …, "streamToken": …}`. Writes in it are `INVALID_ARGUMENT`;
//! - each later request carries the last `streamToken` and `writes`, which are committed as one
//!   commit, exactly as `:commit` commits them: the same parse and schema
//!   (`request_schema::write_request`, whose writes are a commit's), the same authorization
//!   (`auth::authorize_stream_commit` grants what `auth::authorize` grants a `:commit`, for the
//!   token of the opening request, checked again for every request so that an expired token
//!   stops writing) and the same `commit::run_commit` with the same `write_judge`, which
//!   judges every write inside the commit's own write transaction.
//!   The answer is `{"streamToken": …, "writeResults": […], "commitTime": …}`;
//! - a request without writes is the client closing the stream (the SDK sends one when it tears
//!   the stream down): the answer is a token, then `"close"`;
//! - a commit that fails ends the stream with its `google.rpc.Status` (`{"error": …}`), which
//!   the SDK turns into the rejection of that write (permanent codes: `NOT_FOUND`,
//!   `PERMISSION_DENIED`, `FAILED_PRECONDITION`, `INVALID_ARGUMENT`, …) or a retry on a new
//!   stream (`UNAVAILABLE`, `UNAUTHENTICATED`, `ABORTED`).
//!
//! Stream tokens are a counter, as the emulator's are; like the emulator, a request whose token
//! is missing or stale is still served (the SDK never resumes a stream). Requests are committed
//! one at a time in order; the transport bounds how many may wait.

use counterbook_firestore_wire::{CommitRequest, WriteRequest, WriteResponse};

use crate::error::ServerError;
use crate::opaque::encode_base64;
use crate::request_body::{parse_json_body, MAX_REQUEST_BODY_BYTES};
use crate::store::DatabaseId;
use crate::webchannel::{ChannelLimits, ChannelStream, OpenedSession};
use crate::{auth, commit, request_schema, AppState};

/// Where the Firebase JS SDK opens Write channels.
pub const WRITE_CHANNEL_PATH: &str = "/google.firestore.v1.Firestore/Write/channel";

/// How often a session's task checks that its channel is still alive.
const EXPIRY_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// The Write stream as a WebChannel stream: one task per session (`run_session`).
pub struct WriteStream;

impl ChannelStream for WriteStream {
    type Request = WriteRequest;
    const NAME: &'static str = "Write";
    /// A write request may be as large as a commit, so few wait: with the one being committed
    /// and the forward request being read, a Write session holds at most four requests' worth.
    const REQUEST_QUEUE_LENGTH: usize = 2;

    /// A write request may be as large as a `:commit` body.
    fn max_forward_form_bytes(limits: &ChannelLimits) -> usize {
        limits.max_form_bytes.max(MAX_REQUEST_BODY_BYTES)
    }

    /// A write request is parsed as a `:commit` body is, under the same size limit.
    fn parse_request(text: &str) -> Result<WriteRequest, ServerError> {
        if text.len() > MAX_REQUEST_BODY_BYTES {
            return Err(ServerError::PayloadTooLarge {
                limit_bytes: MAX_REQUEST_BODY_BYTES,
            });
        }
        parse_json_body(text.as_bytes(), request_schema::write_request())
    }

    fn start(state: AppState, session: OpenedSession<WriteRequest>) {
        tokio::spawn(run_session(state, session));
    }
}

/// The route of the Write channel.
pub fn router() -> axum::Router<AppState> {
    crate::webchannel::router::<WriteStream>(WRITE_CHANNEL_PATH)
}

/// What a session says after one request.
enum Reply {
    /// The stream goes on.
    Continue(WriteResponse),
    /// The client closed its side: this is the last answer.
    End(WriteResponse),
}

/// One session's stream: whether the handshake is done, and the last token given out.
struct WriteSession {
    id: String,
    database: DatabaseId,
    headers: axum::http::HeaderMap,
    handshake_done: bool,
    responses_sent: u64,
}

async fn run_session(state: AppState, session: OpenedSession<WriteRequest>) {
    let OpenedSession {
        id,
        database,
        outbox,
        mut requests,
        principal: _,
        headers,
    } = session;
    let mut stream = WriteSession {
        id: id.clone(),
        database,
        headers,
        handshake_done: false,
        responses_sent: 0,
    };
    let limits = state.channels().limits().clone();
    let mut expiry_check = tokio::time::interval(EXPIRY_CHECK_INTERVAL);
    loop {
        tokio::select! {
            request = requests.recv() => {
                let Some(request) = request else { break };
                match stream.handle(&state, request).await {
                    Ok(Reply::Continue(response)) => outbox.push(&response_json(&response)),
                    Ok(Reply::End(response)) => {
                        outbox.push(&response_json(&response));
                        outbox.push_end_and_close();
                        break;
                    }
                    Err(error) => {
                        outbox.push_error_and_close(&error);
                        break;
                    }
                }
            }
            _ = expiry_check.tick() => {
                if outbox.is_too_old(&limits) && !outbox.is_closed() {
                    outbox.push_error_and_close(&ServerError::Unavailable(
                        "the write channel reached its maximum age; reconnect".into(),
                    ));
                }
                if outbox.is_expired(&limits) {
                    break;
                }
            }
        }
    }
    if outbox.is_expired(&limits) {
        state.channels().remove(&id);
    }
}

fn response_json(response: &WriteResponse) -> serde_json::Value {
    serde_json::to_value(response).unwrap_or_default()
}

impl WriteSession {
    async fn handle(
        &mut self,
        state: &AppState,
        request: WriteRequest,
    ) -> Result<Reply, ServerError> {
        let channel_database = format!(
            "projects/{}/databases/{}",
            self.database.project, self.database.database
        );
        if let Some(database) = &request.database {
            if *database != channel_database {
                return Err(ServerError::InvalidArgument(format!(
                    "database {database:?} differs from the channel's ({channel_database})"
                )));
            }
        }
        if !self.handshake_done {
            if request.database.is_none() {
                return Err(ServerError::InvalidArgument(
                    "the first write request must name the database".into(),
                ));
            }
            if !request.writes.is_empty() {
                return Err(ServerError::InvalidArgument(
                    "'writes' must not be set on an initial write request.".into(),
                ));
            }
            self.handshake_done = true;
            return Ok(Reply::Continue(WriteResponse {
                stream_id: Some(self.id.clone()),
                stream_token: self.next_token(),
                ..WriteResponse::default()
            }));
        }
        if request.writes.is_empty() {
            return Ok(Reply::End(WriteResponse {
                stream_token: self.next_token(),
                ..WriteResponse::default()
            }));
        }
        let commit = CommitRequest {
            database: Some(channel_database),
            writes: request.writes,
            transaction: None,
        };
        let response = commit_as_route_does(state, &self.database, &self.headers, commit).await?;
        Ok(Reply::Continue(WriteResponse {
            stream_id: None,
            stream_token: self.next_token(),
            write_results: response.write_results,
            commit_time: response.commit_time,
        }))
    }

    /// `MA==`, `MQ==`, …: the count of responses so far, as the emulator's tokens are.
    fn next_token(&mut self) -> String {
        let token = encode_base64(self.responses_sent.to_string().as_bytes());
        self.responses_sent += 1;
        token
    }
}

/// The `:commit` route's path for one write request: the same authorization, for the bearer of
/// the opening request's token (none in dev mode), and the same `run_commit` judging each write
/// with it.
async fn commit_as_route_does(
    state: &AppState,
    database: &DatabaseId,
    headers: &axum::http::HeaderMap,
    request: CommitRequest,
) -> Result<counterbook_firestore_wire::CommitResponse, ServerError> {
    let authorization =
        auth::authorize_stream_commit(state.auth().map(AsRef::as_ref), database, headers)?;
    let write_judge = authorization.write_judge();
    let database = database.clone();
    state
        .run_blocking(move |store| commit::run_commit(store, &database, request, &*write_judge))
        .await
}
