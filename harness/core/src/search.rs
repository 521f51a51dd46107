//! `rate = "max"`: the search for the highest rate a variant sustains, as written (`[search]`
//! or a variant's `search = { … }`) and checked. The runner's `search` module carries it out.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::plan::{check_duration, check_range, Dur, FieldError, MAX_RATE};

/// How the search probes: ramp from `start_rate` ×4 while probes keep up, then bisect until the
/// bounds are within `precision` (and, with `confirm`, the upper bound failed twice); at most
/// `max_probes` probes of `probe` each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchSpec {
    /// The first probe's rate, msgs/s.
    #[serde(default = "defaults::start_rate")]
    pub start_rate: u64,
    /// How long each probe sends.
    #[serde(default = "defaults::probe")]
    pub probe: Dur,
    /// Stop when (highest failing − highest sustained) ≤ precision × highest sustained.
    #[serde(default = "defaults::precision")]
    pub precision: f64,
    #[serde(default = "defaults::max_probes")]
    pub max_probes: u32,
    /// Probe the upper bound once more before settling: one failure there may be the machine's
    /// noise or the previous overload's after-effects, two make it a bound.
    #[serde(default = "defaults::confirm")]
    pub confirm: bool,
    /// A probe keeps up only if its end-to-end p99 is at most this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo_p99: Option<Dur>,
}

mod defaults {
    use super::Dur;
    use std::time::Duration;
    pub fn start_rate() -> u64 {
        1000
    }
    pub fn probe() -> Dur {
        Dur(Duration::from_secs(5))
    }
    pub fn precision() -> f64 {
        0.1
    }
    pub fn max_probes() -> u32 {
        12
    }
    pub fn confirm() -> bool {
        true
    }
}

impl Default for SearchSpec {
    fn default() -> Self {
        SearchSpec {
            start_rate: defaults::start_rate(),
            probe: defaults::probe(),
            precision: defaults::precision(),
            max_probes: defaults::max_probes(),
            confirm: defaults::confirm(),
            slo_p99: None,
        }
    }
}

impl SearchSpec {
    /// Its problems, each at `path.field`.
    pub fn validate(&self, path: &str) -> Vec<FieldError> {
        let mut e = Vec::new();
        let at = |f: &str| format!("{path}.{f}");
        check_range(&mut e, &at("start_rate"), self.start_rate, 1, MAX_RATE);
        let (second, ten_min) = (Duration::from_secs(1), Duration::from_secs(600));
        check_duration(&mut e, &at("probe"), self.probe.0, second, ten_min);
        check_range(&mut e, &at("precision"), self.precision, 0.01, 0.5);
        check_range(&mut e, &at("max_probes"), self.max_probes, 2, 50);
        if let Some(slo) = self.slo_p99 {
            let (lo, hi) = (Duration::from_micros(1), Duration::from_secs(3600));
            check_duration(&mut e, &at("slo_p99"), slo.0, lo, hi);
        }
        e
    }
}

/// `rate = "max"` in a workload table: replaced by 0 (as fast as possible, the probes' own
/// rates come later); whether it was there.
pub(crate) fn take_max(workload: &mut toml::Table) -> bool {
    match workload.get("rate") {
        Some(toml::Value::String(s)) if s == "max" => {
            workload.insert("rate".into(), toml::Value::Integer(0));
            true
        }
        _ => false,
    }
}
