#!/usr/bin/env python3
"""Recompute a variant's counts and series from its history files alone, independently of
bench's checker.

usage: scripts/recount.py RUN_DIR [VARIANT ...]
Prints one JSON object per variant with the same count names as results.json
(variants[].report.counts) and its series (variants[].report.series: bin_s, sent, acked, failed,
delivered, backlog; the rules are in docs/results-schema.md). The format is in
docs/history-format.md (versions 1 and 2, and the transactions of transactional producers:
aborted, aborted_visible). Plain Python, no packages; sets of (producer, seq) rather than bits, and
every delivery held at once to merge the consumers by time, so keep it to runs of a few million
messages. Reordered follows the checker's definition: per (producer, key), first deliveries by
any consumer in delivery-time order (ties by consumer), below the highest seq first-delivered
before them. A variant with consumer_dedup = "store" has its store (dedup.sqlite, read with
Python's sqlite3): a message it holds that no history has counts as delivered, at its row's time.
"""
import glob
import json
import os
import sqlite3
import struct
import sys

HEADER, RECORD = 32, 32
SENT, ACKED, FAILED, DELIVERED, UNEXPECTED = 1, 2, 3, 4, 5
SENT_RUN, ACKED_RUN, DELIVERED_RUN = 6, 7, 8  # version 2
COMMIT_STARTED, ABORTED = 9, 10  # transactional producers, both versions: seqs seq..seq+t2
NOT_SENT = 1  # the flags byte of a failed record: never reached the broker
TRANSACTIONAL = 1  # bit of the header's flags byte (byte 9)


def worker_of(path):
    """The worker id in a history file's header."""
    with open(path, "rb") as f:
        return struct.unpack_from("<H", f.read(HEADER), 10)[0]


def transactional(path):
    """Whether a history's header flags it as a transactional producer's."""
    with open(path, "rb") as f:
        return bool(f.read(HEADER)[9] & TRANSACTIONAL)


def records(path, where=False):
    """Every record of a version 1 or 2 history as (kind, flags, producer, key, seq, t1, t2),
    a version 2 run as its messages one by one (kinds 1, 2, 4) at their spread times; with
    `where`, each tuple ends with (record index, position in its run)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"MQBH" or len(data) < HEADER:
        raise SystemExit(f"{path}: not a history file")
    version, keys = struct.unpack_from("<I", data, 4)[0], struct.unpack_from("<I", data, 16)[0]
    if version not in (1, 2) or (version == 2 and keys == 0):
        raise SystemExit(f"{path}: history version {version} (keys {keys}) is not 1 or 2")
    for i in range(HEADER, len(data) - RECORD + 1, RECORD):
        kind, flags = data[i], data[i + 1]
        if kind == 0:
            return
        producer, key, seq, t1, t2 = struct.unpack_from("<HIQQQ", data, i + 2)
        tail = ((i - HEADER) // RECORD,) if where else ()
        if kind in (COMMIT_STARTED, ABORTED):
            if t2 == 0 or seq + t2 > 2**64:
                raise SystemExit(f"{path}: record {(i - HEADER) // RECORD} is corrupt (kind {kind})")
            yield (kind, flags, producer, key, seq, t1, t2) + tail + ((0,) if where else ())
            continue
        if kind < SENT_RUN:
            yield (kind, flags, producer, key, seq, t1, t2) + tail + ((0,) if where else ())
            continue
        if version != 2 or kind > DELIVERED_RUN or t2 & 0xFFFFFFFF == 0:
            raise SystemExit(f"{path}: record {(i - HEADER) // RECORD} is corrupt (kind {kind})")
        count, span = t2 & 0xFFFFFFFF, t2 >> 32
        for n in range(count):
            t = t1 if count == 1 else t1 + span * n // (count - 1)
            at = tail + ((n,) if where else ())
            if kind == SENT_RUN:
                s = seq + n
                yield (SENT, 0, producer, (s + producer) % keys, s, t, 0) + at
            elif kind == ACKED_RUN:
                yield (ACKED, 0, producer, 0, seq + n * keys, t, 0) + at
            else:
                yield (DELIVERED, 0, producer, key, seq + n * keys, t, t) + at


MIN_BIN, MIN_BINS, MAX_COUNTING_BINS = 10_000_000, 50, 20_000
MAX_BIN, MAX_BINS = 1_000_000_000, 7200


def ladder():
    """10 ms, 20 ms, 50 ms, 100 ms ... (ns)."""
    decade = MIN_BIN
    while True:
        for m in (1, 2, 5):
            yield decade * m
        decade *= 10


def bin_width(span):
    """The coarsest ladder width giving at least 50 bins (10 ms floor), at most a second unless
    that gives more than 7200 bins: then the finest width giving at most 7200."""
    coarse = MIN_BIN
    for w in ladder():
        if w > span // MIN_BINS:
            break
        coarse = w
    floor = next(w for w in ladder() if w >= span // MAX_BINS)
    return max(min(coarse, MAX_BIN), floor)


def series(events, start):
    """events: (name, t_ns) of first sends, acks, refusals, deliveries and deliveries of acked
    messages. Bins as the checker does: the width from the span, never finer than the decade
    width the checker counts in (under 2000 bins)."""
    since = [(name, max(t - start, 0)) for name, t in events]
    span = max((t for _, t in since), default=0)
    counting = MIN_BIN
    while span // counting >= MAX_COUNTING_BINS:
        counting *= 10
    width = max(bin_width(span), counting)
    names = ("sent", "acked", "failed", "delivered", "delivered_acked")
    out = {n: [] for n in names}
    for name, t in since:
        v, i = out[name], t // width
        v.extend([0] * (i + 1 - len(v)))
        v[i] += 1
    n = max(len(v) for v in out.values())
    for v in out.values():
        v.extend([0] * (n - len(v)))
    backlog, acked, gone = [], 0, 0
    for a, d in zip(out["acked"], out.pop("delivered_acked")):
        acked, gone = acked + a, gone + d
        backlog.append(max(acked - gone, 0))
    out["backlog"] = backlog
    out["bin_s"] = width / 1e9
    return out


def deliveries(vdir):
    """Every consumer's deliveries and foreign payloads as (kind, producer, key, seq, t), merged
    in the checker's order: delivery time on the shared clock, then the consumer (its worker
    id), then the consumer's file order. A record whose start goes back in its file is taken at
    the latest start before it (its run's messages at least then): the file's order wins."""
    merged = []
    paths = sorted(glob.glob(os.path.join(vdir, "consumer-*.hist")))
    for n, path in enumerate(paths):
        worker, floor = worker_of(path), 0
        for kind, _flags, p, key, seq, t1, t2, rec, pos in records(path, where=True):
            if kind not in (DELIVERED, UNEXPECTED):
                continue
            t = t2 if kind == DELIVERED else t1
            if pos == 0:
                floor = max(floor, t)
            merged.append((max(t, floor), worker, n, rec, pos, kind, p, key, seq, t))
    merged.sort()
    for *_, kind, p, key, seq, t in merged:
        yield kind, p, key, seq, t


def stored(vdir):
    """The dedup store's rows as (producer, seq, key, at_ns); none without a store."""
    path = os.path.join(vdir, "dedup.sqlite")
    if not os.path.exists(path):
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return db.execute("SELECT producer, seq, key, at_ns FROM processed").fetchall()
    finally:
        db.close()


def recount(vdir, producers, keys):
    sent, acked, failed, not_sent = set(), set(), set(), set()
    txn_producers, committing, aborting, top = set(), set(), set(), {}
    events = []
    for path in sorted(glob.glob(os.path.join(vdir, "producer-*.hist"))):
        if transactional(path):
            txn_producers.add(worker_of(path))
        for kind, flags, p, _key, seq, t1, t2 in records(path):
            if p < producers and kind in (COMMIT_STARTED, ABORTED):
                # Only seqs sent before it: a transaction's messages precede its end.
                ended = committing if kind == COMMIT_STARTED else aborting
                ended.update((p, s) for s in range(seq, min(seq + t2, top.get(p, -1) + 1)))
            if kind == SENT:
                top[p] = max(top.get(p, -1), seq)
            if p >= producers or kind not in (SENT, ACKED, FAILED):
                continue
            seen = {SENT: sent, ACKED: acked, FAILED: failed}[kind]
            if (p, seq) not in seen:
                events.append(({SENT: "sent", ACKED: "acked", FAILED: "failed"}[kind], t1))
                if kind == FAILED and flags == NOT_SENT:
                    not_sent.add((p, seq))  # the first outcome of a send is the one that counts
            seen.add((p, seq))
    ever_acked = set(acked)
    acked &= sent
    # A transactional producer's message never in a started commit, or in an abort, was aborted.
    aborted = {m for m in sent - acked
               if m[0] in txn_producers and (m not in committing or m in aborting)}
    failed = (failed & sent) - acked - aborted
    not_sent &= failed
    unknown = sent - acked - failed - aborted
    delivered, c = set(), dict(deliveries=0, duplicated=0, reordered=0, unexpected=0)
    last = {}
    for kind, p, key, seq, t in deliveries(vdir):
        c["deliveries"] += 1
        if kind == UNEXPECTED or (p, seq) not in sent or key >= keys:
            c["unexpected"] += 1
            continue
        if (p, seq) in delivered:
            c["duplicated"] += 1
            continue
        delivered.add((p, seq))
        events.append(("delivered", t))
        if (p, seq) in ever_acked:
            events.append(("delivered_acked", t))
        k = (p, key)
        if k in last and seq < last[k]:
            c["reordered"] += 1
        else:
            last[k] = seq
    for p, seq, key, t in stored(vdir):
        if (p, seq) in sent and (p, seq) not in delivered and key < keys:
            c["deliveries"] += 1
            delivered.add((p, seq))
            events.append(("delivered", t))
            if (p, seq) in ever_acked:
                events.append(("delivered_acked", t))
    c.update(
        sent=len(sent), acked=len(acked), failed=len(failed - not_sent), not_sent=len(not_sent),
        unknown=len(unknown),
        delivered=len(delivered), lost=len(acked - delivered), unacked_lost=len(unknown - delivered),
        recovered=len(unknown & delivered), failed_delivered=len(failed & delivered),
        aborted=len(aborted), aborted_visible=len(aborted & delivered),
    )
    with open(os.path.join(vdir, "start_ns")) as f:
        start = int(f.read().strip() or 0)
    return c, series(events, start)


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
        counts, s = recount(os.path.join(run, v["history_dir"]), producers, keys)
        print(json.dumps({"variant": v["name"], "counts": counts, "series": s}, sort_keys=True))


if __name__ == "__main__":
    main()
