// The calibration BLAS kernels (f64 GEMM, f32 SYRK into double) equal their scalar references up to summation order, for every ISA this CPU runs and ragged, strided shapes.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "../random.hpp"
#include "dispatched_isas.hpp"
#include "qmr/core/aligned_buffer.hpp"
#include "qmr/kernels/ref/blas.hpp"
#include "qmr/kernels/simd/blas.hpp"
#include "qmr/kernels/simd/blas_dispatch.hpp"

using namespace qmr;

namespace {

using qmr::testing::fresh_seed;

using gemm_f64_fn_ptr = void (*)(double*, std::int64_t, const double*, std::int64_t, const double*, std::int64_t,
                                 std::int64_t, std::int64_t, std::int64_t, double);
using syrk_panel_fn_ptr = void (*)(const float*, std::int64_t, std::int64_t, std::int64_t, double*, std::int64_t);

struct blas_isa_kernels {
  std::string name;
  gemm_f64_fn_ptr gemm;
  syrk_panel_fn_ptr syrk;
};

// The kernels of every ISA this binary carries and this CPU runs, the header-only
// default-arch kernels (no dispatch) and the dispatched entry points.
std::vector<blas_isa_kernels> all_blas_isas() {
  std::vector<blas_isa_kernels> out;
  out.push_back({"default_arch", &simd::gemm_f64_acc<xsimd::default_arch>, &simd::syrk_f32_panel<xsimd::default_arch>});
  out.push_back({"best", &simd::gemm_f64_best, &simd::syrk_f32_panel_best});
  testing::for_each_dispatched_isa([&](auto arch, const char* name) {
    using Arch = decltype(arch);
    out.push_back({name,
                   [](double* c, std::int64_t ldc, const double* a, std::int64_t lda, const double* b, std::int64_t ldb,
                      std::int64_t m, std::int64_t n, std::int64_t k, double alpha) {
                     simd::gemm_f64_fn{}(Arch{}, c, ldc, a, lda, b, ldb, m, n, k, alpha);
                   },
                   [](const float* pack, std::int64_t tokens, std::int64_t n, std::int64_t panel, double* s,
                      std::int64_t lds) { simd::syrk_f32_panel_fn{}(Arch{}, pack, tokens, n, panel, s, lds); }});
  });
  return out;
}

std::vector<double> gaussian_f64(std::size_t n, std::uint32_t seed) {
  const auto f = testing::gaussian(n, seed);
  return {f.begin(), f.end()};
}

}  // namespace

TEST_CASE("f64 GEMM C += alpha A B equals the reference on ragged, strided shapes, every ISA", "[simd][blas]") {
  // Sizes around the 6-row tile, the 4- and 8-column vectors and the 128-deep k slices.
  const std::int64_t ms[] = {1, 5, 6, 7, 13, 64};
  const std::int64_t ns[] = {1, 3, 8, 31, 33, 100};
  const std::int64_t ks[] = {1, 7, 128, 129, 300};
  for (const blas_isa_kernels& isa : all_blas_isas())
    for (std::int64_t m : ms)
      for (std::int64_t n : ns)
        for (std::int64_t k : ks) {
          const std::uint32_t seed = fresh_seed();
          const double alpha = (seed % 3 == 0) ? 1.0 : (seed % 3 == 1) ? -1.0 : 0.37;
          INFO(isa.name << " m " << m << " n " << n << " k " << k << " alpha " << alpha << " seed " << seed);
          // Leading dimensions wider than the matrices: the kernels must honour them and
          // leave the columns between untouched.
          const std::int64_t lda = k + 3, ldb = n + 5, ldc = n + 2;
          const auto a = gaussian_f64(static_cast<std::size_t>(m * lda), seed);      // [m, lda]
          const auto b = gaussian_f64(static_cast<std::size_t>(k * ldb), seed + 1);  // [k, ldb]
          const auto c0 = gaussian_f64(static_cast<std::size_t>(m * ldc), seed + 2); // [m, ldc]
          auto want = c0, got = c0;
          ref::gemm_f64_acc(want.data(), ldc, a.data(), lda, b.data(), ldb, m, n, k, alpha);
          isa.gemm(got.data(), ldc, a.data(), lda, b.data(), ldb, m, n, k, alpha);
          std::int64_t bad = 0;
          for (std::int64_t i = 0; i < m; ++i)
            for (std::int64_t j = 0; j < ldc; ++j) {
              const std::size_t at = static_cast<std::size_t>(i * ldc + j);
              if (j >= n) {
                bad += got[at] != c0[at];
                continue;
              }
              // Both sum the same k exact-ish products in double in different orders:
              // within (k + 2) 2⁻⁵³ of Σ|alpha a b| + |c| each (Higham's γ bound).
              double mag = std::fabs(c0[at]);
              for (std::int64_t p = 0; p < k; ++p)
                mag += std::fabs(alpha * a[static_cast<std::size_t>(i * lda + p)] * b[static_cast<std::size_t>(p * ldb + j)]);
              bad += !(std::fabs(got[at] - want[at]) <= 2.0 * static_cast<double>(k + 2) * std::ldexp(1.0, -53) * mag);
            }
          REQUIRE(bad == 0);
        }
}

TEST_CASE("f32 SYRK into double equals the reference's upper triangle and leaves the lower one, every ISA",
          "[simd][blas]") {
  // Columns around the 48-column panels and the 6/8-row tiles; tokens around the
  // 128-token f32 partial sums.
  const std::int64_t ns[] = {1, 7, 47, 48, 49, 100, 150};
  const std::int64_t token_counts[] = {1, 5, 128, 129, 300};
  for (const blas_isa_kernels& isa : all_blas_isas())
    for (std::int64_t n : ns)
      for (std::int64_t tokens : token_counts) {
        const std::uint32_t seed = fresh_seed();
        INFO(isa.name << " n " << n << " tokens " << tokens << " seed " << seed);
        const std::int64_t ldx = n + 3;  // a column slice of a wider matrix
        // Heavy tails and a large common offset: partial sums far from their magnitudes.
        auto x = testing::student_t(static_cast<std::size_t>(tokens * ldx), seed);  // [tokens, ldx]
        for (float& v : x) v += 4.0f;
        const auto s0 = gaussian_f64(static_cast<std::size_t>(n * n), seed + 1);  // [n, n]
        auto want = s0, got = s0;
        ref::syrk_upper_f32(x.data(), ldx, tokens, n, want.data(), n);
        const std::int64_t panels = simd::syrk_panels(n);
        aligned_buffer<float> pack(static_cast<std::size_t>(panels * simd::syrk_panel_width * tokens));
        simd::syrk_pack(x.data(), ldx, tokens, n, 0, panels, pack.data());
        for (std::int64_t p = panels - 1; p >= 0; --p) isa.syrk(pack.data(), tokens, n, p, got.data(), n);
        std::int64_t bad = 0;
        double worst = 0;
        for (std::int64_t i = 0; i < n; ++i)
          for (std::int64_t j = 0; j < n; ++j) {
            const std::size_t at = static_cast<std::size_t>(i * n + j);
            if (j < i) {
              bad += got[at] != s0[at];  // the strict lower triangle is never written
              continue;
            }
            // f32 products summed in f32 over at most 128 tokens, then in double: within
            // (128 + 1) 2⁻²⁴ of Σ_t |x_ti x_tj|, plus the double additions.
            double mag = 0;
            for (std::int64_t t = 0; t < tokens; ++t)
              mag += std::fabs(static_cast<double>(x[static_cast<std::size_t>(t * ldx + i)]) * x[static_cast<std::size_t>(t * ldx + j)]);
            const double err = std::fabs(got[at] - want[at]);
            worst = std::max(worst, mag > 0 ? err / mag : err);
            bad += !(err <= 129.0 * std::ldexp(1.0, -24) * mag + 1e-12 * std::fabs(want[at]));
          }
        INFO("worst error relative to sum |x_i x_j|: " << worst);
        REQUIRE(bad == 0);
        // Typical errors are far below the worst-case bound: a tile that summed the
        // wrong tokens or columns would be off by O(1) relative.
        REQUIRE(worst < 2e-5);
      }
}
