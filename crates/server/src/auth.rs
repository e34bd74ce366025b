//! Authentication and authorization: who is calling, and whether they may do what they ask.
//!
//! Without `--dev` the server runs with an `AuthState`:
//! - `sign_in`: Firebase Auth's REST endpoints for email/password sign-in and token refresh, at
//!   the paths the Firebase Auth emulator uses;
//! - `tokens`: signed ID tokens (HS256, one hour) carrying the user's shop and role, and
//!   refresh tokens stored hashed;
//! - `accounts`: shops, users and refresh tokens in SQLite (also used by the admin CLI);
//! - `setup`: the one-time setup code of a server that holds no shop yet, and claiming it;
//! - `people`: the owner's endpoints for the shop's users (list, add, change role, disable);
//! - `passwords`: Argon2id hashing; `password_checks`: the threads they run on;
//! - `rate_limit`: growing delays per (email, client network), a budget per network;
//! - `policy`: the access policy as pure functions, the twin of `firestore.rules`.
//!
//! `authorize` is the one call the Firestore routes make per parsed request, from its headers
//! and path before its body is read: it checks the bearer token (401 `UNAUTHENTICATED`) and the
//! policy (403 `PERMISSION_DENIED`), so a stranger's body is never parsed. Every `ApiCall` has
//! its own arm, without a catch-all, so a new kind of request cannot be served before it is
//! given a rule. Reads are judged on the names they
//! reach (a `:batchGet` on every name: one outside the shop denies the whole batch), queries,
//! lists and aggregations on their parent. Writes (commits, transactions' commits, and the
//! `PATCH` and `DELETE` that stand for one-write commits) are judged inside the commit's own
//! write transaction: `Authorization::write_judge` is asked by `commit::apply_writes` about each
//! write, on the documents before and after it at the commit time the write is stored with
//! (Firestore's rules' `resource` and `request.resource`), before it is stored; a refusal fails
//! the whole commit. So what is judged is exactly what is written, whatever the commit time, and
//! no write is stored unjudged. A precondition is only checked for a caller who may read its
//! document, since its outcome tells the document's state. The route parses each body once;
//! `authorize_body` judges what a read's body names on that same parsed value, which the route
//! then serves, so what is judged is exactly what is served.

pub mod accounts;
pub mod password_checks;
pub mod passwords;
pub mod people;
pub mod policy;
pub mod rate_limit;
pub mod setup;
pub mod sign_in;
pub mod tokens;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{header, HeaderMap};
use counterbook_firestore_wire::DocumentName;

use crate::aggregation::RunAggregationQueryRequest;
use crate::api_call::ApiCall;
use crate::commit::{AdmitEveryWrite, CommitOutcome, ProposedWrite, WriteAction, WriteJudge};
use crate::error::ServerError;
use crate::reads::{BatchGetRequest, RunQueryRequest};
use crate::store::DatabaseId;
use crate::transaction::TransactionOwner;
use accounts::Accounts;
use password_checks::PasswordCheckPool;
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
    /// How long ID tokens live (`--token-lifetime-seconds`; an hour by default, as on Firebase).
    pub id_token_lifetime_seconds: i64,
}

impl AuthConfig {
    pub fn new(project: impl Into<String>) -> AuthConfig {
        AuthConfig {
            project: project.into(),
            allowed_origins: Vec::new(),
            clock: Arc::new(SystemClock),
            id_token_lifetime_seconds: tokens::ID_TOKEN_LIFETIME_SECONDS,
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
    /// Wrong setup codes are limited like wrong passwords, on their own budget.
    setup_rate_limiter: SignInRateLimiter,
    setup_code: setup::SetupCode,
    password_checks: PasswordCheckPool,
    allowed_origins: Vec<String>,
    /// Whether each recently seen user's account is enabled, and when that was read.
    account_states: std::sync::Mutex<HashMap<String, CachedAccountState>>,
}

/// How long an account's enabled flag is trusted before it is read again: a disabled user's
/// tokens stop working within this many seconds (Firebase lets them work up to an hour).
pub const ACCOUNT_STATE_CACHE_SECONDS: i64 = 2;

/// Users whose account state is cached at most; past it the cache starts afresh.
const MAX_CACHED_ACCOUNT_STATES: usize = 10_000;

#[derive(Clone, Copy, Debug)]
struct CachedAccountState {
    /// The account exists and is enabled.
    enabled: bool,
    /// The role the account has now; a token claiming another one is refused, so that a role
    /// change takes effect as fast as disabling does (the client refreshes its token).
    role: Option<policy::Role>,
    read_at: i64,
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
        let holds_a_shop = accounts
            .holds_a_shop()
            .map_err(|error| ServerError::AuthSetup(error.to_string()))?;
        Ok(AuthState {
            signer: TokenSigner::with_lifetime(
                &config.project,
                &secret,
                config.id_token_lifetime_seconds,
            ),
            project: config.project,
            accounts: Arc::new(accounts),
            clock: config.clock,
            rate_limiter: SignInRateLimiter::default(),
            setup_rate_limiter: SignInRateLimiter::default(),
            setup_code: if holds_a_shop {
                setup::SetupCode::none()
            } else {
                setup::SetupCode::generate()
            },
            password_checks: PasswordCheckPool::default(),
            allowed_origins: config.allowed_origins,
            account_states: std::sync::Mutex::new(HashMap::new()),
        })
    }

    /// Refuses a principal whose account has been disabled or removed since its token was
    /// issued, or whose role has changed (401 `UNAUTHENTICATED`; the SDK then tries to refresh
    /// the token, which fails with `USER_DISABLED` or gives the new role). The flag is read from the accounts table at most every
    /// `ACCOUNT_STATE_CACHE_SECONDS` per user.
    pub fn check_account_enabled(&self, principal: &Principal) -> Result<(), ServerError> {
        let now = self.now();
        let cached = self
            .account_states
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&principal.user_id)
            .copied()
            .filter(|state| now - state.read_at < ACCOUNT_STATE_CACHE_SECONDS);
        let state = match cached {
            Some(state) => state,
            None => {
                let user = self
                    .accounts
                    .find_user_by_id(&principal.user_id)
                    .map_err(|error| {
                        ServerError::Unavailable(format!("cannot read the account: {error}"))
                    })?;
                let state = CachedAccountState {
                    enabled: user.as_ref().is_some_and(|user| !user.disabled),
                    role: user.map(|user| user.role),
                    read_at: now,
                };
                let mut states = self
                    .account_states
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                if states.len() >= MAX_CACHED_ACCOUNT_STATES {
                    states.clear();
                }
                states.insert(principal.user_id.clone(), state);
                state
            }
        };
        if !state.enabled {
            return Err(ServerError::Unauthenticated(
                "Request had invalid authentication credentials: the user's account is disabled"
                    .into(),
            ));
        }
        if state.role != Some(principal.role) {
            return Err(ServerError::Unauthenticated(
                "Request had invalid authentication credentials: the user's role has changed; \
                 refresh the ID token"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Forgets what is cached of a user's account, after the owner changed it, so that this
    /// server sees the change at once (other processes, such as the admin CLI, within
    /// `ACCOUNT_STATE_CACHE_SECONDS`).
    pub fn forget_account_state(&self, user_id: &str) {
        self.account_states
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(user_id);
    }

    /// The setup code to print at start, while the server holds no shop.
    pub fn pending_setup_code(&self) -> Option<String> {
        self.setup_code.pending()
    }

    /// How long the ID tokens this server issues live, in seconds.
    pub fn id_token_lifetime_seconds(&self) -> i64 {
        self.signer.lifetime_seconds()
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
        let principal = self
            .signer
            .verify_id_token(token, self.now())
            .map_err(|error| {
                ServerError::Unauthenticated(format!(
                    "Request had invalid authentication credentials: {error}"
                ))
            })?;
        self.check_account_enabled(&principal)?;
        Ok(principal)
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

/// What `authorize` grants.
pub(crate) enum Authorization {
    /// Dev mode: nothing is checked.
    NotRequired,
    /// The caller's token was valid and the request's reads (if any) are allowed; its writes
    /// (if any) are judged one by one inside the commit (`write_judge`).
    Granted { principal: Principal },
}

impl Authorization {
    /// The caller as the owner of the transactions it opens and uses (`None` in dev mode).
    pub(crate) fn transaction_owner(&self) -> Option<TransactionOwner> {
        match self {
            Authorization::NotRequired => None,
            Authorization::Granted { principal } => Some(owner_of(principal)),
        }
    }

    /// The judge of the writes this request makes, asked inside the commit's own write
    /// transaction about each write, on the documents and at the commit time the write uses.
    pub(crate) fn write_judge(&self) -> Box<dyn WriteJudge> {
        match self {
            Authorization::NotRequired => Box::new(AdmitEveryWrite),
            Authorization::Granted { principal } => Box::new(PolicyWriteJudge {
                principal: principal.clone(),
            }),
        }
    }
}

fn owner_of(principal: &Principal) -> TransactionOwner {
    TransactionOwner {
        user_id: principal.user_id.clone(),
        shop: principal.shop.clone(),
    }
}

/// Judges writes by `policy::check_write`, as Firestore's rules see them: `resource` is the
/// document before the write, `request.resource` the one after it; and the commit's outcome
/// by `policy::check_outcome`, each written document before and after the whole commit.
struct PolicyWriteJudge {
    principal: Principal,
}

impl WriteJudge for PolicyWriteJudge {
    fn judge_precondition(&self, document: &DocumentName) -> Result<(), ServerError> {
        policy::check_read(&self.principal, document).map_err(denied)
    }

    fn judge(&self, proposed: &ProposedWrite<'_>) -> Result<(), ServerError> {
        let write = proposed.write;
        let effect = match (&write.action, proposed.after) {
            (WriteAction::Verify, _) => WriteEffect::Verify,
            (WriteAction::Delete, _) | (_, None) => WriteEffect::Delete,
            (WriteAction::Update { .. }, Some(after)) => WriteEffect::Put {
                before: proposed.before.map(|document| &document.fields),
                after: &after.fields,
            },
        };
        policy::check_write(&self.principal, &write.document, effect).map_err(denied)
    }

    fn judge_outcome(&self, outcome: &CommitOutcome<'_, '_>) -> Result<(), ServerError> {
        for (name, before, after) in outcome.written() {
            policy::check_outcome(
                &self.principal,
                name,
                before.map(|document| &document.fields),
                after.map(|document| &document.fields),
                &OutcomeDocuments(outcome),
            )?
            .map_err(denied)?;
        }
        Ok(())
    }

    fn transaction_owner(&self) -> Option<TransactionOwner> {
        Some(owner_of(&self.principal))
    }
}

/// A commit's outcome as the policy reads other documents.
struct OutcomeDocuments<'a, 'b, 't>(&'a CommitOutcome<'b, 't>);

impl policy::CommitDocuments<ServerError> for OutcomeDocuments<'_, '_, '_> {
    fn before(&self, name: &DocumentName) -> Result<Option<policy::Fields>, ServerError> {
        Ok(self.0.before(name)?.map(|document| document.fields))
    }

    fn after(&self, name: &DocumentName) -> Result<Option<policy::Fields>, ServerError> {
        Ok(self.0.after(name)?.map(|document| document.fields))
    }
}

/// Authenticates and authorizes one parsed API call from its headers and path, before its body
/// is read: a request without a valid token, or for a place the token cannot reach, is refused
/// without its body ever being parsed. What a read's body names is judged afterwards, on the
/// very value the route then serves (`authorize_body`); writes are judged inside the commit
/// (`Authorization::write_judge`). Without `auth` (dev mode) it grants everything.
pub(crate) fn authorize(
    auth: Option<&AuthState>,
    call: &ApiCall,
    headers: &HeaderMap,
) -> Result<Authorization, ServerError> {
    let Some(auth) = auth else {
        return Ok(Authorization::NotRequired);
    };
    let principal = auth.authenticate(headers)?;
    // No catch-all: a new `ApiCall` does not compile until it is given its rule here.
    match call {
        ApiCall::GetDocument(name) => {
            auth.check_database(&name.project, &name.database)?;
            policy::check_read(&principal, name).map_err(denied)?;
        }
        ApiCall::ListDocuments {
            database,
            collection,
        } => {
            auth.check_database(&database.project, &database.database)?;
            policy::check_list(&principal, collection).map_err(denied)?;
        }
        // Judged name by name once the body is parsed.
        ApiCall::BatchGet(database) => {
            auth.check_database(&database.project, &database.database)?;
        }
        // The parent first: a query outside the shop is refused before its body is read.
        ApiCall::RunQuery { database, parent }
        | ApiCall::RunAggregationQuery { database, parent } => {
            auth.check_database(&database.project, &database.database)?;
            policy::check_query(&principal, parent, false).map_err(denied)?;
        }
        // A transaction is begun and rolled back without touching a document; what is read
        // and committed in it is judged request by request like any other read or commit.
        ApiCall::BeginTransaction(database) | ApiCall::Rollback(database) => {
            auth.check_database(&database.project, &database.database)?;
        }
        // Writes are judged inside the commit, write by write (`Authorization::write_judge`).
        ApiCall::Commit(database) => {
            auth.check_database(&database.project, &database.database)?;
        }
        ApiCall::PatchDocument(name) | ApiCall::DeleteDocument(name) => {
            auth.check_database(&name.project, &name.database)?;
        }
    }
    Ok(Authorization::Granted { principal })
}

/// A request body whose content decides what it reads, borrowed from the route that parsed
/// it and will serve it.
pub(crate) enum JudgedBody<'a> {
    BatchGet(&'a BatchGetRequest),
    RunQuery {
        parent: &'a DocumentName,
        request: &'a RunQueryRequest,
    },
    RunAggregationQuery {
        parent: &'a DocumentName,
        request: &'a RunAggregationQueryRequest,
    },
}

/// Judges what a parsed body reads: every name of a `:batchGet` (one outside the shop denies
/// the whole batch, as Cloud Firestore answers), and whether a query or an aggregation reaches
/// below its parent (`allDescendants`).
pub(crate) fn authorize_body(
    auth: Option<&AuthState>,
    authorization: &Authorization,
    body: JudgedBody<'_>,
) -> Result<(), ServerError> {
    let (Some(auth), Authorization::Granted { principal }) = (auth, authorization) else {
        return Ok(());
    };
    match body {
        JudgedBody::BatchGet(batch) => {
            for text in &batch.documents {
                // A name that does not parse, or names a collection, makes the batch fail
                // with 400 before anything is read.
                let Ok(name) = DocumentName::parse(text) else {
                    continue;
                };
                if !name.is_document() {
                    continue;
                }
                // A document of another project or database is read as missing; it is still
                // not a document of the token's shop.
                auth.check_database(&name.project, &name.database)?;
                policy::check_read(principal, &name).map_err(denied)?;
            }
        }
        JudgedBody::RunQuery { parent, request } => {
            let any_all_descendants = request
                .structured_query
                .as_ref()
                .is_some_and(|query| query.from.iter().any(|from| from.all_descendants));
            policy::check_query(principal, parent, any_all_descendants).map_err(denied)?;
        }
        JudgedBody::RunAggregationQuery { parent, request } => {
            let any_all_descendants = request
                .structured_aggregation_query
                .as_ref()
                .and_then(|aggregation| aggregation.structured_query.as_ref())
                .is_some_and(|query| query.from.iter().any(|from| from.all_descendants));
            policy::check_query(principal, parent, any_all_descendants).map_err(denied)?;
        }
    }
    Ok(())
}

/// Who a stream session (Listen, Write) acts for, from the `Authorization` header of its
/// opening request: `None` in dev mode. A bad token is `UNAUTHENTICATED`; another project or
/// database is `PERMISSION_DENIED`. The WebChannel transport asks this before a session exists.
/// `auth` is `None` in dev mode.
pub(crate) fn authenticate_stream(
    auth: Option<&AuthState>,
    database: &DatabaseId,
    headers: &HeaderMap,
) -> Result<Option<Principal>, ServerError> {
    let Some(auth) = auth else {
        return Ok(None);
    };
    let principal = auth.authenticate(headers)?;
    auth.check_database(&database.project, &database.database)?;
    Ok(Some(principal))
}

/// What a write request on the Write stream is granted: what `authorize` grants a `:commit` of
/// the same database, for the bearer of the stream's opening token, checked again for each
/// request (it may have expired or been revoked since the stream opened). Its writes are then
/// judged inside the commit (`Authorization::write_judge`), exactly as a `:commit`'s.
pub(crate) fn authorize_stream_commit(
    auth: Option<&AuthState>,
    database: &DatabaseId,
    headers: &HeaderMap,
) -> Result<Authorization, ServerError> {
    Ok(match authenticate_stream(auth, database, headers)? {
        None => Authorization::NotRequired,
        Some(principal) => Authorization::Granted { principal },
    })
}

fn denied(denial: policy::Denial) -> ServerError {
    ServerError::PermissionDenied(denial.to_string())
}
