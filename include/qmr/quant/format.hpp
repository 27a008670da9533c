// Quantization formats: the compile-time format<Bits, GroupSize, Symmetric>, its runtime spec ("w4g128"), and the one place that maps one to the other.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "../config.hpp"
#include "../core/dtype.hpp"
#include "../core/error.hpp"

namespace qmr::quant {

// GroupSize 0 means one group per row ("per-channel": one scale per output channel).
inline constexpr int per_channel = 0;

// ---------------------------------------------------------------------------
// Packed layout of a quantized matrix W[rows, cols] (rows = output features,
// cols = input features, as in a PyTorch Linear weight). Three arrays, each
// row-major, so that a row of W is a contiguous run in each of them:
//
//   codes  u8  [rows, cols * Bits / 8]   the code of W(r, c) occupies bits
//                                        [c*Bits, (c+1)*Bits) of row r's bytes,
//                                        least significant bit first (a
//                                        little-endian bitstream: for 4 bits,
//                                        column 2c is the low nibble of byte c)
//   scales f16 [rows, n_groups]          n_groups = cols / GroupSize, or 1
//   zeros  u8  [rows, ceil(n_groups * Bits / 8)]   asymmetric only: the
//                                        integer zero point of each group, packed
//                                        exactly like the codes
//
//   W(r, c) = scale(r, g) * (code(r, c) - zero(r, g)),   g = c / GroupSize
//
// Codes are unsigned in [0, 2^Bits - 1]. Symmetric formats store no zeros: their
// zero point is 2^(Bits-1), so the codes span [-2^(Bits-1), 2^(Bits-1) - 1] steps.
// cols must be a multiple of 8 (rows start on a byte) and of GroupSize.
//
// True storage per weight: Bits + 16 / GroupSize (scales) + Bits / GroupSize
// (zeros, asymmetric only; each row's zeros are padded to a whole byte);
// per-channel stores 16 bits of scale (and 8 of zero if asymmetric) per row.
// e.g. w4g128 = 4.15625, w4g128s = 4.125, w2g64 = 2.28125, w3g32s = 3.5.
// ---------------------------------------------------------------------------
template <int Bits, int GroupSize, bool Symmetric>
struct format {
  static_assert(Bits == 2 || Bits == 3 || Bits == 4 || Bits == 5 || Bits == 6 || Bits == 8,
                "qmr ships 2, 3, 4, 5, 6 and 8-bit formats");
  static_assert(GroupSize == per_channel || GroupSize == 32 || GroupSize == 64 || GroupSize == 128 ||
                    GroupSize == 256,
                "group sizes are 32, 64, 128, 256 or per-channel");

  static constexpr int bits = Bits;
  static constexpr int group_size = GroupSize;
  static constexpr bool symmetric = Symmetric;
  static constexpr int max_code = (1 << Bits) - 1;
  // Symmetric zero point: the middle code, so both signs get 2^(Bits-1) levels.
  static constexpr int symmetric_zero = 1 << (Bits - 1);
  // Bytes of codes for one group (per-channel: unknown until cols is).
  static constexpr int group_code_bytes = GroupSize * Bits / 8;
  // Exact storage per weight for grouped formats, counting codes, scales and zeros.
  static constexpr double bits_per_weight =
      GroupSize == per_channel ? 0.0
                               : Bits + 16.0 / GroupSize + (Symmetric ? 0.0 : static_cast<double>(Bits) / GroupSize);
};

static_assert(format<4, 128, false>::bits_per_weight == 4.15625);
static_assert(format<4, 128, true>::bits_per_weight == 4.125);
static_assert(format<2, 64, false>::bits_per_weight == 2.28125);
static_assert(format<3, 32, true>::bits_per_weight == 3.5);
static_assert(format<8, 32, false>::bits_per_weight == 8.75);
static_assert(format<3, 128, false>::group_code_bytes == 48);
static_assert(format<5, 32, true>::group_code_bytes == 20);

// Bytes a row of n codes of `bits` bits takes in the bitstream.
QMR_HOST_DEVICE constexpr std::int64_t packed_bytes(std::int64_t n, int bits) { return (n * bits + 7) / 8; }

// The runtime name of a tensor's storage: dense (f32, f16, bf16) or a quantized format.
struct format_spec {
  dtype dense = dtype::f32;  // meaningful when bits == 0
  int bits = 0;              // 0 for dense
  int group = per_channel;   // group size, 0 = per-channel
  bool symmetric = false;

  static constexpr format_spec dense_of(dtype t) { return {t, 0, per_channel, false}; }
  static constexpr format_spec quantized(int bits, int group, bool symmetric) {
    return {dtype::packed, bits, group, symmetric};
  }

  constexpr bool is_quantized() const { return bits != 0; }

  // "w4g128", "w3g64s", "w8gc", "f32", "f16", "bf16".
  std::string str() const {
    if (!is_quantized()) {
      switch (dense) {
        case dtype::f32: return "f32";
        case dtype::f16: return "f16";
        case dtype::bf16: return "bf16";
        default: return std::string(dtype_name(dense));
      }
    }
    return "w" + std::to_string(bits) + "g" + (group == per_channel ? std::string("c") : std::to_string(group)) +
           (symmetric ? "s" : "");
  }

  // Storage per weight of a [rows, cols] matrix in this format, codes + scales + zeros.
  double bits_per_weight(std::int64_t cols) const {
    if (!is_quantized()) return 8.0 * static_cast<double>(dtype_size(dense));
    const std::int64_t groups = group == per_channel ? 1 : cols / group;
    const double bytes = static_cast<double>(packed_bytes(cols, bits)) + 2.0 * static_cast<double>(groups) +
                         (symmetric ? 0.0 : static_cast<double>(packed_bytes(groups, bits)));
    return 8.0 * bytes / static_cast<double>(cols);
  }

  friend constexpr bool operator==(const format_spec& a, const format_spec& b) {
    return a.bits == b.bits && (a.bits == 0 ? a.dense == b.dense : a.group == b.group && a.symmetric == b.symmetric);
  }
};

inline constexpr int supported_bits[] = {2, 3, 4, 5, 6, 8};
inline constexpr int supported_groups[] = {32, 64, 128, 256, per_channel};

// Parses the textual spec used by the CLI, plans and reports. Anything outside
// the closed set (w7g128, w4g100, w4, q4_0, fp8, ...) is an error naming the text.
inline format_spec parse_format(std::string_view text) {
  const std::string quoted = "format '" + std::string(text) + "'";
  if (text == "f32") return format_spec::dense_of(dtype::f32);
  if (text == "f16") return format_spec::dense_of(dtype::f16);
  if (text == "bf16") return format_spec::dense_of(dtype::bf16);
  const auto fail = [&](const std::string& why) -> format_spec {
    throw error(quoted + ": " + why + " (expected w{2,3,4,5,6,8}g{32,64,128,256,c}[s], f32, f16 or bf16)");
  };
  if (text.size() < 4 || text[0] != 'w') return fail("unknown format");
  std::size_t i = 1;
  int bits = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9' && bits < 100) bits = bits * 10 + (text[i++] - '0');
  if (i == 1 || i >= text.size() || text[i] != 'g') return fail("expected w<bits>g<group>");
  ++i;
  int group = -1;
  if (i < text.size() && text[i] == 'c') {
    group = per_channel;
    ++i;
  } else {
    const std::size_t start = i;
    group = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9' && group < 100000) group = group * 10 + (text[i++] - '0');
    if (i == start) return fail("missing group size");
    if (group == 0) return fail("group size 0 (per-channel is written gc)");
  }
  bool symmetric = false;
  if (i < text.size() && text[i] == 's') {
    symmetric = true;
    ++i;
  }
  if (i != text.size()) return fail("trailing characters");
  bool bits_ok = false, group_ok = false;
  for (int b : supported_bits) bits_ok = bits_ok || b == bits;
  for (int g : supported_groups) group_ok = group_ok || g == group;
  if (!bits_ok) return fail(std::to_string(bits) + "-bit codes are not supported");
  if (!group_ok) return fail("group size " + std::to_string(group) + " is not supported");
  return format_spec::quantized(bits, group, symmetric);
}

// The single runtime -> compile-time switch: calls fn(format<B, G, S>{}) for the
// spec's format and returns its result. A dense or unknown spec is an error.
template <class F>
decltype(auto) with_format(const format_spec& spec, F&& fn) {
  check(spec.is_quantized(), "format " + spec.str() + " is not a quantized format");
  const auto by_sym = [&](auto bits_c, auto group_c) -> decltype(auto) {
    if (spec.symmetric) return fn(format<decltype(bits_c)::value, decltype(group_c)::value, true>{});
    return fn(format<decltype(bits_c)::value, decltype(group_c)::value, false>{});
  };
  const auto by_group = [&](auto bits_c) -> decltype(auto) {
    switch (spec.group) {
      case 32: return by_sym(bits_c, std::integral_constant<int, 32>{});
      case 64: return by_sym(bits_c, std::integral_constant<int, 64>{});
      case 128: return by_sym(bits_c, std::integral_constant<int, 128>{});
      case 256: return by_sym(bits_c, std::integral_constant<int, 256>{});
      case per_channel: return by_sym(bits_c, std::integral_constant<int, per_channel>{});
      default: throw error("group size " + std::to_string(spec.group) + " is not supported");
    }
  };
  switch (spec.bits) {
    case 2: return by_group(std::integral_constant<int, 2>{});
    case 3: return by_group(std::integral_constant<int, 3>{});
    case 4: return by_group(std::integral_constant<int, 4>{});
    case 5: return by_group(std::integral_constant<int, 5>{});
    case 6: return by_group(std::integral_constant<int, 6>{});
    case 8: return by_group(std::integral_constant<int, 8>{});
    default: throw error(std::to_string(spec.bits) + "-bit codes are not supported");
  }
}

}  // namespace qmr::quant
