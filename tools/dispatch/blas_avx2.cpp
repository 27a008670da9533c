// The calibration BLAS kernels (f64 GEMM, f32 SYRK) compiled for AVX2 with FMA3 and F16C, one of the translation units runtime dispatch chooses from.
#include "qmr/kernels/simd/blas_impl.hpp"

QMR_SIMD_INSTANTIATE_BLAS(xsimd::fma3<xsimd::avx2>);
