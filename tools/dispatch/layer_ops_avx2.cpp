// The forward pass's per-token kernels (decode attention, silu · up) compiled for AVX2 with FMA3 and F16C, one of the translation units runtime dispatch chooses from.
#include "qmr/kernels/simd/layer_ops_impl.hpp"

QMR_SIMD_INSTANTIATE_LAYER_OPS(xsimd::fma3<xsimd::avx2>);
