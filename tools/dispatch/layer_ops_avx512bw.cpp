// The forward pass's per-token kernels (decode attention, silu · up) compiled for AVX-512 (F, CD, DQ, BW), one of the translation units runtime dispatch chooses from.
#include "qmr/kernels/simd/layer_ops_impl.hpp"

QMR_SIMD_INSTANTIATE_LAYER_OPS(xsimd::avx512bw);
