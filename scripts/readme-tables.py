#!/usr/bin/env python3
"""Rewrite one block of README.md's measured tables from a run folder, so figures cannot drift.

usage: scripts/readme-tables.py BLOCK RUN_DIR [TABLE ...]
       scripts/readme-tables.py --check

BLOCK names a block in README.md between `<!-- table:BLOCK -->` and `<!-- /table:BLOCK -->`.
TABLE is a section of the run's summary.md (which bench renders from results.json): speed,
correctness, guarantees (default: speed correctness). The block gets a line saying which
scenario ran, when, on what machine, and this command, then the tables as bench wrote them.
One TABLE is computed here from results.json instead: `curve-checks` (a `rate = "max"` run, or
each repetition of one): per search, its overhead, the 120 % point's verdict, and the 50 %
point's p99 and backlog beside those of the variant `<search>-unbounded` when there is one.
--check verifies every block carries that line (for CI: no hand-typed block).
"""
import json
import os
import re
import shlex
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
BLOCK = re.compile(r"(<!-- table:([\w-]+) -->\n)(.*?)(<!-- /table:\2 -->)", re.S)
STAMP = "Written by `scripts/readme-tables.py"


def sections(summary):
    """Markdown sections of summary.md by lower-case title."""
    out, name = {}, None
    for line in summary.splitlines():
        m = re.match(r"## (.+)", line)
        if m:
            name = m.group(1).strip().lower()
            out[name] = []
        elif name:
            out[name].append(line)
    return {k: "\n".join(v).strip() for k, v in out.items()}


def curve_checks(runs):
    """The acceptance checks of the latency curve, from each run's results.json."""
    rows = [
        "| variant | rep | max msg/s | overhead | 120 % point | p99 at 50 % (µs) | backlog peak at 50 % "
        "| p99 unbounded (µs) | backlog peak unbounded |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    total = measuring = 0.0
    for rep, results in runs:
        by_name = {v["name"]: v for v in results["variants"]}
        for s in results.get("searches", []):
            name = s["variant"]
            busy = s["total_s"] - (s.get("broker_start_s") or 0.0)
            total, measuring = total + busy, measuring + s["measuring_s"]
            over = f"{100 * (1 - s['measuring_s'] / busy):.1f} %" if busy > 0 else "–"
            # the points at the maximum the search settled on (NAME.at-120pct, or -2, -3, … when
            # a point above an earlier maximum kept up and the search went on)
            def point(pct):
                return [p for p in s["points"] if re.search(rf"\.at-{pct}pct(-\d+)?$", p["name"])]

            above = point(120)
            verdict = "–"
            if above:
                verdict = "kept up (✗ wanted not)" if above[0]["kept_up"] else "not sustained ✓"

            def fig(v):
                rep_ = (v or {}).get("report") or {}
                lat = (rep_.get("latency") or {}).get("end_to_end") or {}
                if not lat.get("count"):
                    return "–", "–"
                return f"{lat['p99_us']:.0f}", str(rep_.get("backlog_peak", "–"))

            at_half = point(50)
            half = fig(by_name.get(at_half[0]["name"])) if at_half else ("–", "–")
            unb = [v for n, v in by_name.items() if n.endswith("-unbounded") and name.startswith(n[: -len("-unbounded")])]
            free = fig(unb[0]) if unb else ("–", "–")
            rows.append(
                f"| {name} | {rep} | {s['max_rate'] if s['max_rate'] is not None else '–'} | {over} | {verdict} "
                f"| {half[0]} | {half[1]} | {free[0]} | {free[1]} |"
            )
    if total > 0:
        rows.append("")
        rows.append(
            f"All searches together: {100 * (1 - measuring / total):.1f} % of their time without load in "
            f"flight ({total - measuring:.0f} s of {total:.0f} s, the brokers' starts left out)."
        )
    return "\n".join(rows)


def render(block, run_dir, tables):
    repeat = ""
    # Every run's results.json: the run's own, or one per repetition in order.
    files = [os.path.join(run_dir, "results.json")]
    if not os.path.exists(files[0]):
        # A folder of repetitions (bench run --repeat N): its summary.md is the spread.
        reps = [d for d in os.listdir(run_dir) if re.fullmatch(r"rep-\d+", d)]
        if not reps:
            raise SystemExit(f"{run_dir}: no results.json and no rep-N/: not a run folder")
        files = [os.path.join(run_dir, f"rep-{i}", "results.json") for i in range(1, len(reps) + 1)]
        repeat = f" --repeat {len(reps)}"
    results = json.load(open(files[0]))
    summary = open(os.path.join(run_dir, "summary.md")).read()
    found = sections(summary)
    if "curve-checks" in tables:
        found["curve-checks"] = curve_checks([(i + 1, json.load(open(f))) for i, f in enumerate(files)])
    missing = [t for t in tables if t not in found]
    if missing:
        raise SystemExit(f"{run_dir}/summary.md has no section {', '.join(missing)}")
    m, sc = results["machine"], results["scenario"]
    rel = os.path.relpath(os.path.abspath(run_dir), ROOT)
    head = (
        f"Measured by `bench run {sc['file']}{repeat}` on {results['started_at'][:10]}: "
        f"{m['cores']} cores, {m['cpu']}, kernel {m['kernel']}. "
        f"{STAMP} {block} {rel} {' '.join(shlex.quote(t) for t in tables)}` from that run."
    )
    # Links into the run folder (a review's "why" → charts/…) would not resolve from the README.
    body = "\n\n".join(re.sub(r" \[why\]\([^)]*\)", "", found[t]) for t in tables)
    return head + "\n\n" + body + "\n"


def main():
    text = open(README).read()
    if sys.argv[1:] == ["--check"]:
        bad = [b.group(2) for b in BLOCK.finditer(text) if STAMP not in b.group(3)]
        if bad:
            raise SystemExit(f"README.md blocks not written by this script: {', '.join(bad)}")
        print(f"{len(BLOCK.findall(text))} README blocks carry their provenance")
        return
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    block, run_dir = sys.argv[1], sys.argv[2]
    tables = sys.argv[3:] or ["speed", "correctness"]
    hits = [b for b in BLOCK.finditer(text) if b.group(2) == block]
    if not hits:
        raise SystemExit(f"README.md has no block <!-- table:{block} -->")
    b = hits[0]
    new = text[: b.start(3)] + render(block, run_dir, tables) + text[b.end(3) :]
    open(README, "w").write(new)
    print(f"README.md: block {block} rewritten from {run_dir}")


if __name__ == "__main__":
    main()
