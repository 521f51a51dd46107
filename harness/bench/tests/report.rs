//! Reports and comparisons end to end: `bench run --repeat 2` on SysV writes charts, report.html
//! and summary.md per repetition; `bench report` rebuilds them byte for byte; headless Chromium
//! renders report.html with every chart loaded; `bench compare` fails a 20 % throughput drop and
//! passes two repetitions of the same run.
//!
//! The run folder is kept under the target dir (`…/tmp/report-test/run`) so its report.png
//! screenshot can be looked at after the tests.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::*;

/// Every chart of a run with cost figures (the default: `resources = true`).
const CHARTS: [&str; 6] = [
    "throughput",
    "latency",
    "backlog",
    "anomalies",
    "cost",
    "cpu",
];

/// One repeated run shared by every test here (it takes ~10 s).
fn fixture() -> &'static Path {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    RUN.get_or_init(|| {
        let _g = serial();
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-test");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        // A fixed rate over 4 s: at least 3 full seconds of per-second samples per run.
        let scenario = write(
            &root,
            "report.toml",
            r#"
name = "report-test"
description = "Charts & <html> escaping: a fixed-rate SysV run"
[requirements]
min_msgs_per_s = 15000
max_lost = 0
ordering = "per-key"
[workload]
duration = "4s"
rate = 20000
message_size = 100
[[variants]]
name = "sysv"
backend = "sysv"
"#,
        );
        let out = root.join("run");
        let o = run(&[
            "run",
            scenario.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--repeat",
            "2",
            "--quiet",
        ]);
        assert!(
            o.status.success(),
            "bench run --repeat 2 failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        out
    })
}

fn report_files(run: &Path) -> Vec<PathBuf> {
    let mut files = vec![run.join("report.html"), run.join("summary.md")];
    for c in CHARTS {
        files.push(run.join(format!("charts/{c}.svg")));
        files.push(run.join(format!("charts/{c}.png")));
    }
    files
}

#[test]
fn run_writes_every_report_file_and_bench_report_rebuilds_them_byte_for_byte() {
    let dir = fixture();
    assert!(dir.join("summary.md").exists(), "repetition summary");
    for rep in ["rep-1", "rep-2"] {
        let run = dir.join(rep);
        let before: Vec<(PathBuf, Vec<u8>)> = report_files(&run)
            .into_iter()
            .map(|f| {
                let bytes = std::fs::read(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
                assert!(!bytes.is_empty(), "{} is empty", f.display());
                (f, bytes)
            })
            .collect();
        let html = String::from_utf8(before[0].1.clone()).unwrap();
        assert!(html.contains("Charts &amp; &lt;html&gt; escaping"));
        assert!(!html.contains("<html> escaping"));
        assert!(!html.contains("http://") || !html.contains("src=\"http"));
        assert_eq!(
            html.matches("<img src=\"data:image/svg+xml;base64,")
                .count(),
            CHARTS.len()
        );

        let o = run_cmd(&["report", run.to_str().unwrap()]);
        assert!(o.0, "bench report failed: {}", o.1);
        for (f, bytes) in &before {
            assert!(
                std::fs::read(f).unwrap() == *bytes,
                "{} differs after bench report",
                f.display()
            );
        }
    }
    // The folder of repetitions regenerates too.
    let o = run_cmd(&["report", dir.to_str().unwrap()]);
    assert!(o.0, "bench report on the repetitions folder: {}", o.1);
}

fn run_cmd(args: &[&str]) -> (bool, String) {
    let o = run(args);
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

fn chromium(args: &[&str], profile: &Path) -> std::process::Output {
    Command::new("timeout")
        .arg("120")
        .arg("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("starting chromium")
}

#[test]
fn report_html_renders_in_headless_chromium_with_every_chart_loaded() {
    let found = Command::new("chromium").arg("--version").output();
    if found.map(|o| !o.status.success()).unwrap_or(true) {
        assert!(
            std::env::var("MQ_BENCH_REQUIRE_CHROMIUM").as_deref() != Ok("1"),
            "chromium is not installed (scripts/test.sh installs it)"
        );
        eprintln!("skipped: chromium not installed (apt-get install -y chromium)");
        return;
    }
    let run = fixture().join("rep-1");
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    // A copy of the page with a probe that lists every chart image's loaded size.
    let probe = r#"<script>
window.addEventListener('load', () => {
  const review = [...document.querySelectorAll('h3')].find(h => h.textContent === 'Review');
  const reviewRows = review ? review.nextElementSibling.querySelectorAll('tbody tr').length : 0;
  const imgs = [...document.images].map(i => [i.complete, i.naturalWidth, i.naturalHeight, i.getBoundingClientRect().width]);
  const svgs = [...document.querySelectorAll('svg')].map(s => s.getBoundingClientRect().width);
  const pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = JSON.stringify({imgs, svgs, reviewRows});
  document.body.appendChild(pre);
});
</script>
</body>"#;
    let check = run.join("report-check.html");
    std::fs::write(&check, html.replace("</body>", probe)).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}", check.display());
    let o = chromium(
        &["--virtual-time-budget=10000", "--dump-dom", &url],
        profile.path(),
    );
    let _ = std::fs::remove_file(&check);
    let dom = String::from_utf8_lossy(&o.stdout);
    let start = dom.find("<pre id=\"probe\">").unwrap_or_else(|| {
        panic!(
            "no probe output from chromium: {}",
            String::from_utf8_lossy(&o.stderr)
        )
    });
    let start = start + "<pre id=\"probe\">".len();
    let end = dom[start..].find("</pre>").unwrap() + start;
    let probe: serde_json::Value = serde_json::from_str(&dom[start..end]).unwrap();
    assert_eq!(
        probe["reviewRows"], 1,
        "the Review table renders first: {probe}"
    );
    let imgs = probe["imgs"].as_array().unwrap();
    assert_eq!(imgs.len(), CHARTS.len(), "{probe}");
    for img in imgs {
        assert_eq!(img[0], true, "an image did not load: {probe}");
        assert!(img[1].as_f64().unwrap() > 100.0, "zero-size image: {probe}");
        assert!(img[2].as_f64().unwrap() > 100.0, "zero-size image: {probe}");
        assert!(
            img[3].as_f64().unwrap() > 100.0,
            "image laid out at no width: {probe}"
        );
    }
    for svg in probe["svgs"].as_array().unwrap() {
        assert!(svg.as_f64().unwrap() > 0.0, "{probe}");
    }

    // The screenshot stays in the run folder for a person to look at.
    let shot = run.join("report.png");
    let _ = std::fs::remove_file(&shot);
    let profile = tempfile::tempdir().unwrap();
    let o = chromium(
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1400,4000",
            &format!("file://{}", run.join("report.html").display()),
        ],
        profile.path(),
    );
    let png = std::fs::read(&shot).unwrap_or_else(|e| {
        panic!(
            "no screenshot ({e}): {}",
            String::from_utf8_lossy(&o.stderr)
        )
    });
    assert_eq!(&png[1..4], b"PNG");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((width, height), (1400, 4000));
    assert!(
        png.len() > 50_000,
        "screenshot of {} bytes: blank?",
        png.len()
    );
}

#[test]
fn recount_py_recomputes_the_same_counts_and_series_from_the_histories() {
    let dir = fixture();
    for rep in ["rep-1", "rep-2"] {
        assert_recount_matches(&dir.join(rep));
        // A 4 s run (and its drain): 50 or 100 ms bins, at least 50 of them, not per second.
        let r = results(&dir.join(rep));
        let s = &r["variants"][0]["report"]["series"];
        let bin = s["bin_s"].as_f64().unwrap();
        assert!(bin == 0.05 || bin == 0.1, "{rep}: bin_s {bin}");
        assert!(s["acked"].as_array().unwrap().len() >= 50, "{rep}: {s}");
    }
}

#[test]
fn compare_passes_two_repetitions_of_the_same_run() {
    let dir = fixture();
    let (ok, out) = run_cmd(&[
        "compare",
        dir.join("rep-1").to_str().unwrap(),
        dir.join("rep-2/results.json").to_str().unwrap(),
        "--fail-on-loss",
    ]);
    assert!(ok, "compare of two repetitions failed:\n{out}");
    assert!(out.contains("no regression"), "{out}");
    assert!(!out.contains("scenarios differ"), "{out}");
    // The folder of repetitions is read as two repetitions.
    let (ok, out) = run_cmd(&[
        "compare",
        dir.to_str().unwrap(),
        dir.to_str().unwrap(),
        "--format",
        "markdown",
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("(2 repetition(s))"), "{out}");
}

#[test]
fn compare_fails_a_twenty_percent_throughput_drop() {
    let dir = fixture();
    let base = dir.join("rep-1/results.json");
    let mut r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&base).unwrap()).unwrap();
    let rep = &mut r["variants"][0]["report"];
    for f in ["acked_msgs_per_s", "delivered_msgs_per_s"] {
        let v = rep["throughput"][f].as_f64().unwrap();
        rep["throughput"][f] = (v * 0.8).into();
    }
    for s in ["acked", "delivered"] {
        let scaled: Vec<u64> = rep["series"][s]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| (v.as_u64().unwrap() as f64 * 0.8) as u64)
            .collect();
        rep["series"][s] = scaled.into();
    }
    let tmp = tempfile::tempdir().unwrap();
    let new = tmp.path().join("new.json");
    std::fs::write(&new, serde_json::to_vec(&r).unwrap()).unwrap();
    let o = run(&[
        "compare",
        base.to_str().unwrap(),
        new.to_str().unwrap(),
        "--max-throughput-drop",
        "5",
        "--format",
        "markdown",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "expected a regression:\n{out}");
    assert!(out.contains("| sysv | acked msgs/s |"), "{out}");
    assert!(out.contains("-20.0 %"), "{out}");
    assert!(out.contains("**REGRESSION**"), "{out}");
}

#[test]
fn compare_refuses_runs_of_different_scenarios_unless_allowed() {
    let dir = fixture();
    // NEW: repetition 2 as if its scenario had said `rate = 250000`.
    let tmp = tempfile::tempdir().unwrap();
    let new = tmp.path().join("new");
    std::fs::create_dir_all(&new).unwrap();
    let toml = std::fs::read_to_string(dir.join("rep-2/scenario.toml")).unwrap();
    assert!(toml.contains("rate = 20000"), "{toml}");
    std::fs::write(
        new.join("scenario.toml"),
        toml.replace("rate = 20000", "rate = 250000"),
    )
    .unwrap();
    let mut r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("rep-2/results.json")).unwrap())
            .unwrap();
    r["scenario"]["workload"]["rate"] = 250_000.into();
    r["variants"][0]["workload"]["rate"] = 250_000.into();
    std::fs::write(new.join("results.json"), serde_json::to_vec(&r).unwrap()).unwrap();
    let base = dir.join("rep-1");

    let o = run(&["compare", base.to_str().unwrap(), new.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "expected a refusal:\n{out}{err}");
    assert!(out.contains("workload.rate: 20000 -> 250000"), "{out}");
    assert!(err.contains("--allow-scenario-change"), "{err}");
    assert!(
        !out.contains("acked msgs/s"),
        "no figures when refused:\n{out}"
    );

    let o = run(&[
        "compare",
        base.to_str().unwrap(),
        new.to_str().unwrap(),
        "--allow-scenario-change",
        "--format",
        "markdown",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_ne!(o.status.code(), Some(2), "{out}");
    let diff = out
        .find("| `workload.rate` | 20000 | 250000 |")
        .expect(&out);
    let table = out.find("| sysv | acked msgs/s |").expect(&out);
    assert!(diff < table, "the difference comes first:\n{out}");
    assert!(
        out.lines().next().unwrap().contains("the scenarios differ"),
        "{out}"
    );
}

#[test]
fn bench_review_judges_the_runs_and_exits_by_the_verdict_never_a_silent_pass() {
    let dir = fixture();
    let (rep1, rep2) = (dir.join("rep-1"), dir.join("rep-2"));
    let (r1, r2) = (rep1.to_str().unwrap(), rep2.to_str().unwrap());
    let summary = std::fs::read_to_string(rep1.join("summary.md")).unwrap();
    assert!(
        summary.find("## Review") < summary.find("## Speed"),
        "the review comes first: {summary}"
    );
    // The scenario's own requirements: SysV at 20 000 msg/s meets them.
    let out = dir.join("review-out");
    let o = run(&["review", r1, r2, "--out", out.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(text.contains("Meets every requirement: sysv."), "{text}");
    assert!(
        text.contains("(rep-1)") || text.contains("(rep-2)"),
        "names its run: {text}"
    );
    let html = std::fs::read_to_string(out.join("review.html")).unwrap();
    assert!(
        html.contains("<h1>Review</h1>") && html.contains("✓ yes"),
        "{html}"
    );
    assert!(out.join("review.md").exists());

    let req = |name: &str, body: &str| write(dir, name, &format!("[requirements]\n{body}\n"));
    // Out of reach: ✗ with the chart that shows it, exit 1.
    let fast = req("fast.toml", "min_msgs_per_s = 100000000");
    let o = run(&["review", r1, "--requirements", fast.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(
        text.contains("✗ ") && text.contains("charts/throughput.png"),
        "{text}"
    );
    // Not measured (SysV's broker is the kernel): ?, with why, and exit 1.
    let cpu = req("cpu.toml", "max_cpu_us_per_msg = 1000");
    let o = run(&["review", r1, "--requirements", cpu.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(text.contains("| ? broker not measured"), "{text}");
    // Bad input names the file and the field: exit 2.
    let bad = req("bad.toml", "max_p99 = 5");
    let o = run(&["review", r1, "--requirements", bad.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("bad.toml") && err.contains("requirements.max_p99"),
        "{err}"
    );
}
