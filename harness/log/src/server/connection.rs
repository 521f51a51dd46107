//! Frames bytes on a TCP stream: reads length-prefixed frames (refusing lengths past the cap
//! before allocating for them) and writes response frames in batches.

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;

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
}

/// Reads frames from the read half of a connection.
pub struct FrameReader<R> {
    stream: R,
    buf: BytesMut,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Wraps a byte stream.
    pub fn new(stream: R) -> FrameReader<R> {
        FrameReader {
            stream,
            buf: BytesMut::with_capacity(64 << 10),
        }
    }

    /// The next frame's payload; `None` when the peer closed cleanly between frames.
    pub async fn read_frame(&mut self) -> Result<Option<Bytes>, ConnectionError> {
        loop {
            let mut need = 4usize;
            if self.buf.len() >= 4 {
                let len = check_frame_len(u32::from_be_bytes(
                    self.buf[0..4].try_into().expect("4 bytes"),
                ))?;
                need = 4 + len;
                if self.buf.len() >= need {
                    self.buf.advance(4);
                    return Ok(Some(self.buf.split_to(len).freeze()));
                }
            }
            // Grow with what arrives, not with what the header claims.
            let want = (need - self.buf.len()).clamp(64 << 10, 1 << 20);
            self.buf.reserve(want);
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(ConnectionError::TruncatedFrame(self.buf.len()))
                };
            }
        }
    }
}

/// Writes every frame received on `rx` to `stream`, flushing whenever no more are queued.
/// Ends when every sender is gone or the socket fails.
pub async fn write_frames<W: AsyncWrite + Unpin>(
    stream: W,
    mut rx: mpsc::Receiver<Vec<u8>>,
) -> std::io::Result<()> {
    let mut out = BufWriter::with_capacity(256 << 10, stream);
    while let Some(frame) = rx.recv().await {
        out.write_all(&frame).await?;
        while let Ok(frame) = rx.try_recv() {
            out.write_all(&frame).await?;
        }
        out.flush().await?;
    }
    out.flush().await?;
    out.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::MAX_FRAME_LEN;

    #[tokio::test]
    async fn frames_split_across_reads_and_a_hostile_length() {
        let (mut a, b) = tokio::io::duplex(64);
        let mut reader = FrameReader::new(b);
        let writer = tokio::spawn(async move {
            a.write_all(&[0, 0, 0, 3, b'a', b'b']).await.unwrap();
            a.write_all(&[b'c', 0, 0, 0, 0]).await.unwrap();
            a.write_all(&(MAX_FRAME_LEN + 1).to_be_bytes())
                .await
                .unwrap();
            a
        });
        assert_eq!(reader.read_frame().await.unwrap().unwrap(), &b"abc"[..]);
        assert_eq!(reader.read_frame().await.unwrap().unwrap(), &b""[..]);
        assert!(matches!(
            reader.read_frame().await,
            Err(ConnectionError::Framing(_))
        ));
        drop(writer.await.unwrap());
    }

    #[tokio::test]
    async fn eof_inside_a_frame_is_an_error() {
        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(&[0, 0, 0, 9, 1]).await.unwrap();
        drop(a);
        let mut reader = FrameReader::new(b);
        assert!(matches!(
            reader.read_frame().await,
            Err(ConnectionError::TruncatedFrame(5))
        ));
    }
}
