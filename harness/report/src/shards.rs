//! Sharded runs in the summary: the "Shards" table of a merged run (each shard's host and its
//! same-shard end-to-end latency) and the notes that say how far the clocks may disagree, or
//! that a shard's own counts are only its part.

use mq_results::RunResults;

use crate::doc::{Align, Table, Text};
use crate::tables::n;

/// The table, for a run merged from shards.
pub fn table(r: &RunResults) -> Option<Table> {
    use Align::{Left, Right};
    let m = r.merged.as_ref()?;
    let mut t = Table::new(
        "Shards",
        &[
            ("shard", Right),
            ("host", Left),
            ("variant", Left),
            ("same-shard e2e messages", Right),
            ("same-shard e2e p50 / p99 / p99.9 (µs)", Right),
        ],
    );
    for s in &m.same_shard {
        let host = m.partials.iter().find(|p| p.shard == s.shard);
        let e = &s.end_to_end;
        t.rows.push(vec![
            Text::plain(format!("{}/{}", s.shard, m.shards)),
            Text::plain(host.map_or("", |h| h.host.as_str())),
            s.variant.as_str().into(),
            Text::plain(e.count.to_string()),
            Text::plain(format!(
                "{} / {} / {}",
                n(e.p50_us),
                n(e.p99_us),
                n(e.p999_us)
            )),
        ]);
    }
    Some(t)
}

/// What a reader must know before trusting a sharded run's figures.
pub fn notes(r: &RunResults) -> Vec<Text> {
    let mut notes = Vec::new();
    if let Some(s) = &r.shard {
        notes.push(Text::plain(format!(
            "Shard {s} of a sharded run: the counts are of this shard's own histories, so \
             messages its producers sent to other shards' consumers read as lost and messages \
             from other shards' producers as unexpected; `bench merge` of all {} shards gives \
             the run's counts.",
            s.of
        )));
    }
    if let Some(m) = &r.merged {
        let c = &m.clock;
        let bound = match c.offset_bound_us {
            Some(b) => format!("{b} µs"),
            None => "unknown (a shard's clock was not synchronised)".to_owned(),
        };
        let verdict = match c.end_to_end_reliable {
            true => "end-to-end latency across hosts is within it".to_owned(),
            false => "end-to-end latency across hosts is UNRELIABLE; read each shard's \
                      same-shard latency in the Shards table instead"
                .to_owned(),
        };
        notes.push(Text::plain(format!(
            "Merged from {} shards; clock offset bound {bound} (limit {} µs): {verdict}. {}",
            m.shards, c.limit_us, c.note
        )));
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::tests::{run, variant};
    use mq_results::shards::{Merged, MergedClock, MergedShard, SameShard};

    fn merged(bound: Option<i64>, reliable: bool) -> Merged {
        let e2e = mq_checker::Percentiles {
            count: 10,
            p50_us: 120.0,
            p99_us: 980.0,
            p999_us: 1500.0,
            ..Default::default()
        };
        Merged {
            shards: 2,
            partials: (1..=2)
                .map(|i| MergedShard {
                    shard: i,
                    host: format!("host-{i}"),
                    dir: format!("part-{i}"),
                    started_at: String::new(),
                })
                .collect(),
            clock: MergedClock {
                offset_bound_us: bound,
                limit_us: 1000,
                end_to_end_reliable: reliable,
                note: "Hosts host-1, host-2.".into(),
            },
            same_shard: vec![SameShard {
                variant: "log".into(),
                shard: 2,
                end_to_end: e2e,
                end_to_end_hdr: String::new(),
            }],
        }
    }

    #[test]
    fn a_bound_past_the_limit_flags_cross_host_latency_and_shows_each_shard_s_own() {
        let mut r = run(vec![variant("log", 0, 0)]);
        assert!(table(&r).is_none() && notes(&r).is_empty());
        r.merged = Some(merged(Some(5000), false));
        let note = notes(&r)[0].to_plain();
        assert!(
            note.contains("clock offset bound 5000 µs (limit 1000 µs)"),
            "{note}"
        );
        assert!(note.contains("UNRELIABLE"), "{note}");
        let t = table(&r).unwrap();
        assert_eq!(t.column("host"), ["host-2"]);
        assert_eq!(
            t.column("same-shard e2e p50 / p99 / p99.9 (µs)"),
            ["120 / 980 / 1500"]
        );
        r.merged = Some(merged(None, false));
        assert!(notes(&r)[0]
            .to_plain()
            .contains("unknown (a shard's clock was not synchronised)"));
        r.merged = Some(merged(Some(0), true));
        assert!(notes(&r)[0].to_plain().contains("is within it"));
    }

    #[test]
    fn a_shard_s_own_summary_says_its_counts_are_its_part() {
        let mut r = run(vec![variant("log", 0, 0)]);
        r.shard = Some(mq_core::shard::Shard { index: 2, of: 3 });
        assert!(notes(&r)[0]
            .to_plain()
            .contains("Shard 2/3 of a sharded run"));
    }
}
