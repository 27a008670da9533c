// The calibration BLAS kernels (f64 GEMM, f32 SYRK) compiled for SSE2 (the x86-64 baseline), one of the translation units runtime dispatch chooses from.
#include "qmr/kernels/simd/blas_impl.hpp"

QMR_SIMD_INSTANTIATE_BLAS(xsimd::sse2);
