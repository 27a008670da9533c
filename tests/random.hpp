// Random matrices for tests and benches: Gaussian and heavy-tailed (Student-t), seeded.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace qmr::testing {

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
