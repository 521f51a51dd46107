//! Checks of the kafka options that need no broker.

use super::*;
use mq_core::delivery::{ConsumerAck, Durability};

fn options(json: &str) -> Options {
    serde_json::from_str(json).unwrap()
}

fn check(o: &Options) -> Vec<FieldError> {
    o.check(&Delivery {
        producer_ack: ProducerAck::All,
        consumer_ack: ConsumerAck::AfterProcess,
        durability: Durability::Persistent,
        consumer_dedup: Default::default(),
    })
}

#[test]
fn group_settings_need_the_group_and_heartbeats_below_the_session() {
    let o = options(r#"{"session_timeout_ms": 6000, "partition_assignment_strategy": "range"}"#);
    let paths: Vec<_> = check(&o).into_iter().map(|e| e.path).collect();
    assert_eq!(
        paths,
        [
            "options.partition_assignment_strategy",
            "options.session_timeout_ms"
        ]
    );
    let o = options(
        r#"{"assignment": "group", "session_timeout_ms": 6000, "heartbeat_interval_ms": 6000}"#,
    );
    let e = check(&o);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].message.contains("valid is 100 to 5999"),
        "{}",
        e[0].message
    );
    let o = options(r#"{"assignment": "group", "heartbeat_interval_ms": 2000}"#);
    assert!(check(&o).is_empty());
    assert_eq!(
        o.partition_assignment_strategy.unwrap_or_default(),
        Strategy::CooperativeSticky
    );
    let bad = serde_json::from_str::<Options>(r#"{"assignment": "groups"}"#).unwrap_err();
    assert!(
        bad.to_string().contains("expected `manual` or `group`"),
        "{bad}"
    );
}

#[test]
fn transactions_need_acks_all_and_their_settings_need_transactions() {
    let leader = Delivery {
        producer_ack: ProducerAck::Leader,
        consumer_ack: ConsumerAck::AfterProcess,
        durability: Durability::Persistent,
        consumer_dedup: Default::default(),
    };
    let e = options(r#"{"transactional": true}"#).check(&leader);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].path, "options.transactional");
    assert!(
        e[0].message.contains("set producer_ack = \"all\""),
        "{}",
        e[0].message
    );
    let o = options(
        r#"{"transactional": true, "transaction_size": 5000, "transaction_timeout_ms": 3000}"#,
    );
    assert!(check(&o).is_empty());
    assert!(o
        .broker_overrides()
        .iter()
        .any(|l| l == "transaction.abort.timed.out.transaction.cleanup.interval.ms=1000"));
    let o = options(r#"{"transaction_size": 10, "transaction_timeout_ms": 3000}"#);
    let paths: Vec<_> = check(&o).into_iter().map(|e| e.path).collect();
    assert_eq!(
        paths,
        ["options.transaction_size", "options.transaction_timeout_ms"]
    );
    assert!(o.broker_overrides().is_empty());
    let e = check(&options(
        r#"{"producer_config": {"transactional.id": "x"}}"#,
    ));
    assert_eq!(e[0].path, "options.producer_config.transactional.id");
}

#[test]
fn isolation_level_defaults_to_read_committed_for_transactions_only() {
    use crate::txn::isolation;
    assert_eq!(isolation(&options("{}")), None);
    assert_eq!(
        isolation(&options(r#"{"transactional": true}"#)),
        Some(IsolationLevel::ReadCommitted)
    );
    let o = options(r#"{"transactional": true, "isolation_level": "read_uncommitted"}"#);
    assert_eq!(
        isolation(&o).map(IsolationLevel::as_str),
        Some("read_uncommitted")
    );
    let bad = serde_json::from_str::<Options>(r#"{"isolation_level": "committed"}"#).unwrap_err();
    assert!(
        bad.to_string()
            .contains("expected `read_committed` or `read_uncommitted`"),
        "{bad}"
    );
}

#[test]
fn a_paced_transaction_must_fill_well_within_its_timeout() {
    use crate::txn::check_pace;
    let o = options(
        r#"{"transactional": true, "transaction_size": 1000, "transaction_timeout_ms": 4000}"#,
    );
    let mut e = Vec::new();
    check_pace(&o, 1000.0, &mut e);
    check_pace(&o, 0.0, &mut e); // as fast as possible
    assert!(e.is_empty(), "{e:?}");
    check_pace(&o, 400.0, &mut e);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].path, "options.transaction_size");
    assert!(
        e[0].message.contains("takes 2.5 s to fill"),
        "{}",
        e[0].message
    );
    assert!(
        e[0].message.contains("valid is at most 800"),
        "{}",
        e[0].message
    );
}
