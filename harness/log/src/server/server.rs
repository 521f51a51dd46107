//! Accepts connections, runs a [`Handler`] per connection, and shuts down through a broadcast
//! signal: stop accepting, tell every connection and in-flight request, wait (bounded) for them
//! to finish.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, Semaphore};

use super::connection::{write_frames, FrameReader};
use super::handler::{Handler, MAX_IN_FLIGHT};
use crate::storage::Log;

/// Most connections served at once; further ones wait in the accept backlog.
pub const MAX_CONNECTIONS: usize = 1024;
/// Responses queued per connection before the handler waits for the socket.
const RESPONSE_QUEUE: usize = 1024;
/// How long shutdown waits for connections to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves `log` on `listener` until `shutdown` completes, then waits for the connections.
/// The caller flushes and closes the log afterwards.
pub async fn run(
    listener: TcpListener,
    log: Log,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let (notify_shutdown, _) = broadcast::channel::<()>(1);
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let accept = async {
        loop {
            let permit = limit
                .clone()
                .acquire_owned()
                .await
                .expect("semaphore never closed");
            let (socket, peer) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    // Out of descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = socket.set_nodelay(true);
            let (read, write) = socket.into_split();
            let (tx, rx) = mpsc::channel(RESPONSE_QUEUE);
            let mut handler = Handler {
                log: log.clone(),
                reader: FrameReader::new(read),
                responses: tx,
                in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
                notify_shutdown: notify_shutdown.clone(),
                shutdown: notify_shutdown.subscribe(),
            };
            let done = done_tx.clone();
            tokio::spawn(async move {
                let writer = tokio::spawn(write_frames(write, rx));
                if let Err(e) = handler.run().await {
                    tracing::debug!(%peer, error = %e, "connection closed on error");
                }
                // Let queued and in-flight responses drain before the socket closes.
                drop(handler);
                if let Ok(Err(e)) = writer.await {
                    tracing::debug!(%peer, error = %e, "writing responses failed");
                }
                drop(permit);
                drop(done);
            });
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
