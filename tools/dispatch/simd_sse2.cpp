// The SIMD matmuls compiled for SSE2 (the x86-64 baseline), one of the translation units runtime dispatch chooses from.
#include "qmr/kernels/simd/dispatch_impl.hpp"

QMR_SIMD_INSTANTIATE(xsimd::sse2);
