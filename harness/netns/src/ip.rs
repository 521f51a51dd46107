//! The `ip` commands the network needs (iproute2), each bounded in time, and the namespace
//! chores around them: listing, killing what runs inside, deleting, and sweeping namespaces
//! whose run died.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::NetError;

/// How long one `ip` command may take.
const IP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long processes killed inside a namespace may take to go.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `ip ARGS…`, returning its standard output; an error names the command and says why.
pub fn ip(args: &[&str]) -> Result<String, NetError> {
    let shown = || format!("ip {}", args.join(" "));
    let mut child = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| NetError::Command(shown(), format!("cannot run ip: {e}")))?;
    let deadline = Instant::now() + IP_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(NetError::Command(
                    shown(),
                    format!("no answer within {}s", IP_TIMEOUT.as_secs()),
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => return Err(NetError::Command(shown(), e.to_string())),
        }
    };
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    if status.success() {
        Ok(out)
    } else {
        Err(NetError::Command(
            shown(),
            format!("{status}: {}", err.trim()),
        ))
    }
}

/// The names of every network namespace `ip netns` knows.
pub fn namespaces() -> Result<Vec<String>, NetError> {
    Ok(ip(&["netns", "list"])?
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect())
}

/// Pids of the processes inside namespace `ns`.
pub fn pids_in(ns: &str) -> Result<Vec<i32>, NetError> {
    Ok(ip(&["netns", "pids", ns])?
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect())
}

/// Whether `pid` is alive (a zombie is not).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        let state = s.rsplit(") ").next().and_then(|r| r.chars().next());
        !matches!(state, None | Some('Z') | Some('X'))
    })
}

/// SIGKILLs every process in `ns` (a stopped one too) and waits, bounded, for them to go.
pub fn kill_all_in(ns: &str) -> Result<(), NetError> {
    let deadline = Instant::now() + KILL_TIMEOUT;
    loop {
        let pids: Vec<i32> = pids_in(ns)?.into_iter().filter(|&p| alive(p)).collect();
        if pids.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(NetError::Command(
                format!("ip netns pids {ns}"),
                format!(
                    "processes {pids:?} still alive {}s after SIGKILL",
                    KILL_TIMEOUT.as_secs()
                ),
            ));
        }
        for p in pids {
            // SAFETY: kill(2) with a pid read from the namespace.
            unsafe { libc::kill(p, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Kills what runs in `ns`, then deletes it; a namespace already gone is fine.
pub fn delete_namespace(ns: &str) -> Result<(), NetError> {
    if !namespaces()?.iter().any(|n| n == ns) {
        return Ok(());
    }
    kill_all_in(ns)?;
    ip(&["netns", "delete", ns]).map(|_| ())
}

/// The interfaces in namespace `ns` other than `lo`.
pub fn links_in(ns: &str) -> Result<Vec<String>, NetError> {
    Ok(ip(&["-n", ns, "-o", "link", "show"])?
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap_or("").to_owned())
        .filter(|n| !n.is_empty() && n != "lo")
        .collect())
}

/// Whether `name` is one of ours: `<prefix><tag>-n<digits>`.
pub fn is_ours(name: &str) -> bool {
    name.strip_prefix(crate::PREFIX)
        .and_then(|rest| rest.rsplit_once("-n"))
        .is_some_and(|(tag, k)| {
            !tag.is_empty() && !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit())
        })
}

/// Removes our namespaces whose run died: their switch's device (which lives only while its
/// run holds it open) is gone, so nothing but `lo` is left in them. Kills what still runs
/// inside (a broker of that run). Only with the creation lock held ([`crate::sweep_stale`]), so
/// a namespace being set up is not taken for a dead one. Returns the names removed.
pub(crate) fn sweep_unlocked() -> Result<Vec<String>, NetError> {
    let mut removed = Vec::new();
    for ns in namespaces()?.into_iter().filter(|n| is_ours(n)) {
        if links_in(&ns)?.is_empty() {
            tracing::warn!("mq-netns: removing namespace {ns}, left by a run that died");
            delete_namespace(&ns)?;
            removed.push(ns);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_namespaces_are_recognised_by_prefix_and_node_suffix() {
        assert!(is_ours("mqb-20261201T1Z-kafka-n1"));
        assert!(is_ours("mqb-x-n12"));
        assert!(!is_ours("mqb--n1"));
        assert!(!is_ours("mqb-x-n"));
        assert!(!is_ours("mqb-x-n1a"));
        assert!(!is_ours("other-x-n1"));
        assert!(!is_ours("mqb-x"));
    }
}
