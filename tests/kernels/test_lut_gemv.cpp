// The table GEMV's repack holds every code, scale and zero point of its source; the GEMV, and the GEMM over the repack's panels, equal the scalar reference up to summation order for every 2- to 6-bit format, ISA, ragged shape and row range.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "../random.hpp"
#include "dispatched_isas.hpp"
#include "random_qtensor.hpp"
#include "qmr/kernels/ref/matmul.hpp"
#include "qmr/kernels/simd/dispatch.hpp"
#include "qmr/kernels/simd/lut_gemv.hpp"

using namespace qmr;
using namespace qmr::quant;

namespace {

using qmr::testing::fresh_seed;

// Every 2- to 6-bit format: groups 32-256 and per-channel, both symmetries.
std::vector<format_spec> lut_formats() {
  std::vector<format_spec> out;
  for (const int bits : {2, 3, 4, 5, 6})
    for (const int group : {32, 64, 128, 256, per_channel})
      for (const bool sym : {false, true}) out.push_back(format_spec::quantized(bits, group, sym));
  return out;
}

// Columns per group size: ragged against the table GEMV's 512- and 256-column chunks
// (a short last chunk), and per-channel 8 over a multiple of 32 (a padded last unit
// of 16 or 32 columns); one shape spans a single short chunk.
std::vector<std::int64_t> lut_cols_for(int group) {
  if (group == per_channel) return {8 * 131, 8 * 3, 2056};
  // Past two chunks by one group: 33, 17, 9 and 5 groups.
  return {testing::ragged_cols_for(group), 1024 + group};
}

// Calls fn(name, gemv) for each ISA this binary carries and the CPU runs: the table
// kernel on avx512bw, the scalar loop over the repack elsewhere; without runtime
// dispatch, the header-only default-arch kernel.
template <class F>
void for_each_lut_isa(F&& fn) {
  using gemv_fn = void (*)(const simd::lut_matrix&, std::int64_t, std::int64_t, std::span<const float>,
                           std::span<float>, thread_pool*);
#if !defined(QMR_SIMD_DISPATCH)
  fn(std::string("default_arch"),
     static_cast<gemv_fn>([](const simd::lut_matrix& w, std::int64_t r0, std::int64_t r1, std::span<const float> x,
                             std::span<float> y, thread_pool* p) { simd::lut_gemv<xsimd::default_arch>(w, r0, r1, x, y, p); }));
#endif
  testing::for_each_dispatched_isa([&](auto arch, const char* name) {
    using Arch = decltype(arch);
    fn(std::string(name),
       static_cast<gemv_fn>([](const simd::lut_matrix& w, std::int64_t r0, std::int64_t r1, std::span<const float> x,
                               std::span<float> y, thread_pool* p) { simd::lut_gemv_fn{}(Arch{}, w, r0, r1, x, y, p); }));
  });
}

// As for_each_lut_isa, for lut_gemm (any number of rows of X).
template <class F>
void for_each_lut_gemm_isa(F&& fn) {
  using gemm_fn = void (*)(const simd::lut_matrix&, std::int64_t, std::int64_t, matrix_view<const float>,
                           matrix_view<float>, thread_pool*);
#if !defined(QMR_SIMD_DISPATCH)
  fn(std::string("default_arch"),
     static_cast<gemm_fn>([](const simd::lut_matrix& w, std::int64_t r0, std::int64_t r1, matrix_view<const float> x,
                             matrix_view<float> y, thread_pool* p) { simd::lut_gemm<xsimd::default_arch>(w, r0, r1, x, y, p); }));
#endif
  testing::for_each_dispatched_isa([&](auto arch, const char* name) {
    using Arch = decltype(arch);
    fn(std::string(name),
       static_cast<gemm_fn>([](const simd::lut_matrix& w, std::int64_t r0, std::int64_t r1, matrix_view<const float> x,
                               matrix_view<float> y, thread_pool* p) { simd::lut_gemm_fn{}(Arch{}, w, r0, r1, x, y, p); }));
  });
}

}  // namespace

TEST_CASE("lut_matrix holds every code, scale and zero point of its source", "[simd][lut]") {
  const std::uint32_t seed = fresh_seed();
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  for (const format_spec& spec : lut_formats())
    for (const std::int64_t k : lut_cols_for(spec.group))
      for (const std::int64_t n : {std::int64_t{1}, std::int64_t{16}, std::int64_t{37}}) {
        INFO(spec.str() << " [" << n << ", " << k << "]");
        const qtensor q = testing::random_qtensor(spec, n, k, rng);
        const simd::lut_matrix m(q.view());
        REQUIRE(m.rows() == n);
        REQUIRE(m.cols() == k);
        REQUIRE(m.format_bytes() == static_cast<std::uint64_t>(q.layout().total_bytes()));
        std::int64_t wrong = 0;
        for (std::int64_t r = 0; r < n; ++r) {
          for (std::int64_t c = 0; c < k; ++c) wrong += m.code(r, c) != q.view().code(r, c);
          for (std::int64_t g = 0; g < q.layout().n_groups; ++g)
            wrong += m.scale(r, g).bits != q.view().scale(r, g).bits || m.zero(r, g) != q.view().zero(r, g);
        }
        REQUIRE(wrong == 0);
      }
}

TEST_CASE("Table GEMV equals the reference up to summation order, every 2-6-bit format, ISA and row range",
          "[simd][lut]") {
  const std::uint32_t seed = fresh_seed();
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  thread_pool pool(3);  // three parts: uneven tile ranges
  int isas = 0;
  for_each_lut_isa([&](const std::string& isa, auto gemv) {
    ++isas;
    for (const format_spec& spec : lut_formats())
      for (const std::int64_t k : lut_cols_for(spec.group))
        for (const std::int64_t n : {std::int64_t{5}, std::int64_t{70}}) {
          INFO(isa << " " << spec.str() << " [" << n << ", " << k << "]");
          const qtensor q = testing::random_qtensor(spec, n, k, rng);
          const simd::lut_matrix m(q.view());
          const std::vector<float> x = testing::gaussian(static_cast<std::size_t>(k), static_cast<std::uint32_t>(rng()));
          std::vector<float> y_ref(static_cast<std::size_t>(n));  // [n]
          ref::gemm_ref(q.view(), matrix_view<const float>(x.data(), 1, k, k), matrix_view<float>(y_ref.data(), 1, n, n));
          // |lut - ref| <= 2 K 2^-24 sum_k |w x|, as for the other GEMVs (test_simd_matmul.cpp):
          // both are f32 sums of the same exact-integer multiples of x in different orders.
          std::vector<double> bound(static_cast<std::size_t>(n));
          for (std::int64_t r = 0; r < n; ++r) {
            double mag = 0;
            for (std::int64_t c = 0; c < k; ++c) mag += std::fabs(static_cast<double>(q.view().value(r, c)) * x[c]);
            bound[static_cast<std::size_t>(r)] = 2.0 * static_cast<double>(k) * std::ldexp(1.0, -24) * mag;
          }
          // Every row; then from the second tile on (a row range), when there is one.
          for (const std::int64_t r0 : {std::int64_t{0}, std::int64_t{16}}) {
            if (r0 >= n) continue;
            for (thread_pool* p : {static_cast<thread_pool*>(nullptr), &pool}) {
              std::vector<float> y(static_cast<std::size_t>(n - r0), -12345.0f);  // [n - r0]
              gemv(m, r0, n, x, y, p);
              for (std::int64_t r = r0; r < n; ++r) {
                const double got = y[static_cast<std::size_t>(r - r0)], want = y_ref[static_cast<std::size_t>(r)];
                INFO("row " << r << " of [" << r0 << ", " << n << "): " << got << " vs " << want);
                REQUIRE(std::fabs(got - want) <= bound[static_cast<std::size_t>(r)]);
              }
            }
          }
        }
  });
#if defined(QMR_SIMD_DISPATCH)
  REQUIRE(isas > 0);
#endif
}

TEST_CASE("GEMM over the table repack equals the reference up to summation order, any rows of X and row range",
          "[simd][lut]") {
  const std::uint32_t seed = fresh_seed();
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  thread_pool pool(3);
  int isas = 0;
  for_each_lut_gemm_isa([&](const std::string& isa, auto gemm) {
    ++isas;
    for (const format_spec& spec : lut_formats())
      for (const std::int64_t k : lut_cols_for(spec.group)) {
        // 53 rows: a panel of three tiles and a ragged one (AVX-512: 48 + 5 rows).
        const std::int64_t n = 53;
        const qtensor q = testing::random_qtensor(spec, n, k, rng);
        const simd::lut_matrix w(q.view());
        // 1 row goes to the table GEMV; up to mr rows are one register block packed on
        // the stack (2; 8 fills AVX-512's, past AVX2's 6), more are packed per call (9: a
        // ragged second block, 19).
        for (const std::int64_t m : {std::int64_t{1}, std::int64_t{2}, std::int64_t{8}, std::int64_t{9}, std::int64_t{19}}) {
          INFO(isa << " " << spec.str() << " [" << n << ", " << k << "], M = " << m);
          const std::vector<float> x = testing::gaussian(static_cast<std::size_t>(m * k), static_cast<std::uint32_t>(rng()));
          const matrix_view<const float> xv(x.data(), m, k, k);
          std::vector<float> y_ref(static_cast<std::size_t>(m * n));  // [m, n]
          ref::gemm_ref(q.view(), xv, matrix_view<float>(y_ref.data(), m, n, n));
          std::vector<float> y(static_cast<std::size_t>(m * n), -12345.0f);  // [m, n], poisoned
          gemm(w, 0, n, xv, matrix_view<float>(y.data(), m, n, n), &pool);
          std::int64_t outside = 0;
          for (std::int64_t i = 0; i < m; ++i)
            for (std::int64_t r = 0; r < n; ++r) {
              double mag = 0;
              for (std::int64_t c = 0; c < k; ++c)
                mag += std::fabs(static_cast<double>(q.view().value(r, c)) * x[static_cast<std::size_t>(i * k + c)]);
              const double bound = 2.0 * static_cast<double>(k) * std::ldexp(1.0, -24) * mag;
              outside += !(std::fabs(y[static_cast<std::size_t>(i * n + r)] - y_ref[static_cast<std::size_t>(i * n + r)]) <= bound);
            }
          REQUIRE(outside == 0);
          // Rows [16, n) alone, into a strided Y, single-threaded: the same values bit for bit.
          const std::int64_t stride = n + 3;
          std::vector<float> part(static_cast<std::size_t>(m * stride), -12345.0f);  // [m, stride]
          gemm(w, 16, n, xv, matrix_view<float>(part.data(), m, n - 16, stride), nullptr);
          std::int64_t differ = 0;
          for (std::int64_t i = 0; i < m; ++i) {
            for (std::int64_t r = 16; r < n; ++r)
              differ += part[static_cast<std::size_t>(i * stride + r - 16)] != y[static_cast<std::size_t>(i * n + r)];
            for (std::int64_t r = n - 16; r < stride; ++r) differ += part[static_cast<std::size_t>(i * stride + r)] != -12345.0f;
          }
          REQUIRE(differ == 0);
        }
      }
  });
#if defined(QMR_SIMD_DISPATCH)
  REQUIRE(isas > 0);
#endif
}

TEST_CASE("Table GEMV rejects what it cannot run, naming it", "[simd][lut]") {
  std::mt19937 rng(fresh_seed());
  const qtensor w8 = testing::random_qtensor(format_spec::quantized(8, 32, false), 16, 64, rng);
  REQUIRE_THROWS_WITH(simd::lut_matrix(w8.view()), Catch::Contains("w8g32") && Catch::Contains("2- to 6-bit"));
  const qtensor q = testing::random_qtensor(format_spec::quantized(4, 32, false), 40, 64, rng);
  const simd::lut_matrix m(q.view());
  std::vector<float> x(64), y(40), short_x(63);
  REQUIRE_THROWS_WITH(simd::lut_gemv<xsimd::default_arch>(m, short_x, y), Catch::Contains("x has 63 values"));
  REQUIRE_THROWS_WITH(simd::lut_gemv<xsimd::default_arch>(m, 8, 40, x, std::span<float>(y).first(32)),
                      Catch::Contains("16-row tiles"));
  REQUIRE_THROWS_WITH(simd::lut_gemv<xsimd::default_arch>(m, 0, 20, x, std::span<float>(y).first(20)),
                      Catch::Contains("16-row tiles"));
  REQUIRE_THROWS_WITH(simd::lut_gemv<xsimd::default_arch>(m, 16, 40, x, y), Catch::Contains("y has 40 values for 24"));
  std::vector<float> x2(2 * 64), y2(2 * 40);
  REQUIRE_THROWS_WITH(simd::lut_gemm<xsimd::default_arch>(m, 0, 40, {x2.data(), 2, 63, 64}, {y2.data(), 2, 40, 40}),
                      Catch::Contains("X has 63 columns, W has 64"));
  REQUIRE_THROWS_WITH(simd::lut_gemm<xsimd::default_arch>(m, 0, 40, {x2.data(), 2, 64, 64}, {y2.data(), 2, 24, 40}),
                      Catch::Contains("Y is [2, 24], want [2, 40]"));
  REQUIRE_THROWS_WITH(simd::lut_gemm<xsimd::default_arch>(m, 4, 40, {x2.data(), 2, 64, 64}, {y2.data(), 2, 36, 40}),
                      Catch::Contains("16-row tiles"));
}
