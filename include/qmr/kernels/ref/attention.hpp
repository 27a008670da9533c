// Scalar references of the forward pass's per-token kernels: one query head's attention over a KV cache (decode), and silu(gate) · up.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace qmr::ref {

// a · b over n floats in 8 interleaved partial sums, combined pairwise. (One running
// sum would be a chain of n dependent adds that the compiler may not reorder.)
inline float dot_f32(const float* a, const float* b, int n) {
  float part[8] = {};
  int i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) part[j] += a[i + j] * b[i + j];
  float sum = ((part[0] + part[4]) + (part[1] + part[5])) + ((part[2] + part[6]) + (part[3] + part[7]));
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

// One query head against keys [0, n) of a KV cache:
//   p[s] = softmax over s of scale · (q · k_s),   out = Σ_s p[s] · v_s,
// q [d]; k_s = k + s·stride and v_s = v + s·stride, [d] each (rows of the cache);
// p [n] (the probabilities, which the forward pass's hooks report); out [d].
inline void attend_head(const float* q, const float* k, const float* v, std::int64_t stride, int d, int n, float scale,
                        float* p, float* out) {
  float max_score = -INFINITY;
  for (int s = 0; s < n; ++s) {
    p[s] = dot_f32(q, k + s * stride, d) * scale;
    max_score = std::max(max_score, p[s]);
  }
  float sum = 0;
  for (int s = 0; s < n; ++s) sum += (p[s] = std::exp(p[s] - max_score));
  const float inv = 1.0f / sum;
  for (int s = 0; s < n; ++s) p[s] *= inv;
  for (int i = 0; i < d; ++i) out[i] = 0;
  for (int s = 0; s < n; ++s) {
    const float* vs = v + s * stride;
    for (int i = 0; i < d; ++i) out[i] += p[s] * vs[i];
  }
}

// gate[i] = silu(gate[i]) · up[i] = gate[i] / (1 + exp(-gate[i])) · up[i], i < n (SwiGLU).
inline void silu_mul(float* gate, const float* up, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    gate[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

}  // namespace qmr::ref
