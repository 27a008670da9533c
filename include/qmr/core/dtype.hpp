// Element types of tensors: the dense ones a checkpoint holds and `packed` for sub-byte quantization codes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "error.hpp"
#include "half.hpp"

namespace qmr {

enum class dtype : std::uint8_t { f32, f16, bf16, i8, u8, i32, packed };

// Bytes per element; `packed` has no per-element size (its codes are bit-packed).
constexpr std::size_t dtype_size(dtype t) {
  switch (t) {
    case dtype::f32:
    case dtype::i32: return 4;
    case dtype::f16:
    case dtype::bf16: return 2;
    case dtype::i8:
    case dtype::u8: return 1;
    case dtype::packed: return 0;
  }
  return 0;
}

// Names as safetensors writes them ("F32", "BF16", ...); `packed` has none there.
constexpr std::string_view dtype_name(dtype t) {
  switch (t) {
    case dtype::f32: return "F32";
    case dtype::f16: return "F16";
    case dtype::bf16: return "BF16";
    case dtype::i8: return "I8";
    case dtype::u8: return "U8";
    case dtype::i32: return "I32";
    case dtype::packed: return "PACKED";
  }
  return "?";
}

// The safetensors dtypes qmr reads; anything else (F64, I64, F8_E4M3, ...) is nullopt.
inline std::optional<dtype> dtype_from_name(std::string_view name) {
  if (name == "F32") return dtype::f32;
  if (name == "F16") return dtype::f16;
  if (name == "BF16") return dtype::bf16;
  if (name == "I8") return dtype::i8;
  if (name == "U8") return dtype::u8;
  if (name == "I32") return dtype::i32;
  return std::nullopt;
}

template <class T>
constexpr dtype dtype_of();
template <>
constexpr dtype dtype_of<float>() { return dtype::f32; }
template <>
constexpr dtype dtype_of<f16>() { return dtype::f16; }
template <>
constexpr dtype dtype_of<bf16>() { return dtype::bf16; }
template <>
constexpr dtype dtype_of<std::int8_t>() { return dtype::i8; }
template <>
constexpr dtype dtype_of<std::uint8_t>() { return dtype::u8; }
template <>
constexpr dtype dtype_of<std::int32_t>() { return dtype::i32; }

}  // namespace qmr
