// The bodies of the machine-limit loops (the FMA peak and the read-bandwidth sum), for bench/fma_peak_<isa>.cpp only (each compiled with its ISA's flags).
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

template <class Arch>
double read_sum_fn::operator()(Arch, const float* p, std::size_t n) const {
  using batch = xsimd::batch<float, Arch>;
  // Eight independent accumulators: the scalar loop this replaced added one float at
  // a time and measured its own add latency (21-23 GB/s on one Zen 5 core whose DRAM
  // streams 28 GB/s).
  constexpr std::size_t chains = 8, step = chains * batch::size;
  batch acc[chains];
  for (auto& a : acc) a = batch(0.0f);
  std::size_t i = 0;
  for (; i + step <= n; i += step)
    for (std::size_t k = 0; k < chains; ++k) acc[k] += batch::load_unaligned(p + i + k * batch::size);
  double s = 0;
  for (; i < n; ++i) s += p[i];
  for (const auto& a : acc) s += xsimd::hadd(a);
  return s;
}

}  // namespace qmr::bench

// The machine-limit loops of one ISA: the FMA peak and the read-bandwidth sum.
#define QMR_BENCH_FMA_PEAK_INSTANTIATE(ARCH)                                                          \
  template double qmr::bench::fma_peak_fn::operator()<ARCH>(ARCH, qmr::thread_pool&, double) const; \
  template double qmr::bench::read_sum_fn::operator()<ARCH>(ARCH, const float*, std::size_t) const
