//! Crafted results.json for the report tests: any number of variants with series, broker-depth
//! samples (with a gap while the broker was down), faults and anomalies, written to a run folder.

#![allow(dead_code)]

use std::path::Path;

use serde_json::{json, Value};

/// One crafted variant.
pub struct Variant {
    pub name: String,
    /// Seconds the variant ran.
    pub seconds: f64,
    pub bin_s: f64,
    /// msgs/s while running.
    pub rate: f64,
    /// (t, action, label) of each fault.
    pub faults: Vec<(f64, &'static str, String)>,
    /// The broker was down from .0 to .1 seconds: no deliveries, no depth samples.
    pub down: Option<(f64, f64)>,
    pub lost: u64,
    pub duplicated: u64,
    pub reordered: u64,
}

impl Variant {
    pub fn new(name: &str, seconds: f64, bin_s: f64) -> Variant {
        Variant {
            name: name.to_owned(),
            seconds,
            bin_s,
            rate: 2000.0,
            faults: Vec::new(),
            down: None,
            lost: 0,
            duplicated: 0,
            reordered: 0,
        }
    }

    pub fn fault(mut self, t: f64, action: &'static str) -> Variant {
        self.faults.push((
            t,
            action,
            format!("{action}@{}s", (t * 10.0).round() / 10.0),
        ));
        self
    }

    pub fn down(mut self, from: f64, to: f64) -> Variant {
        self.down = Some((from, to));
        self
    }

    pub fn anomalies(mut self, lost: u64, duplicated: u64, reordered: u64) -> Variant {
        (self.lost, self.duplicated, self.reordered) = (lost, duplicated, reordered);
        self
    }

    fn is_down(&self, t: f64) -> bool {
        self.down.is_some_and(|(a, b)| t >= a && t < b)
    }

    fn to_json(&self) -> Value {
        let bins = (self.seconds / self.bin_s).ceil() as usize;
        let per_bin = (self.rate * self.bin_s).round() as u64;
        let mut acked = Vec::new();
        let mut delivered = Vec::new();
        let mut backlog = Vec::new();
        let mut held = 0u64;
        for i in 0..bins {
            let t = i as f64 * self.bin_s;
            // A little ripple so lines are told apart.
            let a = per_bin + (i as u64 * 7919 % 5) * per_bin / 50;
            if self.is_down(t) {
                acked.push(0);
                delivered.push(0);
                held += a / 2;
            } else {
                acked.push(a);
                let d = a + held.min(a);
                held -= held.min(a);
                delivered.push(d);
            }
            backlog.push(held as i64);
        }
        let mut depth = Vec::new();
        let mut t = 0.25;
        while t < self.seconds {
            if !self.is_down(t) {
                let i = ((t / self.bin_s) as usize).min(backlog.len().saturating_sub(1));
                depth.push(json!({"t": t, "messages": backlog.get(i).copied().unwrap_or(0) + 3, "bytes": null}));
            }
            t += 0.5;
        }
        let mut h = mq_checker::new_histogram();
        for k in 1..2000u64 {
            h.record(k * 1000 + self.name.len() as u64 * 5000).unwrap();
        }
        let hdr = mq_checker::encode_histogram(&h);
        let pct = mq_checker::percentiles(&h);
        let sent: u64 = acked.iter().sum();
        let faults: Vec<Value> = self
            .faults
            .iter()
            .map(|(t, action, label)| {
                json!({"t": t, "action": action, "target": null, "label": label, "ok": true,
                       "error": null, "took_s": 0.01})
            })
            .collect();
        let mut series = json!({
            "sent": acked, "acked": acked, "failed": vec![0; bins],
            "delivered": delivered, "backlog": backlog,
        });
        series["bin_s"] = json!(self.bin_s);
        json!({
            "name": self.name, "backend": "sysv",
            "delivery": {"producer_ack": "leader", "consumer_ack": "auto", "durability": "memory"},
            "options": {}, "workload": null, "status": "ok", "reason": null, "fix": null,
            "ended_by": "drained", "versions": [["linux", "6.1"]], "workers": [],
            "history_dir": null, "faults": faults, "contract": "at-least-once",
            "contract_kept": self.lost == 0, "contract_note": null,
            "report": {
                "counts": {"sent": sent, "acked": sent, "failed": 0, "unknown": 0,
                           "delivered": sent - self.lost, "deliveries": sent - self.lost + self.duplicated,
                           "lost": self.lost, "unacked_lost": 0, "recovered": 0, "failed_delivered": 0,
                           "duplicated": self.duplicated, "reordered": self.reordered, "unexpected": 0},
                "throughput": {"seconds": self.seconds, "acked_msgs_per_s": self.rate,
                               "acked_mb_per_s": self.rate * 256e-6, "delivered_msgs_per_s": self.rate,
                               "delivered_mb_per_s": self.rate * 256e-6},
                "latency": {"publish": pct, "end_to_end": pct, "publish_hdr": hdr, "end_to_end_hdr": hdr},
                "series": series,
                "broker_depth": depth,
                "backlog_peak": 0, "broker_depth_peak": null, "records": sent * 3
            }
        })
    }
}

/// A whole results.json of `variants`, at `rate` msgs/s in the scenario's workload.
pub fn results(variants: &[Variant], rate: u64) -> Value {
    json!({
        "schema": "mq-bench.results/2",
        "bench_version": "0.1.0",
        "scenario": {
            "name": "crafted", "description": "crafted for the report tests", "file": "crafted.toml",
            "workload": {"duration": "6s", "message_size": 256, "producers": 1, "consumers": 1,
                         "partitions": 1, "rate": rate, "warmup": "0s", "drain_timeout": "15s",
                         "ack_timeout": "20s"}
        },
        "run_id": 42,
        "started_at": "2026-12-01T10:00:00Z", "finished_at": "2026-12-01T10:05:00Z",
        "partial": false,
        "machine": {"hostname": "h", "cpu": "cpu", "cores": 2, "memory_bytes": 1u64 << 33,
                    "kernel": "6.1", "os": "Debian"},
        "variants": variants.iter().map(Variant::to_json).collect::<Vec<_>>(),
    })
}

/// Writes `results` as `dir/results.json`.
pub fn write(dir: &Path, results: &Value) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_vec_pretty(results).unwrap(),
    )
    .unwrap();
}

/// A `<text>` element of an SVG drawn by plotters.
#[derive(Debug, Clone)]
pub struct SvgText {
    pub x: f64,
    pub y: f64,
    pub size: f64,
    pub anchor: String,
    /// plotters' vertical placement: "0.76em" top at y, "0.5ex" centred on y, else bottom at y.
    pub dy: String,
    pub text: String,
}

fn attr(el: &str, name: &str) -> Option<String> {
    let at = el.find(&format!(" {name}=\""))? + name.len() + 3;
    Some(el[at..at + el[at..].find('"')?].to_owned())
}

fn num(el: &str, name: &str) -> f64 {
    attr(el, name).and_then(|v| v.parse().ok()).unwrap_or(0.0)
}

/// Every text element: position, font size, anchor and (trimmed, unescaped) text.
pub fn svg_texts(svg: &str) -> Vec<SvgText> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let open = &t[..t.find('>')?];
            let body = &t[open.len() + 1..];
            let text = body[..body.find("</text>")?]
                .trim()
                .replace("&apos;", "'")
                .replace("&amp;", "&");
            Some(SvgText {
                x: num(open, "x"),
                y: num(open, "y"),
                size: num(open, "font-size"),
                anchor: attr(open, "text-anchor").unwrap_or_default(),
                dy: attr(open, "dy").unwrap_or_default(),
                text,
            })
        })
        .collect()
}

impl SvgText {
    /// The box the text covers, (x0, y0, x1, y1), its width measured in the embedded font as
    /// the PNG draws it (plotters writes SVG font sizes as the size / 1.24).
    pub fn bounds(&self) -> (f64, f64, f64, f64) {
        use plotters::prelude::*;
        mq_report::charts::register_font();
        let w = ("sans-serif", self.size * 1.24)
            .into_font()
            .box_size(&self.text)
            .map(|(w, _)| w as f64)
            .unwrap_or(self.text.chars().count() as f64 * self.size * 0.6);
        let x0 = match self.anchor.as_str() {
            "middle" => self.x - w / 2.0,
            "end" => self.x - w,
            _ => self.x,
        };
        let (y0, y1) = match self.dy.as_str() {
            "0.76em" => (self.y, self.y + self.size),
            "0.5ex" => (self.y - self.size / 2.0, self.y + self.size / 2.0),
            _ => (self.y - self.size, self.y),
        };
        (x0, y0, x0 + w, y1)
    }
}

/// A polyline: stroke colour, stroke width, points.
pub type Polyline = (String, String, Vec<(f64, f64)>);

/// Every polyline. Plotters draws data lines, axes and dashes as these.
pub fn svg_polylines(svg: &str) -> Vec<Polyline> {
    svg.split("<polyline")
        .skip(1)
        .filter_map(|p| {
            let el = &p[..p.find("/>")?];
            let pts = attr(el, "points")?
                .split_whitespace()
                .filter_map(|xy| {
                    let (x, y) = xy.split_once(',')?;
                    Some((x.parse().ok()?, y.parse().ok()?))
                })
                .collect();
            Some((attr(el, "stroke")?, attr(el, "stroke-width")?, pts))
        })
        .collect()
}

/// Filled rectangles: (x, y, width, height, fill).
pub fn svg_rects(svg: &str) -> Vec<(f64, f64, f64, f64, String)> {
    svg.split("<rect")
        .skip(1)
        .filter_map(|r| {
            let el = &r[..r.find("/>")?];
            Some((
                num(el, "x"),
                num(el, "y"),
                num(el, "width"),
                num(el, "height"),
                attr(el, "fill")?,
            ))
        })
        .collect()
}
