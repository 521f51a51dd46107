//! Broker faults on the managed 3-node cluster: `kill-broker` SIGKILLs the node that leads the
//! variant's stream (as the stream's own info names it, server `mqb-<its port>`), so the stream
//! must elect a new leader; `restart-broker` starts again every node that is down.

use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream::Context;
use mq_core::plan::BrokerFault;
use mq_core::{BackendError, NodeHit};
use tokio::runtime::Runtime;

use crate::conn::bounded;
use crate::script::Node;
use crate::NAME;

pub struct ClusterFaults {
    pub log: PathBuf,
    pub start_timeout: Duration,
    pub stop_timeout: Duration,
}

impl ClusterFaults {
    /// Carries out `fault` on the cluster `node`, naming the node it hit.
    pub fn fault(
        &self,
        rt: &Runtime,
        js: &Context,
        stream: &str,
        node: &Node,
        fault: BrokerFault,
    ) -> Result<Vec<NodeHit>, BackendError> {
        let err = |m: String| BackendError::other(NAME, format!("{}: {m}", node.describe()));
        match fault {
            BrokerFault::Kill => {
                let leader = rt.block_on(stream_leader(js, stream))?;
                let id = node_of(node, &leader).map_err(err)?;
                mq_core::script::note(
                    NAME,
                    &self.log,
                    &format!("kill-broker: node {id} ({leader}), leader of stream {stream}"),
                );
                node.run_on("kill", Some(id), self.stop_timeout, &self.log)
                    .map_err(err)?;
                Ok(vec![NodeHit {
                    node: u32::from(id),
                    address: node.address(id),
                    role: Some(format!("leader of stream {stream}")),
                }])
            }
            // Starts the nodes that are not running; the others are left as they are.
            BrokerFault::Restart => node
                .run("start", self.start_timeout, &self.log)
                .map(|()| Vec::new())
                .map_err(err),
            other => Err(err(format!(
                "{other:?} is not supported by the nats backend"
            ))),
        }
    }
}

/// The server name of the stream's leader.
async fn stream_leader(js: &Context, stream: &str) -> Result<String, BackendError> {
    let mut s = bounded(
        || format!("looking up stream {stream}"),
        js.get_stream(stream),
    )
    .await?;
    let info = bounded(|| format!("info of stream {stream}"), s.info()).await?;
    (info.cluster.as_ref())
        .and_then(|c| c.leader.clone())
        .ok_or_else(|| BackendError::other(NAME, format!("stream {stream} has no leader now")))
}

/// Which node of the cluster the server `mqb-<port>` is.
fn node_of(node: &Node, server: &str) -> Result<u8, String> {
    let port: Option<u16> = server.strip_prefix("mqb-").and_then(|p| p.parse().ok());
    match port.and_then(|p| p.checked_sub(node.port)) {
        Some(i) if i < u16::from(node.nodes) => Ok(i as u8 + 1),
        _ => Err(format!(
            "the stream's leader is {server:?}, not one of this cluster's servers"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leader_is_named_by_its_port() {
        let c = Node::cluster(14224, PathBuf::from("/x"), None);
        assert_eq!(node_of(&c, "mqb-14226"), Ok(3));
        assert_eq!(node_of(&c, "mqb-14224"), Ok(1));
        for bad in ["mqb-14227", "mqb-4222", "x-14224", "mqb-"] {
            assert!(
                node_of(&c, bad).unwrap_err().contains("not one of"),
                "{bad}"
            );
        }
    }
}
