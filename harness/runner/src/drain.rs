//! When a variant's load and drain are over, and the one sentence that says why: pure
//! functions of what the coordinator's loop sees, so each rule is tested on its own.
//!
//! The workers' counts say when the drain may be over (they go stale when a consumer dies, and
//! summed consumer counts double-count redeliveries); the histories say whether it is: the
//! coordinator checks them when [`decide`] asks for [`Decision::Verify`].

use std::time::Duration;

use mq_results::EndedBy;

/// Quiet time after the counts say "drained", so late duplicates are still seen.
pub const DRAIN_QUIET: Duration = Duration::from_millis(200);
/// Quiet time after which the histories are checked even though the counts disagree (a dead
/// consumer's last count is up to one progress report stale).
pub const VERIFY_QUIET: Duration = Duration::from_secs(1);

/// What the loop sees at one tick.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tick {
    pub interrupted: bool,
    /// A producer is still running.
    pub producing: bool,
    /// A consumer is still running.
    pub consuming: bool,
    /// Consumers are paused by the schedule.
    pub paused: bool,
    /// Nothing moving is the schedule's doing (paused, broker down with its restart to come).
    pub excused: bool,
    /// A timed fault is still to come.
    pub timed_pending: bool,
    /// A restart-consumer is still to come.
    pub consumer_restart_pending: bool,
    /// Since the counts last moved (or a fault was carried out).
    pub quiet: Duration,
    /// Since the producers ended (zero while producing).
    pub draining_for: Duration,
    /// delivered ≥ acked by the workers' counts.
    pub counts_drained: bool,
    /// The histories may be checked again (checks are spaced by their own cost).
    pub verify_allowed: bool,
    pub drain_timeout: Duration,
    /// Producers were stopped earlier for making no progress.
    pub stalled: bool,
    /// The variant has no consumers (`consumers = 0`): nothing to drain.
    pub producer_only: bool,
}

/// What the loop does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Continue,
    /// Nothing moved for `drain_timeout` while producing: stop the producers.
    StopProducers,
    /// Check the histories: if every acked message was delivered, end with [`drained`].
    Verify,
    End(EndedBy),
}

/// The rules, in order.
pub fn decide(t: &Tick) -> Decision {
    if t.interrupted {
        return Decision::End(EndedBy::Interrupted);
    }
    if t.producing {
        if !t.excused && t.quiet > t.drain_timeout {
            return Decision::StopProducers;
        }
        return Decision::Continue;
    }
    // A producer-only variant ends with its producers, once the schedule is done.
    if t.producer_only {
        return match t.timed_pending {
            true => Decision::Continue,
            false => Decision::End(EndedBy::Produced),
        };
    }
    // With every consumer gone there is nothing left to drain, once the schedule is done.
    if !t.consuming && !t.timed_pending && !t.consumer_restart_pending {
        return Decision::End(EndedBy::ConsumersGone);
    }
    let may_be_over = (t.counts_drained && t.quiet >= DRAIN_QUIET) || t.quiet >= VERIFY_QUIET;
    if !t.timed_pending && !t.paused && may_be_over && t.verify_allowed {
        return Decision::Verify;
    }
    if !t.timed_pending && t.quiet.min(t.draining_for) > t.drain_timeout {
        return Decision::End(if t.stalled {
            EndedBy::Stalled
        } else {
            EndedBy::DrainTimeout
        });
    }
    Decision::Continue
}

/// How a run whose histories show every acked message delivered ends.
pub fn drained(stalled: bool) -> EndedBy {
    if stalled {
        EndedBy::Stalled
    } else {
        EndedBy::Drained
    }
}

/// What is known at the end, for the reason.
#[derive(Debug, Clone, Default)]
pub struct EndFacts {
    /// Producers were stopped after making no progress for this long.
    pub producers_stopped_after: Option<Duration>,
    /// The broker was killed at this many seconds and never came back.
    pub broker_down_at: Option<f64>,
    /// Consumers that died, e.g. "consumer 0: signal 9".
    pub dead_consumers: Vec<String>,
    /// The first error a worker reported.
    pub worker_error: Option<String>,
    pub drain_timeout: Duration,
}

/// The one sentence that says why the run ended as `by` (None for a plain drain).
pub fn reason(by: EndedBy, f: &EndFacts) -> Option<String> {
    let mut parts = Vec::new();
    match by {
        EndedBy::ConsumersGone => parts.push(match f.dead_consumers.is_empty() {
            true => "every consumer ended".to_owned(),
            false => format!("every consumer ended ({})", f.dead_consumers.join(", ")),
        }),
        EndedBy::Stalled => parts.push(format!(
            "stalled: no message moved for {:?}; producers were stopped",
            f.drain_timeout
        )),
        EndedBy::DrainTimeout => parts.push(format!(
            "drain timeout: not every acked message arrived, and nothing moved for {:?}",
            f.drain_timeout
        )),
        EndedBy::Drained | EndedBy::Produced | EndedBy::Interrupted => {}
    }
    if let (Some(d), false) = (f.producers_stopped_after, by == EndedBy::Stalled) {
        parts.push(format!(
            "the producers made no progress for {d:?} and were stopped"
        ));
    }
    if let Some(t) = f.broker_down_at {
        parts.push(format!(
            "the broker was killed at {t:.1}s and never came back"
        ));
    }
    if parts.is_empty() {
        return f.worker_error.clone();
    }
    Some(parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn tick() -> Tick {
        Tick {
            consuming: true,
            drain_timeout: 10 * S,
            verify_allowed: true,
            ..Tick::default()
        }
    }

    #[test]
    fn producing_stalls_only_past_the_drain_timeout_and_not_when_excused() {
        let t = Tick {
            producing: true,
            quiet: 11 * S,
            ..tick()
        };
        assert_eq!(decide(&t), Decision::StopProducers);
        assert_eq!(decide(&Tick { excused: true, ..t }), Decision::Continue);
        assert_eq!(decide(&Tick { quiet: 9 * S, ..t }), Decision::Continue);
    }

    #[test]
    fn the_drain_verifies_when_the_counts_say_so_or_after_a_quiet_second() {
        let t = Tick {
            counts_drained: true,
            quiet: Duration::from_millis(250),
            ..tick()
        };
        assert_eq!(decide(&t), Decision::Verify);
        let stale = Tick {
            counts_drained: false,
            ..t
        };
        assert_eq!(decide(&stale), Decision::Continue);
        assert_eq!(decide(&Tick { quiet: S, ..stale }), Decision::Verify);
        assert_eq!(
            decide(&Tick {
                verify_allowed: false,
                ..t
            }),
            Decision::Continue
        );
        assert_eq!(
            decide(&Tick {
                timed_pending: true,
                ..t
            }),
            Decision::Continue
        );
        assert_eq!(decide(&Tick { paused: true, ..t }), Decision::Continue);
    }

    #[test]
    fn the_drain_times_out_only_when_both_quiet_and_draining_long_enough() {
        let t = Tick {
            quiet: 11 * S,
            draining_for: 11 * S,
            verify_allowed: false,
            ..tick()
        };
        assert_eq!(decide(&t), Decision::End(EndedBy::DrainTimeout));
        assert_eq!(
            decide(&Tick { stalled: true, ..t }),
            Decision::End(EndedBy::Stalled)
        );
        assert_eq!(
            decide(&Tick {
                draining_for: 2 * S,
                ..t
            }),
            Decision::Continue
        );
    }

    #[test]
    fn consumers_gone_ends_once_no_restart_is_due() {
        let t = Tick {
            consuming: false,
            ..tick()
        };
        assert_eq!(decide(&t), Decision::End(EndedBy::ConsumersGone));
        assert_eq!(
            decide(&Tick {
                consumer_restart_pending: true,
                verify_allowed: false,
                ..t
            }),
            Decision::Continue
        );
        assert_eq!(
            decide(&Tick {
                interrupted: true,
                ..t
            }),
            Decision::End(EndedBy::Interrupted)
        );
    }

    #[test]
    fn a_producer_only_variant_ends_with_its_producers_once_the_schedule_is_done() {
        let t = Tick {
            producer_only: true,
            consuming: false,
            ..tick()
        };
        assert_eq!(
            decide(&Tick {
                producing: true,
                ..t
            }),
            Decision::Continue
        );
        assert_eq!(decide(&t), Decision::End(EndedBy::Produced));
        assert_eq!(
            decide(&Tick {
                timed_pending: true,
                ..t
            }),
            Decision::Continue
        );
        assert_eq!(reason(EndedBy::Produced, &EndFacts::default()), None);
    }

    #[test]
    fn one_ending_one_reason_when_a_dead_consumer_stalled_the_producers() {
        // A SysV run whose consumer was killed for good: the queue fills, the producers stall
        // and are stopped, then the run ends because no consumer is left.
        let f = EndFacts {
            producers_stopped_after: Some(10 * S),
            dead_consumers: vec!["consumer 0: signal 9".into()],
            drain_timeout: 10 * S,
            ..EndFacts::default()
        };
        assert_eq!(
            reason(EndedBy::ConsumersGone, &f).unwrap(),
            "every consumer ended (consumer 0: signal 9); the producers made no progress for 10s and were stopped"
        );
        assert_eq!(
            reason(EndedBy::Stalled, &f).unwrap(),
            "stalled: no message moved for 10s; producers were stopped"
        );
    }

    #[test]
    fn a_broker_that_never_came_back_is_part_of_the_reason_and_a_drain_has_none() {
        let f = EndFacts {
            broker_down_at: Some(1.04),
            drain_timeout: 2 * S,
            ..EndFacts::default()
        };
        assert_eq!(
            reason(EndedBy::DrainTimeout, &f).unwrap(),
            "drain timeout: not every acked message arrived, and nothing moved for 2s; the broker was killed at 1.0s and never came back"
        );
        assert_eq!(reason(EndedBy::Drained, &EndFacts::default()), None);
        let failed = EndFacts {
            worker_error: Some("producer 0 failed: x".into()),
            ..EndFacts::default()
        };
        assert_eq!(
            reason(EndedBy::Drained, &failed).as_deref(),
            Some("producer 0 failed: x")
        );
    }
}
