//! The Guarantees table: the faults each variant met, what it lost, and whether it kept its
//! delivery contract. A variant written with `runs = N` is one row over its runs: how many of
//! them lost acknowledged messages, and the worst run's counts, so a rare loss reads as rare.

use mq_checker::Report;
use mq_results::{RunResults, VariantResult};

use crate::doc::{Align::*, Table, Text};

/// The Guarantees table of run `r` (a row per variant, or per variant as written when it ran
/// several times).
pub fn table(r: &RunResults) -> Table {
    let repeated = r.variants.iter().any(|v| v.run_of.is_some());
    let mut columns = vec![("variant", Left)];
    if repeated {
        columns.push(("runs with loss", Left));
    }
    columns.extend([
        ("faults", Left),
        ("acked", Right),
        ("lost", Right),
        ("unacked-lost", Right),
        ("duplicated", Right),
        ("reordered", Right),
        ("contract", Left),
        ("kept", Left),
    ]);
    let mut t = Table::new("Guarantees", &columns);
    for (name, runs) in groups(r) {
        let checked: Vec<(&VariantResult, &Report)> = runs
            .iter()
            .filter_map(|v| Some((*v, v.report.as_ref()?)))
            .filter(|(v, _)| v.contract.is_some() && !v.producer_only())
            .collect();
        let Some(&(worst, rep)) = checked.iter().max_by_key(|(_, rep)| badness(rep)) else {
            continue;
        };
        let mut row: Vec<Text> = vec![name.into()];
        if repeated {
            row.push(runs_with_loss(&checked, runs.len()).into());
        }
        row.push(faults(worst).into());
        let c = &rep.counts;
        row.extend(
            [c.acked, c.lost, c.unacked_lost, c.duplicated, c.reordered]
                .map(|x| Text::plain(x.to_string())),
        );
        let contract = worst.contract.map(|c| c.to_string()).unwrap_or_default();
        row.extend([contract.into(), kept(&checked).into()]);
        t.rows.push(row);
    }
    t
}

/// The variants as written, in order: a variant with `runs = N` is one group of its runs.
pub fn groups(r: &RunResults) -> Vec<(&str, Vec<&VariantResult>)> {
    let mut out: Vec<(&str, Vec<&VariantResult>)> = Vec::new();
    for v in &r.variants {
        let name = v.run_of.as_ref().map_or(v.name.as_str(), |o| o.of.as_str());
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, runs)) if v.run_of.is_some() => runs.push(v),
            _ => out.push((name, vec![v])),
        }
    }
    out
}

/// Orders runs from best to worst: acknowledged losses first, then the rest.
fn badness(r: &Report) -> (u64, u64, u64, u64) {
    let c = &r.counts;
    (c.lost, c.unacked_lost, c.duplicated, c.reordered)
}

/// "lost > 0 in k of n", noting runs that did not reach the checker.
fn runs_with_loss(checked: &[(&VariantResult, &Report)], planned: usize) -> String {
    let k = checked.iter().filter(|(_, r)| r.counts.lost > 0).count();
    let n = checked.len();
    let mut s = format!("lost > 0 in {k} of {n}");
    if n < planned {
        s.push_str(&format!(" ({} of {planned} not checked)", planned - n));
    }
    s
}

fn faults(v: &VariantResult) -> String {
    let faults: Vec<String> = v
        .faults
        .iter()
        .map(|f| match f.ok {
            true => f.label.clone(),
            false => format!("{} (failed)", f.label),
        })
        .collect();
    match faults.is_empty() {
        true => "none".to_owned(),
        false => faults.join(", "),
    }
}

/// ✓ when every run kept the contract; else ✗ with how many broke it and the worst one's why.
fn kept(checked: &[(&VariantResult, &Report)]) -> String {
    let broke: Vec<&(&VariantResult, &Report)> = checked
        .iter()
        .filter(|(v, _)| v.contract_kept == Some(false))
        .collect();
    let several = checked.len() > 1;
    if checked.iter().all(|(v, _)| v.contract_kept.is_none()) {
        return String::new();
    }
    let Some(worst) = broke.iter().max_by_key(|(_, r)| badness(r)) else {
        return "✓".to_owned();
    };
    let mut s = "✗".to_owned();
    if several {
        s.push_str(&format!(" in {} of {}", broke.len(), checked.len()));
    }
    if let Some(why) = &worst.0.contract_note {
        s.push_str(&format!(
            "{}{why}",
            match several {
                true => "; worst: ",
                false => " ",
            }
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::tests::{run, variant};
    use mq_core::plan::RunOf;
    use mq_results::FaultEvent;

    #[test]
    fn guarantees_list_faults_as_carried_out_and_the_broken_contract() {
        let mut v = variant("rabbit", 3, 0);
        v.contract_kept = Some(false);
        v.contract_note = Some("3 acked messages lost".into());
        let fault = |label: &str, ok: bool| -> FaultEvent {
            serde_json::from_value(serde_json::json!({"t": 1.0, "action": "kill-broker",
                "target": null, "label": label, "ok": ok, "error": null, "took_s": 0.1}))
            .unwrap()
        };
        v.faults = vec![
            fault("kill-broker@1s", true),
            fault("restart-broker@2s", false),
        ];
        let t = table(&run(vec![v, variant("quiet", 0, 0)]));
        assert_eq!(
            t.column("faults"),
            ["kill-broker@1s, restart-broker@2s (failed)", "none"]
        );
        assert_eq!(t.column("kept"), ["✗ 3 acked messages lost", "✓"]);
        assert_eq!(t.column("contract"), ["at-least-once", "at-least-once"]);
        // Without any report there is no Guarantees table at all.
        let mut none = variant("x", 0, 0);
        none.report = None;
        assert_eq!(crate::tables::summary(&run(vec![none])).tables.len(), 2);
    }

    #[test]
    fn runs_of_a_variant_are_one_row_with_the_worst_run_and_k_of_n() {
        let mut runs = Vec::new();
        for (i, lost) in [0u64, 7, 0, 2].into_iter().enumerate() {
            let mut v = variant(&format!("acks1.run-{}", i + 1), lost, 0);
            v.run_of = Some(RunOf {
                of: "acks1".into(),
                run: i as u32 + 1,
                runs: 4,
            });
            v.contract_kept = Some(lost == 0);
            v.contract_note = (lost > 0).then(|| format!("{lost} acked messages lost"));
            runs.push(v);
        }
        runs.push(variant("acksall", 0, 0));
        let t = table(&run(runs));
        assert_eq!(t.column("variant"), ["acks1", "acksall"]);
        assert_eq!(
            t.column("runs with loss"),
            ["lost > 0 in 2 of 4", "lost > 0 in 0 of 1"]
        );
        assert_eq!(t.column("lost"), ["7", "0"]);
        assert_eq!(
            t.column("kept"),
            ["✗ in 2 of 4; worst: 7 acked messages lost", "✓"]
        );
    }
}
