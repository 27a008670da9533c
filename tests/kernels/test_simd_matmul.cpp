// The SIMD GEMV/GEMM equal the scalar reference up to summation order, for every format, every ISA this CPU runs and ragged shapes.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "../random.hpp"
#include "dispatched_isas.hpp"
#include "random_qtensor.hpp"
#include "qmr/kernels/ref/matmul.hpp"
#include "qmr/kernels/simd/dispatch.hpp"
#include "qmr/kernels/simd/matmul.hpp"
#include "qmr/quant/rtn.hpp"

using namespace qmr;
using namespace qmr::quant;

namespace {

using qmr::testing::fresh_seed;

// Calls fn(name, matmul) for every ISA kernel this binary carries and this CPU
// runs. Without runtime dispatch, that is the header-only default-arch kernel; with
// it, the default arch is one of the dispatched ones (the same template on the same
// tag), so instantiating it here again would only double this file's compile time.
template <class W, class F>
void for_each_isa(F&& fn) {
  using gemm_fn = void (*)(const W&, matrix_view<const float>, matrix_view<float>, thread_pool*);
#if !defined(QMR_SIMD_DISPATCH)
  fn(std::string("default_arch"), static_cast<gemm_fn>([](const W& w, matrix_view<const float> x,
                                                          matrix_view<float> y, thread_pool* p) {
       simd::gemm<xsimd::default_arch>(w, x, y, p);
     }));
#endif
  testing::for_each_dispatched_isa([&](auto arch, const char* name) {
    using Arch = decltype(arch);
    fn(std::string(name), static_cast<gemm_fn>([](const W& w, matrix_view<const float> x, matrix_view<float> y,
                                                  thread_pool* p) {
         if constexpr (std::is_same_v<W, qtensor_view>) simd::gemm_quantized_fn{}(Arch{}, w, x, y, p);
         else simd::gemm_dense_fn{}(Arch{}, w, x, y, p);
       }));
  });
}

// |simd - ref| <= 2 K 2^-24 sum_k |w x|: both are f32 sums of the same K exact
// products in different orders, each within gamma_K of the exact sum (Higham).
// The bound scales with the weights, so it is the per-bit-width tolerance: a
// 2-bit and an 8-bit matrix of equal scale differ only in sum |w x|.
void require_equal_up_to_order(const std::vector<float>& y, const std::vector<float>& y_ref,
                               const std::vector<double>& magnitude, std::int64_t k) {
  double largest = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    const double bound = 2.0 * static_cast<double>(k) * std::ldexp(1.0, -24) * magnitude[i];
    INFO("output " << i << ": simd " << y[i] << " vs reference " << y_ref[i] << ", bound " << bound);
    REQUIRE(std::fabs(static_cast<double>(y[i]) - y_ref[i]) <= bound);
    largest = std::max(largest, std::fabs(static_cast<double>(y_ref[i])));
  }
  REQUIRE(largest > 0);  // the data exercised something
}

// sum_k |W(n, k) X(m, k)| for every output, from the f32 weights.
std::vector<double> magnitudes(const std::vector<float>& w, std::int64_t n, std::int64_t k, const std::vector<float>& x,
                               std::int64_t m, std::int64_t x_stride) {
  std::vector<double> mag(static_cast<std::size_t>(m * n), 0.0);
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (std::int64_t c = 0; c < k; ++c)
        s += std::fabs(static_cast<double>(w[static_cast<std::size_t>(j * k + c)]) *
                       x[static_cast<std::size_t>(i * x_stride + c)]);
      mag[static_cast<std::size_t>(i * n + j)] = s;
    }
  return mag;
}

std::vector<float> gaussian(std::size_t n, std::mt19937& rng) {
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& e : v) e = d(rng);
  return v;
}

// A fresh random [n, k] matrix of spec and M rows of X: every ISA's single-threaded
// GEMM equals the reference up to summation order.
void check_gemv(const format_spec& spec, std::int64_t n, std::int64_t k, std::int64_t m, std::mt19937& rng) {
  const qtensor q = testing::random_qtensor(spec, n, k, rng);
  std::vector<float> wd(static_cast<std::size_t>(n * k));
  dequantize(q.view(), {wd.data(), n, k});
  const auto x = gaussian(static_cast<std::size_t>(m * k), rng);
  const auto mag = magnitudes(wd, n, k, x, m, k);
  std::vector<float> y_ref(static_cast<std::size_t>(m * n));
  ref::gemm_ref(q.view(), {x.data(), m, k}, {y_ref.data(), m, n});
  for_each_isa<qtensor_view>([&](const std::string& isa, auto matmul) {
    INFO(spec.str() << " K " << k << " M " << m << " on " << isa);
    std::vector<float> y(static_cast<std::size_t>(m * n), NAN);
    matmul(q.view(), {x.data(), m, k}, {y.data(), m, n}, nullptr);
    require_equal_up_to_order(y, y_ref, mag, k);
  });
}

}  // namespace

TEST_CASE("SIMD quantized matmul equals the reference up to summation order, every format and ISA", "[simd]") {
  const std::uint32_t seed = fresh_seed();
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  thread_pool pool(2);
  // N: odd, past two of the GEMM's widest panels (48 columns with AVX-512) and a
  // multiple of no panel width, so full and ragged panels both run.
  constexpr std::int64_t n = 101;
  for (int bits : supported_bits)
    for (int group : supported_groups)
      for (bool sym : {false, true}) {
        const format_spec spec = format_spec::quantized(bits, group, sym);
        const std::int64_t k = testing::ragged_cols_for(group);
        const qtensor q = testing::random_qtensor(spec, n, k, rng);
        std::vector<float> wd(static_cast<std::size_t>(n * k));
        dequantize(q.view(), {wd.data(), n, k});
        // M: GEMV sizes, then GEMM sizes that leave a ragged last block of X rows
        // for every register tile height (8, 6, 4).
        for (std::int64_t m : {1, 3, 8, 17, 37}) {
          const std::int64_t x_stride = k + 5;  // a padded, unaligned X row stride
          const auto x = gaussian(static_cast<std::size_t>(m * x_stride), rng);
          const auto mag = magnitudes(wd, n, k, x, m, x_stride);
          std::vector<float> y_ref(static_cast<std::size_t>(m * n));
          ref::gemm_ref(q.view(), {x.data(), m, k, x_stride}, {y_ref.data(), m, n});
          for_each_isa<qtensor_view>([&](const std::string& isa, auto matmul) {
            for (thread_pool* p : {static_cast<thread_pool*>(nullptr), &pool}) {
              INFO(spec.str() << " K " << k << " M " << m << " on " << isa << (p ? ", 2 threads" : ""));
              std::vector<float> y(static_cast<std::size_t>(m * n), NAN);
              matmul(q.view(), {x.data(), m, k, x_stride}, {y.data(), m, n}, p);
              require_equal_up_to_order(y, y_ref, mag, k);
            }
          });
        }
      }
}

// The lane-major GEMV (2 and 4 bits on AVX-512) reorders the activations once per
// call, on the stack up to 16384 floats and on the heap above; it and the 3-bit table
// GEMV take every M of the GEMV (their FMA chains differ for M = 1, 2 and above), K
// ends past their last whole block (128 or 256 columns; 32 for 3 bits) or exactly on
// one, and rows of more than 16 groups take their scales and zero points in two chunks.
TEST_CASE("SIMD GEMV for 2-, 3- and 4-bit codes: every M, stack- and heap-sized activations", "[simd]") {
  const std::uint32_t seed = fresh_seed();
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  constexpr std::int64_t n = 37;
  for (const char* fmt : {"w4g128", "w4g32s", "w2g64", "w2g256s", "w4gc", "w2gc", "w3g128", "w3g32s", "w3g64", "w3gc"}) {
    const format_spec spec = parse_format(fmt);
    // 2304 columns at M = 8: 18432 reordered activations, past the 16384 on the stack.
    for (std::int64_t k : {std::int64_t{2304}, std::int64_t{spec.group == per_channel ? 2312 : 2560}}) {
      for (std::int64_t m = 1; m <= 8; ++m) check_gemv(spec, n, k, m, rng);
    }
  }
}

// The register GEMV (5, 6 and 8 bits on AVX-512, every width on AVX2) takes scales and
// zero points 16 groups at a time: rows of 17-37 groups run two or three chunks, the
// last one ragged, and the last group of a row takes the end-of-row checked steps
// while the ones before it run unchecked; every M of the GEMV (chains differ for M =
// 1, 2 and above).
TEST_CASE("SIMD register GEMV over several 16-group chunks, every group size", "[simd]") {
  const std::uint32_t seed = fresh_seed();
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  constexpr std::int64_t n = 7;
  for (int bits : {3, 5, 6, 8})
    for (int group : {32, 64, 128, 256})
      for (bool sym : {false, true}) {
        const format_spec spec = format_spec::quantized(bits, group, sym);
        const std::int64_t k = group * (group == 32 ? 37 : group == 64 ? 33 : 17);
        for (std::int64_t m : {1, 2, 5, 8}) check_gemv(spec, n, k, m, rng);
      }
}

TEST_CASE("SIMD dense matmul equals the reference up to summation order for f32, f16 and bf16", "[simd]") {
  const std::uint32_t seed = fresh_seed();
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  thread_pool pool(2);
  for (std::int64_t k : {std::int64_t{203}, std::int64_t{1037}}) {  // odd; ends inside a 128-column slice
    constexpr std::int64_t n = 101;  // full and ragged GEMM panels, as in the quantized test
    const auto w = gaussian(static_cast<std::size_t>(n * k), rng);
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
    for (const auto& c : cases)
      for (std::int64_t m : {1, 2, 3, 8, 17, 37}) {
        const std::int64_t x_stride = k + 3;
        const auto x = gaussian(static_cast<std::size_t>(m * x_stride), rng);
        const auto mag = magnitudes(*c.as_f32, n, k, x, m, x_stride);
        std::vector<float> y_ref(static_cast<std::size_t>(m * n));
        ref::gemm_ref(c.view, {x.data(), m, k, x_stride}, {y_ref.data(), m, n});
        for_each_isa<tensor_view>([&](const std::string& isa, auto matmul) {
          for (thread_pool* p : {static_cast<thread_pool*>(nullptr), &pool}) {
            INFO(dtype_name(c.view.type) << " K " << k << " M " << m << " on " << isa << (p ? ", 2 threads" : ""));
            std::vector<float> y(static_cast<std::size_t>(m * n), NAN);
            matmul(c.view, {x.data(), m, k, x_stride}, {y.data(), m, n}, p);
            require_equal_up_to_order(y, y_ref, mag, k);
          }
        });
      }
  }
}

TEST_CASE("SIMD matmul rejects what the reference rejects", "[simd]") {
  std::mt19937 rng(fresh_seed());
  const qtensor q = testing::random_qtensor(parse_format("w4g32"), 16, 64, rng);
  std::vector<float> x(63), y(16);
  REQUIRE_THROWS_WITH(simd::gemv(q.view(), x, y), Catch::Contains("matmul shapes"));
  REQUIRE_THROWS_WITH(simd::gemm_best(q.view(), {x.data(), 1, 63}, {y.data(), 1, 16}), Catch::Contains("matmul shapes"));
  std::vector<std::int32_t> ints(std::size_t{16} * 64);
  std::vector<float> x2(64);
  const auto iv = tensor_view::contiguous(reinterpret_cast<const std::byte*>(ints.data()), dtype::i32, make_shape({16, 64}));
  REQUIRE_THROWS_WITH(simd::gemv(iv, x2, y), Catch::Contains("F32, F16 or BF16"));
  REQUIRE_THROWS_WITH(simd::gemm_best(iv, {x2.data(), 1, 64}, {y.data(), 1, 16}), Catch::Contains("F32, F16 or BF16"));
}
