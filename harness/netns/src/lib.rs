//! mq-netns: a private network for a managed cluster's nodes, so that faults can cut, delay
//! and drop the traffic between them as real networks do.
//!
//! Each node gets its own network namespace (`mqb-<tag>-n<k>`) holding one interface with
//! address `10.213.N.k/24`; the host side (where the clients run) gets `10.213.N.254` on
//! interface `mqb<N>h`; `N` is the first subnet free on this machine. Every interface is a TUN
//! device whose other end is a switch thread in this process ([`switch`]), which carries out
//! the faults ([`rules`]): this kernel has no netem and this machine no netfilter tools, and a
//! link of our own needs neither. [`Network`] removes everything on drop (killing what still
//! runs in its namespaces); the devices vanish by themselves when the process dies, and the
//! next network created sweeps namespaces such a death left behind ([`sweep_stale`]).

pub mod ip;
pub mod rules;
mod switch;
pub mod tun;

use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::sync::Arc;

pub use rules::{Endpoint, Shape};
pub use switch::Stats;

use switch::{Port, Shared, Switch};
use tun::Tun;

/// Every namespace of ours starts with this.
pub const PREFIX: &str = "mqb-";
/// Our subnets are `10.213.N.0/24`.
const NET: [u8; 2] = [10, 213];
/// The host side's last address byte.
const HOST: u8 = 254;
/// Most nodes a network holds.
pub const MAX_NODES: u8 = 16;
/// Longest run tag kept in a namespace's name.
const MAX_TAG: usize = 100;

/// Why the network could not be made, changed or removed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("{0}: {1}")]
    Command(String, String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> NetError {
    move |source| NetError::Io {
        what: what.into(),
        source,
    }
}

/// Whether this process may build networks: root (or CAP_NET_ADMIN and CAP_SYS_ADMIN: `ip
/// netns add` mounts), `ip` (iproute2) and `/dev/net/tun`. The error says what is missing.
pub fn check() -> Result<(), String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    capable(&status)?;
    if let Err(e) = ip::ip(&["-V"]) {
        return Err(format!(
            "{e} (network namespaces need iproute2: apt-get install iproute2)"
        ));
    }
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .map(drop)
        .map_err(|e| {
            format!("cannot open /dev/net/tun: {e} (the kernel needs TUN devices, CONFIG_TUN)")
        })
}

/// Whether the effective capabilities in `/proc/self/status` text allow building networks.
fn capable(status: &str) -> Result<(), String> {
    const NET_ADMIN: u32 = 12;
    const SYS_ADMIN: u32 = 21;
    let caps = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    if caps & (1 << NET_ADMIN) == 0 || caps & (1 << SYS_ADMIN) == 0 {
        return Err("network namespaces need root (or CAP_NET_ADMIN and CAP_SYS_ADMIN: `ip netns add` mounts /run/netns); run bench as root".into());
    }
    Ok(())
}

/// Keeps `tag` to characters safe in a namespace's name, at most [`MAX_TAG`] of them.
fn clean_tag(tag: &str) -> String {
    let t: String = tag
        .chars()
        .map(|c| match c.is_ascii_alphanumeric() || "-_.".contains(c) {
            true => c,
            false => '_',
        })
        .take(MAX_TAG)
        .collect();
    if t.is_empty() {
        "net".into()
    } else {
        t
    }
}

/// A held exclusive lock on the machine-wide creation lock file (released on drop).
struct CreationLock {
    _file: File,
}

impl CreationLock {
    fn take() -> Result<CreationLock, NetError> {
        let path = std::env::temp_dir().join("mq-bench-netns.lock");
        let f = File::create(&path).map_err(io(format!("creating {}", path.display())))?;
        // Bounded: try for 30 s, then say who we waited for.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            // SAFETY: flock(2) on a file we hold open.
            if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                return Ok(CreationLock { _file: f });
            }
            if std::time::Instant::now() >= deadline {
                return Err(NetError::Unavailable(format!(
                    "another process held {} for 30s",
                    path.display()
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// Removes the namespaces of runs that died (see [`ip`]), and what still runs in them; the
/// names removed. [`Network::create`] does it first, so a dead run's leftovers last only until
/// the next network.
pub fn sweep_stale() -> Result<Vec<String>, NetError> {
    let _lock = CreationLock::take()?;
    ip::sweep_unlocked()
}

/// The third byte of the first `10.213.N.0/24` that no address or route of the host uses.
fn free_subnet() -> Result<u8, NetError> {
    let used = ip::ip(&["-4", "-o", "addr", "show"])? + &ip::ip(&["-4", "route", "show"])?;
    let links = ip::ip(&["-o", "link", "show"])?;
    (1..HOST)
        .find(|n| {
            !used.contains(&format!("{}.{}.{n}.", NET[0], NET[1]))
                && !links.contains(&format!(": mqb{n}h"))
        })
        .ok_or_else(|| NetError::Unavailable("every subnet 10.213.1-253.0/24 is in use".into()))
}

/// A private network of `nodes` namespaces and the host side, with its switch running.
pub struct Network {
    tag: String,
    subnet: [u8; 3],
    nodes: u8,
    /// Namespaces created so far (all of them once made).
    namespaces: Vec<String>,
    shared: Arc<Shared>,
    switch: Option<Switch>,
}

impl Network {
    /// Makes the network for run `tag`: namespaces `mqb-<tag>-n1` … `-n<nodes>`, addresses,
    /// and the switch between them. On error everything made so far is removed.
    pub fn create(tag: &str, nodes: u8) -> Result<Network, NetError> {
        check().map_err(NetError::Unavailable)?;
        if !(1..=MAX_NODES).contains(&nodes) {
            return Err(NetError::Unavailable(format!(
                "{nodes} nodes: a network holds 1 to {MAX_NODES}"
            )));
        }
        let _lock = CreationLock::take()?;
        ip::sweep_unlocked()?;
        let n = free_subnet()?;
        let mut net = Network {
            tag: clean_tag(tag),
            subnet: [NET[0], NET[1], n],
            nodes,
            namespaces: Vec::new(),
            shared: Arc::new(Shared::default()),
            switch: None,
        };
        let mut ports = vec![Port {
            end: Endpoint::Host,
            tun: net.host_side()?,
        }];
        for k in 1..=nodes {
            ports.push(Port {
                end: Endpoint::Node(k),
                tun: net.node_side(k)?,
            });
        }
        let switch = Switch::start(ports, net.subnet, net.shared.clone())
            .map_err(io("starting the switch thread"))?;
        net.switch = Some(switch);
        tracing::info!(
            "mq-netns: network {}.{}.{}.0/24 with {nodes} namespaces {}",
            net.subnet[0],
            net.subnet[1],
            n,
            net.namespace(1)
        );
        Ok(net)
    }

    fn cidr(&self, last: u8) -> String {
        let [a, b, c] = self.subnet;
        format!("{a}.{b}.{c}.{last}/24")
    }

    /// The host side's device, addressed and up.
    fn host_side(&self) -> Result<Tun, NetError> {
        let name = format!("mqb{}h", self.subnet[2]);
        let tun = Tun::open(&name).map_err(io(format!("creating TUN device {name}")))?;
        ip::ip(&["addr", "add", &self.cidr(HOST), "dev", &name])?;
        ip::ip(&["link", "set", &name, "up"])?;
        Ok(tun)
    }

    /// Node `k`'s namespace and its device inside it (`eth0`), addressed and up.
    fn node_side(&mut self, k: u8) -> Result<Tun, NetError> {
        let ns = format!("{PREFIX}{}-n{k}", self.tag);
        if ip::namespaces()?.contains(&ns) {
            return Err(NetError::Unavailable(format!(
                "network namespace {ns} exists and is in use by another run with the same tag"
            )));
        }
        ip::ip(&["netns", "add", &ns])?;
        self.namespaces.push(ns.clone());
        let name = format!("mqb{}n{k}", self.subnet[2]);
        let tun = Tun::open(&name).map_err(io(format!("creating TUN device {name}")))?;
        ip::ip(&["link", "set", &name, "netns", &ns])?;
        ip::ip(&["-n", &ns, "link", "set", &name, "name", "eth0"])?;
        ip::ip(&["-n", &ns, "addr", "add", &self.cidr(k), "dev", "eth0"])?;
        ip::ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        ip::ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        Ok(tun)
    }

    /// How many nodes it has.
    pub fn nodes(&self) -> u8 {
        self.nodes
    }

    /// Node `k`'s address (1-based).
    pub fn node_addr(&self, k: u8) -> Ipv4Addr {
        let [a, b, c] = self.subnet;
        Ipv4Addr::new(a, b, c, k)
    }

    /// The host side's address: where clients' connections come from.
    pub fn host_addr(&self) -> Ipv4Addr {
        let [a, b, c] = self.subnet;
        Ipv4Addr::new(a, b, c, HOST)
    }

    /// Node `k`'s namespace (run its processes with `ip netns exec <it> …`).
    pub fn namespace(&self, k: u8) -> String {
        format!("{PREFIX}{}-n{k}", self.tag)
    }

    /// Every namespace made, in node order.
    pub fn namespaces(&self) -> &[String] {
        &self.namespaces
    }

    /// The host device's name.
    pub fn host_device(&self) -> String {
        format!("mqb{}h", self.subnet[2])
    }

    /// Cuts every link between a member of `a` and a member of `b` (both ways, silently, as a
    /// firewall dropping packets would) until [`Network::heal`].
    pub fn cut(&self, a: &[Endpoint], b: &[Endpoint]) {
        self.shared.update(|r| r.cut(a, b));
    }

    /// Every packet to or from node `k` crosses a link with `shape` until [`Network::heal`].
    pub fn slow(&self, k: u8, shape: Shape) {
        self.shared.update(|r| r.slow(k, shape));
    }

    /// Restores every link: no cut, no delay, no loss.
    pub fn heal(&self) {
        self.shared.update(|r| r.heal());
    }

    /// What the switch has done so far.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Stops the switch (its devices go with it), kills what runs in the namespaces and deletes
    /// them. Safe to call twice; the first error is returned after trying everything.
    pub fn remove(&mut self) -> Result<(), NetError> {
        if let Some(mut s) = self.switch.take() {
            s.stop();
        }
        let mut first = None;
        while let Some(ns) = self.namespaces.pop() {
            if let Err(e) = ip::delete_namespace(&ns) {
                tracing::warn!("mq-netns: removing {ns}: {e}");
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            tracing::warn!("mq-netns: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_keep_only_name_safe_characters_and_a_bounded_length() {
        assert_eq!(
            clean_tag("20261201T1Z-kafka part/1"),
            "20261201T1Z-kafka_part_1"
        );
        assert_eq!(clean_tag(""), "net");
        assert_eq!(clean_tag(&"x".repeat(300)).len(), MAX_TAG);
    }

    #[test]
    fn building_networks_needs_both_admin_capabilities() {
        assert!(capable("Name:\tbench\nCapEff:\t000001fffeffffff\n").is_ok());
        // CAP_NET_ADMIN alone (bit 12) is not enough: ip netns add mounts.
        let e = capable("CapEff:\t0000000000001000\n").unwrap_err();
        assert!(e.contains("need root"), "{e}");
        assert!(capable("CapEff:\t0000000000000000\n").is_err());
        assert!(capable("no such line").is_err());
    }
}
