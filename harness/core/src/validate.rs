//! Scenario validation: from the file's raw tables to one plan per variant, with every problem
//! as a [`FieldError`] at its dotted path. Nothing here knows positions in the text; the parser
//! places the errors.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::backend::{Backend, Registry};
use crate::delivery::{
    derived_contract, ConsumerAck, ConsumerDedup, Contract, DedupSync, Delivery, Durability,
    ProducerAck,
};
use crate::envelope::ENVELOPE_LEN;
use crate::expand::RawSweep;
use crate::plan::{
    check_duration, check_range, Dur, FaultSpec, FieldError, Processing, VariantPlan, Workload,
    MAX_DURATION, MAX_KEYS, MAX_MESSAGES, MAX_MESSAGE_SIZE, MAX_PROCESSING, MAX_RATE, MAX_RUNS,
    MAX_TIMEOUT,
};
use crate::search::SearchSpec;

/// A variant as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVariant {
    pub(crate) name: String,
    pub(crate) backend: String,
    #[serde(default)]
    pub(crate) producer_ack: Option<ProducerAck>,
    #[serde(default)]
    pub(crate) consumer_ack: Option<ConsumerAck>,
    #[serde(default)]
    pub(crate) durability: Option<Durability>,
    /// `"store"`: the idempotent consumer (default `"none"`).
    #[serde(default)]
    pub(crate) consumer_dedup: Option<ConsumerDedup>,
    /// With `consumer_dedup = "store"`: `"normal"` (default) or `"full"`.
    #[serde(default)]
    pub(crate) dedup_sync: Option<DedupSync>,
    #[serde(default)]
    pub(crate) options: toml::Table,
    /// Overrides of the scenario's workload for this variant only (e.g. `message_size`).
    #[serde(default)]
    pub(crate) workload: toml::Table,
    /// Faults for this variant only, after the scenario's.
    #[serde(default)]
    pub(crate) faults: Vec<FaultSpec>,
    /// The contract this variant claims (default: derived from its delivery settings).
    #[serde(default)]
    pub(crate) contract: Option<Contract>,
    /// External brokers: shell commands that kill and restart the broker (run with a timeout).
    #[serde(default)]
    pub(crate) kill_cmd: Option<String>,
    #[serde(default)]
    pub(crate) restart_cmd: Option<String>,
    /// Run this variant N times in a row (default: the scenario's `runs`, else 1).
    #[serde(default)]
    pub(crate) runs: Option<u32>,
    /// Run it at several values of one workload field (default: the scenario's `sweep`).
    #[serde(default)]
    pub(crate) sweep: Option<RawSweep>,
    /// How `rate = "max"` searches (default: the scenario's `search`).
    #[serde(default)]
    pub(crate) search: Option<SearchSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScenario {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) description: String,
    pub(crate) workload: toml::Table,
    /// Faults applied to every variant.
    #[serde(default)]
    pub(crate) faults: Vec<FaultSpec>,
    #[serde(default)]
    pub(crate) variants: Vec<RawVariant>,
    /// Runs of every variant that does not set its own `runs`.
    #[serde(default)]
    pub(crate) runs: Option<u32>,
    /// The sweep of every variant that does not set its own.
    #[serde(default)]
    pub(crate) sweep: Option<RawSweep>,
    /// How `rate = "max"` searches, for every variant that does not say.
    #[serde(default)]
    pub(crate) search: Option<SearchSpec>,
    /// What every variant must meet (the report's review).
    #[serde(default)]
    pub(crate) requirements: Option<crate::requirements::Requirements>,
}

/// What a valid scenario asks for: its workload and one plan per variant.
pub(crate) struct Planned {
    pub workload: Workload,
    pub variants: Vec<VariantPlan>,
}

/// Validates a parsed scenario against the backends of `registry`. A workload that does not
/// even deserialize stops at its one error; every other problem is gathered.
pub(crate) fn plan(raw: &RawScenario, registry: &Registry) -> Result<Planned, Vec<FieldError>> {
    let one = |(f, m): (String, String)| vec![FieldError::new(f, m)];
    let mut raw = raw.clone();
    let scenario_max = crate::search::take_max(&mut raw.workload);
    let raw = &raw;
    let base = workload_from(&raw.workload, "workload").map_err(one)?;
    let mut errors = validate_workload(&base, "workload");
    errors.extend(validate_names(raw));
    if let Some(n) = raw.runs {
        check_range(&mut errors, "runs", n, 1, MAX_RUNS);
    }
    if let Some(s) = &raw.search {
        errors.extend(s.validate("search"));
    }
    if let Some(r) = &raw.requirements {
        errors.extend(r.validate("requirements"));
    }
    let mut variants = Vec::new();
    for (i, v) in raw.variants.iter().enumerate() {
        variants.extend(
            crate::expand::variant_plans(raw, i, v, scenario_max, registry, &mut errors)
                .map_err(one)?,
        );
    }
    errors.extend(repeated_names(&variants));
    // Scenario-level faults are checked once per variant: say each problem once.
    let mut seen = std::collections::HashSet::new();
    errors.retain(|e| seen.insert((e.path.clone(), e.message.clone())));
    if errors.is_empty() {
        Ok(Planned {
            workload: base,
            variants,
        })
    } else {
        Err(errors)
    }
}

/// Variant `i`: its plan (None when its backend is unknown) and its problems; Err when its
/// workload does not deserialize.
pub(crate) fn plan_one(
    raw: &RawScenario,
    i: usize,
    v: &RawVariant,
    registry: &Registry,
) -> Result<(Option<VariantPlan>, Vec<FieldError>), (String, String)> {
    let prefix = format!("variants[{i}].workload");
    let overrides = |field: &str| v.workload.keys().any(|k| field == format!("{prefix}.{k}"));
    let mut merged = raw.workload.clone();
    merged.extend(v.workload.clone());
    let workload = workload_from(&merged, &prefix).map_err(|(f, m)| {
        // A field the variant did not override is the scenario's.
        match overrides(&f) || f == prefix {
            true => (f, m),
            false => (f.replacen(&prefix, "workload", 1), m),
        }
    })?;
    let mut errors: Vec<FieldError> = validate_workload(&workload, &prefix)
        .into_iter()
        .filter(|e| overrides(&e.path))
        .collect();
    // Backend errors are relative to the variant; those about the workload point at the
    // variant's override when there is one, else at the scenario's workload.
    let at = |e: FieldError| match e.path.strip_prefix("workload.") {
        Some(field) if v.workload.contains_key(field) => {
            FieldError::new(format!("{prefix}.{field}"), e.message)
        }
        Some(_) => FieldError::new(e.path, format!("{} (variant {:?})", e.message, v.name)),
        None => FieldError::new(format!("variants[{i}].{}", e.path), e.message),
    };
    let Some(backend) = registry.iter().find(|b| b.info().name == v.backend) else {
        let known: Vec<_> = registry.iter().map(|b| b.info().name).collect();
        let message = format!(
            "unknown backend {:?}; valid: {}",
            v.backend,
            known.join(", ")
        );
        errors.push(at(FieldError::new("backend", message)));
        return Ok((None, errors));
    };
    let backend = backend.as_ref();
    errors.extend(crate::fault::validate_faults(
        &raw.faults,
        "faults",
        &workload,
        backend,
        v,
    ));
    let own = format!("variants[{i}].faults");
    errors.extend(crate::fault::validate_faults(
        &v.faults, &own, &workload, backend, v,
    ));
    match plan_variant(backend, v, &workload, &raw.faults) {
        Ok(plan) => {
            let mut own = backend.validate(&plan);
            own.extend(competing(backend, &plan));
            own.extend(producer_only(backend, &plan));
            own.extend(crate::fault::check_stage_faults(backend, &plan));
            // Declared bounds, unless the backend already said something of that option.
            let bounds = crate::options::check_bounds(&backend.info().options, &plan.options)
                .into_iter()
                .filter(|b| !own.iter().any(|e| e.path == b.path))
                .collect::<Vec<_>>();
            errors.extend(own.into_iter().chain(bounds).map(at));
            Ok((Some(plan), errors))
        }
        Err(es) => {
            errors.extend(es.into_iter().map(at));
            Ok((None, errors))
        }
    }
}

/// Deserializes a workload table; an error is (field path, message).
fn workload_from(table: &toml::Table, prefix: &str) -> Result<Workload, (String, String)> {
    serde_path_to_error::deserialize(toml::Value::Table(table.clone())).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            prefix.to_owned()
        } else {
            format!("{prefix}.{path}")
        };
        let mut message = e.into_inner().message().trim_end().to_owned();
        if path == "rate" {
            message.push_str(": use msgs/s (0 = as fast as possible) or \"max\" (search for the highest sustainable rate)");
        }
        (field, message)
    })
}

fn validate_workload(w: &Workload, prefix: &str) -> Vec<FieldError> {
    let mut e = Vec::new();
    let path = |field: &str| format!("{prefix}.{field}");
    match (w.messages, w.duration) {
        (None, None) => e.push(FieldError::new(
            path("messages"),
            "set either messages (a count) or duration (e.g. \"30s\")",
        )),
        (Some(_), Some(_)) => e.push(FieldError::new(
            path("duration"),
            "set either messages or duration, not both",
        )),
        (Some(m), _) => check_range(&mut e, &path("messages"), m, 1, MAX_MESSAGES),
        (_, Some(Dur(d))) => {
            check_duration(
                &mut e,
                &path("duration"),
                d,
                Duration::from_millis(1),
                MAX_DURATION,
            );
            if w.warmup.0 >= d && d > Duration::ZERO {
                e.push(FieldError::new(
                    path("warmup"),
                    "warmup must be shorter than duration (messages sent during it are left out of latency)",
                ));
            }
        }
    }
    check_range(
        &mut e,
        &path("message_size"),
        w.message_size,
        ENVELOPE_LEN,
        MAX_MESSAGE_SIZE,
    );
    check_range(&mut e, &path("producers"), w.producers, 1, 1024);
    // 0: producer only (the publish side alone, e.g. beside a producer-only peer tool).
    check_range(&mut e, &path("consumers"), w.consumers, 0, 1024);
    check_range(&mut e, &path("partitions"), w.partitions, 1, 65_535);
    if let Some(k) = w.keys {
        check_range(&mut e, &path("keys"), k, 1, MAX_KEYS);
    }
    check_range(&mut e, &path("rate"), w.rate, 0, MAX_RATE);
    let zero = Duration::ZERO;
    check_duration(&mut e, &path("warmup"), w.warmup.0, zero, MAX_DURATION);
    check_duration(
        &mut e,
        &path("drain_timeout"),
        w.drain_timeout.0,
        Duration::from_millis(100),
        MAX_TIMEOUT,
    );
    check_duration(
        &mut e,
        &path("ack_timeout"),
        w.ack_timeout.0,
        zero,
        MAX_TIMEOUT,
    );
    match w.processing {
        Some(Processing::Fixed(d)) | Some(Processing::Uniform(_, d)) => {
            check_duration(&mut e, &path("processing"), d, zero, MAX_PROCESSING)
        }
        None => {}
    }
    check_range(
        &mut e,
        &path("processing_threads"),
        w.processing_threads,
        1,
        crate::parallel::MAX_PROCESSING_THREADS,
    );
    e
}

/// What a producer-only variant (`consumers = 0`) cannot have: anything that reads back.
fn producer_only(backend: &dyn Backend, plan: &VariantPlan) -> Vec<FieldError> {
    if plan.workload.consumers > 0 {
        return Vec::new();
    }
    let mut e = Vec::new();
    let mut no = |path: &str, what: &str| {
        e.push(FieldError::new(
            path,
            format!("consumers = 0 (producer only) cannot have {what}; set consumers = 1 or more"),
        ))
    };
    // `rate = "max"` is refused where the search is planned (`expand`).
    if backend.stages(plan) > 0 {
        no("options.pipeline", "a pipeline (its stages consume)");
    }
    if plan.delivery.consumer_dedup.is_store() {
        no("consumer_dedup", "consumer_dedup = \"store\"");
    }
    // Consumer faults are refused where they are written (`fault::validate_faults`).
    e
}

/// `consumers > partitions` where the backend cannot share a partition between consumers.
fn competing(backend: &dyn Backend, plan: &VariantPlan) -> Option<FieldError> {
    let w = &plan.workload;
    if w.consumers <= w.partitions || w.partitions == 0 {
        return None;
    }
    let why = backend.competing_consumers(plan).err()?;
    Some(FieldError::new(
        "workload.consumers",
        format!(
            "consumers = {} exceeds partitions = {}, and {} cannot share a partition between consumers: {why}; raise partitions or lower consumers",
            w.consumers, w.partitions, plan.backend
        ),
    ))
}

fn validate_names(raw: &RawScenario) -> Vec<FieldError> {
    let mut e = Vec::new();
    let mut err = |path: &str, msg: String| e.push(FieldError::new(path, msg));
    if raw.name.is_empty()
        || !raw
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        err(
            "name",
            format!(
                "{:?} is not a valid scenario name: use letters, digits, '-', '_' or '.'",
                raw.name
            ),
        );
    }
    if raw.variants.is_empty() {
        err(
            "variants",
            "no variants: add at least one [[variants]] table with a name and a backend".into(),
        );
    }
    for (i, v) in raw.variants.iter().enumerate() {
        if v.name.is_empty()
            || !v
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
            || v.name.starts_with('@')
        {
            err(
                &format!("variants[{i}].name"),
                format!(
                    "{:?}: use letters, digits, '-', '_', '.' or '@' (a review joins `NAME@part`s into one row; not first)",
                    v.name
                ),
            );
        }
        if v.name.contains(".run-") {
            err(
                &format!("variants[{i}].name"),
                format!(
                    "{:?}: \".run-\" is kept for the runs of a variant with runs = N",
                    v.name
                ),
            );
        }
        let same =
            |o: &RawVariant| crate::plan::broker_name(&o.name) == crate::plan::broker_name(&v.name);
        if raw.variants[..i].iter().any(same) {
            err(
                &format!("variants[{i}].name"),
                format!(
                    "{:?} is used by an earlier variant (`@` counts as `.`): names must be unique",
                    v.name
                ),
            );
        }
    }
    e
}

/// Two plans of one name (a variant named like another's sweep point or run).
fn repeated_names(plans: &[VariantPlan]) -> Vec<FieldError> {
    plans
        .iter()
        .enumerate()
        .filter(|(i, p)| plans[..*i].iter().any(|o| o.name == p.name))
        .map(|(_, p)| {
            let message = format!("{:?} is planned twice (a variant's name repeats another's sweep point or run): rename one", p.name);
            FieldError::new("variants", message)
        })
        .collect()
}

fn plan_variant(
    backend: &dyn Backend,
    v: &RawVariant,
    w: &Workload,
    scenario_faults: &[FaultSpec],
) -> Result<VariantPlan, Vec<FieldError>> {
    let info = backend.info();
    let delivery = Delivery {
        producer_ack: v.producer_ack.unwrap_or(info.defaults.producer_ack),
        consumer_ack: v.consumer_ack.unwrap_or(info.defaults.consumer_ack),
        durability: v.durability.unwrap_or(info.defaults.durability),
        consumer_dedup: v.consumer_dedup.unwrap_or_default(),
    };
    let mut errors = Vec::new();
    fn check<T: PartialEq + fmt::Display + Copy>(
        errors: &mut Vec<FieldError>,
        backend: &str,
        field: &str,
        value: T,
        supported: &[(T, &str)],
    ) {
        if !supported.iter().any(|(s, _)| *s == value) {
            let valid: Vec<String> = supported.iter().map(|(s, _)| s.to_string()).collect();
            errors.push(FieldError::new(
                field,
                format!(
                    "backend {backend} cannot honour {field} = \"{value}\"; valid: {}",
                    valid.join(", ")
                ),
            ));
        }
    }
    check(
        &mut errors,
        info.name,
        "producer_ack",
        delivery.producer_ack,
        &info.producer_ack,
    );
    check(
        &mut errors,
        info.name,
        "consumer_ack",
        delivery.consumer_ack,
        &info.consumer_ack,
    );
    check(
        &mut errors,
        info.name,
        "durability",
        delivery.durability,
        &info.durability,
    );
    let after_process = info
        .consumer_ack
        .iter()
        .any(|(a, _)| *a == ConsumerAck::AfterProcess);
    errors.extend(
        crate::delivery::dedup_problems(info.name, delivery, v.dedup_sync, after_process)
            .into_iter()
            .map(|(field, message)| FieldError::new(field, message)),
    );
    if !errors.is_empty() {
        return Err(errors);
    }
    let options = serde_json::to_value(&v.options)
        .map_err(|e| vec![FieldError::new("options", e.to_string())])?;
    Ok(VariantPlan {
        name: v.name.clone(),
        backend: v.backend.clone(),
        delivery,
        options,
        workload: w.clone(),
        faults: scenario_faults.iter().chain(&v.faults).cloned().collect(),
        contract: v.contract.unwrap_or_else(|| derived_contract(delivery)),
        dedup_sync: v.dedup_sync.unwrap_or_default(),
        kill_cmd: v.kill_cmd.clone(),
        restart_cmd: v.restart_cmd.clone(),
        run_of: None,
        point_of: None,
        search: None,
        rate_fractions: Vec::new(),
    })
}

#[cfg(test)]
#[path = "validate_tests.rs"]
pub(crate) mod tests;
