// Quantized matrices: a non-owning view over the three packed arrays (see format.hpp) and an owning tensor.
#pragma once

#include <cstdint>
#include <string>

#include "../core/aligned_buffer.hpp"
#include "../core/error.hpp"
#include "../core/half.hpp"
#include "format.hpp"
#include "pack.hpp"

namespace qmr::quant {

// Sizes of the three arrays of a [rows, cols] matrix in `spec`; the one place that
// checks a shape fits a format.
struct qtensor_layout {
  std::int64_t rows = 0, cols = 0;
  std::int64_t n_groups = 0;        // per row
  std::int64_t group = 0;           // columns per group (cols for per-channel)
  std::int64_t code_row_bytes = 0;  // codes:  [rows, code_row_bytes]
  std::int64_t zero_row_bytes = 0;  // zeros:  [rows, zero_row_bytes], 0 when symmetric
  // scales: [rows, n_groups] f16

  static qtensor_layout of(const format_spec& spec, std::int64_t rows, std::int64_t cols) {
    check(spec.is_quantized(), "format " + spec.str() + " is not a quantized format");
    check(rows > 0 && cols > 0, "cannot quantize an empty matrix [" + std::to_string(rows) + ", " +
                                    std::to_string(cols) + "]");
    // A shape read from a file's metadata may be anything: with both sides at most 2^31 no byte
    // count below (cols * bits, rows * code_row_bytes, total_bytes()) can overflow int64.
    constexpr std::int64_t max_side = std::int64_t{1} << 31;
    check(rows <= max_side && cols <= max_side, "matrix [" + std::to_string(rows) + ", " + std::to_string(cols) +
                                                    "] is too large: each side must be at most 2^31");
    check(cols % 8 == 0, "format " + spec.str() + " needs the column count to be a multiple of 8, got " +
                             std::to_string(cols));
    check(spec.group == per_channel || cols % spec.group == 0,
          "format " + spec.str() + " needs the column count to be a multiple of " + std::to_string(spec.group) +
              ", got " + std::to_string(cols));
    qtensor_layout l;
    l.rows = rows;
    l.cols = cols;
    l.group = spec.group == per_channel ? cols : spec.group;
    l.n_groups = cols / l.group;
    l.code_row_bytes = packed_bytes(cols, spec.bits);
    l.zero_row_bytes = spec.symmetric ? 0 : packed_bytes(l.n_groups, spec.bits);
    return l;
  }

  std::int64_t code_bytes() const { return rows * code_row_bytes; }
  std::int64_t scale_count() const { return rows * n_groups; }
  std::int64_t zero_bytes() const { return rows * zero_row_bytes; }
  std::int64_t total_bytes() const { return code_bytes() + 2 * scale_count() + zero_bytes(); }
};

struct qtensor_view {
  format_spec spec;
  qtensor_layout layout;
  const std::uint8_t* codes = nullptr;  // [rows, layout.code_row_bytes]
  const f16* scales = nullptr;          // [rows, layout.n_groups]
  const std::uint8_t* zeros = nullptr;  // [rows, layout.zero_row_bytes]; null when symmetric

  std::int64_t rows() const { return layout.rows; }
  std::int64_t cols() const { return layout.cols; }

  std::uint32_t code(std::int64_t r, std::int64_t c) const {
    return get_code(codes + r * layout.code_row_bytes, c, spec.bits);
  }
  f16 scale(std::int64_t r, std::int64_t g) const { return scales[r * layout.n_groups + g]; }
  std::uint32_t zero(std::int64_t r, std::int64_t g) const {
    return spec.symmetric ? (1u << (spec.bits - 1)) : get_code(zeros + r * layout.zero_row_bytes, g, spec.bits);
  }
  float value(std::int64_t r, std::int64_t c) const {
    const std::int64_t g = c / layout.group;
    return dequant_value(scale(r, g), code(r, c), zero(r, g));
  }
};

// Owns its arrays (64-byte aligned, see aligned_buffer).
class qtensor {
 public:
  qtensor() = default;
  qtensor(format_spec spec, std::int64_t rows, std::int64_t cols)
      : spec_(spec),
        layout_(qtensor_layout::of(spec, rows, cols)),
        codes_(static_cast<std::size_t>(layout_.code_bytes())),
        scales_(static_cast<std::size_t>(layout_.scale_count())),
        zeros_(static_cast<std::size_t>(layout_.zero_bytes())) {}

  const format_spec& spec() const { return spec_; }
  const qtensor_layout& layout() const { return layout_; }
  std::int64_t rows() const { return layout_.rows; }
  std::int64_t cols() const { return layout_.cols; }

  aligned_buffer<std::uint8_t>& codes() { return codes_; }
  aligned_buffer<f16>& scales() { return scales_; }
  aligned_buffer<std::uint8_t>& zeros() { return zeros_; }
  const aligned_buffer<std::uint8_t>& codes() const { return codes_; }
  const aligned_buffer<f16>& scales() const { return scales_; }
  const aligned_buffer<std::uint8_t>& zeros() const { return zeros_; }

  qtensor_view view() const {
    return {spec_, layout_, codes_.data(), scales_.data(), spec_.symmetric ? nullptr : zeros_.data()};
  }

 private:
  format_spec spec_;
  qtensor_layout layout_;
  aligned_buffer<std::uint8_t> codes_;
  aligned_buffer<f16> scales_;
  aligned_buffer<std::uint8_t> zeros_;
};

}  // namespace qmr::quant
