//! The store: new vs repeat, persistence across connections, consumers racing on one store,
//! and what reading it back says.

use super::*;

fn msg(producer: u16, seq: u64) -> Processed {
    Processed {
        producer: ProducerId(producer),
        seq: Seq(seq),
        key: Key((seq % 3) as u32),
        sent_ns: 1000 + seq,
    }
}

fn store(dir: &Path) -> PathBuf {
    let path = dir.join("dedup.sqlite");
    create(&path).unwrap();
    path
}

#[test]
fn a_repeat_is_told_apart_from_a_new_message_within_and_across_batches() {
    let dir = tempfile::tempdir().unwrap();
    let path = store(dir.path());
    let mut s = Store::open(&path, DedupSync::Normal, ConsumerId(0)).unwrap();
    let mut new = Vec::new();
    let repeats = s
        .mark(&[msg(0, 1), msg(0, 2), msg(1, 1), msg(0, 1)], 50, &mut new)
        .unwrap();
    assert_eq!(new, [true, true, true, false], "the 4th repeats the 1st");
    assert_eq!(repeats, 1);
    let repeats = s.mark(&[msg(0, 2), msg(0, 3)], 60, &mut new).unwrap();
    assert_eq!((new.as_slice(), repeats), (&[false, true][..], 1));
    let mut rows = Vec::new();
    let summary = read(&path, |r| rows.push(r)).unwrap();
    assert_eq!(
        summary,
        Summary {
            processed: 4,
            skipped: 2
        }
    );
    rows.sort_by_key(|r| (r.producer, r.seq));
    let first = rows[0];
    assert_eq!(
        first,
        Row {
            producer: ProducerId(0),
            seq: Seq(1),
            key: Key(1),
            consumer: ConsumerId(0),
            sent_ns: 1001,
            at_ns: 50,
        }
    );
    assert_eq!(rows[2].at_ns, 60, "(0, 3) was marked by the second batch");
}

#[test]
fn what_was_marked_stays_marked_for_the_next_connection_and_consumer() {
    let dir = tempfile::tempdir().unwrap();
    let path = store(dir.path());
    let mut new = Vec::new();
    {
        let mut s = Store::open(&path, DedupSync::Full, ConsumerId(0)).unwrap();
        s.mark(&[msg(0, 7), msg(0, 8)], 1, &mut new).unwrap();
    }
    // A replacement of the killed consumer, or another consumer of the group.
    let mut s = Store::open(&path, DedupSync::Normal, ConsumerId(1)).unwrap();
    let repeats = s.mark(&[msg(0, 8), msg(0, 9)], 2, &mut new).unwrap();
    assert_eq!((new.as_slice(), repeats), (&[false, true][..], 1));
    assert_eq!(
        read(&path, |_| {}).unwrap(),
        Summary {
            processed: 3,
            skipped: 1
        }
    );
}

#[test]
fn consumers_racing_on_one_store_process_each_message_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = store(dir.path());
    // Four connections (as four consumer processes would hold) mark the same 2000 messages,
    // each in its own order and batch size.
    let threads: Vec<_> = (0..4u16)
        .map(|c| {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut s = Store::open(&path, DedupSync::Normal, ConsumerId(c)).unwrap();
                let mut seqs: Vec<u64> = (0..2000).collect();
                if c % 2 == 1 {
                    seqs.reverse();
                }
                let (mut mine, mut new) = (0u64, Vec::new());
                for chunk in seqs.chunks(7 + 13 * c as usize) {
                    let batch: Vec<Processed> = chunk.iter().map(|&s| msg(0, s)).collect();
                    s.mark(&batch, 1, &mut new).unwrap();
                    mine += new.iter().filter(|&&n| n).count() as u64;
                }
                mine
            })
        })
        .collect();
    let won: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(won, 2000, "each message is new to exactly one consumer");
    let summary = read(&path, |_| {}).unwrap();
    assert_eq!((summary.processed, summary.skipped), (2000, 6000));
}

#[test]
fn a_new_store_forgets_an_earlier_run_and_a_foreign_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = store(dir.path());
    let mut s = Store::open(&path, DedupSync::Normal, ConsumerId(0)).unwrap();
    s.mark(&[msg(0, 1)], 1, &mut Vec::new()).unwrap();
    drop(s);
    create(&path).unwrap();
    assert_eq!(read(&path, |_| {}).unwrap(), Summary::default());

    let foreign = dir.path().join("other.sqlite");
    std::fs::write(&foreign, b"not a database at all, just some text").unwrap();
    let e = Store::open(&foreign, DedupSync::Normal, ConsumerId(0))
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.starts_with(&format!("dedup store {}", foreign.display())),
        "{e}"
    );
    let missing = dir.path().join("missing.sqlite");
    let e = Store::open(&missing, DedupSync::Normal, ConsumerId(0))
        .err()
        .unwrap();
    assert!(e.to_string().contains("opening"), "{e}");
    assert!(!missing.exists(), "opening does not create a store");
    assert!(read(&missing, |_| {}).is_err());
}
