// AWQ (Lin et al. 2023): per-input-channel weight scales and per-group clipping, searched on calibration inputs to minimize the output error of RTN quantization.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "../core/aligned_buffer.hpp"
#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../core/thread_pool.hpp"
#include "../kernels/simd/dispatch.hpp"
#include "format.hpp"
#include "qtensor.hpp"
#include "rtn.hpp"

namespace qmr::quant {

// How the search runs. The caller folds the result: W·diag(s) is quantized, and
// the op producing x (a norm's weight, or the previous linear's rows) is divided
// by s, so that the product is unchanged before quantization.
struct awq_options {
  int grid = 20;  // α ∈ {0, 1/grid, ..., (grid-1)/grid}, as in the AWQ paper's code
  // After scaling: per group, a shrink ratio of the weight range minimizing the
  // group's output error (AWQ's auto_clip).
  bool clip_search = true;
  // Shrink ratios 1 - k/clip_grid for k = 0 .. floor(clip_max_shrink·clip_grid) - 1:
  // AWQ's auto_clip defaults (n_grid 20, max_shrink 0.5) give 1, 0.95, ..., 0.55,
  // ten candidates; a finer grid costs proportionally more GEMM time.
  int clip_grid = 20;
  float clip_max_shrink = 0.5f;
  // Rows of the calibration sample used for the error (subsampled evenly when
  // more). AWQ's auto_clip samples 512 tokens; here the clip search uses the same
  // sample as the scale search, since its cost does not grow with the tokens once
  // XᵀX is formed (see detail::output_error).
  std::int64_t max_tokens = 4096;
};

// Linears that read the same input x (q, k, v after the attention norm; gate, up
// after the MLP norm; down after up).
struct awq_scale_result {
  std::vector<float> scales;  // [cols] s_j > 0, normalized as the reference code does: s / sqrt(max s · min s)
  float alpha = 0;            // the best α
  double error_rtn = 0;       // Σ over the linears of ||X Wᵢᵀ − X Q(Wᵢ)ᵀ||² (plain RTN, s = 1)
  double error_best = 0;      // the same with the chosen scales (≤ error_rtn: α = 0 gives s = 1)
  // [grid] the error of each α in the grid; +infinity where W·diag(s) overflows an f16 scale.
  std::vector<double> errors;
};

namespace detail {

// Floor under mean|x|^α before normalizing, as AWQ's reference code clamps it
// (`.clamp(min=1e-4)`): a channel that never fires would otherwise get s = 0 and
// an infinite 1/s to fold into the previous op.
inline constexpr float awq_min_scale = 1e-4f;

// The D buffers of the searches (weight-error rows) and their products with XᵀX
// hold at most this many floats each, 16 MB: a [4864, 896] linear is two row
// chunks per candidate (few GEMM calls, each handing work to the pool once),
// while a large linear (an lm_head) does not double the process's memory.
inline constexpr std::int64_t awq_chunk_floats = std::int64_t{1} << 22;

// Rows per chunk when each row takes row_floats: as many as awq_chunk_floats
// allows, evened out so that the last chunk is not a sliver.
inline std::int64_t chunk_rows(std::int64_t rows, std::int64_t row_floats) {
  const std::int64_t most = std::max<std::int64_t>(1, awq_chunk_floats / row_floats);
  const std::int64_t chunks = (rows + most - 1) / most;
  return std::max<std::int64_t>(1, (rows + chunks - 1) / chunks);
}

inline tensor_view f32_matrix(const float* data, std::int64_t rows, std::int64_t cols) {
  return tensor_view::contiguous(reinterpret_cast<const std::byte*>(data), dtype::f32, make_shape({rows, cols}));
}

inline std::string shape_str(std::int64_t rows, std::int64_t cols) {
  return "[" + std::to_string(rows) + ", " + std::to_string(cols) + "]";
}

// Throws naming the first non-finite element of m.
inline void check_finite(matrix_view<const float> m, const std::string& what) {
  for (std::int64_t r = 0; r < m.rows; ++r)
    for (std::int64_t c = 0; c < m.cols; ++c)
      if (!std::isfinite(m(r, c)))
        throw error(what + " has a non-finite value " + std::to_string(m(r, c)) + " at (" + std::to_string(r) + ", " +
                    std::to_string(c) + ")");
}

// The calibration rows the error is measured on: x itself, or max_tokens rows
// i·n/max_tokens (i = 0 .. max_tokens-1), evenly spread over x, copied.
class token_sample {
 public:
  token_sample(matrix_view<const float> x, std::int64_t max_tokens) : view_(x) {
    check(max_tokens > 0, "awq: max_tokens must be positive, got " + std::to_string(max_tokens));
    if (x.rows <= max_tokens) return;
    copy_ = aligned_buffer<float>(static_cast<std::size_t>(max_tokens * x.cols));
    const std::int64_t q = x.rows / max_tokens, rem = x.rows % max_tokens;
    for (std::int64_t i = 0; i < max_tokens; ++i) {
      const std::int64_t src = i * q + i * rem / max_tokens;  // = floor(i·n/max_tokens), without overflow
      std::copy(x.row(src), x.row(src) + x.cols, copy_.data() + i * x.cols);
    }
    view_ = {copy_.data(), max_tokens, x.cols};
  }
  token_sample(const token_sample&) = delete;
  token_sample& operator=(const token_sample&) = delete;

  matrix_view<const float> view() const { return view_; }

 private:
  aligned_buffer<float> copy_;  // [max_tokens, cols] when subsampled, else empty
  matrix_view<const float> view_;
};

// Squared output errors ||X[:, c0:c0+len) · dᵀ||² of many weight-error rows d at
// once, on the SIMD GEMM. Two equal forms, picked by cost: with the Gram matrix
// G = XᵀX formed once (n·len² multiply-adds) a row costs len² (dᵀGd); straight
// from X a row costs n·len. Gram wins whenever len < n, AWQ's usual case (896
// columns, 4096 tokens: 4.6× fewer multiply-adds per candidate).
class output_error {
 public:
  // Column block of the symmetric Gram product: at 896 columns, 128 does 57% of
  // the full product's multiply-adds (64: 54%, 256: 63%) while each GEMM call keeps
  // 32 four-row panels to share out. Measured on the [4864, 896] search, 2 threads:
  // 1.4x less CPU time than the full product; 64 and 256 were within noise of 128.
  static constexpr std::int64_t gram_block = 128;
  output_error(matrix_view<const float> x, std::int64_t c0, std::int64_t len, thread_pool* pool)
      : x_(x.row(0) + c0, x.rows, len, x.stride), len_(len) {
    if (len >= x.rows) return;  // direct form
    aligned_buffer<float> xt(static_cast<std::size_t>(len * x.rows));  // [len, n] the slice transposed
    parallel_for(pool, len, [&](std::int64_t j0, std::int64_t j1) {
      for (std::int64_t t = 0; t < x.rows; ++t)
        for (std::int64_t j = j0; j < j1; ++j) xt[static_cast<std::size_t>(j * x.rows + t)] = x_(t, j);
    });
    aligned_buffer<float> g(static_cast<std::size_t>(len * len));  // [len, len] G = XᵀX
    simd::gemm_best(f32_matrix(xt.data(), len, x.rows), matrix_view<const float>(xt.data(), len, x.rows),
                    matrix_view<float>(g.data(), len, len), pool);
    // G is symmetric, so dᵀGd = Σ_B d_Bᵀ [G_BB, 2 G_B,>B] d_≥B over column blocks B:
    // block B's panel holds rows B of G from column B's start on, the part right of
    // the diagonal block doubled; about half of G's multiply-adds.
    for (std::int64_t j0 = 0; j0 < len; j0 += gram_block) {
      const std::int64_t rows = std::min(gram_block, len - j0), width = len - j0;
      aligned_buffer<float> panel(static_cast<std::size_t>(rows * width));  // [rows, width]
      for (std::int64_t i = 0; i < rows; ++i)
        for (std::int64_t k = 0; k < width; ++k)
          panel[static_cast<std::size_t>(i * width + k)] = (k < rows ? 1.0f : 2.0f) * g[static_cast<std::size_t>((j0 + i) * len + j0 + k)];
      panels_.push_back(std::move(panel));
    }
  }
  output_error(const output_error&) = delete;
  output_error& operator=(const output_error&) = delete;
  output_error(output_error&&) = default;

  // out[i] = ||X_slice · d_iᵀ||² for the m rows of d [m, len] (contiguous).
  void row_errors(const float* d, std::int64_t m, double* out, thread_pool* pool) {
    if (m == 0) return;
    const bool gram = !panels_.empty();
    const std::int64_t y_size = gram ? m * len_ : x_.rows * m;
    if (static_cast<std::int64_t>(y_.size()) < y_size) y_ = aligned_buffer<float>(static_cast<std::size_t>(y_size));
    if (gram) {
      // Y [m, len], block B of columns = D[:, ≥B] · panel_Bᵀ; dᵀGd = Σ_j d_j Y_j.
      // Rounding can take a near-zero form below zero; the true value is a squared norm.
      for (std::size_t b = 0; b < panels_.size(); ++b) {
        const std::int64_t j0 = static_cast<std::int64_t>(b) * gram_block;
        const std::int64_t rows = std::min(gram_block, len_ - j0), width = len_ - j0;
        simd::gemm_best(f32_matrix(panels_[b].data(), rows, width), matrix_view<const float>(d + j0, m, width, len_),
                        matrix_view<float>(y_.data() + j0, m, rows, len_), pool);
      }
      parallel_for(pool, m, [&](std::int64_t i0, std::int64_t i1) {
        for (std::int64_t i = i0; i < i1; ++i) {
          const float* di = d + i * len_;
          const float* yi = y_.data() + i * len_;
          double s = 0;
          for (std::int64_t j = 0; j < len_; ++j) s += static_cast<double>(di[j]) * yi[j];
          out[i] = std::max(0.0, s);
        }
      });
    } else {
      // Y [n, m] = X · Dᵀ; column i holds X d_i.
      simd::gemm_best(f32_matrix(d, m, len_), x_, matrix_view<float>(y_.data(), x_.rows, m), pool);
      parallel_for(pool, m, [&](std::int64_t i0, std::int64_t i1) {
        for (std::int64_t i = i0; i < i1; ++i) out[i] = 0;
        for (std::int64_t t = 0; t < x_.rows; ++t) {
          const float* yt = y_.data() + t * m;
          for (std::int64_t i = i0; i < i1; ++i) out[i] += static_cast<double>(yt[i]) * yt[i];
        }
      });
    }
  }

 private:
  matrix_view<const float> x_;  // [n, len] the column slice of the sample
  std::int64_t len_ = 0;
  // Gram form: one panel per column block B of G (see the constructor), each
  // [|B|, len - start(B)]; empty in the direct form.
  std::vector<aligned_buffer<float>> panels_;
  aligned_buffer<float> y_;  // [m, len] or [n, m] scratch, grown on demand
};

// Quantize-dequantize of one group by RTN in spec, exactly as quantize_rtn then
// dequantize would give it: out[i] = Q(v)[i].
inline void rtn_round_trip(const float* v, std::int64_t n, const format_spec& spec, float* out) {
  const group_params p = rtn_group_params(v, n, spec.bits, spec.symmetric);
  const int max_code = (1 << spec.bits) - 1;
  for (std::int64_t i = 0; i < n; ++i) out[i] = dequant_value(p.scale, quantize_value(v[i], p, max_code), p.zero);
}

// d[c] = Q(w·s)[c] / s[c] − ref[c] over row r of cols = l.cols (s empty: s = 1),
// Q being RTN in spec group by group; ref is w itself, or the weight w was clipped
// from. tmp: [l.group] scratch.
inline void scaled_rtn_error_row(const float* w, const float* ref, std::span<const float> s, const qtensor_layout& l,
                                 const format_spec& spec, std::int64_t r, float* tmp, float* d) {
  for (std::int64_t g = 0; g < l.n_groups; ++g) {
    const std::int64_t c0 = g * l.group;
    try {
      if (s.empty()) {
        rtn_round_trip(w + c0, l.group, spec, d + c0);
        for (std::int64_t i = 0; i < l.group; ++i) d[c0 + i] -= ref[c0 + i];
      } else {
        const float* sg = s.data() + c0;
        for (std::int64_t i = 0; i < l.group; ++i) tmp[i] = w[c0 + i] * sg[i];
        rtn_round_trip(tmp, l.group, spec, d + c0);
        for (std::int64_t i = 0; i < l.group; ++i) d[c0 + i] = d[c0 + i] / sg[i] - ref[c0 + i];
      }
    } catch (const error& e) {
      throw error("row " + std::to_string(r) + ", group " + std::to_string(g) + ": " + e.message());
    }
  }
}

// out[r] = ||X (Q(w_r·s)/s − ref_r)ᵀ||² for every row of w (see scaled_rtn_error_row),
// in row chunks (see chunk_rows). d: [chunk, cols] scratch, grown on demand.
inline void rtn_row_errors(matrix_view<const float> w, matrix_view<const float> ref, std::span<const float> s,
                           const qtensor_layout& l, const format_spec& spec, output_error& err, double* out,
                           aligned_buffer<float>& d, thread_pool* pool) {
  const std::int64_t chunk = chunk_rows(w.rows, l.cols);
  if (static_cast<std::int64_t>(d.size()) < chunk * l.cols) d = aligned_buffer<float>(static_cast<std::size_t>(chunk * l.cols));
  for (std::int64_t r0 = 0; r0 < w.rows; r0 += chunk) {
    const std::int64_t m = std::min(chunk, w.rows - r0);
    parallel_for(pool, m, [&](std::int64_t i0, std::int64_t i1) {
      std::vector<float> tmp(static_cast<std::size_t>(l.group));  // [group]
      for (std::int64_t i = i0; i < i1; ++i)
        scaled_rtn_error_row(w.row(r0 + i), ref.row(r0 + i), s, l, spec, r0 + i, tmp.data(), d.data() + i * l.cols);
    });
    err.row_errors(d.data(), m, out + r0, pool);
  }
}

// Shrink ratios of the clip search, largest (1: no clipping) first.
inline std::vector<float> clip_ratios(const awq_options& o) {
  check(o.clip_grid > 0, "awq: clip_grid must be positive, got " + std::to_string(o.clip_grid));
  check(o.clip_max_shrink > 0.0f && o.clip_max_shrink < 1.0f,
        "awq: clip_max_shrink must be in (0, 1), got " + std::to_string(o.clip_max_shrink));
  const int steps = std::max(1, static_cast<int>(o.clip_max_shrink * static_cast<float>(o.clip_grid)));
  std::vector<float> r(static_cast<std::size_t>(steps));
  for (int k = 0; k < steps; ++k)
    r[static_cast<std::size_t>(k)] = 1.0f - static_cast<float>(k) / static_cast<float>(o.clip_grid);
  return r;
}

// The clamp bounds of one group for shrink ratio `ratio`: [-ratio·max|w|, ratio·max|w|]
// (symmetric), [ratio·min w, ratio·max w] (asymmetric; a bound on the far side of
// zero never binds, so all-positive and all-negative groups clip one end only).
inline std::pair<float, float> clip_bounds(const float* w, std::int64_t n, bool symmetric, float ratio) {
  float lo = w[0], hi = w[0];
  for (std::int64_t i = 1; i < n; ++i) {
    lo = std::min(lo, w[i]);
    hi = std::max(hi, w[i]);
  }
  if (symmetric) {
    const float a = std::max(-lo, hi);
    return {-ratio * a, ratio * a};
  }
  return {ratio * lo, ratio * hi};
}

}  // namespace detail

// x: [n, cols] calibration inputs of the linears; weights: each [rows_i, cols] f32.
// s = mean|x|^α per input channel (x_abs_mean [cols]: the mean over ALL
// calibration tokens, passed in since the caller accumulates it over more tokens
// than x holds), floored at 1e-4 and normalized by sqrt(max s · min s); for each α:
// quantize Wᵢ·diag(s) by RTN in `spec`, dequantize, divide columns by s, measure
// the output error on x (at most options.max_tokens rows of it); keep the best
// (the first on a tie, so α = 0 unless another α is strictly better).
// An α whose scaled weights overflow an f16 scale is skipped (errors[k] = +inf).
inline awq_scale_result awq_search_scales(std::span<const matrix_view<const float>> weights,
                                          matrix_view<const float> x, std::span<const float> x_abs_mean,
                                          const format_spec& spec, const awq_options& options = {},
                                          thread_pool* pool = nullptr) {
  check(!weights.empty(), "awq_search_scales: no weights given");
  check(spec.is_quantized(), "awq_search_scales: format " + spec.str() + " is not a quantized format");
  check(options.grid > 0, "awq_search_scales: grid must be positive, got " + std::to_string(options.grid));
  const std::int64_t cols = x.cols;
  check(x.rows > 0 && cols > 0, "awq_search_scales: calibration input x is empty " + detail::shape_str(x.rows, cols));
  check(static_cast<std::int64_t>(x_abs_mean.size()) == cols,
        "awq_search_scales: x_abs_mean has " + std::to_string(x_abs_mean.size()) + " entries, x has " +
            std::to_string(cols) + " columns");
  std::vector<qtensor_layout> layouts;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    const auto& w = weights[i];
    const std::string name = "awq_search_scales: linear " + std::to_string(i) + " " + detail::shape_str(w.rows, w.cols);
    check(w.cols == cols, name + " does not match x " + detail::shape_str(x.rows, cols) + " (columns differ)");
    try {
      layouts.push_back(qtensor_layout::of(spec, w.rows, w.cols));
    } catch (const error& e) {
      throw error(name + ": " + e.message());
    }
    detail::check_finite(w, name);
  }
  for (std::int64_t j = 0; j < cols; ++j) {
    const float m = x_abs_mean[static_cast<std::size_t>(j)];
    check(std::isfinite(m) && m >= 0.0f,
          "awq_search_scales: x_abs_mean[" + std::to_string(j) + "] = " + std::to_string(m) + " (need finite, >= 0)");
  }
  detail::check_finite(x, "awq_search_scales: calibration input x");

  const detail::token_sample sample(x, options.max_tokens);
  detail::output_error err(sample.view(), 0, cols, pool);
  std::int64_t max_rows = 0;
  for (const auto& w : weights) max_rows = std::max(max_rows, w.rows);
  std::vector<double> row_err(static_cast<std::size_t>(max_rows));  // [max_rows]
  std::vector<float> s(static_cast<std::size_t>(cols));              // [cols]
  aligned_buffer<float> d;                                           // weight-error rows, see rtn_row_errors

  const auto total_error = [&](std::span<const float> scales) {
    double total = 0;
    for (std::size_t i = 0; i < weights.size(); ++i) {
      try {
        detail::rtn_row_errors(weights[i], weights[i], scales, layouts[i], spec, err, row_err.data(), d, pool);
      } catch (const error& e) {
        throw error("linear " + std::to_string(i) + ", " + e.message());
      }
      for (std::int64_t r = 0; r < weights[i].rows; ++r) total += row_err[static_cast<std::size_t>(r)];
    }
    return total;
  };

  awq_scale_result result;
  result.scales.assign(static_cast<std::size_t>(cols), 1.0f);
  result.errors.assign(static_cast<std::size_t>(options.grid), std::numeric_limits<double>::infinity());
  // α = 0: s = 1 exactly, so the error is plain RTN's (and the unscaled path skips
  // the multiply and divide, which are exact for s = 1 anyway).
  try {
    result.error_rtn = result.error_best = result.errors[0] = total_error({});
  } catch (const error& e) {
    throw error("awq_search_scales: plain RTN of the weights failed: " + e.message());
  }
  for (int k = 1; k < options.grid; ++k) {
    const float alpha = static_cast<float>(k) / static_cast<float>(options.grid);
    double lo = std::numeric_limits<double>::infinity(), hi = 0;
    for (std::int64_t j = 0; j < cols; ++j) {
      const float v = std::max(std::pow(x_abs_mean[static_cast<std::size_t>(j)], alpha), detail::awq_min_scale);
      s[static_cast<std::size_t>(j)] = v;
      lo = std::min(lo, static_cast<double>(v));
      hi = std::max(hi, static_cast<double>(v));
    }
    // In double: max · min of f32 values can overflow f32.
    const double norm = std::sqrt(hi * lo);
    for (float& v : s) v = static_cast<float>(v / norm);
    double e = std::numeric_limits<double>::infinity();
    try {
      e = total_error(s);
    } catch (const error&) {
      // The weights were checked finite and α = 0 quantized them, so this is W·diag(s)
      // beyond what an f16 scale holds: this α is not a candidate.
    }
    result.errors[static_cast<std::size_t>(k)] = e;
    if (e < result.error_best) {
      result.error_best = e;
      result.alpha = alpha;
      result.scales = s;
    }
  }
  return result;
}

// Clip search on an (already scaled) weight w [rows, cols] with its inputs x
// [n, cols] (already divided by the scales): per group, the shrink ratio of
// detail::clip_ratios minimizing the group's own output error ||X_g (Q(clip(w_g)) − w_g)||²
// (AWQ's auto_clip); w is clamped in place to [-max|w|·ratio, max|w|·ratio] per
// group (asymmetric formats: to ratio·[min, max] of the group).
// The groups are chosen one by one, so cross-group terms of a row's error are not
// seen: a row whose full output error would rise keeps its unclipped weights.
// Returns the output error ||X (Q(w) − w₀)ᵀ||² before and after (w₀ the weight as
// passed in; after ≤ before). With options.clip_search false, w is left as is.
inline std::pair<double, double> awq_clip(matrix_view<float> w, matrix_view<const float> x, const format_spec& spec,
                                          const awq_options& options = {}, thread_pool* pool = nullptr) {
  const std::string name = "awq_clip: weight " + detail::shape_str(w.rows, w.cols);
  check(spec.is_quantized(), "awq_clip: format " + spec.str() + " is not a quantized format");
  check(x.rows > 0 && x.cols > 0, "awq_clip: calibration input x is empty " + detail::shape_str(x.rows, x.cols));
  check(w.cols == x.cols, name + " does not match x " + detail::shape_str(x.rows, x.cols) + " (columns differ)");
  qtensor_layout l;
  try {
    l = qtensor_layout::of(spec, w.rows, w.cols);
  } catch (const error& e) {
    throw error(name + ": " + e.message());
  }
  const std::vector<float> ratios = detail::clip_ratios(options);
  detail::check_finite(w, name);
  detail::check_finite(x, "awq_clip: calibration input x");

  const detail::token_sample sample(x, options.max_tokens);
  detail::output_error full(sample.view(), 0, l.cols, pool);
  const auto sum = [](const std::vector<double>& v) {
    double s = 0;
    for (double e : v) s += e;
    return s;
  };
  std::vector<double> before(static_cast<std::size_t>(l.rows));  // [rows]
  aligned_buffer<float> scratch;  // weight-error rows, see rtn_row_errors
  detail::rtn_row_errors(w, w, {}, l, spec, full, before.data(), scratch, pool);
  if (!options.clip_search) return {sum(before), sum(before)};

  // The per-group forms (per-channel: the full one).
  std::vector<detail::output_error> group_err;
  group_err.reserve(static_cast<std::size_t>(l.n_groups));
  if (l.n_groups > 1)
    for (std::int64_t g = 0; g < l.n_groups; ++g) group_err.emplace_back(sample.view(), g * l.group, l.group, pool);

  const auto n_ratios = static_cast<std::int64_t>(ratios.size());
  std::vector<std::int32_t> best(static_cast<std::size_t>(l.rows * l.n_groups), 0);  // [rows, n_groups] ratio index
  const std::int64_t chunk = detail::chunk_rows(l.rows, n_ratios * l.group);
  aligned_buffer<float> d(static_cast<std::size_t>(chunk * n_ratios * l.group));  // [chunk, n_ratios, group]
  std::vector<double> cand_err(static_cast<std::size_t>(chunk * n_ratios));       // [chunk, n_ratios]
  for (std::int64_t g = 0; g < l.n_groups; ++g) {
    detail::output_error& err = l.n_groups > 1 ? group_err[static_cast<std::size_t>(g)] : full;
    const std::int64_t c0 = g * l.group;
    for (std::int64_t r0 = 0; r0 < l.rows; r0 += chunk) {
      const std::int64_t m = std::min(chunk, l.rows - r0);
      parallel_for(pool, m, [&](std::int64_t i0, std::int64_t i1) {
        std::vector<float> clipped(static_cast<std::size_t>(l.group));  // [group]
        for (std::int64_t i = i0; i < i1; ++i) {
          const float* wg = w.row(r0 + i) + c0;
          for (std::int64_t k = 0; k < n_ratios; ++k) {
            const auto [lo, hi] = detail::clip_bounds(wg, l.group, spec.symmetric, ratios[static_cast<std::size_t>(k)]);
            for (std::int64_t j = 0; j < l.group; ++j) clipped[static_cast<std::size_t>(j)] = std::clamp(wg[j], lo, hi);
            float* dk = d.data() + (i * n_ratios + k) * l.group;
            detail::rtn_round_trip(clipped.data(), l.group, spec, dk);
            for (std::int64_t j = 0; j < l.group; ++j) dk[j] -= wg[j];
          }
        }
      });
      err.row_errors(d.data(), m * n_ratios, cand_err.data(), pool);
      for (std::int64_t i = 0; i < m; ++i) {
        const double* e = cand_err.data() + i * n_ratios;
        std::int32_t k_best = 0;  // ties keep the larger ratio: clip only when it strictly helps
        for (std::int64_t k = 1; k < n_ratios; ++k)
          if (e[k] < e[k_best]) k_best = static_cast<std::int32_t>(k);
        best[static_cast<std::size_t>((r0 + i) * l.n_groups + g)] = k_best;
      }
    }
  }

  aligned_buffer<float> wc(static_cast<std::size_t>(l.rows * l.cols));  // [rows, cols] w with the chosen clamps
  parallel_for(pool, l.rows, [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; ++r)
      for (std::int64_t g = 0; g < l.n_groups; ++g) {
        const float* wg = w.row(r) + g * l.group;
        float* out = wc.data() + r * l.cols + g * l.group;
        const float ratio = ratios[static_cast<std::size_t>(best[static_cast<std::size_t>(r * l.n_groups + g)])];
        const auto [lo, hi] = detail::clip_bounds(wg, l.group, spec.symmetric, ratio);
        for (std::int64_t j = 0; j < l.group; ++j) out[j] = std::clamp(wg[j], lo, hi);
      }
  });
  std::vector<double> after(static_cast<std::size_t>(l.rows));  // [rows]
  detail::rtn_row_errors({wc.data(), l.rows, l.cols}, w, {}, l, spec, full, after.data(), scratch, pool);
  double total_after = 0;
  for (std::int64_t r = 0; r < l.rows; ++r) {
    const auto ri = static_cast<std::size_t>(r);
    if (after[ri] <= before[ri]) {
      std::copy(wc.data() + r * l.cols, wc.data() + (r + 1) * l.cols, w.row(r));
      total_after += after[ri];
    } else {
      total_after += before[ri];
    }
  }
  return {sum(before), total_after};
}

}  // namespace qmr::quant
