//! Live progress on stderr: a bar on a terminal, plain log lines otherwise (or with --quiet).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use mq_core::spec::Totals;

pub struct Progress {
    bar: Option<ProgressBar>,
    plain_every: Duration,
    last_line: Instant,
    last: (Instant, Totals),
    rate: (f64, f64),
    variant: String,
    started: Instant,
}

impl Progress {
    /// A display for one variant; `total` is the message count when known.
    pub fn start(variant: &str, total: Option<u64>, quiet: bool) -> Progress {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = match total {
                Some(t) => ProgressBar::new(t),
                None => ProgressBar::new_spinner(),
            };
            let template = if total.is_some() {
                "{prefix:>12} [{elapsed_precise}] {bar:30} {pos}/{len} acked {msg}"
            } else {
                "{prefix:>12} [{elapsed_precise}] {spinner} {msg}"
            };
            bar.set_style(ProgressStyle::with_template(template).expect("valid template"));
            bar.set_prefix(variant.to_owned());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let now = Instant::now();
        Progress {
            bar,
            plain_every: Duration::from_secs(2),
            last_line: now,
            last: (now, Totals::default()),
            rate: (0.0, 0.0),
            variant: variant.to_owned(),
            started: now,
        }
    }

    pub fn update(&mut self, t: Totals, phase: &str) {
        let now = Instant::now();
        let dt = now.duration_since(self.last.0).as_secs_f64();
        if dt >= 0.5 {
            self.rate = (
                (t.acked - self.last.1.acked.min(t.acked)) as f64 / dt,
                (t.delivered - self.last.1.delivered.min(t.delivered)) as f64 / dt,
            );
            self.last = (now, t);
        }
        let not_sent = match t.not_sent {
            0 => String::new(),
            n => format!(" | not sent {n}"),
        };
        let msg = format!(
            "sent {} | acked {} ({:.0}/s) | delivered {} ({:.0}/s) | failed {}{not_sent} | {phase}",
            t.sent, t.acked, self.rate.0, t.delivered, self.rate.1, t.failed
        );
        match &self.bar {
            Some(bar) => {
                bar.set_position(t.acked);
                bar.set_message(msg);
            }
            None if now.duration_since(self.last_line) >= self.plain_every => {
                self.last_line = now;
                eprintln!(
                    "[{:>6.1}s] {}: {msg}",
                    self.started.elapsed().as_secs_f64(),
                    self.variant
                );
            }
            None => {}
        }
    }

    pub fn finish(self, line: &str) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
        eprintln!("{}: {line}", self.variant);
    }
}
