// The f32 FMA peak the GEMM figures are quoted against: an unrolled loop of independent FMAs per thread, one translation unit per ISA.
#pragma once

#include "qmr/core/thread_pool.hpp"

namespace qmr::bench {

// FLOP/s (2 per lane per FMA) of `threads` threads each running independent FMA
// chains for about `seconds`. operator() is defined in fma_peak_impl.hpp and
// instantiated by bench/fma_peak_<isa>.cpp; call it through xsimd::dispatch.
struct fma_peak_fn {
  template <class Arch>
  double operator()(Arch, thread_pool& pool, double seconds) const;
};

}  // namespace qmr::bench
