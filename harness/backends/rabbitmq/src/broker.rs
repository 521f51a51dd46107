//! Coordinator side: starts a managed node, declares the exchange and one queue per partition,
//! reports their depth, and removes them (and stops the node) at teardown.

use std::path::Path;
use std::time::Duration;

use lapin::options::{
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ExchangeKind};
use mq_core::delivery::Durability;
use mq_core::managed::{Managed, Script, Scripted};
use mq_core::plan::BrokerFault;
use mq_core::plan::VariantPlan;
use mq_core::{BackendError, Broker, Depth, NodeHit};
use tokio::runtime::Runtime;

use crate::conn::{self, bounded, Endpoint};
use crate::options::{Mode, Options, QueueType};
use crate::script::Node;
use crate::NAME;

const OP_TIMEOUT: Duration = Duration::from_secs(10);
const START_TIMEOUT: Duration = Duration::from_secs(120);
const STOP_TIMEOUT: Duration = Duration::from_secs(90);
const DEPTH_TIMEOUT: Duration = Duration::from_secs(2);

/// The exchange and queue names of one variant of one run.
#[derive(Debug, Clone)]
pub struct Names {
    pub exchange: String,
    pub queues: Vec<String>,
}

impl Names {
    /// `mqb-<run_tag>-<variant>` and `mqb-<run_tag>-<variant>-<i>`.
    pub fn new(run_tag: &str, variant: &str, partitions: u32) -> Names {
        let exchange = format!("mqb-{run_tag}-{variant}");
        let queues = (0..partitions).map(|i| format!("{exchange}-{i}")).collect();
        Names { exchange, queues }
    }
}

pub struct RabbitBroker {
    plan: VariantPlan,
    options: Options,
    names: Names,
    /// The managed node (None: external).
    managed: Option<Managed<Scripted<Node>>>,
    /// Queues and exchange exist and are ours to delete.
    created: bool,
    rt: Option<Runtime>,
    conn: Option<(Connection, Channel)>,
    shown: String,
}

impl RabbitBroker {
    /// `variant_dir` is the variant's folder in the run; names are made from `run_tag` ([`Names`]).
    pub fn new(
        plan: &VariantPlan,
        options: Options,
        variant_dir: &Path,
        run_tag: &str,
    ) -> RabbitBroker {
        let managed = (options.mode == Mode::Managed).then(|| {
            let node = Scripted {
                script: Node::new(
                    options.port,
                    variant_dir.join(format!("{}.rabbitmq", plan.name)),
                ),
                log: variant_dir.join(format!("{}.rabbitmq.log", plan.name)),
                start_timeout: START_TIMEOUT,
                stop_timeout: STOP_TIMEOUT,
            };
            Managed::new(NAME, node, options.keep)
        });
        RabbitBroker {
            names: Names::new(run_tag, &plan.name, plan.workload.partitions),
            plan: plan.clone(),
            options,
            managed,
            created: false,
            rt: None,
            conn: None,
            shown: String::new(),
        }
    }

    fn rt(&mut self) -> Result<&Runtime, BackendError> {
        if self.rt.is_none() {
            self.rt = Some(conn::runtime()?);
        }
        Ok(self.rt.as_ref().expect("just set"))
    }

    /// A channel on a live connection, reconnecting if the last one died.
    fn channel(&mut self) -> Result<Channel, BackendError> {
        if let Some((c, ch)) = &self.conn {
            if c.status().connected() && ch.status().connected() {
                return Ok(ch.clone());
            }
        }
        let (uri, shown) = self
            .options
            .connect_uri()
            .map_err(|m| BackendError::other(NAME, m))?;
        self.shown = shown.clone();
        let old = self.conn.take();
        let rt = self.rt()?;
        let (c, ch) = rt.block_on(async {
            if let Some((c, _)) = old {
                if c.status().connected() {
                    let ch = bounded(
                        OP_TIMEOUT,
                        || format!("opening a channel on {shown}"),
                        c.create_channel(),
                    )
                    .await?;
                    return Ok((c, ch));
                }
            }
            let c = conn::connect(&uri, &shown, "mq-bench coordinator").await?;
            let ch = bounded(
                OP_TIMEOUT,
                || format!("opening a channel on {shown}"),
                c.create_channel(),
            )
            .await?;
            Ok::<_, BackendError>((c, ch))
        })?;
        self.conn = Some((c, ch.clone()));
        Ok(ch)
    }

    fn declare(&mut self) -> Result<(), BackendError> {
        let ch = self.channel()?;
        let durable = self.plan.delivery.durability == Durability::Persistent;
        let mut args = FieldTable::default();
        if self.options.queue_type == QueueType::Quorum {
            args.insert(
                "x-queue-type".into(),
                AMQPValue::LongString("quorum".into()),
            );
        }
        let names = self.names.clone();
        let shown = self.shown.clone();
        self.created = true; // from here on, teardown tries to delete whatever exists
        self.rt()?.block_on(async {
            let ex = names.exchange.as_str();
            bounded(
                OP_TIMEOUT,
                || format!("declaring exchange {ex} on {shown}"),
                ch.exchange_declare(
                    ex.into(),
                    ExchangeKind::Direct,
                    ExchangeDeclareOptions {
                        durable,
                        ..Default::default()
                    },
                    FieldTable::default(),
                ),
            )
            .await?;
            for (i, q) in names.queues.iter().enumerate() {
                bounded(
                    OP_TIMEOUT,
                    || format!("declaring queue {q} on {shown}"),
                    ch.queue_declare(
                        q.as_str().into(),
                        QueueDeclareOptions {
                            durable,
                            ..Default::default()
                        },
                        args.clone(),
                    ),
                )
                .await?;
                bounded(
                    OP_TIMEOUT,
                    || format!("binding queue {q} to {ex} on {shown}"),
                    ch.queue_bind(
                        q.as_str().into(),
                        ex.into(),
                        i.to_string().into(),
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    ),
                )
                .await?;
            }
            Ok(())
        })
    }

    fn delete(&mut self) -> Result<(), BackendError> {
        let names = self.names.clone();
        let mut first_err = None;
        for q in &names.queues {
            // A failed delete closes the channel: take a fresh one for each. A failed connect ends it.
            let ch = self.channel()?;
            let shown = self.shown.clone();
            let r = self.rt()?.block_on(bounded(
                OP_TIMEOUT,
                || format!("deleting queue {q} on {shown}"),
                ch.queue_delete(q.as_str().into(), QueueDeleteOptions::default()),
            ));
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        }
        let ch = self.channel()?;
        let shown = self.shown.clone();
        let ex = names.exchange.as_str();
        let r = self.rt()?.block_on(bounded(
            OP_TIMEOUT,
            || format!("deleting exchange {ex} on {shown}"),
            ch.exchange_delete(ex.into(), ExchangeDeleteOptions::default()),
        ));
        if let Err(e) = r {
            first_err.get_or_insert(e);
        }
        first_err.map_or(Ok(()), Err)
    }

    fn close(&mut self) {
        if let (Some((c, _)), Some(rt)) = (self.conn.take(), &self.rt) {
            let _ = rt.block_on(conn::within(
                Duration::from_secs(2),
                c.close(200, "bye".into()),
            ));
        }
    }
}

impl Script for Node {
    fn describe(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
    fn run(&self, cmd: &str, timeout: Duration, log: &Path) -> Result<(), String> {
        Node::run(self, cmd, timeout, log)
    }
}

impl Broker for RabbitBroker {
    fn setup(&mut self) -> Result<serde_json::Value, BackendError> {
        if let Some(m) = &mut self.managed {
            let node = &m.node().script;
            tracing::info!(port = node.port, dir = %node.dir.display(), "starting a managed RabbitMQ node");
            m.start()?;
        }
        self.declare()?;
        let endpoint = Endpoint {
            exchange: self.names.exchange.clone(),
            queues: self.names.queues.clone(),
            address: self.shown.clone(),
            node: self.managed.as_ref().map(|m| m.node().script.clone()),
        };
        Ok(serde_json::to_value(endpoint).expect("endpoint serializes"))
    }

    fn depth(&mut self) -> Option<Depth> {
        if !self.created {
            return None;
        }
        let ch = match self.channel() {
            Ok(ch) => ch,
            Err(e) => {
                tracing::debug!("rabbitmq depth: {e}");
                self.conn = None;
                return None;
            }
        };
        let queues = self.names.queues.clone();
        let r = self.rt().ok()?.block_on(conn::within(DEPTH_TIMEOUT, async {
            let mut total = 0u64;
            for q in &queues {
                let opts = QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                };
                total += u64::from(
                    ch.queue_declare(q.as_str().into(), opts, FieldTable::default())
                        .await?
                        .message_count(),
                );
            }
            Ok::<_, lapin::Error>(total)
        }));
        match r {
            Ok(Ok(n)) => Some(Depth {
                messages: n,
                bytes: None,
            }),
            other => {
                tracing::debug!("rabbitmq depth: {other:?}");
                self.conn = None;
                None
            }
        }
    }

    fn teardown(&mut self) -> Result<(), BackendError> {
        let mut result = Ok(());
        if self.created && !self.options.keep {
            result = self.delete();
        }
        self.created = false;
        self.close();
        if let Some(m) = &mut self.managed {
            result = result.and(m.finish());
        }
        result
    }

    fn fault(&mut self, fault: BrokerFault) -> Result<Vec<NodeHit>, BackendError> {
        let Some(m) = &mut self.managed else {
            return Err(BackendError::other(
                NAME,
                "an external broker: give the variant kill_cmd / restart_cmd",
            ));
        };
        m.fault(fault).map(|()| Vec::new())
    }

    fn versions(&mut self) -> Vec<(String, String)> {
        let mut v = vec![("lapin".to_owned(), "4.12".to_owned())];
        if self.managed.is_some() {
            let out = std::process::Command::new("dpkg-query")
                .args(["-W", "-f=${Version}", "rabbitmq-server"])
                .output();
            if let Ok(o) = out {
                if o.status.success() {
                    v.push((
                        "rabbitmq-server".into(),
                        String::from_utf8_lossy(&o.stdout).trim().to_owned(),
                    ));
                }
            }
        }
        v
    }
}

impl Drop for RabbitBroker {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            tracing::warn!("{e}");
        }
    }
}
