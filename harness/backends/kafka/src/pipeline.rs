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

/// `stages` only with a pipeline; no more stages than partitions (one would read nothing).
pub fn check(o: &Options, partitions: u32, e: &mut Vec<FieldError>) {
    match (o.pipeline, o.stages) {
        (None, Some(_)) => e.push(FieldError::new(
            "options.stages",
            "stages is a pipeline's setting: set pipeline = \"read-process-write\" (or remove stages)",
        )),
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
        let o: Options = serde_json::from_str(r#"{"pipeline": "read-process-write"}"#).unwrap();
        assert_eq!(stages(&o), 1);
        assert_eq!(
            crate::txn::isolation(&o),
            Some(crate::IsolationLevel::ReadCommitted)
        );
        assert!(serde_json::from_str::<Options>(r#"{"pipeline": "rpw"}"#).is_err());
    }
}
