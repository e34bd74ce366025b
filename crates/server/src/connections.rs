//! Accepting HTTP connections with bounds: how many are open at once, how many one client
//! address holds, and how long a client may take to send a request's headers.
//!
//! `axum::serve` runs hyper without a timer, so a connection that never finishes its headers
//! lives for ever; a stranger holding a thousand of them made the server unreachable. Here
//! every connection is served by hyper's HTTP/1 server with Tokio's timer and a header read
//! timeout (which also closes idle keep-alive connections: hyper starts the clock whenever it
//! waits for the next request's head), and the accept loop holds two caps:
//! - `max_connections` in all: at the cap the loop stops accepting, so new clients wait in the
//!   kernel's backlog until a connection ends (a slow client's ends at its header timeout)
//!   instead of being refused;
//! - `max_connections_per_address` per client address (an IPv6 address counts by its /64, which
//!   one client usually owns whole): a connection past it is closed at once, so that one
//!   address cannot fill the whole table and keep every other shop waiting.
//!
//! A request's body must then arrive within `body_read_timeout` of its headers: every body is
//! wrapped in a `DeadlineBody` whose next frame is an error (`BodyReadTimedOut`) once the time
//! is up, which the API answers 408 `DEADLINE_EXCEEDED` (`request_body`) and every other reader
//! as a failed read; either way the request ends and so does its connection. Every connection
//! carries the peer address as axum's `ConnectInfo<SocketAddr>` (the sign-in rate limiter
//! reads it).
//!
//! HTTPS (`serve_tls`) keeps every bound: the connection counts from its acceptance, and the
//! first byte and the whole TLS handshake must arrive within `header_read_timeout` too. A
//! connection whose first byte is a TLS handshake record (0x16) is served over rustls; any
//! other is plain HTTP and gets the plain router (the setup page and a redirect to HTTPS,
//! `setup_page::plain_http_router`), so `http://` and `https://` share one port. Every answer
//! over TLS, and only those, carries `Strict-Transport-Security` (`STRICT_TRANSPORT_SECURITY`):
//! a browser that reached the server by a name over HTTPS goes there over HTTPS from then on.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use crate::client_network::client_network;
use tower::ServiceExt;

/// The bounds on connections.
#[derive(Clone, Debug)]
pub struct ConnectionLimits {
    /// Connections open at once, at most; past it no connection is accepted until one ends.
    pub max_connections: usize,
    /// Connections one client address (an IPv6 /64) holds at once, at most; past it a new
    /// connection from that address is closed as soon as it is accepted.
    pub max_connections_per_address: usize,
    /// How long a client may take to send a request's headers, counted from when the server
    /// starts waiting for them (also the idle time of a keep-alive connection).
    pub header_read_timeout: Duration,
    /// How long a request's body may take to arrive in full, counted from its headers.
    pub body_read_timeout: Duration,
    /// How long a shutdown waits for open connections (a Listen back channel may be open for a
    /// minute) before it ends them.
    pub shutdown_grace: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 4096,
            max_connections_per_address: 256,
            header_read_timeout: Duration::from_secs(20),
            body_read_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

impl ConnectionLimits {
    /// These limits with `max_connections` lowered, if need be, so that open connections
    /// cannot use up the process's file descriptors (the database and the blocking pool need
    /// some too). Raises the soft descriptor limit to the hard one first, where it can.
    pub fn fitted_to_file_descriptor_limit(mut self) -> ConnectionLimits {
        if let Some(descriptors) = raise_file_descriptor_limit() {
            let available = descriptors.saturating_sub(RESERVED_FILE_DESCRIPTORS).max(1);
            self.max_connections = self.max_connections.min(available);
        }
        self
    }
}

/// File descriptors kept for everything but client connections.
const RESERVED_FILE_DESCRIPTORS: usize = 128;

/// Raises `RLIMIT_NOFILE`'s soft limit to its hard limit; the soft limit in force after.
fn raise_file_descriptor_limit() -> Option<usize> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    usize::try_from(limit.rlim_cur).ok()
}

/// Open connections per client address. A std `Mutex`: nothing is awaited while it is held.
#[derive(Default)]
struct ConnectionsPerAddress {
    counts: Mutex<HashMap<IpAddr, usize>>,
}

impl ConnectionsPerAddress {
    /// Counts one more connection from `address`, unless it already holds `limit`.
    fn try_add(self: &Arc<Self>, address: IpAddr, limit: usize) -> Option<AddressSlot> {
        let key = client_network(address);
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let count = counts.entry(key).or_insert(0);
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            table: Arc::clone(self),
            key,
        })
    }
}

/// One connection counted against its address; dropping it uncounts it.
struct AddressSlot {
    table: Arc<ConnectionsPerAddress>,
    key: IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut counts = self.table.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = counts.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` resolves, then lets open
/// connections finish their requests for at most `limits.shutdown_grace`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    accept_loop(listener, Transport::Plain { router }, limits, shutdown).await
}

/// The `Strict-Transport-Security` of every HTTPS answer: a year, for this host only. Not
/// `includeSubDomains`: a shop's server is reached as `till.local` or a LAN address, and other
/// machines or services under its name owe it nothing. Browsers ignore it for a host that is an
/// IP address (RFC 6797, section 8.1), so a tablet can always reach `http://ADDRESS/setup/ca`.
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=31536000";

/// Like `serve`, over TLS with `tls_config`: `router` for HTTPS connections (each answer with
/// `Strict-Transport-Security`), `plain_router` for connections that start as plain HTTP on the
/// same port (never with it: a browser ignores it there, and a redirect is all they get).
pub async fn serve_tls(
    listener: TcpListener,
    router: Router,
    plain_router: Router,
    tls_config: Arc<rustls::ServerConfig>,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let router = router.layer(axum::middleware::map_response(
        |mut response: axum::response::Response| async move {
            response.headers_mut().insert(
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static(STRICT_TRANSPORT_SECURITY),
            );
            response
        },
    ));
    let transport = Transport::Tls {
        router,
        plain_router,
        acceptor: TlsAcceptor::from(tls_config),
    };
    accept_loop(listener, transport, limits, shutdown).await
}

/// How accepted connections are served.
#[derive(Clone)]
enum Transport {
    Plain {
        router: Router,
    },
    Tls {
        router: Router,
        plain_router: Router,
        acceptor: TlsAcceptor,
    },
}

/// The first byte of a TLS connection: a handshake record.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

async fn accept_loop(
    listener: TcpListener,
    transport: Transport,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let open_connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let per_address = Arc::new(ConnectionsPerAddress::default());
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&open_connections).acquire_owned() => {
                permit.expect("the connection semaphore is never closed")
            }
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors or a connection reset before it was accepted: the
                    // listener itself is fine. Pause briefly so a full descriptor table does
                    // not spin the loop.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(address_slot) = per_address.try_add(peer.ip(), limits.max_connections_per_address)
        else {
            tracing::debug!(%peer, "too many connections from this address; closed");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let transport = transport.clone();
        let http = http.clone();
        let watcher = graceful.watcher();
        let limits = limits.clone();
        tokio::spawn(async move {
            let outcome = serve_connection(stream, peer, transport, &http, watcher, &limits).await;
            if let Err(error) = outcome {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
            drop(address_slot);
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::info!("connections still open after the shutdown grace period; ending them");
    }
    Ok(())
}

/// Serves one accepted connection to its end.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    transport: Transport,
    http: &hyper::server::conn::http1::Builder,
    watcher: Watcher,
    limits: &ConnectionLimits,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let body_read_timeout = limits.body_read_timeout;
    match transport {
        Transport::Plain { router } => {
            serve_http(stream, router, peer, http, watcher, body_read_timeout).await
        }
        Transport::Tls {
            router,
            plain_router,
            acceptor,
        } => {
            let mut first_byte = [0u8; 1];
            let peeked =
                tokio::time::timeout(limits.header_read_timeout, stream.peek(&mut first_byte))
                    .await
                    .map_err(|_| "no request within the header read timeout")??;
            if peeked == 0 {
                return Ok(());
            }
            if first_byte[0] != TLS_HANDSHAKE_RECORD {
                return serve_http(stream, plain_router, peer, http, watcher, body_read_timeout)
                    .await;
            }
            let tls_stream =
                tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream))
                    .await
                    .map_err(|_| {
                        "the TLS handshake did not finish within the header read timeout"
                    })??;
            serve_http(tls_stream, router, peer, http, watcher, body_read_timeout).await
        }
    }
}

/// Serves HTTP/1 on `io` with `router`: each request's body under its deadline, and the
/// peer's address as `ConnectInfo`.
async fn serve_http<I>(
    io: I,
    router: Router,
    peer: SocketAddr,
    http: &hyper::server::conn::http1::Builder,
    watcher: Watcher,
    body_read_timeout: Duration,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = tower::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
        let router = router.clone();
        async move {
            let body_ended = Arc::new(AtomicBool::new(http_body::Body::is_end_stream(
                request.body(),
            )));
            let mut request = request.map(|body| {
                axum::body::Body::new(DeadlineBody::new(
                    body,
                    body_read_timeout,
                    Arc::clone(&body_ended),
                ))
            });
            request
                .extensions_mut()
                .insert(ConnectInfo::<SocketAddr>(peer));
            let mut response = router.oneshot(request).await?;
            // Hyper cannot reuse a connection whose request body was left partly unread (a
            // refused upload, a body past its deadline): it closes it after this answer. Say
            // so, or a client would put the connection back in its pool and send its next
            // request into a closed socket.
            if !body_ended.load(Ordering::Acquire) {
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok::<_, Infallible>(response)
        }
    });
    let connection = http.serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
    watcher.watch(connection).await?;
    Ok(())
}

/// The error a request body gives once its time to arrive is up.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {} s", timeout.as_secs_f64())]
pub struct BodyReadTimedOut {
    pub timeout: Duration,
}

/// A request body that fails with `BodyReadTimedOut` if it has not ended by its deadline, and
/// sets `ended` once it has been read to its end.
struct DeadlineBody {
    inner: hyper::body::Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
    timeout: Duration,
    ended: Arc<AtomicBool>,
}

impl DeadlineBody {
    fn new(
        inner: hyper::body::Incoming,
        timeout: Duration,
        ended: Arc<AtomicBool>,
    ) -> DeadlineBody {
        DeadlineBody {
            inner,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            timeout,
            ended,
        }
    }
}

impl http_body::Body for DeadlineBody {
    type Data = axum::body::Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(context) {
            Poll::Ready(frame) => {
                if frame.is_none() || this.inner.is_end_stream() {
                    this.ended.store(true, Ordering::Release);
                }
                Poll::Ready(frame.map(|frame| frame.map_err(Into::into)))
            }
            Poll::Pending => match this.deadline.as_mut().poll(context) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyReadTimedOut {
                    timeout: this.timeout,
                })))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_holds_at_most_its_limit_and_slots_are_returned() {
        let table = Arc::new(ConnectionsPerAddress::default());
        let address: IpAddr = "192.0.2.7".parse().unwrap();
        let first = table.try_add(address, 2).unwrap();
        let _second = table.try_add(address, 2).unwrap();
        assert!(table.try_add(address, 2).is_none());
        assert!(table.try_add("192.0.2.8".parse().unwrap(), 2).is_some());
        drop(first);
        assert!(table.try_add(address, 2).is_some());
    }
}
