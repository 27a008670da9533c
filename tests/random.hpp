// Random matrices for tests and benches: Gaussian and heavy-tailed (Student-t), seeded.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace qmr::testing {

// Whether this binary runs under AddressSanitizer (GCC defines __SANITIZE_ADDRESS__,
// clang answers __has_feature).
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool under_asan = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool under_asan = true;
#else
inline constexpr bool under_asan = false;
#endif
#else
inline constexpr bool under_asan = false;
#endif

// Whether a bit-width x group-size sweep runs this cell. Unsanitized, every cell. Under
// the sanitizers (5-10x slower; CI's step there runs on 2 cores) one group size per bit
// width, rotating with the width, so that the sweep still meets every bit width and every
// group size, each with both symmetries: a memory check, while the unsanitized build keeps
// the full quality sweep. group_index counts from 0 among n_groups sizes.
inline bool sweep_runs(int bits, int group_index, int n_groups) {
  return !under_asan || group_index == bits % n_groups;
}

// A fresh seed per call: a random base per run plus a step per call, so that every run
// tests new data; tests print it on failure (INFO), which makes a failure reproducible.
inline std::uint32_t fresh_seed() {
  static const std::uint32_t base = std::random_device{}();
  static std::uint32_t count = 0;
  return base + 7919u * count++;
}

// n values ~ N(0, sigma^2).
inline std::vector<float> gaussian(std::size_t n, std::uint32_t seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, sigma);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// n values ~ Student-t with `dof` degrees of freedom (dof 3: finite variance, heavy
// tails like the outlier channels of LLM weights), scaled by `scale`.
inline std::vector<float> student_t(std::size_t n, std::uint32_t seed, float dof = 3.0f, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::student_t_distribution<float> dist(dof);
  std::vector<float> v(n);
  for (float& x : v) x = scale * dist(rng);
  return v;
}

}  // namespace qmr::testing
