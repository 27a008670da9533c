#!/usr/bin/env bash
# Builds and runs the CUDA tests and benchmarks on a GPU machine, writing logs and JSON results to a directory.
#
#   tools/run_gpu.sh [OUT_DIR]        (default results/gpu; run from anywhere)
#
# Needs nvcc (PATH or /usr/local/cuda/bin), a host C++ compiler, meson and ninja;
# not xsimd, Catch2, CLI11, nlohmann_json or a network: the build is configured
# with -Dsimd=disabled, which builds only the CUDA targets. Environment:
#   QMR_GPU_ARCH   SM architecture to compile for (default 90)
#   QMR_GPU_BUILD  build directory (default build-gpu, under the repository)
#   QMR_BENCH_ARGS extra arguments for bench/cuda_gemv (e.g. --quick)
#   QMR_RACECHECK_AFTER_S skip the racecheck once this many seconds have passed (default 170)
#   QMR_GPU_INCLUDE a folder holding xsimd/ and nlohmann/ headers (copies of the CPU
#                  machine's /usr/include/{xsimd,nlohmann}), put on CPLUS_INCLUDE_PATH:
#                  the GPU forward-pass test and decode benchmark include the model
#                  loader, and they are built only when both are found
#   QMR_GPU_STEPS  comma list of steps to run: tests, bench_gemv, bench_decode,
#                  sanitizer (default all)
#   QMR_DECODE_ARGS extra arguments for bench/cuda_decode (e.g. --decode 64)
# Writes: environment.txt, configure.log, build.log, test_*.txt, sanitizer_*.txt,
# cuda_gemv.txt, cuda_gemv.json, cuda_decode.txt, cuda_decode.json and summary.json
# (exit codes). Exits nonzero if the build or a test failed.
set -uo pipefail

out="${1:-results/gpu}"
mkdir -p "$out" && out="$(cd "$out" && pwd)"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo" || exit 1
arch="${QMR_GPU_ARCH:-90}"
build="${QMR_GPU_BUILD:-build-gpu}"
export PATH="/usr/local/cuda/bin:$PATH"
if [ -n "${QMR_GPU_INCLUDE:-}" ]; then
  export CPLUS_INCLUDE_PATH="$(cd "$QMR_GPU_INCLUDE" && pwd)${CPLUS_INCLUDE_PATH:+:$CPLUS_INCLUDE_PATH}"
fi
start=$(date +%s)
steps=",${QMR_GPU_STEPS:-all},"
want() { [[ "$steps" == *",all,"* || "$steps" == *",$1,"* ]]; }

log() { echo "[run_gpu $(($(date +%s) - start))s] $*"; }
# summary.json is rewritten after every step, so that a run cut short still leaves one.
declare -A rc
write_summary() {
  {
    echo "{"
    echo "  \"arch\": \"sm_$arch\","
    echo "  \"git_commit\": \"$(git rev-parse HEAD 2>/dev/null || echo unknown)\","
    echo "  \"seconds\": $(($(date +%s) - start)),"
    echo "  \"exit_codes\": {"
    local first=1
    for k in "${!rc[@]}"; do
      [ $first -eq 1 ] || echo ","
      printf '    "%s": %s' "$k" "${rc[$k]}"
      first=0
    done
    echo ""
    echo "  }"
    echo "}"
  } > "$out/summary.json"
}

{
  date -u
  nvidia-smi 2>&1 || true
  nvcc --version 2>&1 || true
  c++ --version 2>&1 | head -1 || true
  echo "meson $(meson --version 2>&1), ninja $(ninja --version 2>&1)"
} > "$out/environment.txt" 2>&1

log "configure ($build, sm_$arch)"
reconfigure=""
[ -f "$build/build.ninja" ] && reconfigure="--reconfigure"
# shellcheck disable=SC2086
meson setup "$build" $reconfigure --buildtype=release --wrap-mode=nodownload \
  -Dcuda=enabled -Dgpu_arch="$arch" -Dsimd=disabled -Dtests=auto -Dbench=auto -Dgpu_bench=true -Dtools=disabled \
  -Dexamples=false > "$out/configure.log" 2>&1
rc[configure]=$?
write_summary
if [ "${rc[configure]}" -ne 0 ]; then
  tail -30 "$out/configure.log"
  log "configure failed"
  exit 1
fi

log "build"
tests="cuda_half_dequant cuda_gemv_layout cuda_gemv cuda_gemm cuda_gemv_lanes_layout cuda_gemv_lanes cuda_gemv_split_layout cuda_gemv_split cuda_gemv_pdl cuda_dense_gemv cuda_attention"
targets="bench/cuda_gemv"
# The model-runtime targets exist only when meson found the loader's headers (see QMR_GPU_INCLUDE).
if grep -q '^build tests/test_cuda_forward:' "$build/build.ninja"; then
  tests="$tests cuda_forward"
  targets="$targets bench/cuda_decode"
else
  log "no nlohmann/xsimd headers: test_cuda_forward and bench/cuda_decode not built"
fi
for t in $tests; do targets="$targets tests/test_$t"; done
# shellcheck disable=SC2086
ninja -C "$build" $targets > "$out/build.log" 2>&1
rc[build]=$?
write_summary
if [ "${rc[build]}" -ne 0 ]; then
  tail -40 "$out/build.log"
  log "build failed"
  exit 1
fi

failed=0
export QMR_TEST_DATA="$repo/tests/data" QMR_MODELS_DIR="$repo/models"
want tests || tests=""
for t in $tests; do
  log "test $t"
  timeout 240 "$build/tests/test_$t" > "$out/test_$t.txt" 2>&1
  rc[test_$t]=$?
  tail -3 "$out/test_$t.txt"
  [ "${rc[test_$t]}" -eq 0 ] || failed=1
  write_summary
done

if want bench_gemv; then
  log "bench cuda_gemv"
  # shellcheck disable=SC2086
  timeout 240 "$build/bench/cuda_gemv" --json "$out/cuda_gemv.json" ${QMR_BENCH_ARGS:-} > "$out/cuda_gemv.txt" 2>&1
  rc[bench_cuda_gemv]=$?
  cat "$out/cuda_gemv.txt"
  write_summary
fi

if want bench_decode && [ -x "$build/bench/cuda_decode" ]; then
  log "bench cuda_decode"
  # shellcheck disable=SC2086
  timeout 240 "$build/bench/cuda_decode" --json "$out/cuda_decode.json" ${QMR_DECODE_ARGS:-} > "$out/cuda_decode.txt" 2>&1
  rc[bench_cuda_decode]=$?
  cat "$out/cuda_decode.txt"
  write_summary
fi

# compute-sanitizer on a reduced test (two bit-widths, two group sizes), if time is left.
sanitizer="$(command -v compute-sanitizer || true)"
[ -z "$sanitizer" ] && [ -x /usr/local/cuda/compute-sanitizer/compute-sanitizer ] &&
  sanitizer=/usr/local/cuda/compute-sanitizer/compute-sanitizer
if ! want sanitizer; then
  log "compute-sanitizer: not asked for"
elif [ -z "$sanitizer" ]; then
  log "compute-sanitizer not found: skipped"
else
  # sanitize TOOL KEY TEST ENV: compute-sanitizer TOOL on tests/test_TEST (when built) with the
  # environment assignment ENV; the exit status goes to rc[KEY], the output to $out/KEY.txt.
  sanitize() {
    [ -x "$build/tests/test_$3" ] || return 0
    log "compute-sanitizer $1 test_$3"
    env "$4" timeout 120 "$sanitizer" --tool "$1" --error-exitcode 3 "$build/tests/test_$3" > "$out/$2.txt" 2>&1
    rc[$2]=$?
    tail -3 "$out/$2.txt"
    write_summary
  }
  for tool in memcheck racecheck; do
    # racecheck only while the whole run stays under ~4 minutes (memcheck always runs)
    if [ "$tool" = racecheck ] && [ $(($(date +%s) - start)) -gt "${QMR_RACECHECK_AFTER_S:-170}" ]; then
      log "compute-sanitizer racecheck skipped: $(($(date +%s) - start)) s elapsed"
      rc[sanitizer_racecheck]=\"skipped\"
      write_summary
      continue
    fi
    # racecheck is the slowest tool: one format family (QMR_GEMV_TEST_QUICK=2) keeps it near 30 s
    quick=1; [ "$tool" = racecheck ] && quick=2
    sanitize "$tool" "sanitizer_$tool" cuda_gemv "QMR_GEMV_TEST_QUICK=$quick"
    # The lane-layout kernel (M = 1..8): w2g64 and w4g128, symmetric and asymmetric, two shapes.
    sanitize "$tool" "sanitizer_${tool}_lanes" cuda_gemv_lanes QMR_GEMV_TEST_QUICK=1
    # The split-K kernel (M = 1..21): w2g64 and w4g128, symmetric and asymmetric, one and many
    # slices per band (its shared-memory Σx atomics and the last block's slice sums).
    sanitize "$tool" "sanitizer_${tool}_split" cuda_gemv_split QMR_GEMV_TEST_QUICK=1
    # The tiled GEMM (from 33 tokens): 3- and 4-bit at g32 and per-channel under memcheck,
    # asymmetric w4g32 with its split-K sums under racecheck.
    sanitize "$tool" "sanitizer_${tool}_gemm" cuda_gemm "QMR_GEMM_TEST_QUICK=$quick"
    # Attention: split decode runs (the last block's combine) and prefill query tiles, Qwen shape, f16.
    sanitize "$tool" "sanitizer_${tool}_attention" cuda_attention QMR_ATTENTION_TEST_QUICK=1
    # The forward pass on two small models (dense and quantized layers; graph, PDL and plain launches).
    sanitize "$tool" "sanitizer_${tool}_forward" cuda_forward QMR_FORWARD_TEST_QUICK=1
  done
  # synccheck (barriers reached by the whole block, no divergent __syncwarp): the kernels
  # with block barriers inside data-dependent loops (attention's prefill tiles and split
  # combine, the split GEMV's staging and last-block sums, the lane kernel's staging).
  sanitize synccheck sanitizer_synccheck_attention cuda_attention QMR_ATTENTION_TEST_QUICK=1
  sanitize synccheck sanitizer_synccheck_split cuda_gemv_split QMR_GEMV_TEST_QUICK=1
  sanitize synccheck sanitizer_synccheck_lanes cuda_gemv_lanes QMR_GEMV_TEST_QUICK=1
fi

log "done: results in $out"
cat "$out/summary.json"
exit $failed
