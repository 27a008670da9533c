// The forward pass's per-token SIMD kernels (layer_ops.hpp) on the best ISA this CPU runs: runtime dispatch in binaries built with the per-ISA translation units, else the kernels of the ISA the program is compiled for.
#pragma once

#include <cstdint>

#include <xsimd/xsimd.hpp>

#include "dispatch.hpp"
#include "layer_ops.hpp"

namespace qmr::simd {

// The kernels a program gets: runtime dispatch over dispatch_archs' ISAs in binaries
// built with the per-ISA translation units (QMR_SIMD_DISPATCH), else those of the ISA
// the program is compiled for.
inline void attend_head_best(const float* q, const float* k, const float* v, std::int64_t stride, int d, int n,
                             float scale, float* p, float* out) {
#if defined(QMR_SIMD_DISPATCH)
  dispatch_best_arch(attend_head_fn{}, q, k, v, stride, d, n, scale, p, out);
#else
  attend_head<xsimd::default_arch>(q, k, v, stride, d, n, scale, p, out);
#endif
}
inline void silu_mul_best(float* gate, const float* up, std::int64_t n) {
#if defined(QMR_SIMD_DISPATCH)
  dispatch_best_arch(silu_mul_fn{}, gate, up, n);
#else
  silu_mul<xsimd::default_arch>(gate, up, n);
#endif
}

}  // namespace qmr::simd
