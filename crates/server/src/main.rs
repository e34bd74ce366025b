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
use counterbook_server::{
    app, AppState, AuthConfig, Clock, ServerConfig, ServerError, SystemClock,
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
    /// Serve the Firestore REST API (and the app) over HTTP.
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
        } => {
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
            report(serve(addr, state))
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

fn serve(addr: SocketAddr, state: AppState) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let bound = listener.local_addr().context("reading the bound address")?;
        // Tests and scripts wait for this exact line to learn the port.
        println!("counterbook-server listening on http://{bound}");
        match state.auth() {
            Some(auth) => tracing::info!(
                project = auth.project(),
                allowed_origins = ?auth.allowed_origins(),
                "authentication on: Firestore requests need an ID token from \
                 /identitytoolkit.googleapis.com/v1/accounts:signInWithPassword"
            ),
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
        counterbook_server::connections::serve(listener, app(state), limits, shutdown_signal())
            .await
            .context("serving HTTP")
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
