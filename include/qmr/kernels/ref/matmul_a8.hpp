// Scalar reference of the int8-activation ("a8") matmul mode: activations quantized to int8 per block of 32 columns, integer dot products with the weight codes, scales applied per block and group.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "../../core/error.hpp"
#include "../../core/tensor.hpp"
#include "../../core/thread_pool.hpp"
#include "../../quant/format.hpp"
#include "../../quant/qtensor.hpp"
#include "matmul.hpp"

// The a8 mode changes the numerics, so it is a separate, explicitly named mode
// (simd::gemm_a8_best, model::matmul_kernel::simd_a8); the default matmuls keep f32
// activations. What it computes, exactly:
//
// * Each row of X is cut into blocks of a8_block = 32 columns (the last block of a
//   row is shorter when K is not a multiple of 32, which only per-channel formats
//   allow). A block's scale is d = max|x| / 127 (an f32 division) and its codes are
//   a = round_half_even(x * (1 / d)) in [-127, 127], with 1 / d an f32 division too;
//   d below the smallest normal float quantizes the block to zeros. -128 is never
//   produced, which keeps the sign trick of the AVX2 / AVX-512BW kernels exact.
//   (32, like llama.cpp's Q8_0: the same activation numerics for every weight
//   format, and outliers spoil only their own 32 columns.)
// * With W(n, c) = s_w(g) * (q(c) - z(g)):
//     y(m, n) = sum_g s_w(g) * sum_{b in g} d(m, b) * sum_{c in b} (q(c) - z(g)) * a(m, c)
//   where the innermost sums are exact integers (|sum| <= 32 * 255 * 127 < 2^31).
//   Every weight group holds whole blocks (groups are multiples of 32; a per-channel
//   row is one group).
// * So y equals W · X̂ with X̂ = d * a, the dequantized activations, up to the
//   rounding of the f32 scale products and the order of the sums; each X̂ element is
//   within d / 2 of x. The SIMD kernels compute the same integer sums split as
//   sum q·a - z · sum a (the zero-point fold), hence the tolerance of their tests.
//
// Non-finite activations give unspecified (but memory-safe) results.

namespace qmr::ref {

// Columns per activation block: one f32 scale per 32 int8 activations.
inline constexpr std::int64_t a8_block = 32;

// Blocks in a row of k columns.
constexpr std::int64_t a8_blocks(std::int64_t k) { return (k + a8_block - 1) / a8_block; }

// The scale of a block whose largest magnitude is amax, and the multiplier that
// maps it to codes (0 when the scale is zero or subnormal, so that 1 / d stays finite).
inline float a8_scale(float amax) { return amax / 127.0f; }
inline float a8_inverse_scale(float d) { return d >= std::numeric_limits<float>::min() ? 1.0f / d : 0.0f; }

// round_half_even(v) then clamped to [-127, 127]. std::rint rounds in the current
// mode (to nearest, ties to even: what cvtps2dq and fcvtns do), and being a call
// rather than an addition it cannot be contracted into an FMA with the x * (1 / d)
// before it (a magic-number x + 1.5 * 2^23 could, under -ffp-contract=fast, and round
// differently from the kernels' separate multiply).
inline std::int8_t a8_code(float v) {
  const float r = std::min(127.0f, std::max(-127.0f, std::rint(v)));  // also maps NaN to -127, never UB
  return static_cast<std::int8_t>(r);
}

// x[0, k) -> q[0, k) int8 and scales[a8_blocks(k)]: the quantizer every a8 kernel
// reproduces bit for bit.
inline void quantize_a8(const float* x, std::int64_t k, std::int8_t* q, float* scales) {
  for (std::int64_t b0 = 0, b = 0; b0 < k; b0 += a8_block, ++b) {
    const std::int64_t b1 = std::min(k, b0 + a8_block);
    float amax = 0.0f;
    for (std::int64_t c = b0; c < b1; ++c) amax = std::max(amax, std::fabs(x[c]));
    const float d = a8_scale(amax);
    const float id = a8_inverse_scale(d);
    for (std::int64_t c = b0; c < b1; ++c) q[c] = a8_code(x[c] * id);
    scales[b] = d;
  }
}

namespace detail {

// Row n of W times one quantized row of X (codes a[K], block scales d[a8_blocks(K)]).
template <class Format>
float dot_row_a8(const quant::qtensor_view& w, std::int64_t n, const std::int8_t* a, const float* d) {
  const std::int64_t k = w.cols();
  const std::int64_t group = w.layout.group;
  const std::uint8_t* codes = w.codes + n * w.layout.code_row_bytes;
  float acc = 0.0f;
  for (std::int64_t g = 0; g < w.layout.n_groups; ++g) {
    const std::int32_t zero = static_cast<std::int32_t>(w.zero(n, g));
    float group_acc = 0.0f;
    for (std::int64_t b0 = g * group; b0 < std::min(k, (g + 1) * group); b0 += a8_block) {
      std::int32_t dot = 0;
      for (std::int64_t c = b0; c < std::min(k, b0 + a8_block); ++c)
        dot += (static_cast<std::int32_t>(quant::get_code(codes, c, Format::bits)) - zero) * a[c];
      group_acc += d[b0 / a8_block] * static_cast<float>(dot);
    }
    acc += to_float(w.scale(n, g)) * group_acc;
  }
  return acc;
}

}  // namespace detail

// Y[M, N] = quantize_a8(X[M, K]) · W[N, K]ᵀ for a quantized W, as described above;
// output rows of W in parallel.
inline void gemm_a8_ref(const quant::qtensor_view& w, matrix_view<const float> x, matrix_view<float> y,
                        thread_pool* pool = nullptr) {
  detail::check_gemm_shapes(w.rows(), w.cols(), x, y);
  const std::int64_t k = w.cols();
  std::vector<std::int8_t> a(static_cast<std::size_t>(x.rows * k));          // [M, K] int8 activations
  std::vector<float> d(static_cast<std::size_t>(x.rows * a8_blocks(k)));      // [M, blocks] their scales
  for (std::int64_t m = 0; m < x.rows; ++m)
    quantize_a8(x.row(m), k, a.data() + m * k, d.data() + m * a8_blocks(k));
  quant::with_format(w.spec, [&](auto format) {
    using Format = decltype(format);
    parallel_for(pool, w.rows(), [&](std::int64_t n0, std::int64_t n1) {
      for (std::int64_t m = 0; m < x.rows; ++m)
        for (std::int64_t n = n0; n < n1; ++n)
          y(m, n) = detail::dot_row_a8<Format>(w, n, a.data() + m * k, d.data() + m * a8_blocks(k));
    });
  });
}

inline void gemv_a8_ref(const quant::qtensor_view& w, std::span<const float> x, std::span<float> y,
                        thread_pool* pool = nullptr) {
  gemm_a8_ref(w, {x.data(), 1, static_cast<std::int64_t>(x.size())},
              {y.data(), 1, static_cast<std::int64_t>(y.size())}, pool);
}

}  // namespace qmr::ref
