// The FMA peak loop compiled for AVX2 with FMA3.
#include "fma_peak_impl.hpp"

QMR_BENCH_FMA_PEAK_INSTANTIATE(xsimd::fma3<xsimd::avx2>);
