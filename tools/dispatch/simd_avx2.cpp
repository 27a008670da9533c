// The SIMD matmuls compiled for AVX2 with FMA3 and F16C, one of the translation units runtime dispatch chooses from.
#include "qmr/kernels/simd/dispatch_impl.hpp"

QMR_SIMD_INSTANTIATE(xsimd::fma3<xsimd::avx2>);
