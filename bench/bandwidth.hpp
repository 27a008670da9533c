// Measures the machine's limits that kernels are quoted against: streaming read bandwidth and f32 FMA peak.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "qmr/core/aligned_buffer.hpp"
#include "qmr/core/thread_pool.hpp"
#include "qmr/kernels/simd/dispatch.hpp"
#include "fma_peak.hpp"
#include "list.hpp"

namespace qmr::bench {

// "a,b,,c" -> {"a", "b", "c"}: the benches' comma-separated option lists.
inline std::vector<std::string> split(const std::string& s) { return split_list(s); }

// Read bandwidth in bytes/s of a sum over `data` (far larger than the caches), split
// over the pool's threads, best of `repeats`. The sum is returned through `sink` so that
// the compiler cannot drop the loop. The buffer is the caller's, so that repeated
// measurements (qmr bench's decode, one before each token) skip its allocation and
// page faults.
inline double read_bandwidth(thread_pool& pool, const aligned_buffer<float>& data, int repeats) {
  const std::size_t n = data.size();
  const std::size_t bytes = n * sizeof(float);
  std::vector<double> partial(static_cast<std::size_t>(pool.size()) * 64 * 16);
  double best = 0;
  volatile double sink = 0;
  auto sum = xsimd::dispatch<simd::dispatch_archs>(read_sum_fn{});  // (its call operator is not const)
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    // Many chunks, not one per thread: with one each, the caller can claim both
    // before a sleeping worker wakes, and "2 threads" measures one.
    const std::int64_t chunks = static_cast<std::int64_t>(pool.size()) * 64;
    pool.parallel_for(0, chunks, 1, [&](std::int64_t c0, std::int64_t c1) {
      for (std::int64_t c = c0; c < c1; ++c) {
        const std::size_t lo = n * static_cast<std::size_t>(c) / static_cast<std::size_t>(chunks);
        const std::size_t hi = n * static_cast<std::size_t>(c + 1) / static_cast<std::size_t>(chunks);
        partial[static_cast<std::size_t>(c) * 16] = sum(data.data() + lo, hi - lo);  // 16 doubles apart: no false sharing
      }
    });
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (std::size_t c = 0; c < partial.size(); c += 16) sink = sink + partial[c];
    best = std::max(best, static_cast<double>(bytes) / seconds);
  }
  return best;
}
// A buffer of `bytes` for read_bandwidth, written once (its pages mapped).
inline aligned_buffer<float> bandwidth_buffer(std::size_t bytes) {
  aligned_buffer<float> data(bytes / sizeof(float));
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<float>(i & 1023);
  return data;
}

// The same over a fresh buffer of `bytes`.
inline double read_bandwidth(thread_pool& pool, std::size_t bytes = std::size_t{512} << 20, int repeats = 5) {
  return read_bandwidth(pool, bandwidth_buffer(bytes), repeats);
}

}  // namespace qmr::bench
