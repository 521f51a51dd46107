//! Thin, safe wrappers over msgget / msgsnd / msgrcv / msgctl.

use std::io;

/// A System V message queue id. Copy: the kernel owns the queue, not this handle.
#[derive(Debug, Clone, Copy)]
pub struct Queue(i32);

/// What `msgctl(IPC_STAT)` reports.
#[derive(Debug, Clone, Copy)]
pub struct Stat {
    pub messages: u64,
    pub bytes: u64,
    pub qbytes: u64,
}

/// A `kernel.msg*` limit from /proc/sys/kernel (msgmax, msgmnb, msgmni).
pub fn kernel_limit(name: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/sys/kernel/{name}"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl Queue {
    /// A fresh private queue (`IPC_PRIVATE`), mode 0600.
    pub fn create() -> io::Result<Queue> {
        // SAFETY: plain syscall with constant arguments.
        let id = unsafe { libc::msgget(libc::IPC_PRIVATE, libc::IPC_CREAT | 0o600) };
        check(id).map(|_| Queue(id))
    }

    pub fn from_id(id: i32) -> Queue {
        Queue(id)
    }

    pub fn id(&self) -> i32 {
        self.0
    }

    pub fn stat(&self) -> io::Result<Stat> {
        // SAFETY: msqid_ds is plain data; msgctl fills it.
        let mut ds: libc::msqid_ds = unsafe { std::mem::zeroed() };
        check(unsafe { libc::msgctl(self.0, libc::IPC_STAT, &mut ds) })?;
        Ok(Stat {
            messages: ds.msg_qnum,
            bytes: ds.__msg_cbytes,
            qbytes: ds.msg_qbytes,
        })
    }

    /// Sets the queue's capacity in bytes (EPERM above kernel.msgmnb without CAP_SYS_RESOURCE).
    pub fn set_qbytes(&self, bytes: u64) -> io::Result<()> {
        // SAFETY: as in `stat`; IPC_SET reads the struct we filled from IPC_STAT.
        let mut ds: libc::msqid_ds = unsafe { std::mem::zeroed() };
        check(unsafe { libc::msgctl(self.0, libc::IPC_STAT, &mut ds) })?;
        ds.msg_qbytes = bytes;
        check(unsafe { libc::msgctl(self.0, libc::IPC_SET, &mut ds) })
    }

    /// Removes the queue (`IPC_RMID`); an already removed queue is not an error.
    pub fn remove(&self) -> io::Result<()> {
        // SAFETY: IPC_RMID ignores the buffer.
        match check(unsafe { libc::msgctl(self.0, libc::IPC_RMID, std::ptr::null_mut()) }) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EIDRM)) => Ok(()),
            r => r,
        }
    }

    /// Sends a message already laid out as msgsnd wants it: the type in the first 8 bytes
    /// (native order), the body after them. Blocks while the queue is full.
    #[inline]
    pub fn send_framed(&self, frame: &[u8]) -> io::Result<()> {
        let Some(body_len) = frame.len().checked_sub(8) else {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        };
        // SAFETY: frame holds a long followed by body_len bytes, as msgsnd expects. The raw
        // system call: libc's wrapper is a cancellation point, and sets up and tears down
        // cancellation around every call (bench never cancels a thread).
        let rc = unsafe {
            libc::syscall(
                libc::SYS_msgsnd,
                libc::c_long::from(self.0),
                frame.as_ptr(),
                body_len,
                0 as libc::c_long,
            )
        };
        check(rc as libc::c_int)
    }

    /// Takes one message of type `mtype` (0: any) into `buf` (8 bytes of type, then the body).
    /// Returns its type and body length; `None` when `wait` is false and nothing is there.
    #[inline]
    pub fn recv(&self, mtype: i64, buf: &mut [u8], wait: bool) -> io::Result<Option<(i64, usize)>> {
        let flags = if wait { 0 } else { libc::IPC_NOWAIT };
        // SAFETY: buf has room for a long plus buf.len() - 8 bytes of body. The raw system
        // call, as in `send`.
        let n = unsafe {
            libc::syscall(
                libc::SYS_msgrcv,
                libc::c_long::from(self.0),
                buf.as_mut_ptr(),
                buf.len() - 8,
                mtype as libc::c_long,
                libc::c_long::from(flags),
            )
        };
        if n == -1 {
            let e = io::Error::last_os_error();
            return if e.raw_os_error() == Some(libc::ENOMSG) {
                Ok(None)
            } else {
                Err(e)
            };
        }
        let t = i64::from_ne_bytes(buf[..8].try_into().unwrap());
        Ok(Some((t, n as usize)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(mtype: i64, body: &[u8]) -> Vec<u8> {
        [&mtype.to_ne_bytes()[..], body].concat()
    }

    #[test]
    fn send_recv_by_type_stat_and_remove() {
        let q = Queue::create().unwrap();
        q.send_framed(&frame(2, b"two")).unwrap();
        q.send_framed(&frame(1, b"one")).unwrap();
        let e = q.send_framed(&[1, 0, 0]).unwrap_err();
        assert_eq!(
            e.raw_os_error(),
            Some(libc::EINVAL),
            "a frame shorter than its type"
        );
        let s = q.stat().unwrap();
        assert_eq!((s.messages, s.bytes), (2, 6));
        let mut buf = vec![0u8; 8 + 16];
        assert_eq!(q.recv(1, &mut buf, false).unwrap(), Some((1, 3)));
        assert_eq!(&buf[8..11], b"one");
        assert_eq!(q.recv(1, &mut buf, false).unwrap(), None);
        assert_eq!(q.recv(0, &mut buf, false).unwrap(), Some((2, 3)));
        q.remove().unwrap();
        q.remove().unwrap();
        assert!(q.stat().is_err());
    }
}
