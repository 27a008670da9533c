// The FMA peak loop compiled for NEON on aarch64.
#include "fma_peak_impl.hpp"

QMR_BENCH_FMA_PEAK_INSTANTIATE(xsimd::neon64);
