// GPTQ (Frantar et al. 2022): column-by-column quantization that feeds each column's error back into the columns not yet quantized, weighted by the calibration Hessian, into qmr's packed formats.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include "../core/aligned_buffer.hpp"
#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../core/thread_pool.hpp"
#include "../kernels/simd/blas_dispatch.hpp"
#include "../kernels/simd/dispatch.hpp"
#include "hessian.hpp"
#include "qtensor.hpp"
#include "rtn.hpp"

namespace qmr::quant {

struct gptq_options {
  // λ = damp · mean(diag H) is added to the diagonal of H; while the Cholesky
  // factorization of H + λI fails, damp is doubled (from detail::gptq_first_escalation
  // when it is 0) up to detail::gptq_max_damp, and beyond that it is an error.
  double damp = 0.01;
  // Lazy-batch block size: errors reach the later columns once per block of this many
  // columns, by one matrix product (inside a block, per 16-column sub-block).
  // It changes speed only: every block size gives the same result up to rounding.
  int block = 128;
  // Process the columns by decreasing diag(H) (ties by column index), with STATIC
  // groups: each group's scale and zero come from the original weights of that group
  // in natural column order, so the result is exactly qmr's packed format. Without
  // act_order the columns run in natural order with the paper's dynamic groups: a
  // group's parameters are chosen, from the weights as updated so far, when its first
  // column is reached.
  bool act_order = true;
  rtn_options rtn;  // how group parameters are chosen (clip search optional)
};

struct gptq_report {
  double damp_used = 0;           // the damp fraction (of mean diag H) that finally worked
  std::int64_t dead_columns = 0;  // diag(H) == 0: weight column zeroed, H_ii set to 1 (as in the paper's code)
  // Σ_rows (w - q)ᵀ H (w - q) / 2 on the caller's H (undamped), w the original row and
  // q its dequantized row. With H from hessian_accumulator this is the calibrated
  // output error ||X Wᵀ - X Qᵀ||²_F / n, the mean over tokens of the squared error of
  // the layer's outputs: the objective GPTQ minimizes (its damped-H form is what the
  // algorithm's per-column losses (w - q)² / [H⁻¹]_jj / 2 add up to). Computed in f32
  // (relative error ~1e-4); only when a report is asked for.
  double proxy_loss = 0;
  // The same for quantize_rtn(w, spec, options.rtn): plain round to nearest with group
  // parameters from the original weights (the static groups of act_order, except that
  // dead columns keep their weights there).
  double rtn_proxy_loss = 0;
};

namespace detail {

// Smallest pivot of the Cholesky factorization, relative to its diagonal entry, that
// counts as positive: a rank-deficient H leaves pivots of n·eps ≈ 1e-12 relative
// (n ≤ ~10⁴) from rounding, of either sign, so 1e-10 keeps two orders of margin
// above them while accepting condition numbers up to ~1e10.
inline constexpr double gptq_min_pivot = 1e-10;
// Damping escalation: a damp of 0 that fails restarts from 1e-4 (a hundredth of the
// paper's default), and doubling stops at damp = 1 (λ = mean diag H): an H that is
// not positive definite even then is not a Gram matrix of calibration inputs.
inline constexpr double gptq_first_escalation = 1e-4;
inline constexpr double gptq_max_damp = 1.0;

// Calls fn(lo, hi) over [0, count) in pieces of `grain`, claimed dynamically by the
// pool's threads (serially without a pool).
template <class F>
inline void parallel_chunks(thread_pool* pool, std::int64_t count, std::int64_t grain, F&& fn) {
  if (count <= 0) return;
  if (pool) {
    pool->parallel_for(0, count, grain, fn);
  } else {
    fn(std::int64_t{0}, count);
  }
}

// Panel width of the blocked factorizations: the diagonal block is O(nb³) work done
// element by element; the panel below it and the trailing updates (n³/3 in all) go
// through simd::gemm_f64_best with k = nb, long enough for its register tile to pay off.
inline constexpr std::int64_t f64_nb = 64;
// Rows per parallel task in the panel and trailing updates: a multiple of the f64 GEMM's
// 6-row register tile, small enough to balance the triangular work over 2-16 threads,
// large enough to amortize a claim and the packing of each B strip.
inline constexpr std::int64_t f64_task_rows = 48;

// d [w, w] = L⁻¹ of the lower-triangular w×w block at l (leading dimension ldl), by
// columns of forward substitution; zero above the diagonal. O(w³/6), w <= f64_nb.
inline void invert_lower_block(const double* l, std::int64_t ldl, std::int64_t w, double* d) {
  std::fill(d, d + w * w, 0.0);
  for (std::int64_t j = 0; j < w; ++j) {
    d[j * w + j] = 1.0 / l[j * ldl + j];
    for (std::int64_t i = j + 1; i < w; ++i) {
      double s = 0;
      for (std::int64_t k = j; k < i; ++k) s += l[i * ldl + k] * d[k * w + j];
      d[i * w + j] = -s / l[i * ldl + i];
    }
  }
}

// Lower Cholesky factor L (A = L Lᵀ) of the symmetric n×n row-major A, in place,
// reading and writing only the lower triangle (the strict upper triangle is used as
// scratch and left with garbage). Returns -1, or the first column whose pivot is not
// above gptq_min_pivot times its diagonal entry (A is then left half-factored).
// Right-looking and blocked by f64_nb: each diagonal block is factored element by
// element, the panel below it solved as a product with the block's explicit inverse
// (A21 · L11⁻ᵀ), and the trailing matrix updated by A22 -= A21 A21ᵀ.
inline std::int64_t cholesky_lower(double* a, std::int64_t n, thread_pool* pool) {
  std::vector<double> diag(static_cast<std::size_t>(n));  // [n] the original diagonal
  for (std::int64_t i = 0; i < n; ++i) diag[static_cast<std::size_t>(i)] = a[i * n + i];
  std::vector<double> inv(static_cast<std::size_t>(f64_nb * f64_nb));    // [w, w] L11⁻¹
  std::vector<double> inv_t(static_cast<std::size_t>(f64_nb * f64_nb));  // [w, w] L11⁻ᵀ
  std::vector<double> panel;    // [n - k1, w] A21 before the solve
  std::vector<double> panel_t;  // [w, n - k1] the finished panel, transposed
  for (std::int64_t k0 = 0; k0 < n; k0 += f64_nb) {
    const std::int64_t k1 = std::min(n, k0 + f64_nb), w = k1 - k0;
    // The diagonal block, unblocked (earlier panels are already subtracted from it).
    for (std::int64_t i = k0; i < k1; ++i) {
      double* ai = a + i * n;
      for (std::int64_t j = k0; j <= i; ++j) {
        const double* aj = a + j * n;
        double s = ai[j];
        for (std::int64_t m = k0; m < j; ++m) s -= ai[m] * aj[m];
        if (j < i) {
          ai[j] = s / aj[j];
        } else {
          if (!(s > gptq_min_pivot * diag[static_cast<std::size_t>(i)])) return i;
          ai[i] = std::sqrt(s);
        }
      }
    }
    if (k1 == n) break;
    invert_lower_block(a + k0 * n + k0, n, w, inv.data());
    for (std::int64_t i = 0; i < w; ++i)
      for (std::int64_t j = 0; j < w; ++j) inv_t[static_cast<std::size_t>(j * w + i)] = inv[static_cast<std::size_t>(i * w + j)];
    // The panel below it, A[k1:, k0:k1] = A21 · L11⁻ᵀ, and its transpose for the update.
    const std::int64_t rest = n - k1;
    const std::int64_t tasks = (rest + f64_task_rows - 1) / f64_task_rows;
    panel.resize(static_cast<std::size_t>(rest * w));
    panel_t.resize(static_cast<std::size_t>(w * rest));
    parallel_chunks(pool, tasks, 1, [&](std::int64_t t0, std::int64_t t1) {
      for (std::int64_t t = t0; t < t1; ++t) {
        const std::int64_t i0 = t * f64_task_rows, i1 = std::min(rest, i0 + f64_task_rows);
        for (std::int64_t i = i0; i < i1; ++i) {
          double* ai = a + (k1 + i) * n + k0;
          std::copy(ai, ai + w, panel.data() + i * w);
          std::fill(ai, ai + w, 0.0);
        }
        simd::gemm_f64_best(a + (k1 + i0) * n + k0, n, panel.data() + i0 * w, w, inv_t.data(), w, i1 - i0, w, w, 1.0);
        for (std::int64_t i = i0; i < i1; ++i)
          for (std::int64_t m = 0; m < w; ++m) panel_t[static_cast<std::size_t>(m * rest + i)] = a[(k1 + i) * n + k0 + m];
      }
    });
    // The trailing matrix: A[k1:, k1:] -= P Pᵀ, P = A[k1:, k0:k1], lower part (each
    // task also writes a little of the upper triangle next to the diagonal: scratch).
    parallel_chunks(pool, tasks, 1, [&](std::int64_t t0, std::int64_t t1) {
      for (std::int64_t t = t0; t < t1; ++t) {
        const std::int64_t i0 = t * f64_task_rows, i1 = std::min(rest, i0 + f64_task_rows);
        simd::gemm_f64_best(a + (k1 + i0) * n + k1, n, a + (k1 + i0) * n + k0, n, panel_t.data(), rest, i1 - i0, i1, w,
                            -1.0);
      }
    });
  }
  return -1;
}

// L⁻¹ of the lower-triangular n×n row-major L, in place. The strict upper triangle
// must be zero on entry and stays zero. Blocked right to left: with L = [L11 0; L21
// L22] and L22⁻¹ already in place, L21 becomes -L22⁻¹ · L21 · L11⁻¹.
inline void invert_lower(double* a, std::int64_t n, thread_pool* pool) {
  const std::int64_t blocks = (n + f64_nb - 1) / f64_nb;
  std::vector<double> d(static_cast<std::size_t>(f64_nb * f64_nb));  // [w, w] L11⁻¹
  std::vector<double> t;                                           // [n - j1, w] L22⁻¹ · L21
  for (std::int64_t blk = blocks - 1; blk >= 0; --blk) {
    const std::int64_t j0 = blk * f64_nb, j1 = std::min(n, j0 + f64_nb), w = j1 - j0;
    invert_lower_block(a + j0 * n + j0, n, w, d.data());
    const std::int64_t rest = n - j1;
    if (rest > 0) {
      t.assign(static_cast<std::size_t>(rest * w), 0.0);
      const std::int64_t tasks = (rest + f64_task_rows - 1) / f64_task_rows;
      // t = L22⁻¹ · L21: row i of L22⁻¹ is zero right of the diagonal, so each task
      // stops k at its last row.
      parallel_chunks(pool, tasks, 1, [&](std::int64_t t0, std::int64_t t1) {
        for (std::int64_t task = t0; task < t1; ++task) {
          const std::int64_t i0 = task * f64_task_rows, i1 = std::min(rest, i0 + f64_task_rows);
          simd::gemm_f64_best(t.data() + i0 * w, w, a + (j1 + i0) * n + j1, n, a + j1 * n + j0, n, i1 - i0, w, i1, 1.0);
        }
      });
      // L21 = -t · L11⁻¹.
      parallel_chunks(pool, tasks, 1, [&](std::int64_t t0, std::int64_t t1) {
        for (std::int64_t task = t0; task < t1; ++task) {
          const std::int64_t i0 = task * f64_task_rows, i1 = std::min(rest, i0 + f64_task_rows);
          for (std::int64_t i = i0; i < i1; ++i) std::fill_n(a + (j1 + i) * n + j0, w, 0.0);
          simd::gemm_f64_best(a + (j1 + i0) * n + j0, n, t.data() + i0 * w, w, d.data(), w, i1 - i0, w, w, -1.0);
        }
      });
    }
    for (std::int64_t i = 0; i < w; ++i)
      std::copy_n(d.data() + i * w, w, a + (j0 + i) * n + j0);
  }
}

// GPTQ's factor of H: the upper-triangular U with (H + λI)⁻¹ = Uᵀ U, [n, n] row-major,
// for the caller's H seen through `perm` (position -> column) with dead diagonals set
// to 1. Computed as the lower Cholesky factor L' of J H J (J reverses the order),
// inverted: then U = J L'⁻¹ J, which in row-major storage is the array reversed. This
// is the paper's cholesky → cholesky_inverse → cholesky(upper) in one factorization
// and one triangular inverse (2n³/3 flops instead of 4n³/3).
struct inverse_factor {
  std::vector<double> u;  // [n, n] row-major, zero below the diagonal
  double damp = 0;
};

inline inverse_factor gptq_inverse_factor(std::span<const double> h, std::int64_t n,
                                          const std::vector<std::int64_t>& perm, const std::vector<char>& dead,
                                          double damp, thread_pool* pool, const std::string& name) {
  // H(p, q) read from the caller's upper triangle, dead diagonals 1.
  const auto h_at = [&](std::int64_t p, std::int64_t q) {
    if (p == q && dead[static_cast<std::size_t>(p)]) return 1.0;
    return p <= q ? h[static_cast<std::size_t>(p * n + q)] : h[static_cast<std::size_t>(q * n + p)];
  };
  double mean_diag = 0;
  for (std::int64_t c = 0; c < n; ++c) mean_diag += h_at(c, c);
  mean_diag /= static_cast<double>(n);

  inverse_factor out;
  out.u.resize(static_cast<std::size_t>(n * n));
  double* a = out.u.data();
  for (;;) {
    const double lambda = damp * mean_diag;
    // a = J P H Pᵀ J + λI, lower triangle: position i is column perm[n - 1 - i].
    parallel_chunks(pool, n, 64, [&](std::int64_t r0, std::int64_t r1) {
      for (std::int64_t i = r0; i < r1; ++i) {
        const std::int64_t p = perm[static_cast<std::size_t>(n - 1 - i)];
        for (std::int64_t j = 0; j <= i; ++j) a[i * n + j] = h_at(p, perm[static_cast<std::size_t>(n - 1 - j)]);
        a[i * n + i] += lambda;
      }
    });
    const std::int64_t failed = cholesky_lower(a, n, pool);
    if (failed < 0) break;
    const double next = damp > 0 ? 2 * damp : gptq_first_escalation;
    if (next > gptq_max_damp)
      throw error("GPTQ: H + λI is not positive definite even with damp " + std::to_string(damp) +
                      " (λ = damp · mean diag H; Cholesky pivot of column " +
                      std::to_string(perm[static_cast<std::size_t>(n - 1 - failed)]) +
                      "): H is not the Gram matrix of real calibration inputs",
                  in_file({}, name));
    damp = next;
  }
  out.damp = damp;
  for (std::int64_t i = 0; i < n; ++i) std::fill(a + i * n + i + 1, a + (i + 1) * n, 0.0);
  invert_lower(a, n, pool);
  std::reverse(out.u.begin(), out.u.end());
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = i; j < n; ++j)
      if (!std::isfinite(a[i * n + j]) || (i == j && !(a[i * n + i] > 0)))
        throw error("GPTQ: the inverse Cholesky factor of H is not finite at (" + std::to_string(i) + ", " +
                        std::to_string(j) + ") (H is too ill-conditioned; raise damp)",
                    in_file({}, name));
  return out;
}

// Σ_r (w_r - q_r)ᵀ H (w_r - q_r) / 2 for the dequantized q, H read from its upper
// triangle: E · H by the f32 SIMD GEMM in chunks of rows, then summed in double.
inline double gptq_proxy_loss(matrix_view<const float> w, const qtensor_view& q, std::span<const double> h,
                              thread_pool* pool) {
  const std::int64_t rows = w.rows, n = w.cols;
  aligned_buffer<float> hf(static_cast<std::size_t>(n * n));  // [n, n] H in f32, symmetric
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < n; ++j)
      hf[static_cast<std::size_t>(i * n + j)] =
          static_cast<float>(i <= j ? h[static_cast<std::size_t>(i * n + j)] : h[static_cast<std::size_t>(j * n + i)]);
  const tensor_view hv =
      tensor_view::contiguous(reinterpret_cast<const std::byte*>(hf.data()), dtype::f32, make_shape({n, n}));
  // 64 rows of E and E·H at a time: enough rows for the GEMM's register tiles.
  constexpr std::int64_t chunk = 64;
  aligned_buffer<float> e(static_cast<std::size_t>(std::min(rows, chunk) * n));   // [chunk, n] w - q
  aligned_buffer<float> eh(static_cast<std::size_t>(std::min(rows, chunk) * n));  // [chunk, n] (w - q) · H
  double loss = 0;
  for (std::int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const std::int64_t m = std::min(chunk, rows - r0);
    for (std::int64_t r = 0; r < m; ++r)
      for (std::int64_t c = 0; c < n; ++c) e[static_cast<std::size_t>(r * n + c)] = w(r0 + r, c) - q.value(r0 + r, c);
    simd::gemm_best(hv, matrix_view<const float>(e.data(), m, n), matrix_view<float>(eh.data(), m, n), pool);
    for (std::int64_t i = 0; i < m * n; ++i)
      loss += static_cast<double>(e[static_cast<std::size_t>(i)]) * static_cast<double>(eh[static_cast<std::size_t>(i)]);
  }
  return loss / 2;
}

// Rows per GPTQ task: every row runs the whole column sweep independently (given U),
// so rows are split into tasks; 64 rows make the lazy update's A operand [64, block]
// doubles (64 KB) L2-resident, while each task streams U once.
inline constexpr std::int64_t gptq_task_rows = 64;
// Columns per eager sub-block inside a lazy block: each quantized column's error is
// applied at once only to the rest of its sub-block (an axpy of at most 15 columns, at
// the caller's baseline ISA), and the sub-block's errors reach the rest of the block by
// one simd::gemm_f64_best call with k = 16, instead of axpys averaging block / 2 columns.
inline constexpr std::int64_t gptq_sub_block = 16;

// The checks of W and of the sizes both quantize_gptq overloads make, in this order: W
// a non-empty matrix, `spec` a format for it, H [n, n], a positive block, W finite.
inline void check_gptq_inputs(matrix_view<const float> w, std::size_t h_size, const format_spec& spec,
                              const gptq_options& options, const error_context& where) {
  const std::int64_t rows = w.rows, n = w.cols;
  check(rows > 0 && n > 0 && w.data != nullptr && w.stride >= n,
        "GPTQ: weight is [" + std::to_string(rows) + ", " + std::to_string(n) + "], expected a non-empty matrix", where);
  try {
    qtensor_layout::of(spec, rows, n);
  } catch (const error& e) {
    throw error("GPTQ: " + e.message(), where);
  }
  check(static_cast<std::int64_t>(h_size) == n * n,
        "GPTQ: H has " + std::to_string(h_size) + " elements, expected [" + std::to_string(n) + ", " +
            std::to_string(n) + "] = " + std::to_string(n * n) + " for a weight of " + std::to_string(n) + " columns",
        where);
  check(options.block >= 1, "GPTQ: block size must be positive, got " + std::to_string(options.block), where);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < w.cols; ++c)
      if (!std::isfinite(w(r, c)))
        throw error("GPTQ: non-finite weight " + std::to_string(w(r, c)) + " at row " + std::to_string(r) +
                        ", column " + std::to_string(c),
                    where);
}

}  // namespace detail

// What GPTQ derives from H alone, shared by every linear that reads the same input (q/k/v
// one H, gate/up another): the dead columns, the processing order and the inverse factor U.
// From gptq_prepare; quantize_gptq with a prepared factor skips the factorization (O(n³)).
struct gptq_factor {
  std::int64_t cols = 0;
  bool act_order = true;               // the order it was made for (options.act_order)
  std::vector<char> dead;              // [cols] diag(H) == 0
  std::int64_t dead_count = 0;
  std::vector<std::int64_t> perm;      // [cols] processing position -> column
  detail::inverse_factor inverse;      // U [cols, cols], positions in processing order
};

// Validates H [n, n] (only its upper triangle is read: finite, non-negative diagonal) and
// factors it for options.act_order and options.damp. Errors name `name`.
inline gptq_factor gptq_prepare(std::span<const double> h, std::int64_t n, const gptq_options& options = {},
                                thread_pool* pool = nullptr, const std::string& name = "matrix") {
  const error_context where = in_file({}, name);
  check(n > 0 && static_cast<std::int64_t>(h.size()) == n * n,
        "GPTQ: H has " + std::to_string(h.size()) + " elements, expected [" + std::to_string(n) + ", " +
            std::to_string(n) + "] = " + std::to_string(n * n) + " for a weight of " + std::to_string(n) + " columns",
        where);
  check(std::isfinite(options.damp) && options.damp >= 0,
        "GPTQ: damp must be finite and non-negative, got " + std::to_string(options.damp), where);
  for (std::int64_t i = 0; i < n * n; ++i)
    if (!std::isfinite(h[static_cast<std::size_t>(i)]))
      throw error("GPTQ: non-finite H(" + std::to_string(i / n) + ", " + std::to_string(i % n) +
                      ") = " + std::to_string(h[static_cast<std::size_t>(i)]),
                  where);

  gptq_factor f;
  f.cols = n;
  f.act_order = options.act_order;
  f.dead.assign(static_cast<std::size_t>(n), 0);
  std::vector<double> diag(static_cast<std::size_t>(n));  // [n] diag(H), dead ones 1
  for (std::int64_t c = 0; c < n; ++c) {
    const double d = h[static_cast<std::size_t>(c * n + c)];
    check(d >= 0, "GPTQ: H(" + std::to_string(c) + ", " + std::to_string(c) + ") = " + std::to_string(d) +
                      " is negative: H is not a Gram matrix",
          where);
    f.dead[static_cast<std::size_t>(c)] = d == 0;
    f.dead_count += d == 0;
    diag[static_cast<std::size_t>(c)] = d == 0 ? 1.0 : d;
  }
  f.perm.resize(static_cast<std::size_t>(n));
  std::iota(f.perm.begin(), f.perm.end(), std::int64_t{0});
  if (options.act_order)
    std::stable_sort(f.perm.begin(), f.perm.end(), [&](std::int64_t x, std::int64_t y) {
      return diag[static_cast<std::size_t>(x)] > diag[static_cast<std::size_t>(y)];
    });
  f.inverse = detail::gptq_inverse_factor(h, n, f.perm, f.dead, options.damp, pool, name);
  return f;
}

// Quantizes W[rows, cols] (f32, rows = out_features) with GPTQ given the calibration
// Hessian H [cols, cols] (row-major, symmetric: only its upper triangle is read;
// from hessian_accumulator) and its factor from gptq_prepare(h, cols, options) (the same
// options). Bad input (wrong sizes, non-finite W, a factor made for another H or order)
// is a qmr::error naming `name`; H is only read again for the report.
inline qtensor quantize_gptq(matrix_view<const float> w, std::span<const double> h, const gptq_factor& factor,
                             const format_spec& spec, const gptq_options& options = {}, thread_pool* pool = nullptr,
                             const std::string& name = "matrix", gptq_report* report = nullptr) {
  const error_context where = in_file({}, name);
  const std::int64_t rows = w.rows, n = w.cols;
  detail::check_gptq_inputs(w, h.size(), spec, options, where);
  check(factor.cols == n && factor.act_order == options.act_order &&
            static_cast<std::int64_t>(factor.inverse.u.size()) == n * n,
        "GPTQ: the prepared factor is for " + std::to_string(factor.cols) + " columns" +
            (factor.act_order == options.act_order ? "" : " and another act_order") + ", the weight has " +
            std::to_string(n),
        where);
  qtensor q(spec, rows, n);
  const qtensor_layout l = q.layout();

  const std::vector<char>& dead = factor.dead;
  const std::vector<std::int64_t>& perm = factor.perm;
  const double* u = factor.inverse.u.data();  // [n, n] upper, positions in processing order

  const int bits = spec.bits;
  const int max_code = (1 << bits) - 1;
  const std::int64_t gs = l.group, n_groups = l.n_groups;
  const std::int64_t block = options.block;
  const std::int64_t tasks = (rows + detail::gptq_task_rows - 1) / detail::gptq_task_rows;
  detail::parallel_chunks(pool, tasks, 1, [&](std::int64_t task0, std::int64_t task1) {
    for (std::int64_t task = task0; task < task1; ++task) {
      const std::int64_t r0 = task * detail::gptq_task_rows, r1 = std::min(rows, r0 + detail::gptq_task_rows);
      const std::int64_t m = r1 - r0;
      std::vector<double> wk(static_cast<std::size_t>(m * n));  // [m, n] weights being updated, processing order
      std::vector<double> err(static_cast<std::size_t>(m * std::min(block, n)));  // [m, block] (w - q) / U_jj
      std::vector<group_params> params(static_cast<std::size_t>(m * n_groups));  // [m, n_groups]
      std::vector<float> group_values(static_cast<std::size_t>(gs));              // [gs] one group, for its params
      for (std::int64_t r = 0; r < m; ++r)
        for (std::int64_t j = 0; j < n; ++j) {
          const std::int64_t c = perm[static_cast<std::size_t>(j)];
          wk[static_cast<std::size_t>(r * n + j)] = dead[static_cast<std::size_t>(c)] ? 0.0 : w(r0 + r, c);
        }
      const auto choose = [&](std::int64_t r, std::int64_t g, const float* x) {
        try {
          params[static_cast<std::size_t>(r * n_groups + g)] = rtn_group_params(x, gs, bits, spec.symmetric, options.rtn);
        } catch (const error& e) {
          throw error("GPTQ: row " + std::to_string(r0 + r) + ", group " + std::to_string(g) + ": " + e.message(), where);
        }
      };
      if (options.act_order) {
        // Static groups: from the original weights (dead columns zeroed), natural order.
        for (std::int64_t r = 0; r < m; ++r)
          for (std::int64_t g = 0; g < n_groups; ++g) {
            for (std::int64_t i = 0; i < gs; ++i)
              group_values[static_cast<std::size_t>(i)] =
                  dead[static_cast<std::size_t>(g * gs + i)] ? 0.0f : w(r0 + r, g * gs + i);
            choose(r, g, group_values.data());
          }
      }
      std::uint8_t* codes = q.codes().data() + r0 * l.code_row_bytes;
      for (std::int64_t i1 = 0; i1 < n; i1 += block) {
        const std::int64_t i2 = std::min(n, i1 + block), bw = i2 - i1;
        // Within the block, sub-blocks of gptq_sub_block columns: errors are applied
        // eagerly inside a sub-block, to the rest of the block by one small product.
        for (std::int64_t h1 = i1; h1 < i2; h1 += detail::gptq_sub_block) {
          const std::int64_t h2 = std::min(i2, h1 + detail::gptq_sub_block);
          for (std::int64_t j = h1; j < h2; ++j) {
            const std::int64_t c = perm[static_cast<std::size_t>(j)], g = c / gs;
            const double d = u[j * n + j];
            const double* uj = u + j * n;
            for (std::int64_t r = 0; r < m; ++r) {
              double* wr = wk.data() + r * n;
              double* er = err.data() + r * bw;
              if (!options.act_order && c % gs == 0) {
                // Dynamic group: its current weights. Columns of this sub-block have
                // every update so far; the rest of the block lacks this sub-block's
                // errors, later blocks this block's: added here.
                for (std::int64_t i = 0; i < gs; ++i) {
                  const std::int64_t col = j + i;
                  double v = wr[col];
                  if (col >= h2)
                    for (std::int64_t k = col >= i2 ? i1 : h1; k < j; ++k) v -= er[k - i1] * u[k * n + col];
                  group_values[static_cast<std::size_t>(i)] = static_cast<float>(v);
                }
                choose(r, g, group_values.data());
              }
              const group_params p = params[static_cast<std::size_t>(r * n_groups + g)];
              const double x = wr[j];
              if (!std::isfinite(x))
                throw error("GPTQ: row " + std::to_string(r0 + r) + ", column " + std::to_string(c) +
                                " became non-finite during the error feedback (raise damp)",
                            where);
              const double scale = to_float(p.scale);
              const double level = std::clamp(std::nearbyint(x / scale) + static_cast<double>(p.zero), 0.0,
                                              static_cast<double>(max_code));
              put_code(codes + r * l.code_row_bytes, c, bits, static_cast<std::uint32_t>(level));
              const double e = (x - scale * (level - static_cast<double>(p.zero))) / d;
              er[j - i1] = e;
              for (std::int64_t k = j + 1; k < h2; ++k) wr[k] -= e * uj[k];
            }
          }
          if (h2 < i2)
            simd::gemm_f64_best(wk.data() + h2, n, err.data() + (h1 - i1), bw, u + h1 * n + h2, n, m, i2 - h2, h2 - h1,
                                -1.0);
        }
        // Lazy batch: the block's errors reach every later column at once.
        if (i2 < n) simd::gemm_f64_best(wk.data() + i2, n, err.data(), bw, u + i1 * n + i2, n, m, n - i2, bw, -1.0);
      }
      for (std::int64_t r = 0; r < m; ++r)
        for (std::int64_t g = 0; g < n_groups; ++g) {
          const group_params p = params[static_cast<std::size_t>(r * n_groups + g)];
          q.scales()[static_cast<std::size_t>((r0 + r) * n_groups + g)] = p.scale;
          if (!spec.symmetric) put_code(q.zeros().data() + (r0 + r) * l.zero_row_bytes, g, bits, p.zero);
        }
    }
  });

  if (report) {
    report->damp_used = factor.inverse.damp;
    report->dead_columns = factor.dead_count;
    report->proxy_loss = detail::gptq_proxy_loss(w, q.view(), h, pool);
    const qtensor rtn = quantize_rtn(w, spec, options.rtn, pool, name);
    report->rtn_proxy_loss = detail::gptq_proxy_loss(w, rtn.view(), h, pool);
  }
  return q;
}

// The same, factoring H here (gptq_prepare): for a linear whose H no other linear shares.
// Bad input (wrong sizes, non-finite W or H, a negative diagonal, an H no damping makes
// positive definite) is a qmr::error naming `name`.
inline qtensor quantize_gptq(matrix_view<const float> w, std::span<const double> h, const format_spec& spec,
                             const gptq_options& options = {}, thread_pool* pool = nullptr,
                             const std::string& name = "matrix", gptq_report* report = nullptr) {
  // The weight's checks first, then H's and damp's in gptq_prepare.
  detail::check_gptq_inputs(w, h.size(), spec, options, in_file({}, name));
  const gptq_factor factor = gptq_prepare(h, w.cols, options, pool, name);
  return quantize_gptq(w, h, factor, spec, options, pool, name, report);
}

}  // namespace qmr::quant
