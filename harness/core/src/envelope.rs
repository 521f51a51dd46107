//! The fixed header at the start of every payload: who sent it, in which order, and when.
//!
//! Layout (32 bytes, little endian):
//! `magic u16 | version u8 | flags u8 | run id u32 | producer u32 | key u32 | seq u64 | send time u64`.
//! The rest of the payload, up to `message_size`, is padding.

use crate::ids::{Key, ProducerId, Seq};

/// Size of the header; the smallest valid `message_size`.
pub const ENVELOPE_LEN: usize = 32;
const MAGIC: u16 = 0x4D51; // "MQ"
const VERSION: u8 = 1;

/// What the header says about one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope {
    pub run_id: u32,
    pub producer: ProducerId,
    pub key: Key,
    pub seq: Seq,
    /// Intended send time (monotonic ns): at a fixed rate the scheduled time, not the actual one.
    pub send_ns: u64,
}

/// Why a payload is not one of this run's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("payload of {0} bytes is shorter than the {ENVELOPE_LEN}-byte envelope")]
    Short(usize),
    #[error("payload does not start with the mq-bench magic")]
    BadMagic,
    #[error("envelope version {0} is not {VERSION}")]
    BadVersion(u8),
    #[error("message of run {found:#x}, expected run {expected:#x}")]
    ForeignRun { found: u32, expected: u32 },
}

impl Envelope {
    /// Writes the header into the first [`ENVELOPE_LEN`] bytes of `buf`.
    #[inline]
    pub fn encode(&self, buf: &mut [u8]) {
        let b = &mut buf[..ENVELOPE_LEN];
        b[0..2].copy_from_slice(&MAGIC.to_le_bytes());
        b[2] = VERSION;
        b[3] = 0;
        b[4..8].copy_from_slice(&self.run_id.to_le_bytes());
        b[8..12].copy_from_slice(&(self.producer.0 as u32).to_le_bytes());
        b[12..16].copy_from_slice(&self.key.0.to_le_bytes());
        b[16..24].copy_from_slice(&self.seq.0.to_le_bytes());
        b[24..32].copy_from_slice(&self.send_ns.to_le_bytes());
    }

    /// Reads the header of `buf`, checking it belongs to run `run_id`.
    #[inline]
    pub fn decode(buf: &[u8], run_id: u32) -> Result<Envelope, EnvelopeError> {
        if buf.len() < ENVELOPE_LEN {
            return Err(EnvelopeError::Short(buf.len()));
        }
        let u32_at = |i: usize| u32::from_le_bytes(buf[i..i + 4].try_into().unwrap());
        let u64_at = |i: usize| u64::from_le_bytes(buf[i..i + 8].try_into().unwrap());
        if u16::from_le_bytes([buf[0], buf[1]]) != MAGIC {
            return Err(EnvelopeError::BadMagic);
        }
        if buf[2] != VERSION {
            return Err(EnvelopeError::BadVersion(buf[2]));
        }
        let found = u32_at(4);
        if found != run_id {
            return Err(EnvelopeError::ForeignRun {
                found,
                expected: run_id,
            });
        }
        let producer = u32_at(8);
        Ok(Envelope {
            run_id: found,
            producer: ProducerId(producer.min(u16::MAX as u32) as u16),
            key: Key(u32_at(12)),
            seq: Seq(u64_at(16)),
            send_ns: u64_at(24),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_foreign_payloads() {
        let e = Envelope {
            run_id: 0xdead_beef,
            producer: ProducerId(7),
            key: Key(3),
            seq: Seq(1 << 40),
            send_ns: 123_456_789,
        };
        let mut buf = vec![b'x'; 100];
        e.encode(&mut buf);
        assert_eq!(Envelope::decode(&buf, 0xdead_beef), Ok(e));
        assert_eq!(
            Envelope::decode(&buf, 1),
            Err(EnvelopeError::ForeignRun {
                found: 0xdead_beef,
                expected: 1
            })
        );
        assert_eq!(
            Envelope::decode(&buf[..31], 1),
            Err(EnvelopeError::Short(31))
        );
        buf[0] = 0;
        assert_eq!(
            Envelope::decode(&buf, 0xdead_beef),
            Err(EnvelopeError::BadMagic)
        );
    }
}
