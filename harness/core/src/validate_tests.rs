//! Tests of [`super`]: planning a scenario's variants and the errors it names; a fake backend
//! other modules' tests use too.

use std::path::Path;

use crate::backend::{
    Backend, BackendError, BackendInfo, Broker, Consumer, Producer, Registry, WorkerCtx,
};
use crate::delivery::{ConsumerAck, Contract, Delivery, Durability, ProducerAck};
use crate::plan::{FieldError, VariantPlan};
use crate::scenario::{parse, Scenario, ScenarioError};

/// A backend that validates and plans, and can run nothing.
struct Fake;

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Options {
    /// Something bounded.
    #[serde(default)]
    #[schemars(range(min = 1, max = 10))]
    depth: u32,
    /// As kafka spells a group of consumers.
    #[serde(default)]
    assignment: Option<String>,
}

impl Backend for Fake {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            name: "fake",
            summary: "",
            producer_ack: vec![(ProducerAck::Leader, ""), (ProducerAck::All, "")],
            consumer_ack: vec![(ConsumerAck::AfterProcess, "")],
            durability: vec![(Durability::Persistent, "")],
            defaults: Delivery {
                producer_ack: ProducerAck::Leader,
                consumer_ack: ConsumerAck::AfterProcess,
                durability: Durability::Persistent,
                consumer_dedup: Default::default(),
            },
            options: crate::options::describe::<Options>(),
        }
    }
    fn validate(&self, plan: &VariantPlan) -> Vec<FieldError> {
        let mut e: Vec<FieldError> = plan.options::<Options>().err().into_iter().collect();
        if plan.workload.message_size > 1000 {
            e.push(FieldError::new(
                "workload.message_size",
                "fake holds 1000 B at most",
            ));
        }
        e
    }
    fn broker(&self, _: &VariantPlan, _: &Path, _: &str) -> Result<Box<dyn Broker>, BackendError> {
        Err(BackendError::other("fake", "cannot run"))
    }
    fn producer(&self, _: &WorkerCtx) -> Result<Box<dyn Producer>, BackendError> {
        Err(BackendError::other("fake", "cannot run"))
    }
    fn consumer(&self, _: &WorkerCtx) -> Result<Box<dyn Consumer>, BackendError> {
        Err(BackendError::other("fake", "cannot run"))
    }
}

pub(crate) fn run(text: &str) -> Result<Scenario, ScenarioError> {
    let registry: Registry = vec![Box::new(Fake)];
    parse(Path::new("s.toml"), text.to_owned(), &registry)
}

pub(crate) fn errors(text: &str) -> Vec<String> {
    match run(text) {
        Err(ScenarioError::Invalid(es)) => es.iter().map(|e| e.to_string()).collect(),
        other => panic!("expected errors, got {other:?}"),
    }
}

pub(crate) const BASE: &str = "name = \"s\"\n[workload]\nmessages = 10\nmessage_size = 500\n";

#[test]
fn a_valid_scenario_gets_its_backend_s_defaults_and_its_own_overrides() {
    let s = run(&format!(
        "{BASE}[[variants]]\nname = \"a\"\nbackend = \"fake\"\n\
         [[variants]]\nname = \"b\"\nbackend = \"fake\"\nproducer_ack = \"all\"\n\
         workload = {{ message_size = 100 }}\n"
    ))
    .unwrap();
    let (a, b) = (&s.variants[0], &s.variants[1]);
    assert_eq!(a.delivery.producer_ack, ProducerAck::Leader);
    assert_eq!(b.delivery.producer_ack, ProducerAck::All);
    assert_eq!(
        (a.workload.message_size, b.workload.message_size),
        (500, 100)
    );
    assert_eq!(a.contract, Contract::AtLeastOnce);
}

#[test]
fn backend_errors_point_at_the_override_or_at_the_scenario_s_workload() {
    let e = errors(&format!(
        "{BASE}[[variants]]\nname = \"a\"\nbackend = \"fake\"\nworkload = {{ message_size = 2000 }}\n\
         [[variants]]\nname = \"b\"\nbackend = \"fake\"\n"
    ));
    assert_eq!(
        e,
        ["s.toml:8:29: variants[0].workload.message_size: fake holds 1000 B at most"]
    );
    let e = errors(
        "name = \"s\"\n[workload]\nmessages = 10\nmessage_size = 2000\n\
         [[variants]]\nname = \"a\"\nbackend = \"fake\"\n",
    );
    assert_eq!(
        e,
        ["s.toml:4:16: workload.message_size: fake holds 1000 B at most (variant \"a\")"]
    );
}

#[test]
fn unknown_backends_settings_and_option_bounds_are_all_reported_in_one_go() {
    let e = errors(&format!(
        "{BASE}[[variants]]\nname = \"a\"\nbackend = \"nope\"\n\
         [[variants]]\nname = \"b\"\nbackend = \"fake\"\nconsumer_ack = \"auto\"\n\
         [[variants]]\nname = \"c\"\nbackend = \"fake\"\noptions = {{ depth = 11 }}\n"
    ));
    assert_eq!(
        e,
        [
            "s.toml:7:11: variants[0].backend: unknown backend \"nope\"; valid: fake",
            "s.toml:11:16: variants[1].consumer_ack: backend fake cannot honour consumer_ack = \"auto\"; valid: after-process",
            "s.toml:15:21: variants[2].options.depth: depth = 11 is out of range: valid is 1 to 10",
        ]
    );
}

#[test]
fn a_scenario_fault_wrong_for_every_variant_is_reported_once() {
    let e = errors(&format!(
        "{BASE}[[faults]]\naction = \"kill-broker\"\nat = \"1s\"\n\
         [[variants]]\nname = \"a\"\nbackend = \"fake\"\n[[variants]]\nname = \"b\"\nbackend = \"fake\"\n"
    ));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("s.toml:6:10: faults[0].action: backend fake cannot kill-broker"),
        "{e:?}"
    );
}

#[test]
fn runs_expand_a_variant_into_named_runs_and_are_range_checked() {
    let s = run(&format!(
        "runs = 2\n{BASE}[[variants]]\nname = \"a\"\nbackend = \"fake\"\nruns = 3\n\
         [[variants]]\nname = \"b\"\nbackend = \"fake\"\n"
    ))
    .unwrap();
    let names: Vec<&str> = s.variants.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(
        names,
        ["a.run-1", "a.run-2", "a.run-3", "b.run-1", "b.run-2"]
    );
    let of = s.variants[2].run_of.as_ref().unwrap();
    assert_eq!((of.of.as_str(), of.run, of.runs), ("a", 3, 3));
    let one = run(&format!(
        "{BASE}[[variants]]\nname = \"a\"\nbackend = \"fake\"\nruns = 1\n"
    ))
    .unwrap();
    assert_eq!(one.variants[0].name, "a");
    assert!(one.variants[0].run_of.is_none());
    let e = errors(&format!(
        "{BASE}[[variants]]\nname = \"a\"\nbackend = \"fake\"\nruns = 0\n\
         [[variants]]\nname = \"b.run-1\"\nbackend = \"fake\"\n"
    ));
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(
        e[1].ends_with("variants[0].runs: runs = 0 is out of range: valid is 1 to 100"),
        "{e:?}"
    );
    assert!(
        e[0].contains("variants[1].name: \"b.run-1\": \".run-\" is kept"),
        "{e:?}"
    );
}

#[test]
fn a_producer_only_variant_is_valid_and_refuses_what_reads_back() {
    let s = run(&format!(
        "{BASE}consumers = 0\n[[variants]]\nname = \"a\"\nbackend = \"fake\"\n"
    ))
    .unwrap();
    assert_eq!(s.variants[0].workload.consumers, 0);
    let e = errors(&format!(
        "{BASE}consumers = 0\n[[faults]]\naction = \"kill-consumer\"\nat = \"1s\"\n\
         [[variants]]\nname = \"a\"\nbackend = \"fake\"\n"
    ));
    assert_eq!(
        e,
        ["s.toml:7:10: faults[0].action: kill-consumer needs consumers, and consumers = 0 (producer only); set consumers = 1 or more"]
    );
    let e = errors(
        "name = \"s\"\n[workload]\nrate = \"max\"\nduration = \"1s\"\nmessage_size = 500\nconsumers = 0\n\
         [[variants]]\nname = \"a\"\nbackend = \"fake\"\n",
    );
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].contains(
            "workload.consumers: consumers = 0 (producer only) cannot go with rate = \"max\""
        ),
        "{e:?}"
    );
}
