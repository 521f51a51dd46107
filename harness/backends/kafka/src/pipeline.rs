//! The read-process-write pipeline's options: what `pipeline` and `stages` mean, their checks,
//! and the names a pipeline adds on the broker (the input topic, the stages' group).

use mq_core::plan::FieldError;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::options::Options;

/// `options.pipeline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Pipeline {
    /// Stages consume the input topic (`read_committed`, group `<group>-stage`, no auto
    /// commit) and, per transaction, produce each record unchanged to the same partition of the
    /// output topic and commit the input offsets with it (`send_offsets_to_transaction`).
    ReadProcessWrite,
}

/// Stages when `stages` is absent.
pub const DEFAULT_STAGES: u16 = 1;
/// `stage_commit_interval_ms` when absent (Kafka Streams' `commit.interval.ms` under
/// exactly-once).
pub const DEFAULT_COMMIT_INTERVAL_MS: u32 = 100;

/// How long a stage's transaction takes records after its first.
pub fn commit_interval(o: &Options) -> std::time::Duration {
    let ms = o
        .stage_commit_interval_ms
        .unwrap_or(DEFAULT_COMMIT_INTERVAL_MS);
    std::time::Duration::from_millis(u64::from(ms))
}

/// The stage processes a variant runs: 0 without a pipeline.
pub fn stages(o: &Options) -> u16 {
    match o.pipeline {
        Some(Pipeline::ReadProcessWrite) => o.stages.unwrap_or(DEFAULT_STAGES),
        None => 0,
    }
}

/// The input topic of a pipeline whose output topic is `topic`.
pub fn input_topic(topic: &str) -> String {
    format!("{topic}-in")
}

/// The stages' consumer group, beside the final consumers' `group`.
pub fn stage_group(group: &str) -> String {
    format!("{group}-stage")
}

/// `stages` and `stage_commit_interval_ms` only with a pipeline; no more stages than
/// partitions (one would read nothing); a transaction commits well within its timeout.
pub fn check(o: &Options, partitions: u32, e: &mut Vec<FieldError>) {
    if o.pipeline.is_none() {
        for (set, field) in [
            (o.stages.is_some(), "stages"),
            (
                o.stage_commit_interval_ms.is_some(),
                "stage_commit_interval_ms",
            ),
        ] {
            if set {
                e.push(FieldError::new(
                    format!("options.{field}"),
                    format!("{field} is a pipeline's setting: set pipeline = \"read-process-write\" (or remove {field})"),
                ));
            }
        }
        return;
    }
    let timeout = o
        .transaction_timeout_ms
        .unwrap_or(crate::txn::DEFAULT_TIMEOUT_MS);
    if let Some(ms) = o.stage_commit_interval_ms.filter(|&ms| ms > timeout / 2) {
        e.push(FieldError::new(
            "options.stage_commit_interval_ms",
            format!("stage_commit_interval_ms = {ms} is over half of transaction_timeout_ms ({timeout}): the coordinator could abort transactions still being filled; valid is 1 to {}", timeout / 2),
        ));
    }
    match (o.pipeline, o.stages) {
        (Some(_), Some(n)) if u32::from(n) > partitions => e.push(FieldError::new(
            "options.stages",
            format!("stages = {n} but workload.partitions = {partitions}: each stage reads its own partitions, so valid is 1 to {partitions}"),
        )),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(json: &str, partitions: u32) -> Vec<String> {
        let o: Options = serde_json::from_str(json).unwrap();
        let mut e = Vec::new();
        check(&o, partitions, &mut e);
        e.into_iter()
            .map(|e| format!("{}: {}", e.path, e.message))
            .collect()
    }

    #[test]
    fn stages_go_with_a_pipeline_and_at_most_one_per_partition() {
        assert!(errors(r#"{"pipeline": "read-process-write"}"#, 1).is_empty());
        assert!(errors(r#"{"pipeline": "read-process-write", "stages": 4}"#, 4).is_empty());
        let e = errors(r#"{"stages": 2}"#, 4);
        assert!(
            e[0].starts_with("options.stages: stages is a pipeline's"),
            "{e:?}"
        );
        let e = errors(r#"{"pipeline": "read-process-write", "stages": 3}"#, 2);
        assert!(e[0].contains("valid is 1 to 2"), "{e:?}");
        let e = errors(r#"{"stage_commit_interval_ms": 500}"#, 1);
        assert!(
            e[0].starts_with("options.stage_commit_interval_ms: stage_commit"),
            "{e:?}"
        );
        let e = errors(
            r#"{"pipeline": "read-process-write", "stage_commit_interval_ms": 3000, "transaction_timeout_ms": 5000}"#,
            1,
        );
        assert!(e[0].contains("valid is 1 to 2500"), "{e:?}");
        let o: Options = serde_json::from_str(r#"{"pipeline": "read-process-write"}"#).unwrap();
        assert_eq!(stages(&o), 1);
        assert_eq!(
            crate::txn::isolation(&o),
            Some(crate::IsolationLevel::ReadCommitted)
        );
        assert!(serde_json::from_str::<Options>(r#"{"pipeline": "rpw"}"#).is_err());
    }
}
