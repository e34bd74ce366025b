//! The `counterbook-server` binary: `serve` parses flags, opens the data directory and serves
//! `counterbook_server::app` until SIGINT or SIGTERM; `shop` and `user` administer the accounts
//! that sign in when the server runs without `--dev`; `backup` copies the database of a data
//! directory, also while a server is running on it.

mod backup;

use std::io::{BufRead, IsTerminal};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use counterbook_server::auth::accounts::Accounts;
use counterbook_server::auth::passwords::{hash_password, MINIMUM_PASSWORD_LENGTH};
use counterbook_server::auth::policy::Role;
use counterbook_server::connections::ConnectionLimits;
use counterbook_server::setup_page::{self, HttpsRedirect};
use counterbook_server::{
    app, static_files, tls, AppState, AuthConfig, Clock, ServerConfig, ServerError, SystemClock,
};

#[derive(Parser)]
#[command(
    name = "counterbook-server",
    version,
    about = "Firestore-compatible sync server for Counterbook"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the Firestore REST API (and the app) over HTTP or HTTPS.
    Serve {
        /// Address to listen on; port 0 picks a free port (printed on startup).
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
        /// Directory for the SQLite database; created if missing.
        #[arg(long)]
        data: PathBuf,
        /// The built PWA (Trunk's dist directory) to serve at `/`.
        #[arg(long)]
        app: Option<PathBuf>,
        /// Emulator mode: no authentication, any project id, CORS for any origin.
        #[arg(long)]
        dev: bool,
        /// The Firebase-style project id: the audience of the ID tokens this server issues and
        /// the only project it serves. Required without --dev.
        #[arg(long)]
        project: Option<String>,
        /// An origin (scheme://host[:port]) whose pages may call the API from a browser;
        /// repeatable. Without --dev only these (and the server's own origin) are allowed.
        #[arg(long = "allow-origin", value_name = "ORIGIN")]
        allow_origins: Vec<String>,
        /// An origin besides this server that the app may sync with (the connect-src of its
        /// Content-Security-Policy), e.g. https://firestore.googleapis.com; repeatable.
        #[arg(long = "sync-endpoint", value_name = "ORIGIN", value_parser = parse_sync_endpoint)]
        sync_endpoints: Vec<String>,
        #[command(flatten)]
        tls: TlsArgs,
        /// With --dev: put a small catalogue and two customers into shops/demo-shop of project
        /// counterbook (the app's defaults) unless they are there already (`make demo`).
        #[arg(long, requires = "dev")]
        demo_data: bool,
        /// How long the ID tokens this server issues live, in seconds (an hour, as on
        /// Firebase); a few seconds lets tests see tokens expire.
        #[arg(long, default_value_t = counterbook_server::auth::tokens::ID_TOKEN_LIFETIME_SECONDS,
              value_parser = clap::value_parser!(i64).range(1..=86_400))]
        token_lifetime_seconds: i64,
    },
    /// Manage shops.
    #[command(subcommand)]
    Shop(ShopCommand),
    /// Manage the users who sign in.
    #[command(subcommand)]
    User(UserCommand),
    /// Copy the database into one file, consistently, while the server may be running.
    /// Restore by copying the file as counterbook.sqlite3 into an empty data directory.
    Backup {
        /// The server's data directory.
        #[arg(long)]
        data: PathBuf,
        /// The backup file to write (replaced atomically if it exists).
        #[arg(long)]
        to: PathBuf,
    },
}

#[derive(Args)]
struct TlsArgs {
    /// Serve HTTPS. Without --tls-cert and --tls-key, with a certificate from a local
    /// certificate authority kept in DATA/tls (made on first start; tablets install it from
    /// /setup/ca). Plain HTTP on the same port is redirected to HTTPS.
    #[arg(long)]
    tls: bool,
    /// The certificate chain (PEM) to serve, e.g. for a real domain; needs --tls-key.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Another name or address for the generated certificate (besides localhost, the host
    /// name and every interface address); repeatable.
    #[arg(long = "tls-name", value_name = "NAME")]
    tls_names: Vec<String>,
    /// Also listen for plain HTTP here (e.g. 0.0.0.0:80), answering the setup page and
    /// redirecting everything else to HTTPS.
    #[arg(long, value_name = "ADDR")]
    http_addr: Option<SocketAddr>,
}

impl TlsArgs {
    fn enabled(&self) -> bool {
        self.tls || self.tls_cert.is_some()
    }
}

#[derive(Subcommand)]
enum ShopCommand {
    /// Create a shop (its id becomes the `shops/{id}` path its data lives under).
    Create {
        #[arg(long)]
        data: PathBuf,
        /// 1 to 100 letters, digits, '-' or '_'.
        #[arg(long)]
        shop: String,
        /// A display name; the id if omitted.
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user to a shop. The password is read from --password-file, or from standard input
    /// (prompted without echo on a terminal).
    Add {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        shop: String,
        #[arg(long)]
        email: String,
        /// owner, manager or cashier.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// Disable a user: no more sign-ins or token refreshes; a running server refuses the
    /// tokens already issued within seconds and ends their Listen sessions.
    Disable {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        email: String,
    },
}

#[derive(Args)]
struct PasswordSource {
    /// Read the password from the first line of this file.
    #[arg(long, conflicts_with = "password_stdin")]
    password_file: Option<PathBuf>,
    /// Read the password from the first line of standard input (the default when standard
    /// input is not a terminal).
    #[arg(long)]
    password_stdin: bool,
}

fn parse_sync_endpoint(text: &str) -> Result<String, String> {
    let origin = text.trim_end_matches('/');
    static_files::check_sync_endpoint(origin).map(|()| origin.to_owned())
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text).ok_or_else(|| format!("unknown role {text:?}: use owner, manager or cashier"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "counterbook_server=info,tower_http=warn".into()),
        )
        .init();
    match cli.command {
        Command::Serve {
            addr,
            data,
            app: app_directory,
            dev,
            project,
            allow_origins,
            sync_endpoints,
            tls,
            demo_data,
            token_lifetime_seconds,
        } => {
            if tls.http_addr.is_some() && !tls.enabled() {
                eprintln!("counterbook-server: --http-addr redirects to HTTPS: it needs --tls");
                return ExitCode::from(2);
            }
            let config = ServerConfig {
                data_directory: data,
                app_directory,
                dev_mode: dev,
            };
            let opened = match (dev, project) {
                (true, _) => AppState::open(config),
                (false, None) => Err(ServerError::ProjectRequired),
                (false, Some(project)) => AppState::open_authenticated(
                    config,
                    AuthConfig {
                        allowed_origins: allow_origins,
                        id_token_lifetime_seconds: token_lifetime_seconds,
                        ..AuthConfig::new(project)
                    },
                ),
            };
            let state = match opened {
                Ok(state) => state,
                Err(error @ ServerError::ProjectRequired) => {
                    eprintln!("counterbook-server: {error}");
                    return ExitCode::from(2);
                }
                Err(error) => {
                    eprintln!("counterbook-server: cannot open the data directory: {error}");
                    return ExitCode::FAILURE;
                }
            };
            let state = state.with_sync_endpoints(sync_endpoints);
            if demo_data {
                match state.seed_demo_data() {
                    Ok(0) => tracing::info!("the demo shop is there already"),
                    Ok(count) => tracing::info!(
                        documents = count,
                        "demo data written to projects/{}/databases/(default)/documents/shops/{}",
                        counterbook_server::demo::DEMO_PROJECT,
                        counterbook_server::demo::DEMO_SHOP
                    ),
                    Err(error) => {
                        eprintln!("counterbook-server: cannot write the demo data: {error}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            report(serve(addr, state, &tls))
        }
        Command::Shop(command) => report(run_shop_command(command)),
        Command::User(command) => report(run_user_command(command)),
        Command::Backup { data, to } => report(run_backup(&data, &to)),
    }
}

fn report(outcome: anyhow::Result<()>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("counterbook-server: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn open_accounts(data: &Path) -> anyhow::Result<Accounts> {
    Accounts::open(data).with_context(|| format!("opening the accounts in {}", data.display()))
}

fn run_shop_command(command: ShopCommand) -> anyhow::Result<()> {
    let ShopCommand::Create { data, shop, name } = command;
    let accounts = open_accounts(&data)?;
    let name = name.unwrap_or_else(|| shop.clone());
    accounts.create_shop(&shop, &name, SystemClock.now_unix_seconds())?;
    println!("created shop {shop}");
    Ok(())
}

fn run_user_command(command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add {
            data,
            shop,
            email,
            role,
            password,
        } => {
            let accounts = open_accounts(&data)?;
            let password = read_password(&password)?;
            if password.chars().count() < MINIMUM_PASSWORD_LENGTH {
                bail!("the password is too short: at least {MINIMUM_PASSWORD_LENGTH} characters");
            }
            let password_hash =
                hash_password(&password).map_err(|error| anyhow::anyhow!("hashing: {error}"))?;
            let user_id = accounts.add_user(
                &shop,
                &email,
                role,
                &password_hash,
                SystemClock.now_unix_seconds(),
            )?;
            println!(
                "added {role} {} to shop {shop} (user id {user_id})",
                email.trim()
            );
            Ok(())
        }
        UserCommand::Disable { data, email } => {
            open_accounts(&data)?.disable_user(&email)?;
            println!(
                "disabled {}; their refresh tokens are revoked",
                email.trim()
            );
            Ok(())
        }
    }
}

fn run_backup(data: &Path, target: &Path) -> anyhow::Result<()> {
    let report = backup::backup_data_directory(data, target)?;
    let last_commit = report
        .last_commit_time
        .map_or_else(|| "none".to_owned(), |time| time.to_string());
    println!(
        "backed up {} documents (last commit {last_commit}) to {} ({} bytes)",
        report.documents,
        report.target.display(),
        report.bytes
    );
    Ok(())
}

/// The password, never echoed: from a file, from piped standard input, or typed at a prompt
/// with echo off.
fn read_password(source: &PasswordSource) -> anyhow::Result<String> {
    let line = if let Some(path) = &source.password_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the password file {}", path.display()))?;
        text.lines().next().unwrap_or("").to_owned()
    } else if source.password_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        line
    } else {
        rpassword::prompt_password("Password: ").context("reading the password")?
    };
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// The rustls configuration and the local CA (when generated) that `--tls` asks for.
fn tls_setup(
    tls: &TlsArgs,
    data_directory: &Path,
) -> anyhow::Result<(
    std::sync::Arc<rustls::ServerConfig>,
    Option<tls::LocalCaCertificate>,
)> {
    match (&tls.tls_cert, &tls.tls_key) {
        (Some(certificate), Some(key)) => {
            let identity = tls::load_identity(certificate, key)?;
            tracing::info!(certificate = %certificate.display(), "HTTPS with the given certificate");
            Ok((tls::server_config(identity)?, None))
        }
        _ => {
            let names = tls::machine_names(&tls.tls_names);
            let local =
                tls::local_identity(data_directory, &names, time::OffsetDateTime::now_utc())
                    .context("making the server certificate")?;
            let directory = tls::tls_directory(data_directory);
            if local.authority_created {
                println!(
                    "counterbook-server made a local certificate authority in {}",
                    directory.display()
                );
            }
            // What a person compares on the tablet (the setup page shows the same fingerprint),
            // and what a test pins.
            println!(
                "counterbook-server local CA SHA-256 fingerprint {}",
                local.authority.fingerprint_sha256()
            );
            println!(
                "counterbook-server certificate for {} (SPKI sha256 {})",
                local.names.join(", "),
                local.server_spki_sha256
            );
            if !local.left_out.is_empty() {
                println!(
                    "counterbook-server left {} out of the certificate: the local CA may not \
                     vouch for them (it was made before the machine had them; to make a new \
                     CA, delete {} and install the new one on the tablets)",
                    local.left_out.join(", "),
                    directory.display()
                );
            }
            Ok((tls::server_config(local.identity)?, Some(local.authority)))
        }
    }
}

fn serve(addr: SocketAddr, state: AppState, tls: &TlsArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let tls_config = if tls.enabled() {
            let (config, authority) = tls_setup(tls, &state.config().data_directory)?;
            Some((config, authority))
        } else {
            None
        };
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let bound = listener.local_addr().context("reading the bound address")?;
        let http_listener = match tls.http_addr {
            Some(http_addr) => Some(
                tokio::net::TcpListener::bind(http_addr)
                    .await
                    .with_context(|| format!("cannot listen on {http_addr}"))?,
            ),
            None => None,
        };
        match state.auth() {
            Some(auth) => {
                tracing::info!(
                    project = auth.project(),
                    allowed_origins = ?auth.allowed_origins(),
                    id_token_lifetime_seconds = auth.id_token_lifetime_seconds(),
                    "authentication on: Firestore requests need an ID token from \
                     /identitytoolkit.googleapis.com/v1/accounts:signInWithPassword"
                );
                if let Some(code) = auth.pending_setup_code() {
                    // On standard output, like the listening line: the shop's owner reads it
                    // here (as Jupyter prints its token) and types it into "Set up your shop".
                    let scheme = if tls.enabled() { "https" } else { "http" };
                    println!(
                        "{}{code} (open {scheme}://{bound}/ and choose \"Set up your shop\"; it works once)",
                        counterbook_server::auth::setup::SETUP_CODE_LINE_PREFIX
                    );
                }
            }
            None => tracing::warn!("dev mode: no authentication, every shop is open to anyone"),
        }
        // The connection layer gives the sign-in rate limiter the client's address.
        let limits = ConnectionLimits::default().fitted_to_file_descriptor_limit();
        tracing::info!(
            max_connections = limits.max_connections,
            max_connections_per_address = limits.max_connections_per_address,
            header_read_timeout = ?limits.header_read_timeout,
            "connection limits"
        );
        let (stop_sender, stop_receiver) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = stop_sender.send(true);
        });
        let stopped = move || {
            let mut receiver = stop_receiver.clone();
            async move {
                let _ = receiver.wait_for(|stopped| *stopped).await;
            }
        };
        let Some((tls_config, authority)) = tls_config else {
            // Tests and scripts wait for this exact line to learn the port; the setup code, if
            // any, was printed just before it.
            println!("counterbook-server listening on http://{bound}");
            return counterbook_server::connections::serve(listener, app(state), limits, stopped())
                .await
                .context("serving HTTP");
        };
        let authority = authority.map(std::sync::Arc::new);
        let state = match &authority {
            Some(authority) => state.with_local_ca(authority.as_ref().clone()),
            None => state,
        };
        let http_server = match http_listener {
            Some(http_listener) => {
                let http_bound = http_listener
                    .local_addr()
                    .context("reading the bound address")?;
                println!("counterbook-server redirecting http://{http_bound} to https");
                let plain_router = setup_page::plain_http_router(
                    authority.clone(),
                    HttpsRedirect::Port(bound.port()),
                );
                Some(tokio::spawn(counterbook_server::connections::serve(
                    http_listener,
                    plain_router,
                    limits.clone(),
                    stopped(),
                )))
            }
            None => None,
        };
        let plain_router = setup_page::plain_http_router(authority, HttpsRedirect::SamePort);
        // Tests and scripts wait for this exact line to learn the port.
        println!("counterbook-server listening on https://{bound}");
        counterbook_server::connections::serve_tls(
            listener,
            app(state),
            plain_router,
            tls_config,
            limits,
            stopped(),
        )
        .await
        .context("serving HTTPS")?;
        if let Some(http_server) = http_server {
            http_server
                .await
                .context("the HTTP redirect listener")?
                .context("serving the HTTP redirect")?;
        }
        Ok(())
    })
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM, so in-flight requests finish before exit.
async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
