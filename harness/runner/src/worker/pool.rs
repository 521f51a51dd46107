//! A consumer's processing threads (`processing_threads` > 1): the receiving thread hands each
//! decoded delivery to a thread (`dispatch`: the key's thread, or any free one through a shared
//! queue), the thread spends the processing time and sends the delivery back, stamped with the
//! time processing finished. The receiving thread records it (the history has one writer) and
//! gives its token back to the backend to acknowledge.
//!
//! Bounded: at most `QUEUE` deliveries wait per thread, and at most `threads × QUEUE` are
//! in flight (queued, processing, or finished and not yet recorded); the receiving thread waits
//! for completions when either is full. The queues carry small fixed-size values: nothing is
//! allocated per message.

use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use mq_core::clock::now_ns;
use mq_core::envelope::Envelope;
use mq_core::parallel::Dispatch;
use mq_core::Token;

/// Deliveries that may wait per processing thread.
const QUEUE: usize = 16;
/// How long the receiving thread waits for one completion before saying the threads are stuck
/// (well above the longest processing time a scenario may ask for, 10 s).
const STUCK: Duration = Duration::from_secs(60);

/// One delivery to process.
#[derive(Debug, Clone, Copy)]
pub(super) struct Job {
    /// `None` for a backend without acknowledgements (it called `deliver`).
    pub token: Option<Token>,
    /// `None`: not one of this run's messages.
    pub envelope: Option<Envelope>,
    pub work: Duration,
}

/// A processed delivery.
#[derive(Debug, Clone, Copy)]
pub(super) struct Done {
    pub job: Job,
    /// When processing finished: the delivery time recorded.
    pub at_ns: u64,
}

/// Why the threads cannot go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PoolError {
    /// They ended early (one panicked).
    Gone,
    /// None finished a message for [`STUCK`].
    Stuck,
}

impl std::fmt::Display for PoolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PoolError::Gone => f.write_str("the processing threads ended early (one panicked)"),
            PoolError::Stuck => write!(f, "no processing thread finished a message for {STUCK:?}"),
        }
    }
}

impl std::error::Error for PoolError {}

pub(super) struct Pool {
    dispatch: Dispatch,
    /// One queue per thread (by-key), or one shared by all (any).
    queues: Vec<SyncSender<Job>>,
    done: Receiver<Done>,
    threads: Vec<JoinHandle<()>>,
    in_flight: usize,
    limit: usize,
}

impl Pool {
    pub fn start(threads: usize, dispatch: Dispatch) -> std::io::Result<Pool> {
        let limit = threads * QUEUE;
        // Never full: at most `limit` are in flight.
        let (done_tx, done) = sync_channel(limit);
        let mut pool = Pool {
            dispatch,
            queues: Vec::new(),
            done,
            threads: Vec::with_capacity(threads),
            in_flight: 0,
            limit,
        };
        let shared = match dispatch {
            Dispatch::Any => {
                let (tx, rx) = sync_channel(limit);
                pool.queues.push(tx);
                Some(Arc::new(Mutex::new(rx)))
            }
            Dispatch::ByKey => None,
        };
        for i in 0..threads {
            let rx = match &shared {
                Some(rx) => Arc::clone(rx),
                None => {
                    let (tx, rx) = sync_channel(QUEUE);
                    pool.queues.push(tx);
                    Arc::new(Mutex::new(rx))
                }
            };
            let done_tx = done_tx.clone();
            let t = std::thread::Builder::new()
                .name(format!("processing-{i}"))
                .spawn(move || process(&rx, &done_tx))?;
            pool.threads.push(t);
        }
        Ok(pool)
    }

    /// Hands `job` to its thread, first waiting (and passing completions to `on_done`) while
    /// the pool or that thread's queue is full.
    pub fn submit(&mut self, job: Job, on_done: &mut impl FnMut(Done)) -> Result<(), PoolError> {
        let q = match (self.dispatch, job.envelope) {
            (Dispatch::ByKey, Some(e)) => Dispatch::thread_of(e.key.0, self.queues.len()),
            _ => 0,
        };
        while self.in_flight >= self.limit {
            self.wait_one(on_done)?;
        }
        let mut job = job;
        // Bounded: each round waits for one of at most `limit` completions.
        for _ in 0..=self.limit {
            match self.queues[q].try_send(job) {
                Ok(()) => {
                    self.in_flight += 1;
                    return Ok(());
                }
                Err(TrySendError::Full(j)) => {
                    job = j;
                    self.wait_one(on_done)?;
                }
                Err(TrySendError::Disconnected(_)) => return Err(PoolError::Gone),
            }
        }
        Err(PoolError::Stuck)
    }

    /// Passes every completion already there to `on_done`, without waiting.
    pub fn ready(&mut self, on_done: &mut impl FnMut(Done)) {
        while let Ok(d) = self.done.try_recv() {
            self.in_flight -= 1;
            on_done(d);
        }
    }

    fn wait_one(&mut self, on_done: &mut impl FnMut(Done)) -> Result<(), PoolError> {
        match self.done.recv_timeout(STUCK) {
            Ok(d) => {
                self.in_flight -= 1;
                on_done(d);
                self.ready(on_done);
                Ok(())
            }
            Err(RecvTimeoutError::Timeout) => Err(PoolError::Stuck),
            Err(RecvTimeoutError::Disconnected) => Err(PoolError::Gone),
        }
    }

    /// Lets the threads finish what they hold (passing it to `on_done`) and ends them.
    pub fn finish(mut self, on_done: &mut impl FnMut(Done)) -> Result<(), PoolError> {
        self.queues.clear();
        let mut result = Ok(());
        while self.in_flight > 0 {
            if let Err(e) = self.wait_one(on_done) {
                result = Err(e);
                break;
            }
        }
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                result = Err(PoolError::Gone);
            }
        }
        result
    }
}

/// A processing thread: until its queue is closed and empty.
fn process(rx: &Mutex<Receiver<Job>>, done: &SyncSender<Done>) {
    loop {
        let job = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        if !job.work.is_zero() {
            std::thread::sleep(job.work);
        }
        if done
            .send(Done {
                job,
                at_ns: now_ns(),
            })
            .is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mq_core::{Key, Partition, ProducerId, Seq};

    /// Message `seq` of `key`, taking longer the lower its seq within a round of 8.
    fn job(seq: u64, key: u32) -> Job {
        Job {
            token: Some(Token {
                partition: Partition(0),
                offset: seq,
            }),
            envelope: Some(Envelope {
                run_id: 1,
                producer: ProducerId(0),
                key: Key(key),
                seq: Seq(seq),
                send_ns: 0,
            }),
            work: Duration::from_micros(50 * (8 - seq % 8)),
        }
    }

    /// Submits 400 messages over 2 keys (a key's next one shorter than the one before) to 4
    /// threads; returns (key, seq) in completion order.
    fn completions(dispatch: Dispatch) -> Vec<(u32, u64)> {
        let mut pool = Pool::start(4, dispatch).unwrap();
        let mut done = Vec::new();
        let mut on_done = |d: Done| {
            let e = d.job.envelope.unwrap();
            assert_eq!(d.job.token.unwrap().offset, e.seq.0);
            done.push((e.key.0, e.seq.0));
        };
        for seq in 0..400 {
            pool.submit(job(seq, (seq % 2) as u32), &mut on_done)
                .unwrap();
            assert!(pool.in_flight <= pool.limit);
        }
        pool.finish(&mut on_done).unwrap();
        done
    }

    fn out_of_key_order(done: &[(u32, u64)]) -> usize {
        let mut last = [None::<u64>; 4];
        let mut n = 0;
        for &(k, s) in done {
            if last[k as usize].is_some_and(|l| s < l) {
                n += 1;
            }
            last[k as usize] = Some(s);
        }
        n
    }

    #[test]
    fn by_key_finishes_each_key_in_order_and_returns_every_message() {
        let done = completions(Dispatch::ByKey);
        assert_eq!(done.len(), 400);
        assert_eq!(out_of_key_order(&done), 0);
    }

    #[test]
    fn any_finishes_a_key_out_of_order() {
        let done = completions(Dispatch::Any);
        let mut seqs: Vec<u64> = done.iter().map(|d| d.1).collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (0..400).collect::<Vec<_>>());
        assert!(out_of_key_order(&done) > 0);
    }
}
