// The forward pass's per-token kernels (decode attention, silu · up) compiled for NEON on aarch64, one of the translation units runtime dispatch chooses from.
#include "qmr/kernels/simd/layer_ops_impl.hpp"

QMR_SIMD_INSTANTIATE_LAYER_OPS(xsimd::neon64);
