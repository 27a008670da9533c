// The int8-activation (a8) mode: its reference against W·X̂ and the f32 reference, its quantizer bit for bit, and the SIMD a8 kernels of every ISA against the reference (exactly on exactly-representable data, up to rounding on random data, and at the codes and activations that could saturate).
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
#include "qmr/kernels/ref/matmul_a8.hpp"
#include "qmr/kernels/simd/dispatch.hpp"
#include "qmr/kernels/simd/matmul_a8.hpp"
#include "qmr/model/linear.hpp"
#include "qmr/quant/rtn.hpp"

using namespace qmr;
using namespace qmr::quant;

namespace {

using qmr::testing::fresh_seed;

using gemm_fn = void (*)(const qtensor_view&, matrix_view<const float>, matrix_view<float>, thread_pool*);
using quantize_fn = void (*)(matrix_view<const float>, std::int8_t*, float*);

// Calls fn(name, gemm, quantize) for every a8 kernel this binary carries and this CPU
// runs. Without runtime dispatch, that is the header-only default; with it, the
// default arch is one of the dispatched ones (see test_simd_matmul.cpp).
template <class F>
void for_each_isa(F&& fn) {
#if !defined(QMR_SIMD_DISPATCH)
  fn(std::string("default"),
     static_cast<gemm_fn>([](const qtensor_view& w, matrix_view<const float> x, matrix_view<float> y, thread_pool* p) {
       simd::gemm_a8<>(w, x, y, p);
     }),
     static_cast<quantize_fn>([](matrix_view<const float> x, std::int8_t* q, float* s) { simd::quantize_a8<>(x, q, s); }));
#endif
  const auto each = [&](auto arch, const char* name) {
    using Arch = decltype(arch);
    fn(std::string(name),
       static_cast<gemm_fn>([](const qtensor_view& w, matrix_view<const float> x, matrix_view<float> y, thread_pool* p) {
         simd::gemm_a8_fn{}(Arch{}, w, x, y, p);
       }),
       static_cast<quantize_fn>(
           [](matrix_view<const float> x, std::int8_t* q, float* s) { simd::quantize_a8_fn{}(Arch{}, x, q, s); }));
  };
  testing::for_each_dispatched_isa(each);
#if defined(QMR_SIMD_DISPATCH) && !defined(__aarch64__) && !defined(QMR_SIMD_DISPATCH_NO_AVX512)
  if (simd::detail::cpu_has_avx512vnni()) each(simd::avx512vnni{}, "avx512vnni");
#endif
}

// Gaussian activations; one row in three is scaled by 100 in a few columns (outliers).
std::vector<float> activations(std::int64_t m, std::int64_t stride, std::mt19937& rng) {
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(static_cast<std::size_t>(m * stride));
  for (float& e : v) e = d(rng);
  for (std::int64_t i = 0; i < m; i += 3)
    for (std::int64_t c = 5; c < stride; c += 97) v[static_cast<std::size_t>(i * stride + c)] *= 100.0f;
  return v;
}

// The bound on |simd - ref|: both sum the same exactly-integer block dot products
// times f32 scales in different orders, and the SIMD kernels split each (q - z) a
// into q a and z a (the zero-point fold), so the rounding is relative to
// sum_c |s_g d_b a_c| (q_c + z_g), over about K / 4 sums of such terms.
std::vector<double> magnitudes(const qtensor_view& w, const std::vector<float>& x, std::int64_t m,
                               std::int64_t x_stride) {
  const std::int64_t k = w.cols(), n = w.rows(), blocks = ref::a8_blocks(k);
  std::vector<double> mag(static_cast<std::size_t>(m * n));
  std::vector<std::int8_t> a(static_cast<std::size_t>(k));
  std::vector<float> d(static_cast<std::size_t>(blocks));
  for (std::int64_t i = 0; i < m; ++i) {
    ref::quantize_a8(x.data() + i * x_stride, k, a.data(), d.data());
    for (std::int64_t r = 0; r < n; ++r) {
      double s = 0;
      for (std::int64_t c = 0; c < k; ++c) {
        const std::int64_t g = c / w.layout.group;
        s += std::fabs(static_cast<double>(to_float(w.scale(r, g))) * d[static_cast<std::size_t>(c / ref::a8_block)] *
                       a[static_cast<std::size_t>(c)]) *
             (static_cast<double>(w.code(r, c)) + w.zero(r, g));
      }
      mag[static_cast<std::size_t>(i * n + r)] = s;
    }
  }
  return mag;
}

void require_close(const std::vector<float>& y, const std::vector<float>& y_ref, const std::vector<double>& mag,
                   std::int64_t k) {
  for (std::size_t i = 0; i < y.size(); ++i) {
    const double bound = (2.0 * static_cast<double>(k) + 64.0) * std::ldexp(1.0, -24) * mag[i];
    INFO("output " << i << ": simd " << y[i] << " vs reference " << y_ref[i] << ", bound " << bound);
    REQUIRE(std::fabs(static_cast<double>(y[i]) - y_ref[i]) <= bound);
  }
}

}  // namespace

TEST_CASE("a8 quantizer: every ISA equals the reference bit for bit", "[simd][a8]") {
  const std::uint32_t seed = fresh_seed();
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  for (std::int64_t k : {std::int64_t{8}, std::int64_t{40}, std::int64_t{1048}}) {
    constexpr std::int64_t m = 6;
    std::vector<float> x = activations(m, k, rng);
    // Row 1: ties. A block of max 127 has d = 1 and 1/d = 1, so x.5 rounds to even.
    for (std::int64_t c = 0; c < k; ++c) x[static_cast<std::size_t>(k + c)] = c % 8 == 0 ? 127.0f : 0.5f * static_cast<float>(c % 17) - 4.0f;
    // Row 2: zeros; row 3: subnormal magnitudes (the scale rounds to a non-normal d).
    for (std::int64_t c = 0; c < k; ++c) x[static_cast<std::size_t>(2 * k + c)] = 0.0f;
    for (std::int64_t c = 0; c < k; ++c) x[static_cast<std::size_t>(3 * k + c)] = std::ldexp(static_cast<float>(c % 5) - 2.0f, -140);
    const std::int64_t blocks = ref::a8_blocks(k);
    std::vector<std::int8_t> q_ref(static_cast<std::size_t>(m * k));
    std::vector<float> d_ref(static_cast<std::size_t>(m * blocks));
    for (std::int64_t i = 0; i < m; ++i)
      ref::quantize_a8(x.data() + i * k, k, q_ref.data() + i * k, d_ref.data() + i * blocks);
    CHECK(q_ref[static_cast<std::size_t>(k + 1)] == -4);  // -3.5 -> -4 (ties to even)
    CHECK(q_ref[static_cast<std::size_t>(k + 2)] == -3);
    CHECK(q_ref[static_cast<std::size_t>(k + 3)] == -2);  // -2.5 -> -2
    for (std::size_t i = 0; i < q_ref.size(); ++i) REQUIRE(q_ref[i] >= -127);
    for_each_isa([&](const std::string& isa, gemm_fn, quantize_fn quantize) {
      INFO("K " << k << " on " << isa);
      std::vector<std::int8_t> q(q_ref.size(), 99);
      std::vector<float> d(d_ref.size(), NAN);
      quantize({x.data(), m, k}, q.data(), d.data());
      REQUIRE(q == q_ref);
      for (std::size_t i = 0; i < d.size(); ++i) REQUIRE(std::memcmp(&d[i], &d_ref[i], sizeof(float)) == 0);
    });
  }
}

TEST_CASE("a8 reference: W times the dequantized activations, within d/2 per activation of the f32 reference", "[a8]") {
  const std::uint32_t seed = fresh_seed();
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  for (const char* f : {"w4g32", "w3g128s", "w8gc", "w2g64"}) {
    const format_spec spec = parse_format(f);
    const std::int64_t n = 9, k = testing::ragged_cols_for(spec.group), m = 3;
    const qtensor q = testing::random_qtensor(spec, n, k, rng);
    const auto x = activations(m, k, rng);
    std::vector<float> y(static_cast<std::size_t>(m * n)), y_f32(y.size());
    ref::gemm_a8_ref(q.view(), {x.data(), m, k}, {y.data(), m, n});
    ref::gemm_ref(q.view(), {x.data(), m, k}, {y_f32.data(), m, n});
    std::vector<std::int8_t> a(static_cast<std::size_t>(k));
    std::vector<float> d(static_cast<std::size_t>(ref::a8_blocks(k)));
    for (std::int64_t i = 0; i < m; ++i) {
      ref::quantize_a8(x.data() + i * k, k, a.data(), d.data());
      for (std::int64_t r = 0; r < n; ++r) {
        double exact = 0, mag = 0, quant_err = 0;
        for (std::int64_t c = 0; c < k; ++c) {
          const double wv = q.view().value(r, c);
          const double dc = d[static_cast<std::size_t>(c / ref::a8_block)];
          exact += wv * dc * a[static_cast<std::size_t>(c)];
          mag += std::fabs(wv * dc * a[static_cast<std::size_t>(c)]);
          quant_err += std::fabs(wv) * dc / 2;
          // round(x / d) is off by at most half a step, plus the f32 rounding of the quotient
          // x / d (half an ulp of a value up to 127.5: |x| * 2^-23 once scaled back by d);
          // a 1e-6 relative slack alone failed on a fresh seed (535932579) by 2e-6.
          REQUIRE(std::fabs(dc * a[static_cast<std::size_t>(c)] - x[static_cast<std::size_t>(i * k + c)]) <=
                  dc / 2 * (1 + 1e-6) + std::fabs(x[static_cast<std::size_t>(i * k + c)]) * 0x1p-23);
        }
        INFO(f << " row " << r << ": a8 " << y[static_cast<std::size_t>(i * n + r)] << ", exact " << exact << ", f32 "
               << y_f32[static_cast<std::size_t>(i * n + r)]);
        REQUIRE(std::fabs(y[static_cast<std::size_t>(i * n + r)] - exact) <= 2.0 * static_cast<double>(k) * std::ldexp(1.0, -24) * mag);
        REQUIRE(std::fabs(y[static_cast<std::size_t>(i * n + r)] - y_f32[static_cast<std::size_t>(i * n + r)]) <=
                quant_err * 1.001 + 1e-5);
      }
    }
  }
}

TEST_CASE("SIMD a8 matmul equals the reference exactly on exactly representable data, every format and ISA", "[simd][a8]") {
  // Power-of-two scales (block maxima of 127 * 2^j) and small activations: every
  // product and partial sum is an integer multiple of 1/2 below 2^23, so any order of
  // summation is exact and the kernels must agree with the reference to the bit.
  // Any unpacking, layout or scale-indexing slip shows as a difference.
  const std::uint32_t seed = fresh_seed();
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> small(-4, 4), coin(0, 1), byte(0, 255);
  // Long rows (a8_two_rows_min_cols columns and more) take the one-token kernel's
  // two-rows-at-a-time path; an odd row count leaves it one row to do alone.
  for (bool long_rows : {false, true})
    for (int bits : supported_bits)
      for (int group : supported_groups)
        for (bool sym : {false, true}) {
          const format_spec spec = format_spec::quantized(bits, group, sym);
          const std::int64_t n = long_rows ? 5 : 37;  // odd
          const std::int64_t k = testing::ragged_cols_for(group) + (long_rows ? simd::detail::a8_two_rows_min_cols : 0);
          qtensor q(spec, n, k);
          for (auto& b : q.codes()) b = static_cast<std::uint8_t>(byte(rng));
          for (auto& b : q.zeros()) b = static_cast<std::uint8_t>(byte(rng));
          for (auto& s : q.scales()) s = to_f16(coin(rng) ? 1.0f : 0.5f);
          for (std::int64_t m : long_rows ? std::vector<std::int64_t>{1, 2} : std::vector<std::int64_t>{1, 2, 3, 5, 8, 11}) {
            const std::int64_t stride = k + 3;
            std::vector<float> x(static_cast<std::size_t>(m * stride));
            for (std::int64_t i = 0; i < m; ++i)
              for (std::int64_t c = 0; c < k; ++c) {
                const float unit = (c / ref::a8_block) % 2 ? 2.0f : 1.0f;  // d = 1 or 2
                const float v = c % ref::a8_block == 7 ? (coin(rng) ? 127.0f : -127.0f) : static_cast<float>(small(rng));
                x[static_cast<std::size_t>(i * stride + c)] = unit * v;
              }
            std::vector<float> y_ref(static_cast<std::size_t>(m * n));
            ref::gemm_a8_ref(q.view(), {x.data(), m, k, stride}, {y_ref.data(), m, n});
            for_each_isa([&](const std::string& isa, gemm_fn gemm, quantize_fn) {
              INFO(spec.str() << " K " << k << " M " << m << " on " << isa);
              std::vector<float> y(y_ref.size(), NAN);
              gemm(q.view(), {x.data(), m, k, stride}, {y.data(), m, n}, nullptr);
              for (std::size_t i = 0; i < y.size(); ++i) {
                INFO("output " << i);
                REQUIRE(y[i] == y_ref[i]);
              }
            });
          }
        }
}

TEST_CASE("SIMD a8 GEMV on rows whose group scales overflow the kernel's stack buffer", "[simd][a8]") {
  // The 64-column-step formats (8, 6, 5 bits) at M <= 2 convert a row's group scales to
  // f32 into a stack buffer of a8_row_scales_stack floats, or a heap one past it: rows
  // of more groups than that take the heap. An odd number of pairs (K = 2053 groups of
  // 128) leaves the second chain one pair short.
  const std::uint32_t seed = fresh_seed();
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  constexpr std::int64_t n = 3;
  for (const char* f : {"w8g128s", "w8g128", "w6g256", "w5g128s"}) {
    const format_spec spec = parse_format(f);
    const std::int64_t k = (simd::detail::a8_row_scales_stack + 5) * spec.group;  // past the stack buffer
    const qtensor q = testing::random_qtensor(spec, n, k, rng);
    for (std::int64_t m : {1, 2}) {
      const auto x = activations(m, k, rng);
      std::vector<float> y_ref(static_cast<std::size_t>(m * n));
      ref::gemm_a8_ref(q.view(), {x.data(), m, k}, {y_ref.data(), m, n});
      const auto mag = magnitudes(q.view(), x, m, k);
      for_each_isa([&](const std::string& isa, gemm_fn gemm, quantize_fn) {
        INFO(spec.str() << " K " << k << " M " << m << " on " << isa);
        std::vector<float> y(y_ref.size(), NAN);
        gemm(q.view(), {x.data(), m, k}, {y.data(), m, n}, nullptr);
        require_close(y, y_ref, mag, k);
      });
    }
  }
}

TEST_CASE("SIMD a8 matmul equals the reference up to rounding on random data, every format and ISA", "[simd][a8]") {
  const std::uint32_t seed = fresh_seed();
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  thread_pool pool(2);
  constexpr std::int64_t n = 37;
  for (int bits : supported_bits)
    for (int group : supported_groups)
      for (bool sym : {false, true}) {
        const format_spec spec = format_spec::quantized(bits, group, sym);
        const std::int64_t k = testing::ragged_cols_for(group);
        const qtensor q = testing::random_qtensor(spec, n, k, rng);
        for (std::int64_t m : {1, 3, 8, 17}) {
          const std::int64_t stride = k + 5;  // a padded, unaligned row stride
          const auto x = activations(m, stride, rng);
          std::vector<float> y_ref(static_cast<std::size_t>(m * n));
          ref::gemm_a8_ref(q.view(), {x.data(), m, k, stride}, {y_ref.data(), m, n});
          const auto mag = magnitudes(q.view(), x, m, stride);
          for_each_isa([&](const std::string& isa, gemm_fn gemm, quantize_fn) {
            for (thread_pool* p : {static_cast<thread_pool*>(nullptr), &pool}) {
              INFO(spec.str() << " K " << k << " M " << m << " on " << isa << (p ? ", 2 threads" : ""));
              std::vector<float> y(y_ref.size(), NAN);
              gemm(q.view(), {x.data(), m, k, stride}, {y.data(), m, n}, p);
              require_close(y, y_ref, mag, k);
            }
          });
        }
      }
}

TEST_CASE("SIMD a8 matmul does not saturate at the extreme codes and activations", "[simd][a8]") {
  // Codes 0 and 2^Bits - 1 against activations of +-127: for 8 bits, 255 * 127 * 2
  // would overflow vpmaddubsw's i16, and code 0 is -128 in the signed-code kernels.
  thread_pool pool(2);
  for (int bits : supported_bits)
    for (bool sym : {false, true}) {
      const format_spec spec = format_spec::quantized(bits, 32, sym);
      constexpr std::int64_t n = 6, k = 256;
      const int top = (1 << bits) - 1;
      qtensor q(spec, n, k);
      for (std::int64_t r = 0; r < n; ++r) {
        std::uint8_t* row = q.codes().data() + r * q.layout().code_row_bytes;
        for (std::int64_t c = 0; c < k; ++c) {
          const int pattern[] = {0, top, c % 2 ? 0 : top, c % 3 ? top : 0, c % 64 < 32 ? 0 : top,
                                 static_cast<int>((c * 37) % (top + 1))};
          put_code(row, c, bits, static_cast<std::uint32_t>(pattern[r]));
        }
        for (std::int64_t g = 0; g < q.layout().n_groups; ++g)
          q.scales()[static_cast<std::size_t>(r * q.layout().n_groups + g)] = to_f16(0.25f);
      }
      if (!sym)
        for (std::size_t i = 0; i < q.zeros().size(); ++i) q.zeros()[i] = static_cast<std::uint8_t>(i % 2 ? 0 : 0xFF);
      constexpr std::int64_t m = 4;
      std::vector<float> x(static_cast<std::size_t>(m * k));
      for (std::int64_t c = 0; c < k; ++c) {
        x[static_cast<std::size_t>(c)] = 1.0f;                      // all +127
        x[static_cast<std::size_t>(k + c)] = -1.0f;                 // all -127
        x[static_cast<std::size_t>(2 * k + c)] = c % 2 ? 1.0f : -1.0f;
        x[static_cast<std::size_t>(3 * k + c)] = c % 5 < 2 ? -3.0f : 3.0f;
      }
      std::vector<float> y_ref(static_cast<std::size_t>(m * n));
      ref::gemm_a8_ref(q.view(), {x.data(), m, k}, {y_ref.data(), m, n});
      const auto mag = magnitudes(q.view(), x, m, k);
      for_each_isa([&](const std::string& isa, gemm_fn gemm, quantize_fn) {
        for (std::int64_t rows : {std::int64_t{1}, m}) {
          INFO(spec.str() << " M " << rows << " on " << isa);
          std::vector<float> y(static_cast<std::size_t>(rows * n), NAN);
          gemm(q.view(), {x.data(), rows, k}, {y.data(), rows, n}, &pool);
          require_close(y, std::vector<float>(y_ref.begin(), y_ref.begin() + rows * n), mag, k);
        }
      });
    }
}

TEST_CASE("a8 mode: dispatch, the model runtime's simd_a8 kernel, and shape errors", "[simd][a8]") {
  std::mt19937 rng(fresh_seed());
  const format_spec spec = parse_format("w4g128");
  constexpr std::int64_t n = 33, k = 384;
  const qtensor q = testing::random_qtensor(spec, n, k, rng);
  const auto x = activations(2, k, rng);
  std::vector<float> y_ref(2 * n), y(2 * n, NAN), y_model(2 * n, NAN);
  ref::gemm_a8_ref(q.view(), {x.data(), 2, k}, {y_ref.data(), 2, n});
  const auto mag = magnitudes(q.view(), x, 2, k);
  INFO("dispatched to " << simd::a8_dispatched_isa());
  simd::gemm_a8_best(q.view(), {x.data(), 2, k}, {y.data(), 2, n});
  require_close(y, y_ref, mag, k);

  model::linear_weight lw;
  lw.spec = spec;
  lw.quantized = q.view();
  lw.rows = n;
  lw.cols = k;
  thread_pool pool(2);
  model::matmul(lw, {x.data(), 2, k}, {y_model.data(), 2, n}, &pool, model::matmul_kernel::simd_a8);
  require_close(y_model, y_ref, mag, k);

  std::vector<float> bad(k - 8);
  REQUIRE_THROWS_WITH(simd::gemm_a8_best(q.view(), {bad.data(), 1, k - 8}, {y.data(), 1, n}),
                      Catch::Contains("matmul shapes"));
  REQUIRE_THROWS_WITH(simd::gemv_a8(q.view(), bad, y), Catch::Contains("matmul shapes"));
  REQUIRE_THROWS_WITH(ref::gemv_a8_ref(q.view(), bad, y), Catch::Contains("matmul shapes"));
}
