// The median the benchmarks report (CPU and GPU alike; plain C++, so that nvcc-only builds include it too).
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

namespace qmr::bench {

// The median of v (the mean of the middle two for an even count); v is not empty.
inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace qmr::bench
