#!/bin/sh
# Runs a libFuzzer target for SECONDS on a throwaway copy of a seed corpus, so the source tree never changes.
#
# usage: run_fuzzer.sh FUZZER CORPUS_SRC SECONDS [LIBFUZZER_FLAG...]
# Extra flags go to the fuzzer as they are (meson passes -artifact_prefix= and -dict=).
# Crash, leak and timeout inputs are written where -artifact_prefix says (default: the cwd).
set -eu

if [ "$#" -lt 3 ]; then
  echo "usage: $0 FUZZER CORPUS_SRC SECONDS [LIBFUZZER_FLAG...]" >&2
  exit 2
fi
fuzzer=$1
corpus_src=$2
seconds=$3
shift 3

if [ ! -d "$corpus_src" ]; then
  echo "$0: seed corpus '$corpus_src' is not a directory" >&2
  exit 2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/qmr-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
mkdir "$work/corpus"
cp -R "$corpus_src"/. "$work/corpus/"

# UBSan only prints by default; halting makes a finding fail the run (and libFuzzer save the input).
# Options given by the caller come last and win.
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:print_summary=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export ASAN_OPTIONS="detect_leaks=1:print_summary=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"

# libFuzzer exits 77 on a finding by default, which meson reads as "skipped": make every finding status 1.
status=0
"$fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -error_exitcode=1 -timeout_exitcode=1 \
  -print_final_stats=1 "$@" "$work/corpus" || status=$?
if [ "$status" -ne 0 ]; then
  echo "$0: $fuzzer failed with status $status; the input that failed is the artifact named above" >&2
  [ "$status" -eq 77 ] && status=1
fi
exit "$status"
