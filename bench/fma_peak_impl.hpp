// The body of the FMA peak loop, for bench/fma_peak_<isa>.cpp only (each compiled with its ISA's flags).
#pragma once

#include <algorithm>
#include <atomic>
#include <thread>
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
  const unsigned threads = pool.size();
  // Plain threads that start together (the pool's caller could otherwise run every
  // chunk itself before a worker wakes); each reports its own FLOP/s.
  std::vector<double> rate(static_cast<std::size_t>(threads) * 8, 0.0);  // 8 doubles apart: no false sharing
  std::atomic<unsigned> arrived{0};
  std::atomic<float> sink{0.0f};
  const auto body = [&](unsigned t) {
    arrived.fetch_add(1);
    while (arrived.load() < threads) std::this_thread::yield();
    batch acc[chains];
    for (int i = 0; i < chains; ++i) acc[i] = batch(1.0f + 0.001f * static_cast<float>(i));
    // Multiplier and addend keep the values finite and away from subnormals.
    const batch a(0.999999f), b(1e-7f);
    const auto start = std::chrono::steady_clock::now();
    std::int64_t rounds = 0;
    double elapsed = 0;
    do {
      for (std::int64_t r = 0; r < inner; ++r)
        for (int i = 0; i < chains; ++i) acc[i] = xsimd::fma(acc[i], a, b);
      ++rounds;
      elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    } while (elapsed < seconds);
    batch s = acc[0];
    for (int i = 1; i < chains; ++i) s += acc[i];
    sink.store(sink.load() + xsimd::hadd(s));
    rate[static_cast<std::size_t>(t) * 8] =
        2.0 * static_cast<double>(batch::size) * chains * static_cast<double>(inner * rounds) / elapsed;
  };
  std::vector<std::thread> workers;
  for (unsigned t = 1; t < threads; ++t) workers.emplace_back(body, t);
  body(0);
  for (auto& w : workers) w.join();
  double total = 0;
  for (std::size_t i = 0; i < rate.size(); i += 8) total += rate[i];
  return total;
}

}  // namespace qmr::bench

#define QMR_BENCH_FMA_PEAK_INSTANTIATE(ARCH) \
  template double qmr::bench::fma_peak_fn::operator()<ARCH>(ARCH, qmr::thread_pool&, double) const
