// The FMA peak loop compiled for AVX-512.
#include "fma_peak_impl.hpp"

QMR_BENCH_FMA_PEAK_INSTANTIATE(xsimd::avx512bw);
