// The SIMD matmuls compiled for NEON on aarch64, one of the translation units runtime dispatch chooses from.
#include "qmr/kernels/simd/dispatch_impl.hpp"

QMR_SIMD_INSTANTIATE(xsimd::neon64);
