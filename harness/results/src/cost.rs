//! What a variant cost: CPU time, memory and storage I/O of its broker and of its workers, from
//! /proc samples taken while it ran (the runner's `resources` sampler), and the per-message
//! figures derived from them (docs/results-schema.md, "cost").

use serde::{Deserialize, Serialize};

/// Which side of the benchmark a process is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Part {
    Broker,
    Producer,
    Consumer,
}

/// One process (one incarnation: a restarted broker is a new entry) as the sampler saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessCost {
    pub part: Part,
    /// e.g. `broker`, `producer 0`, `consumer 1 (r1)`.
    pub label: String,
    pub pid: u32,
    /// utime + stime, seconds, since the load began (or since its start, if it started later).
    pub cpu_s: f64,
    pub peak_rss_bytes: u64,
    pub mean_rss_bytes: u64,
    /// `/proc/<pid>/io` read_bytes and write_bytes: bytes fetched from or sent to storage.
    pub read_bytes: u64,
    pub write_bytes: u64,
    /// How many samples it was read in.
    pub samples: u32,
    /// Its last sample was taken as it exited or was stopped (false: it vanished, e.g. a
    /// SIGKILL, and its last periodic sample stands).
    pub final_sample: bool,
}

/// The sum over the processes of one part (a cluster's nodes, all producers …).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub cpu_s: f64,
    /// The largest sum of the part's RSS at one sample.
    pub peak_rss_bytes: u64,
    /// The mean of that sum over the samples with some process of the part alive.
    pub mean_rss_bytes: u64,
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub processes: u32,
}

/// The per-message figures of a variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerMessage {
    /// Acked messages (the checker's count) and their bytes (`acked × message_size`).
    pub messages: u64,
    pub message_bytes: u64,
    /// CPU microseconds per acked message: the broker's (null: unknown), the workers', both.
    pub broker_cpu_us: Option<f64>,
    pub clients_cpu_us: f64,
    pub total_cpu_us: Option<f64>,
    /// CPU seconds per million acked messages, broker and workers (workers alone when the
    /// broker is unknown: `total_cpu_us` then is null).
    pub cpu_s_per_million: f64,
    /// Broker write_bytes / message_bytes (null: broker unknown or nothing acked).
    pub write_amplification: Option<f64>,
}

/// CPU use over time: cores busy (CPU seconds per second) in each bin since the load began.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuSeries {
    pub bin_s: f64,
    pub broker: Vec<f64>,
    pub clients: Vec<f64>,
}

/// What a variant cost (`cost` of a variant in results.json).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    /// The sampling interval, milliseconds.
    pub interval_ms: u64,
    /// Seconds from the load's start to the last sample.
    pub span_s: f64,
    /// The machine's cores (as `machine.cores`).
    pub cores: u32,
    /// Null when the broker's processes are not known (`broker_note` says why).
    pub broker: Option<Usage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker_note: Option<String>,
    pub producers: Usage,
    pub consumers: Usage,
    /// CPU seconds of broker and workers over `cores × span_s`: the share of the machine used.
    pub cpu_share: f64,
    /// Null when nothing was acked.
    pub per_message: Option<PerMessage>,
    pub series: CpuSeries,
    pub processes: Vec<ProcessCost>,
    /// CPU seconds the sampling thread itself used (in the `bench` process, over the whole
    /// variant: set-up, load and drain), for judging the sampler's overhead.
    #[serde(default)]
    pub sampler_cpu_s: f64,
}

impl Usage {
    /// The sum of `processes`' figures, with the part's peak and mean RSS given.
    pub fn of<'a>(
        processes: impl Iterator<Item = &'a ProcessCost>,
        peak_rss_bytes: u64,
        mean_rss_bytes: u64,
    ) -> Usage {
        let mut u = Usage {
            peak_rss_bytes,
            mean_rss_bytes,
            ..Usage::default()
        };
        for p in processes {
            u.cpu_s += p.cpu_s;
            u.read_bytes += p.read_bytes;
            u.write_bytes += p.write_bytes;
            u.processes += 1;
        }
        u
    }
}

impl PerMessage {
    /// The figures for `messages` acked messages of `message_size` bytes; None when none was.
    pub fn of(
        broker: Option<&Usage>,
        clients_cpu_s: f64,
        messages: u64,
        message_size: usize,
    ) -> Option<PerMessage> {
        if messages == 0 {
            return None;
        }
        let n = messages as f64;
        let message_bytes = messages.saturating_mul(message_size as u64);
        let broker_cpu_us = broker.map(|b| b.cpu_s * 1e6 / n);
        let clients_cpu_us = clients_cpu_s * 1e6 / n;
        let total_cpu_us = broker_cpu_us.map(|b| b + clients_cpu_us);
        Some(PerMessage {
            messages,
            message_bytes,
            broker_cpu_us,
            clients_cpu_us,
            total_cpu_us,
            cpu_s_per_million: total_cpu_us.unwrap_or(clients_cpu_us),
            write_amplification: broker
                .filter(|_| message_bytes > 0)
                .map(|b| b.write_bytes as f64 / message_bytes as f64),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_message_figures_divide_by_the_acked_messages() {
        let broker = Usage {
            cpu_s: 2.0,
            write_bytes: 3_000_000,
            ..Usage::default()
        };
        let m = PerMessage::of(Some(&broker), 1.0, 1_000_000, 100).unwrap();
        assert_eq!(m.broker_cpu_us, Some(2.0));
        assert_eq!(m.clients_cpu_us, 1.0);
        assert_eq!(m.total_cpu_us, Some(3.0));
        // µs per message and s per million messages are the same number.
        assert_eq!(m.cpu_s_per_million, 3.0);
        assert_eq!(m.write_amplification, Some(0.03));
        let unknown = PerMessage::of(None, 1.0, 1_000_000, 100).unwrap();
        assert_eq!(unknown.total_cpu_us, None);
        assert_eq!(unknown.write_amplification, None);
        assert_eq!(unknown.cpu_s_per_million, 1.0);
        assert_eq!(PerMessage::of(Some(&broker), 1.0, 0, 100), None);
    }
}
