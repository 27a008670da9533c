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
#include "../kernels/simd/dispatch.hpp"

namespace qmr::quant {

// H = (2/n) Σ_t x_t x_tᵀ over the n calibration rows seen so far (GPTQ's
// normalization: the Hessian of the mean squared output error Σ_t ||(W - Q) x_t||² / n
// with respect to a row of W), accumulated batch by batch so that memory stays
// [cols, cols] whatever the number of tokens.
//
// Each batch is cut into chunks of chunk_tokens rows; a chunk's Σ x xᵀ is computed
// in f32 by the SIMD GEMM (f32 products summed over at most chunk_tokens terms) and
// added into a double accumulator, so precision does not degrade with the number of
// tokens. Only the upper triangle of tiles is computed (H is symmetric).
class hessian_accumulator {
 public:
  explicit hessian_accumulator(std::int64_t cols) : cols_(cols) {
    check(cols > 0, "hessian_accumulator: the column count must be positive, got " + std::to_string(cols));
    sum_.assign(static_cast<std::size_t>(cols) * static_cast<std::size_t>(cols), 0.0);
  }

  // Adds the calibration rows x [tokens, cols]. A shape mismatch or a non-finite value
  // is an error naming it, and leaves the accumulator unchanged. Batches of a few
  // hundred tokens or more keep the GEMM at full speed; one token per call is exact
  // but pays the tiling overhead each time.
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

    const std::int64_t n_tiles = (cols_ + tile - 1) / tile;
    if (xt_.empty()) {
      xt_ = aligned_buffer<float>(static_cast<std::size_t>(cols_ * chunk_tokens));
      products_ = aligned_buffer<float>(static_cast<std::size_t>(n_tiles * tile * tile));
    }
    for (std::int64_t t0 = 0; t0 < x.rows; t0 += chunk_tokens) {
      const std::int64_t tc = std::min(chunk_tokens, x.rows - t0);
      float* xt = xt_.data();  // [cols, tc]
      transpose_chunk(x, t0, tc, xt, pool);
      // Tile row a computes the tiles (a, b), b >= a: rows a of Σ x xᵀ right of the
      // diagonal. Earlier rows hold more tiles and are claimed first, which balances.
      auto tile_rows = [&](std::int64_t a0, std::int64_t a1) {
        for (std::int64_t a = a0; a < a1; ++a) {
          const std::int64_t i0 = a * tile, ni = std::min(tile, cols_ - i0);
          float* y = products_.data() + a * tile * tile;  // [ni, nj]
          for (std::int64_t b = a; b < n_tiles; ++b) {
            const std::int64_t j0 = b * tile, nj = std::min(tile, cols_ - j0);
            const tensor_view w = tensor_view::contiguous(reinterpret_cast<const std::byte*>(xt + j0 * tc),
                                                          dtype::f32, make_shape({nj, tc}));
            simd::gemm_best(w, matrix_view<const float>(xt + i0 * tc, ni, tc, tc),
                            matrix_view<float>(y, ni, nj), nullptr);
            for (std::int64_t i = 0; i < ni; ++i) {
              double* out = sum_.data() + (i0 + i) * cols_ + j0;
              const float* in = y + i * nj;
              for (std::int64_t j = 0; j < nj; ++j) out[j] += static_cast<double>(in[j]);
            }
          }
        }
      };
      if (pool) {
        pool->parallel_for(0, n_tiles, 1, tile_rows);
      } else {
        tile_rows(0, n_tiles);
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
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = i; j < n; ++j) h[i * n + j] = h[j * n + i] = norm * sum_[i * n + j];
    return h;
  }

 private:
  // Tokens per chunk and tile width: the GEMM reads a [tile, chunk_tokens] f32 block
  // of the transposed chunk for every 4-row weight panel, and 256 × 512 × 4 B = 512 KB
  // stays in a 1 MB L2. Measured on the 2-core Zen 5 box (AVX-512, one thread, 2048
  // columns, CPU time): 512 × 256 runs Σ x xᵀ at 75 GFLOP/s counted as cols² · tokens
  // (the GEMM itself at ~2x that, minus the diagonal tiles); 512 × 128: the same;
  // 256 × 256: 60; 1024 × 256: 65; 512 × 512: 49.
  static constexpr std::int64_t chunk_tokens = 512;
  static constexpr std::int64_t tile = 256;

  // xt [cols, tc] = transpose of x rows [t0, t0 + tc), in 16 × 16 blocks so that both
  // sides are read and written a cache line at a time.
  void transpose_chunk(matrix_view<const float> x, std::int64_t t0, std::int64_t tc, float* xt,
                       thread_pool* pool) const {
    constexpr std::int64_t b = 16;
    parallel_for(pool, (cols_ + b - 1) / b, [&](std::int64_t cb0, std::int64_t cb1) {
      for (std::int64_t c0 = cb0 * b; c0 < std::min(cols_, cb1 * b); c0 += b) {
        const std::int64_t c1 = std::min(cols_, c0 + b);
        for (std::int64_t s0 = 0; s0 < tc; s0 += b) {
          const std::int64_t s1 = std::min(tc, s0 + b);
          for (std::int64_t s = s0; s < s1; ++s) {
            const float* row = x.row(t0 + s);
            for (std::int64_t c = c0; c < c1; ++c) xt[c * tc + s] = row[c];
          }
        }
      }
    });
  }

  std::int64_t cols_;
  std::int64_t samples_ = 0;
  // Σ x xᵀ [cols, cols], row-major; only the tiles (a, b) with a <= b are kept up to
  // date (which covers every (i, j) with i <= j), the rest is unused.
  std::vector<double> sum_;
  // Scratch kept between calls, allocated by the first add(): the transposed chunk
  // [cols, chunk_tokens] and one [tile, tile] product per tile row [n_tiles, tile, tile],
  // so that tile rows run in parallel without allocating.
  aligned_buffer<float> xt_;
  aligned_buffer<float> products_;
};

}  // namespace qmr::quant
