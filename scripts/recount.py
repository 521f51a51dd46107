#!/usr/bin/env python3
"""Recompute a variant's counts from its history files alone, independently of bench's checker.

usage: scripts/recount.py RUN_DIR [VARIANT ...]
Prints one JSON object per variant with the same count names as results.json
(variants[].report.counts). The format is in docs/history-format.md. Plain Python, no packages;
sets of (producer, seq) rather than bits, so keep it to runs of a few million messages.
"""
import glob
import json
import os
import struct
import sys

HEADER, RECORD = 32, 32
SENT, ACKED, FAILED, DELIVERED, UNEXPECTED = 1, 2, 3, 4, 5
NOT_SENT = 1  # the flags byte of a failed record: never reached the broker


def records(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"MQBH":
        raise SystemExit(f"{path}: not a history file")
    for i in range(HEADER, len(data) - RECORD + 1, RECORD):
        kind, flags = data[i], data[i + 1]
        if kind == 0:
            return
        producer, key, seq, t1, t2 = struct.unpack_from("<HIQQQ", data, i + 2)
        yield kind, flags, producer, key, seq


def recount(vdir, producers, keys):
    sent, acked, failed, not_sent = set(), set(), set(), set()
    for path in sorted(glob.glob(os.path.join(vdir, "producer-*.hist"))):
        for kind, flags, p, _key, seq in records(path):
            if p >= producers:
                continue
            if kind == FAILED and (p, seq) not in failed and flags == NOT_SENT:
                not_sent.add((p, seq))  # the first outcome of a send is the one that counts
            {SENT: sent, ACKED: acked, FAILED: failed}.get(kind, set()).add((p, seq))
    acked &= sent
    failed = (failed & sent) - acked
    not_sent &= failed
    unknown = sent - acked - failed
    delivered, c = set(), dict(deliveries=0, duplicated=0, reordered=0, unexpected=0)
    for path in sorted(glob.glob(os.path.join(vdir, "consumer-*.hist"))):
        last = {}
        for kind, _flags, p, key, seq in records(path):
            if kind == UNEXPECTED:
                c["deliveries"] += 1
                c["unexpected"] += 1
                continue
            if kind != DELIVERED:
                continue
            c["deliveries"] += 1
            if (p, seq) not in sent or key >= keys:
                c["unexpected"] += 1
                continue
            if (p, seq) in delivered:
                c["duplicated"] += 1
                continue
            delivered.add((p, seq))
            k = (p, key)
            if k in last and seq < last[k]:
                c["reordered"] += 1
            else:
                last[k] = seq
    c.update(
        sent=len(sent), acked=len(acked), failed=len(failed - not_sent), not_sent=len(not_sent),
        unknown=len(unknown),
        delivered=len(delivered), lost=len(acked - delivered), unacked_lost=len(unknown - delivered),
        recovered=len(unknown & delivered), failed_delivered=len(failed & delivered),
    )
    return c


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    run = sys.argv[1]
    results = json.load(open(os.path.join(run, "results.json")))
    wanted = set(sys.argv[2:])
    for v in results["variants"]:
        if v.get("history_dir") is None or (wanted and v["name"] not in wanted):
            continue
        w = dict(results["scenario"]["workload"])
        w.update(v.get("workload") or {})
        producers = w.get("producers", 1)
        keys = w.get("keys") or w.get("partitions", 1)
        counts = recount(os.path.join(run, v["history_dir"]), producers, keys)
        print(json.dumps({"variant": v["name"], "counts": counts}, sort_keys=True))


if __name__ == "__main__":
    main()
