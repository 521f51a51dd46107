//! The "Idempotent consumers" table: per variant with `consumer_dedup = "store"`, what its store
//! held at the end (results.json `report.dedup`): messages processed, redeliveries skipped, and
//! messages credited from the store because no history had them.

use mq_results::RunResults;

use crate::doc::{Align, Table, Text};

/// The table, when some variant used the dedup store.
pub fn table(r: &RunResults) -> Option<Table> {
    use Align::{Left, Right};
    let with: Vec<_> = (r.variants.iter())
        .filter_map(|v| Some((v, v.report.as_ref()?.dedup?)))
        .collect();
    if with.is_empty() {
        return None;
    }
    let mut t = Table::new(
        "Idempotent consumers",
        &[
            ("variant", Left),
            ("processed", Right),
            ("skipped (repeats)", Right),
            ("credited from the store", Right),
        ],
    );
    t.columns[2].title = Text::strong("skipped (repeats)");
    for (v, d) in with {
        t.rows.push(vec![
            v.name.as_str().into(),
            Text::plain(d.processed.to_string()),
            Text::strong(d.skipped.to_string()),
            Text::plain(d.credited.to_string()),
        ]);
    }
    Some(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::tests::{run, variant};

    #[test]
    fn only_variants_with_a_store_get_a_row() {
        assert_eq!(table(&run(vec![variant("plain", 0, 9)])), None);
        let mut s = variant("store", 0, 0);
        if let Some(r) = s.report.as_mut() {
            r.dedup = Some(mq_checker::Dedup {
                processed: 990,
                skipped: 41,
                credited: 2,
            });
        }
        let t = table(&run(vec![variant("plain", 0, 9), s])).unwrap();
        assert_eq!(t.column("variant"), ["store"]);
        assert_eq!(t.column("skipped (repeats)"), ["41"]);
        let md = crate::summary::table(&t);
        assert!(md.contains("| store | 990 | **41** | 2 |"), "{md}");
    }
}
