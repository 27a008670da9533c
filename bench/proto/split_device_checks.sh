# Sourced by stop 35's split-kernel device scripts: split_checks DIR runs DIR/test_cuda_gemv_split (into
# $OUT/tests.txt), then its quick subset under compute-sanitizer memcheck and racecheck ($OUT/san_*.txt), each line
# of outcome appended to $L.
split_checks() {
  local d=$1 s tool san
  s=$SECONDS; timeout 120 "$d/test_cuda_gemv_split" > "$OUT/tests.txt" 2>&1; echo "split test $d rc=$? $((SECONDS-s))s" >> "$L"
  san=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)
  for tool in memcheck racecheck; do
    s=$SECONDS
    env QMR_GEMV_TEST_QUICK=1 timeout 60 "$san" --tool $tool --error-exitcode 3 "$d/test_cuda_gemv_split" > "$OUT/san_$tool.txt" 2>&1
    echo "san $tool rc=$? $((SECONDS-s))s $(tail -1 "$OUT/san_$tool.txt")" >> "$L"
  done
}
