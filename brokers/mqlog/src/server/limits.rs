//! The server's resource limits and timeouts, as `bench log serve` flags with their defaults:
//! how many connections, how long a connection may idle or take over one frame, and how many
//! bytes of requests and responses the server holds in memory per connection and in total.

use std::time::Duration;

use super::server::MAX_CONNECTIONS;
use crate::protocol::{MAX_FETCH_BYTES, MAX_FETCH_WAIT};

/// Frames up to this size are read into the connection's own buffer; larger ones first take
/// their size from the shared frame budget ([`Limits::frame_budget_bytes`]).
pub const SMALL_FRAME: usize = 64 << 10;
/// How long a large request frame waits for room in the frame budget before it is refused.
pub const FRAME_BUDGET_WAIT: Duration = Duration::from_secs(5);
/// How long a fetch waits for room in the response budget before it is answered "busy".
pub const RESPONSE_BUDGET_WAIT: Duration = Duration::from_secs(10);
/// While a fetch waits for the response budget, every this often the server closes the
/// connection that has not read its responses for longest, if any qualifies.
pub const SHED_EVERY: Duration = Duration::from_millis(100);
/// A connection qualifies for that once its pending responses have made no progress for this
/// long: a reading client drains a socket in microseconds, so this is a client that stopped.
pub const SHED_STALLED_FOR: Duration = Duration::from_millis(500);

/// Limits of one server; [`Limits::default`] is what the flags default to.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct Limits {
    /// Most connections served at once. At the cap a new connection closes the one idle the
    /// longest (one with no request in progress first), so a flood cannot lock clients out.
    #[arg(long, default_value_t = MAX_CONNECTIONS as u32, value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub max_connections: u32,
    /// Close a connection after this long without a request or a response written, unless
    /// a request of it is in progress (a long-polling fetch). Must exceed --max-fetch-wait-ms.
    #[arg(long, default_value_t = 300_000, value_parser = clap::value_parser!(u64).range(1..=86_400_000))]
    pub idle_timeout_ms: u64,
    /// Once its first byte has arrived, a request frame must be complete within this long.
    #[arg(long, default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub frame_timeout_ms: u64,
    /// The longest long poll a fetch may ask for (longer asks are shortened to this).
    #[arg(long, default_value_t = MAX_FETCH_WAIT.as_millis() as u64, value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    pub max_fetch_wait_ms: u64,
    /// The most bytes of batches one fetch returns, whatever it asks (at least one batch).
    #[arg(long, default_value_t = MAX_FETCH_BYTES, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_FETCH_BYTES)))]
    pub max_fetch_bytes: u32,
    /// Per connection: bytes of fetch responses built and not yet written to the socket. A
    /// connection at this limit is not read from until its client reads.
    #[arg(long, default_value_t = 32 << 20, value_parser = clap::value_parser!(u64).range(1 << 20..=1 << 32))]
    pub connection_buffer_bytes: u64,
    /// All connections together: bytes of fetch responses built and not yet written.
    #[arg(long, default_value_t = 128 << 20, value_parser = clap::value_parser!(u64).range(1 << 20..=1 << 40))]
    pub response_budget_bytes: u64,
    /// All connections together: bytes of request frames larger than 64 KiB being received.
    #[arg(long, default_value_t = 128 << 20, value_parser = clap::value_parser!(u64).range(1 << 20..=1 << 40))]
    pub frame_budget_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: MAX_CONNECTIONS as u32,
            idle_timeout_ms: 300_000,
            frame_timeout_ms: 30_000,
            max_fetch_wait_ms: MAX_FETCH_WAIT.as_millis() as u64,
            max_fetch_bytes: MAX_FETCH_BYTES,
            connection_buffer_bytes: 32 << 20,
            response_budget_bytes: 128 << 20,
            frame_budget_bytes: 128 << 20,
        }
    }
}

/// A combination of limits the server refuses to start with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitsError {
    /// A long poll would look like an idle connection.
    #[error(
        "--idle-timeout-ms {idle} must exceed --max-fetch-wait-ms {wait}, or a long-polling \
         consumer would be closed as idle"
    )]
    IdleNotAboveFetchWait { idle: u64, wait: u64 },
    /// A value outside its range (for limits built in code rather than by the flags).
    #[error("{name} = {value}: use {min}..={max}")]
    OutOfRange {
        name: &'static str,
        value: u64,
        min: u64,
        max: u64,
    },
}

impl Limits {
    /// Checks what the flag ranges cannot: the relation between values (and the ranges again,
    /// for limits built in code).
    pub fn validate(&self) -> Result<(), LimitsError> {
        const MIB: u64 = 1 << 20;
        let ranges = [
            (
                "max_connections",
                u64::from(self.max_connections),
                1,
                65_536,
            ),
            ("idle_timeout_ms", self.idle_timeout_ms, 1, 86_400_000),
            ("frame_timeout_ms", self.frame_timeout_ms, 1, 3_600_000),
            ("max_fetch_wait_ms", self.max_fetch_wait_ms, 0, 3_600_000),
            (
                "max_fetch_bytes",
                u64::from(self.max_fetch_bytes),
                1,
                u64::from(MAX_FETCH_BYTES),
            ),
            (
                "connection_buffer_bytes",
                self.connection_buffer_bytes,
                MIB,
                1 << 32,
            ),
            (
                "response_budget_bytes",
                self.response_budget_bytes,
                MIB,
                1 << 40,
            ),
            ("frame_budget_bytes", self.frame_budget_bytes, MIB, 1 << 40),
        ];
        for (name, value, min, max) in ranges {
            if !(min..=max).contains(&value) {
                return Err(LimitsError::OutOfRange {
                    name,
                    value,
                    min,
                    max,
                });
            }
        }
        if self.idle_timeout_ms <= self.max_fetch_wait_ms {
            return Err(LimitsError::IdleNotAboveFetchWait {
                idle: self.idle_timeout_ms,
                wait: self.max_fetch_wait_ms,
            });
        }
        Ok(())
    }

    /// [`Limits::idle_timeout_ms`] as a duration.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }

    /// [`Limits::frame_timeout_ms`] as a duration.
    pub fn frame_timeout(&self) -> Duration {
        Duration::from_millis(self.frame_timeout_ms)
    }

    /// [`Limits::max_fetch_wait_ms`] as a duration.
    pub fn max_fetch_wait(&self) -> Duration {
        Duration::from_millis(self.max_fetch_wait_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_flags() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            limits: Limits,
        }
        let parsed = Cli::try_parse_from(["x"]).unwrap().limits;
        assert_eq!(parsed, Limits::default());
        assert_eq!(Limits::default().validate(), Ok(()));
    }

    #[test]
    fn an_idle_timeout_under_the_fetch_wait_is_refused() {
        let l = Limits {
            idle_timeout_ms: 60_000,
            ..Limits::default()
        };
        assert_eq!(
            l.validate(),
            Err(LimitsError::IdleNotAboveFetchWait {
                idle: 60_000,
                wait: 60_000
            })
        );
        let l = Limits {
            connection_buffer_bytes: 0,
            ..Limits::default()
        };
        assert!(matches!(
            l.validate(),
            Err(LimitsError::OutOfRange {
                name: "connection_buffer_bytes",
                ..
            })
        ));
    }
}
