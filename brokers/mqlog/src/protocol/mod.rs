//! The wire protocol shared by the server and the client: pure encoding and decoding of
//! frames, no I/O, so hostile bytes can be thrown at it directly.
//!
//! Every frame is `length u32 | payload` (big-endian; `length` counts the payload and is at
//! most [`MAX_FRAME_LEN`]). A request payload is `correlation_id u32 | kind u8 | body`; a
//! response payload is `correlation_id u32 | kind u8 | status u8 | body`, where status 0 is
//! success and anything else an [`ErrorCode`] with a `u16`-prefixed UTF-8 message as body;
//! an [`ErrorCode::OffsetOutOfRange`] body goes on with the partition's `start u64 | end u64`,
//! so a consumer can reset its position without another round trip.
//! Strings are `len u16 | UTF-8`. Bodies by kind:
//!
//! | kind | request body | response body |
//! |---|---|---|
//! | 1 create topic | topic, partitions u32 | created u8 |
//! | 2 produce | topic, partition u32, ack u8, count u32, records (`len u32 \| bytes` × count, rest of frame) | base_offset u64 (none for ack 0) |
//! | 3 fetch | topic, partition u32, offset u64, max_bytes u32, max_wait_ms u32 | end_offset u64, start_offset u64, whole batches (rest of frame) |
//! | 4 commit offset | group, topic, partition u32, offset u64 | empty |
//! | 5 committed offset | group, topic, partition u32 | present u8, offset u64 |
//! | 6 end offsets | topic | count u32, offset u64 × count |
//! | 7 join group | group, topic, member, session_ms u32 | generation u32, count u32, partition u32 × count |
//! | 8 heartbeat | group, member, generation u32 | rebalance u8 (0 ok, 1 rebalance needed: join again) |
//! | 9 leave group | group, member | empty |
//!
//! Groups (7-9, served by `server::group`): a member joins with its session timeout
//! ([`MIN_SESSION_MS`]..=[`MAX_SESSION_MS`]) and gets the group's generation and its share of
//! the topic's partitions (range-style: members sorted by id, contiguous ranges). Any change of
//! membership (a join, a leave, a member silent past its session) starts a new generation; a
//! heartbeat with an older generation, or from a member no longer in the group, answers
//! "rebalance needed" and the member joins again for its new share. A join gets only the part
//! of its share no other member still holds; it is told to rebalance until it has all of it,
//! so a partition changes hands only after its old owner joined again (one reader at a time).
//! Group ids and member ids are 1..=[`MAX_GROUP_ID_LEN`] bytes.

use std::time::Duration;

use bytes::Bytes;

/// Largest frame payload either side accepts; a larger length is refused before allocating.
pub const MAX_FRAME_LEN: u32 = 64 << 20;
/// Largest fetch the server serves, whatever `max_bytes` asks (the server's default cap, and
/// the most `--max-fetch-bytes` allows).
pub const MAX_FETCH_BYTES: u32 = 16 << 20;
/// Longest long-poll the server honours by default, whatever `max_wait_ms` asks.
pub const MAX_FETCH_WAIT: Duration = Duration::from_secs(60);
/// Bytes of a fetch response frame before its batches: length, correlation id, kind, status,
/// end offset, start offset.
pub const FETCHED_HEAD_LEN: usize = 4 + 4 + 1 + 1 + 8 + 8;

/// Shortest session timeout a member may join with.
pub const MIN_SESSION_MS: u32 = 1_000;
/// Longest session timeout a member may join with.
pub const MAX_SESSION_MS: u32 = 300_000;
/// Longest group or member id, in bytes.
pub const MAX_GROUP_ID_LEN: usize = 255;

/// Request kinds.
pub mod kind {
    /// Create a topic.
    pub const CREATE_TOPIC: u8 = 1;
    /// Append a batch.
    pub const PRODUCE: u8 = 2;
    /// Read from an offset, long-polling.
    pub const FETCH: u8 = 3;
    /// Commit a group offset.
    pub const COMMIT: u8 = 4;
    /// Read a group offset.
    pub const COMMITTED: u8 = 5;
    /// End offset of every partition of a topic.
    pub const END_OFFSETS: u8 = 6;
    /// Join a consumer group.
    pub const JOIN: u8 = 7;
    /// Keep a group membership alive.
    pub const HEARTBEAT: u8 = 8;
    /// Leave a consumer group.
    pub const LEAVE: u8 = 9;
}

/// When the server acknowledges a produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ack {
    /// Never: no response at all (fire and forget).
    None = 0,
    /// Once written to the log file (page cache); under fsync `always`, after the fsync.
    Written = 1,
    /// Once an fsync covers the write, whatever the fsync policy.
    Fsynced = 2,
}

impl Ack {
    fn from_u8(b: u8) -> Option<Ack> {
        match b {
            0 => Some(Ack::None),
            1 => Some(Ack::Written),
            2 => Some(Ack::Fsynced),
            _ => None,
        }
    }
}

/// Why the server refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The request could not be decoded.
    Malformed = 1,
    /// No such topic.
    UnknownTopic = 2,
    /// No such partition.
    UnknownPartition = 3,
    /// The offset is before the log start or past its end (a fetch), or past the end (a
    /// commit). The response carries the partition's start and end ([`Response::OutOfRange`]).
    OffsetOutOfRange = 4,
    /// A bad name, partition count or batch.
    InvalidArgument = 5,
    /// The topic exists with another partition count.
    TopicExists = 6,
    /// The storage engine failed (I/O, fsync).
    Storage = 7,
    /// The server could not finish in time: an fsync did not cover the write, or there was no
    /// room in its memory budget for the request or its response (retry later).
    Timeout = 8,
    /// The server is shutting down.
    ShuttingDown = 9,
    /// Stored data failed its CRC check; the offset cannot be served.
    Corrupt = 10,
    /// Anything else.
    Other = 255,
}

impl ErrorCode {
    /// The code for a status byte (unknown codes map to `Other`).
    pub fn from_u8(b: u8) -> ErrorCode {
        match b {
            1 => ErrorCode::Malformed,
            2 => ErrorCode::UnknownTopic,
            3 => ErrorCode::UnknownPartition,
            4 => ErrorCode::OffsetOutOfRange,
            5 => ErrorCode::InvalidArgument,
            6 => ErrorCode::TopicExists,
            7 => ErrorCode::Storage,
            8 => ErrorCode::Timeout,
            9 => ErrorCode::ShuttingDown,
            10 => ErrorCode::Corrupt,
            _ => ErrorCode::Other,
        }
    }
}

/// A decoded request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Create a topic with this many partitions (idempotent for the same count).
    CreateTopic { topic: String, partitions: u32 },
    /// Append `count` records (framed `len u32 | bytes`) as one batch.
    Produce {
        topic: String,
        partition: u32,
        ack: Ack,
        count: u32,
        records: Bytes,
    },
    /// Read whole batches from `offset`, waiting up to `max_wait` for data.
    Fetch {
        topic: String,
        partition: u32,
        offset: u64,
        max_bytes: u32,
        max_wait: Duration,
    },
    /// Commit a group offset.
    Commit {
        group: String,
        topic: String,
        partition: u32,
        offset: u64,
    },
    /// Read a group offset.
    Committed {
        group: String,
        topic: String,
        partition: u32,
    },
    /// End offset of every partition.
    EndOffsets { topic: String },
    /// Join `group` (reading `topic`) as `member`; silent for `session_ms`, it is removed.
    Join {
        group: String,
        topic: String,
        member: String,
        session_ms: u32,
    },
    /// Tell the group `member` is alive in `generation`.
    Heartbeat {
        group: String,
        member: String,
        generation: u32,
    },
    /// Leave the group now (its partitions move at once).
    Leave { group: String, member: String },
}

impl Request {
    /// The kind byte of this request.
    pub fn kind(&self) -> u8 {
        match self {
            Request::CreateTopic { .. } => kind::CREATE_TOPIC,
            Request::Produce { .. } => kind::PRODUCE,
            Request::Fetch { .. } => kind::FETCH,
            Request::Commit { .. } => kind::COMMIT,
            Request::Committed { .. } => kind::COMMITTED,
            Request::EndOffsets { .. } => kind::END_OFFSETS,
            Request::Join { .. } => kind::JOIN,
            Request::Heartbeat { .. } => kind::HEARTBEAT,
            Request::Leave { .. } => kind::LEAVE,
        }
    }
}

/// A decoded response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// Topic created (true) or already there with the same count (false).
    Created(bool),
    /// The batch's base offset.
    Produced { base_offset: u64 },
    /// Whole batches, possibly starting before the requested offset.
    Fetched {
        end_offset: u64,
        start_offset: u64,
        data: Bytes,
    },
    /// Offset committed.
    OffsetCommitted,
    /// The committed offset, if any.
    CommittedOffset(Option<u64>),
    /// End offsets by partition.
    EndOffsets(Vec<u64>),
    /// The group's generation and the member's partitions in it.
    Joined {
        generation: u32,
        partitions: Vec<u32>,
    },
    /// Heartbeat answered: true when the member must join again.
    Heartbeat { rebalance: bool },
    /// Left the group.
    Left,
    /// The request failed.
    Error { code: ErrorCode, message: String },
    /// The offset is outside the partition: `start` is the first retained offset, `end` the
    /// next to be written (status [`ErrorCode::OffsetOutOfRange`]).
    OutOfRange {
        message: String,
        start: u64,
        end: u64,
    },
}

/// Why bytes did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed frame: {reason}")]
pub struct DecodeError {
    /// The correlation id, when the frame was long enough to carry one.
    pub correlation_id: Option<u32>,
    /// The kind byte, when present.
    pub kind: Option<u8>,
    /// What was wrong.
    pub reason: String,
}

mod codec;

pub use codec::{
    check_frame_len, decode_request, decode_response, encode_fetched_head, encode_produce,
    encode_request, encode_response,
};

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(frame: &[u8]) -> Bytes {
        let len = u32::from_be_bytes(frame[0..4].try_into().unwrap()) as usize;
        assert_eq!(len + 4, frame.len());
        Bytes::copy_from_slice(&frame[4..])
    }

    #[test]
    fn requests_round_trip() {
        let mut records = Vec::new();
        crate::storage::encode_records(&mut records, &[&b"a"[..], &b"bcd"[..]]);
        let reqs = vec![
            Request::CreateTopic {
                topic: "t".into(),
                partitions: 3,
            },
            Request::Produce {
                topic: "t".into(),
                partition: 2,
                ack: Ack::Fsynced,
                count: 2,
                records: Bytes::from(records),
            },
            Request::Fetch {
                topic: "t".into(),
                partition: 1,
                offset: 99,
                max_bytes: 1000,
                max_wait: Duration::from_millis(250),
            },
            Request::Commit {
                group: "g".into(),
                topic: "t".into(),
                partition: 0,
                offset: 7,
            },
            Request::Committed {
                group: "g".into(),
                topic: "t".into(),
                partition: 0,
            },
            Request::EndOffsets { topic: "t".into() },
            Request::Join {
                group: "g".into(),
                topic: "t".into(),
                member: "m".into(),
                session_ms: 3000,
            },
            Request::Heartbeat {
                group: "g".into(),
                member: "m".into(),
                generation: 4,
            },
            Request::Leave {
                group: "g".into(),
                member: "m".into(),
            },
        ];
        for (i, req) in reqs.into_iter().enumerate() {
            let mut out = Vec::new();
            encode_request(&mut out, i as u32, &req);
            assert_eq!(decode_request(payload(&out)).unwrap(), (i as u32, req));
        }
        let mut a = Vec::new();
        encode_produce(&mut a, 5, "t", 2, Ack::Written, &[&b"a"[..], &b"bcd"[..]]);
        let (corr, req) = decode_request(payload(&a)).unwrap();
        assert_eq!(corr, 5);
        assert!(matches!(
            req,
            Request::Produce {
                count: 2,
                ack: Ack::Written,
                ..
            }
        ));
    }

    #[test]
    fn responses_round_trip() {
        let resps = vec![
            (kind::CREATE_TOPIC, Response::Created(true)),
            (kind::PRODUCE, Response::Produced { base_offset: 12 }),
            (
                kind::FETCH,
                Response::Fetched {
                    end_offset: 5,
                    start_offset: 1,
                    data: Bytes::from_static(b"xyz"),
                },
            ),
            (kind::COMMIT, Response::OffsetCommitted),
            (kind::COMMITTED, Response::CommittedOffset(Some(4))),
            (kind::COMMITTED, Response::CommittedOffset(None)),
            (kind::END_OFFSETS, Response::EndOffsets(vec![1, 2, 3])),
            (
                kind::JOIN,
                Response::Joined {
                    generation: 3,
                    partitions: vec![2, 3],
                },
            ),
            (kind::HEARTBEAT, Response::Heartbeat { rebalance: true }),
            (kind::HEARTBEAT, Response::Heartbeat { rebalance: false }),
            (kind::LEAVE, Response::Left),
            (
                kind::FETCH,
                Response::Error {
                    code: ErrorCode::OffsetOutOfRange,
                    message: "nope".into(),
                },
            ),
            (
                kind::FETCH,
                Response::OutOfRange {
                    message: "gone".into(),
                    start: 10,
                    end: u64::MAX,
                },
            ),
            (
                kind::COMMIT,
                Response::Error {
                    code: ErrorCode::Timeout,
                    message: "busy".into(),
                },
            ),
        ];
        for (i, (k, resp)) in resps.into_iter().enumerate() {
            let mut out = Vec::new();
            encode_response(&mut out, i as u32, k, &resp);
            assert_eq!(decode_response(payload(&out)).unwrap(), (i as u32, k, resp));
        }
    }

    #[test]
    fn a_fetched_head_plus_its_batches_is_the_encoded_response() {
        let data = Bytes::from_static(b"some batches");
        let whole = Response::Fetched {
            end_offset: 9,
            start_offset: 2,
            data: data.clone(),
        };
        let mut want = Vec::new();
        encode_response(&mut want, 77, kind::FETCH, &whole);
        let mut got = Vec::new();
        encode_fetched_head(&mut got, 77, 9, 2, data.len());
        assert_eq!(got.len(), FETCHED_HEAD_LEN);
        got.extend_from_slice(&data);
        assert_eq!(got, want);
    }

    #[test]
    fn malformed_requests_are_errors_with_what_was_known() {
        assert_eq!(
            decode_request(Bytes::from_static(b"\0\0"))
                .unwrap_err()
                .correlation_id,
            None
        );
        let e = decode_request(Bytes::from_static(b"\0\0\0\x07\x63")).unwrap_err();
        assert_eq!((e.correlation_id, e.kind), (Some(7), Some(0x63)));
        // A produce whose record count does not match its records.
        let mut out = Vec::new();
        encode_produce(&mut out, 1, "t", 0, Ack::Written, &[&b"abc"[..]]);
        let mut p = payload(&out).to_vec();
        let count_at = 4 + 1 + 2 + 1 + 4 + 1;
        p[count_at + 3] = 2;
        assert!(decode_request(Bytes::from(p)).is_err());
        assert!(check_frame_len(MAX_FRAME_LEN + 1).is_err());
        assert!(check_frame_len(u32::MAX).is_err());
    }
}
