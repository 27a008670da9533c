// The SIMD matmuls compiled for AVX-512 (F, CD, DQ, BW), one of the translation units runtime dispatch chooses from.
#include "qmr/kernels/simd/dispatch_impl.hpp"

QMR_SIMD_INSTANTIATE(xsimd::avx512bw);
