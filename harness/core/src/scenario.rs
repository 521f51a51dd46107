//! Scenario files: parsing and validation only, with errors that point at file:line:column.
//!
//! A scenario is validated whole before anything is created: every error names the file, the
//! position, the field and what would be valid. The file is parsed once, into a tree that keeps
//! each value's place in the text; serde reads the same tree.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::backend::{Backend, Registry};
use crate::delivery::{derived_contract, ConsumerAck, Contract, Delivery, Durability, ProducerAck};
use crate::envelope::ENVELOPE_LEN;
use crate::plan::{
    check_duration, check_range, Dur, FaultSpec, FieldError, Processing, VariantPlan, Workload,
    MAX_DURATION, MAX_KEYS, MAX_MESSAGES, MAX_MESSAGE_SIZE, MAX_PROCESSING, MAX_RATE, MAX_TIMEOUT,
};

/// A variant as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVariant {
    name: String,
    backend: String,
    #[serde(default)]
    producer_ack: Option<ProducerAck>,
    #[serde(default)]
    consumer_ack: Option<ConsumerAck>,
    #[serde(default)]
    durability: Option<Durability>,
    #[serde(default)]
    options: toml::Table,
    /// Overrides of the scenario's workload for this variant only (e.g. `message_size`).
    #[serde(default)]
    workload: toml::Table,
    /// Faults for this variant only, after the scenario's.
    #[serde(default)]
    faults: Vec<FaultSpec>,
    /// The contract this variant claims (default: derived from its delivery settings).
    #[serde(default)]
    contract: Option<Contract>,
    /// External brokers: shell commands that kill and restart the broker (run with a timeout).
    #[serde(default)]
    kill_cmd: Option<String>,
    #[serde(default)]
    restart_cmd: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: String,
    #[serde(default)]
    description: String,
    workload: toml::Table,
    /// Faults applied to every variant.
    #[serde(default)]
    faults: Vec<FaultSpec>,
    #[serde(default)]
    variants: Vec<RawVariant>,
}

/// A validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub path: PathBuf,
    pub text: String,
    pub workload: Workload,
    pub variants: Vec<VariantPlan>,
}

/// A scenario error located in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub field: String,
    pub message: String,
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

/// Why a scenario cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Located>),
}

/// Reads, parses and validates the scenario at `path` against the backends in `registry`.
pub fn load(path: &Path, registry: &Registry) -> Result<Scenario, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(path, text, registry)
}

/// Parses and validates scenario `text`, naming `path` in errors.
pub fn parse(path: &Path, text: String, registry: &Registry) -> Result<Scenario, ScenarioError> {
    let locator = Locator {
        file: path.to_owned(),
        text: &text,
    };
    let tree = DeTable::parse(&text).map_err(|e| {
        ScenarioError::Invalid(vec![locator.at(
            e.span(),
            "",
            e.message().trim_end().to_owned(),
        )])
    })?;
    let raw: RawScenario = serde_path_to_error::deserialize(toml::de::Deserializer::from(
        tree.clone(),
    ))
    .map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        let span = inner.span().or_else(|| span_of(&tree, &field));
        ScenarioError::Invalid(vec![locator.at(
            span,
            &field,
            inner.message().trim_end().to_owned(),
        )])
    })?;

    let invalid = |field: String, message: String| {
        let span = span_of(&tree, &field);
        ScenarioError::Invalid(vec![locator.at(span, &field, message)])
    };
    let base: Workload =
        workload_from(&raw.workload, "workload").map_err(|(f, m)| invalid(f, m))?;
    let mut errors = validate_workload(&base, "workload");
    errors.extend(validate_names(&raw));
    let mut variants = Vec::new();
    for (i, v) in raw.variants.iter().enumerate() {
        let prefix = format!("variants[{i}].workload");
        let mut merged = raw.workload.clone();
        merged.extend(v.workload.clone());
        let workload = workload_from(&merged, &prefix).map_err(|(f, m)| {
            // A field the variant did not override is the scenario's.
            let overridden = v.workload.keys().any(|k| f == format!("{prefix}.{k}"));
            invalid(
                if overridden || f == prefix {
                    f.clone()
                } else {
                    f.replacen(&prefix, "workload", 1)
                },
                m,
            )
        })?;
        errors.extend(
            validate_workload(&workload, &prefix)
                .into_iter()
                .filter(|e| v.workload.keys().any(|k| e.path == format!("{prefix}.{k}"))),
        );
        // Backend errors are relative to the variant; those about the workload point at the
        // variant's override when there is one, else at the scenario's workload.
        let at = |e: FieldError| {
            if let Some(field) = e.path.strip_prefix("workload.") {
                if v.workload.contains_key(field) {
                    FieldError::new(format!("{prefix}.{field}"), e.message)
                } else {
                    FieldError::new(e.path, format!("{} (variant {:?})", e.message, v.name))
                }
            } else {
                FieldError::new(format!("variants[{i}].{}", e.path), e.message)
            }
        };
        let Some(backend) = registry.iter().find(|b| b.info().name == v.backend) else {
            let known: Vec<_> = registry.iter().map(|b| b.info().name).collect();
            errors.push(at(FieldError::new(
                "backend",
                format!(
                    "unknown backend {:?}; valid: {}",
                    v.backend,
                    known.join(", ")
                ),
            )));
            continue;
        };
        errors.extend(validate_faults(
            &raw.faults,
            "faults",
            &workload,
            backend.as_ref(),
            v,
        ));
        let own = format!("variants[{i}].faults");
        errors.extend(validate_faults(
            &v.faults,
            &own,
            &workload,
            backend.as_ref(),
            v,
        ));
        match plan_variant(backend.as_ref(), v, &workload, &raw.faults) {
            Ok(plan) => {
                let own = backend.validate(&plan);
                // Declared bounds, unless the backend already said something of that option.
                let bounds = crate::options::check_bounds(&backend.info().options, &plan.options)
                    .into_iter()
                    .filter(|b| !own.iter().any(|e| e.path == b.path))
                    .collect::<Vec<_>>();
                errors.extend(own.into_iter().chain(bounds).map(at));
                variants.push(plan);
            }
            Err(es) => errors.extend(es.into_iter().map(at)),
        }
    }

    // Scenario-level faults are checked once per variant: say each problem once.
    let mut seen = std::collections::HashSet::new();
    errors.retain(|e| seen.insert((e.path.clone(), e.message.clone())));
    if !errors.is_empty() {
        let located = errors
            .into_iter()
            .map(|e| {
                let span = span_of(&tree, &e.path);
                locator.at(span, &e.path, e.message)
            })
            .collect();
        return Err(ScenarioError::Invalid(located));
    }
    Ok(Scenario {
        name: raw.name,
        description: raw.description,
        path: path.to_owned(),
        workload: base,
        variants,
        text,
    })
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
        (field, e.into_inner().to_string().trim_end().to_owned())
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
    check_range(&mut e, &path("consumers"), w.consumers, 1, 1024);
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
    if w.consumers > w.partitions && w.partitions > 0 {
        e.push(FieldError::new(
            path("consumers"),
            format!(
                "consumers = {} exceeds partitions = {}: each partition is read by one consumer; raise partitions or lower consumers",
                w.consumers, w.partitions
            ),
        ));
    }
    e
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
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            err(
                &format!("variants[{i}].name"),
                format!("{:?}: use letters, digits, '-', '_' or '.'", v.name),
            );
        }
        if raw.variants[..i].iter().any(|o| o.name == v.name) {
            err(
                &format!("variants[{i}].name"),
                format!(
                    "{:?} is used by an earlier variant: names must be unique",
                    v.name
                ),
            );
        }
    }
    e
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
        kill_cmd: v.kill_cmd.clone(),
        restart_cmd: v.restart_cmd.clone(),
    })
}

/// Checks one fault list; `path` is where the list is (`faults`, `variants[1].faults`).
fn validate_faults(
    faults: &[FaultSpec],
    path: &str,
    w: &Workload,
    backend: &dyn Backend,
    v: &RawVariant,
) -> Vec<FieldError> {
    use crate::plan::{BrokerFault, FaultAction};
    let mut e = Vec::new();
    for (i, f) in faults.iter().enumerate() {
        let at = |field: &str| format!("{path}[{i}].{field}");
        if let Some(d) = f.at {
            check_duration(&mut e, &at("at"), d.0, Duration::ZERO, MAX_DURATION);
        }
        if let Some(n) = f.after_messages {
            check_range(&mut e, &at("after_messages"), n, 1, MAX_MESSAGES);
        }
        match (f.at, f.after_messages) {
            (None, None) => e.push(FieldError::new(
                at("action"),
                "say when: at = \"3s\" (from the variant's start) or after_messages = N",
            )),
            (Some(_), Some(_)) => e.push(FieldError::new(
                at("after_messages"),
                "set either at or after_messages, not both",
            )),
            _ => {}
        }
        let workers = match f.action {
            FaultAction::KillProducer => Some(("producers", w.producers)),
            FaultAction::KillConsumer | FaultAction::RestartConsumer => {
                Some(("consumers", w.consumers))
            }
            _ => None,
        };
        match (workers, f.target) {
            (Some((role, n)), Some(t)) if t as u32 >= n => e.push(FieldError::new(
                at("target"),
                format!(
                    "target = {t}, but there are {n} {role}; valid: 0 to {}",
                    n - 1
                ),
            )),
            (None, Some(_)) => e.push(FieldError::new(
                at("target"),
                format!("{} takes no target", f.action),
            )),
            _ => {}
        }
        if let Some(bf) = f.action.broker_fault() {
            let by_cmd = match bf {
                BrokerFault::Kill => v.kill_cmd.is_some(),
                BrokerFault::Restart => v.restart_cmd.is_some(),
                BrokerFault::RemoveQueue => false,
            };
            let offered = backend.broker_faults();
            if !by_cmd && !offered.contains(&bf) {
                let names: Vec<String> = FaultAction::ALL
                    .iter()
                    .filter(|a| a.broker_fault().is_some_and(|b| offered.contains(&b)))
                    .map(|a| a.to_string())
                    .collect();
                e.push(FieldError::new(
                    at("action"),
                    format!(
                        "backend {} cannot {} (it can: {}); for an external broker give the variant kill_cmd / restart_cmd",
                        backend.info().name,
                        f.action,
                        if names.is_empty() { "no broker faults".into() } else { names.join(", ") }
                    ),
                ));
            }
        }
    }
    e
}

struct Locator<'a> {
    file: PathBuf,
    text: &'a str,
}

impl Locator<'_> {
    fn at(&self, span: Option<Range<usize>>, field: &str, message: String) -> Located {
        let (line, column) = match span {
            Some(s) => {
                let before = &self.text[..s.start.min(self.text.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                (line, column)
            }
            None => (1, 1),
        };
        Located {
            file: self.file.clone(),
            line,
            column,
            field: field.to_owned(),
            message,
        }
    }
}

/// The span of the deepest existing item along a dotted path such as `variants[0].options.x`.
fn span_of(tree: &Spanned<DeTable<'_>>, path: &str) -> Option<Range<usize>> {
    let mut best = Some(tree.span());
    let mut table = Some(tree.get_ref());
    let mut value: Option<&DeValue<'_>> = None;
    for seg in path.split('.').filter(|s| !s.is_empty()) {
        let (name, index) = match seg.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (seg, None),
        };
        if !name.is_empty() {
            let found = table.and_then(|t| t.iter().find(|(k, _)| k.get_ref() == name));
            let Some((_, v)) = found else { break };
            best = Some(v.span());
            value = Some(v.get_ref());
        }
        if let Some(i) = index {
            let Some(DeValue::Array(items)) = value else {
                break;
            };
            let Some(v) = items.get(i) else { break };
            best = Some(v.span());
            value = Some(v.get_ref());
        }
        table = match value {
            Some(DeValue::Table(t)) => Some(t),
            _ => None,
        };
    }
    best
}
