#!/usr/bin/env python3
"""Stop 57: summarize the timeline probe's CSV (bench/proto/timeline_s57.cu), one traced graph replay of 20 calls.

Per call, times are in us from the call's release (the first block of the call past griddepcontrol.wait):
x staged, warps' loop ends, the call's end (the last warp past its tail), the next call's release. Then where the
time between releases goes, and whether the streaming time of a block depends on its SM (across calls), its GPC or
its slice.

Usage: timeline_s57_analyze.py CSV [CSV ...]
"""
import csv
import statistics as st
import sys
from collections import defaultdict


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(p * (len(v) - 1) + 0.5))]


def load(path):
    rows = []
    with open(path) as f:
        for r in csv.DictReader(f):
            d = {k: int(v) for k, v in r.items()}
            d["loops"] = [d[f"loop{w}"] for w in range(16)]
            d["fins"] = [d[f"fin{w}"] for w in range(16)]
            rows.append(d)
    return rows


def analyze(path):
    rows = load(path)
    calls = defaultdict(list)
    for r in rows:
        calls[r["call"]].append(r)
    n = max(calls) + 1
    rel = {j: min(b["waited"] for b in calls[j]) for j in calls}
    end = {j: max(max(b["fins"]) for b in calls[j]) for j in calls}
    print(f"== {path}: {n} calls, {len(calls[0])} blocks a call")
    print("call | entry min/max | waited max | x staged p50/max | loop end p10/p50/p90/max | end | next release")
    per_call = []
    for j in range(2, n - 1):
        bs = calls[j]
        r0 = rel[j]
        us = lambda t: (t - r0) / 1e3  # noqa: E731
        staged = [us(b["staged"]) for b in bs]
        loops = [us(max(b["loops"])) for b in bs]
        entry = [us(b["entry"]) for b in bs]
        waited = [us(b["waited"]) for b in bs]
        e, nr = us(end[j]), us(rel[j + 1])
        per_call.append(dict(staged50=pct(staged, 0.5), stagedmax=max(staged), loop10=pct(loops, 0.1), loop50=pct(loops, 0.5),
                             loop90=pct(loops, 0.9), loopmax=max(loops), end=e, next=nr, entrymin=min(entry), entrymax=max(entry),
                             waitmax=max(waited)))
        print(f"{j:4d} | {min(entry):6.2f} {max(entry):6.2f} | {max(waited):5.2f} | {pct(staged, .5):5.2f} {max(staged):5.2f} | "
              f"{pct(loops, .1):5.2f} {pct(loops, .5):5.2f} {pct(loops, .9):5.2f} {max(loops):5.2f} | {e:5.2f} | {nr:5.2f}")
    m = {k: st.mean(c[k] for c in per_call) for k in per_call[0]}
    print("mean: entry {entrymin:.2f}..{entrymax:.2f}, waited max {waitmax:.2f}, x staged p50 {staged50:.2f} max {stagedmax:.2f}, "
          "loop end p10 {loop10:.2f} p50 {loop50:.2f} p90 {loop90:.2f} max {loopmax:.2f}, end {end:.2f}, next release {next:.2f}".format(**m))
    print(f"  after the last loop end: {m['end'] - m['loopmax']:.2f} us to the call's end, {m['next'] - m['end']:.2f} us to the next release")

    # Streaming time of a block: its last warp's loop end minus its x staged; a warp's: its loop end minus x staged.
    dur = defaultdict(list)  # smid -> block durations over calls
    by_gpc, by_slice = defaultdict(list), defaultdict(list)
    warp_spread = []
    start_by_slice = defaultdict(list)
    for j in range(2, n - 1):
        for b in calls[j]:
            d = (max(b["loops"]) - b["staged"]) / 1e3
            dur[b["smid"]].append(d)
            by_gpc[b["gpc"]].append(d)
            by_slice[b["slice"]].append((max(b["loops"]) - rel[j]) / 1e3)
            start_by_slice[b["slice"]].append((b["staged"] - rel[j]) / 1e3)
            warp_spread.append((max(b["loops"]) - min(b["loops"])) / 1e3)
    alld = [d for v in dur.values() for d in v]
    means = {s: st.mean(v) for s, v in dur.items()}
    within = st.mean(st.pstdev(v) for v in dur.values() if len(v) > 1)
    print(f"block streaming (x staged -> last warp's loop end): mean {st.mean(alld):.2f} us, p10 {pct(alld, .1):.2f}, "
          f"p90 {pct(alld, .9):.2f}, max {max(alld):.2f}; std between SMs' means {st.pstdev(means.values()):.3f}, "
          f"within an SM across calls {within:.3f}")
    print(f"warps of a block: loop ends spread p50 {pct(warp_spread, .5):.2f} us, p90 {pct(warp_spread, .9):.2f}")
    sms_of = defaultdict(set)
    for r in rows:
        sms_of[r["gpc"]].add(r["smid"])
    print("by GPC (SMs used, mean streaming us): " + ", ".join(f"{g}: {len(sms_of[g])} {st.mean(v):.2f}" for g, v in sorted(by_gpc.items())))
    print("by slice (x staged / loop end, mean us from release): " + ", ".join(
        f"{s}: {st.mean(start_by_slice[s]):.2f} / {st.mean(v):.2f}" for s, v in sorted(by_slice.items())))
    gpc_of = {r["smid"]: r["gpc"] for r in rows}
    slow = sorted(means.items(), key=lambda kv: -kv[1])
    print("slowest SMs (mean us, gpc): " + ", ".join(f"{s}:{v:.2f}/{gpc_of[s]}" for s, v in slow[:8]))
    print("fastest SMs: " + ", ".join(f"{s}:{v:.2f}/{gpc_of[s]}" for s, v in slow[-8:]))


if __name__ == "__main__":
    for p in sys.argv[1:]:
        analyze(p)
