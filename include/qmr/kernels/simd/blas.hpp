// SIMD BLAS-like kernels of the calibrated quantizers, templated on the xsimd architecture: C += α·A·B in double (GPTQ's Cholesky factorization, triangular inverse and lazy block updates) and the upper triangle of XᵀX from f32 inputs, summed into double (the calibration Hessian).
#pragma once

#include <algorithm>
#include <cstdint>

#include <xsimd/xsimd.hpp>

// Both kernels are serial: the callers (quant/gptq.hpp, quant/hessian.hpp) split rows or
// column panels over the thread pool, so that the per-ISA translation units hold nothing
// but arithmetic. Their scalar references are in kernels/ref/blas.hpp; runtime dispatch
// over the ISAs is in blas_dispatch.hpp.

namespace qmr::simd {

// ---------------------------------------------------------------------------------------------
// C[m, n] += alpha · A[m, k] · B[k, n] in double.

template <class Arch>
struct gemm_f64_tiles {
  static constexpr std::int64_t lanes = xsimd::batch<double, Arch>::size;
  // Register tile: mr rows of C × nr vectors of columns, from mr broadcasts of A and nr
  // loads of B per step of k. mr·nr accumulators + nr B registers + 1 broadcast must fit
  // the register file: 6·4 + 4 + 1 = 29 of 32 with AVX-512; 6·2 + 2 + 1 = 15 of 16 with
  // SSE2 and AVX2.
  static constexpr int mr = 6;
  static constexpr int nr = lanes >= 8 ? 4 : 2;
  static constexpr std::int64_t width = nr * lanes;  // columns of C per tile
  // k is cut into slices of kc; each slice's B strip is packed into a [kc, width] stack
  // buffer (32 KB with AVX-512) that stays in L1 while every mr rows of A pass it.
  static constexpr std::int64_t kc = 128;
  static_assert(kc * width * sizeof(double) <= std::size_t{32} * 1024, "the packed B strip must fit L1");
};

namespace detail {

// c[MR, cols] += alpha · a[MR, kl] · bp[kl, width], a's rows lda apart, bp the packed B
// strip (zero right of cols). Every element is one f64 sum over p in order, scaled and
// added by one xsimd::fma: the same arithmetic whatever the tile's position or `cols`.
template <class Arch, int MR>
inline void gemm_f64_tile(double* c, std::int64_t ldc, const double* a, std::int64_t lda, const double* bp,
                          std::int64_t kl, double alpha, std::int64_t cols) {
  using batch = xsimd::batch<double, Arch>;
  using tiles = gemm_f64_tiles<Arch>;
  constexpr int nr = tiles::nr;
  constexpr std::int64_t lanes = tiles::lanes, width = tiles::width;
  batch acc[MR][nr];
  for (auto& row : acc)
    for (auto& v : row) v = batch(0.0);
  for (std::int64_t p = 0; p < kl; ++p) {
    batch bv[nr];
    for (int v = 0; v < nr; ++v) bv[v] = batch::load_aligned(bp + p * width + v * lanes);
    for (int i = 0; i < MR; ++i) {
      const batch ai(a[i * lda + p]);
      for (int v = 0; v < nr; ++v) acc[i][v] = xsimd::fma(ai, bv[v], acc[i][v]);
    }
  }
  const batch al(alpha);
  if (cols == width) {
    for (int i = 0; i < MR; ++i)
      for (int v = 0; v < nr; ++v) {
        double* ci = c + i * ldc + v * lanes;
        xsimd::fma(al, acc[i][v], batch::load_unaligned(ci)).store_unaligned(ci);
      }
    return;
  }
  alignas(64) double row[width];  // one row of C, zero-padded to the tile width
  for (int i = 0; i < MR; ++i) {
    double* ci = c + i * ldc;
    std::fill(std::copy(ci, ci + cols, row), row + width, 0.0);
    for (int v = 0; v < nr; ++v)
      xsimd::fma(al, acc[i][v], batch::load_aligned(row + v * lanes)).store_aligned(row + v * lanes);
    std::copy(row, row + cols, ci);
  }
}

}  // namespace detail

// C[m, n] += alpha · A[m, k] · B[k, n], row-major with leading dimensions in elements
// (C must not overlap A or B). Equals ref::gemm_f64_acc up to the order of the k
// additions (sums restart every kc) and the fused final multiply-add.
template <class Arch>
void gemm_f64_acc(double* c, std::int64_t ldc, const double* a, std::int64_t lda, const double* b, std::int64_t ldb,
                  std::int64_t m, std::int64_t n, std::int64_t k, double alpha) {
  using tiles = gemm_f64_tiles<Arch>;
  constexpr int mr = tiles::mr;
  constexpr std::int64_t width = tiles::width;
  alignas(64) double bp[tiles::kc * width];  // [kc, width] B strip, zero right of n
  for (std::int64_t p0 = 0; p0 < k; p0 += tiles::kc) {
    const std::int64_t kl = std::min(tiles::kc, k - p0);
    for (std::int64_t j0 = 0; j0 < n; j0 += width) {
      const std::int64_t cols = std::min(width, n - j0);
      for (std::int64_t p = 0; p < kl; ++p) {
        const double* src = b + (p0 + p) * ldb + j0;
        std::fill(std::copy(src, src + cols, bp + p * width), bp + (p + 1) * width, 0.0);
      }
      const double* ap = a + p0;
      double* cj = c + j0;
      std::int64_t i = 0;
      for (; i + mr <= m; i += mr) detail::gemm_f64_tile<Arch, mr>(cj + i * ldc, ldc, ap + i * lda, lda, bp, kl, alpha, cols);
      static_assert(mr == 6, "the row remainder below covers 1..5 rows");
      switch (m - i) {
        case 5: detail::gemm_f64_tile<Arch, 5>(cj + i * ldc, ldc, ap + i * lda, lda, bp, kl, alpha, cols); break;
        case 4: detail::gemm_f64_tile<Arch, 4>(cj + i * ldc, ldc, ap + i * lda, lda, bp, kl, alpha, cols); break;
        case 3: detail::gemm_f64_tile<Arch, 3>(cj + i * ldc, ldc, ap + i * lda, lda, bp, kl, alpha, cols); break;
        case 2: detail::gemm_f64_tile<Arch, 2>(cj + i * ldc, ldc, ap + i * lda, lda, bp, kl, alpha, cols); break;
        case 1: detail::gemm_f64_tile<Arch, 1>(cj + i * ldc, ldc, ap + i * lda, lda, bp, kl, alpha, cols); break;
        default: break;  // 0: no remainder
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The upper triangle of XᵀX, X f32, summed into double.

// Columns per panel of the packed X (syrk_pack): a multiple of every ISA's tile width
// (48 = 3 AVX-512 vectors = 6 AVX2 vectors = 12 SSE2/NEON vectors) and of its tile rows
// (8 and 6), so that a tile never straddles two panels. The same for every ISA, so the
// caller packs before dispatching.
inline constexpr std::int64_t syrk_panel_width = 48;

inline std::int64_t syrk_panels(std::int64_t n) { return (n + syrk_panel_width - 1) / syrk_panel_width; }

// Panels [p0, p1) of X [tokens, n] (f32, row stride ldx) into pack [panels, tokens,
// syrk_panel_width]: panel p holds columns [p·48, p·48 + 48), token by token, zero past n.
inline void syrk_pack(const float* x, std::int64_t ldx, std::int64_t tokens, std::int64_t n, std::int64_t p0,
                      std::int64_t p1, float* pack) {
  for (std::int64_t p = p0; p < p1; ++p) {
    const std::int64_t c0 = p * syrk_panel_width, cols = std::min(syrk_panel_width, n - c0);
    float* dst = pack + p * tokens * syrk_panel_width;  // [tokens, 48]
    for (std::int64_t t = 0; t < tokens; ++t) {
      const float* src = x + t * ldx + c0;
      std::fill(std::copy(src, src + cols, dst + t * syrk_panel_width), dst + (t + 1) * syrk_panel_width, 0.0f);
    }
  }
}

template <class Arch>
struct syrk_f32_tiles {
  static constexpr std::int64_t lanes = xsimd::batch<float, Arch>::size;
  // Register tile: mr rows × nr vectors of columns of XᵀX, from mr broadcasts of X[t, i]
  // and nr loads of X[t, j] per token: 8·3 + 3 + 1 = 28 of 32 registers with AVX-512 (24
  // FMAs per 11 loads); 6·2 + 2 + 1 = 15 of 16 with SSE2 and AVX2.
  static constexpr int mr = lanes >= 16 ? 8 : 6;
  static constexpr int nr = lanes >= 16 ? 3 : 2;
  static constexpr std::int64_t width = nr * lanes;
  // Tokens summed in f32 before the partial sums are added into the tile's double
  // accumulator: 128-term f32 sums keep the relative error near 128 · 2⁻²⁴ ≈ 8e-6 in
  // the worst case (√128 · 2⁻²⁴ ≈ 7e-7 typically) whatever the token count, at one
  // f32 -> f64 conversion and add per 128 FMAs of each accumulator.
  static constexpr std::int64_t flush_tokens = 128;
  static_assert(syrk_panel_width % width == 0 && syrk_panel_width % mr == 0, "tiles must not straddle panels");
};

// S[i, j] += Σ_t X[t, i] · X[t, j] for the columns j of panel `panel` of the packed X
// (syrk_pack, `tokens` rows) and every row i <= j: the panel's slice of the upper
// triangle of S [n, n] (row-major, leading dimension lds); nothing below the diagonal is
// written. Products are summed in f32 over at most flush_tokens tokens, those partial
// sums in double. Panels are independent: callers run them in parallel.
template <class Arch>
void syrk_f32_panel(const float* pack, std::int64_t tokens, std::int64_t n, std::int64_t panel, double* s,
                    std::int64_t lds) {
  using batch = xsimd::batch<float, Arch>;
  using tiles = syrk_f32_tiles<Arch>;
  constexpr int mr = tiles::mr, nr = tiles::nr;
  constexpr std::int64_t lanes = tiles::lanes, width = tiles::width, pw = syrk_panel_width;
  const std::int64_t j0 = panel * pw, j1 = std::min(n, j0 + pw);
  for (std::int64_t strip = j0; strip < j1; strip += width) {
    const std::int64_t cols = std::min(width, j1 - strip);
    const float* b = pack + panel * tokens * pw + (strip - j0);  // X[t, strip + j] at b[t * pw + j]
    // Rows below strip + cols have no element on or above the diagonal in this strip.
    for (std::int64_t i0 = 0; i0 < strip + cols; i0 += mr) {
      const float* a = pack + (i0 / pw) * tokens * pw + i0 % pw;  // X[t, i0 + i] at a[t * pw + i]
      alignas(64) double sum[mr][width] = {};                     // the tile in double
      for (std::int64_t t0 = 0; t0 < tokens; t0 += tiles::flush_tokens) {
        const std::int64_t t1 = std::min(tokens, t0 + tiles::flush_tokens);
        batch acc[mr][nr];
        for (auto& row : acc)
          for (auto& v : row) v = batch(0.0f);
        for (std::int64_t t = t0; t < t1; ++t) {
          batch bv[nr];
          for (int v = 0; v < nr; ++v) bv[v] = batch::load_unaligned(b + t * pw + v * lanes);
          for (int i = 0; i < mr; ++i) {
            const batch ai(a[t * pw + i]);
            for (int v = 0; v < nr; ++v) acc[i][v] = xsimd::fma(ai, bv[v], acc[i][v]);
          }
        }
        alignas(64) float part[width];  // one row of the f32 partial sums
        for (int i = 0; i < mr; ++i) {
          for (int v = 0; v < nr; ++v) acc[i][v].store_aligned(part + v * lanes);
          for (std::int64_t j = 0; j < width; ++j) sum[i][j] += static_cast<double>(part[j]);
        }
      }
      const std::int64_t rows = std::min<std::int64_t>(mr, strip + cols - i0);
      for (std::int64_t i = 0; i < rows; ++i) {
        double* si = s + (i0 + i) * lds + strip;
        // On the diagonal, only the columns at or right of row i0 + i.
        for (std::int64_t j = std::max<std::int64_t>(0, i0 + i - strip); j < cols; ++j) si[j] += sum[i][j];
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Dispatch functors. operator() is only declared here: each ISA's translation unit
// (tools/dispatch/blas_<isa>.cpp) includes blas_impl.hpp, compiled with that ISA's flags,
// and instantiates it for its Arch; blas_dispatch.hpp picks one at run time.

struct gemm_f64_fn {
  template <class Arch>
  void operator()(Arch, double* c, std::int64_t ldc, const double* a, std::int64_t lda, const double* b,
                  std::int64_t ldb, std::int64_t m, std::int64_t n, std::int64_t k, double alpha) const;
};
struct syrk_f32_panel_fn {
  template <class Arch>
  void operator()(Arch, const float* pack, std::int64_t tokens, std::int64_t n, std::int64_t panel, double* s,
                  std::int64_t lds) const;
};

}  // namespace qmr::simd
