// The body of the FMA peak loop, for bench/fma_peak_<isa>.cpp only (each compiled with its ISA's flags).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "fma_peak.hpp"

namespace qmr::bench {

template <class Arch>
double fma_peak_fn::operator()(Arch, thread_pool& pool, double seconds) const {
  using batch = xsimd::batch<float, Arch>;
  // 12 independent chains: 2 FMA pipes × 4-5 cycles of latency need >= 10 in flight.
  constexpr int chains = 12;
  constexpr std::int64_t inner = 1 << 16;
  const std::int64_t threads = pool.size();
  std::vector<double> flops(static_cast<std::size_t>(threads) * 8, 0.0);  // 8 doubles apart: no false sharing
  volatile float sink = 0;
  const auto t0 = std::chrono::steady_clock::now();
  pool.parallel_for(0, threads, 1, [&](std::int64_t t0_, std::int64_t t1_) {
    for (std::int64_t t = t0_; t < t1_; ++t) {
      batch acc[chains];
      for (int i = 0; i < chains; ++i) acc[i] = batch(1.0f + 0.001f * static_cast<float>(i));
      // Multiplier and addend keep the values finite and away from subnormals.
      const batch a(0.999999f), b(1e-7f);
      const auto start = std::chrono::steady_clock::now();
      std::int64_t rounds = 0;
      do {
        for (std::int64_t r = 0; r < inner; ++r)
          for (int i = 0; i < chains; ++i) acc[i] = xsimd::fma(acc[i], a, b);
        ++rounds;
      } while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < seconds);
      batch s = acc[0];
      for (int i = 1; i < chains; ++i) s += acc[i];
      sink = sink + xsimd::hadd(s);
      flops[static_cast<std::size_t>(t) * 8] = 2.0 * static_cast<double>(batch::size) * chains * inner * rounds;
    }
  });
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double total = 0;
  for (std::size_t i = 0; i < flops.size(); i += 8) total += flops[i];
  return total / elapsed;
}

}  // namespace qmr::bench

#define QMR_BENCH_FMA_PEAK_INSTANTIATE(ARCH) \
  template double qmr::bench::fma_peak_fn::operator()<ARCH>(ARCH, qmr::thread_pool&, double) const
