#!/bin/bash
# Stop 36: where a decode step of the Qwen2.5-0.5B-shaped w4g128 model goes on the H100 (829 tok/s, 12.6% of its
# bandwidth bound). nsys (kernel time by name, graph nodes traced) if the machine has it, else ncu's per-kernel
# durations over a window of eager launches. gpu_carry/s36b.tgz. Writes log.txt, nsys.txt or ncu.txt under $OUT.
source "$(dirname "$0")/device_lib.sh"
which nsys ncu >> $L 2>&1; ls /usr/local/cuda/bin | grep -i nsys >> $L 2>&1
NSYS=$(command -v nsys || ls /usr/local/cuda/bin/nsys /opt/nvidia/nsight-systems/*/bin/nsys 2>/dev/null | head -1)
s=$SECONDS
if [ -n "$NSYS" ]; then
  timeout 200 $NSYS profile --cuda-graph-trace=node -o /tmp/dec -f true $F/cuda_decode --models qwen2.5-0.5b --formats w4g128 \
    --modes graph --work /tmp/dec > $OUT/run.txt 2>&1; echo "nsys rc=$? $((SECONDS-s))s" >> $L
  timeout 120 $NSYS stats --report cuda_gpu_kern_sum --format table /tmp/dec.nsys-rep > $OUT/nsys.txt 2>&1; echo "stats rc=$?" >> $L
else
  timeout 300 ncu --metrics gpu__time_duration.sum --print-summary per-kernel --launch-skip 3000 --launch-count 600 \
    $F/cuda_decode --models qwen2.5-0.5b --formats w4g128 --modes eager --work /tmp/dec > $OUT/ncu.txt 2>&1; echo "ncu rc=$? $((SECONDS-s))s" >> $L
fi
cat $L
