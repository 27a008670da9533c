// GPU test: qmr::cuda::gemv on dense f32/f16/bf16 weights (kernels/cuda/dense_gemv.cuh) matches qmr::ref::gemm_ref on fresh random data, for ragged and model shapes (every warps-per-row choice, columns not a multiple of 8), M = 1, 3, 8 and 21 (three launches, the last ragged), poisoned outputs. Exits 77 (skip) without a GPU.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include <cuda_runtime.h>

#include "qmr/core/half.hpp"
#include "qmr/core/tensor.hpp"
#include "qmr/kernels/cuda/dense_gemv.cuh"
#include "qmr/kernels/ref/matmul.hpp"
#include "gpu_check.hpp"

namespace {

using qmr::testing::gpu::failures;
using qmr::testing::gpu::rng;

template <class T>
T from_float(float v) {
  if constexpr (std::is_same_v<T, float>) return v;
  else if constexpr (std::is_same_v<T, qmr::f16>) return qmr::to_f16(v);
  else return qmr::to_bf16(v);
}

// One dtype and shape: every batch size against the reference, outputs poisoned
// (NaN) before each run, rows past M checked untouched.
template <class T>
void check_shape(std::int64_t rows, std::int64_t cols, rng& r) {
  std::vector<T> w(static_cast<std::size_t>(rows * cols));
  for (T& v : w) v = from_float<T>(r.uniform(-1.0f, 1.0f));
  const qmr::tensor_view wv = qmr::tensor_view::contiguous(reinterpret_cast<const std::byte*>(w.data()),
                                                           qmr::dtype_of<T>(), qmr::make_shape({rows, cols}));
  const qmr::cuda::dense_matrix dw = qmr::cuda::upload_dense(std::span(&wv, 1), nullptr);
  constexpr int max_m = 21;  // three launches of dense_max_batch = 8 rows, the last of 5
  std::vector<float> x(static_cast<std::size_t>(max_m * cols));
  for (float& v : x) v = r.uniform(-1.0f, 1.0f);
  std::vector<float> ref(static_cast<std::size_t>(max_m * rows)), abs_sum(ref.size(), 0.0f);
  qmr::ref::gemm_ref(wv, {x.data(), max_m, cols}, {ref.data(), max_m, rows});
  for (std::int64_t m = 0; m < max_m; ++m)
    for (std::int64_t n = 0; n < rows; ++n)
      for (std::int64_t k = 0; k < cols; ++k)
        abs_sum[static_cast<std::size_t>(m * rows + n)] +=
            std::fabs(qmr::to_float(w[static_cast<std::size_t>(n * cols + k)]) * x[static_cast<std::size_t>(m * cols + k)]);
  qmr::cuda::device_buffer dx(x.size() * sizeof(float)), dy(ref.size() * sizeof(float));
  QMR_CUDA_CHECK(cudaMemcpy(dx.data(), x.data(), dx.size(), cudaMemcpyHostToDevice));
  std::vector<float> y(ref.size());
  for (int M : {1, 3, 8, 21}) {
    QMR_CUDA_CHECK(cudaMemset(dy.data(), 0xff, dy.size()));
    qmr::cuda::gemv(dw, dx.as<const float>(), dy.as<float>(), M, nullptr);
    QMR_CUDA_CHECK(cudaDeviceSynchronize());
    QMR_CUDA_CHECK(cudaMemcpy(y.data(), dy.data(), dy.size(), cudaMemcpyDeviceToHost));
    int bad = 0;
    for (std::int64_t m = 0; m < max_m; ++m)
      for (std::int64_t n = 0; n < rows; ++n) {
        const std::size_t i = static_cast<std::size_t>(m * rows + n);
        std::uint32_t bits;
        std::memcpy(&bits, &y[i], 4);
        // f32 sums in another order: a few ulps of the sum of |terms|
        const bool ok = m >= M ? bits == 0xffffffffu : std::fabs(y[i] - ref[i]) <= 1e-6f * abs_sum[i] + 1e-7f;
        if (!ok && ++bad <= 3)
          std::fprintf(stderr, "%s [%lld, %lld] M=%d: y[%lld, %lld] = %.8g, reference %.8g\n",
                       std::string(qmr::dtype_name(qmr::dtype_of<T>())).c_str(), static_cast<long long>(rows),
                       static_cast<long long>(cols), M, static_cast<long long>(m), static_cast<long long>(n),
                       static_cast<double>(y[i]), static_cast<double>(ref[i]));
      }
    failures += bad;
  }
}

}  // namespace

int main() {
  if (!qmr::testing::gpu::device_present()) return 77;
  rng r{20260101};
  // [rows, cols]: tiny, ragged (cols % 8 != 0: the scalar path), and the shapes the
  // models run, which pick 1, 2, 4 and 8 warps per row.
  // 64 x 1536 at M = 8 (and 21): 48 KB of x, which the kernel once staged in shared memory (past its limit then).
  const std::int64_t shapes[][2] = {{1, 8},       {7, 13},     {33, 64},     {100, 1000}, {896, 896}, {1152, 896},
                                    {896, 4864}, {256, 768}, {2000, 2048}, {9728, 896}, {20000, 256}, {64, 1536}};
  for (const auto& s : shapes) {
    check_shape<float>(s[0], s[1], r);
    check_shape<qmr::f16>(s[0], s[1], r);
    check_shape<qmr::bf16>(s[0], s[1], r);
    std::printf("[%lld, %lld] (%d warps per row): %s\n", static_cast<long long>(s[0]), static_cast<long long>(s[1]),
                qmr::cuda::detail::dense_warps_per_row(s[0], s[1] % 8 == 0 ? s[1] / 8 : 0),
                failures == 0 ? "ok" : "failures so far");
  }
  std::printf("%s: %d failures\n", failures == 0 ? "ok" : "FAILED", failures);
  return failures == 0 ? 0 : 1;
}
