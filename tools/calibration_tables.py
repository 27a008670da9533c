#!/usr/bin/env python3
"""Accuracy by level with 95% intervals, and paired method-vs-RTN differences, from `qmr eval --out` JSON files.

Usage: tools/calibration_tables.py OUT_PREFIX LABEL=FILE.json [LABEL=FILE.json ...]
  LABEL names the calibration set of the file's calibrated runs (e.g. synth, text); runs that need no
  calibration (stored, RTN) are listed once, from the first file that holds them.
Writes OUT_PREFIX.txt (markdown tables) and OUT_PREFIX.csv (one row per run and level).

Paired comparison: every run of a file is evaluated on the same problems, so a calibrated method
(gptq:F, awq:F, with or without +clip) is compared with RTN of the same format F (and the same
+clip) problem by problem: b = problems only the method solves, c = problems only RTN solves,
delta = (b - c) / n with a 95% Wald interval on the paired differences, and McNemar's exact
two-sided p-value on b and c. The paired interval is much narrower than the two Wilson intervals
overlapping would suggest, because most problems are solved by both.
"""
import json
import math
import sys

Z = 1.959963984540054  # 95% two-sided normal quantile



def paired_table_head(lines, caption, levels):
    """Appends a paired-difference table's caption and its header rows (weights, calibration, all, L1..)."""
    lines.append("")
    lines.append(caption)
    lines.append("")
    lines.append("| weights | calibration | all | " + " | ".join(f"L{lv}" for lv in levels) + " |")
    lines.append("|---|---|---|" + "---|" * len(levels))

def wilson(k, n):
    if n == 0:
        return (0.0, 0.0)
    p = k / n
    d = 1 + Z * Z / n
    c = (p + Z * Z / (2 * n)) / d
    h = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / d
    return (max(0.0, c - h), min(1.0, c + h))


def mcnemar_p(b, c):
    m = b + c
    if m == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(m, i) for i in range(k + 1)) / 2 ** m
    return min(1.0, 2 * tail)


def paired(xs, ys):
    """xs, ys: lists of 0/1 on the same problems. Returns (delta, lo, hi, b, c)."""
    n = len(xs)
    d = [x - y for x, y in zip(xs, ys)]
    mean = sum(d) / n
    var = sum((v - mean) ** 2 for v in d) / (n - 1) if n > 1 else 0.0
    h = Z * math.sqrt(var / n)
    b = sum(1 for v in d if v > 0)
    c = sum(1 for v in d if v < 0)
    return mean, mean - h, mean + h, b, c


def rtn_of(weights):
    """The RTN twin of a calibrated run ('gptq:w3g128+clip' -> 'w3g128+clip'), or None."""
    if ":" not in weights:
        return None
    method, target = weights.split(":", 1)
    return None if method == "rtn" else target


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    prefix = sys.argv[1]
    runs = []  # (label, weights, run json, {id: correct}, {id: level})
    seen_uncalibrated = set()
    header = None
    for arg in sys.argv[2:]:
        label, path = arg.split("=", 1)
        doc = json.load(open(path))
        for r in doc["runs"] if "runs" in doc else [doc]:  # a sweep, or a file of one run
            w = r["weights"]
            calibrated = rtn_of(w) is not None
            if not calibrated:
                if w in seen_uncalibrated:
                    continue
                seen_uncalibrated.add(w)
            correct = {it["id"]: 1 if it["correct"] else 0 for it in r["items"]}
            level = {it["id"]: int(it["level"]) for it in r["items"]}
            runs.append((label if calibrated else "-", w, r, correct, level, path))
            header = header or (r["task"], r["n"], r["seed"], r["model"])
    levels = sorted({lv for run in runs for lv in run[4].values()})

    lines = []
    task, n, seed, model = header
    lines.append(f"task {task}, model {model}, {n} problems from seed {seed}; 95% Wilson intervals in brackets")
    lines.append("")
    lines.append("| weights | calibration | n | accuracy | " + " | ".join(f"L{lv}" for lv in levels) + " |")
    lines.append("|---|---|---|---|" + "---|" * len(levels))
    csv = ["weights,calibration,level,n,correct,accuracy,ci95_low,ci95_high,rtn_twin,delta_vs_rtn,delta_low,delta_high,"
           "only_method,only_rtn,mcnemar_p"]
    by_key = {(label, w): (correct, level) for label, w, _, correct, level, _ in runs}
    uncal = {w: (correct, level) for label, w, _, correct, level, _ in runs if label == "-"}
    paired_rows = []
    for label, w, r, correct, level, path in runs:
        cells = []
        ids_all = sorted(correct)
        k, m = sum(correct.values()), len(correct)
        lo, hi = wilson(k, m)
        twin = rtn_of(w)
        for lv in [None] + levels:
            ids = [i for i in ids_all if lv is None or level[i] == lv]
            kk = sum(correct[i] for i in ids)
            a, b_ = wilson(kk, len(ids))
            if lv is not None:
                cells.append(f"{100 * kk / len(ids):.1f} [{100 * a:.1f}, {100 * b_:.1f}]")
            row = [w, label, "all" if lv is None else str(lv), str(len(ids)), str(kk), f"{kk / len(ids):.6f}",
                   f"{a:.6f}", f"{b_:.6f}"]
            if twin is not None and twin in uncal:
                rc, _ = uncal[twin]
                common = [i for i in ids if i in rc]
                d, dl, dh, nb, nc = paired([correct[i] for i in common], [rc[i] for i in common])
                row += [twin, f"{d:.6f}", f"{dl:.6f}", f"{dh:.6f}", str(nb), str(nc), f"{mcnemar_p(nb, nc):.4g}"]
                paired_rows.append((w, label, lv, d, dl, dh, nb, nc, mcnemar_p(nb, nc), len(common)))
            else:
                row += [""] * 7
            csv.append(",".join(row))
        lines.append(f"| {w} | {label} | {m} | {100 * k / m:.1f} [{100 * lo:.1f}, {100 * hi:.1f}] | " + " | ".join(cells) + " |")

    # Every quantized run against the stored weights on the same problems: the headroom there is.
    if "stored" in uncal:
        sc, _ = uncal["stored"]
        paired_table_head(lines, "Paired against the stored weights: accuracy difference in points [95% interval], "
                          "(problems only the quantized model solves / only the stored one solves)", levels)
        for label, w, _, correct, level, _ in runs:
            if w == "stored":
                continue
            cells = []
            for lv in [None] + levels:
                ids = [i for i in sorted(correct) if (lv is None or level[i] == lv) and i in sc]
                d, dl, dh, nb, nc = paired([correct[i] for i in ids], [sc[i] for i in ids])
                cells.append(f"{100 * d:+.1f} [{100 * dl:+.1f}, {100 * dh:+.1f}] ({nb}/{nc})")
            lines.append(f"| {w} | {label} | " + " | ".join(cells) + " |")

    if paired_rows:
        paired_table_head(lines, "Paired against RTN of the same format on the same problems: accuracy difference in "
                          "points [95% interval], (problems only the method solves / only RTN solves), McNemar p", levels)
        rows = {}
        for w, label, lv, d, dl, dh, nb, nc, p, _ in paired_rows:
            rows.setdefault((w, label), {})[lv] = f"{100 * d:+.1f} [{100 * dl:+.1f}, {100 * dh:+.1f}] ({nb}/{nc}) p={p:.2g}"
        for (w, label), cells in rows.items():
            lines.append(f"| {w} | {label} | {cells[None]} | " + " | ".join(cells[lv] for lv in levels) + " |")
    open(prefix + ".txt", "w").write("\n".join(lines) + "\n")
    open(prefix + ".csv", "w").write("\n".join(csv) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
