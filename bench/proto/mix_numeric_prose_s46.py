#!/usr/bin/env python3
"""Stop 46 experiment (issue 8): data/calibration/generic_text.txt with original numeric paragraphs woven in.
Usage: mix_numeric_prose_s46.py OUT.txt PARAGRAPH_FILE [PARAGRAPH_FILE ...]
One numeric paragraph after every `every`-th generic one (3 for one file, 2 for two), the rest appended."""
import sys

generic = open("data/calibration/generic_text.txt").read().strip().split("\n\n")
numeric = [p for f in sys.argv[2:] for p in open(f).read().strip().split("\n\n")]
every = 3 if len(sys.argv) == 3 else 2
out, j = [], 0
for i, p in enumerate(generic):
    out.append(p)
    if i % every == every - 1 and j < len(numeric):
        out.append(numeric[j])
        j += 1
out += numeric[j:]
text = "\n\n".join(out) + "\n"
open(sys.argv[1], "w").write(text)
print(f"{len(generic)} generic + {len(numeric)} numeric paragraphs, {len(text)} bytes, "
      f"{sum(c.isdigit() for c in text) / len(text):.4f} of them digits")
