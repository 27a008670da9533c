// The bodies of the per-token kernels' dispatch functors (layer_ops.hpp), for the per-ISA translation units only (tools/dispatch/layer_ops_<isa>.cpp): each includes this header, compiled with its ISA's flags, and instantiates it with QMR_SIMD_INSTANTIATE_LAYER_OPS.
#pragma once

#include "layer_ops.hpp"

namespace qmr::simd {

template <class Arch>
void attend_head_fn::operator()(Arch, const float* q, const float* k, const float* v, std::int64_t stride, int d, int n,
                                float scale, float* p, float* out) const {
  attend_head<Arch>(q, k, v, stride, d, n, scale, p, out);
}

template <class Arch>
void silu_mul_fn::operator()(Arch, float* gate, const float* up, std::int64_t n) const {
  silu_mul<Arch>(gate, up, n);
}

}  // namespace qmr::simd

// Explicit instantiation of the per-token kernels' functors for one architecture tag.
#define QMR_SIMD_INSTANTIATE_LAYER_OPS(ARCH)                                                                         \
  template void qmr::simd::attend_head_fn::operator()<ARCH>(ARCH, const float*, const float*, const float*,         \
                                                            std::int64_t, int, int, float, float*, float*) const; \
  template void qmr::simd::silu_mul_fn::operator()<ARCH>(ARCH, float*, const float*, std::int64_t) const
