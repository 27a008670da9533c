// Reference GEMV/GEMM equal a float64 matmul on the dequantized weights within f32 rounding.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "../random.hpp"
#include "qmr/kernels/ref/matmul.hpp"
#include "qmr/quant/rtn.hpp"

using namespace qmr;
using namespace qmr::quant;

namespace {

// |y - exact| <= K * 2^-24 * sum |w x| bounds f32 recursive summation error (Higham's gamma_K);
// a factor of 2 covers the rounding of each product.
void require_close(const std::vector<float>& y, const std::vector<double>& exact, const std::vector<double>& magnitude,
                   std::int64_t k) {
  for (std::size_t i = 0; i < y.size(); ++i) {
    const double bound = 2.0 * static_cast<double>(k) * std::ldexp(1.0, -24) * magnitude[i];
    INFO("output " << i << ": " << y[i] << " vs " << exact[i]);
    REQUIRE(std::fabs(y[i] - exact[i]) <= bound);
  }
}

// Y[M, N] = X[M, K] · W[N, K]^T in float64, and sum |x w| per output.
void matmul64(const std::vector<float>& w, std::int64_t n, std::int64_t k, const std::vector<float>& x,
              std::int64_t m, std::int64_t x_stride, std::vector<double>& y, std::vector<double>& mag) {
  y.assign(static_cast<std::size_t>(m * n), 0.0);
  mag.assign(static_cast<std::size_t>(m * n), 0.0);
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < n; ++j)
      for (std::int64_t c = 0; c < k; ++c) {
        const double p = static_cast<double>(x[static_cast<std::size_t>(i * x_stride + c)]) * w[static_cast<std::size_t>(j * k + c)];
        y[static_cast<std::size_t>(i * n + j)] += p;
        mag[static_cast<std::size_t>(i * n + j)] += std::fabs(p);
      }
}

}  // namespace

TEST_CASE("quantized GEMV and GEMM match float64 on the dequantized weights, every format", "[ref]") {
  constexpr std::int64_t n = 48, k = 512, m = 5, x_stride = k + 3;  // a padded X row stride
  thread_pool pool(2);
  const auto w = testing::student_t(n * k, 1, 4.0f, 0.02f);
  const auto x = testing::gaussian(m * x_stride, 2);
  for (int bits : supported_bits)
    for (int group : supported_groups)
      for (bool sym : {false, true}) {
        const auto spec = format_spec::quantized(bits, group, sym);
        INFO(spec.str());
        const qtensor q = quantize_rtn({w.data(), n, k}, spec);
        std::vector<float> wd(static_cast<std::size_t>(n * k));
        dequantize(q.view(), {wd.data(), n, k});
        std::vector<double> exact, mag;
        matmul64(wd, n, k, x, m, x_stride, exact, mag);

        std::vector<float> y(static_cast<std::size_t>(m * n), NAN);
        ref::gemm_ref(q.view(), {x.data(), m, k, x_stride}, {y.data(), m, n}, &pool);
        require_close(y, exact, mag, k);

        std::vector<float> y1(static_cast<std::size_t>(n), NAN);
        ref::gemv_ref(q.view(), std::span<const float>(x.data(), static_cast<std::size_t>(k)), y1);
        require_close(y1, {exact.begin(), exact.begin() + n}, {mag.begin(), mag.begin() + n}, k);
      }
}

TEST_CASE("dense GEMM matches float64 for f32, f16 and bf16 weights", "[ref]") {
  constexpr std::int64_t n = 33, k = 200, m = 4;
  const auto w = testing::gaussian(n * k, 5);
  const auto x = testing::gaussian(m * k, 6);
  std::vector<f16> wh(w.size());
  std::vector<bf16> wb(w.size());
  std::vector<float> wh_f(w.size()), wb_f(w.size());
  for (std::size_t i = 0; i < w.size(); ++i) {
    wh[i] = to_f16(w[i]);
    wb[i] = to_bf16(w[i]);
    wh_f[i] = to_float(wh[i]);
    wb_f[i] = to_float(wb[i]);
  }
  const auto shape = make_shape({n, k});
  const struct {
    tensor_view view;
    const std::vector<float>* as_f32;
  } cases[] = {
      {tensor_view::contiguous(reinterpret_cast<const std::byte*>(w.data()), dtype::f32, shape), &w},
      {tensor_view::contiguous(reinterpret_cast<const std::byte*>(wh.data()), dtype::f16, shape), &wh_f},
      {tensor_view::contiguous(reinterpret_cast<const std::byte*>(wb.data()), dtype::bf16, shape), &wb_f},
  };
  for (const auto& c : cases) {
    INFO(dtype_name(c.view.type));
    std::vector<double> exact, mag;
    matmul64(*c.as_f32, n, k, x, m, k, exact, mag);
    std::vector<float> y(static_cast<std::size_t>(m * n), NAN);
    ref::gemm_ref(c.view, {x.data(), m, k}, {y.data(), m, n});
    require_close(y, exact, mag, k);
  }
}

TEST_CASE("matmul shape mismatches are errors", "[ref]") {
  const auto w = testing::gaussian(std::size_t{16} * 64, 1);
  const qtensor q = quantize_rtn({w.data(), 16, 64}, parse_format("w4g32"));
  std::vector<float> x(63), y(16);
  REQUIRE_THROWS_WITH(ref::gemv_ref(q.view(), x, y), Catch::Contains("matmul shapes"));
  std::vector<float> x2(64), y2(15);
  REQUIRE_THROWS_WITH(ref::gemv_ref(q.view(), x2, y2), Catch::Contains("matmul shapes"));
  std::vector<std::int32_t> ints(std::size_t{16} * 64);
  const auto iv = tensor_view::contiguous(reinterpret_cast<const std::byte*>(ints.data()), dtype::i32, make_shape({16, 64}));
  REQUIRE_THROWS_WITH(ref::gemv_ref(iv, x2, y), Catch::Contains("F32, F16 or BF16"));
}
