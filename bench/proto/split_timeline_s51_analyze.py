#!/usr/bin/env python3
"""Stop 51: reads the raw records that bench/proto/split_timeline_s51.cu writes (trace_FORMAT_mM.bin, one
qmr::cuda::detail::split_trace_rec per block of one traced graph replay of 20 calls) and prints
  groups  - loop-end times by slice, band and SM, the entry-time histogram, early against late entrants;
  tail    - per row tile, the time from its last slice's loop end to its sums stored, and the other warps' finish;
  profile - the weights consumed per 0.5 us across calls 5-7, each warp's share spread evenly over its loop;
  halves  - (records with gt_half, files named *half* or *tail*) each warp's two halves of its loads, by slice;
  chain   - (records with the tail stamps, files named *tail*) the steps of each warp's split_finish.
Times are ns from each call's PDL release (its first block's return from pdl_wait).
Usage: split_timeline_s51_analyze.py groups|tail|profile|halves|chain TRACE.bin [WEIGHT_BYTES (34.6e6)]"""
import collections
import math
import statistics as st
import struct
import sys

REC = 72 * 8  # split_trace_rec: q, id, gt[3], ck[3], gt_loop[16], gt_fin[16], ck_loop[16], ck_fin[16] (+ gt_half[16] from call j)


def load(path):
    data = open(path, 'rb').read()
    words = 136 if 'tail' in path else 88 if 'half' in path else 72  # call j's add gt_half[16], call k's the tail stamps
    recs = []
    for i in range(len(data) // (8 * words)):
        v = struct.unpack_from('<%dQ' % words, data, i * 8 * words)
        recs.append(dict(q=v[0], band=v[1] & 0xffff, slice=(v[1] >> 16) & 0xffff, sm=v[1] >> 32, gt=v[2:5],
                         gl=v[8:24], gf=v[24:40], gh=v[72:88] if words >= 88 else None,
                         tc=v[88:104] if words == 136 else None, tg=v[104:120] if words == 136 else None,
                         ts=v[120:136] if words == 136 else None))
    calls = collections.defaultdict(list)
    for r in recs:
        calls[r['q']].append(r)
    return recs, sorted(calls.values(), key=lambda v: min(r['gt'][0] for r in v))


def pct(v, p):
    v = sorted(v)
    return v[int(p * (len(v) - 1) + 0.5)]


def corr(a, b):
    ma, mb = st.mean(a), st.mean(b)
    return sum((x - ma) * (y - mb) for x, y in zip(a, b)) / math.sqrt(
        sum((x - ma) ** 2 for x in a) * sum((y - mb) ** 2 for y in b))


def groups(calls):
    rows = []
    for k, v in enumerate(calls[2:-1], 2):  # steady state: not the first two calls, not the last
        rel = min(r['gt'][1] for r in v)
        for r in v:
            rows.append(dict(k=k, sm=r['sm'], band=r['band'], slice=r['slice'], ent=r['gt'][0] - rel,
                             stage=r['gt'][2] - rel, loop=max(r['gl']) - rel, dur=max(r['gl']) - r['gt'][2]))
    for key in ('slice', 'band'):
        d = collections.defaultdict(list)
        for x in rows:
            d[x[key]].append(x['loop'])
        print('loop end (us) by', key, ' '.join(f"{k}:{st.median(d[k]) / 1000:.1f}" for k in sorted(d)))
    d = collections.defaultdict(list)
    for x in rows:
        d[x['sm']].append(x['loop'])
    sms = sorted(d, key=lambda s: st.median(d[s]))
    print('SM median loop end (us): fastest', [(s, round(st.median(d[s]) / 1000, 1)) for s in sms[:4]],
          'slowest', [(s, round(st.median(d[s]) / 1000, 1)) for s in sms[-4:]])
    print('corr(entry, loop end) %.2f, corr(x staged, loop end) %.2f' % (
        corr([x['ent'] for x in rows], [x['loop'] for x in rows]), corr([x['stage'] for x in rows], [x['loop'] for x in rows])))
    durs = [x['dur'] for x in rows]
    print('block loop (x staged -> last warp done) us: p10 %.1f p50 %.1f p90 %.1f max %.1f' % tuple(pct(durs, p) / 1000 for p in (.1, .5, .9, 1)))
    print('loop end histogram (us: blocks):', sorted(collections.Counter(int(x['loop'] / 1000) for x in rows).items()))
    print('entry histogram (us from release: blocks):', sorted(collections.Counter(int(x['ent'] / 1000) for x in rows).items()))
    early = [x['loop'] for x in rows if x['ent'] < -3000]
    late = [x['loop'] for x in rows if x['ent'] >= -3000]
    print('entered > 3 us before release: %d blocks, loop end p50 %.1f us; later: %d, p50 %.1f us' % (
        len(early), pct(early, .5) / 1000 if early else 0, len(late), pct(late, .5) / 1000 if late else 0))


def halves(calls):
    """Each warp's first and second half of its loads (x staged -> load n/2 -> loop end), by slice."""
    d = collections.defaultdict(lambda: ([], [], [], []))
    for v in calls[2:-1]:
        rel = min(r['gt'][1] for r in v)
        for r in v:
            for w in range(16):
                e = d[r['slice']]
                e[0].append(r['gh'][w] - r['gt'][2])
                e[1].append(r['gl'][w] - r['gh'][w])
                e[2].append(r['gh'][w] - rel)
                e[3].append(r['gl'][w] - rel)
    for sl in sorted(d):
        a, b, h, e = d[sl]
        print('slice %d: first half %.2f us, second half %.2f us (medians); half-way at %.1f us, loop end at %.1f us from release'
              % (sl, st.median(a) / 1000, st.median(b) / 1000, st.median(h) / 1000, st.median(e) / 1000))


def chain(calls):
    """(records with the tail stamps, files named *tail*) each step of split_finish, ns: the workspace stores, the
    counter's fence and atomic, and for a tile's last warp the slices' loads, sums and output stores."""
    steps = collections.defaultdict(list)
    for v in calls[2:-1]:
        for r in v:
            for w in range(16):
                last = r['ts'][w] != 0
                k = 'last' if last else 'other'
                steps[k + ': loop end -> stores done'].append(r['tc'][w] - r['gl'][w])
                steps[k + ': counter (fence + atomic)'].append(r['tg'][w] - r['tc'][w])
                if last:
                    steps['last: sums read, added, stored'].append(r['ts'][w] - r['tg'][w])
                    steps['last: counter reset, return'].append(r['gf'][w] - r['ts'][w])
    for k in sorted(steps):
        print('%-36s p10 %5d p50 %5d p90 %5d (%d warps)' % (k, pct(steps[k], .1), pct(steps[k], .5), pct(steps[k], .9), len(steps[k])))


def tail(calls):
    chains, others = [], []
    for v in calls[2:-1]:
        rel = min(r['gt'][1] for r in v)
        tiles = collections.defaultdict(list)
        for r in v:
            for w in range(16):
                tiles[r['band'] * 16 + w].append((r['gl'][w] - rel, r['gf'][w] - rel))
        for ws in tiles.values():
            last_loop, done = max(a for a, _ in ws), max(b for _, b in ws)
            chains.append(done - last_loop)
            others += [b - a for a, b in ws if b != done]
    print('tile: last slice loop end -> sums stored, ns: p10 %d p50 %d p90 %d max %d' % tuple(pct(chains, p) for p in (.1, .5, .9, 1)))
    print('other warps: loop end -> finished, ns: p10 %d p50 %d p90 %d max %d' % tuple(pct(others, p) for p in (.1, .5, .9, 1)))


def profile(recs, calls, weight_bytes):
    per_warp = weight_bytes / (16 * len(calls[0]))
    t0 = min(r['gt'][0] for r in recs)
    step = 500
    bins = collections.defaultdict(float)
    for r in recs:
        for w in range(16):
            a, b = r['gt'][2], r['gl'][w]
            if b <= a:
                continue
            for t in range((a - t0) // step, (b - t0) // step + 1):
                lo, hi = max(a, t0 + t * step), min(b, t0 + (t + 1) * step)
                if hi > lo:
                    bins[t] += per_warp / (b - a) * (hi - lo)
    rel = [min(r['gt'][1] for r in v) for v in calls]
    end = [max(max(r['gf']) for r in v) for v in calls]
    print('calls 5-7: releases at', [round((rel[k] - rel[5]) / 1000, 1) for k in (5, 6, 7)], 'us, last sums stored at',
          [round((end[k] - rel[5]) / 1000, 1) for k in (5, 6, 7)], 'us')
    for t in range((rel[5] - t0) // step, (end[7] - t0) // step + 1):
        tbs = bins[t] / step / 1000
        print('%6.1f us  %5.2f TB/s  %s' % ((t0 + t * step - rel[5]) / 1000, tbs, '#' * int(tbs * 10)))


if __name__ == '__main__':
    if len(sys.argv) < 3 or sys.argv[1] not in ('groups', 'tail', 'profile', 'halves', 'chain'):
        sys.exit(__doc__)
    recs, calls = load(sys.argv[2])
    if sys.argv[1] == 'groups':
        groups(calls)
    elif sys.argv[1] == 'tail':
        tail(calls)
    elif sys.argv[1] == 'halves':
        halves(calls)
    elif sys.argv[1] == 'chain':
        chain(calls)
    else:
        profile(recs, calls, float(sys.argv[3]) if len(sys.argv) > 3 else 34.6e6)
