// f16 / bf16 conversions: exhaustive round trips and agreement with independent oracles.
#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <random>

#include "qmr/core/half.hpp"

using qmr::bf16;
using qmr::f16;

namespace {

// The nearest of the two representable neighbours, computed in double: an oracle
// for round-to-nearest-even that shares no code with half.hpp.
template <class H>
std::uint16_t nearest_even(float x, std::uint16_t lo_bits, std::uint16_t hi_bits) {
  const double lo = qmr::to_float(H{lo_bits}), hi = qmr::to_float(H{hi_bits});
  const double dlo = std::fabs(static_cast<double>(x) - lo), dhi = std::fabs(static_cast<double>(x) - hi);
  if (dlo < dhi) return lo_bits;
  if (dhi < dlo) return hi_bits;
  return (lo_bits & 1) ? hi_bits : lo_bits;
}

}  // namespace

TEST_CASE("f16 -> float -> f16 is the identity for every non-NaN f16", "[half]") {
  int nans = 0;
  for (std::uint32_t b = 0; b < 65536; ++b) {
    const f16 h{static_cast<std::uint16_t>(b)};
    const float f = qmr::to_float(h);
    if (std::isnan(f)) {
      ++nans;
      REQUIRE(std::isnan(qmr::to_float(qmr::to_f16(f))));
      continue;
    }
    REQUIRE(qmr::to_f16(f).bits == h.bits);
  }
  REQUIRE(nans == 2 * 1023);  // exponent all ones, non-zero mantissa, both signs
}

TEST_CASE("f16 decoding matches the IEEE formula", "[half]") {
  for (std::uint32_t b = 0; b < 0x7c00; ++b) {
    const int e = static_cast<int>(b >> 10), m = static_cast<int>(b & 0x3ff);
    const double expected = e == 0 ? std::ldexp(m, -24) : std::ldexp(1024 + m, e - 25);
    REQUIRE(static_cast<double>(qmr::to_float(f16{static_cast<std::uint16_t>(b)})) == expected);
    REQUIRE(static_cast<double>(qmr::to_float(f16{static_cast<std::uint16_t>(b | 0x8000)})) == -expected);
  }
  REQUIRE(std::isinf(qmr::to_float(f16{0x7c00})));
}

TEST_CASE("float -> f16 rounds to nearest even, including ties and subnormals", "[half]") {
  std::mt19937 rng(1234);
  // Every f16 interval [h, h+1] probed at its ends, its midpoint (a tie) and random points.
  for (std::uint32_t b = 0; b < 0x7bff; ++b) {
    const float lo = qmr::to_float(f16{static_cast<std::uint16_t>(b)});
    const float hi = qmr::to_float(f16{static_cast<std::uint16_t>(b + 1)});
    const float mid = static_cast<float>((static_cast<double>(lo) + hi) / 2);  // exact in f32
    const std::uint16_t expect_mid = (b & 1) ? static_cast<std::uint16_t>(b + 1) : static_cast<std::uint16_t>(b);
    REQUIRE(qmr::to_f16(mid).bits == expect_mid);
    REQUIRE(qmr::to_f16(-mid).bits == (expect_mid | 0x8000));
    std::uniform_real_distribution<float> in(lo, hi);
    for (int i = 0; i < 3; ++i) {
      const float x = in(rng);
      REQUIRE(qmr::to_f16(x).bits == nearest_even<f16>(x, static_cast<std::uint16_t>(b), static_cast<std::uint16_t>(b + 1)));
    }
  }
}

TEST_CASE("float -> f16 special values", "[half]") {
  REQUIRE(qmr::to_f16(0.0f).bits == 0x0000);
  REQUIRE(qmr::to_f16(-0.0f).bits == 0x8000);
  REQUIRE(qmr::to_f16(65504.0f).bits == 0x7bff);
  REQUIRE(qmr::to_f16(65519.99f).bits == 0x7bff);
  REQUIRE(qmr::to_f16(65520.0f).bits == 0x7c00);
  REQUIRE(qmr::to_f16(1e30f).bits == 0x7c00);
  REQUIRE(qmr::to_f16(-1e30f).bits == 0xfc00);
  REQUIRE(qmr::to_f16(INFINITY).bits == 0x7c00);
  REQUIRE(qmr::to_f16(std::ldexp(1.0f, -25)).bits == 0);                        // tie with 0: even
  REQUIRE(qmr::to_f16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)).bits == 1);  // just above the tie
  REQUIRE(qmr::to_f16(std::ldexp(3.0f, -25)).bits == 2);                        // 1.5 units: tie to even 2
  REQUIRE(qmr::to_f16(1e-30f).bits == 0);
  const f16 nan = qmr::to_f16(NAN);
  REQUIRE((nan.bits & 0x7c00) == 0x7c00);
  REQUIRE((nan.bits & 0x3ff) != 0);
}

#if defined(__FLT16_MAX__) && !defined(__clang__)
TEST_CASE("float -> f16 agrees with the compiler's _Float16 on random floats", "[half]") {
  std::mt19937 rng(99);
  std::uniform_int_distribution<std::uint32_t> bits;
  for (int i = 0; i < 2'000'000; ++i) {
    const float x = std::bit_cast<float>(bits(rng));
    if (std::isnan(x)) continue;
    const _Float16 h = static_cast<_Float16>(x);
    REQUIRE(qmr::to_f16(x).bits == std::bit_cast<std::uint16_t>(h));
  }
}
#endif

TEST_CASE("float -> bf16 rounds to nearest even", "[half]") {
  std::mt19937 rng(7);
  std::uniform_int_distribution<std::uint32_t> bits;
  for (int i = 0; i < 2'000'000; ++i) {
    const float x = std::bit_cast<float>(bits(rng));
    if (std::isnan(x)) {
      REQUIRE(std::isnan(qmr::to_float(qmr::to_bf16(x))));
      continue;
    }
    const std::uint32_t u = std::bit_cast<std::uint32_t>(x);
    const auto lo = static_cast<std::uint16_t>(u >> 16);
    if ((lo & 0x7fff) == 0x7f7f && (u & 0xffff) != 0) {  // above the largest finite bf16
      const bf16 r = qmr::to_bf16(x);
      REQUIRE(((r.bits & 0x7fff) == 0x7f80 || r.bits == lo));
      continue;
    }
    if ((lo & 0x7fff) >= 0x7f80) continue;  // inf
    // Neighbours toward zero and away from zero share the sign.
    const std::uint16_t expected = nearest_even<bf16>(x, lo, static_cast<std::uint16_t>(lo + 1));
    REQUIRE(qmr::to_bf16(x).bits == expected);
  }
  REQUIRE(qmr::to_bf16(3.14159265f).bits == 0x4049);
  REQUIRE(qmr::to_bf16(-0.0f).bits == 0x8000);
  for (std::uint32_t b = 0; b < 65536; ++b) {
    const float f = qmr::to_float(bf16{static_cast<std::uint16_t>(b)});
    if (!std::isnan(f)) REQUIRE(qmr::to_bf16(f).bits == b);
  }
}
