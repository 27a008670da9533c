// Runtime ISA dispatch of the SIMD matmuls for binaries built with one translation unit per ISA, and simd::gemm_best, the model runtime's entry point.
#pragma once

#include <string>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "../../core/tensor.hpp"
#include "../../core/thread_pool.hpp"
#include "../../quant/qtensor.hpp"
#include "../ref/matmul.hpp"
#include "matmul.hpp"

namespace qmr::simd {

// The ISAs a dispatching binary carries, best first; the first one the CPU
// supports runs. sse2 is the x86-64 baseline, so the list never comes up empty.
#if defined(__aarch64__)
using dispatch_archs = xsimd::arch_list<xsimd::neon64>;
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
    xsimd::dispatch<dispatch_archs>(gemm_quantized_fn{})(w, x, y, pool);
  } else {
    static_assert(std::is_same_v<W, tensor_view>, "W is a quant::qtensor_view or a dense tensor_view");
    check(w.shape.rank == 2, "matmul weight must be 2-D, got shape " + w.shape.str());
    check(w.type == dtype::f32 || w.type == dtype::f16 || w.type == dtype::bf16,
          "dense matmul weight must be F32, F16 or BF16, got " + std::string(dtype_name(w.type)));
    check(w.is_contiguous(), "expected a contiguous tensor");
    ref::detail::check_gemm_shapes(w.shape[0], w.shape[1], x, y);
    xsimd::dispatch<dispatch_archs>(gemm_dense_fn{})(w, x, y, pool);
  }
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

}  // namespace qmr::simd
