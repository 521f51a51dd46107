//! What differs between the scenarios two compared runs ran: the workload, and per variant run
//! on both sides its backend, delivery settings, options, workload overrides and contract (from
//! results.json), and its fault schedule and fault commands (from scenario.toml, when both sides
//! have one). `bench compare` lists these first and refuses a changed scenario unless told to
//! allow it: a changed workload is not a regression of the system under test.

use std::collections::{BTreeMap, BTreeSet};

use mq_core::plan::FaultSpec;
use serde::Deserialize;
use serde_json::Value;

use crate::Loaded;

/// One field that differs, with each side's value ("–" when absent; "a | b" when the
/// repetitions of one side disagree).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// Dotted path: `workload.rate`, `variants.sysv.delivery.producer_ack` …
    pub field: String,
    pub base: String,
    pub new: String,
}

/// The scenario fields of every repetition of both sides that differ, in field order, and notes
/// on what could not be compared.
pub fn differences(base: &[Loaded], new: &[Loaded]) -> (Vec<Difference>, Vec<String>) {
    let mut notes = Vec::new();
    let common: BTreeSet<String> = names(base).intersection(&names(new)).cloned().collect();
    let mut b = side_fields(base, &common);
    let mut n = side_fields(new, &common);
    let have_toml = |side: &[Loaded]| side.iter().all(|l| l.scenario_text.is_some());
    if have_toml(base) && have_toml(new) {
        // Both sides or neither: one side's schedule alone would read as a difference.
        match (toml_fields(base, &common), toml_fields(new, &common)) {
            (Ok(tb), Ok(tn)) => {
                b.extend(tb);
                n.extend(tn);
            }
            (Err(e), _) => notes.push(format!(
                "fault schedules not compared: BASE's scenario.toml: {e}"
            )),
            (_, Err(e)) => notes.push(format!(
                "fault schedules not compared: NEW's scenario.toml: {e}"
            )),
        }
    } else {
        notes.push(
            "fault schedules not compared: scenario.toml is not beside results.json on both sides"
                .to_owned(),
        );
    }
    let keys: BTreeSet<&String> = b.keys().chain(n.keys()).collect();
    let shown = |v: Option<&BTreeSet<String>>| match v {
        None => "–".to_owned(),
        Some(set) => set.iter().cloned().collect::<Vec<_>>().join(" | "),
    };
    let diffs = keys
        .into_iter()
        .filter(|k| b.get(*k) != n.get(*k))
        .map(|k| Difference {
            field: k.clone(),
            base: shown(b.get(k)),
            new: shown(n.get(k)),
        })
        .collect();
    (diffs, notes)
}

/// Names of the variants with results on a side.
fn names(side: &[Loaded]) -> BTreeSet<String> {
    side.iter()
        .flat_map(|l| l.results.variants.iter().map(|v| v.name.clone()))
        .collect()
}

/// Field → the set of values it has over a side's repetitions.
type Fields = BTreeMap<String, BTreeSet<String>>;

fn put(fields: &mut Fields, key: String, value: String) {
    fields.entry(key).or_default().insert(value);
}

/// What results.json says was run: the scenario's name and workload, and each variant's
/// settings (only variants on both sides: one run on one side only is reported per variant).
fn side_fields(side: &[Loaded], common: &BTreeSet<String>) -> Fields {
    let mut f = Fields::new();
    for l in side {
        let r = &l.results;
        put(&mut f, "scenario.name".into(), r.scenario.name.clone());
        let workload = serde_json::to_value(&r.scenario.workload).unwrap_or(Value::Null);
        flatten("workload", &workload, &mut |k, v| put(&mut f, k, v));
        for v in r.variants.iter().filter(|v| common.contains(&v.name)) {
            let at = |field: &str| format!("variants.{}.{field}", v.name);
            put(&mut f, at("backend"), v.backend.clone());
            let delivery = serde_json::to_value(v.delivery).unwrap_or(Value::Null);
            flatten(&at("delivery"), &delivery, &mut |k, x| put(&mut f, k, x));
            flatten(&at("options"), &v.options, &mut |k, x| put(&mut f, k, x));
            if let Some(c) = v.contract {
                put(&mut f, at("contract"), c.to_string());
            }
            // The variant's own overrides: where its workload differs from the scenario's.
            if let Some(w) = &v.workload {
                let own = serde_json::to_value(w).unwrap_or(Value::Null);
                for (k, x) in own.as_object().into_iter().flatten() {
                    if workload.get(k) != Some(x) {
                        put(&mut f, at(&format!("workload.{k}")), text(x));
                    }
                }
            }
        }
    }
    f
}

/// The part of scenario.toml that results.json does not hold.
#[derive(Deserialize)]
struct TomlScenario {
    #[serde(default)]
    faults: Vec<FaultSpec>,
    #[serde(default)]
    variants: Vec<TomlVariant>,
}

#[derive(Deserialize)]
struct TomlVariant {
    name: String,
    #[serde(default)]
    faults: Vec<FaultSpec>,
    kill_cmd: Option<String>,
    restart_cmd: Option<String>,
}

/// Each common variant's fault schedule (the scenario's faults, then its own) and fault
/// commands, from scenario.toml.
fn toml_fields(side: &[Loaded], common: &BTreeSet<String>) -> Result<Fields, String> {
    let mut fields = Fields::new();
    let f = &mut fields;
    for l in side {
        let Some(text) = &l.scenario_text else {
            continue;
        };
        let s: TomlScenario = toml::from_str(text).map_err(|e| e.message().to_owned())?;
        for v in s.variants.iter().filter(|v| common.contains(&v.name)) {
            let at = |field: &str| format!("variants.{}.{field}", v.name);
            let labels: Vec<String> = s
                .faults
                .iter()
                .chain(&v.faults)
                .map(|x| x.label())
                .collect();
            let schedule = if labels.is_empty() {
                "none".to_owned()
            } else {
                labels.join(", ")
            };
            put(f, at("faults"), schedule);
            if let Some(c) = &v.kill_cmd {
                put(f, at("kill_cmd"), c.clone());
            }
            if let Some(c) = &v.restart_cmd {
                put(f, at("restart_cmd"), c.clone());
            }
        }
    }
    Ok(fields)
}

/// Leaves of a JSON value as (dotted path, text); objects recurse, anything else is one leaf.
fn flatten(prefix: &str, v: &Value, out: &mut impl FnMut(String, String)) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                flatten(&format!("{prefix}.{k}"), x, out);
            }
        }
        other => out(prefix.to_owned(), text(other)),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "–".to_owned(),
        other => other.to_string(),
    }
}
