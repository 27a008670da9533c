// Round-to-nearest quantization (min-max asymmetric, absmax symmetric, optional MSE clip search) and dequantization.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../core/thread_pool.hpp"
#include "qtensor.hpp"

namespace qmr::quant {

struct rtn_options {
  // Search, per group, a shrink factor p of the range that minimizes the squared
  // error of the group (clipping outliers to gain resolution for the rest).
  bool clip_search = false;
  // p runs over 1, 1 - 1/grid, ..., down to 1 - max_shrink: GPTQ's defaults
  // (grid 100, max shrink 0.8), which find the optimum to within 1% of the range.
  int clip_grid = 100;
  float clip_max_shrink = 0.8f;
};

// Scale and zero point of one group.
struct group_params {
  f16 scale{};
  std::uint32_t zero = 0;
};

namespace detail {

// Smallest f16 not below `s` (s > 0 and finite): rounding the scale up keeps the
// whole range inside the representable codes, so RTN stays within half a step.
inline f16 f16_at_least(float s) {
  f16 h = to_f16(s);
  if (to_float(h) < s) h.bits = static_cast<std::uint16_t>(h.bits + 1);
  if (!std::isfinite(to_float(h)))
    throw error("quantization scale " + std::to_string(s) + " overflows f16 (weights beyond ±65504 * levels)");
  return h;
}

// Parameters for the range [lo, hi] (lo <= 0 <= hi for asymmetric, -a..a for symmetric).
inline group_params params_for_range(float lo, float hi, int bits, bool symmetric) {
  const int max_code = (1 << bits) - 1;
  if (symmetric) {
    const float a = std::max(-lo, hi);
    if (!(a > 0.0f)) return {to_f16(1.0f), 1u << (bits - 1)};  // all-zero group
    // 2^Bits levels centred on zero point 2^(Bits-1): step = 2a / (2^Bits - 1).
    return {f16_at_least(2.0f * a / static_cast<float>(max_code)), 1u << (bits - 1)};
  }
  if (!(hi - lo > 0.0f)) return {to_f16(1.0f), 0u};  // all-zero group
  const f16 scale = f16_at_least((hi - lo) / static_cast<float>(max_code));
  const float z = std::nearbyint(-lo / to_float(scale));
  return {scale, static_cast<std::uint32_t>(std::clamp(z, 0.0f, static_cast<float>(max_code)))};
}

inline std::uint32_t quantize_value(float x, group_params p, int max_code) {
  const float q = std::nearbyint(x / to_float(p.scale)) + static_cast<float>(p.zero);
  return static_cast<std::uint32_t>(std::clamp(q, 0.0f, static_cast<float>(max_code)));
}

inline double group_sq_error(const float* x, std::int64_t n, group_params p, int max_code) {
  double err = 0.0;
  for (std::int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(x[i]) - dequant_value(p.scale, quantize_value(x[i], p, max_code), p.zero);
    err += d * d;
  }
  return err;
}

}  // namespace detail

// Chooses scale and zero for the n values x (no codes written).
// Throws qmr::error on a non-finite value or a range too wide for an f16 scale.
inline group_params rtn_group_params(const float* x, std::int64_t n, int bits, bool symmetric,
                                     const rtn_options& options = {}) {
  float lo = 0.0f, hi = 0.0f;  // the range always holds 0, so an integer zero point exists
  for (std::int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i]))
      throw error("non-finite weight " + std::to_string(x[i]) + " at element " + std::to_string(i) + " of its group");
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  group_params best = detail::params_for_range(lo, hi, bits, symmetric);
  if (!options.clip_search) return best;
  check(options.clip_grid > 0 && options.clip_max_shrink > 0.0f && options.clip_max_shrink < 1.0f,
        "clip search needs clip_grid > 0 and 0 < clip_max_shrink < 1");
  const int max_code = (1 << bits) - 1;
  double best_err = detail::group_sq_error(x, n, best, max_code);
  const int steps = static_cast<int>(options.clip_max_shrink * static_cast<float>(options.clip_grid));
  for (int i = 1; i < steps; ++i) {
    const float p = 1.0f - static_cast<float>(i) / static_cast<float>(options.clip_grid);
    const group_params candidate = detail::params_for_range(p * lo, p * hi, bits, symmetric);
    const double err = detail::group_sq_error(x, n, candidate, max_code);
    if (err < best_err) {
      best_err = err;
      best = candidate;
    }
  }
  return best;
}

// Quantizes W[rows, cols] (f32) into `spec` by round to nearest, rows in parallel.
inline qtensor quantize_rtn(matrix_view<const float> w, const format_spec& spec, const rtn_options& options = {},
                            thread_pool* pool = nullptr, const std::string& name = "matrix") {
  qtensor q(spec, w.rows, w.cols);
  const qtensor_layout l = q.layout();
  const int max_code = (1 << spec.bits) - 1;
  parallel_for(pool, l.rows, [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; ++r) {
      const float* row = w.row(r);
      std::uint8_t* codes = q.codes().data() + r * l.code_row_bytes;
      for (std::int64_t g = 0; g < l.n_groups; ++g) {
        const float* x = row + g * l.group;
        group_params p;
        try {
          p = rtn_group_params(x, l.group, spec.bits, spec.symmetric, options);
        } catch (const error& e) {
          throw error("row " + std::to_string(r) + ", group " + std::to_string(g) + ": " + e.message(),
                      in_file({}, name));
        }
        q.scales()[static_cast<std::size_t>(r * l.n_groups + g)] = p.scale;
        if (!spec.symmetric) put_code(q.zeros().data() + r * l.zero_row_bytes, g, spec.bits, p.zero);
        for (std::int64_t i = 0; i < l.group; ++i)
          put_code(codes, g * l.group + i, spec.bits, detail::quantize_value(x[i], p, max_code));
      }
    }
  });
  return q;
}

// W[rows, cols] = dequantized q, in f32.
inline void dequantize(const qtensor_view& q, matrix_view<float> out, thread_pool* pool = nullptr) {
  if (out.rows != q.rows() || out.cols != q.cols())
    throw error("dequantize: output is [" + std::to_string(out.rows) + ", " + std::to_string(out.cols) +
                "], tensor is [" + std::to_string(q.rows()) + ", " + std::to_string(q.cols()) + "]");
  parallel_for(pool, q.rows(), [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; ++r)
      for (std::int64_t c = 0; c < q.cols(); ++c) out(r, c) = q.value(r, c);
  });
}

}  // namespace qmr::quant
