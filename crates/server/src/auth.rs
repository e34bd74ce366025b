//! Authentication and authorization: who is calling, and whether they may do what they ask.
//!
//! Without `--dev` the server runs with an `AuthState`:
//! - `sign_in`: Firebase Auth's REST endpoints for email/password sign-in and token refresh, at
//!   the paths the Firebase Auth emulator uses;
//! - `tokens`: signed ID tokens (HS256, one hour) carrying the user's shop and role, and
//!   refresh tokens stored hashed;
//! - `accounts`: shops, users and refresh tokens in SQLite (also used by the admin CLI);
//! - `passwords`: Argon2id hashing; `rate_limit`: failed sign-ins per email and per address;
//! - `policy`: the access policy as pure functions, the twin of `firestore.rules`.
//!
//! `authorize` is the one call the Firestore routes make per parsed request: it checks the
//! bearer token (401 `UNAUTHENTICATED`) and the policy (403 `PERMISSION_DENIED`) before the
//! request is served. Commits are judged on the documents as they are before and after each
//! write, like Firestore's rules (`resource`, `request.resource`); to keep that judgement true
//! when the commit then runs, commits in authenticated mode are serialized from authorization
//! to the end of the commit (the store serializes commits anyway, so this costs little).

pub mod accounts;
pub mod passwords;
pub mod policy;
pub mod rate_limit;
pub mod sign_in;
pub mod tokens;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap};
use counterbook_firestore_wire::{CommitRequest, RunQueryRequest};
use serde::de::DeserializeOwned;
use tokio::sync::OwnedMutexGuard;

use crate::commit::{apply_write, validate_commit, DocumentChange, ValidatedWrite, WriteAction};
use crate::error::ServerError;
use crate::routes::{ApiCall, MAX_REQUEST_BODY_BYTES};
use crate::store::{Store, StoredDocument};
use crate::AppState;
use accounts::Accounts;
use policy::{Principal, WriteEffect};
use rate_limit::SignInRateLimiter;
use tokens::TokenSigner;

/// The database a token may reach, as on Cloud Firestore without named databases.
pub const DEFAULT_DATABASE: &str = "(default)";

/// Where the time comes from: the system, or a test's hand.
pub trait Clock: Send + Sync + 'static {
    fn now_unix_seconds(&self) -> i64;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix_seconds(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs() as i64)
    }
}

/// A clock that moves only when told, for tests of expiry and rate limits.
pub struct ManualClock {
    seconds: AtomicI64,
}

impl ManualClock {
    pub fn starting_at(unix_seconds: i64) -> ManualClock {
        ManualClock {
            seconds: AtomicI64::new(unix_seconds),
        }
    }

    pub fn advance(&self, seconds: i64) {
        self.seconds.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_unix_seconds(&self) -> i64 {
        self.seconds.load(Ordering::SeqCst)
    }
}

/// How authentication is configured (the server's non-dev mode).
#[derive(Clone)]
pub struct AuthConfig {
    /// The project tokens are issued for and the only one served.
    pub project: String,
    /// Origins (`https://pos.example.com`) whose pages may call the API from a browser; the
    /// server's own origin needs no entry.
    pub allowed_origins: Vec<String>,
    pub clock: Arc<dyn Clock>,
}

impl AuthConfig {
    pub fn new(project: impl Into<String>) -> AuthConfig {
        AuthConfig {
            project: project.into(),
            allowed_origins: Vec::new(),
            clock: Arc::new(SystemClock),
        }
    }
}

/// Everything authentication needs at run time.
pub struct AuthState {
    project: String,
    accounts: Arc<Accounts>,
    signer: TokenSigner,
    clock: Arc<dyn Clock>,
    rate_limiter: SignInRateLimiter,
    allowed_origins: Vec<String>,
    /// Held from a commit's authorization to the end of the commit (see the module doc).
    commit_serialization: Arc<tokio::sync::Mutex<()>>,
}

impl AuthState {
    /// Opens the accounts tables and the signing secret of `data_directory`.
    pub fn open(
        data_directory: &std::path::Path,
        config: AuthConfig,
    ) -> Result<AuthState, ServerError> {
        let accounts = Accounts::open(data_directory)
            .map_err(|error| ServerError::AuthSetup(error.to_string()))?;
        let secret = tokens::load_or_create_signing_secret(data_directory).map_err(|error| {
            ServerError::AuthSetup(format!("cannot read or create the signing key: {error}"))
        })?;
        Ok(AuthState {
            signer: TokenSigner::new(&config.project, &secret),
            project: config.project,
            accounts: Arc::new(accounts),
            clock: config.clock,
            rate_limiter: SignInRateLimiter::default(),
            allowed_origins: config.allowed_origins,
            commit_serialization: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    pub fn project(&self) -> &str {
        &self.project
    }

    pub fn allowed_origins(&self) -> &[String] {
        &self.allowed_origins
    }

    fn now(&self) -> i64 {
        self.clock.now_unix_seconds()
    }

    /// The principal of a request's `Authorization: Bearer <idToken>` header.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, ServerError> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Err(ServerError::Unauthenticated(
                "Request is missing required authentication credential: \
                 send Authorization: Bearer <idToken> from the sign-in endpoint"
                    .into(),
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|text| {
                let (scheme, token) = text.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .ok_or_else(|| {
                ServerError::Unauthenticated(
                    "Request had invalid authentication credentials: expected Bearer <idToken>"
                        .into(),
                )
            })?;
        self.signer
            .verify_id_token(token, self.now())
            .map_err(|error| {
                ServerError::Unauthenticated(format!(
                    "Request had invalid authentication credentials: {error}"
                ))
            })
    }

    /// Only this server's project and the default database are served.
    fn check_database(&self, project: &str, database: &str) -> Result<(), ServerError> {
        if project == self.project && database == DEFAULT_DATABASE {
            Ok(())
        } else {
            Err(ServerError::PermissionDenied(format!(
                "Missing or insufficient permissions: this server serves projects/{}/databases/{DEFAULT_DATABASE} only",
                self.project
            )))
        }
    }
}

/// What `authorize` grants: keep it alive until the request has been served.
#[must_use = "an authorization must be held until the request has been served"]
pub(crate) enum Authorization {
    /// Dev mode: nothing is checked.
    NotRequired,
    Granted {
        /// For commits: the serialization lock, so that what was authorized is what commits.
        _commit_serialization: Option<OwnedMutexGuard<()>>,
    },
}

/// Authenticates and authorizes one parsed API call. The request comes back ready to be served
/// (its body, if it had to be read here, is put back), with the `Authorization` to hold while
/// serving it. In dev mode it grants everything.
pub(crate) async fn authorize(
    state: &AppState,
    call: &ApiCall,
    request: Request,
) -> Result<(Request, Authorization), ServerError> {
    let Some(auth) = state.auth() else {
        return Ok((request, Authorization::NotRequired));
    };
    let principal = auth.authenticate(request.headers())?;
    let granted = Authorization::Granted {
        _commit_serialization: None,
    };
    // Variants the routes add later are refused until they are given a rule here.
    #[allow(unreachable_patterns)]
    match call {
        ApiCall::GetDocument(name) => {
            auth.check_database(&name.project, &name.database)?;
            policy::check_read(&principal, name).map_err(denied)?;
            Ok((request, granted))
        }
        ApiCall::RunQuery { database, parent } => {
            auth.check_database(&database.project, &database.database)?;
            let (request, query) = peek_json_body::<RunQueryRequest>(request).await?;
            let any_all_descendants = query
                .and_then(|query| query.structured_query)
                .is_some_and(|query| query.from.iter().any(|from| from.all_descendants));
            policy::check_query(&principal, parent, any_all_descendants).map_err(denied)?;
            Ok((request, granted))
        }
        ApiCall::Commit(database) => {
            auth.check_database(&database.project, &database.database)?;
            let (request, commit) = peek_json_body::<CommitRequest>(request).await?;
            let serialization = Arc::clone(&auth.commit_serialization).lock_owned().await;
            // A body that does not parse or validate is refused by the commit itself, with the
            // same error and before anything is written; there is nothing to authorize.
            if let Some(writes) = commit.and_then(|commit| validate_commit(commit, database).ok())
            {
                state
                    .run_blocking(move |store| authorize_writes(store, &principal, &writes))
                    .await?;
            }
            Ok((
                request,
                Authorization::Granted {
                    _commit_serialization: Some(serialization),
                },
            ))
        }
        _ => Err(ServerError::PermissionDenied(
            "Missing or insufficient permissions: this request is not available with authentication yet"
                .into(),
        )),
    }
}

fn denied(denial: policy::Denial) -> ServerError {
    ServerError::PermissionDenied(denial.to_string())
}

/// Reads the whole body, parses it as `T` if it can (an empty body is `T::default()`, as the
/// routes read it), and rebuilds the request with the same bytes.
async fn peek_json_body<T: DeserializeOwned + Default>(
    request: Request,
) -> Result<(Request, Option<T>), ServerError> {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_REQUEST_BODY_BYTES)
        .await
        .map_err(|_| ServerError::PayloadTooLarge {
            limit_bytes: MAX_REQUEST_BODY_BYTES,
        })?;
    let parsed = if bytes.iter().all(u8::is_ascii_whitespace) {
        Some(T::default())
    } else {
        serde_json::from_slice(&bytes).ok()
    };
    Ok((Request::from_parts(parts, Body::from(bytes)), parsed))
}

/// Judges every write of a commit on the documents before and after it, in order, as the commit
/// will apply them (a later write to the same document sees the earlier one). One denied write
/// denies the commit.
fn authorize_writes(
    store: &Store,
    principal: &Principal,
    writes: &[ValidatedWrite],
) -> Result<(), ServerError> {
    store.read_snapshot(|snapshot| {
        let mut written: HashMap<String, Option<StoredDocument>> = HashMap::new();
        for write in writes {
            let key = write.document.to_string();
            let before = match written.get(&key) {
                Some(document) => document.clone(),
                None => snapshot.get_document(&write.document)?,
            };
            // A failed precondition fails the commit itself, the same way, with nothing
            // written; the writes after it never run, so they need no judgement.
            let Ok(applied) = apply_write(before.as_ref(), write, snapshot.read_time()) else {
                return Ok(());
            };
            let after = match applied.change {
                DocumentChange::Unchanged => before.clone(),
                DocumentChange::Put(document) => Some(document),
                DocumentChange::Delete => None,
            };
            let effect = match (&write.action, &after) {
                (WriteAction::Verify, _) => WriteEffect::Verify,
                (WriteAction::Delete, _) | (_, None) => WriteEffect::Delete,
                (WriteAction::Update { .. }, Some(after)) => WriteEffect::Put {
                    before: before.as_ref().map(|document| &document.fields),
                    after: &after.fields,
                },
            };
            policy::check_write(principal, &write.document, effect).map_err(denied)?;
            written.insert(key, after);
        }
        Ok(())
    })
}
