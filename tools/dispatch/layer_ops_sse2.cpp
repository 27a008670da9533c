// The forward pass's per-token kernels (decode attention, silu · up) compiled for SSE2 (the x86-64 baseline), one of the translation units runtime dispatch chooses from.
#include "qmr/kernels/simd/layer_ops_impl.hpp"

QMR_SIMD_INSTANTIATE_LAYER_OPS(xsimd::sse2);
