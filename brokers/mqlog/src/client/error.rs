//! What can go wrong talking to the log server, and how a refusal on the wire becomes one.

use std::time::{Duration, Instant};

use crate::protocol::{ErrorCode, Response};

/// What can go wrong talking to the log server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Could not connect in time or at all.
    #[error("connecting to the log server at {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// A socket read or write failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// Nothing arrived in time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout { what: String, after: Duration },
    /// The server refused the request.
    #[error("server error {code:?}: {message}")]
    Server { code: ErrorCode, message: String },
    /// The offset is outside the partition: below `start` (retention removed it) or past
    /// `end` (a fetch or commit beyond what was written). The connection stays usable.
    #[error("offset out of range (log start {start}, end {end}): {message}")]
    OutOfRange {
        message: String,
        start: u64,
        end: u64,
    },
    /// The server sent bytes that do not decode, or a response of the wrong kind.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The connection is closed (the server went away); nothing more will arrive.
    #[error("connection to the log server closed: {0}")]
    Disconnected(String),
    /// A request the client refuses to send (too large, no records).
    #[error("invalid request: {0}")]
    Invalid(String),
}

impl ClientError {
    /// Whether the connection failed (reconnecting may help), as opposed to the server
    /// answering with a refusal.
    pub fn is_connection_error(&self) -> bool {
        matches!(
            self,
            ClientError::Connect { .. }
                | ClientError::Io { .. }
                | ClientError::Timeout { .. }
                | ClientError::Disconnected(_)
        )
    }
}

/// `timeout` from now; a timeout too long for the clock means no deadline (a caller's
/// `Duration::MAX` must not panic).
pub(super) fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// Result alias for the client.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

pub(super) fn server_error(resp: Response) -> ClientError {
    match resp {
        Response::Error { code, message } => ClientError::Server { code, message },
        Response::OutOfRange {
            message,
            start,
            end,
        } => ClientError::OutOfRange {
            message,
            start,
            end,
        },
        other => ClientError::Protocol(format!("unexpected response {other:?}")),
    }
}
