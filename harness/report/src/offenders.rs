//! Which messages: the first offenders the checker sampled for each anomaly of each variant
//! (lost, duplicated, reordered, …), as a table of the summary, so a review sees which
//! messages, not only how many.

use mq_checker::{Sample, Samples};
use mq_results::RunResults;

use crate::doc::{Align, Table, Text};

/// The anomalies with a sample, in the order the Correctness table lists them.
fn anomalies(s: &Samples) -> [(&'static str, &[Sample]); 8] {
    [
        ("lost", &s.lost),
        ("unacked-lost", &s.unacked_lost),
        ("recovered", &s.recovered),
        ("failed, delivered", &s.failed_delivered),
        ("duplicated", &s.duplicated),
        ("reordered", &s.reordered),
        ("unexpected", &s.unexpected),
        ("aborted, visible", &s.aborted_visible),
    ]
}

/// One message as `p0 #1234 (key 3, sent 1.204 s, acked 1.205 s)`, with what its check knew.
pub fn message(s: &Sample) -> String {
    let who = match (s.producer, s.seq) {
        (Some(p), Some(q)) => format!("p{} #{}", p.0, q.0),
        _ => "a foreign payload".to_owned(),
    };
    let mut about = Vec::new();
    if let Some(k) = s.key {
        about.push(format!("key {}", k.0));
    }
    if let Some(a) = s.after_seq {
        about.push(format!("after #{}", a.0));
    }
    for (what, t) in [
        ("sent", s.sent_s),
        ("acked", s.acked_s),
        ("delivered", s.delivered_s),
    ] {
        if let Some(t) = t {
            about.push(format!("{what} {t:.3} s"));
        }
    }
    if let Some(c) = s.consumer {
        about.push(format!("consumer {}", c.0));
    }
    match about.is_empty() {
        true => who,
        false => format!("{who} ({})", about.join(", ")),
    }
}

/// One row per variant and anomaly with offenders; None when no variant has any.
pub fn table(r: &RunResults) -> Option<Table> {
    let mut t = Table::new(
        "Which messages",
        &[
            ("variant", Align::Left),
            ("anomaly", Align::Left),
            ("count", Align::Right),
            ("first offenders", Align::Left),
        ],
    );
    for v in &r.variants {
        let Some(rep) = &v.report else { continue };
        let c = &rep.counts;
        let counts = [
            c.lost,
            c.unacked_lost,
            c.recovered,
            c.failed_delivered,
            c.duplicated,
            c.reordered,
            c.unexpected,
            c.aborted_visible,
        ];
        for ((name, sample), count) in anomalies(&rep.samples).into_iter().zip(counts) {
            if sample.is_empty() {
                continue;
            }
            let listed: Vec<String> = sample.iter().map(message).collect();
            let shown = match listed.len() as u64 {
                n if n < count => format!("first {n}: {}", listed.join("; ")),
                _ => listed.join("; "),
            };
            t.rows.push(vec![
                v.name.as_str().into(),
                name.into(),
                Text::plain(count.to_string()),
                Text::plain(shown),
            ]);
        }
    }
    (!t.rows.is_empty()).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mq_core::ids::{ConsumerId, Key, ProducerId, Seq};

    #[test]
    fn a_message_is_named_with_what_its_check_knew() {
        let lost = Sample {
            producer: Some(ProducerId(0)),
            seq: Some(Seq(1234)),
            key: Some(Key(3)),
            sent_s: Some(1.2041),
            acked_s: Some(1.2052),
            ..Sample::default()
        };
        assert_eq!(
            message(&lost),
            "p0 #1234 (key 3, sent 1.204 s, acked 1.205 s)"
        );
        let reordered = Sample {
            producer: Some(ProducerId(1)),
            seq: Some(Seq(7)),
            after_seq: Some(Seq(9)),
            delivered_s: Some(2.5),
            consumer: Some(ConsumerId(0)),
            ..Sample::default()
        };
        assert_eq!(
            message(&reordered),
            "p1 #7 (after #9, delivered 2.500 s, consumer 0)"
        );
        let foreign = Sample {
            delivered_s: Some(0.25),
            ..Sample::default()
        };
        assert_eq!(message(&foreign), "a foreign payload (delivered 0.250 s)");
    }
}
