//! The record batch: the unit the log appends, stores, serves and validates.
//!
//! A batch is the same bytes on disk and in a fetch response:
//! `length u32 | crc32c u32 | base_offset u64 | record_count u32 | timestamp_ms u64 | records`,
//! all big-endian, where `length` counts the bytes after itself, the CRC32C covers every byte
//! after the CRC field, and each record is `len u32 | bytes`.

use bytes::Bytes;

/// Bytes before the records: length, crc, base offset, record count, timestamp.
pub const BATCH_HEADER_LEN: usize = 28;
/// Bytes each record adds before its payload (its length).
pub const RECORD_OVERHEAD: usize = 4;

/// The fixed header of one batch, as read from disk or the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Bytes after the length field (so the whole batch is `4 + length` bytes).
    pub length: u32,
    /// CRC32C of every byte after the CRC field.
    pub crc: u32,
    /// Offset of the first record.
    pub base_offset: u64,
    /// Number of records in the batch (at least 1).
    pub record_count: u32,
    /// Append time, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
}

impl BatchHeader {
    /// Whole size of the batch on disk, header included.
    pub fn total_len(&self) -> u64 {
        4 + u64::from(self.length)
    }

    /// The offset after the last record of this batch.
    pub fn next_offset(&self) -> u64 {
        // Parsed headers never overflow here (see `parse`); a hand-built one saturates.
        self.base_offset
            .saturating_add(u64::from(self.record_count))
    }

    /// Parses the header without checking the CRC; `None` if `buf` is short or the header is
    /// not even plausible (a length too small for the header, zero records, offsets that would
    /// run past u64::MAX).
    pub fn parse(buf: &[u8]) -> Option<BatchHeader> {
        if buf.len() < BATCH_HEADER_LEN {
            return None;
        }
        let h = BatchHeader {
            length: u32::from_be_bytes(buf[0..4].try_into().ok()?),
            crc: u32::from_be_bytes(buf[4..8].try_into().ok()?),
            base_offset: u64::from_be_bytes(buf[8..16].try_into().ok()?),
            record_count: u32::from_be_bytes(buf[16..20].try_into().ok()?),
            timestamp_ms: u64::from_be_bytes(buf[20..28].try_into().ok()?),
        };
        let min_len =
            (BATCH_HEADER_LEN - 4) as u64 + u64::from(h.record_count) * RECORD_OVERHEAD as u64;
        if h.record_count == 0
            || u64::from(h.length) < min_len
            || h.base_offset
                .checked_add(u64::from(h.record_count))
                .is_none()
        {
            return None;
        }
        Some(h)
    }
}

/// Why a batch failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Fewer bytes than the header or the length field promise: a torn write.
    #[error("truncated batch: {have} bytes of {need}")]
    Truncated { have: u64, need: u64 },
    /// Header fields that no writer produces.
    #[error("implausible batch header")]
    BadHeader,
    /// The CRC32C does not match the bytes.
    #[error("crc mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Crc { stored: u32, computed: u32 },
    /// The records do not tile the batch body exactly.
    #[error("record framing does not match the record count")]
    Framing,
}

/// Checks that `records` is exactly `count` records framed as `len u32 | bytes`.
pub fn validate_records(records: &[u8], count: u32) -> Result<(), BatchError> {
    let mut pos = 0usize;
    for _ in 0..count {
        let Some(len_bytes) = records.get(pos..pos + RECORD_OVERHEAD) else {
            return Err(BatchError::Framing);
        };
        let len = u32::from_be_bytes(len_bytes.try_into().expect("4 bytes")) as usize;
        pos += RECORD_OVERHEAD;
        if records.len() - pos < len {
            return Err(BatchError::Framing);
        }
        pos += len;
    }
    if pos == records.len() {
        Ok(())
    } else {
        Err(BatchError::Framing)
    }
}

/// Appends `len u32 | bytes` for each record to `out`: the records section of a batch and of a
/// produce request.
pub fn encode_records<R: AsRef<[u8]>>(out: &mut Vec<u8>, records: &[R]) {
    let extra: usize = records
        .iter()
        .map(|r| r.as_ref().len() + RECORD_OVERHEAD)
        .sum();
    out.reserve(extra);
    for r in records {
        let r = r.as_ref();
        out.extend_from_slice(&(r.len() as u32).to_be_bytes());
        out.extend_from_slice(r);
    }
}

/// Writes one whole batch into `out` (cleared first) from an already framed records section.
/// The caller has checked the framing with [`validate_records`].
pub fn encode_batch(
    out: &mut Vec<u8>,
    base_offset: u64,
    timestamp_ms: u64,
    record_count: u32,
    records: &[u8],
) {
    out.clear();
    out.reserve(BATCH_HEADER_LEN + records.len());
    let length = (BATCH_HEADER_LEN - 4 + records.len()) as u32;
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(&base_offset.to_be_bytes());
    out.extend_from_slice(&record_count.to_be_bytes());
    out.extend_from_slice(&timestamp_ms.to_be_bytes());
    out.extend_from_slice(records);
    let crc = crc32c::crc32c(&out[8..]);
    out[4..8].copy_from_slice(&crc.to_be_bytes());
}

/// Validates one whole batch (header, CRC, record framing) held in `buf`, which may hold more
/// bytes after it.
pub fn check_batch(buf: &[u8]) -> Result<BatchHeader, BatchError> {
    if buf.len() < BATCH_HEADER_LEN {
        return Err(BatchError::Truncated {
            have: buf.len() as u64,
            need: BATCH_HEADER_LEN as u64,
        });
    }
    let h = BatchHeader::parse(buf).ok_or(BatchError::BadHeader)?;
    let total = h.total_len();
    if (buf.len() as u64) < total {
        return Err(BatchError::Truncated {
            have: buf.len() as u64,
            need: total,
        });
    }
    let body = &buf[8..total as usize];
    let computed = crc32c::crc32c(body);
    if computed != h.crc {
        return Err(BatchError::Crc {
            stored: h.crc,
            computed,
        });
    }
    validate_records(&buf[BATCH_HEADER_LEN..total as usize], h.record_count)?;
    Ok(h)
}

/// One record read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its offset in the partition.
    pub offset: u64,
    /// The append time of its batch, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// The payload, sharing the fetched buffer.
    pub value: Bytes,
}

/// Decodes the records of consecutive whole batches in `data`, keeping those at or after
/// `min_offset`. Every batch is CRC-checked; the first bad one is an error.
pub fn decode_batches(data: &Bytes, min_offset: u64) -> Result<Vec<Record>, BatchError> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < data.len() {
        let h = check_batch(&data[pos..])?;
        let mut rpos = pos + BATCH_HEADER_LEN;
        for i in 0..u64::from(h.record_count) {
            let len =
                u32::from_be_bytes(data[rpos..rpos + 4].try_into().expect("4 bytes")) as usize;
            rpos += RECORD_OVERHEAD;
            let offset = h.base_offset + i;
            if offset >= min_offset {
                out.push(Record {
                    offset,
                    timestamp_ms: h.timestamp_ms,
                    value: data.slice(rpos..rpos + len),
                });
            }
            rpos += len;
        }
        pos += h.total_len() as usize;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(records: &[&[u8]], base: u64) -> Vec<u8> {
        let mut recs = Vec::new();
        encode_records(&mut recs, records);
        let mut out = Vec::new();
        encode_batch(&mut out, base, 42, records.len() as u32, &recs);
        out
    }

    #[test]
    fn round_trip_and_filter() {
        let mut data = batch(&[b"a", b"bc"], 10);
        data.extend(batch(&[b"", b"def"], 12));
        let data = Bytes::from(data);
        let recs = decode_batches(&data, 11).unwrap();
        let got: Vec<(u64, &[u8])> = recs.iter().map(|r| (r.offset, &r.value[..])).collect();
        assert_eq!(
            got,
            vec![(11, &b"bc"[..]), (12, &b""[..]), (13, &b"def"[..])]
        );
        assert!(recs.iter().all(|r| r.timestamp_ms == 42));
    }

    #[test]
    fn every_single_byte_flip_is_detected() {
        let good = batch(&[b"hello", b"world"], 7);
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x5a;
            assert!(
                check_batch(&bad).is_err(),
                "flip at byte {i} went unnoticed"
            );
        }
    }

    #[test]
    fn torn_batch_is_truncated_error() {
        let good = batch(&[b"hello"], 0);
        for cut in 0..good.len() {
            assert!(check_batch(&good[..cut]).is_err(), "cut at {cut}");
        }
        assert!(check_batch(&good).is_ok());
    }

    #[test]
    fn framing_is_exact() {
        let mut recs = Vec::new();
        encode_records(&mut recs, &[&b"ab"[..], &b"c"[..]]);
        assert!(validate_records(&recs, 2).is_ok());
        assert_eq!(validate_records(&recs, 1), Err(BatchError::Framing));
        assert_eq!(validate_records(&recs, 3), Err(BatchError::Framing));
        assert_eq!(
            validate_records(&recs[..recs.len() - 1], 2),
            Err(BatchError::Framing)
        );
    }
}
