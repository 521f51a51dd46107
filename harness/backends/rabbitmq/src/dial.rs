//! Where a worker connects, and how it gets back after losing its connection: every address
//! of the broker (each node of a cluster) tried in turn, each attempt bounded, the whole
//! recovery bounded by `options.reconnect_timeout_ms`, and abandoned when the worker is stopped.
//!
//! lapin's own `enable_auto_recover` reconnects to the one address it was given and replays the
//! topology, but cannot move to another node and does not republish unconfirmed messages, which
//! is what a producer must do to keep its acknowledged messages; hence this.

use std::future::Future;
use std::time::{Duration, Instant};

use lapin::Connection;
use mq_core::BackendError;

use crate::conn;
use crate::options::Options;
use crate::NAME;

/// Pause between two rounds of failed attempts.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// The addresses a worker may use, the one in use, and how long recovering may take.
pub struct Dialer {
    /// (URI with credentials, the address without), in the order they are tried.
    targets: Vec<(String, String)>,
    /// Index of the target of the last connection: tried first next time.
    current: usize,
    /// Connection name the broker shows.
    name: String,
    /// How long after a loss reconnecting may go on; zero: not at all.
    pub reconnect_timeout: Duration,
}

impl Dialer {
    pub fn new(options: &Options, name: String) -> Result<Dialer, BackendError> {
        let targets = options
            .connect_uris()
            .map_err(|m| BackendError::other(NAME, m))?;
        if targets.is_empty() {
            return Err(BackendError::other(NAME, "no broker address"));
        }
        Ok(Dialer {
            targets,
            current: 0,
            name,
            reconnect_timeout: Duration::from_millis(u64::from(options.reconnect_timeout_ms)),
        })
    }

    /// The address of the current (or last) connection, for messages.
    pub fn shown(&self) -> &str {
        &self.targets[self.current].1
    }

    /// Every address, for messages.
    pub fn all_shown(&self) -> String {
        let all: Vec<&str> = self.targets.iter().map(|(_, s)| s.as_str()).collect();
        all.join(", ")
    }

    /// One round: each address once, from the current one on; the first that answers wins.
    /// Every connect is bounded by [`conn::CONNECT_TIMEOUT`]; the error names each address.
    pub async fn connect(&mut self) -> Result<Connection, BackendError> {
        let n = self.targets.len();
        let mut errors = Vec::new();
        for k in 0..n {
            let i = (self.current + k) % n;
            let (uri, shown) = &self.targets[i];
            match conn::connect(uri, shown, &self.name).await {
                Ok(c) => {
                    self.current = i;
                    return Ok(c);
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        Err(BackendError::other(
            NAME,
            errors
                .iter()
                .map(|e| e.trim_start_matches("rabbitmq: "))
                .collect::<Vec<_>>()
                .join("; "),
        ))
    }
}

/// A lost connection on its way back: since when it is being recovered, and the last reason an
/// attempt failed.
pub struct Recovery {
    since: Instant,
    limit: Duration,
    last: Option<String>,
}

impl Recovery {
    pub fn start(limit: Duration, why: impl Into<String>) -> Recovery {
        Recovery {
            since: Instant::now(),
            limit,
            last: Some(why.into()),
        }
    }

    /// Whether the deadline has passed.
    pub fn expired(&self) -> bool {
        self.since.elapsed() >= self.limit
    }

    /// Remembers why the last attempt failed.
    pub fn failed(&mut self, e: &BackendError) {
        self.last = Some(e.to_string());
    }

    /// The error a worker ends with when recovering took too long; `targets` are the addresses
    /// it tried ([`Dialer::all_shown`]).
    pub fn gave_up(&self, targets: &str) -> BackendError {
        let why = self.last.as_deref().unwrap_or("?");
        if self.limit.is_zero() {
            // reconnect_timeout_ms = 0: the loss itself is the error, as it was said.
            return BackendError::other(NAME, why.trim_start_matches("rabbitmq: ").to_owned());
        }
        BackendError::other(
            NAME,
            format!(
                "no connection to {} within {}s of losing it (options.reconnect_timeout_ms); last: {}",
                targets,
                self.limit.as_secs(),
                why.trim_start_matches("rabbitmq: ")
            ),
        )
    }

    /// How long it has taken so far.
    pub fn took(&self) -> Duration {
        self.since.elapsed()
    }
}

/// `f`, abandoned with `Interrupted` as soon as the worker is asked to stop.
pub async fn unless_stopped<T>(
    f: impl Future<Output = Result<T, BackendError>>,
) -> Result<T, BackendError> {
    let stopped = async {
        loop {
            if mq_core::stop::requested() {
                return Err(BackendError::Interrupted { backend: NAME });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    futures_lite::future::or(f, stopped).await
}

/// Sleeps up to `limit` (at most the pause between rounds), waking early when the worker is
/// asked to stop.
pub fn pause(limit: Duration) {
    let until = Instant::now() + limit.min(RETRY_PAUSE);
    while Instant::now() < until && !mq_core::stop::requested() {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `attempt` until it succeeds, `recovery` expires (then the error says why) or the worker
/// is stopped (`Interrupted`); `deadline` may end it sooner (then the last error).
pub fn retry<T>(
    recovery: &mut Recovery,
    targets: &str,
    deadline: Option<Instant>,
    mut attempt: impl FnMut() -> Result<T, BackendError>,
) -> Result<T, BackendError> {
    loop {
        if recovery.expired() {
            return Err(recovery.gave_up(targets));
        }
        match attempt() {
            Ok(v) => return Ok(v),
            Err(e @ BackendError::Interrupted { .. }) => return Err(e),
            Err(e) => {
                recovery.failed(&e);
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(e);
                }
            }
        }
        if mq_core::stop::requested() {
            return Err(BackendError::Interrupted { backend: NAME });
        }
        pause(RETRY_PAUSE);
    }
}
