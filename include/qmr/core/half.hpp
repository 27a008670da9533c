// IEEE binary16 (f16) and bfloat16 (bf16) storage types with exact round-to-nearest-even conversions, usable on host and device.
#pragma once

#include "../config.hpp"

namespace qmr {

// Both types are trivial 16-bit PODs so that arrays of them can be mapped
// straight from a file and passed to CUDA kernels; arithmetic happens in f32.
struct f16 {
  qstd::uint16_t bits;
};
struct bf16 {
  qstd::uint16_t bits;
};
static_assert(sizeof(f16) == 2 && sizeof(bf16) == 2);
static_assert(qstd::is_trivial_v<f16> && qstd::is_trivial_v<bf16>);

// float -> f16, round to nearest, ties to even; overflow gives ±inf, NaN stays
// NaN (quiet, payload truncated), tiny values become subnormals or ±0.
QMR_HOST_DEVICE constexpr f16 to_f16(float value) {
  const qstd::uint32_t x = qstd::bit_cast<qstd::uint32_t>(value);
  const auto sign = static_cast<qstd::uint16_t>((x >> 16) & 0x8000u);
  const qstd::uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) {  // inf or NaN
    const qstd::uint32_t nan_bits = ax > 0x7f800000u ? (0x200u | ((ax >> 13) & 0x3ffu)) : 0u;
    return f16{static_cast<qstd::uint16_t>(sign | 0x7c00u | nan_bits)};
  }
  // 65520 = 0x477ff000 is halfway between the largest f16 (65504) and 2^16;
  // ties go to the even side, which is the overflow to infinity.
  if (ax >= 0x477ff000u) return f16{static_cast<qstd::uint16_t>(sign | 0x7c00u)};
  if (ax < 0x38800000u) {  // below 2^-14, the smallest normal f16: subnormal or zero
    // 0x33000000 = 2^-25 is half the smallest subnormal (2^-24); it and
    // everything below round (ties to even) to zero.
    if (ax <= 0x33000000u) return f16{sign};
    const qstd::uint32_t exponent = ax >> 23;  // 102..112
    const qstd::uint32_t mantissa = (ax & 0x7fffffu) | 0x800000u;
    // value = mantissa * 2^(exponent-150); in units of 2^-24 that is mantissa >> (126-exponent).
    const qstd::uint32_t shift = 126u - exponent;  // 14..24
    qstd::uint32_t r = mantissa >> shift;
    const qstd::uint32_t rem = mantissa & ((1u << shift) - 1u);
    const qstd::uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (r & 1u))) ++r;  // may carry into the smallest normal: still correct
    return f16{static_cast<qstd::uint16_t>(sign | r)};
  }
  // Normal: rebias the exponent (127 -> 15, i.e. subtract 112 << 23) and drop 13 mantissa bits.
  qstd::uint32_t r = (ax - 0x38000000u) >> 13;
  const qstd::uint32_t rem = ax & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) ++r;  // a carry may reach inf: correct
  return f16{static_cast<qstd::uint16_t>(sign | r)};
}

// f16 -> float is exact for every value.
QMR_HOST_DEVICE constexpr float to_float(f16 h) {
  const qstd::uint32_t sign = static_cast<qstd::uint32_t>(h.bits & 0x8000u) << 16;
  const qstd::uint32_t exponent = (h.bits >> 10) & 0x1fu;
  qstd::uint32_t mantissa = h.bits & 0x3ffu;
  if (exponent == 0x1fu) return qstd::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
  if (exponent != 0) return qstd::bit_cast<float>(sign | ((exponent + 112u) << 23) | (mantissa << 13));
  if (mantissa == 0) return qstd::bit_cast<float>(sign);
  // Subnormal: mantissa * 2^-24; normalize so the leading bit lands on bit 10.
  qstd::uint32_t e = 113u;  // biased f32 exponent of 2^-14
  while ((mantissa & 0x400u) == 0) {
    mantissa <<= 1;
    --e;
  }
  return qstd::bit_cast<float>(sign | (e << 23) | ((mantissa & 0x3ffu) << 13));
}

// float -> bf16, round to nearest, ties to even; NaN is kept quiet.
QMR_HOST_DEVICE constexpr bf16 to_bf16(float value) {
  const qstd::uint32_t x = qstd::bit_cast<qstd::uint32_t>(value);
  if ((x & 0x7fffffffu) > 0x7f800000u) return bf16{static_cast<qstd::uint16_t>((x >> 16) | 0x40u)};
  const qstd::uint32_t rounding = 0x7fffu + ((x >> 16) & 1u);
  return bf16{static_cast<qstd::uint16_t>((x + rounding) >> 16)};
}

QMR_HOST_DEVICE constexpr float to_float(bf16 b) {
  return qstd::bit_cast<float>(static_cast<qstd::uint32_t>(b.bits) << 16);
}

QMR_HOST_DEVICE constexpr float to_float(float f) { return f; }

// Spot checks that the conversions are constant-evaluable and right at the edges.
static_assert(to_f16(1.0f).bits == 0x3c00);
static_assert(to_f16(65504.0f).bits == 0x7bff);
static_assert(to_f16(65520.0f).bits == 0x7c00);
static_assert(to_f16(5.9604645e-08f).bits == 0x0001);  // 2^-24, smallest subnormal
static_assert(to_float(f16{0x0001}) == 5.9604645e-08f);
static_assert(to_bf16(1.0f).bits == 0x3f80);
static_assert(to_float(bf16{0x4049}) == 3.140625f);

}  // namespace qmr
