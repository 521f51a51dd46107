//! Turns the sampler's readings into a variant's [`Cost`]: per process, per part (broker,
//! producers, consumers), per acked message, and CPU use over time.

use mq_results::cost::{Cost, CpuSeries, Part, PerMessage, ProcessCost, Usage};

use super::proc::{ticks_per_s, ticks_to_s};
use super::{slot, Handle, State, Tracked, Turn, INTERVAL};

/// Widths a bin of the CPU series may have, seconds (at least two samples per bin).
const BIN_WIDTHS: [f64; 9] = [0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0];
/// The most bins the CPU series has.
const MAX_BINS: f64 = 3600.0;

/// What the accounting needs besides the readings.
pub struct Load<'a> {
    /// Acked messages (None: not checked) and the message size.
    pub acked: Option<u64>,
    pub message_size: usize,
    pub cores: u32,
    /// Why the broker's processes are unknown, when they are.
    pub broker_unknown: Option<&'a str>,
}

/// The variant's cost from what `handle` read; None before the load started.
pub fn account(handle: &Handle, load: &Load<'_>) -> Option<Cost> {
    let s = handle.state();
    let go = s.go_ns?;
    let processes: Vec<ProcessCost> = s.tracked.iter().map(process).collect();
    let end = s.turns.last().map_or(go, |t| t.at_ns).max(go);
    let span_s = (end - go) as f64 / 1e9;
    let usage = |part: Part| {
        let (peak, mean) = rss(&s, part);
        Usage::of(processes.iter().filter(|p| p.part == part), peak, mean)
    };
    let broker = load.broker_unknown.is_none().then(|| usage(Part::Broker));
    let (producers, consumers) = (usage(Part::Producer), usage(Part::Consumer));
    let clients_cpu_s = producers.cpu_s + consumers.cpu_s;
    let all_cpu_s = clients_cpu_s + broker.as_ref().map_or(0.0, |b| b.cpu_s);
    let machine_s = f64::from(load.cores.max(1)) * span_s;
    Some(Cost {
        interval_ms: INTERVAL.as_millis() as u64,
        span_s,
        cores: load.cores,
        per_message: load
            .acked
            .and_then(|n| PerMessage::of(broker.as_ref(), clients_cpu_s, n, load.message_size)),
        broker,
        broker_note: load.broker_unknown.map(str::to_owned),
        producers,
        consumers,
        cpu_share: if machine_s > 0.0 {
            all_cpu_s / machine_s
        } else {
            0.0
        },
        series: series(&s, go, end),
        processes,
        sampler_cpu_s: s.sampler_cpu_s,
    })
}

fn process(t: &Tracked) -> ProcessCost {
    ProcessCost {
        part: t.part,
        label: t.label.clone(),
        pid: t.pid,
        cpu_s: ticks_to_s(t.last.cpu_ticks.saturating_sub(t.base.cpu_ticks)),
        peak_rss_bytes: t.peak_rss,
        mean_rss_bytes: match t.rss_samples {
            0 => 0,
            n => (t.rss_sum / u128::from(n)) as u64,
        },
        read_bytes: t.last.read_bytes.saturating_sub(t.base.read_bytes),
        write_bytes: t.last.write_bytes.saturating_sub(t.base.write_bytes),
        samples: t.samples,
        final_sample: t.final_sample,
    }
}

/// The part's peak summed RSS over every turn, and its mean over the turns since the load's
/// start with some process of it alive.
fn rss(s: &State, part: Part) -> (u64, u64) {
    let i = slot(part);
    let peak = s.turns.iter().map(|t| t.rss[i]).max().unwrap_or(0);
    let go = s.go_ns.unwrap_or(0);
    let alive: Vec<u64> = (s.turns.iter())
        .filter(|t| t.at_ns >= go && t.alive[i])
        .map(|t| t.rss[i])
        .collect();
    let mean = match alive.len() {
        0 => 0,
        n => alive.iter().map(|&r| u128::from(r)).sum::<u128>() / n as u128,
    };
    (peak, mean as u64)
}

/// Cores busy per bin from `go` to `end`: the CPU each part's cumulative time grew by across
/// the bin (interpolated between turns), over the bin's width.
fn series(s: &State, go: u64, end: u64) -> CpuSeries {
    let span = (end - go) as f64 / 1e9;
    let bin_s = (BIN_WIDTHS.iter().copied())
        .find(|w| span / w <= MAX_BINS)
        .unwrap_or(BIN_WIDTHS[BIN_WIDTHS.len() - 1]);
    let bins = (span / bin_s).ceil() as usize;
    let cpu_at = |part: &[usize], t_ns: u64| -> f64 {
        let sum = |turn: &Turn| part.iter().map(|&i| turn.cpu[i]).sum::<u64>() as f64;
        let after = s.turns.partition_point(|t| t.at_ns <= t_ns);
        match (
            after.checked_sub(1).map(|i| &s.turns[i]),
            s.turns.get(after),
        ) {
            (Some(a), Some(b)) => {
                let f = (t_ns - a.at_ns) as f64 / (b.at_ns - a.at_ns).max(1) as f64;
                sum(a) + f * (sum(b) - sum(a))
            }
            (Some(a), None) => sum(a),
            (None, Some(b)) => sum(b),
            (None, None) => 0.0,
        }
    };
    let per_bin = |part: &[usize]| -> Vec<f64> {
        (0..bins)
            .map(|k| {
                let edge = |k: usize| go + (k as f64 * bin_s * 1e9) as u64;
                let (from, to) = (edge(k), edge(k + 1).min(end));
                let grew = cpu_at(part, to) - cpu_at(part, from);
                let width_s = (to.saturating_sub(from) as f64 / 1e9).max(1e-3);
                grew.max(0.0) / ticks_per_s() / width_s
            })
            .collect()
    };
    CpuSeries {
        bin_s,
        broker: per_bin(&[0]),
        clients: per_bin(&[1, 2]),
    }
}
