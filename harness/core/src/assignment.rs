//! Assignment changes of a consumer (a group member was given or lost partitions), as the
//! backend reports them and as the worker writes them beside its history:
//! `<history>.assign.jsonl`, one JSON object a line, at most [`MAX_LINES`] lines.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Lines a consumer writes at most; a member that rebalances more often than this in one run
/// is beyond what a pause figure can summarise.
pub const MAX_LINES: usize = 10_000;

/// Whether partitions were given to the member or taken from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AssignEvent {
    Assigned,
    Revoked,
}

/// One change as a backend reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignmentChange {
    /// When the backend learnt of it (the shared monotonic clock, `clock::now_ns`).
    pub at_ns: u64,
    pub event: AssignEvent,
    /// The partitions given or taken (not the whole assignment under an incremental protocol).
    pub partitions: Vec<u32>,
}

/// One line of `<history>.assign.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignLine {
    pub at_ns: u64,
    /// The consumer's index (its replacements keep it).
    pub consumer: u16,
    pub event: AssignEvent,
    pub partitions: Vec<u32>,
}

/// The assignment file beside a consumer's history file.
pub fn assign_path(history: &Path) -> PathBuf {
    let mut s = history.as_os_str().to_owned();
    s.push(".assign.jsonl");
    PathBuf::from(s)
}

/// Appends changes to a consumer's assignment file, up to [`MAX_LINES`].
pub struct AssignLog {
    path: PathBuf,
    consumer: u16,
    written: usize,
}

impl AssignLog {
    /// Nothing is created until the first change.
    pub fn new(history: &Path, consumer: u16) -> AssignLog {
        AssignLog {
            path: assign_path(history),
            consumer,
            written: 0,
        }
    }

    /// Writes `changes`; those past the cap are dropped (said once in the log).
    pub fn write(&mut self, changes: Vec<AssignmentChange>) -> std::io::Result<()> {
        if changes.is_empty() || self.written >= MAX_LINES {
            return Ok(());
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        let mut buf = Vec::new();
        for c in changes {
            if self.written >= MAX_LINES {
                tracing::warn!(
                    "{}: {MAX_LINES} lines, later changes dropped",
                    self.path.display()
                );
                break;
            }
            let line = AssignLine {
                at_ns: c.at_ns,
                consumer: self.consumer,
                event: c.event,
                partitions: c.partitions,
            };
            serde_json::to_writer(&mut buf, &line).map_err(std::io::Error::other)?;
            buf.push(b'\n');
            self.written += 1;
        }
        f.write_all(&buf)
    }
}

/// Reads an assignment file; a missing file is no changes. A line that does not parse (a
/// member killed mid-write) ends the file.
pub fn read(path: &Path) -> std::io::Result<Vec<AssignLine>> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for line in std::io::BufReader::new(f).lines().take(MAX_LINES) {
        match serde_json::from_str(&line?) {
            Ok(l) => out.push(l),
            Err(_) => break,
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_round_trip_beside_the_history_and_stop_at_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let hist = dir.path().join("consumer-1-r1.hist");
        assert_eq!(
            assign_path(&hist),
            dir.path().join("consumer-1-r1.hist.assign.jsonl")
        );
        assert!(read(&assign_path(&hist)).unwrap().is_empty());
        let mut log = AssignLog::new(&hist, 1);
        let change = |at_ns, event| AssignmentChange {
            at_ns,
            event,
            partitions: vec![0, 2],
        };
        log.write(vec![change(5, AssignEvent::Assigned)]).unwrap();
        log.write(vec![change(9, AssignEvent::Revoked)]).unwrap();
        let lines = read(&assign_path(&hist)).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].at_ns, 9);
        assert_eq!(lines[1].consumer, 1);
        assert_eq!(lines[1].event, AssignEvent::Revoked);
        assert_eq!(lines[1].partitions, [0, 2]);
        log.written = MAX_LINES - 1;
        log.write(vec![change(10, AssignEvent::Assigned); 3])
            .unwrap();
        assert_eq!(read(&assign_path(&hist)).unwrap().len(), 3);
    }
}
