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
