//! The "Rebalance pauses" table: per variant whose consumers formed a group, how long its
//! partitions had no consumer (results.json `rebalance`), beside the throughput chart's shading.

use mq_results::RunResults;

use crate::doc::{Align, Table, Text};
use crate::tables::n;

/// The table, when some variant recorded assignment changes.
pub fn table(r: &RunResults) -> Option<Table> {
    use Align::{Left, Right};
    let with: Vec<_> = (r.variants.iter())
        .filter_map(|v| Some((v, v.rebalance.as_ref()?)))
        .collect();
    if with.is_empty() {
        return None;
    }
    let mut t = Table::new(
        "Rebalance pauses",
        &[
            ("variant", Left),
            ("assignment changes", Right),
            ("pauses", Right),
            ("longest pause (ms)", Right),
            ("partition-time paused (ms)", Right),
            ("causes", Left),
            ("no consumer at the end", Left),
        ],
    );
    t.columns[3].title = Text::strong("longest pause (ms)");
    for (v, rb) in with {
        let killed = (rb.pauses.iter())
            .filter(|p| p.cause == mq_checker::rebalance::PauseCause::Killed)
            .count();
        let causes = match (killed, rb.pauses.len() - killed) {
            (0, 0) => String::new(),
            (k, 0) => format!("{k} member killed"),
            (0, r) => format!("{r} revoked"),
            (k, r) => format!("{k} member killed, {r} revoked"),
        };
        let open = rb.unassigned_at_end.iter().map(|p| p.to_string());
        t.rows.push(vec![
            v.name.as_str().into(),
            Text::plain(rb.changes.to_string()),
            Text::plain(rb.pauses.len().to_string()),
            Text::strong(n(rb.max_pause_ms)),
            Text::plain(n(rb.total_pause_ms)),
            causes.into(),
            open.collect::<Vec<_>>().join(", ").into(),
        ]);
    }
    Some(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::tests::{run, variant};
    use mq_checker::rebalance::{Pause, PauseCause, Rebalance};

    #[test]
    fn only_group_variants_get_a_row_with_their_longest_pause() {
        assert_eq!(table(&run(vec![variant("manual", 0, 0)])), None);
        let mut g = variant("group", 0, 12);
        let pause = |partition, cause, from_s, to_s| Pause {
            partition,
            consumer: 1,
            cause,
            from_s,
            to_s,
        };
        g.rebalance = Some(Rebalance {
            changes: 4,
            max_pause_ms: 6012.5,
            total_pause_ms: 12_400.0,
            pauses: vec![
                pause(1, PauseCause::Killed, 2.0, 8.0125),
                pause(3, PauseCause::Killed, 2.0, 8.0125),
                pause(0, PauseCause::Revoked, 8.0, 8.3875),
            ],
            unassigned_at_end: vec![5],
        });
        let t = table(&run(vec![variant("manual", 0, 0), g])).unwrap();
        assert_eq!(t.column("variant"), ["group"]);
        assert_eq!(t.column("longest pause (ms)"), ["6012"]);
        assert_eq!(t.column("pauses"), ["3"]);
        assert_eq!(t.column("causes"), ["2 member killed, 1 revoked"]);
        assert_eq!(t.column("no consumer at the end"), ["5"]);
        let md = crate::summary::table(&t);
        assert!(md.contains("| group | 4 | 3 | **6012** | 12400 |"), "{md}");
    }
}
