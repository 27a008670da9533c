// GGUF Q4_0 and Q8_0 tensors as qmr quantized tensors (w4g32s, w8g32s), losslessly: llama.cpp's weights run through qmr's kernels bit for bit.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>

#include "../core/error.hpp"
#include "../core/half.hpp"
#include "../quant/format.hpp"
#include "../quant/pack.hpp"
#include "../quant/qtensor.hpp"
#include "gguf.hpp"

namespace qmr::io {

// The qmr format that holds a GGUF type exactly, or nullopt. Both GGUF types are symmetric
// 32-element blocks with an f16 scale d:
//   Q4_0: value (q - 8)·d, q = 0..15   -> w4g32s: s·(code - 8),   code = q,       s = d
//   Q8_0: value q·d, q = -128..127     -> w8g32s: s·(code - 128), code = q + 128, s = d
// (Q4_1/Q5_x carry a minimum m that an integer zero point matches only when m/d is an
// integer, and the K types nest 6- or 8-bit sub-block scales: neither maps exactly.)
inline std::optional<quant::format_spec> gguf_exact_format(const ggml_type_info& t) {
  if (t.id == 2) return quant::format_spec::quantized(4, 32, true);
  if (t.id == 8) return quant::format_spec::quantized(8, 32, true);
  return std::nullopt;
}

// A 1- or 2-D Q4_0/Q8_0 tensor as a qmr qtensor [rows, cols] (rows = dims[1], 1 for a vector;
// cols = dims[0]). Every weight dequantizes to exactly the value gguf_dequantize gives.
inline quant::qtensor gguf_to_qtensor(const gguf_tensor& t) {
  const std::optional<quant::format_spec> spec = gguf_exact_format(*t.type);
  check(spec.has_value(), "gguf tensor \"" + t.name + "\": " + std::string(t.type->name) +
                              " has no exact qmr format (Q4_0 -> w4g32s and Q8_0 -> w8g32s do)");
  check(t.dims.size() <= 2, "gguf tensor \"" + t.name + "\": " + std::to_string(t.dims.size()) + " dimensions (1 or 2 convert)");
  const auto cols = static_cast<std::int64_t>(t.dims[0]);
  const auto rows = static_cast<std::int64_t>(t.dims.size() == 2 ? t.dims[1] : 1);
  quant::qtensor q(*spec, rows, cols);
  const quant::qtensor_layout& l = q.layout();
  const std::int64_t blocks = cols / 32;  // per row (the reader checked whole blocks)
  const bool q4 = t.type->id == 2;
  for (std::int64_t r = 0; r < rows; ++r) {
    std::uint8_t* codes = q.codes().data() + r * l.code_row_bytes;  // [code_row_bytes], zeroed
    for (std::int64_t b = 0; b < blocks; ++b) {
      const std::byte* blk = t.data + (r * blocks + b) * t.type->block_bytes;
      std::uint16_t d;
      std::memcpy(&d, blk, 2);
      q.scales()[static_cast<std::size_t>(r * l.n_groups + b)] = f16{d};
      for (int j = 0; j < (q4 ? 16 : 32); ++j) {
        const auto byte = std::to_integer<std::uint32_t>(blk[2 + j]);
        if (q4) {
          quant::put_code(codes, 32 * b + j, 4, byte & 15u);
          quant::put_code(codes, 32 * b + j + 16, 4, byte >> 4);
        } else {
          quant::put_code(codes, 32 * b + j, 8, byte ^ 0x80u);  // i8 q -> q + 128
        }
      }
    }
  }
  return q;
}

}  // namespace qmr::io
