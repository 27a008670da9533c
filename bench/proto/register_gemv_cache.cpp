// Prototype harness (not built by meson): single-thread in-cache speed of the f32 GEMV for
// the formats given on the command line, 1024 x 4096 (L3-resident), best of 9 runs of 200
// calls, on one architecture tag. It measured the register GEMV's unchecked decode (stop 24):
//   g++ -std=c++20 -O3 -mavx512f -mavx512bw -mavx512dq -mavx512vl -mavx512cd -mfma -mf16c \
//       -Iinclude bench/proto/register_gemv_cache.cpp -o reg && ./reg w6g128 w5g128 w6gc w6g32
//   (AVX2: replace the tag below by xsimd::fma3<xsimd::avx2> and compile with -mavx2 -mfma -mf16c.)
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>
#include <algorithm>
#include "qmr/kernels/simd/matmul.hpp"
using namespace qmr;
int main(int argc, char** argv) {
  const std::int64_t rows = 1024, cols = 4096;
  for (int a = 1; a < argc; ++a) {
    const auto spec = quant::parse_format(argv[a]);
    quant::qtensor q(spec, rows, cols);
    std::mt19937 rng(1);
    for (auto& c : q.codes()) c = static_cast<std::uint8_t>(rng());
    for (auto& s : q.scales()) s = to_f16(0.01f);
    for (auto& z : q.zeros()) z = static_cast<std::uint8_t>(rng());
    std::vector<float> x(cols), y(rows);
    for (auto& v : x) v = (rng() % 1000) / 1000.0f;
    double best = 1e9;
    for (int rep = 0; rep < 9; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      const int n = 200;
      for (int i = 0; i < n; ++i) simd::gemv<xsimd::avx512bw>(q.view(), std::span<const float>(x), std::span<float>(y));
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / n;
      best = std::min(best, s);
    }
    std::printf("%-8s %7.1f us/call  %6.2f Gweights/s  %6.2f GB/s\n", argv[a], best * 1e6, rows * cols / best / 1e9,
                q.view().layout.total_bytes() / best / 1e9);
  }
}
