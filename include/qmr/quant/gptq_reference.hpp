// GPTQ as published, unblocked and in float64: the reference that quant/gptq.hpp's blocked, lazy-update implementation is tested against (tests/quant/test_gptq.cpp) and that a study can check it with on real Hessians (tools/gptq_ood_probe.cpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

#include "../core/half.hpp"
#include "format.hpp"
#include "rtn.hpp"

// The published algorithm as the paper's reference code reads once the lazy
// batching is taken out: every column's error is applied to all later columns at
// once. Group parameters follow qmr's RTN rule (rtn_group_params), which is part of
// the format, not of GPTQ. Dead columns (H_cc = 0) are zeroed with H_cc = 1;
// dampening adds damp × mean(diag H); act order sorts columns by descending H_cc
// with static groups (parameters from the unmodified weights). O(n^3) and O(rows n^2):
// for fixtures and single layers, not models.

namespace qmr::quant::ref {

namespace detail {

inline std::size_t idx(std::int64_t r, std::int64_t c, std::int64_t cols) { return static_cast<std::size_t>(r * cols + c); }

// Row-major n×n inverse by Gauss-Jordan elimination with partial pivoting.
inline std::vector<double> invert(std::vector<double> a, std::int64_t n) {
  std::vector<double> inv(static_cast<std::size_t>(n * n), 0.0);
  for (std::int64_t i = 0; i < n; ++i) inv[idx(i, i, n)] = 1.0;
  for (std::int64_t c = 0; c < n; ++c) {
    std::int64_t p = c;
    for (std::int64_t r = c + 1; r < n; ++r)
      if (std::fabs(a[idx(r, c, n)]) > std::fabs(a[idx(p, c, n)])) p = r;
    for (std::int64_t k = 0; k < n; ++k) {
      std::swap(a[idx(c, k, n)], a[idx(p, k, n)]);
      std::swap(inv[idx(c, k, n)], inv[idx(p, k, n)]);
    }
    const double d = a[idx(c, c, n)];
    for (std::int64_t k = 0; k < n; ++k) {
      a[idx(c, k, n)] /= d;
      inv[idx(c, k, n)] /= d;
    }
    for (std::int64_t r = 0; r < n; ++r) {
      if (r == c) continue;
      const double f = a[idx(r, c, n)];
      if (f == 0) continue;
      for (std::int64_t k = 0; k < n; ++k) {
        a[idx(r, k, n)] -= f * a[idx(c, k, n)];
        inv[idx(r, k, n)] -= f * inv[idx(c, k, n)];
      }
    }
  }
  return inv;
}

// Lower Cholesky factor, textbook loops.
inline std::vector<double> cholesky(const std::vector<double>& a, std::int64_t n) {
  std::vector<double> l(static_cast<std::size_t>(n * n), 0.0);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j <= i; ++j) {
      double s = a[idx(i, j, n)];
      for (std::int64_t k = 0; k < j; ++k) s -= l[idx(i, k, n)] * l[idx(j, k, n)];
      l[idx(i, j, n)] = i == j ? std::sqrt(s) : s / l[idx(j, j, n)];
    }
  return l;
}

}  // namespace detail

// GPTQ of W0 [rows, n] (row-major) with Hessian h [n, n] into `spec`.
struct gptq_reference_result {
  std::vector<float> values;          // [rows, cols] dequantized, natural column order
  std::vector<std::uint32_t> codes;   // [rows, cols]
};

inline gptq_reference_result gptq_reference(const std::vector<float>& w0, std::int64_t rows, std::int64_t n,
                                std::vector<double> h, const format_spec& spec, bool act_order, double damp,
                                const rtn_options& rtn = {}) {
  using detail::idx;
  const std::int64_t gs = spec.group == per_channel ? n : spec.group;
  std::vector<double> w(w0.begin(), w0.end());  // [rows, n]
  std::vector<char> dead(static_cast<std::size_t>(n), 0);
  for (std::int64_t c = 0; c < n; ++c)
    if (h[idx(c, c, n)] == 0) {
      dead[static_cast<std::size_t>(c)] = 1;
      h[idx(c, c, n)] = 1;
      for (std::int64_t r = 0; r < rows; ++r) w[idx(r, c, n)] = 0;
    }
  std::vector<std::int64_t> perm(static_cast<std::size_t>(n));
  std::iota(perm.begin(), perm.end(), std::int64_t{0});
  if (act_order)
    std::stable_sort(perm.begin(), perm.end(),
                     [&](std::int64_t a, std::int64_t b) { return h[idx(a, a, n)] > h[idx(b, b, n)]; });
  std::vector<double> hp(static_cast<std::size_t>(n * n)), wp(static_cast<std::size_t>(rows * n));
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < n; ++j) hp[idx(i, j, n)] = h[idx(perm[static_cast<std::size_t>(i)], perm[static_cast<std::size_t>(j)], n)];
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t j = 0; j < n; ++j) wp[idx(r, j, n)] = w[idx(r, perm[static_cast<std::size_t>(j)], n)];
  double mean = 0;
  for (std::int64_t i = 0; i < n; ++i) mean += hp[idx(i, i, n)];
  mean /= static_cast<double>(n);
  for (std::int64_t i = 0; i < n; ++i) hp[idx(i, i, n)] += damp * mean;
  // Hinv = the upper Cholesky factor of H⁻¹: H⁻¹ = Uᵀ U, U = Lᵀ.
  const std::vector<double> l = detail::cholesky(detail::invert(hp, n), n);
  const auto u = [&](std::int64_t i, std::int64_t j) { return l[idx(j, i, n)]; };

  const int max_code = (1 << spec.bits) - 1;
  const std::int64_t n_groups = n / gs;
  std::vector<group_params> params(static_cast<std::size_t>(rows * n_groups));
  std::vector<float> vals(static_cast<std::size_t>(gs));
  if (act_order)
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t g = 0; g < n_groups; ++g) {
        for (std::int64_t i = 0; i < gs; ++i) vals[static_cast<std::size_t>(i)] = static_cast<float>(w[idx(r, g * gs + i, n)]);
        params[idx(r, g, n_groups)] = rtn_group_params(vals.data(), gs, spec.bits, spec.symmetric, rtn);
      }
  gptq_reference_result out{std::vector<float>(static_cast<std::size_t>(rows * n)),
                       std::vector<std::uint32_t>(static_cast<std::size_t>(rows * n))};
  for (std::int64_t j = 0; j < n; ++j) {
    const std::int64_t c = perm[static_cast<std::size_t>(j)], g = c / gs;
    for (std::int64_t r = 0; r < rows; ++r) {
      if (!act_order && c % gs == 0) {
        for (std::int64_t i = 0; i < gs; ++i) vals[static_cast<std::size_t>(i)] = static_cast<float>(wp[idx(r, j + i, n)]);
        params[idx(r, g, n_groups)] = rtn_group_params(vals.data(), gs, spec.bits, spec.symmetric, rtn);
      }
      const group_params p = params[idx(r, g, n_groups)];
      const double scale = qmr::to_float(p.scale);
      const double x = wp[idx(r, j, n)];
      const double level = std::clamp(std::nearbyint(x / scale) + p.zero, 0.0, static_cast<double>(max_code));
      const double q = scale * (level - p.zero);
      out.codes[idx(r, c, n)] = static_cast<std::uint32_t>(level);
      out.values[idx(r, c, n)] = static_cast<float>(q);
      const double e = (x - q) / u(j, j);
      for (std::int64_t k = j + 1; k < n; ++k) wp[idx(r, k, n)] -= e * u(j, k);
    }
  }
  return out;
}

}  // namespace qmr::quant::ref
