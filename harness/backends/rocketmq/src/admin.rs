//! Coordinator side: the admin client (rocketmq-client-rust's `DefaultMQAdminExt`) that creates
//! and removes a run's topic and consumer group and reads the group's lag. Every call is
//! bounded.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use mq_core::BackendError;
use rocketmq_client_rust::{
    DefaultMQAdminExt, MQAdminMutationExt, MQAdminReadExt, MQAdminTopicStatsReadExt,
};
use rocketmq_model::topic::TopicConfig;

use crate::client::{cs, Runtime};
use crate::NAME;

const OP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a new topic may take to appear in the name server's routes.
const ROUTE_TIMEOUT: Duration = Duration::from_secs(20);

/// The broker a run's topic lives on.
#[derive(Debug, Clone)]
pub struct Target {
    pub broker_name: String,
    pub broker_addr: String,
}

pub struct Admin {
    ext: DefaultMQAdminExt,
    namesrv: String,
    // Dropped last: the client above runs on it.
    rt: Runtime,
}

/// `what` within `limit`, its error a sentence naming `what`.
async fn bounded<T, E: std::fmt::Display>(
    limit: Duration,
    what: &str,
    f: impl Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(limit, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: no answer within {}s", limit.as_secs())),
    }
}

impl Admin {
    pub fn start(namesrv: &str) -> Result<Admin, BackendError> {
        let rt = Runtime::new("admin")?;
        let mut ext = DefaultMQAdminExt::new(rt.client.clone());
        ext.set_namesrv_addr(namesrv);
        rt.block_on(bounded(
            OP_TIMEOUT,
            "starting the admin client",
            ext.start(),
        ))
        .map_err(|m| BackendError::other(NAME, format!("{m} (name server {namesrv})")))?;
        Ok(Admin {
            ext,
            namesrv: namesrv.to_owned(),
            rt,
        })
    }

    fn err(&self, m: String) -> BackendError {
        BackendError::other(NAME, format!("{m} (name server {})", self.namesrv))
    }

    /// The first master broker of `cluster`, as the name server lists it.
    pub fn target(&self, cluster: &str) -> Result<Target, BackendError> {
        let info = self
            .rt
            .block_on(bounded(
                OP_TIMEOUT,
                "reading the cluster info",
                self.ext.examine_broker_cluster_info(),
            ))
            .map_err(|m| self.err(m))?;
        let names = info
            .cluster_addr_table
            .as_ref()
            .and_then(|t| t.get(cluster))
            .ok_or_else(|| self.err(format!("the name server knows no cluster {cluster:?}")))?;
        let mut names: Vec<_> = names.iter().map(|n| n.to_string()).collect();
        names.sort();
        let table = info.broker_addr_table.as_ref();
        for name in names {
            let master = table
                .and_then(|t| t.get(name.as_str()))
                .and_then(|b| b.broker_addrs().get(&0).cloned());
            if let Some(addr) = master {
                return Ok(Target {
                    broker_name: name,
                    broker_addr: addr.to_string(),
                });
            }
        }
        Err(self.err(format!("cluster {cluster:?} has no master broker")))
    }

    /// Creates `topic` with `queues` read and write queues on `target`, and waits until the
    /// name server routes it.
    pub fn create_topic(
        &self,
        target: &Target,
        topic: &str,
        queues: u32,
    ) -> Result<(), BackendError> {
        let config = TopicConfig::with_queues(topic, queues, queues);
        self.rt
            .block_on(bounded(
                OP_TIMEOUT,
                &format!("creating topic {topic} on {}", target.broker_addr),
                self.ext
                    .upsert_topic_config(cs(&target.broker_addr), config),
            ))
            .map_err(|m| self.err(m))?;
        let deadline = std::time::Instant::now() + ROUTE_TIMEOUT;
        loop {
            let route = self.rt.block_on(bounded(
                OP_TIMEOUT,
                "reading the topic route",
                self.ext.examine_topic_route_info(cs(topic)),
            ));
            if let Ok(Some(_)) = route {
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                return Err(self.err(format!(
                    "topic {topic} not routed by the name server within {}s: {route:?}",
                    ROUTE_TIMEOUT.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Whether the name server routes `topic` (it exists on some broker).
    pub fn routed(&self, topic: &str) -> Result<bool, BackendError> {
        let route = self.rt.block_on(bounded(
            OP_TIMEOUT,
            "reading the topic route",
            self.ext.examine_topic_route_info(cs(topic)),
        ));
        match route {
            Ok(r) => Ok(r.is_some_and(|r| !r.queue_datas.is_empty())),
            // The name server's "no route" answer is an error code, not an empty route.
            Err(m)
                if m.contains("route")
                    || m.contains("TOPIC_NOT_EXIST")
                    || m.contains("not exist") =>
            {
                Ok(false)
            }
            Err(m) => Err(self.err(m)),
        }
    }

    /// Removes the topic (from the brokers and the name server) and the group (with its
    /// offsets).
    pub fn remove(
        &self,
        target: &Target,
        cluster: &str,
        topic: &str,
        group: &str,
    ) -> Result<(), BackendError> {
        let t = self.rt.block_on(bounded(
            OP_TIMEOUT,
            &format!("removing topic {topic}"),
            self.ext.remove_topic(cs(topic), cs(cluster)),
        ));
        let g = self.rt.block_on(bounded(
            OP_TIMEOUT,
            &format!("removing group {group}"),
            self.ext
                .remove_subscription_group(cs(&target.broker_addr), cs(group), Some(true)),
        ));
        t.and(g).map_err(|m| self.err(m))
    }

    /// Messages of `topic` the group has not committed: over the queues, the broker's max offset
    /// minus the group's committed offset (the queue's min offset where the group has committed
    /// nothing yet). `None` when the broker cannot say (down, busy past `limit`).
    pub fn lag(&self, target: &Target, topic: &str, group: &str, limit: Duration) -> Option<u64> {
        let stats = self.rt.block_on(bounded(
            limit,
            "reading the topic stats",
            self.ext.topic_stats_at(cs(&target.broker_addr), cs(topic)),
        ));
        let stats = match stats {
            Ok(s) => s,
            Err(m) => {
                tracing::debug!("rocketmq depth: {m}");
                return None;
            }
        };
        // No group yet (nothing committed): an error, read as no offsets.
        let committed: HashMap<i32, i64> = self
            .rt
            .block_on(bounded(
                limit,
                "reading the consume stats",
                self.ext.examine_consume_stats(
                    cs(group),
                    Some(cs(topic)),
                    None,
                    Some(cs(&target.broker_addr)),
                    Some(limit.as_millis() as u64),
                ),
            ))
            .map(|s| {
                (s.offset_table.iter())
                    .map(|(q, o)| (q.queue_id(), o.get_consumer_offset()))
                    .collect()
            })
            .unwrap_or_default();
        Some(
            (stats.get_offset_table().iter())
                .map(|(q, o)| {
                    let from = committed.get(&q.queue_id()).copied().unwrap_or(-1);
                    (o.get_max_offset() - from.max(o.get_min_offset())).max(0) as u64
                })
                .sum(),
        )
    }

    pub fn shutdown(mut self) {
        let ext = &mut self.ext;
        let _ = self
            .rt
            .block_on(async { tokio::time::timeout(Duration::from_secs(5), ext.shutdown()).await });
        self.rt.shutdown();
    }
}
