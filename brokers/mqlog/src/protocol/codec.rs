//! Encoding and decoding of the frames [`super`] describes: pure functions over bytes, each
//! decode bounded by what its frame holds, so hostile input is an error, never a panic.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};

use super::{
    kind, Ack, DecodeError, ErrorCode, Request, Response, FETCHED_HEAD_LEN, MAX_FRAME_LEN,
};

/// `fn u8(what)` … `fn u64(what)`: the next big-endian integer, or an error naming `what`.
macro_rules! int_readers {
    ($($int:ident: $get:ident),*) => {$(
        fn $int(&mut self, what: &str) -> Result<$int, DecodeError> {
            self.need(std::mem::size_of::<$int>(), what)?;
            Ok(self.buf.$get())
        }
    )*};
}

struct Reader {
    buf: Bytes,
    corr: Option<u32>,
    kind: Option<u8>,
}

impl Reader {
    fn err(&self, reason: impl Into<String>) -> DecodeError {
        DecodeError {
            correlation_id: self.corr,
            kind: self.kind,
            reason: reason.into(),
        }
    }
    fn need(&self, n: usize, what: &str) -> Result<(), DecodeError> {
        if self.buf.remaining() < n {
            Err(self.err(format!("frame ends inside {what}")))
        } else {
            Ok(())
        }
    }
    int_readers! { u8: get_u8, u16: get_u16, u32: get_u32, u64: get_u64 }
    fn string(&mut self, what: &str) -> Result<String, DecodeError> {
        let len = self.u16(what)? as usize;
        self.need(len, what)?;
        let b = self.buf.split_to(len);
        String::from_utf8(b.to_vec()).map_err(|_| self.err(format!("{what} is not UTF-8")))
    }
    fn rest(&mut self) -> Bytes {
        self.buf.split_off(0)
    }
    fn done(&self) -> Result<(), DecodeError> {
        if self.buf.has_remaining() {
            Err(self.err(format!("{} trailing bytes", self.buf.remaining())))
        } else {
            Ok(())
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let s = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
    out.put_u16(s.len() as u16);
    out.put_slice(s);
}

/// Starts a frame in `out`: a length placeholder; finish with [`finish_frame`].
fn start_frame(out: &mut Vec<u8>) -> usize {
    let at = out.len();
    out.put_u32(0);
    at
}

fn finish_frame(out: &mut [u8], at: usize) {
    let len = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

/// Appends a whole request frame (length prefix included) to `out`.
pub fn encode_request(out: &mut Vec<u8>, correlation_id: u32, req: &Request) {
    let at = start_frame(out);
    out.put_u32(correlation_id);
    out.put_u8(req.kind());
    match req {
        Request::CreateTopic { topic, partitions } => {
            put_str(out, topic);
            out.put_u32(*partitions);
        }
        Request::Produce {
            topic,
            partition,
            ack,
            count,
            records,
        } => {
            put_str(out, topic);
            out.put_u32(*partition);
            out.put_u8(*ack as u8);
            out.put_u32(*count);
            out.put_slice(records);
        }
        Request::Fetch {
            topic,
            partition,
            offset,
            max_bytes,
            max_wait,
        } => {
            put_str(out, topic);
            out.put_u32(*partition);
            out.put_u64(*offset);
            out.put_u32(*max_bytes);
            out.put_u32(max_wait.as_millis().min(u32::MAX as u128) as u32);
        }
        Request::Commit {
            group,
            topic,
            partition,
            offset,
        } => {
            put_str(out, group);
            put_str(out, topic);
            out.put_u32(*partition);
            out.put_u64(*offset);
        }
        Request::Committed {
            group,
            topic,
            partition,
        } => {
            put_str(out, group);
            put_str(out, topic);
            out.put_u32(*partition);
        }
        Request::EndOffsets { topic } => put_str(out, topic),
        group_req => encode_group_request(out, group_req),
    }
    finish_frame(out, at);
}

/// The body of a join, heartbeat or leave.
fn encode_group_request(out: &mut Vec<u8>, req: &Request) {
    match req {
        Request::Join {
            group,
            topic,
            member,
            session_ms,
        } => {
            put_str(out, group);
            put_str(out, topic);
            put_str(out, member);
            out.put_u32(*session_ms);
        }
        Request::Heartbeat {
            group,
            member,
            generation,
        } => {
            put_str(out, group);
            put_str(out, member);
            out.put_u32(*generation);
        }
        Request::Leave { group, member } => {
            put_str(out, group);
            put_str(out, member);
        }
        _ => {}
    }
}

/// Appends a produce request frame straight from the records, without building a [`Request`].
pub fn encode_produce<R: AsRef<[u8]>>(
    out: &mut Vec<u8>,
    correlation_id: u32,
    topic: &str,
    partition: u32,
    ack: Ack,
    records: &[R],
) {
    let at = start_frame(out);
    out.put_u32(correlation_id);
    out.put_u8(kind::PRODUCE);
    put_str(out, topic);
    out.put_u32(partition);
    out.put_u8(ack as u8);
    out.put_u32(records.len() as u32);
    crate::storage::encode_records(out, records);
    finish_frame(out, at);
}

/// Decodes a request payload (the bytes after the length prefix).
pub fn decode_request(payload: Bytes) -> Result<(u32, Request), DecodeError> {
    let mut r = Reader {
        buf: payload,
        corr: None,
        kind: None,
    };
    let corr = r.u32("correlation id")?;
    r.corr = Some(corr);
    let k = r.u8("request kind")?;
    r.kind = Some(k);
    let req = match k {
        kind::CREATE_TOPIC => Request::CreateTopic {
            topic: r.string("topic")?,
            partitions: r.u32("partition count")?,
        },
        kind::PRODUCE => {
            let topic = r.string("topic")?;
            let partition = r.u32("partition")?;
            let ack_byte = r.u8("ack")?;
            let ack = Ack::from_u8(ack_byte).ok_or_else(|| r.err(format!("ack {ack_byte}")))?;
            let count = r.u32("record count")?;
            let records = r.rest();
            crate::storage::validate_records(&records, count)
                .map_err(|e| r.err(format!("records: {e}")))?;
            Request::Produce {
                topic,
                partition,
                ack,
                count,
                records,
            }
        }
        kind::FETCH => Request::Fetch {
            topic: r.string("topic")?,
            partition: r.u32("partition")?,
            offset: r.u64("offset")?,
            max_bytes: r.u32("max bytes")?,
            max_wait: Duration::from_millis(u64::from(r.u32("max wait")?)),
        },
        kind::COMMIT => Request::Commit {
            group: r.string("group")?,
            topic: r.string("topic")?,
            partition: r.u32("partition")?,
            offset: r.u64("offset")?,
        },
        kind::COMMITTED => Request::Committed {
            group: r.string("group")?,
            topic: r.string("topic")?,
            partition: r.u32("partition")?,
        },
        kind::END_OFFSETS => Request::EndOffsets {
            topic: r.string("topic")?,
        },
        kind::JOIN => Request::Join {
            group: r.string("group")?,
            topic: r.string("topic")?,
            member: r.string("member")?,
            session_ms: r.u32("session timeout")?,
        },
        kind::HEARTBEAT => Request::Heartbeat {
            group: r.string("group")?,
            member: r.string("member")?,
            generation: r.u32("generation")?,
        },
        kind::LEAVE => Request::Leave {
            group: r.string("group")?,
            member: r.string("member")?,
        },
        other => return Err(r.err(format!("unknown request kind {other}"))),
    };
    r.done()?;
    Ok((corr, req))
}

/// Appends a whole response frame (length prefix included) to `out`.
pub fn encode_response(out: &mut Vec<u8>, correlation_id: u32, kind: u8, resp: &Response) {
    let at = start_frame(out);
    out.put_u32(correlation_id);
    out.put_u8(kind);
    match resp {
        Response::Error { code, message } => {
            out.put_u8(*code as u8);
            put_str(out, message);
        }
        Response::OutOfRange {
            message,
            start,
            end,
        } => {
            out.put_u8(ErrorCode::OffsetOutOfRange as u8);
            put_str(out, message);
            out.put_u64(*start);
            out.put_u64(*end);
        }
        ok => {
            out.put_u8(0);
            match ok {
                Response::Created(c) => out.put_u8(u8::from(*c)),
                Response::Produced { base_offset } => out.put_u64(*base_offset),
                Response::Fetched {
                    end_offset,
                    start_offset,
                    data,
                } => {
                    out.put_u64(*end_offset);
                    out.put_u64(*start_offset);
                    out.put_slice(data);
                }
                Response::OffsetCommitted => {}
                Response::CommittedOffset(o) => {
                    out.put_u8(u8::from(o.is_some()));
                    out.put_u64(o.unwrap_or(0));
                }
                Response::EndOffsets(v) => {
                    out.put_u32(v.len() as u32);
                    for o in v {
                        out.put_u64(*o);
                    }
                }
                Response::Joined {
                    generation,
                    partitions,
                } => {
                    out.put_u32(*generation);
                    out.put_u32(partitions.len() as u32);
                    for p in partitions {
                        out.put_u32(*p);
                    }
                }
                Response::Heartbeat { rebalance } => out.put_u8(u8::from(*rebalance)),
                Response::Left => {}
                Response::Error { .. } | Response::OutOfRange { .. } => {
                    unreachable!("handled above")
                }
            }
        }
    }
    finish_frame(out, at);
}

/// Appends the head of a successful fetch response whose batches (`data_len` bytes) the caller
/// writes right after it, so the batches need not be copied into the frame.
pub fn encode_fetched_head(
    out: &mut Vec<u8>,
    correlation_id: u32,
    end_offset: u64,
    start_offset: u64,
    data_len: usize,
) {
    // The batches are at most a fetch cap or one batch, far below the u32 frame length.
    let len = (FETCHED_HEAD_LEN - 4 + data_len).min(u32::MAX as usize) as u32;
    out.put_u32(len);
    out.put_u32(correlation_id);
    out.put_u8(kind::FETCH);
    out.put_u8(0);
    out.put_u64(end_offset);
    out.put_u64(start_offset);
}

/// Decodes a response payload: `(correlation id, kind, response)`.
pub fn decode_response(payload: Bytes) -> Result<(u32, u8, Response), DecodeError> {
    let mut r = Reader {
        buf: payload,
        corr: None,
        kind: None,
    };
    let corr = r.u32("correlation id")?;
    r.corr = Some(corr);
    let k = r.u8("response kind")?;
    r.kind = Some(k);
    let status = r.u8("status")?;
    if status != 0 {
        let code = ErrorCode::from_u8(status);
        let message = r.string("error message")?;
        if code == ErrorCode::OffsetOutOfRange && r.buf.has_remaining() {
            let start = r.u64("log start offset")?;
            let end = r.u64("log end offset")?;
            r.done()?;
            return Ok((
                corr,
                k,
                Response::OutOfRange {
                    message,
                    start,
                    end,
                },
            ));
        }
        r.done()?;
        return Ok((corr, k, Response::Error { code, message }));
    }
    let resp = match k {
        kind::CREATE_TOPIC => Response::Created(r.u8("created flag")? != 0),
        kind::PRODUCE => Response::Produced {
            base_offset: r.u64("base offset")?,
        },
        kind::FETCH => Response::Fetched {
            end_offset: r.u64("end offset")?,
            start_offset: r.u64("start offset")?,
            data: r.rest(),
        },
        kind::COMMIT => Response::OffsetCommitted,
        kind::COMMITTED => {
            let present = r.u8("present flag")? != 0;
            let o = r.u64("offset")?;
            Response::CommittedOffset(present.then_some(o))
        }
        kind::END_OFFSETS => {
            let n = r.u32("partition count")? as usize;
            r.need(n.saturating_mul(8), "end offsets")?;
            Response::EndOffsets((0..n).map(|_| r.buf.get_u64()).collect())
        }
        kind::JOIN => {
            let generation = r.u32("generation")?;
            let n = r.u32("partition count")? as usize;
            r.need(n.saturating_mul(4), "partitions")?;
            Response::Joined {
                generation,
                partitions: (0..n).map(|_| r.buf.get_u32()).collect(),
            }
        }
        kind::HEARTBEAT => Response::Heartbeat {
            rebalance: r.u8("rebalance flag")? != 0,
        },
        kind::LEAVE => Response::Left,
        other => return Err(r.err(format!("unknown response kind {other}"))),
    };
    r.done()?;
    Ok((corr, k, resp))
}

/// Checks a frame length prefix against [`MAX_FRAME_LEN`].
pub fn check_frame_len(len: u32) -> Result<usize, DecodeError> {
    if len > MAX_FRAME_LEN {
        Err(DecodeError {
            correlation_id: None,
            kind: None,
            reason: format!("frame length {len} exceeds the cap of {MAX_FRAME_LEN} bytes"),
        })
    } else {
        Ok(len as usize)
    }
}
