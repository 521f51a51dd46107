//! The exchange and queues of one variant, declared the same way by the coordinator at setup
//! and again by workers after a reconnect (a restarted node may have lost transient ones; a
//! declare with other arguments than the first would be refused).

use std::time::Duration;

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, ExchangeKind};
use mq_core::delivery::Durability;
use mq_core::plan::VariantPlan;
use mq_core::BackendError;

use crate::conn::bounded;
use crate::options::{Options, QueueType};

/// How long one declare or bind may take.
const OP_TIMEOUT: Duration = Duration::from_secs(10);

/// What a variant declares: the direct exchange and queue p bound with routing key `p`.
#[derive(Debug, Clone)]
pub struct Topology {
    pub exchange: String,
    pub queues: Vec<String>,
    durable: bool,
    quorum: bool,
}

impl Topology {
    pub fn new(
        exchange: &str,
        queues: &[String],
        plan: &VariantPlan,
        options: &Options,
    ) -> Topology {
        Topology {
            exchange: exchange.to_owned(),
            queues: queues.to_vec(),
            durable: plan.delivery.durability == Durability::Persistent,
            quorum: options.queue_type == QueueType::Quorum,
        }
    }

    /// Declares the exchange (idempotent when it exists with the same settings).
    pub async fn declare_exchange(&self, ch: &Channel, shown: &str) -> Result<(), BackendError> {
        let ex = self.exchange.as_str();
        bounded(
            OP_TIMEOUT,
            || format!("declaring exchange {ex} on {shown}"),
            ch.exchange_declare(
                ex.into(),
                ExchangeKind::Direct,
                ExchangeDeclareOptions {
                    durable: self.durable,
                    ..Default::default()
                },
                FieldTable::default(),
            ),
        )
        .await
    }

    /// Declares queue `i` and binds it to the exchange with routing key `i`.
    pub async fn declare_queue(
        &self,
        ch: &Channel,
        i: usize,
        shown: &str,
    ) -> Result<(), BackendError> {
        let (ex, q) = (self.exchange.as_str(), self.queues[i].as_str());
        let mut args = FieldTable::default();
        if self.quorum {
            args.insert(
                "x-queue-type".into(),
                AMQPValue::LongString("quorum".into()),
            );
        }
        bounded(
            OP_TIMEOUT,
            || format!("declaring queue {q} on {shown}"),
            ch.queue_declare(
                q.into(),
                QueueDeclareOptions {
                    durable: self.durable,
                    ..Default::default()
                },
                args,
            ),
        )
        .await?;
        bounded(
            OP_TIMEOUT,
            || format!("binding queue {q} to {ex} on {shown}"),
            ch.queue_bind(
                q.into(),
                ex.into(),
                i.to_string().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            ),
        )
        .await
    }
}
