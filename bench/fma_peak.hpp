// The machine-limit loops the figures are quoted against, one translation unit per ISA: the f32 FMA peak (an unrolled loop of independent FMAs per thread) and the streaming sum of the read-bandwidth probe.
#pragma once

#include <cstddef>

#include "qmr/core/thread_pool.hpp"

namespace qmr::bench {

// FLOP/s (2 per lane per FMA) of `threads` threads each running independent FMA
// chains for about `seconds`. operator() is defined in fma_peak_impl.hpp and
// instantiated by bench/fma_peak_<isa>.cpp; call it through xsimd::dispatch.
struct fma_peak_fn {
  template <class Arch>
  double operator()(Arch, thread_pool& pool, double seconds) const;
};

// The sum of p[0, n) with Arch's widest loads, eight independent vector
// accumulators: the streaming loop of read_bandwidth (bandwidth.hpp). operator() is defined in
// fma_peak_impl.hpp and instantiated per ISA by bench/fma_peak_<isa>.cpp; call it
// through xsimd::dispatch. With the ISA's widest vectors, not xsimd's default arch
// (SSE2 in a baseline build): on the 2-vCPU Xeon VM, 512 MB summed with 512-bit
// loads streamed 5-15% faster than with 128-bit ones (1 thread 9.0-10.0 against
// 8.7-9.4 GB/s, 2 threads 14.8-19.3 against 12.8-17.8), and the a8 GEMV, whose
// loads are 512-bit, measured 100-112% of the SSE2 probe.
struct read_sum_fn {
  template <class Arch>
  double operator()(Arch, const float* p, std::size_t n) const;
};

}  // namespace qmr::bench
