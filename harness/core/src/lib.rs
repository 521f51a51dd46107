//! mq-core: the vocabulary every other mq-bench crate speaks.
//!
//! The scenario a user writes, the envelope every message carries, the history each worker
//! writes, and the traits a backend implements. Nothing here names a concrete backend.

pub mod assignment;
pub mod backend;
pub mod bits;
pub mod child;
pub mod clock;
pub mod delivery;
pub mod envelope;
pub mod expand;
pub mod fault;
pub mod history;
pub mod ids;
pub mod managed;
pub mod options;
pub mod parallel;
pub mod paths;
pub mod plan;
pub mod requirements;
pub mod scenario;
pub mod script;
pub mod search;
pub mod shard;
pub mod spec;
pub mod stop;
mod validate;

pub use backend::run_tag;
pub use backend::{
    AckSink, Backend, BackendError, BackendInfo, Broker, Consumer, DeliverySink, Depth, NodeHit,
    OptionInfo, Outcome, Outgoing, Processed, Producer, Registry, Stage, Token, TxnEvent,
    Unavailable, WorkerCtx,
};
pub use delivery::Delivery;
pub use ids::{ConsumerId, Key, Partition, ProducerId, Seq};
