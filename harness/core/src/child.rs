//! Child processes that belong to a run: workers and managed servers. They leave Ctrl-C to the
//! coordinator (which stops them in order and writes the partial results) and die with it if it
//! dies, so nothing of a run outlives it.

use std::os::unix::process::CommandExt;
use std::process::Command;

/// Makes `cmd`'s process ignore SIGINT and receive SIGKILL when its parent dies.
pub fn tie_to_parent(cmd: &mut Command) -> &mut Command {
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_IGN);
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        })
    }
}
