// Shared pieces of the plain (non-Catch2) CUDA tests: the skip without a GPU, a failure counter with a CHECK that prints the first 20 failures, a small seeded generator, and random quantized tensors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <stdexcept>

#include <cuda_runtime.h>

#include "qmr/core/half.hpp"
#include "qmr/quant/qtensor.hpp"

namespace qmr::testing::gpu {

// Whether a CUDA device is present; says "skipped" when not, after which main()
// returns 77, meson's exit code for a skipped test.
inline bool device_present() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) == cudaSuccess && devices > 0) return true;
  std::puts("no CUDA device: skipped");
  return false;
}

// The device's properties, after printing its name, architecture and SM count.
inline cudaDeviceProp describe_device() {
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) throw std::runtime_error("cudaGetDeviceProperties failed");
  std::printf("device: %s (sm_%d%d, %d SMs)\n", prop.name, prop.major, prop.minor, prop.multiProcessorCount);
  return prop;
}

// Failed checks of this test program; main() turns a nonzero count into exit 1.
inline int failures = 0;

// Multiplier and increment of Knuth's MMIX 64-bit LCG; the top 32 bits are the output.
struct rng {
  std::uint64_t state;
  std::uint32_t next() {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<std::uint32_t>(state >> 32);
  }
  // 24 random bits scaled into [lo, hi).
  float uniform(float lo, float hi) { return lo + (hi - lo) * static_cast<float>(next() >> 8) * (1.0f / 16777216.0f); }
};

// Uniform random codes and zero points, and scales of either sign with |s| in
// [0.002, 0.02): outputs of order 1 for unit activations at every bit width.
inline quant::qtensor random_qtensor(const quant::format_spec& spec, std::int64_t rows, std::int64_t cols, rng& r) {
  quant::qtensor q(spec, rows, cols);
  for (std::size_t i = 0; i < q.codes().size(); ++i) q.codes().data()[i] = static_cast<std::uint8_t>(r.next() >> 24);
  for (std::size_t i = 0; i < q.scales().size(); ++i)
    q.scales().data()[i] = to_f16(r.uniform(0.002f, 0.02f) * ((r.next() & 1u) ? -1.0f : 1.0f));
  for (std::size_t i = 0; i < q.zeros().size(); ++i) q.zeros().data()[i] = static_cast<std::uint8_t>(r.next() >> 24);
  return q;
}

}  // namespace qmr::testing::gpu

// Counts a failure and prints the first 20 (printf-style message).
#define CHECK(cond, ...)                                                 \
  do {                                                                   \
    if (!(cond)) {                                                       \
      if (++::qmr::testing::gpu::failures <= 20) {                       \
        std::fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);             \
        std::fprintf(stderr, __VA_ARGS__);                               \
        std::fputc('\n', stderr);                                        \
      }                                                                  \
    }                                                                    \
  } while (0)
