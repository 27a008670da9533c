// Bit packing of quantization codes into a little-endian bitstream, and the per-element dequantization shared by every backend.
#pragma once

#include "../config.hpp"
#include "../core/half.hpp"

namespace qmr::quant {

// Code i of a bitstream of `bits`-bit codes (bits <= 8): it starts at bit i*bits
// and spans at most two bytes; the second byte is read only when the code needs it,
// so a read never runs past packed_bytes(n, bits).
QMR_HOST_DEVICE constexpr qstd::uint32_t get_code(const qstd::uint8_t* packed, qstd::int64_t i, int bits) {
  const qstd::int64_t bit = i * bits;
  const qstd::int64_t byte = bit >> 3;
  const int shift = static_cast<int>(bit & 7);
  qstd::uint32_t word = packed[byte];
  if (shift + bits > 8) word |= static_cast<qstd::uint32_t>(packed[byte + 1]) << 8;
  return (word >> shift) & ((1u << bits) - 1u);
}

// Writes code i; the bits it covers must be zero beforehand (buffers start zeroed).
QMR_HOST_DEVICE constexpr void put_code(qstd::uint8_t* packed, qstd::int64_t i, int bits, qstd::uint32_t code) {
  const qstd::int64_t bit = i * bits;
  const qstd::int64_t byte = bit >> 3;
  const int shift = static_cast<int>(bit & 7);
  const qstd::uint32_t word = (code & ((1u << bits) - 1u)) << shift;
  packed[byte] = static_cast<qstd::uint8_t>(packed[byte] | (word & 0xffu));
  if (shift + bits > 8) packed[byte + 1] = static_cast<qstd::uint8_t>(packed[byte + 1] | (word >> 8));
}

// The value of one weight: scale * (code - zero), in f32 like every kernel's accumulation.
QMR_HOST_DEVICE constexpr float dequant_value(f16 scale, qstd::uint32_t code, qstd::uint32_t zero) {
  return to_float(scale) * (static_cast<float>(code) - static_cast<float>(zero));
}

}  // namespace qmr::quant
