// Random quantized matrices and ragged column counts for the SIMD kernel tests (f32 and a8).
#pragma once

#include <catch2/catch.hpp>

#include <cstdint>
#include <random>

#include "qmr/core/half.hpp"
#include "qmr/quant/format.hpp"
#include "qmr/quant/qtensor.hpp"

namespace qmr::testing {

// A quantized [n, k] matrix with uniformly random codes, zero points and scales.
inline quant::qtensor random_qtensor(const quant::format_spec& spec, std::int64_t n, std::int64_t k,
                                     std::mt19937& rng) {
  quant::qtensor q(spec, n, k);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> scale(0.001f, 0.05f);  // weight-like scales, far from f16's limits
  for (auto& b : q.codes()) b = static_cast<std::uint8_t>(byte(rng));
  for (auto& b : q.zeros()) b = static_cast<std::uint8_t>(byte(rng));
  for (auto& s : q.scales()) s = to_f16(scale(rng));
  return q;
}

// K per group size: not a multiple of 256 where the group allows it (nor of 64 or 128),
// past the GEMM's 128-column slice (mostly ending inside one), and for per-channel 8
// over a multiple of 16 (AVX-512's lane count) and of 32 (a short last a8 activation
// block), so that every kernel's tail runs.
inline std::int64_t ragged_cols_for(int group) {
  switch (group) {
    case 32: return 32 * 13;
    case 64: return 64 * 7;
    case 128: return 128 * 5;
    case 256: return 256 * 3;
    case quant::per_channel: return 8 * 131;
    default: FAIL("unknown group " << group); return 0;
  }
}

}  // namespace qmr::testing
