// Prototype harness (not built by meson): single-thread in-cache speed of the a8 GEMV
// (simd::gemv_a8 on avx512vnni) for the formats on the command line, on the Qwen2.5-0.5B
// shapes that fit in L2/L3 and one 1024 x 4096 reference, best of 9 runs of 400 calls:
//   g++ -std=c++20 -O3 -march=znver4 -Iinclude bench/proto/a8_gemv_cache.cpp -o a8 && ./a8 w2g64 w3g128 w4g128
// (any -march with AVX-512 VNNI and VBMI; the kernel is the one a header-only user gets).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

#include "qmr/kernels/simd/matmul_a8.hpp"
using namespace qmr;
int main(int argc, char** argv) {
  const std::int64_t shapes[][2] = {{896, 896}, {4864, 896}, {1152, 896}, {896, 4864}, {1024, 4096}};
  for (int a = 1; a < argc; ++a) {
    const auto spec = quant::parse_format(argv[a]);
    for (const auto& sh : shapes) {
      const std::int64_t rows = sh[0], cols = sh[1];
      quant::qtensor q(spec, rows, cols);
      std::mt19937 rng(1);
      for (auto& c : q.codes()) c = static_cast<std::uint8_t>(rng());
      for (auto& s : q.scales()) s = to_f16(0.01f);
      for (auto& z : q.zeros()) z = static_cast<std::uint8_t>(rng());
      std::vector<float> x(static_cast<std::size_t>(cols)), y(static_cast<std::size_t>(rows));
      for (auto& v : x) v = static_cast<float>(rng() % 2001) / 1000.0f - 1.0f;
      double best = 1e9;
      for (int rep = 0; rep < 9; ++rep) {
        const int n = 400;
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < n; ++i) simd::gemv_a8<simd::avx512vnni>(q.view(), std::span<const float>(x), std::span<float>(y));
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / n);
      }
      std::printf("%-7s %5lld x %-5lld %8.2f us/call %7.2f ns/row %6.2f GB/s\n", argv[a], static_cast<long long>(rows),
                  static_cast<long long>(cols), best * 1e6, best * 1e9 / static_cast<double>(rows),
                  static_cast<double>(q.view().layout.total_bytes()) / best / 1e9);
    }
  }
}
