//! A variant as written → the plans it runs: one per point of its `sweep` (a workload field at
//! several values), each run `runs` times. Names say which: `NAME.rate-1000`, `NAME.run-2`,
//! `NAME.size-1024.run-3`; each plan carries [`PointOf`] / [`RunOf`] so reports can group them.

use serde::{Deserialize, Serialize};

use crate::backend::Registry;
use crate::plan::{check_range, FieldError, VariantPlan, MAX_RUNS};
use crate::search::SearchSpec;
use crate::validate::{plan_one, RawScenario, RawVariant};

/// One of the N runs of a variant written with `runs = N`: the variant as written, and which run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOf {
    /// The variant's name as written; each run is named `{of}.run-{run}`.
    pub of: String,
    /// 1-based.
    pub run: u32,
    pub runs: u32,
}

/// One point of a variant's sweep: the variant as written, the axis and this point's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointOf {
    /// The variant's name as written; each point is named `{of}.{axis}-{value}`.
    pub of: String,
    pub axis: SweepAxis,
    pub value: u64,
}

/// What a sweep varies: a workload field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SweepAxis {
    Rate,
    MessageSize,
    Producers,
    Partitions,
}

impl SweepAxis {
    pub const ALL: [SweepAxis; 4] = [
        SweepAxis::Rate,
        SweepAxis::MessageSize,
        SweepAxis::Producers,
        SweepAxis::Partitions,
    ];

    /// The workload field it sets.
    pub fn field(self) -> &'static str {
        match self {
            SweepAxis::Rate => "rate",
            SweepAxis::MessageSize => "message_size",
            SweepAxis::Producers => "producers",
            SweepAxis::Partitions => "partitions",
        }
    }

    /// The list in `[sweep]` that gives its points.
    pub fn list(self) -> &'static str {
        match self {
            SweepAxis::Rate => "rates",
            SweepAxis::MessageSize => "message_sizes",
            SweepAxis::Producers => "producers",
            SweepAxis::Partitions => "partitions",
        }
    }

    /// The point's name suffix: `rate-1000`, `size-1024`, `producers-4`, `partitions-8`.
    pub fn tag(self) -> &'static str {
        match self {
            SweepAxis::Rate => "rate",
            SweepAxis::MessageSize => "size",
            SweepAxis::Producers => "producers",
            SweepAxis::Partitions => "partitions",
        }
    }
}

/// The most points of one sweep.
pub const MAX_POINTS: usize = 50;

/// `[sweep]` (every variant) or a variant's `sweep = { … }`: one list, the values of one axis.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSweep {
    #[serde(default)]
    rates: Vec<u64>,
    #[serde(default)]
    message_sizes: Vec<u64>,
    #[serde(default)]
    producers: Vec<u64>,
    #[serde(default)]
    partitions: Vec<u64>,
    /// Fractions of the rate `rate = "max"` finds, run after the search.
    #[serde(default)]
    rate_fractions: Vec<f64>,
}

impl RawSweep {
    fn list(&self, axis: SweepAxis) -> &[u64] {
        match axis {
            SweepAxis::Rate => &self.rates,
            SweepAxis::MessageSize => &self.message_sizes,
            SweepAxis::Producers => &self.producers,
            SweepAxis::Partitions => &self.partitions,
        }
    }

    /// Its axis and values; an error at `path` when it names no axis or several, has too many
    /// points, or repeats one.
    fn points(&self, path: &str) -> Result<(SweepAxis, &[u64]), FieldError> {
        let lists: Vec<String> = SweepAxis::ALL.iter().map(|a| a.list().into()).collect();
        let given: Vec<SweepAxis> = SweepAxis::ALL
            .into_iter()
            .filter(|a| !self.list(*a).is_empty())
            .collect();
        let axis = match given[..] {
            [axis] => axis,
            [] => {
                let message = format!(
                    "an empty sweep: give one list of {}, or rate_fractions",
                    lists.join(", ")
                );
                return Err(FieldError::new(path, message));
            }
            _ => {
                let named: Vec<&str> = given.iter().map(|a| a.list()).collect();
                let message = format!(
                    "a sweep varies one field at a time; it names {} (use one variant per axis)",
                    named.join(" and ")
                );
                return Err(FieldError::new(path, message));
            }
        };
        let values = self.list(axis);
        let at = format!("{path}.{}", axis.list());
        if values.len() > MAX_POINTS {
            let message = format!("{} points; at most {MAX_POINTS}", values.len());
            return Err(FieldError::new(at, message));
        }
        if let Some(v) = values
            .iter()
            .enumerate()
            .find_map(|(i, v)| values[..i].contains(v).then_some(v))
        {
            return Err(FieldError::new(at, format!("{v} appears twice")));
        }
        Ok((axis, values))
    }
}

/// The plans of variant `i` (none when its backend is unknown), its problems added to `errors`;
/// Err when its workload does not even deserialize.
pub(crate) fn variant_plans(
    raw: &RawScenario,
    i: usize,
    v: &RawVariant,
    scenario_max: bool,
    registry: &Registry,
    errors: &mut Vec<FieldError>,
) -> Result<Vec<VariantPlan>, (String, String)> {
    if let Some(n) = v.runs {
        check_range(errors, &format!("variants[{i}].runs"), n, 1, MAX_RUNS);
    }
    let runs = v.runs.or(raw.runs).unwrap_or(1).clamp(1, MAX_RUNS);
    let sweep = match (&v.sweep, &raw.sweep) {
        (Some(s), _) => Some((s, format!("variants[{i}].sweep"))),
        (None, Some(s)) => Some((s, "sweep".to_owned())),
        (None, None) => None,
    };
    let mut v = v.clone();
    let max = crate::search::take_max(&mut v.workload)
        || (scenario_max && !v.workload.contains_key("rate"));
    let search = searched(raw, i, &v, max, errors);
    match sweep {
        Some((s, path)) if s.rate_fractions.is_empty() => {
            if search.is_some() {
                let message = "rate = \"max\" searches for one rate: sweep rate_fractions of it";
                errors.push(FieldError::new(path.clone(), message));
            }
            sweep_points(raw, i, &v, (s, &path), runs, registry, errors)
        }
        sweep => {
            let fractions = sweep.map_or_else(Vec::new, |(s, path)| {
                fractions(s, &path, search.is_some(), errors);
                s.rate_fractions.clone()
            });
            let (plan, es) = plan_one(raw, i, &v, registry)?;
            errors.extend(es);
            if let Some(p) = plan
                .as_ref()
                .filter(|p| search.is_some() && p.workload.consumers == 0)
            {
                let own = v.workload.contains_key("consumers");
                errors.push(FieldError::new(
                    match own {
                        true => format!("variants[{i}].workload.consumers"),
                        false => "workload.consumers".to_owned(),
                    },
                    format!(
                        "consumers = 0 (producer only) cannot go with rate = \"max\": the search judges what is delivered (variant {:?}); set consumers = 1 or more",
                        p.name
                    ),
                ));
            }
            let plan = plan.map(|p| VariantPlan {
                search,
                rate_fractions: fractions,
                ..p
            });
            Ok(plan
                .into_iter()
                .flat_map(|p| expand_runs(p, runs))
                .collect())
        }
    }
}

/// A sweep over values: a plan per point (times `runs`).
fn sweep_points(
    raw: &RawScenario,
    i: usize,
    v: &RawVariant,
    (sweep, path): (&RawSweep, &str),
    runs: u32,
    registry: &Registry,
    errors: &mut Vec<FieldError>,
) -> Result<Vec<VariantPlan>, (String, String)> {
    let (axis, values) = match sweep.points(path) {
        Ok(points) => points,
        Err(e) => {
            errors.push(e);
            return Ok(Vec::new());
        }
    };
    // A point's problem with its field is the sweep list's, not the (absent) workload override's.
    let field = format!("variants[{i}].workload.{}", axis.field());
    let list = format!("{path}.{}", axis.list());
    let mut plans = Vec::new();
    for &value in values {
        let remap = |p: String, m: String| match p == field {
            true => (list.clone(), format!("{m} (sweep point {value})")),
            false => (p, m),
        };
        let mut point = v.clone();
        let as_toml = toml::Value::Integer(i64::try_from(value).unwrap_or(i64::MAX));
        point.workload.insert(axis.field().to_owned(), as_toml);
        let (plan, es) = plan_one(raw, i, &point, registry).map_err(|(p, m)| remap(p, m))?;
        errors.extend(es.into_iter().map(|e| {
            let (path, message) = remap(e.path, e.message);
            FieldError::new(path, message)
        }));
        if let Some(mut p) = plan {
            p.name = format!("{}.{}-{value}", v.name, axis.tag());
            p.point_of = Some(PointOf {
                of: v.name.clone(),
                axis,
                value,
            });
            plans.extend(expand_runs(p, runs));
        }
    }
    Ok(plans)
}

/// The search of variant `v` when its rate is `"max"`; a search table without it is an error.
fn searched(
    raw: &RawScenario,
    i: usize,
    v: &RawVariant,
    max: bool,
    errors: &mut Vec<FieldError>,
) -> Option<SearchSpec> {
    let path = format!("variants[{i}].search");
    if let Some(s) = &v.search {
        errors.extend(s.validate(&path));
    }
    if !max {
        if v.search.is_some() {
            let message = "search settings without a rate to search: set workload.rate = \"max\"";
            errors.push(FieldError::new(path, message));
        }
        return None;
    }
    Some(
        v.search
            .clone()
            .or_else(|| raw.search.clone())
            .unwrap_or_default(),
    )
}

/// Checks `rate_fractions`: each in (0, 1.5], at most [`MAX_POINTS`], and a search to take them of.
fn fractions(s: &RawSweep, path: &str, searched: bool, errors: &mut Vec<FieldError>) {
    let at = format!("{path}.rate_fractions");
    if !searched {
        let message = "rate_fractions are fractions of the rate rate = \"max\" finds: set workload.rate = \"max\"";
        errors.push(FieldError::new(at.clone(), message));
    }
    if s.rate_fractions.len() > MAX_POINTS {
        let message = format!("{} points; at most {MAX_POINTS}", s.rate_fractions.len());
        errors.push(FieldError::new(at.clone(), message));
    }
    for f in &s.rate_fractions {
        check_range(errors, &at, *f, 0.001, 1.5);
    }
    let others = SweepAxis::ALL.iter().any(|a| !s.list(*a).is_empty());
    if others {
        let message = "a sweep varies one field at a time: rate_fractions, or one list of values";
        errors.push(FieldError::new(path, message));
    }
}

/// `runs = N` (N > 1): the plan as N plans named `{name}.run-{i}`, in order.
fn expand_runs(plan: VariantPlan, runs: u32) -> Vec<VariantPlan> {
    if runs <= 1 {
        return vec![plan];
    }
    (1..=runs)
        .map(|run| VariantPlan {
            name: format!("{}.run-{run}", plan.name),
            run_of: Some(RunOf {
                of: plan.name.clone(),
                run,
                runs,
            }),
            ..plan.clone()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::plan::SweepAxis;
    use crate::validate::tests::{errors, run, BASE};

    #[test]
    fn a_sweep_plans_one_variant_per_point_and_runs_within_each() {
        let s = run(&format!(
            "{BASE}[sweep]\nrates = [100, 1000]\n\
             [[variants]]\nname = \"a\"\nbackend = \"fake\"\n\
             [[variants]]\nname = \"b\"\nbackend = \"fake\"\nruns = 2\n\
             sweep = {{ message_sizes = [100, 900] }}\n"
        ))
        .unwrap();
        let names: Vec<&str> = s.variants.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "a.rate-100",
                "a.rate-1000",
                "b.size-100.run-1",
                "b.size-100.run-2",
                "b.size-900.run-1",
                "b.size-900.run-2"
            ]
        );
        assert_eq!(s.variants[1].workload.rate, 1000);
        assert_eq!(s.variants[4].workload.message_size, 900);
        let p = s.variants[4].point_of.as_ref().unwrap();
        assert_eq!(
            (p.of.as_str(), p.axis, p.value),
            ("b", SweepAxis::MessageSize, 900)
        );
        assert_eq!(s.variants[4].run_of.as_ref().unwrap().of, "b.size-900");
    }

    #[test]
    fn sweep_errors_name_the_list_and_the_point() {
        let e = errors(&format!(
            "{BASE}[[variants]]\nname = \"a\"\nbackend = \"fake\"\n\
             sweep = {{ message_sizes = [100, 2000] }}\n"
        ));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains(
                "variants[0].sweep.message_sizes: fake holds 1000 B at most (sweep point 2000)"
            ),
            "{e:?}"
        );
        let e = errors(&format!(
            "{BASE}[sweep]\nrates = [1]\npartitions = [2]\n\
             [[variants]]\nname = \"a\"\nbackend = \"fake\"\n"
        ));
        assert!(
            e[0].contains(
                "sweep: a sweep varies one field at a time; it names rates and partitions"
            ),
            "{e:?}"
        );
        let e = errors(&format!(
            "{BASE}[sweep]\nrates = [1, 1]\n[[variants]]\nname = \"a\"\nbackend = \"fake\"\n"
        ));
        assert!(e[0].contains("sweep.rates: 1 appears twice"), "{e:?}");
        let e = errors(&format!(
            "{BASE}[sweep]\n[[variants]]\nname = \"a\"\nbackend = \"fake\"\n"
        ));
        assert!(
            e[0].contains("sweep: an empty sweep: give one list of rates, message_sizes"),
            "{e:?}"
        );
        let e = errors(&format!(
            "{BASE}[sweep]\nproducers = [0, 2]\n[[variants]]\nname = \"a\"\nbackend = \"fake\"\n"
        ));
        assert!(e[0].contains("sweep.producers: producers = 0 is out of range: valid is 1 to 1024 (sweep point 0)"), "{e:?}");
    }

    #[test]
    fn rate_max_plans_a_search_and_its_fractions() {
        let s = run(&format!(
            "{BASE}[search]\nprobe = \"2s\"\nslo_p99 = \"10ms\"\n\
             [[variants]]\nname = \"a\"\nbackend = \"fake\"\nworkload = {{ rate = \"max\" }}\n\
             sweep = {{ rate_fractions = [0.5, 0.9] }}\n\
             [[variants]]\nname = \"b\"\nbackend = \"fake\"\n"
        ))
        .unwrap();
        let a = &s.variants[0];
        assert_eq!(a.name, "a");
        assert_eq!(a.workload.rate, 0);
        let search = a.search.as_ref().unwrap();
        assert_eq!(search.probe.0, std::time::Duration::from_secs(2));
        assert_eq!(search.start_rate, 1000);
        assert_eq!(a.rate_fractions, [0.5, 0.9]);
        assert!(s.variants[1].search.is_none());
        let e = errors(&format!(
            "{BASE}[[variants]]\nname = \"a\"\nbackend = \"fake\"\n\
             sweep = {{ rate_fractions = [0.5] }}\nsearch = {{ precision = 0.9 }}\n"
        ));
        let e = e.join("\n");
        assert!(e.contains("variants[0].search.precision: precision = 0.9 is out of range: valid is 0.01 to 0.5"), "{e}");
        assert!(
            e.contains("variants[0].search: search settings without a rate to search"),
            "{e}"
        );
        assert!(
            e.contains(
                "variants[0].sweep.rate_fractions: rate_fractions are fractions of the rate"
            ),
            "{e}"
        );
        let e = errors(&format!(
            "{BASE}[[variants]]\nname = \"a\"\nbackend = \"fake\"\nworkload = {{ rate = \"fast\" }}\n"
        ));
        assert!(
            e[0].contains("or \"max\" (search for the highest sustainable rate)"),
            "{e:?}"
        );
    }
}
