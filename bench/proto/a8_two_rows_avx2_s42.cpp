// Stop 42: the one-token a8 GEMV's speed in cache on the AVX2 kernel (header-only, no dispatch), before and after
// the two-rows-at-a-time loop (a8_two_rows_min_cols). About 1 MB of codes per matrix, 1 thread, best of 5 x 200 calls.
// Build against the tree to measure and against ea3342e's include/ (git archive ea3342e include | tar x -C DIR):
//   g++ -std=c++20 -O3 -mavx2 -mfma -mf16c -mbmi2 -Iinclude bench/proto/a8_two_rows_avx2_s42.cpp -o /tmp/a8_avx2
// Results on the 2-vCPU Xeon VM, two alternating runs each (GB/s of weight bytes), K = 14336 (two rows) and 4096 (one):
//   w4g128 18.2 / 18.1 -> 21.5 / 21.1; w3g128 7.6 / 7.6 -> 8.3 / 8.5; w2g64 11.7 / 11.4 -> 12.4 / 12.4;
//   w8g128 26.4 / 25.9 -> 30.1 / 30.8; at K = 4096 every format within 3% of before.
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>
#include "qmr/kernels/simd/matmul_a8.hpp"
#include "qmr/quant/rtn.hpp"
using namespace qmr;
int main() {
  std::mt19937 rng(1);
  std::normal_distribution<float> nd;
  for (const char* f : {"w4g128", "w3g128", "w2g64", "w8g128"}) {
    for (std::int64_t k : {4096, 14336}) {
      const std::int64_t n = 1048576 * 8 / (k * quant::parse_format(f).bits) ;  // ~1 MB of codes
      std::vector<float> w(static_cast<std::size_t>(n * k)), x(static_cast<std::size_t>(k)), y(static_cast<std::size_t>(n));
      for (auto& v : w) v = nd(rng);
      for (auto& v : x) v = nd(rng);
      const quant::qtensor q = quant::quantize_rtn(matrix_view<const float>{w.data(), n, k}, quant::parse_format(f));
      for (int i = 0; i < 20; ++i) simd::gemv_a8<xsimd::avx2>(q.view(), x, y);
      double best = 1e9;
      for (int r = 0; r < 5; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < 200; ++i) simd::gemv_a8<xsimd::avx2>(q.view(), x, y);
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 200);
      }
      std::printf("%s K=%lld n=%lld: %.2f GB/s\n", f, (long long)k, (long long)n, static_cast<double>(q.layout().total_bytes()) / best / 1e9);
    }
  }
}
