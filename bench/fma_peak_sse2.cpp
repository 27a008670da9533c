// The FMA peak loop compiled for SSE2.
#include "fma_peak_impl.hpp"

QMR_BENCH_FMA_PEAK_INSTANTIATE(xsimd::sse2);
