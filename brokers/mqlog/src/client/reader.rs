//! The client's reader thread: decodes response frames off the socket into a bounded
//! channel, so the caller's thread only encodes and writes.

use std::io::{BufReader, Read};
use std::net::TcpStream;
use std::sync::mpsc::SyncSender;

use bytes::Bytes;

use super::error::ClientError;
use crate::protocol::{check_frame_len, decode_response, Response};

/// A decoded response (correlation id, kind, response), or why the connection ended.
pub(super) type Incoming = std::result::Result<(u32, u8, Response), ClientError>;

/// Responses buffered between the reader thread and the caller.
pub(super) const INCOMING_QUEUE: usize = 1 << 16;

pub(super) fn read_loop(stream: TcpStream, tx: SyncSender<Incoming>) {
    let mut r = BufReader::with_capacity(1 << 20, stream);
    loop {
        let mut len = [0u8; 4];
        if let Err(e) = r.read_exact(&mut len) {
            let _ = tx.send(Err(ClientError::Disconnected(e.to_string())));
            return;
        }
        let len = match check_frame_len(u32::from_be_bytes(len)) {
            Ok(l) => l,
            Err(e) => {
                let _ = tx.send(Err(ClientError::Protocol(e.to_string())));
                return;
            }
        };
        let mut payload = vec![0u8; len];
        if let Err(e) = r.read_exact(&mut payload) {
            let _ = tx.send(Err(ClientError::Disconnected(format!(
                "inside a frame: {e}"
            ))));
            return;
        }
        let msg =
            decode_response(Bytes::from(payload)).map_err(|e| ClientError::Protocol(e.to_string()));
        let stop = msg.is_err();
        if tx.send(msg).is_err() || stop {
            return;
        }
    }
}
