//! Accepts connections, runs a [`Handler`] per connection, and shuts down through a broadcast
//! signal: stop accepting, tell every connection and in-flight request, wait (bounded) for them
//! to finish. At the connection cap a new client closes the idlest connection instead of
//! waiting behind it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc, OwnedSemaphorePermit, Semaphore};

use super::budget::ByteBudget;
use super::connection::{write_frames, FrameReader, FrameSettings};
use super::group::Groups;
use super::handler::{Handler, Shared, MAX_IN_FLIGHT};
use super::limits::Limits;
use super::registry::Registry;
use crate::storage::Log;

/// Most connections served at once by default ([`Limits::max_connections`]).
pub const MAX_CONNECTIONS: usize = 1024;
/// Responses queued per connection before the handler waits for the socket.
const RESPONSE_QUEUE: usize = 1024;
/// How long shutdown waits for connections to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How long a new client at the cap waits for the evicted connection to let go of its slot.
const EVICTION_WAIT: Duration = Duration::from_secs(1);

/// Serves `log` on `listener` with the default [`Limits`] until `shutdown` completes.
pub async fn run(
    listener: TcpListener,
    log: Log,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    run_with(listener, log, Limits::default(), shutdown).await
}

/// Serves `log` on `listener` within `limits` until `shutdown` completes, then waits for the
/// connections. The caller flushes and closes the log afterwards.
pub async fn run_with(
    listener: TcpListener,
    log: Log,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    limits
        .validate()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let (notify_shutdown, _) = broadcast::channel::<()>(1);
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let slots = Arc::new(Semaphore::new(limits.max_connections as usize));
    let frames = ByteBudget::new(limits.frame_budget_bytes);
    let shared = Arc::new(Shared {
        log,
        registry: Arc::new(Registry::new()),
        responses: ByteBudget::new(limits.response_budget_bytes),
        limits,
        groups: Groups::default(),
    });
    let accept = async {
        loop {
            let (socket, peer) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    // Out of descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Some(permit) = admit(&slots, &shared.registry, peer).await else {
                continue;
            };
            tokio::spawn(serve(
                socket,
                peer,
                shared.clone(),
                FrameSettings::new(&shared.limits, frames.clone()),
                notify_shutdown.clone(),
                (permit, done_tx.clone()),
            ));
        }
    };
    tokio::select! {
        _ = accept => {}
        _ = shutdown => tracing::info!("shutting down"),
    }
    drop(listener);
    let _ = notify_shutdown.send(());
    drop(notify_shutdown);
    drop(done_tx);
    if tokio::time::timeout(SHUTDOWN_GRACE, done_rx.recv())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {SHUTDOWN_GRACE:?}; closing anyway");
    }
    Ok(())
}

/// A slot for a new connection. At the cap, closing the idlest connection keeps the server open
/// to new clients: refusing them instead would let whoever holds the slots (idle or not) lock
/// everyone else out. None when no slot freed in time.
async fn admit(
    slots: &Arc<Semaphore>,
    registry: &Registry,
    peer: SocketAddr,
) -> Option<OwnedSemaphorePermit> {
    if let Ok(p) = slots.clone().try_acquire_owned() {
        return Some(p);
    }
    if let Some(victim) = registry.evict_idlest() {
        tracing::info!(%victim, %peer, "at the connection cap: closed the idlest connection");
    }
    match tokio::time::timeout(EVICTION_WAIT, slots.clone().acquire_owned()).await {
        Ok(Ok(p)) => Some(p),
        _ => {
            tracing::warn!(%peer, "at the connection cap and no slot freed in time: refused");
            None
        }
    }
}

/// One connection, to its end: a writer task sends the responses while the handler reads and
/// answers requests. `held` (its slot, and the shutdown's count of live connections) is
/// released once queued responses have drained.
async fn serve(
    socket: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    frames: FrameSettings,
    notify_shutdown: broadcast::Sender<()>,
    held: (OwnedSemaphorePermit, mpsc::Sender<()>),
) {
    let _ = socket.set_nodelay(true);
    let (read, write) = socket.into_split();
    let (tx, rx) = mpsc::channel(RESPONSE_QUEUE);
    let registry = shared.registry.clone();
    let (conn, _registered) = registry.register(peer);
    let writer = {
        let conn = conn.clone();
        tokio::spawn(async move {
            tokio::select! {
                r = write_frames(write, rx, &conn) => r,
                // Closed to make room or for idling: drop what is queued.
                _ = conn.closed() => Ok(()),
            }
        })
    };
    let mut handler = Handler {
        conn_budget: ByteBudget::new(shared.limits.connection_buffer_bytes),
        shared,
        conn,
        reader: FrameReader::new(read, frames),
        responses: tx,
        in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        shutdown: notify_shutdown.subscribe(),
        notify_shutdown,
    };
    if let Err(e) = handler.run().await {
        tracing::debug!(%peer, error = %e, "connection closed on error");
    }
    // Let queued and in-flight responses drain before the socket closes.
    drop(handler);
    if let Ok(Err(e)) = writer.await {
        tracing::debug!(%peer, error = %e, "writing responses failed");
    }
    drop(held);
}
