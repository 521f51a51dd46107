//! `mqlog-server`: the log server alone (what `bench log serve` runs), for tests and people.

use clap::Parser;

#[derive(Parser)]
#[command(name = "mqlog-server", about = "mq-bench's in-house log server")]
struct Cli {
    #[command(flatten)]
    serve: mqlog::server::ServeArgs,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    mqlog::server::serve(Cli::parse().serve)
}
