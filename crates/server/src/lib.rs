//! `counterbook-server`: a Firestore-compatible REST endpoint on SQLite that also serves the
//! built Counterbook PWA.
//!
//! `app(state)` builds the whole axum router; `main.rs` only parses flags, opens the state and
//! serves it. The modules, in layers that import only downwards (ARCHITECTURE.md):
//! - values and paths: `error` (`ServerError`, its Firestore-shaped JSON), `field_path`,
//!   `index_key` (order-preserving keys, index plans), `limits`, `opaque`, `documents`,
//!   `client_network`, `request_schema`, `request_body`, `api_call`;
//! - queries: `query` (validating structured queries, filters, orders, cursors);
//!   `transaction` (open transactions and what they read) and `aggregation`'s pure parts;
//! - storage: `store` (SQLite, the only module that imports rusqlite, the commit clock);
//! - operations: `commit` (validating and applying writes, each judged by a `WriteJudge`),
//!   `reads`, and `demo` (the demo shop of `make demo`, written through `commit`);
//! - on top: `auth` (sign-in, first-run setup, the owner's people endpoints, tokens, accounts,
//!   the access policy and `authorize`), `routes`
//!   (the `/v1` REST surface), `webchannel` (the WebChannel transport, which checks a stream's
//!   opening token with `auth` and knows nothing of what the streams mean) and above it the
//!   streams `listen` and `write_stream` (the Write stream, committing as `:commit` does),
//!   `static_files` (the app's files, their caching, compression and Content-Security-Policy),
//!   `tls` (the given or generated certificate, the local CA), `setup_page` (installing the
//!   local CA, the plain-HTTP redirect), `connections` (accepting connections within bounds,
//!   HTTP and HTTPS), and this root with `AppState`, the state every handler takes.

pub mod aggregation;
pub mod api_call;
pub mod auth;
pub mod client_network;
pub mod commit;
pub mod connections;
pub mod demo;
pub mod documents;
pub mod error;
pub mod field_path;
pub mod index_key;
pub mod limits;
pub mod listen;
pub mod opaque;
pub mod query;
pub mod reads;
pub mod request_body;
pub mod request_schema;
pub mod routes;
pub mod setup_page;
pub mod static_files;
pub mod store;
pub mod tls;
pub mod transaction;
pub mod webchannel;
pub mod write_stream;

use std::path::PathBuf;
use std::sync::Arc;

use axum::http::{HeaderName, HeaderValue, Method};
use axum::Router;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;

pub use auth::{AuthConfig, AuthState, Clock, ManualClock, SystemClock};
pub use error::ServerError;
use store::Store;

/// How the server was asked to run.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Holds `counterbook.sqlite3`; created if missing.
    pub data_directory: PathBuf,
    /// The built PWA to serve at `/`, if any.
    pub app_directory: Option<PathBuf>,
    /// Emulator mode: no authentication, any project id, CORS open to any origin.
    pub dev_mode: bool,
}

/// Everything a request handler needs: the store, the configuration and, unless in dev mode,
/// authentication. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    store: Arc<Store>,
    config: Arc<ServerConfig>,
    auth: Option<Arc<AuthState>>,
    /// Open WebChannel (Listen and Write) sessions; in memory, so a restart drops them.
    channels: Arc<webchannel::ChannelSessions>,
    /// Origins besides its own that the app may connect to (its Content-Security-Policy).
    sync_endpoints: Arc<Vec<String>>,
    /// The local certificate authority the `/setup/ca` page hands out, when HTTPS uses one.
    local_ca: Option<Arc<tls::LocalCaCertificate>>,
}

impl AppState {
    /// Opens the data directory in dev mode. Without `dev_mode` it refuses: authentication
    /// needs a project (`open_authenticated`), and serving every shop to anyone is not an
    /// option.
    pub fn open(config: ServerConfig) -> Result<AppState, ServerError> {
        if !config.dev_mode {
            return Err(ServerError::ProjectRequired);
        }
        let store = Store::open(&config.data_directory)?;
        Ok(AppState {
            store: Arc::new(store),
            config: Arc::new(config),
            auth: None,
            channels: Arc::default(),
            sync_endpoints: Arc::default(),
            local_ca: None,
        })
    }

    /// Opens the data directory with authentication: every Firestore request needs an ID token
    /// from the sign-in endpoint, and reaches only its own shop.
    pub fn open_authenticated(
        config: ServerConfig,
        auth_config: AuthConfig,
    ) -> Result<AppState, ServerError> {
        let store = Store::open(&config.data_directory)?;
        Self::authenticated_with_store(store, config, auth_config)
    }

    /// Like `open_authenticated`, with the store's commit clock replaced (microseconds since
    /// the epoch), so that a test knows the commit time a request will get.
    pub fn open_authenticated_with_store_clock(
        config: ServerConfig,
        auth_config: AuthConfig,
        wall_clock_micros: fn() -> i64,
    ) -> Result<AppState, ServerError> {
        let store = Store::open_with_clock(&config.data_directory, wall_clock_micros)?;
        Self::authenticated_with_store(store, config, auth_config)
    }

    fn authenticated_with_store(
        store: Store,
        config: ServerConfig,
        auth_config: AuthConfig,
    ) -> Result<AppState, ServerError> {
        let auth = AuthState::open(&config.data_directory, auth_config)?;
        Ok(AppState {
            store: Arc::new(store),
            config: Arc::new(ServerConfig {
                dev_mode: false,
                ..config
            }),
            auth: Some(Arc::new(auth)),
            channels: Arc::default(),
            sync_endpoints: Arc::default(),
            local_ca: None,
        })
    }

    /// Seeds the demo shop (`demo`) in dev mode; how many documents were written (0 when they
    /// are there already). Refused with accounts: the demo shop is open to anyone.
    pub fn seed_demo_data(&self) -> Result<usize, ServerError> {
        if self.auth.is_some() {
            return Err(ServerError::FailedPrecondition(
                "demo data is for --dev only: its shop is open to anyone".into(),
            ));
        }
        demo::seed_demo_shop(&self.store)
    }

    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Authentication, or `None` in dev mode.
    pub fn auth(&self) -> Option<&Arc<AuthState>> {
        self.auth.as_ref()
    }

    /// This state with other bounds on WebChannel sessions; call it before serving.
    pub fn with_channel_limits(mut self, limits: webchannel::ChannelLimits) -> AppState {
        self.channels = Arc::new(webchannel::ChannelSessions::new(limits));
        self
    }

    /// This state with `endpoints` (origins such as `https://firestore.googleapis.com`) added
    /// to the `connect-src` of the app's Content-Security-Policy; check each with
    /// `static_files::check_sync_endpoint` first.
    pub fn with_sync_endpoints(mut self, endpoints: Vec<String>) -> AppState {
        self.sync_endpoints = Arc::new(endpoints);
        self
    }

    /// This state serving the `/setup/ca` page that hands out `authority`.
    pub fn with_local_ca(mut self, authority: tls::LocalCaCertificate) -> AppState {
        self.local_ca = Some(Arc::new(authority));
        self
    }

    /// The local certificate authority of `/setup/ca`, if the server uses one.
    pub fn local_ca(&self) -> Option<&Arc<tls::LocalCaCertificate>> {
        self.local_ca.as_ref()
    }

    /// The open WebChannel sessions.
    pub fn channels(&self) -> &webchannel::ChannelSessions {
        &self.channels
    }

    /// Notifications of every write transaction committed from now on, in commit order.
    pub fn subscribe_to_commits(
        &self,
    ) -> tokio::sync::broadcast::Receiver<Arc<store::CommittedWrites>> {
        self.store.subscribe_to_commits()
    }

    /// Runs synchronous SQLite work on Tokio's blocking pool, off the async workers.
    pub async fn run_blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Store) -> Result<T, ServerError> + Send + 'static,
    ) -> Result<T, ServerError> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || work(&store))
            .await
            .map_err(|error| ServerError::StorageTaskFailed(error.to_string()))?
    }
}

/// The whole HTTP application: the Firestore REST API under `/v1`, the sign-in API, first-run
/// setup and the owner's people endpoints under `/counterbook/v1`, the PWA (or a note)
/// everywhere else, the `/setup/ca` page when there is a local CA, request tracing, and CORS:
/// any origin in dev mode, the configured origins otherwise (the server's own origin needs
/// none).
pub fn app(state: AppState) -> Router {
    let policy = static_files::ContentSecurityPolicy {
        sync_endpoints: state.sync_endpoints.to_vec(),
        allow_loopback_endpoints: state.config.dev_mode,
    };
    let mut router = routes::router()
        .merge(listen::router())
        .merge(write_stream::router())
        .merge(auth::sign_in::router())
        .merge(auth::setup::router())
        .merge(auth::people::router())
        .merge(static_files::router(
            state.config.app_directory.clone(),
            &policy,
        ));
    if let Some(authority) = &state.local_ca {
        router = router.merge(setup_page::router(
            Arc::clone(authority),
            setup_page::HttpsRedirect::SamePort,
        ));
    }
    let mut router = router.layer(TraceLayer::new_for_http());
    match &state.auth {
        None => router = router.layer(cors(AllowOrigin::mirror_request())),
        Some(auth) if !auth.allowed_origins().is_empty() => {
            let origins = auth
                .allowed_origins()
                .iter()
                .filter_map(|origin| HeaderValue::from_str(origin).ok());
            router = router.layer(cors(AllowOrigin::list(origins)));
        }
        Some(_) => {}
    }
    router.with_state(state)
}

/// Like the Firestore emulator for the allowed origins: the methods the REST API uses,
/// whatever headers the browser asks for (the Firebase SDK sends `authorization`,
/// `x-goog-api-client`, `x-firebase-gmpid`, ...), and credentials with the emulator's exposed
/// headers, which the SDK's WebChannel requests (sent `withCredentials`) need.
fn cors(origins: AllowOrigin) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers(AllowHeaders::mirror_request())
        .allow_credentials(true)
        .expose_headers([
            HeaderName::from_static("content-type"),
            HeaderName::from_static("x-client-wire-protocol"),
            HeaderName::from_static("x-http-session-id"),
            HeaderName::from_static("x-http-initial-response"),
        ])
        .max_age(std::time::Duration::from_secs(3600))
}
