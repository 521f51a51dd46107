//! Frames bytes on a TCP stream: reads length-prefixed frames (refusing lengths past the cap
//! before allocating for them, bounding how long one frame may take, and taking room in the
//! shared frame budget before buffering a large one) and writes response frames in batches,
//! telling the connection's state whether the client is reading them.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio::time::Instant;

use super::budget::{ByteBudget, ResponseBudget};
use super::limits::{Limits, FRAME_BUDGET_WAIT, SMALL_FRAME};
use super::registry::ConnState;
use crate::protocol::{check_frame_len, DecodeError};

/// Why a connection stopped yielding frames.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// The socket failed.
    #[error("connection i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The peer announced a frame longer than the cap (or otherwise broke framing).
    #[error(transparent)]
    Framing(#[from] DecodeError),
    /// The peer closed the connection in the middle of a frame.
    #[error("connection closed inside a frame ({0} bytes buffered)")]
    TruncatedFrame(usize),
    /// No frame began before the idle deadline.
    #[error("no request before the idle deadline")]
    Idle,
    /// A frame began but did not complete in time (a client trickling bytes).
    #[error("a request frame was not complete {after:?} after it began ({got} bytes arrived)")]
    FrameTimeout { after: Duration, got: usize },
    /// A large frame found no room in the frame budget in time.
    #[error(
        "server busy: no room for a request frame of {len} bytes within {waited:?} \
         ({budget} bytes of large frames are being received); closing the connection"
    )]
    NoBudget {
        len: usize,
        waited: Duration,
        budget: u64,
        /// The refused request's correlation id and kind, when they had arrived.
        correlation_id: Option<u32>,
        kind: Option<u8>,
    },
}

/// A request frame's payload, holding its room in the frame budget until dropped.
#[derive(Debug)]
pub struct Frame {
    /// The bytes after the length prefix.
    pub payload: Bytes,
    /// Room in the frame budget (large frames only).
    pub budget: Option<OwnedSemaphorePermit>,
}

/// How frames are read: the per-frame timeout and the frame budget large frames draw from.
#[derive(Debug, Clone)]
pub struct FrameSettings {
    /// Once a frame's first byte arrived, the whole frame must arrive within this.
    pub timeout: Duration,
    /// Shared by every connection: bytes of frames larger than [`SMALL_FRAME`] being received.
    pub budget: ByteBudget,
    /// How long a large frame waits for room in `budget` before it is refused.
    pub budget_wait: Duration,
}

impl FrameSettings {
    /// The settings `limits` describe, drawing from `budget`.
    pub fn new(limits: &Limits, budget: ByteBudget) -> FrameSettings {
        FrameSettings {
            timeout: limits.frame_timeout(),
            budget,
            budget_wait: FRAME_BUDGET_WAIT,
        }
    }
}

impl Default for FrameSettings {
    fn default() -> FrameSettings {
        let limits = Limits::default();
        FrameSettings::new(&limits, ByteBudget::new(limits.frame_budget_bytes))
    }
}

/// A large frame being received into its own buffer, sized and paid for up front.
struct Large {
    buf: BytesMut,
    len: usize,
    permit: OwnedSemaphorePermit,
}

/// Reads frames from the read half of a connection.
pub struct FrameReader<R> {
    stream: R,
    /// Small frames, and the first bytes of every frame.
    buf: BytesMut,
    settings: FrameSettings,
    /// When the first byte of the frame being read arrived.
    started: Option<Instant>,
    /// Invariant: while set, `buf` is empty (its bytes moved into the large frame's buffer).
    large: Option<Large>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Wraps a byte stream.
    pub fn new(stream: R, settings: FrameSettings) -> FrameReader<R> {
        FrameReader {
            stream,
            buf: BytesMut::with_capacity(SMALL_FRAME),
            settings,
            started: None,
            large: None,
        }
    }

    /// The next frame's payload; `None` when the peer closed cleanly between frames;
    /// [`ConnectionError::Idle`] when no frame began by `idle_at`.
    ///
    /// Cancel-safe: every byte read is kept in `self`, so a frame interrupted by another
    /// branch of a `select!` continues on the next call (its deadline does not restart).
    pub async fn read_frame(
        &mut self,
        idle_at: Option<Instant>,
    ) -> Result<Option<Frame>, ConnectionError> {
        loop {
            if self.large.is_some() {
                if let Some(frame) = self.fill_large().await? {
                    return Ok(Some(frame));
                }
                continue;
            }
            let mut need = 4usize;
            if self.buf.len() >= 4 {
                let len = check_frame_len(u32::from_be_bytes(
                    self.buf[0..4].try_into().expect("4 bytes"),
                ))?;
                need = 4 + len;
                if self.buf.len() >= need {
                    self.buf.advance(4);
                    let payload = self.buf.split_to(len).freeze();
                    self.frame_done();
                    return Ok(Some(Frame {
                        payload,
                        budget: None,
                    }));
                }
                if len > SMALL_FRAME {
                    self.start_large(len).await?;
                    continue;
                }
            }
            if !self.read_small(need, idle_at).await? {
                return Ok(None);
            }
        }
    }

    /// Reads more of the large frame in progress: the frame once it is whole, None before.
    async fn fill_large(&mut self) -> Result<Option<Frame>, ConnectionError> {
        let deadline = self.frame_deadline();
        let large = self.large.as_mut().expect("a large frame in progress");
        if large.buf.len() == large.len {
            let large = self.large.take().expect("checked above");
            self.frame_done();
            return Ok(Some(Frame {
                payload: large.buf.freeze(),
                budget: Some(large.permit),
            }));
        }
        let want = large.len - large.buf.len();
        // Never past this frame: the next frame's bytes belong in `buf`.
        let mut room = (&mut large.buf).limit(want);
        let n = match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut room)).await {
            Ok(n) => n?,
            Err(_) => {
                return Err(ConnectionError::FrameTimeout {
                    after: self.settings.timeout,
                    got: 4 + large.buf.len(),
                })
            }
        };
        if n == 0 {
            return Err(ConnectionError::TruncatedFrame(4 + large.buf.len()));
        }
        Ok(None)
    }

    /// Reads what arrives into `buf`, toward `need` bytes (headers and small frames only: it
    /// grows by at most a small frame). False on a clean close between frames.
    async fn read_small(
        &mut self,
        need: usize,
        idle_at: Option<Instant>,
    ) -> Result<bool, ConnectionError> {
        let want = (need - self.buf.len()).clamp(4 << 10, SMALL_FRAME);
        self.buf.reserve(want);
        // Between frames the connection may idle until `idle_at`; inside one, the frame timeout.
        let deadline = if self.buf.is_empty() {
            idle_at
        } else {
            Some(self.frame_deadline())
        };
        let read = self.stream.read_buf(&mut self.buf);
        let n = match deadline {
            None => read.await?,
            Some(d) => match tokio::time::timeout_at(d, read).await {
                Ok(n) => n?,
                Err(_) if self.buf.is_empty() => return Err(ConnectionError::Idle),
                Err(_) => {
                    return Err(ConnectionError::FrameTimeout {
                        after: self.settings.timeout,
                        got: self.buf.len(),
                    })
                }
            },
        };
        if n == 0 {
            return match self.buf.is_empty() {
                true => Ok(false),
                false => Err(ConnectionError::TruncatedFrame(self.buf.len())),
            };
        }
        self.started.get_or_insert_with(Instant::now);
        Ok(true)
    }

    /// When the frame being read must be complete.
    fn frame_deadline(&mut self) -> Instant {
        *self.started.get_or_insert_with(Instant::now) + self.settings.timeout
    }

    /// A frame was returned: the clock of the next one starts with its first byte (which may
    /// already be buffered).
    fn frame_done(&mut self) {
        self.started = (!self.buf.is_empty()).then(Instant::now);
    }

    /// Takes room for a `len`-byte frame in the frame budget (bounded wait), then moves what
    /// arrived of it into a buffer of its own.
    async fn start_large(&mut self, len: usize) -> Result<(), ConnectionError> {
        let deadline = self.frame_deadline();
        let wait_until = deadline.min(Instant::now() + self.settings.budget_wait);
        let started = Instant::now();
        let permit =
            match tokio::time::timeout_at(wait_until, self.settings.budget.acquire(len as u64))
                .await
            {
                Ok(p) => p,
                Err(_) => {
                    let id = |r: std::ops::Range<usize>| self.buf.get(r);
                    return Err(ConnectionError::NoBudget {
                        len,
                        waited: started.elapsed(),
                        budget: self.settings.budget.capacity(),
                        correlation_id: id(4..8)
                            .map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes"))),
                        kind: id(8..9).map(|b| b[0]),
                    });
                }
            };
        let mut buf = BytesMut::with_capacity(len);
        let have = (self.buf.len() - 4).min(len);
        buf.extend_from_slice(&self.buf[4..4 + have]);
        self.buf.advance(4 + have);
        debug_assert!(self.buf.is_empty(), "a large frame was not wholly buffered");
        self.large = Some(Large { buf, len, permit });
        Ok(())
    }
}

/// One response for the writer: its encoded head and, for a fetch, the batches as read (not
/// copied into the head), holding their response budget until written.
pub struct Outgoing {
    /// The length prefix and everything but a fetch's batches.
    pub head: Vec<u8>,
    /// A fetch's batches (empty otherwise).
    pub body: Bytes,
    /// Room the body holds in the connection's and the server's response budgets.
    pub budget: Option<ResponseBudget>,
}

impl Outgoing {
    /// A response encoded whole.
    pub fn frame(head: Vec<u8>) -> Outgoing {
        Outgoing {
            head,
            body: Bytes::new(),
            budget: None,
        }
    }
}

/// Bytes of a body written per call, so progress (a reading client) is seen within a large
/// response, not only at its end.
const WRITE_CHUNK: usize = 256 << 10;
/// The writer's buffer, which batches small responses (acks) into few syscalls.
const WRITE_BUFFER: usize = 64 << 10;

async fn write_one<W: AsyncWrite + Unpin>(
    out: &mut BufWriter<W>,
    o: Outgoing,
    conn: &ConnState,
) -> std::io::Result<()> {
    out.write_all(&o.head).await?;
    for chunk in o.body.chunks(WRITE_CHUNK) {
        out.write_all(chunk).await?;
        conn.output_progress();
    }
    // `o` drops here, giving back its budget: its bytes are in the socket (or the buffer).
    Ok(())
}

/// Writes every response received on `rx` to `stream`, flushing whenever no more are queued,
/// and tells `conn` whether the socket takes them. Ends when every sender is gone or the
/// socket fails.
pub async fn write_frames<W: AsyncWrite + Unpin>(
    stream: W,
    mut rx: mpsc::Receiver<Outgoing>,
    conn: &ConnState,
) -> std::io::Result<()> {
    let mut out = BufWriter::with_capacity(WRITE_BUFFER, stream);
    while let Some(first) = rx.recv().await {
        conn.output_pending();
        write_one(&mut out, first, conn).await?;
        while let Ok(next) = rx.try_recv() {
            write_one(&mut out, next, conn).await?;
        }
        out.flush().await?;
        conn.output_drained();
    }
    out.flush().await?;
    out.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::MAX_FRAME_LEN;

    fn settings(budget: u64, timeout: Duration, budget_wait: Duration) -> FrameSettings {
        FrameSettings {
            timeout,
            budget: ByteBudget::new(budget),
            budget_wait,
        }
    }

    #[tokio::test]
    async fn frames_split_across_reads_and_a_hostile_length() {
        let (mut a, b) = tokio::io::duplex(64);
        let mut reader = FrameReader::new(b, FrameSettings::default());
        let writer = tokio::spawn(async move {
            a.write_all(&[0, 0, 0, 3, b'a', b'b']).await.unwrap();
            a.write_all(&[b'c', 0, 0, 0, 0]).await.unwrap();
            a.write_all(&(MAX_FRAME_LEN + 1).to_be_bytes())
                .await
                .unwrap();
            a
        });
        let f = reader.read_frame(None).await.unwrap().unwrap();
        assert_eq!((&f.payload[..], f.budget.is_none()), (&b"abc"[..], true));
        assert_eq!(
            reader.read_frame(None).await.unwrap().unwrap().payload,
            &b""[..]
        );
        assert!(matches!(
            reader.read_frame(None).await,
            Err(ConnectionError::Framing(_))
        ));
        drop(writer.await.unwrap());
    }

    #[tokio::test]
    async fn eof_inside_a_frame_is_an_error() {
        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(&[0, 0, 0, 9, 1]).await.unwrap();
        drop(a);
        let mut reader = FrameReader::new(b, FrameSettings::default());
        assert!(matches!(
            reader.read_frame(None).await,
            Err(ConnectionError::TruncatedFrame(5))
        ));
    }

    #[tokio::test]
    async fn a_large_frame_holds_budget_until_dropped_and_the_next_frame_survives() {
        let (mut a, b) = tokio::io::duplex(1 << 16);
        let s = settings(1 << 20, Duration::from_secs(10), Duration::from_secs(1));
        let budget = s.budget.clone();
        let mut reader = FrameReader::new(b, s);
        let len = SMALL_FRAME + 1000;
        let writer = tokio::spawn(async move {
            let mut bytes = (len as u32).to_be_bytes().to_vec();
            bytes.extend((0..len).map(|i| i as u8));
            bytes.extend([0, 0, 0, 2, b'o', b'k']);
            a.write_all(&bytes).await.unwrap();
            a
        });
        let f = reader.read_frame(None).await.unwrap().unwrap();
        assert_eq!(f.payload.len(), len);
        assert!(f.payload.iter().enumerate().all(|(i, b)| *b == i as u8));
        assert_eq!(budget.available(), (1 << 20) - len as u64);
        drop(f);
        assert_eq!(budget.available(), 1 << 20);
        let f = reader.read_frame(None).await.unwrap().unwrap();
        assert_eq!(&f.payload[..], b"ok");
        drop(writer.await.unwrap());
    }

    #[tokio::test]
    async fn a_large_frame_without_room_is_refused_naming_its_request() {
        let (mut a, b) = tokio::io::duplex(1 << 16);
        let s = settings(1 << 20, Duration::from_secs(10), Duration::from_millis(100));
        let held = s.budget.acquire(1 << 20).await;
        let mut reader = FrameReader::new(b, s);
        let len = SMALL_FRAME + 1;
        let mut bytes = (len as u32).to_be_bytes().to_vec();
        bytes.extend([0, 0, 0, 42, 2, 0, 0]);
        a.write_all(&bytes).await.unwrap();
        let e = reader.read_frame(None).await.unwrap_err();
        assert!(
            matches!(
                e,
                ConnectionError::NoBudget {
                    len: l,
                    correlation_id: Some(42),
                    kind: Some(2),
                    ..
                } if l == len
            ),
            "{e:?}"
        );
        drop(held);
    }

    #[tokio::test]
    async fn idle_and_trickled_frames_time_out() {
        let (mut a, b) = tokio::io::duplex(64);
        let s = settings(1 << 20, Duration::from_millis(200), Duration::from_secs(1));
        let mut reader = FrameReader::new(b, s);
        let at = Instant::now() + Duration::from_millis(50);
        assert!(matches!(
            reader.read_frame(Some(at)).await,
            Err(ConnectionError::Idle)
        ));
        // One byte of a frame, then nothing: the frame deadline, not the idle one, applies.
        a.write_all(&[0, 0]).await.unwrap();
        let start = std::time::Instant::now();
        let far = Instant::now() + Duration::from_secs(30);
        assert!(matches!(
            reader.read_frame(Some(far)).await,
            Err(ConnectionError::FrameTimeout { got: 2, .. })
        ));
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}
