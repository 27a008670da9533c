// Scalar reference matmuls, y = W·x (GEMV) and Y = X·Wᵀ (GEMM), for every quantized format and for dense f32/f16/bf16 weights: the truth the SIMD and CUDA kernels are tested against.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "../../core/error.hpp"
#include "../../core/tensor.hpp"
#include "../../core/thread_pool.hpp"
#include "../../quant/format.hpp"
#include "../../quant/qtensor.hpp"

namespace qmr::ref {

namespace detail {

inline void check_gemm_shapes(std::int64_t n, std::int64_t k, matrix_view<const float> x, matrix_view<float> y) {
  if (x.cols != k || y.rows != x.rows || y.cols != n)
    throw error("matmul shapes: W is [" + std::to_string(n) + ", " + std::to_string(k) + "], X is [" +
                std::to_string(x.rows) + ", " + std::to_string(x.cols) + "], Y is [" + std::to_string(y.rows) + ", " +
                std::to_string(y.cols) + "]; need X [M, K] and Y [M, N]");
}

// Dot product of row r of a quantized W with x[K]: each weight dequantized to f32
// (scale * (code - zero)) and accumulated in f32, in column order.
template <class Format>
float dot_row(const quant::qtensor_view& w, std::int64_t r, const float* x) {
  const std::int64_t group = Format::group_size == quant::per_channel ? w.cols() : Format::group_size;
  const std::uint8_t* codes = w.codes + r * w.layout.code_row_bytes;
  float acc = 0.0f;
  for (std::int64_t g = 0; g < w.layout.n_groups; ++g) {
    const f16 scale = w.scale(r, g);
    const std::uint32_t zero = Format::symmetric ? static_cast<std::uint32_t>(Format::symmetric_zero) : w.zero(r, g);
    for (std::int64_t c = g * group; c < (g + 1) * group; ++c)
      acc += quant::dequant_value(scale, quant::get_code(codes, c, Format::bits), zero) * x[c];
  }
  return acc;
}

template <class T>
float dot_row_dense(const T* w_row, const float* x, std::int64_t k) {
  float acc = 0.0f;
  for (std::int64_t c = 0; c < k; ++c) acc += to_float(w_row[c]) * x[c];
  return acc;
}

}  // namespace detail

// Y[M, N] = X[M, K] · W[N, K]ᵀ for a quantized W; output rows of W in parallel.
inline void gemm_ref(const quant::qtensor_view& w, matrix_view<const float> x, matrix_view<float> y,
                     thread_pool* pool = nullptr) {
  detail::check_gemm_shapes(w.rows(), w.cols(), x, y);
  quant::with_format(w.spec, [&](auto format) {
    using Format = decltype(format);
    parallel_for(pool, w.rows(), [&](std::int64_t n0, std::int64_t n1) {
      for (std::int64_t m = 0; m < x.rows; ++m)
        for (std::int64_t n = n0; n < n1; ++n) y(m, n) = detail::dot_row<Format>(w, n, x.row(m));
    });
  });
}

// y[N] = W[N, K] · x[K] for a quantized W.
inline void gemv_ref(const quant::qtensor_view& w, std::span<const float> x, std::span<float> y,
                     thread_pool* pool = nullptr) {
  gemm_ref(w, {x.data(), 1, static_cast<std::int64_t>(x.size())}, {y.data(), 1, static_cast<std::int64_t>(y.size())},
           pool);
}

// Y[M, N] = X[M, K] · W[N, K]ᵀ for a dense W in f32, f16 or bf16.
inline void gemm_ref(const tensor_view& w, matrix_view<const float> x, matrix_view<float> y,
                     thread_pool* pool = nullptr) {
  check(w.shape.rank == 2, "matmul weight must be 2-D, got shape " + w.shape.str());
  detail::check_gemm_shapes(w.shape[0], w.shape[1], x, y);
  const auto run = [&](auto tag) {
    using T = decltype(tag);
    const matrix_view<const T> wm = as_matrix<T>(w);
    parallel_for(pool, wm.rows, [&](std::int64_t n0, std::int64_t n1) {
      for (std::int64_t m = 0; m < x.rows; ++m)
        for (std::int64_t n = n0; n < n1; ++n) y(m, n) = detail::dot_row_dense(wm.row(n), x.row(m), wm.cols);
    });
  };
  switch (w.type) {
    case dtype::f32: return run(float{});
    case dtype::f16: return run(f16{});
    case dtype::bf16: return run(bf16{});
    default: throw error("dense matmul weight must be F32, F16 or BF16, got " + std::string(dtype_name(w.type)));
  }
}

inline void gemv_ref(const tensor_view& w, std::span<const float> x, std::span<float> y, thread_pool* pool = nullptr) {
  gemm_ref(w, {x.data(), 1, static_cast<std::int64_t>(x.size())}, {y.data(), 1, static_cast<std::int64_t>(y.size())},
           pool);
}

}  // namespace qmr::ref
