//! Version 1 and version 2 histories written from one event stream give the checker the same
//! counts: a scrambled stream (lost, failed, unknown, duplicated, reordered, redelivered to
//! another consumer, foreign payloads) and the small case that made runs end at a repeat.

use std::path::{Path, PathBuf};

use mq_checker::{check, Counts, Input};
use mq_core::history::{
    key_of, FailReason, FileHeader, History, HistoryMode, HistoryReader, Record, Role,
};
use mq_core::ids::{ProducerId, Seq};

const US: u64 = 1_000;

/// A deterministic xorshift64 draw in `0..n`.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// The events of each producer and consumer, in the order each worker saw them.
struct Stream {
    keys: u32,
    producers: Vec<Vec<Record>>,
    consumers: Vec<Vec<Record>>,
}

fn delivery(p: u16, seq: u64, keys: u32, at_ns: u64) -> Record {
    Record::Delivered {
        producer: ProducerId(p),
        seq: Seq(seq),
        key: key_of(ProducerId(p), Seq(seq), keys),
        sent_ns: seq * 10 * US,
        at_ns,
    }
}

/// `n` messages per producer, 10 µs apart (so runs cross 1-second cells), with every kind of
/// anomaly mixed in.
fn scrambled(producers: u16, n: u64, keys: u32, seed: u64) -> Stream {
    let mut rng = Rng(seed);
    let mut s = Stream {
        keys,
        producers: vec![Vec::new(); producers as usize],
        consumers: vec![Vec::new(); 2],
    };
    for p in 0..producers {
        let (mut acks, mut late) = (Vec::new(), Vec::new());
        for seq in 0..n {
            let t = seq * 10 * US;
            let (producer, seq_id) = (ProducerId(p), Seq(seq));
            let key = key_of(producer, seq_id, keys);
            s.producers[p as usize].push(Record::Sent {
                producer,
                seq: seq_id,
                key,
                intended_ns: t,
            });
            let outcome = match rng.below(1000) {
                0..=4 => Some(Record::Failed {
                    producer,
                    seq: seq_id,
                    at_ns: t + 5 * US,
                    reason: if seq % 2 == 0 {
                        FailReason::Refused
                    } else {
                        FailReason::NotSent
                    },
                }),
                5..=9 => None, // unknown
                _ => Some(Record::Acked {
                    producer,
                    seq: seq_id,
                    at_ns: t + 5 * US,
                    intended_ns: t,
                }),
            };
            // Acks sometimes come back two sends late.
            if let Some(o) = outcome {
                if rng.below(50) == 0 {
                    late.push(o)
                } else {
                    acks.push(o)
                }
            }
            if late.len() > 2 || seq + 1 == n {
                acks.append(&mut late);
            }
            s.producers[p as usize].append(&mut acks);

            let c = (seq / 1000 % 2) as usize; // consumers take turns, 1000 messages each
            let at = t + 20 * US;
            match rng.below(1000) {
                0..=2 => {}                                                      // never delivered
                3..=5 => s.consumers[c].extend([delivery(p, seq, keys, at); 2]), // repeat
                6..=8 => s.consumers[1 - c].push(delivery(p, seq, keys, at)), // the other one too
                9..=11 if seq >= keys as u64 => {
                    // an old message again, out of order
                    s.consumers[c].push(delivery(p, seq, keys, at));
                    s.consumers[c].push(delivery(p, seq - keys as u64, keys, at + US));
                }
                12 => {
                    s.consumers[c].push(delivery(p, seq, keys, at));
                    s.consumers[c].push(Record::Unexpected { at_ns: at + US });
                }
                13 => s.consumers[c].push(delivery(p, seq + 3 * n, keys, at)), // never sent
                _ => s.consumers[c].push(delivery(p, seq, keys, at)),
            }
        }
    }
    // Swap a few neighbours of each consumer (a reorder within a key when keys = 1).
    for c in &mut s.consumers {
        for _ in 0..c.len() / 500 {
            let i = rng.below(c.len() as u64 - 1) as usize;
            c.swap(i, i + 1);
        }
    }
    s
}

fn write(
    dir: &Path,
    mode: HistoryMode,
    role: Role,
    i: usize,
    keys: u32,
    recs: &[Record],
) -> PathBuf {
    let path = dir.join(format!("{mode:?}-{role:?}-{i}.hist"));
    let header = FileHeader {
        role,
        worker: i as u16,
        run_id: 7,
    };
    let mut h = History::create(&path, header, mode, keys).unwrap();
    for r in recs {
        h.record(*r).unwrap();
    }
    h.finish().unwrap().unwrap()
}

/// The counts of `s` written in `mode`, and the bytes its histories take.
fn counts(s: &Stream, mode: HistoryMode, dir: &Path) -> (Counts, u64) {
    let files = |role, v: &Vec<Vec<Record>>| -> Vec<PathBuf> {
        v.iter()
            .enumerate()
            .map(|(i, r)| write(dir, mode, role, i, s.keys, r))
            .collect()
    };
    let input = Input {
        producer_files: files(Role::Producer, &s.producers),
        consumer_files: files(Role::Consumer, &s.consumers),
        depth_file: None,
        dedup_store: None,
        start_ns: 0,
        warmup_ns: 0,
        message_size: 100,
        producers: s.producers.len() as u32,
        consumers: 1,
        keys: s.keys,
    };
    let bytes = (input.producer_files.iter())
        .chain(&input.consumer_files)
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    for p in input.producer_files.iter().chain(&input.consumer_files) {
        let v = HistoryReader::open(p).unwrap().version;
        assert_eq!(v, if mode == HistoryMode::Full { 1 } else { 2 });
    }
    let counts = check(&input).unwrap().counts;
    // The drain's quick count agrees with the whole check on every anomaly.
    assert_eq!(mq_checker::lost(&input).unwrap(), counts.lost, "{mode:?}");
    (counts, bytes)
}

#[test]
fn full_and_intervals_histories_of_one_stream_give_identical_counts() {
    for (keys, seed) in [(1, 1), (4, 2), (3, 99)] {
        let s = scrambled(3, 200_000, keys, seed);
        let dir = tempfile::tempdir().unwrap();
        let (full, full_bytes) = counts(&s, HistoryMode::Full, dir.path());
        let (intervals, bytes) = counts(&s, HistoryMode::Intervals, dir.path());
        assert_eq!(full, intervals, "keys {keys}");
        // Every anomaly is there to be miscounted.
        let c = full;
        for (what, n) in [
            ("lost", c.lost),
            ("unacked-lost", c.unacked_lost),
            ("recovered", c.recovered),
            ("failed", c.failed),
            ("not sent", c.not_sent),
            ("duplicated", c.duplicated),
            ("reordered", c.reordered),
            ("unexpected", c.unexpected),
        ] {
            assert!(n > 0, "keys {keys}: no {what} in the stream: {c:?}");
        }
        assert_eq!(c.sent, 600_000);
        assert!(
            bytes * 5 < full_bytes,
            "keys {keys}: {bytes} vs {full_bytes} bytes"
        );
    }
}

#[test]
fn a_clean_stream_is_a_handful_of_records() {
    let mut s = scrambled(1, 1, 1, 5);
    let n = 1_000_000u64;
    s.producers[0].clear();
    s.consumers[0].clear();
    s.consumers[1].clear();
    for seq in 0..n {
        let t = seq * US; // 1 M msgs/s: one second
        let (producer, seq_id) = (ProducerId(0), Seq(seq));
        s.producers[0].push(Record::Sent {
            producer,
            seq: seq_id,
            key: key_of(producer, seq_id, 1),
            intended_ns: t,
        });
        s.producers[0].push(Record::Acked {
            producer,
            seq: seq_id,
            at_ns: t + 1,
            intended_ns: t,
        });
        s.consumers[0].push(delivery(0, seq, 1, t + 2));
    }
    let dir = tempfile::tempdir().unwrap();
    let (c, bytes) = counts(&s, HistoryMode::Intervals, dir.path());
    assert_eq!((c.sent, c.acked, c.delivered, c.lost), (n, n, n, 0));
    // Three headers and three runs in each of the two cells the acks and deliveries reach.
    assert!(
        bytes <= 3 * 32 + 6 * 32,
        "{bytes} bytes for a million clean messages"
    );
}

/// A message the first consumer took is taken again by the second (a duplicate), then an older
/// one arrives for the first time, then a newer one: the older one is reordered (the first
/// consumer took 10 first, earlier, and order is judged across consumers), once, the same in
/// both versions: the run that holds the repeat ends there, so 5 does not jump ahead of it.
#[test]
fn a_run_ends_at_a_repeat_so_later_first_deliveries_do_not_jump_ahead() {
    let sent: Vec<Record> = (0..12)
        .flat_map(|seq| {
            let (producer, seq) = (ProducerId(0), Seq(seq));
            [
                Record::Sent {
                    producer,
                    seq,
                    key: key_of(producer, seq, 1),
                    intended_ns: seq.0,
                },
                Record::Acked {
                    producer,
                    seq,
                    at_ns: seq.0 + 1,
                    intended_ns: seq.0,
                },
            ]
        })
        .collect();
    let s = Stream {
        keys: 1,
        producers: vec![sent],
        consumers: vec![
            vec![delivery(0, 10, 1, 100)],
            vec![
                delivery(0, 10, 1, 200),
                delivery(0, 5, 1, 210),
                delivery(0, 11, 1, 220),
            ],
        ],
    };
    let dir = tempfile::tempdir().unwrap();
    let (full, _) = counts(&s, HistoryMode::Full, dir.path());
    let (intervals, _) = counts(&s, HistoryMode::Intervals, dir.path());
    assert_eq!((full.reordered, full.duplicated, full.lost), (1, 1, 9));
    assert_eq!(full, intervals);
}
