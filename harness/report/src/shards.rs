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
