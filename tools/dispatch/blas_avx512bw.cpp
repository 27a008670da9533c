// The calibration BLAS kernels (f64 GEMM, f32 SYRK) compiled for AVX-512 (F, CD, DQ, BW), one of the translation units runtime dispatch chooses from.
#include "qmr/kernels/simd/blas_impl.hpp"

QMR_SIMD_INSTANTIATE_BLAS(xsimd::avx512bw);
