#!/bin/sh
# Every CUDA object built in the build directory $1 has its headers recorded by ninja, so that editing a .cuh
# rebuilds the GPU tests and benchmarks (the top meson.build's cuda_depfiles says why this needs checking).
# Exit 77 (skipped) when no CUDA object has been built yet.
set -eu
ninja -C "$1" -t deps | awk '
  /\.cu\.o: #deps / {
    n++
    count = $3; sub(",", "", count)
    if (count + 0 == 0) { bad++; print "no header dependencies recorded for " substr($1, 1, length($1) - 1) }
  }
  END {
    if (n == 0) { print "no CUDA object built"; exit 77 }
    print n - bad " of " n " CUDA objects have their headers recorded"
    exit bad > 0
  }'
