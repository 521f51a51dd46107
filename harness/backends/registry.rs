//! The registry of backends: adding a backend is its crate in this folder plus one line here.

use mq_core::Registry;

/// Every backend `bench` knows, in the order `bench list` shows them.
#[rustfmt::skip]
pub fn registry() -> Registry {
    vec![
        Box::new(mq_backend_sysv::SysV),
        Box::new(mq_backend_log::LogBackend),
        Box::new(mq_backend_kafka::Kafka),
        Box::new(mq_backend_rabbitmq::RabbitMq),
        Box::new(mq_backend_nats::Nats),
        Box::new(mq_backend_rocketmq::RocketMq),
    ]
}
