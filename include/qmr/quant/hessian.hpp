// Calibration Hessian of a linear layer, H = (2/n) Σ x xᵀ over its inputs, accumulated batch by batch for GPTQ.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "../core/aligned_buffer.hpp"
#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../core/thread_pool.hpp"
#include "../kernels/simd/blas_dispatch.hpp"

namespace qmr::quant {

// H = (2/n) Σ_t x_t x_tᵀ over the n calibration rows seen so far (GPTQ's
// normalization: the Hessian of the mean squared output error Σ_t ||(W - Q) x_t||² / n
// with respect to a row of W), accumulated batch by batch so that memory stays
// [cols, cols] whatever the number of tokens.
//
// Each batch is cut into chunks of chunk_tokens rows, packed into column panels, and
// the upper triangle of the chunk's Σ x xᵀ (H is symmetric) added into a double
// accumulator by the SIMD SYRK kernel (kernels/simd/blas.hpp): f32 products summed
// over at most 128 tokens at a time, those partial sums in double, so precision does
// not degrade with the number of tokens.
class hessian_accumulator {
 public:
  explicit hessian_accumulator(std::int64_t cols) : cols_(cols) {
    check(cols > 0, "hessian_accumulator: the column count must be positive, got " + std::to_string(cols));
    sum_.assign(static_cast<std::size_t>(cols) * static_cast<std::size_t>(cols), 0.0);
  }

  // Adds the calibration rows x [tokens, cols]. A shape mismatch or a non-finite value
  // is an error naming it, and leaves the accumulator unchanged. Batches of a few
  // hundred tokens or more keep the SYRK kernel at full speed; one token per call is
  // exact but pays the packing and the accumulator's update each time.
  void add(matrix_view<const float> x, thread_pool* pool = nullptr) {
    const std::string shape = "[" + std::to_string(x.rows) + ", " + std::to_string(x.cols) + "]";
    check(x.rows >= 0 && x.cols == cols_ && x.stride >= x.cols,
          "hessian_accumulator: calibration batch is " + shape + ", expected [tokens, " + std::to_string(cols_) + "]");
    if (x.rows == 0) return;
    check(x.data != nullptr, "hessian_accumulator: calibration batch " + shape + " has no data");
    // Validate everything before changing anything: rows in parallel, and the first
    // bad value (in row order) found again serially for the message.
    std::atomic<bool> finite{true};
    parallel_for(pool, x.rows, [&](std::int64_t t0, std::int64_t t1) {
      bool ok = true;
      for (std::int64_t t = t0; t < t1 && ok; ++t) {
        const float* row = x.row(t);
        for (std::int64_t c = 0; c < cols_; ++c) ok = ok && std::isfinite(row[c]);
      }
      if (!ok) finite.store(false, std::memory_order_relaxed);
    });
    if (!finite.load())
      for (std::int64_t t = 0; t < x.rows; ++t) {
        const float* row = x.row(t);
        for (std::int64_t c = 0; c < cols_; ++c)
          if (!std::isfinite(row[c]))
            throw error("hessian_accumulator: non-finite activation " + std::to_string(row[c]) + " at token " +
                        std::to_string(t) + ", column " + std::to_string(c) + " of a " + shape + " batch");
      }

    const std::int64_t panels = simd::syrk_panels(cols_);
    if (pack_.empty()) pack_ = aligned_buffer<float>(static_cast<std::size_t>(panels * simd::syrk_panel_width * chunk_tokens));
    for (std::int64_t t0 = 0; t0 < x.rows; t0 += chunk_tokens) {
      const std::int64_t tc = std::min(chunk_tokens, x.rows - t0);
      parallel_for(pool, panels, [&](std::int64_t p0, std::int64_t p1) {
        simd::syrk_pack(x.row(t0), x.stride, tc, cols_, p0, p1, pack_.data());
      });
      // Panel p holds (p + 1) · 48 rows of the triangle: claimed right to left, the
      // largest first, so that the last claims are the small ones.
      const auto run = [&](std::int64_t q0, std::int64_t q1) {
        for (std::int64_t q = q0; q < q1; ++q)
          simd::syrk_f32_panel_best(pack_.data(), tc, cols_, panels - 1 - q, sum_.data(), cols_);
      };
      if (pool) {
        pool->parallel_for(0, panels, 1, run);
      } else {
        run(0, panels);
      }
    }
    samples_ += x.rows;
  }

  std::int64_t cols() const { return cols_; }
  std::int64_t samples() const { return samples_; }

  // H [cols, cols] row-major, exactly symmetric; all zero while samples() == 0.
  std::vector<double> hessian() const {
    const auto n = static_cast<std::size_t>(cols_);
    std::vector<double> h(n * n, 0.0);
    if (samples_ == 0) return h;
    const double norm = 2.0 / static_cast<double>(samples_);
    // By 64×64 tiles, so that the mirrored writes (a column of h per row of sum_) stay in
    // cache: row by row they touch one line per element, 190 MB of lines at 4864 columns.
    constexpr std::size_t tile = 64;
    for (std::size_t i0 = 0; i0 < n; i0 += tile)
      for (std::size_t j0 = i0; j0 < n; j0 += tile)
        for (std::size_t i = i0; i < std::min(n, i0 + tile); ++i)
          for (std::size_t j = std::max(i, j0); j < std::min(n, j0 + tile); ++j)
            h[i * n + j] = h[j * n + i] = norm * sum_[i * n + j];
    return h;
  }

 private:
  // Tokens per chunk: the packed chunk, [panels, chunk_tokens, 48] f32 (cols × 2 KB: 10 MB
  // at 4864 columns), stays in the last-level cache while the panels sweep it, and each
  // chunk reads and writes the double accumulator's upper triangle once (cols² · 8 B in
  // all, against 256 FMAs per element), which longer chunks would amortize further.
  static constexpr std::int64_t chunk_tokens = 512;

  std::int64_t cols_;
  std::int64_t samples_ = 0;
  // Σ x xᵀ [cols, cols], row-major; only the upper triangle (i <= j) is kept, the
  // strict lower triangle stays zero.
  std::vector<double> sum_;
  // Scratch kept between calls, allocated by the first add(): the packed chunk
  // [panels, chunk_tokens, simd::syrk_panel_width].
  aligned_buffer<float> pack_;
};

}  // namespace qmr::quant
