//! The one lifecycle of a managed broker: bench starts it for a variant, may kill it and start
//! it again (faults), and at the end stops it, wiping its data unless the variant keeps it —
//! however the variant ends, since [`Managed`] finishes on drop.
//!
//! A backend says how its broker does each step ([`Node`]): Kafka and RabbitMQ through their
//! scripts in `scripts/brokers/` ([`Scripted`]), the in-house log as a child process.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::backend::BackendError;
use crate::plan::BrokerFault;

/// How one managed broker does each step. Errors are sentences for the run's reason.
pub trait Node {
    /// For messages: `127.0.0.1:9092`, `the 3-node cluster 127.0.0.1:19092,…`.
    fn describe(&self) -> String;
    /// Starts it (on its existing data) and returns once it answers.
    fn start(&mut self) -> Result<(), String>;
    /// SIGKILL: a crash; its data stays.
    fn kill(&mut self) -> Result<(), String>;
    /// A clean stop; its data stays.
    fn stop(&mut self) -> Result<(), String>;
    /// Stops it and removes its data.
    fn wipe(&mut self) -> Result<(), String>;
    /// SIGSTOP: a stall (a GC pause, a frozen VM); it keeps its connections.
    fn pause(&mut self) -> Result<(), String> {
        Err("it cannot be paused".into())
    }
    /// SIGCONT after [`Node::pause`].
    fn resume(&mut self) -> Result<(), String> {
        Err("it cannot be resumed".into())
    }
}

/// A managed broker of one variant: started once, faulted, finished exactly once.
pub struct Managed<N: Node> {
    backend: &'static str,
    node: N,
    /// Keep the data at the end (`options.keep`).
    keep: bool,
    /// Ours to stop: set before the start, since a start that times out may leave it running.
    started: bool,
}

impl<N: Node> Managed<N> {
    pub fn new(backend: &'static str, node: N, keep: bool) -> Managed<N> {
        Managed {
            backend,
            node,
            keep,
            started: false,
        }
    }

    pub fn node(&self) -> &N {
        &self.node
    }

    fn error(&self, m: String) -> BackendError {
        BackendError::other(
            self.backend,
            format!("managed broker on {}: {m}", self.node.describe()),
        )
    }

    /// Starts it for the variant; a no-op while it runs (the rounds of a search share it:
    /// [`crate::Broker::next_round`]).
    pub fn start(&mut self) -> Result<(), BackendError> {
        if self.started {
            return Ok(());
        }
        self.started = true;
        self.node.start().map_err(|m| self.error(m))
    }

    /// Kill or restart (on the same data).
    pub fn fault(&mut self, fault: BrokerFault) -> Result<(), BackendError> {
        let r = match fault {
            BrokerFault::Kill => self.node.kill(),
            BrokerFault::Restart => self.node.start(),
            BrokerFault::RemoveQueue => Err(format!("{} has no queue to remove", self.backend)),
            BrokerFault::Pause => self.node.pause(),
            BrokerFault::Resume => self.node.resume(),
            other => Err(format!("{other:?} needs a cluster's nodes")),
        };
        r.map_err(|m| self.error(m))
    }

    /// Stops it (wiping its data unless kept); a no-op after the first call.
    pub fn finish(&mut self) -> Result<(), BackendError> {
        if !std::mem::take(&mut self.started) {
            return Ok(());
        }
        let r = if self.keep {
            self.node.stop()
        } else {
            self.node.wipe()
        };
        r.map_err(|m| self.error(m))
    }
}

impl<N: Node> Drop for Managed<N> {
    fn drop(&mut self) {
        if let Err(e) = self.finish() {
            tracing::warn!("{e}");
        }
    }
}

/// A broker run by a script of `scripts/brokers/` taking `start | kill | stop | wipe`.
pub trait Script {
    fn describe(&self) -> String;
    /// Runs the script's `cmd`, its output appended to `log`, killed after `timeout`.
    fn run(&self, cmd: &str, timeout: Duration, log: &Path) -> Result<(), String>;
}

/// A [`Node`] whose steps are a [`Script`]'s commands.
pub struct Scripted<S: Script> {
    pub script: S,
    pub log: PathBuf,
    pub start_timeout: Duration,
    pub stop_timeout: Duration,
}

impl<S: Script> Node for Scripted<S> {
    fn describe(&self) -> String {
        self.script.describe()
    }
    fn start(&mut self) -> Result<(), String> {
        self.script.run("start", self.start_timeout, &self.log)
    }
    fn kill(&mut self) -> Result<(), String> {
        self.script.run("kill", self.stop_timeout, &self.log)
    }
    fn stop(&mut self) -> Result<(), String> {
        self.script.run("stop", self.stop_timeout, &self.log)
    }
    fn wipe(&mut self) -> Result<(), String> {
        self.script.run("wipe", self.stop_timeout, &self.log)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// Records the steps asked of it.
    struct Fake(Rc<RefCell<Vec<&'static str>>>);

    impl Node for Fake {
        fn describe(&self) -> String {
            "fake".into()
        }
        fn start(&mut self) -> Result<(), String> {
            self.0.borrow_mut().push("start");
            Ok(())
        }
        fn kill(&mut self) -> Result<(), String> {
            self.0.borrow_mut().push("kill");
            Ok(())
        }
        fn stop(&mut self) -> Result<(), String> {
            self.0.borrow_mut().push("stop");
            Ok(())
        }
        fn wipe(&mut self) -> Result<(), String> {
            self.0.borrow_mut().push("wipe");
            Err("disk gone".into())
        }
    }

    #[test]
    fn a_managed_broker_is_started_faulted_and_finished_once() {
        let steps = Rc::new(RefCell::new(Vec::new()));
        let mut m = Managed::new("x", Fake(steps.clone()), false);
        m.start().unwrap();
        m.fault(BrokerFault::Kill).unwrap();
        m.fault(BrokerFault::Restart).unwrap();
        assert!(m.fault(BrokerFault::RemoveQueue).is_err());
        let e = m.finish().unwrap_err().to_string();
        assert_eq!(e, "x: managed broker on fake: disk gone");
        m.finish().unwrap();
        drop(m);
        assert_eq!(*steps.borrow(), ["start", "kill", "start", "wipe"]);
    }

    #[test]
    fn a_kept_broker_is_stopped_on_drop_and_an_unstarted_one_is_left_alone() {
        let steps = Rc::new(RefCell::new(Vec::new()));
        let mut kept = Managed::new("x", Fake(steps.clone()), true);
        kept.start().unwrap();
        drop(kept);
        drop(Managed::new("x", Fake(steps.clone()), false));
        assert_eq!(*steps.borrow(), ["start", "stop"]);
    }
}
