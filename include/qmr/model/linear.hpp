// A linear layer's weight in whatever storage the checkpoint holds (dense F32/F16/BF16 or a qmr format), and y = x·Wᵀ over it.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "../core/tensor.hpp"
#include "../core/thread_pool.hpp"
#include "../kernels/ref/matmul.hpp"
#include "../kernels/simd/dispatch.hpp"
#include "../quant/format.hpp"
#include "../quant/qtensor.hpp"

namespace qmr::model {

// W [rows = out_features, cols = in_features]. Each layer carries its own format,
// so any per-tensor mix of precisions runs.
struct linear_weight {
  std::string name;
  quant::format_spec spec;        // bf16, f32, w4g128, ...
  tensor_view dense;              // when !spec.is_quantized(): a view into the mapped file
  quant::qtensor_view quantized;  // when spec.is_quantized()
  std::int64_t rows = 0, cols = 0;
  // `quantized` repacked for the table GEMV (simd/lut_gemv.hpp), when the model was
  // asked for it (model::repack_lut) and the format has 2-6 bits: matmul_kernel::simd_lut
  // then runs one row of X through it. Shared by copies (a tied output head).
  std::shared_ptr<const simd::lut_matrix> lut;

  std::uint64_t bytes() const {
    return spec.is_quantized() ? static_cast<std::uint64_t>(quantized.layout.total_bytes()) : dense.nbytes();
  }
};

// Whether w can take the quantized format `spec`: whole 8-column runs (the kernels' packing)
// and whole groups.
inline bool fits_format(const linear_weight& w, const quant::format_spec& spec) {
  return w.cols % 8 == 0 && (spec.group == quant::per_channel || w.cols % spec.group == 0);
}

// Which implementation a matmul runs: the SIMD kernels (simd::gemm_best: runtime
// dispatch in the qmr tools, else the ISA the program is compiled for) or the
// scalar reference they are tested against. Both sum in f32; they differ only in
// the order of the additions. simd_a8 is the int8-activation mode
// (simd::gemm_a8_best, numerics in kernels/ref/matmul_a8.hpp): the inputs of
// quantized weights are quantized to int8 per 32 columns, which changes the
// results; dense weights keep the f32 kernels. simd_lut runs the weights the model
// repacked (linear_weight::lut; others as simd) from the repack: the table GEMV for
// one row of X, a GEMM over its panels for more. f32 numerics like simd, in another
// summation order.
enum class matmul_kernel { simd, reference, simd_a8, simd_lut };

namespace detail {

// Y = X · Wᵀ for W given as the views of a linear_weight (dense or quantized).
inline void matmul_views(bool quantized, const tensor_view& dense, const quant::qtensor_view& q,
                         matrix_view<const float> x, matrix_view<float> y, thread_pool* pool, matmul_kernel kernel) {
  if (kernel == matmul_kernel::reference) {
    if (quantized) ref::gemm_ref(q, x, y, pool);
    else ref::gemm_ref(dense, x, y, pool);
    return;
  }
  if (quantized) {
    if (kernel == matmul_kernel::simd_a8) simd::gemm_a8_best(q, x, y, pool);
    else simd::gemm_best(q, x, y, pool);
  } else {
    simd::gemm_best(dense, x, y, pool);
  }
}

// Whether rows [r0, r1) of w run over its repack: kernel simd_lut, a repacked w, and
// rows on its 16-row tiles (any rows of X: the table GEMV for one, lut_gemm's panels
// for more).
inline bool takes_lut(const linear_weight& w, std::int64_t r0, std::int64_t r1, matmul_kernel kernel) {
  return kernel == matmul_kernel::simd_lut && w.lut != nullptr && r0 % simd::lut_tile_rows == 0 &&
         (r1 % simd::lut_tile_rows == 0 || r1 == w.rows);
}

inline void matmul_lut(const linear_weight& w, std::int64_t r0, std::int64_t r1, matrix_view<const float> x,
                       matrix_view<float> y, thread_pool* pool) {
  simd::lut_gemm_best(*w.lut, r0, r1, x, y, pool);
}

}  // namespace detail

// Y[M, rows] = X[M, cols] · Wᵀ.
inline void matmul(const linear_weight& w, matrix_view<const float> x, matrix_view<float> y, thread_pool* pool,
                   matmul_kernel kernel = matmul_kernel::simd) {
  if (detail::takes_lut(w, 0, w.rows, kernel)) {
    ref::detail::check_gemm_shapes(w.rows, w.cols, x, y);
    return detail::matmul_lut(w, 0, w.rows, x, y, pool);
  }
  detail::matmul_views(w.spec.is_quantized(), w.dense, w.quantized, x, y, pool, kernel);
}

// Y[M, r1 - r0] = X[M, cols] · W[r0:r1, :]ᵀ, output rows [r0, r1) of W alone. Every
// kernel computes an output row from that row of W and X only, so the values equal
// the same rows of matmul's Y bit for bit at any M <= 8 (the GEMV; a GEMM's panels
// would start elsewhere).
inline void matmul_rows(const linear_weight& w, std::int64_t r0, std::int64_t r1, matrix_view<const float> x,
                        matrix_view<float> y, thread_pool* pool, matmul_kernel kernel = matmul_kernel::simd) {
  // The message is built only on failure: a decode step calls this several times per layer.
  if (r0 < 0 || r0 >= r1 || r1 > w.rows)
    throw error("matmul_rows: rows [" + std::to_string(r0) + ", " + std::to_string(r1) + ") outside " + w.name +
                "'s " + std::to_string(w.rows));
  if (detail::takes_lut(w, r0, r1, kernel)) {
    ref::detail::check_gemm_shapes(r1 - r0, w.cols, x, y);
    return detail::matmul_lut(w, r0, r1, x, y, pool);
  }
  if (w.spec.is_quantized()) {
    quant::qtensor_view q = w.quantized;  // [r1 - r0] rows, the same format
    q.layout.rows = r1 - r0;
    q.codes += r0 * q.layout.code_row_bytes;
    q.scales += r0 * q.layout.n_groups;
    if (q.zeros != nullptr) q.zeros += r0 * q.layout.zero_row_bytes;
    detail::matmul_views(true, {}, q, x, y, pool, kernel);
  } else {
    const std::size_t row_bytes = static_cast<std::size_t>(w.cols) * dtype_size(w.dense.type);
    const tensor_view d = tensor_view::contiguous(w.dense.data + static_cast<std::size_t>(r0) * row_bytes, w.dense.type,
                                                  make_shape({r1 - r0, w.cols}));  // [r1 - r0, cols]
    detail::matmul_views(false, d, {}, x, y, pool, kernel);
  }
}

// out[cols] = row r of W in f32 (an embedding lookup).
inline void row_to_f32(const linear_weight& w, std::int64_t r, float* out) {
  if (w.spec.is_quantized()) {
    for (std::int64_t c = 0; c < w.cols; ++c) out[c] = w.quantized.value(r, c);
    return;
  }
  const std::size_t esize = dtype_size(w.dense.type);
  tensor_view row = tensor_view::contiguous(w.dense.data + static_cast<std::size_t>(r * w.cols) * esize, w.dense.type,
                                            make_shape({w.cols}));
  copy_to_f32(row, out);
}

}  // namespace qmr::model
