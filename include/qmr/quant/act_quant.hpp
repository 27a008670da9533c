// Activation quantization: per-token symmetric fake quantization (W·A8, W·A4 simulation) and SmoothQuant's migration scales (Xiao et al. 2022).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/tensor.hpp"

namespace qmr::quant {

// Per-token symmetric fake quantization of activations (quantize-dequantize in
// place): each row of x gets scale = max|x_row| / (2^(bits-1) - 1), and each value
// becomes scale · clamp(round(x / scale), -(2^(bits-1) - 1), 2^(bits-1) - 1), rounding
// to nearest with ties to even (as torch.round). An all-zero row stays zero.
// bits ∈ {4, 8}; anything else, or a non-finite value, is an error (x untouched).
// The result is a fixed point: quantizing it again returns it bit for bit (for
// scales in the normal f32 range; checked exhaustively over one binade of maxima).
inline void fake_quantize_per_token(matrix_view<float> x, int bits) {
  check(bits == 4 || bits == 8,
        "fake_quantize_per_token: bits must be 4 or 8, got " + std::to_string(bits));
  for (std::int64_t r = 0; r < x.rows; ++r)
    for (std::int64_t c = 0; c < x.cols; ++c)
      if (!std::isfinite(x(r, c)))
        throw error("fake_quantize_per_token: non-finite activation " + std::to_string(x(r, c)) + " at (" +
                    std::to_string(r) + ", " + std::to_string(c) + ")");
  // Symmetric: the code -2^(bits-1) is left unused so that the grid is the same on both signs.
  const float q_max = static_cast<float>((1 << (bits - 1)) - 1);
  for (std::int64_t r = 0; r < x.rows; ++r) {
    float* row = x.row(r);
    float a = 0.0f;
    for (std::int64_t c = 0; c < x.cols; ++c) a = std::max(a, std::fabs(row[c]));
    if (a == 0.0f) continue;
    // Division, not a reciprocal multiply: x / (a / q_max) puts the row's maximum
    // at ±q_max to within an ulp, and makes the result its own fixed point.
    const float scale = a / q_max;
    if (scale == 0.0f) {  // a is a subnormal so small that a / q_max underflows: a zero step, all codes 0
      std::fill(row, row + x.cols, 0.0f);
      continue;
    }
    for (std::int64_t c = 0; c < x.cols; ++c)
      row[c] = scale * std::clamp(std::nearbyint(row[c] / scale), -q_max, q_max);
  }
}

// Floor SmoothQuant's reference code puts under the weight maxima and under the
// scales (`.clamp(min=1e-5)`): a dead channel (max 0) would otherwise give s = 0
// or a division by zero.
inline constexpr float smoothquant_min = 1e-5f;

// SmoothQuant migration scales s_j = max|X_j|^α / max|W_{:,j}|^(1-α), α ∈ [0, 1]
// (default 0.5): the caller computes X·diag(1/s) (folded into the op producing X)
// and W·diag(s) (the columns of every linear reading X), which leaves X·Wᵀ unchanged
// and moves activation outliers into the weights. act_absmax [cols] over the
// calibration tokens; weight_absmax [cols] over the rows of every linear reading x.
// As the reference code does, weight_absmax is floored at 1e-5 before the power and
// s at 1e-5 after it. Sizes must match, alpha be in [0, 1] and values be finite
// and >= 0; otherwise an error names what is wrong.
inline std::vector<float> smoothquant_scales(std::span<const float> act_absmax, std::span<const float> weight_absmax,
                                             float alpha = 0.5f) {
  check(act_absmax.size() == weight_absmax.size(),
        "smoothquant_scales: act_absmax has " + std::to_string(act_absmax.size()) + " channels, weight_absmax has " +
            std::to_string(weight_absmax.size()));
  check(alpha >= 0.0f && alpha <= 1.0f, "smoothquant_scales: alpha must be in [0, 1], got " + std::to_string(alpha));
  std::vector<float> s(act_absmax.size());  // [cols]
  for (std::size_t j = 0; j < s.size(); ++j) {
    const float a = act_absmax[j], w = weight_absmax[j];
    check(std::isfinite(a) && a >= 0.0f,
          "smoothquant_scales: act_absmax[" + std::to_string(j) + "] = " + std::to_string(a) + " (need finite, >= 0)");
    check(std::isfinite(w) && w >= 0.0f, "smoothquant_scales: weight_absmax[" + std::to_string(j) +
                                             "] = " + std::to_string(w) + " (need finite, >= 0)");
    // A weighted geometric mean of a and 1/w, so s <= max(a, 1e5) always fits f32.
    const double v = std::pow(static_cast<double>(a), static_cast<double>(alpha)) /
                     std::pow(static_cast<double>(std::max(w, smoothquant_min)), 1.0 - static_cast<double>(alpha));
    s[j] = std::max(static_cast<float>(v), smoothquant_min);
  }
  return s;
}

}  // namespace qmr::quant
