//! The `counterbook-server` binary: parses flags, opens the data directory and serves
//! `counterbook_server::app` until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use counterbook_server::{app, AppState, ServerConfig, ServerError};

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
    },
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
    let Command::Serve {
        addr,
        data,
        app: app_directory,
        dev,
    } = cli.command;
    let config = ServerConfig {
        data_directory: data,
        app_directory,
        dev_mode: dev,
    };
    let state = match AppState::open(config) {
        Ok(state) => state,
        Err(error @ ServerError::AuthenticationNotImplemented) => {
            eprintln!("counterbook-server: {error}");
            return ExitCode::from(2);
        }
        Err(error) => {
            eprintln!("counterbook-server: cannot open the data directory: {error}");
            return ExitCode::FAILURE;
        }
    };
    match serve(addr, state) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("counterbook-server: {error:#}");
            ExitCode::FAILURE
        }
    }
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
        axum::serve(listener, app(state))
            .with_graceful_shutdown(shutdown_signal())
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
