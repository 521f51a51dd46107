//! The log server: tokio, one task per connection, the binary protocol of
//! [`crate::protocol`]. [`serve`] is what `bench log serve` and `mqlog-server` run; its
//! resource limits and timeouts are [`Limits`].

mod budget;
mod connection;
mod fetch;
mod group;
mod handler;
mod limits;
mod registry;
#[allow(clippy::module_inception)]
mod server;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

pub use budget::{ByteBudget, ResponseBudget};
pub use connection::{write_frames, ConnectionError, Frame, FrameReader, FrameSettings, Outgoing};
pub use group::{range_assign, Groups, MAX_GROUPS, MAX_MEMBERS};
pub use handler::{error_response, FSYNC_WAIT, MAX_IN_FLIGHT};
pub use limits::{
    Limits, LimitsError, FRAME_BUDGET_WAIT, RESPONSE_BUDGET_WAIT, SHED_STALLED_FOR, SMALL_FRAME,
};
pub use registry::{ConnState, Registry};
pub use server::{run, run_with, MAX_CONNECTIONS};

use crate::storage::{
    FsyncPolicy, Log, LogConfig, DEFAULT_MAX_OPEN_FILES, DEFAULT_MAX_PARTITIONS_PER_TOPIC,
    DEFAULT_MAX_TOPICS,
};

/// Command-line arguments of the log server.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Directory holding the log (created if missing; one server per directory).
    #[arg(long)]
    pub dir: PathBuf,
    /// Address to listen on; port 0 picks a free port, printed as `listening ADDR`.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// When to fsync: never, interval:MS, or always (group commit before every ack).
    #[arg(long, default_value = "never", value_parser = parse_fsync)]
    pub fsync: FsyncPolicy,
    /// Segment size limit in bytes before a new segment is rolled.
    #[arg(long, default_value_t = 64 << 20)]
    pub segment_bytes: u64,
    /// Per partition: delete the oldest segments while the partition is larger than this.
    #[arg(long)]
    pub retention_bytes: Option<u64>,
    /// Delete segments whose newest record is older than this many milliseconds.
    #[arg(long)]
    pub retention_ms: Option<u64>,
    /// One sparse index entry per this many bytes of batches.
    #[arg(long, default_value_t = 4096)]
    pub index_interval_bytes: u32,
    /// Most segment files open at once (at most half the process's open-file limit).
    #[arg(long, default_value_t = DEFAULT_MAX_OPEN_FILES)]
    pub max_open_files: usize,
    /// Most partitions a topic may be created with.
    #[arg(long, default_value_t = DEFAULT_MAX_PARTITIONS_PER_TOPIC)]
    pub max_partitions_per_topic: u32,
    /// Most topics the log holds.
    #[arg(long, default_value_t = DEFAULT_MAX_TOPICS)]
    pub max_topics: u32,
    /// Connection cap, timeouts and memory budgets.
    #[command(flatten)]
    pub limits: Limits,
}

fn parse_fsync(s: &str) -> Result<FsyncPolicy, String> {
    s.parse()
        .map_err(|e: crate::storage::StorageError| e.to_string())
}

impl ServeArgs {
    /// Defaults for a directory (what the command line gives with only `--dir`).
    pub fn new(dir: impl Into<PathBuf>) -> ServeArgs {
        ServeArgs {
            dir: dir.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            fsync: FsyncPolicy::Never,
            segment_bytes: 64 << 20,
            retention_bytes: None,
            retention_ms: None,
            index_interval_bytes: 4096,
            max_open_files: DEFAULT_MAX_OPEN_FILES,
            max_partitions_per_topic: DEFAULT_MAX_PARTITIONS_PER_TOPIC,
            max_topics: DEFAULT_MAX_TOPICS,
            limits: Limits::default(),
        }
    }

    /// The engine configuration these arguments describe.
    pub fn log_config(&self) -> LogConfig {
        LogConfig {
            segment_bytes: self.segment_bytes,
            index_interval_bytes: self.index_interval_bytes,
            retention_bytes: self.retention_bytes,
            retention_age: self.retention_ms.map(Duration::from_millis),
            fsync: self.fsync,
            max_open_files: self.max_open_files,
            max_partitions_per_topic: self.max_partitions_per_topic,
            max_topics: self.max_topics,
            ..LogConfig::default()
        }
    }
}

/// Opens the log, listens, prints `listening ADDR` on stdout, serves until SIGTERM or SIGINT,
/// then drains connections, fsyncs everything and returns.
pub fn serve(args: ServeArgs) -> anyhow::Result<()> {
    args.limits
        .validate()
        .context("checking the server's limits")?;
    let log = Log::open(&args.dir, args.log_config())
        .with_context(|| format!("opening the log in {}", args.dir.display()))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("mqlog-server")
        .build()
        .context("starting the tokio runtime")?;
    let served = rt.block_on(async {
        let shutdown = shutdown_signal().context("installing SIGTERM/SIGINT handlers")?;
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "listening {addr}").context("writing to stdout")?;
            out.flush().context("flushing stdout")?;
        }
        tracing::info!(%addr, dir = %args.dir.display(), fsync = %args.fsync, "log server listening");
        run_with(listener, log.clone(), args.limits.clone(), shutdown)
            .await
            .context("serving connections")
    });
    rt.shutdown_timeout(Duration::from_secs(5));
    let closed = log
        .close()
        .with_context(|| format!("flushing the log in {}", args.dir.display()));
    served.and(closed)
}

/// Completes on the first SIGTERM or SIGINT.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}
