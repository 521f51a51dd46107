//! What the switch does with one packet: the links that are cut and the nodes whose link is
//! slow, as plain data. Pure (randomness comes in as a function), so every rule is unit-tested
//! apart from the sockets.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

/// One end of a link: the host side (where the clients run) or node `k` (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    Host,
    Node(u8),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Host => f.write_str("the host"),
            Endpoint::Node(k) => write!(f, "node {k}"),
        }
    }
}

/// How a slow link treats each packet that crosses it, as `tc netem` would: a delay varied
/// uniformly by ± `jitter`, and a chance of loss.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Shape {
    pub delay: Duration,
    pub jitter: Duration,
    /// 0 to 100.
    pub loss_percent: f64,
}

impl Shape {
    /// This link's delay for one packet, given a uniform number in [0, 1).
    fn delay(&self, unit: f64) -> Duration {
        let j = self.jitter.as_secs_f64() * (2.0 * unit - 1.0);
        Duration::from_secs_f64((self.delay.as_secs_f64() + j).max(0.0))
    }
}

/// What happens to a packet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// Forwarded after this delay (zero: at once).
    Pass(Duration),
    /// Dropped: the link between its ends is cut.
    Cut,
    /// Dropped by a slow link's loss.
    Lost,
}

/// The faults in effect.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rules {
    /// Unordered pairs, the smaller end first.
    cut: BTreeSet<(Endpoint, Endpoint)>,
    slow: BTreeMap<u8, Shape>,
}

fn pair(a: Endpoint, b: Endpoint) -> (Endpoint, Endpoint) {
    (a.min(b), a.max(b))
}

impl Rules {
    /// Cuts every link between a member of `a` and a member of `b`, both ways.
    pub fn cut(&mut self, a: &[Endpoint], b: &[Endpoint]) {
        for &x in a {
            for &y in b.iter().filter(|&&y| y != x) {
                self.cut.insert(pair(x, y));
            }
        }
    }

    /// Whether the link between `a` and `b` is cut.
    pub fn is_cut(&self, a: Endpoint, b: Endpoint) -> bool {
        self.cut.contains(&pair(a, b))
    }

    /// Every packet to or from `node` crosses its link with `shape` (replacing an earlier one).
    pub fn slow(&mut self, node: u8, shape: Shape) {
        self.slow.insert(node, shape);
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.cut.clear();
        self.slow.clear();
    }

    /// No fault in effect.
    pub fn is_clear(&self) -> bool {
        self.cut.is_empty() && self.slow.is_empty()
    }

    /// What happens to a packet from `from` to `to`; `rand` gives uniform numbers in [0, 1).
    /// A packet between two slow nodes crosses both links: each may lose it, the delays add.
    pub fn verdict(&self, from: Endpoint, to: Endpoint, rand: &mut dyn FnMut() -> f64) -> Verdict {
        if self.is_cut(from, to) {
            return Verdict::Cut;
        }
        let mut delay = Duration::ZERO;
        for end in [from, to] {
            let Endpoint::Node(k) = end else { continue };
            let Some(shape) = self.slow.get(&k) else {
                continue;
            };
            if shape.loss_percent > 0.0 && rand() * 100.0 < shape.loss_percent {
                return Verdict::Lost;
            }
            delay += shape.delay(rand());
        }
        Verdict::Pass(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Endpoint::{Host, Node};

    fn fixed(v: f64) -> impl FnMut() -> f64 {
        move || v
    }

    #[test]
    fn a_cut_is_symmetric_and_leaves_other_links_alone() {
        let mut r = Rules::default();
        r.cut(&[Node(1)], &[Node(2), Node(3)]);
        r.cut(&[Host], &[Node(2), Node(3)]);
        for (a, b) in [(Node(1), Node(2)), (Node(3), Node(1)), (Host, Node(3))] {
            assert!(r.is_cut(a, b) && r.is_cut(b, a), "{a} - {b}");
            assert_eq!(r.verdict(a, b, &mut fixed(0.5)), Verdict::Cut);
        }
        assert!(!r.is_cut(Node(2), Node(3)), "the majority side still talks");
        assert!(!r.is_cut(Host, Node(1)), "the clients still reach node 1");
        assert_eq!(
            r.verdict(Host, Node(1), &mut fixed(0.5)),
            Verdict::Pass(Duration::ZERO)
        );
        // A node is never cut from itself.
        r.cut(&[Node(1)], &[Node(1)]);
        assert!(!r.is_cut(Node(1), Node(1)));
        r.heal();
        assert!(r.is_clear() && !r.is_cut(Node(1), Node(2)));
    }

    #[test]
    fn a_slow_link_delays_with_jitter_and_loses_its_share_both_ways() {
        let mut r = Rules::default();
        let ms = Duration::from_millis;
        r.slow(
            2,
            Shape {
                delay: ms(100),
                jitter: ms(40),
                loss_percent: 25.0,
            },
        );
        // rand 0.5: not lost (50 >= 25), jitter 0.
        assert_eq!(
            r.verdict(Host, Node(2), &mut fixed(0.5)),
            Verdict::Pass(ms(100))
        );
        assert_eq!(
            r.verdict(Node(2), Node(1), &mut fixed(0.5)),
            Verdict::Pass(ms(100))
        );
        // rand 0.2: lost (20 < 25).
        assert_eq!(r.verdict(Node(2), Host, &mut fixed(0.2)), Verdict::Lost);
        // Jitter spans delay ± 40 ms.
        let mut seq = [0.9, 0.0].into_iter();
        let lowest = r.verdict(Node(1), Node(2), &mut move || seq.next().unwrap());
        assert_eq!(lowest, Verdict::Pass(ms(60)));
        let mut seq = [0.9, 0.999_999].into_iter();
        match r.verdict(Node(1), Node(2), &mut move || seq.next().unwrap()) {
            Verdict::Pass(d) => assert!(d > ms(139) && d <= ms(140), "{d:?}"),
            v => panic!("{v:?}"),
        }
        // Other links are untouched.
        assert_eq!(
            r.verdict(Host, Node(1), &mut fixed(0.0)),
            Verdict::Pass(Duration::ZERO)
        );
        // Two slow ends: both delays.
        r.slow(
            1,
            Shape {
                delay: ms(10),
                ..Shape::default()
            },
        );
        assert_eq!(
            r.verdict(Node(1), Node(2), &mut fixed(0.5)),
            Verdict::Pass(ms(110))
        );
    }

    #[test]
    fn jitter_larger_than_the_delay_never_makes_it_negative() {
        let s = Shape {
            delay: Duration::from_millis(5),
            jitter: Duration::from_millis(50),
            loss_percent: 0.0,
        };
        assert_eq!(s.delay(0.0), Duration::ZERO);
    }
}
