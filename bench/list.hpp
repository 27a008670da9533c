// Comma-separated option lists of the benchmarks (plain C++, so that nvcc-only builds include it too).
#pragma once

#include <algorithm>
#include <string>
#include <vector>

namespace qmr::bench {

// "a,b,,c" -> {"a", "b", "c"}: the items between commas, empty ones dropped.
inline std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    const std::size_t end = std::min(s.find(',', start), s.size());
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

}  // namespace qmr::bench
