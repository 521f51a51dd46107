//! A team's requirements for a queue: what `[requirements]` in a scenario (or a file passed to
//! `bench review --requirements`) asks of every variant. The report judges each variant against
//! them (mq-report's review); this module only reads and checks them.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::plan::{Dur, FieldError};

/// What every variant must meet; a requirement left out is not judged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirements {
    /// Delivered messages per second the variant must sustain (its measured rate, or the
    /// maximum a `rate = "max"` search found).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_msgs_per_s: Option<f64>,
    /// Highest end-to-end p99 allowed, e.g. `"50ms"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_p99: Option<Dur>,
    /// Acked messages that may be lost under the run's faults (usually 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_lost: Option<u64>,
    /// Messages that may be delivered more than once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duplicates: Option<u64>,
    /// `"per-key"`: no message of a key delivered before an earlier one of that key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordering: Option<OrderingRequirement>,
    /// CPU microseconds (broker and clients) per delivered message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cpu_us_per_msg: Option<f64>,
    /// Bytes the broker wrote to disk per byte of acked payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_write_amplification: Option<f64>,
}

/// The order a team needs kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OrderingRequirement {
    /// Each key's messages delivered in the order they were sent.
    PerKey,
    /// No requirement (written to say so explicitly).
    None,
}

/// Bounds for figures: a requirement outside them is a typo, not a wish.
const MAX_RATE_REQ: f64 = 1e9;
const MAX_CPU_US: f64 = 1e7;
const MAX_AMPLIFICATION: f64 = 1e4;

impl Requirements {
    /// Whether nothing is asked.
    pub fn is_empty(&self) -> bool {
        *self == Requirements::default()
    }

    /// Every problem, at `prefix.field`.
    pub fn validate(&self, prefix: &str) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let mut positive = |field: &str, v: Option<f64>, max: f64, unit: &str| {
            if let Some(v) = v {
                if !(v.is_finite() && v > 0.0 && v <= max) {
                    errors.push(FieldError::new(
                        format!("{prefix}.{field}"),
                        format!(
                            "{v} is not valid: expected a number above 0 and at most {max} {unit}"
                        ),
                    ));
                }
            }
        };
        positive(
            "min_msgs_per_s",
            self.min_msgs_per_s,
            MAX_RATE_REQ,
            "msgs/s",
        );
        positive(
            "max_cpu_us_per_msg",
            self.max_cpu_us_per_msg,
            MAX_CPU_US,
            "µs",
        );
        positive(
            "max_write_amplification",
            self.max_write_amplification,
            MAX_AMPLIFICATION,
            "bytes per byte",
        );
        if self.max_p99.is_some_and(|d| d.0.is_zero()) {
            errors.push(FieldError::new(
                format!("{prefix}.max_p99"),
                "\"0s\" is not valid: expected a duration above zero such as \"50ms\"",
            ));
        }
        if self.is_empty() {
            errors.push(FieldError::new(
                prefix.to_owned(),
                "no requirement given: write at least one of min_msgs_per_s, max_p99, max_lost, \
                 max_duplicates, ordering, max_cpu_us_per_msg, max_write_amplification",
            ));
        }
        errors
    }

    /// Reads the `[requirements]` table of a TOML file (a scenario, or a file of its own),
    /// checked; errors name the file and the field.
    pub fn load(path: &Path) -> Result<Requirements, RequirementsError> {
        let at = |m: String| RequirementsError(format!("{}: {m}", path.display()));
        let text = std::fs::read_to_string(path).map_err(|e| at(format!("cannot read: {e}")))?;
        let file: toml::Table = toml::from_str(&text).map_err(|e| at(format!("not TOML: {e}")))?;
        let Some(table) = file.get("requirements").cloned() else {
            return Err(at(
                "no [requirements] table (write e.g. `[requirements]` then `max_lost = 0`)".into(),
            ));
        };
        let req: Requirements = serde_path_to_error::deserialize(table).map_err(|e| {
            let field = e.path().to_string();
            let field = if field == "." {
                String::new()
            } else {
                format!(".{field}")
            };
            at(format!(
                "requirements{field}: {}",
                e.into_inner().to_string().trim_end()
            ))
        })?;
        let errors = req.validate("requirements");
        if !errors.is_empty() {
            let all: Vec<String> = errors
                .iter()
                .map(|e| format!("{}: {}: {}", path.display(), e.path, e.message))
                .collect();
            return Err(RequirementsError(all.join("\n")));
        }
        Ok(req)
    }
}

/// Why a requirements file cannot be used (names the file and the field).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RequirementsError(String);

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("req.toml");
        std::fs::write(&p, text).unwrap();
        (d, p)
    }

    #[test]
    fn a_requirements_table_reads_with_durations_and_the_ordering_spelling() {
        let (_d, p) = file(
            "[requirements]\nmin_msgs_per_s = 20000\nmax_p99 = \"50ms\"\nmax_lost = 0\nordering = \"per-key\"\n",
        );
        let r = Requirements::load(&p).unwrap();
        assert_eq!(r.min_msgs_per_s, Some(20000.0));
        assert_eq!(r.max_p99.unwrap().0.as_millis(), 50);
        assert_eq!(
            (r.max_lost, r.ordering),
            (Some(0), Some(OrderingRequirement::PerKey))
        );
    }

    #[test]
    fn bad_requirements_name_the_file_the_field_and_what_is_valid() {
        let (_d, p) = file("[requirements]\nordering = \"total\"\n");
        let e = Requirements::load(&p).unwrap_err().to_string();
        assert!(
            e.contains("req.toml") && e.contains("requirements.ordering"),
            "{e}"
        );
        assert!(e.contains("per-key"), "{e}");
        let (_d, p) = file("[requirements]\nmax_p99s = \"5ms\"\n");
        let e = Requirements::load(&p).unwrap_err().to_string();
        assert!(e.contains("max_p99s") && e.contains("max_p99"), "{e}");
        let (_d, p) = file("[requirements]\nmin_msgs_per_s = -3\n");
        let e = Requirements::load(&p).unwrap_err().to_string();
        assert!(
            e.contains("requirements.min_msgs_per_s") && e.contains("above 0"),
            "{e}"
        );
        let (_d, p) = file("[requirements]\n");
        let e = Requirements::load(&p).unwrap_err().to_string();
        assert!(e.contains("at least one"), "{e}");
        let (_d, p) = file("name = \"x\"\n");
        let e = Requirements::load(&p).unwrap_err().to_string();
        assert!(e.contains("no [requirements] table"), "{e}");
    }
}
