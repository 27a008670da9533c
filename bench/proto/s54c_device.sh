#!/bin/bash
# Stop 54's call c (the split_wide patch's GPU tests and old against new `cuda_gemv --split-only` at 16 tokens on six
# shapes) was never run in stop 54; stop 55 ran its steps, with the wide probe added after the benchmark, as
# bench/proto/s55a_device.sh, which this runs.
exec bash "$(dirname "$0")/s55a_device.sh"
