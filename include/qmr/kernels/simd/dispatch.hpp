// Runtime ISA dispatch of the SIMD matmuls for binaries built with one translation unit per ISA, and simd::gemm_best, the model runtime's entry point.
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

#include <xsimd/xsimd.hpp>
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#endif

#include "../../core/tensor.hpp"
#include "../../core/thread_pool.hpp"
#include "../../quant/qtensor.hpp"
#include "../ref/matmul.hpp"
#include "lut_gemv.hpp"
#include "matmul.hpp"
#include "matmul_a8.hpp"

namespace qmr::simd {

// The ISAs a dispatching binary carries, best first; the first one the CPU
// supports runs. sse2 is the x86-64 baseline, so the list never comes up empty.
// A build may leave AVX2 or AVX-512 out (meson -Dsimd_isas, which defines
// QMR_SIMD_DISPATCH_NO_AVX2 / _NO_AVX512 for every file of the program).
#if defined(__aarch64__)
using dispatch_archs = xsimd::arch_list<xsimd::neon64>;
#elif defined(QMR_SIMD_DISPATCH_NO_AVX2) && defined(QMR_SIMD_DISPATCH_NO_AVX512)
using dispatch_archs = xsimd::arch_list<xsimd::sse2>;
#elif defined(QMR_SIMD_DISPATCH_NO_AVX2)
using dispatch_archs = xsimd::arch_list<xsimd::avx512bw, xsimd::sse2>;
#elif defined(QMR_SIMD_DISPATCH_NO_AVX512)
using dispatch_archs = xsimd::arch_list<xsimd::fma3<xsimd::avx2>, xsimd::sse2>;
#else
using dispatch_archs = xsimd::arch_list<xsimd::avx512bw, xsimd::fma3<xsimd::avx2>, xsimd::sse2>;
#endif

// The dispatch functors. operator() is only declared here: each ISA's translation
// unit (dispatch/simd_<isa>.cpp) includes dispatch_impl.hpp, compiled with that
// ISA's flags, and instantiates it for its Arch. Defining it inline here instead
// would let every caller instantiate it with the caller's (baseline) flags.
struct gemm_quantized_fn {
  template <class Arch>
  void operator()(Arch, const quant::qtensor_view& w, matrix_view<const float> x, matrix_view<float> y,
                  thread_pool* pool) const;
};
struct gemm_dense_fn {
  template <class Arch>
  void operator()(Arch, const tensor_view& w, matrix_view<const float> x, matrix_view<float> y,
                  thread_pool* pool) const;
};
// The int8-activation mode (matmul_a8.hpp) and its activation quantizer.
struct gemm_a8_fn {
  template <class Arch>
  void operator()(Arch, const quant::qtensor_view& w, matrix_view<const float> x, matrix_view<float> y,
                  thread_pool* pool) const;
};
struct quantize_a8_fn {
  template <class Arch>
  void operator()(Arch, matrix_view<const float> x, std::int8_t* q, float* scales) const;
};

// The table GEMV over a repacked W (lut_gemv.hpp).
struct lut_gemv_fn {
  template <class Arch>
  void operator()(Arch, const lut_matrix& w, std::int64_t r0, std::int64_t r1, std::span<const float> x,
                  std::span<float> y, thread_pool* pool) const;
};
// Any number of rows of X over a repacked W (lut_gemm).
struct lut_gemm_fn {
  template <class Arch>
  void operator()(Arch, const lut_matrix& w, std::int64_t r0, std::int64_t r1, matrix_view<const float> x,
                  matrix_view<float> y, thread_pool* pool) const;
};

namespace detail {

// The version of the best ISA xsimd finds on this CPU, asked once. xsimd 8.1's
// dispatcher asks on every call, and there the CPUID instructions of its CPU check ran
// per call (GCC 12, -O2: hoisted out of loops, never skipped). In a VM CPUID traps to the
// hypervisor: decode attention, dispatched once per head, spent 97% of its own time on
// CPUID and ~0.6 ms of a 13 ms Qwen2.5-0.5B token on this 2-vCPU VM.
inline unsigned best_arch_version() {
  static const unsigned best = xsimd::available_architectures().best;
  return best;
}

// f(Arch{}, args...) for the first Arch of the list this CPU runs (the last one
// regardless: the baseline), as xsimd::dispatch does, on best_arch_version().
template <class F, class Arch, class... Rest, class... Args>
decltype(auto) dispatch_walk(xsimd::arch_list<Arch, Rest...>, F&& f, Args&&... args) {
  if constexpr (sizeof...(Rest) == 0) {
    return f(Arch{}, std::forward<Args>(args)...);
  } else {
    if (Arch::version() <= best_arch_version()) return f(Arch{}, std::forward<Args>(args)...);
    return dispatch_walk(xsimd::arch_list<Rest...>{}, std::forward<F>(f), std::forward<Args>(args)...);
  }
}

}  // namespace detail

// f(Arch{}, args...) on the best ISA of dispatch_archs this CPU runs: xsimd::dispatch,
// with the CPU asked once per program (detail::best_arch_version). f's operator() for
// each Arch lives in that ISA's translation unit, as for xsimd::dispatch.
template <class F, class... Args>
decltype(auto) dispatch_best_arch(F&& f, Args&&... args) {
  return detail::dispatch_walk(dispatch_archs{}, std::forward<F>(f), std::forward<Args>(args)...);
}

namespace detail {

// Whether this CPU runs the avx512vnni a8 kernels: AVX-512BW usable (xsimd checks
// the CPU and that the OS saves the zmm registers) and CPUID leaf 7 reporting VBMI
// (ECX bit 1) and VNNI (ECX bit 11). xsimd 8.1 knows neither, so a8 dispatch asks
// here first and leaves the rest to xsimd::dispatch. Read once.
inline bool cpu_has_avx512vnni() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(QMR_SIMD_DISPATCH_NO_AVX512)
  static const bool has = [] {
    if (!xsimd::available_architectures().avx512bw) return false;
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
    return ((ecx >> 1) & 1u) != 0 && ((ecx >> 11) & 1u) != 0;
  }();
  return has;
#else
  return false;
#endif
}

}  // namespace detail

// Y[M, N] = X[M, K] · W[N, K]ᵀ on the best ISA of dispatch_archs this CPU has, for
// W a quant::qtensor_view or a dense tensor_view. Needs the per-ISA translation
// units linked in (meson: simd_dispatch_dep). Shapes are checked here: xsimd's
// dispatcher is noexcept. A template so that it is instantiated only where it is
// called: in an ISA's own translation unit the functor bodies are visible, and
// instantiating the dispatcher there would compile every ISA with that one's flags.
template <class W>
void gemm_dispatched(const W& w, matrix_view<const float> x, matrix_view<float> y, thread_pool* pool = nullptr) {
  if constexpr (std::is_same_v<W, quant::qtensor_view>) {
    ref::detail::check_gemm_shapes(w.rows(), w.cols(), x, y);
    dispatch_best_arch(gemm_quantized_fn{}, w, x, y, pool);
  } else {
    static_assert(std::is_same_v<W, tensor_view>, "W is a quant::qtensor_view or a dense tensor_view");
    check(w.shape.rank == 2, "matmul weight must be 2-D, got shape " + w.shape.str());
    check(w.type == dtype::f32 || w.type == dtype::f16 || w.type == dtype::bf16,
          "dense matmul weight must be F32, F16 or BF16, got " + std::string(dtype_name(w.type)));
    check(w.is_contiguous(), "expected a contiguous tensor");
    ref::detail::check_gemm_shapes(w.shape[0], w.shape[1], x, y);
    dispatch_best_arch(gemm_dense_fn{}, w, x, y, pool);
  }
}

// y[r1 - r0] = W[r0:r1, :] · x over a lut_matrix (rows on 16-row tiles, see
// lut_gemv) on the best ISA of dispatch_archs this CPU has: the table kernel on
// AVX-512BW, a scalar loop over the same layout elsewhere (build a lut_matrix only
// where lut_gemv_fast() says the kernel runs). A template for the same reason as
// gemm_dispatched.
template <class W>
void lut_gemv_dispatched(const W& w, std::int64_t r0, std::int64_t r1, std::span<const float> x, std::span<float> y,
                         thread_pool* pool = nullptr) {
  static_assert(std::is_same_v<W, lut_matrix>, "lut_gemv_dispatched takes a simd::lut_matrix");
  dispatch_best_arch(lut_gemv_fn{}, w, r0, r1, x, y, pool);
}
template <class W>
void lut_gemv_dispatched(const W& w, std::span<const float> x, std::span<float> y, thread_pool* pool = nullptr) {
  lut_gemv_dispatched(w, 0, w.rows(), x, y, pool);
}

// Y[M, r1 - r0] = X · W[r0:r1, :]ᵀ over a lut_matrix, any M (lut_gemm), dispatched
// as lut_gemv_dispatched is.
template <class W>
void lut_gemm_dispatched(const W& w, std::int64_t r0, std::int64_t r1, matrix_view<const float> x,
                         matrix_view<float> y, thread_pool* pool = nullptr) {
  static_assert(std::is_same_v<W, lut_matrix>, "lut_gemm_dispatched takes a simd::lut_matrix");
  dispatch_best_arch(lut_gemm_fn{}, w, r0, r1, x, y, pool);
}

// Whether lut_gemm_best runs the table kernel on this CPU: a dispatching binary with
// AVX-512BW in its list on a CPU that has it, or a program compiled for AVX-512BW.
inline bool lut_gemv_fast() {
#if defined(QMR_SIMD_DISPATCH) && defined(__x86_64__) && !defined(QMR_SIMD_DISPATCH_NO_AVX512)
  return xsimd::available_architectures().avx512bw != 0;
#elif defined(QMR_SIMD_DISPATCH)
  return false;
#else
  return std::is_base_of_v<xsimd::avx512bw, xsimd::default_arch>;
#endif
}

// Y[M, N] = quantize_a8(X[M, K]) · W[N, K]ᵀ, the int8-activation mode, on the best
// kernel this CPU runs: avx512vnni (x86-64 dispatching binaries carry its translation
// unit, dispatch/simd_avx512vnni.cpp), else the best of dispatch_archs. A template
// for the same reason as gemm_dispatched.
template <class W>
void gemm_a8_dispatched(const W& w, matrix_view<const float> x, matrix_view<float> y, thread_pool* pool = nullptr) {
  static_assert(std::is_same_v<W, quant::qtensor_view>, "the a8 mode takes a quantized W (quant::qtensor_view)");
  ref::detail::check_gemm_shapes(w.rows(), w.cols(), x, y);
#if defined(__x86_64__) && !defined(QMR_SIMD_DISPATCH_NO_AVX512)
  if (detail::cpu_has_avx512vnni()) return gemm_a8_fn{}(avx512vnni{}, w, x, y, pool);
#endif
  dispatch_best_arch(gemm_a8_fn{}, w, x, y, pool);
}

// The name of the ISA gemm_a8_dispatched runs on this CPU.
inline const char* a8_dispatched_isa() {
#if defined(__aarch64__)
  return xsimd::available_architectures().neon64 ? "neon64" : "scalar";
#else
  auto isa = xsimd::available_architectures();
#if defined(QMR_SIMD_DISPATCH_NO_AVX512)
  isa.avx512bw = 0;
#endif
#if defined(QMR_SIMD_DISPATCH_NO_AVX2)
  isa.fma3_avx2 = 0;
#endif
  return detail::cpu_has_avx512vnni() ? "avx512vnni" : isa.avx512bw ? "avx512bw" : isa.fma3_avx2 ? "avx2" : "sse2 (scalar)";
#endif
}

// The SIMD matmul a program gets by default: runtime dispatch when the program is
// built with the per-ISA translation units (they define QMR_SIMD_DISPATCH for
// every file of the program), else the kernel of the ISA it is compiled for.
template <class W>
void gemm_best(const W& w, matrix_view<const float> x, matrix_view<float> y, thread_pool* pool = nullptr) {
#if defined(QMR_SIMD_DISPATCH)
  gemm_dispatched(w, x, y, pool);
#else
  gemm<xsimd::default_arch>(w, x, y, pool);
#endif
}

// The int8-activation matmul a program gets: dispatched as gemm_best is, else the
// best kernel of the ISA it is compiled for (a8_default_arch).
template <class W>
void gemm_a8_best(const W& w, matrix_view<const float> x, matrix_view<float> y, thread_pool* pool = nullptr) {
#if defined(QMR_SIMD_DISPATCH)
  gemm_a8_dispatched(w, x, y, pool);
#else
  gemm_a8<a8_default_arch>(w, x, y, pool);
#endif
}

// The table kernels a program gets (lut_gemv.hpp): Y = X · W[r0:r1, :]ᵀ through lut_gemm
// (the table GEMV for one row of X), dispatched as gemm_best is, else the ISA it is
// compiled for; lut_gemv_fast() says whether that is the AVX-512 kernel.
template <class W>
void lut_gemm_best(const W& w, std::int64_t r0, std::int64_t r1, matrix_view<const float> x, matrix_view<float> y,
                   thread_pool* pool = nullptr) {
#if defined(QMR_SIMD_DISPATCH)
  lut_gemm_dispatched(w, r0, r1, x, y, pool);
#else
  lut_gemm<xsimd::default_arch>(w, r0, r1, x, y, pool);
#endif
}

}  // namespace qmr::simd
