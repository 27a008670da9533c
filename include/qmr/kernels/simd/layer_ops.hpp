// SIMD versions of the forward pass's per-token kernels (kernels/ref/attention.hpp): one query head's decode attention over the KV cache, and silu(gate) · up; templated on the xsimd architecture, with runtime dispatch.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include <xsimd/xsimd.hpp>

#include "../ref/attention.hpp"

namespace qmr::simd {

// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*(), which it reports as
// maybe-uninitialized inside every inlined xsimd::exp (GCC bug 105593, fixed in 13).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

// Keys scored at once in attend_head: four independent chains of FMAs (one per key)
// cover the FMA latency where d is a few vectors (d = 64 is 4 AVX-512 vectors, a
// 16-cycle chain for one key alone).
inline constexpr int attend_key_block = 4;

// Vectors of out accumulated at once in attend_head's p·V: 8 registers of sums, so
// that d = 128 (8 AVX-512 vectors) streams V in one pass and AVX2 (16 registers)
// keeps room for the loads.
inline constexpr int attend_out_vectors = 8;

// ref::attend_head on Arch's vectors: the same p and out up to summation order
// (scores: each dot product in vector lanes, then one horizontal add) and the
// exponential (xsimd::exp, within 1-2 ulp of std::exp).
template <class Arch>
void attend_head(const float* q, const float* k, const float* v, std::int64_t stride, int d, int n, float scale,
                 float* p, float* out) {
  using fb = xsimd::batch<float, Arch>;
  constexpr int lanes = static_cast<int>(fb::size);
  const int d_vec = d - d % lanes;
  // scores p[s] = scale · q·k_s and their maximum
  const auto score = [&](int s0, int count) {
    fb acc[attend_key_block];
    for (auto& a : acc) a = fb(0.0f);
    for (int i = 0; i < d_vec; i += lanes) {
      const fb qv = fb::load_unaligned(q + i);
      for (int j = 0; j < count; ++j) acc[j] = xsimd::fma(qv, fb::load_unaligned(k + (s0 + j) * stride + i), acc[j]);
    }
    for (int j = 0; j < count; ++j) {
      float t = xsimd::hadd(acc[j]);
      const float* ks = k + (s0 + j) * stride;
      for (int i = d_vec; i < d; ++i) t += q[i] * ks[i];
      p[s0 + j] = t * scale;
    }
  };
  int s = 0;
  for (; s + attend_key_block <= n; s += attend_key_block) score(s, attend_key_block);
  if (s < n) score(s, n - s);
  float max_score = -INFINITY;
  for (int t = 0; t < n; ++t) max_score = std::max(max_score, p[t]);

  // p[s] = exp(p[s] - max), their sum; the last partial vector through a buffer padded
  // with -inf, whose exponentials are 0
  const fb mx(max_score);
  fb sum_v(0.0f);
  s = 0;
  for (; s + lanes <= n; s += lanes) {
    const fb e = xsimd::exp(fb::load_unaligned(p + s) - mx);
    e.store_unaligned(p + s);
    sum_v += e;
  }
  if (s < n) {
    alignas(64) float tail[lanes];  // [lanes]: p[s..n), then -inf
    std::fill(tail, tail + lanes, -INFINITY);
    std::copy(p + s, p + n, tail);
    const fb e = xsimd::exp(fb::load_aligned(tail) - mx);
    e.store_aligned(tail);
    std::copy(tail, tail + (n - s), p + s);
    sum_v += e;
  }
  const float inv = 1.0f / xsimd::hadd(sum_v);
  const fb inv_v(inv);
  s = 0;
  for (; s + lanes <= n; s += lanes) (fb::load_unaligned(p + s) * inv_v).store_unaligned(p + s);
  for (; s < n; ++s) p[s] *= inv;

  // out = Σ_s p[s] v_s, attend_out_vectors vectors of out at a time
  for (int i0 = 0; i0 < d_vec; i0 += attend_out_vectors * lanes) {
    const int count = std::min(attend_out_vectors, (d_vec - i0) / lanes);
    fb acc[attend_out_vectors];
    for (auto& a : acc) a = fb(0.0f);
    for (int t = 0; t < n; ++t) {
      const fb pt(p[t]);
      const float* vs = v + t * stride + i0;
      for (std::ptrdiff_t j = 0; j < count; ++j) acc[j] = xsimd::fma(pt, fb::load_unaligned(vs + j * lanes), acc[j]);
    }
    for (std::ptrdiff_t j = 0; j < count; ++j) acc[j].store_unaligned(out + i0 + j * lanes);
  }
  for (int i = d_vec; i < d; ++i) {
    float t = 0;
    for (int u = 0; u < n; ++u) t += p[u] * v[u * stride + i];
    out[i] = t;
  }
}

// ref::silu_mul on Arch's vectors (xsimd::exp; the same formula).
template <class Arch>
void silu_mul(float* gate, const float* up, std::int64_t n) {
  using fb = xsimd::batch<float, Arch>;
  constexpr std::int64_t lanes = fb::size;
  std::int64_t i = 0;
  const fb one(1.0f);
  for (; i + lanes <= n; i += lanes) {
    const fb g = fb::load_unaligned(gate + i);
    (g / (one + xsimd::exp(-g)) * fb::load_unaligned(up + i)).store_unaligned(gate + i);
  }
  ref::silu_mul(gate + i, up + i, n - i);
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

// The dispatch functors; their bodies are in layer_ops_impl.hpp, compiled once per ISA
// (tools/dispatch/layer_ops_<isa>.cpp), for the reason given in dispatch.hpp.
struct attend_head_fn {
  template <class Arch>
  void operator()(Arch, const float* q, const float* k, const float* v, std::int64_t stride, int d, int n, float scale,
                  float* p, float* out) const;
};
struct silu_mul_fn {
  template <class Arch>
  void operator()(Arch, float* gate, const float* up, std::int64_t n) const;
};

}  // namespace qmr::simd
