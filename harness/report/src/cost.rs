//! The "Cost" table, the cost chart's bars and the CPU chart's lines: per variant with cost figures (results.json
//! `cost`), CPU per acked message (broker, workers, both), write amplification, memory and the
//! share of the machine's CPU used.

use mq_results::cost::Cost;
use mq_results::{RunResults, VariantResult};

use crate::charts::{CostBar, CpuLine};
use crate::doc::{Align, Table, Text};
use crate::tables::n;

/// The variants with cost figures, and their index (their colour).
fn with_cost(r: &RunResults) -> impl Iterator<Item = (usize, &VariantResult, &Cost)> {
    (r.variants.iter().enumerate()).filter_map(|(i, v)| Some((i, v, v.cost.as_ref()?)))
}

fn mb(bytes: u64) -> String {
    n(bytes as f64 / 1e6)
}

/// The table, when some variant has cost figures.
pub fn table(r: &RunResults) -> Option<Table> {
    use Align::{Left, Right};
    let mut t = Table::new(
        "Cost",
        &[
            ("variant", Left),
            ("CPU µs/msg broker", Right),
            ("CPU µs/msg workers", Right),
            ("CPU µs/msg total", Right),
            ("write amplification", Right),
            ("broker written (MB)", Right),
            ("broker peak RSS (MB)", Right),
            ("workers peak RSS (MB)", Right),
            ("CPU share of the machine", Right),
            ("broker", Left),
        ],
    );
    t.columns[3].title = Text::strong("CPU µs/msg total");
    for (_, v, c) in with_cost(r) {
        let per = c.per_message.as_ref();
        let opt = |x: Option<f64>| x.map_or("–".to_owned(), n);
        let broker = c.broker.as_ref();
        t.rows.push(vec![
            v.name.as_str().into(),
            opt(per.and_then(|p| p.broker_cpu_us)).into(),
            opt(per.map(|p| p.clients_cpu_us)).into(),
            Text::strong(opt(per.and_then(|p| p.total_cpu_us))),
            opt(per.and_then(|p| p.write_amplification)).into(),
            broker.map_or("–".to_owned(), |b| mb(b.write_bytes)).into(),
            broker
                .map_or("–".to_owned(), |b| mb(b.peak_rss_bytes))
                .into(),
            mb(c.producers.peak_rss_bytes + c.consumers.peak_rss_bytes).into(),
            format!("{}% of {} cores", n(c.cpu_share * 100.0), c.cores).into(),
            match (&c.broker_note, broker) {
                (Some(note), _) => format!("unknown: {note}"),
                (None, Some(b)) => format!("{} process(es)", b.processes),
                (None, None) => "unknown".to_owned(),
            }
            .into(),
        ]);
    }
    (!t.rows.is_empty()).then_some(t)
}

/// The cost chart's bars: variants with per-message figures.
pub fn bars(r: &RunResults) -> Vec<CostBar> {
    with_cost(r)
        .filter_map(|(i, v, c)| {
            let per = c.per_message.as_ref()?;
            // µs per message = s per million messages.
            Some(CostBar {
                name: v.name.clone(),
                colour: i,
                broker_cpu: per.broker_cpu_us,
                clients_cpu: per.clients_cpu_us,
                write_amplification: per.write_amplification,
            })
        })
        .collect()
}

/// The CPU-over-time chart's lines: variants with a CPU series.
pub fn lines(r: &RunResults) -> Vec<CpuLine> {
    with_cost(r)
        .filter(|(_, _, c)| !c.series.clients.is_empty() && c.series.bin_s > 0.0)
        .map(|(i, v, c)| CpuLine {
            name: v.name.clone(),
            colour: i,
            bin_s: c.series.bin_s,
            broker: c.broker.as_ref().map(|_| c.series.broker.clone()),
            clients: c.series.clients.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::tests::{run, variant};
    use mq_results::cost::{CpuSeries, PerMessage, Usage};

    fn cost(broker: Option<Usage>) -> Cost {
        let workers = Usage {
            cpu_s: 1.0,
            peak_rss_bytes: 20_000_000,
            ..Usage::default()
        };
        Cost {
            interval_ms: 250,
            span_s: 2.0,
            cores: 2,
            per_message: PerMessage::of(broker.as_ref(), 2.0, 1_000_000, 100),
            broker_note: broker.is_none().then(|| "the kernel".to_owned()),
            broker,
            producers: workers.clone(),
            consumers: workers,
            cpu_share: 0.75,
            series: CpuSeries::default(),
            processes: Vec::new(),
            sampler_cpu_s: 0.01,
        }
    }

    #[test]
    fn each_variant_with_cost_gets_a_row_and_a_bar_and_an_unknown_broker_says_why() {
        assert_eq!(table(&run(vec![variant("none", 0, 0)])), None);
        let mut log = variant("log", 0, 0);
        log.cost = Some(cost(Some(Usage {
            cpu_s: 1.0,
            write_bytes: 150_000_000,
            peak_rss_bytes: 12_000_000,
            processes: 1,
            ..Usage::default()
        })));
        let mut sysv = variant("sysv", 0, 0);
        sysv.cost = Some(cost(None));
        let r = run(vec![variant("none", 0, 0), log, sysv]);
        let t = table(&r).unwrap();
        assert_eq!(t.column("variant"), ["log", "sysv"]);
        assert_eq!(t.column("CPU µs/msg broker"), ["1.00", "–"]);
        assert_eq!(t.column("CPU µs/msg workers"), ["2.00", "2.00"]);
        assert_eq!(t.column("CPU µs/msg total"), ["3.00", "–"]);
        assert_eq!(t.column("write amplification"), ["1.50", "–"]);
        assert_eq!(t.column("workers peak RSS (MB)"), ["40.0", "40.0"]);
        assert_eq!(t.column("broker"), ["1 process(es)", "unknown: the kernel"]);
        let b = bars(&r);
        assert_eq!(b.len(), 2);
        assert_eq!((b[0].colour, b[0].broker_cpu), (1, Some(1.0)));
        assert_eq!((b[1].colour, b[1].write_amplification), (2, None));
        let chart = crate::charts::cost(&b).unwrap().unwrap();
        assert!(chart.svg.contains("n/a") && chart.svg.contains("sysv"));
        // No CPU series in these: no CPU-over-time lines.
        assert!(lines(&r).is_empty());
    }

    #[test]
    fn a_cpu_series_is_a_line_and_an_unknown_broker_has_none() {
        let mut sysv = variant("sysv", 0, 0);
        let mut c = cost(None);
        c.series = CpuSeries {
            bin_s: 0.5,
            broker: vec![0.0, 0.0],
            clients: vec![1.5, 0.25],
        };
        sysv.cost = Some(c);
        let l = lines(&run(vec![sysv]));
        assert_eq!(l.len(), 1);
        assert_eq!(
            (l[0].broker.as_ref(), &l[0].clients[..]),
            (None, &[1.5, 0.25][..])
        );
        let chart = crate::charts::cpu(&l, 2).unwrap().unwrap();
        assert!(chart.svg.contains("machine") && chart.svg.contains("cores busy"));
    }
}
