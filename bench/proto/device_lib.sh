# Sourced by the bench/proto/s*_device.sh scripts since stop 36 (run on the device machine from the repository root,
# $OUT set by the device runner): unpacks gpu_carry/*.tgz into /tmp (the binaries land in $F: /tmp/s36 unless the
# script sets another), sets the log $L
# and the test-data paths, and defines the steps the scripts share. Every step appends to a file under $OUT and one
# line with its exit status and seconds to $L.
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/../.." && for t in gpu_carry/*.tgz; do tar xzf "$t" -C /tmp; done
F=${F:-/tmp/s36}; L=$OUT/log.txt
export QMR_TEST_DATA=$PWD/tests/data QMR_MODELS_DIR=$PWD/models

# run_tests NAME:SECONDS ...: each test binary $F/NAME under a timeout, output to tests.txt.
run_tests() {
  local t s
  for t in "$@"; do
    s=$SECONDS; echo "=== ${t%:*}" >> $OUT/tests.txt
    timeout ${t#*:} $F/${t%:*} >> $OUT/tests.txt 2>&1; echo "${t%:*} rc=$? $((SECONDS-s))s" >> $L
  done
}

# decode_binary V: the cuda_decode build named V (`new` or `v1`: $F/cuda_decode; else $F/cuda_decode_V).
decode_binary() { if [ "$1" = new ] || [ "$1" = v1 ]; then echo $F/cuda_decode; else echo $F/cuda_decode_$1; fi; }

# decode_rounds ROUNDS V ...: the Qwen2.5-0.5B-shaped model's bf16 and w4g128 decode (graph) per build, the builds
# alternating within each round, to decode.txt.
decode_rounds() {
  local rounds=$1 round v s; shift
  for round in $(seq 1 $rounds); do for v in "$@"; do
    s=$SECONDS; echo "== $v round $round" >> $OUT/decode.txt
    timeout 60 $(decode_binary $v) --models qwen2.5-0.5b --formats bf16,w4g128 --modes graph --work /tmp/dec >> $OUT/decode.txt 2>&1
    echo "decode $v $round rc=$? $((SECONDS-s))s" >> $L
  done; done
}

# ncu_head V ...: ncu's duration and DRAM bytes of three launches of the dense GEMV (the output head) per build, to ncu.txt.
ncu_head() {
  local v s
  for v in "$@"; do
    s=$SECONDS; echo "== $v" >> $OUT/ncu.txt
    timeout 90 ncu --metrics gpu__time_duration.sum,dram__bytes_read.sum --print-summary per-kernel --kernel-name regex:dense \
      --launch-skip 2 --launch-count 3 $(decode_binary $v) --models qwen2.5-0.5b --formats w4g128 --modes eager --work /tmp/dec 2>&1 |
      grep -v "==PROF==" >> $OUT/ncu.txt
    echo "ncu $v rc=$? $((SECONDS-s))s" >> $L
  done
}

# sanitize BINARY TOOL ...: compute-sanitizer's TOOLs (memcheck, racecheck) over the test binary $F/BINARY, to san.txt.
sanitize() {
  local b=$1 tool s; shift
  for tool in "$@"; do
    s=$SECONDS; echo "=== $tool $b" >> $OUT/san.txt
    timeout 90 compute-sanitizer --tool $tool $F/$b >> $OUT/san.txt 2>&1
    echo "san $tool $b rc=$? $((SECONDS-s))s $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' $OUT/san.txt | tail -1)" >> $L
  done
}

# ncu_kernels REGEX FORMAT SKIP COUNT V ...: ncu's duration of COUNT launches (after SKIP) of the kernels matching REGEX
# in a decode of the Qwen2.5-0.5B-shaped model in FORMAT, per build, summarized per launch shape, to ncu.txt.
ncu_kernels() {
  local re=$1 fmt=$2 skip=$3 count=$4 v s; shift 4
  for v in "$@"; do
    s=$SECONDS; echo "== $v" >> $OUT/ncu.txt
    timeout 120 ncu --metrics gpu__time_duration.sum --print-summary per-kernel --kernel-name regex:$re --launch-skip $skip \
      --launch-count $count $(decode_binary $v) --models qwen2.5-0.5b --formats $fmt --modes eager --work /tmp/dec 2>&1 |
      grep -v "==PROF==" >> $OUT/ncu.txt
    echo "ncu $v rc=$? $((SECONDS-s))s" >> $L
  done
}

# ncu_dense_step V ...: every dense GEMV launch of a bf16 decode step (169 launches: a step and more).
ncu_dense_step() { ncu_kernels dense bf16 300 169 "$@"; }

# sanitize_quick BINARY TOOL ...: compute-sanitizer's TOOLs over the quick subset (QMR_GEMV_TEST_QUICK=1) of the
# test binary $F/BINARY, to san.txt.
sanitize_quick() {
  local b=$1 tool s; shift
  for tool in "$@"; do
    s=$SECONDS; echo "=== $tool $b" >> $OUT/san.txt
    QMR_GEMV_TEST_QUICK=1 timeout 90 compute-sanitizer --tool $tool $F/$b >> $OUT/san.txt 2>&1
    echo "san $tool $b rc=$? $((SECONDS-s))s $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' $OUT/san.txt | tail -1)" >> $L
  done
}

# split_tests: the split GEMV's CUDA tests (tests.txt), then the split test's quick subset under compute-sanitizer
# memcheck and racecheck (san.txt).
split_tests() {
  run_tests test_cuda_gemv_split_layout:30 test_cuda_gemv_split:150 test_cuda_gemv_pdl:60 test_cuda_gemv:90 test_cuda_forward:90
  sanitize_quick test_cuda_gemv_split memcheck racecheck
}

# bench_split V TAG SHAPES BITS BATCHES: `cuda_gemv --split-only` (30 runs, 1 GB of rotated weights) of the build
# named V ($F/cuda_gemv_V; `new`: $F/cuda_gemv) under "== V TAG" in bench.txt.
bench_split() {
  local s=$SECONDS b=$F/cuda_gemv_$1; [ "$1" = new ] && b=$F/cuda_gemv
  echo "== $1 $2" >> $OUT/bench.txt
  timeout 120 $b --split-only --runs 30 --rotate-bytes 1e9 --shapes $3 --bits $4 --batches $5 >> $OUT/bench.txt 2>&1
  echo "bench $1 $2 rc=$? $((SECONDS-s))s" >> $L
}

# split_summary: the log, bench.txt's 8192 x 8192 rows (split per call and in a graph, cuBLAS in a graph) under their
# "== V TAG" headers, and the tests' verdict lines.
split_summary() {
  cat $OUT/gpu.txt $L
  grep -E "^== |^\| 8192 x" $OUT/bench.txt | awk -F'|' '/^==/{print; next} {print $2,$3,$4,"split",$5,"graph",$7,"cublasg",$12}'
  grep -E '^=== |passed|failed|ok: |All tests' $OUT/tests.txt $OUT/quick.txt 2>/dev/null | tail -12
}

# split_ab SHAPES BITS BATCHES: $F/cuda_gemv_BASE against $F/cuda_gemv (`cuda_gemv --split-only`), alternating, two
# rounds, to bench.txt.
split_ab() {
  local round v
  for round in 1 2; do for v in BASE new; do bench_split $v "round $round" $1 $2 $3; done; done
}

# all_cuda_tests: every CUDA test binary of build-gpu under a timeout (tests.txt), and the GPU's name (gpu.txt).
all_cuda_tests() {
  nvidia-smi --query-gpu=name,memory.total --format=csv > $OUT/gpu.txt 2>&1
  run_tests test_cuda_half_dequant:30 test_cuda_gemv_layout:30 test_cuda_gemv_lanes_layout:30 test_cuda_gemv_split_layout:30 \
    test_cuda_gemv:60 test_cuda_gemv_lanes:90 test_cuda_gemv_split:90 test_cuda_gemv_pdl:40 test_cuda_gemm:90 \
    test_cuda_dense_gemv:40 test_cuda_attention:60 test_cuda_forward:90
}

# Stop 51's timeline harness (bench/proto/split_timeline_s51.cu), builds $F/tl_V.
# gpu_clocks: the GPU's name and clocks to gpu.txt.
gpu_clocks() { nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,clocks.mem --format=csv,noheader > $OUT/gpu.txt; }

# tl V FORMAT TAG: $F/tl_V on FORMAT (8192 x 8192 at 1, 8 and 16 tokens, a graph of 20 calls) under "== V FORMAT TAG"
# in tl.txt; a traced build given RAW=DIR writes its records there.
tl() {
  local s=$SECONDS; echo "== $1 $2 $3" >> $OUT/tl.txt
  timeout 60 $F/tl_$1 $2 ${RAW:-} >> $OUT/tl.txt 2>&1; echo "tl $1 $2 $3 rc=$? $((SECONDS-s))s" >> $L
}

# tl_ab V: the quick split test of $F/test_cuda_gemv_split_V (quick.txt; skipped for timing-only builds, which carry
# none), two rounds of r4 (HEAD's kernel) against V on w4g128s and w2g64s (the order reversed in the second), and one
# traced w4g128s run of t_V (records in raw.tgz).
tl_ab() {
  local s=$SECONDS v f
  if [ -x $F/test_cuda_gemv_split_$1 ]; then
    QMR_GEMV_TEST_QUICK=1 timeout 60 $F/test_cuda_gemv_split_$1 > $OUT/quick.txt 2>&1; echo "quick $1 rc=$? $((SECONDS-s))s" >> $L
  fi
  for v in r4 $1; do for f in w4g128s w2g64s; do tl $v $f round1; done; done
  for v in $1 r4; do for f in w4g128s w2g64s; do tl $v $f round2; done; done
  mkdir -p /tmp/raw/t_$1; RAW=/tmp/raw/t_$1 tl t_$1 w4g128s trace
  tar czf $OUT/raw.tgz -C /tmp raw
}

# tl_summary: gpu.txt, the log, the timeline's graph and steady-state lines, and the tests' verdicts.
tl_summary() {
  cat $OUT/gpu.txt $L
  grep -E "^== |graph|steady" $OUT/tl.txt
  grep -E '^=== |passed|failed|ok: |All tests' $OUT/tests.txt $OUT/quick.txt 2>/dev/null | tail -8
}

# tl_trace_r4 NAME: HEAD's kernel untraced (r4) and traced (t_r4) on w4g128s and w2g64s, the traced records under
# /tmp/raw/NAME (raw.tgz), then tl_summary.
tl_trace_r4() {
  local f
  mkdir -p /tmp/raw/$1
  for f in w4g128s w2g64s; do tl r4 $f control; RAW=/tmp/raw/$1 tl t_r4 $f trace; done
  tar czf $OUT/raw.tgz -C /tmp raw
  tl_summary
}

# sanitize_pair_only TOOL ...: compute-sanitizer's TOOLs over the split test's full-size pair check alone
# (QMR_GEMV_TEST_PAIR_ONLY=1), to san.txt.
sanitize_pair_only() {
  local tool s
  for tool in "$@"; do
    s=$SECONDS; echo "=== $tool pair only" >> $OUT/san.txt
    QMR_GEMV_TEST_PAIR_ONLY=1 timeout 150 compute-sanitizer --tool $tool $F/test_cuda_gemv_split >> $OUT/san.txt 2>&1
    echo "san $tool pair-only rc=$? $((SECONDS-s))s $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' $OUT/san.txt | tail -1)" >> $L
  done
}

# timeline_s57: stop 57's timeline probe ($F/timeline, bench/proto/timeline_s57.cu) on w4g128s, its CSVs to $OUT/tl/
# and its lines to timeline.txt.
timeline_s57() {
  local s=$SECONDS
  mkdir -p $OUT/tl
  timeout 300 $F/timeline w4g128s $OUT/tl > $OUT/timeline.txt 2>&1; echo "timeline rc=$? $((SECONDS-s))s" >> $L
}
