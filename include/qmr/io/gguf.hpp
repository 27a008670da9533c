// GGUF (llama.cpp's model file): a validating, zero-copy reader of the header, the metadata and the tensor table, and f32 dequantization of its plain, 32-element block and Q4_K/Q5_K/Q6_K types.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/error.hpp"
#include "../core/half.hpp"
#include "mapped_file.hpp"

namespace qmr::io {

// File layout (GGUF versions 2 and 3; ggml's docs/gguf.md), all little-endian:
//   "GGUF" | u32 version | u64 tensor count | u64 metadata count
//   | metadata: key (u64 length + bytes), u32 value type, value
//   | tensor infos: name (string), u32 n_dims, u64 dims[n_dims] (innermost first),
//     u32 ggml type, u64 offset (from the data section, a multiple of the alignment)
//   | padding to `general.alignment` (default 32) | data section
// Every count, length and offset is checked against the bytes that remain before it is
// trusted; tensors must lie inside the file and may not overlap.

// The ggml tensor types whose storage qmr knows: elements per block and bytes per block.
// Types not listed (the i-quants but IQ4_NL/IQ4_XS, ternary and FP4 types) are refused by
// name and number rather than guessed.
struct ggml_type_info {
  std::uint32_t id;
  std::string_view name;
  std::uint32_t block_elems;
  std::uint32_t block_bytes;
};
inline const ggml_type_info* ggml_type_of(std::uint32_t id) {
  // Sizes: a 32-element block holds an f16 scale (d; Q4_1/Q5_1 also an f16 minimum m;
  // Q8_1 an f16 sum) and its codes; a 256-element "K" block its packed sub-block scales.
  static constexpr ggml_type_info table[] = {
      {0, "F32", 1, 4},        {1, "F16", 1, 2},         {2, "Q4_0", 32, 18},     {3, "Q4_1", 32, 20},
      {6, "Q5_0", 32, 22},     {7, "Q5_1", 32, 24},      {8, "Q8_0", 32, 34},     {9, "Q8_1", 32, 36},
      {10, "Q2_K", 256, 84},   {11, "Q3_K", 256, 110},   {12, "Q4_K", 256, 144},  {13, "Q5_K", 256, 176},
      {14, "Q6_K", 256, 210},  {15, "Q8_K", 256, 292},   {20, "IQ4_NL", 32, 18},  {23, "IQ4_XS", 256, 136},
      {24, "I8", 1, 1},        {25, "I16", 1, 2},        {26, "I32", 1, 4},       {27, "I64", 1, 8},
      {28, "F64", 1, 8},       {30, "BF16", 1, 2}};
  for (const auto& t : table)
    if (t.id == id) return &t;
  return nullptr;
}

enum class gguf_type : std::uint32_t { u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7, string = 8, array = 9, u64 = 10, i64 = 11, f64 = 12 };
inline std::string_view gguf_type_name(std::uint32_t t) {
  static constexpr std::string_view names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"};
  return t < std::size(names) ? names[t] : std::string_view("unknown");
}

// One metadata entry. Values are kept as JSON (numbers, booleans, strings, arrays of
// them) with their GGUF type, so that u32 and i64 stay apart for typed lookups.
struct gguf_kv {
  std::string key;
  gguf_type type{};
  gguf_type element_type{};  // arrays: the type of their elements
  nlohmann::json value;
};

struct gguf_tensor {
  std::string name;
  const ggml_type_info* type = nullptr;
  std::vector<std::uint64_t> dims;  // ggml order: dims[0] is the innermost (columns)
  std::uint64_t offset = 0;         // from the start of the data section
  std::uint64_t nbytes = 0;
  const std::byte* data = nullptr;  // into the file

  std::uint64_t numel() const {
    std::uint64_t n = 1;
    for (const std::uint64_t d : dims) n *= d;
    return n;
  }
  // The row-major (Hugging Face) shape: dims reversed.
  std::vector<std::int64_t> shape() const {
    std::vector<std::int64_t> s(dims.rbegin(), dims.rend());
    return s;
  }
};

class gguf_file {
 public:
  // Maps and parses `path`; the file stays mapped while the object lives.
  static gguf_file open(const std::string& path) {
    gguf_file f;
    f.file_ = mapped_file(path);
    f.parse_bytes(f.file_.bytes(), path);
    return f;
  }
  // Parses bytes that outlive the object (tests, fuzzing); `name` appears in errors.
  static gguf_file parse(std::span<const std::byte> bytes, const std::string& name) {
    gguf_file f;
    f.parse_bytes(bytes, name);
    return f;
  }

  std::uint32_t version() const { return version_; }
  std::uint32_t alignment() const { return alignment_; }
  std::uint64_t data_offset() const { return data_offset_; }
  const std::vector<gguf_kv>& metadata() const { return kv_; }
  const std::vector<gguf_tensor>& tensors() const { return tensors_; }
  const std::string& name() const { return name_; }

  const gguf_kv* find(std::string_view key) const {
    for (const auto& kv : kv_)
      if (kv.key == key) return &kv;
    return nullptr;
  }
  const gguf_tensor* find_tensor(std::string_view tensor_name) const {
    for (const auto& t : tensors_)
      if (t.name == tensor_name) return &t;
    return nullptr;
  }
  // A string value (general.architecture, general.name, ...), or nullopt when absent or not a string.
  std::optional<std::string> get_string(std::string_view key) const {
    const gguf_kv* kv = find(key);
    if (kv == nullptr || kv->type != gguf_type::string) return std::nullopt;
    return kv->value.get<std::string>();
  }
  // An integer value of any integer type (llama.block_count, ...), or nullopt when absent or not an integer.
  std::optional<std::int64_t> get_int(std::string_view key) const {
    const gguf_kv* kv = find(key);
    if (kv == nullptr || !kv->value.is_number_integer()) return std::nullopt;
    if (kv->value.is_number_unsigned()) {
      const auto u = kv->value.get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
      return static_cast<std::int64_t>(u);
    }
    return kv->value.get<std::int64_t>();
  }

 private:
  // A bounds-checked little-endian cursor over the file; every read names what it reads.
  struct cursor {
    std::span<const std::byte> bytes;
    std::uint64_t pos = 0;
    const std::string* file = nullptr;
    [[noreturn]] void fail(const std::string& what) const {
      throw error(what + " (at byte " + std::to_string(pos) + " of " + std::to_string(bytes.size()) + ")", in_file(*file));
    }
    std::uint64_t left() const { return bytes.size() - pos; }
    void need(std::uint64_t n, const std::string& what) const {
      if (n > left()) fail("truncated: " + what + " needs " + std::to_string(n) + " bytes, " + std::to_string(left()) + " remain");
    }
    template <class T>
    T read(const std::string& what) {
      need(sizeof(T), what);
      T v;
      std::memcpy(&v, bytes.data() + pos, sizeof(T));  // GGUF is little-endian, as every platform qmr builds for
      pos += sizeof(T);
      return v;
    }
    std::string read_string(const std::string& what) {
      const auto n = read<std::uint64_t>(what + " (length)");
      need(n, what);
      std::string s(reinterpret_cast<const char*>(bytes.data() + pos), static_cast<std::size_t>(n));
      pos += n;
      return s;
    }
  };
  static_assert(std::endian::native == std::endian::little, "the GGUF reader assumes a little-endian host");

  // Arrays of arrays are legal GGUF; this deep is not.
  static constexpr int max_array_depth = 4;
  // Counts are checked against the bytes left, not against memory: a vector reserves at most
  // this many entries ahead (a real file's largest array, the vocabulary, has ~150K) and grows
  // as entries actually parse.
  static constexpr std::uint64_t max_reserve = 1u << 18;

  static nlohmann::json read_value(cursor& c, std::uint32_t type, const std::string& what, int depth, gguf_type* element_type) {
    switch (static_cast<gguf_type>(type)) {
      case gguf_type::u8: return c.read<std::uint8_t>(what);
      case gguf_type::i8: return c.read<std::int8_t>(what);
      case gguf_type::u16: return c.read<std::uint16_t>(what);
      case gguf_type::i16: return c.read<std::int16_t>(what);
      case gguf_type::u32: return c.read<std::uint32_t>(what);
      case gguf_type::i32: return c.read<std::int32_t>(what);
      case gguf_type::f32: return static_cast<double>(c.read<float>(what));
      case gguf_type::u64: return c.read<std::uint64_t>(what);
      case gguf_type::i64: return c.read<std::int64_t>(what);
      case gguf_type::f64: return c.read<double>(what);
      case gguf_type::boolean: {
        const auto b = c.read<std::uint8_t>(what);
        if (b > 1) c.fail(what + ": bool value " + std::to_string(b) + " is neither 0 nor 1");
        return b == 1;
      }
      case gguf_type::string: return c.read_string(what);
      case gguf_type::array: {
        if (depth >= max_array_depth) c.fail(what + ": arrays nested deeper than " + std::to_string(max_array_depth));
        const auto et = c.read<std::uint32_t>(what + " (element type)");
        if (et > static_cast<std::uint32_t>(gguf_type::f64)) c.fail(what + ": unknown array element type " + std::to_string(et));
        const auto n = c.read<std::uint64_t>(what + " (element count)");
        // Every element takes at least one byte (strings 8, arrays 12): a count past that is a lie.
        const std::uint64_t min_size = et == 8 ? 8 : et == 9 ? 12 : et == 0 || et == 1 || et == 7 ? 1 : et <= 3 ? 2 : et <= 6 ? 4 : 8;
        if (n > c.left() / min_size) c.fail(what + ": " + std::to_string(n) + " elements cannot fit in the " + std::to_string(c.left()) + " bytes left");
        if (element_type != nullptr) *element_type = static_cast<gguf_type>(et);
        nlohmann::json a = nlohmann::json::array();
        a.get_ref<nlohmann::json::array_t&>().reserve(static_cast<std::size_t>(std::min<std::uint64_t>(n, max_reserve)));
        for (std::uint64_t i = 0; i < n; ++i) a.push_back(read_value(c, et, what, depth + 1, nullptr));
        return a;
      }
    }
    c.fail(what + ": unknown value type " + std::to_string(type));
  }

  void parse_bytes(std::span<const std::byte> bytes, const std::string& name) {
    name_ = name;
    cursor c{bytes, 0, &name_};
    const auto magic = c.read<std::uint32_t>("magic");
    if (magic != 0x46554747u) c.fail("not a GGUF file (the first 4 bytes are not \"GGUF\")");  // "GGUF" read little-endian
    version_ = c.read<std::uint32_t>("version");
    if (version_ != 2 && version_ != 3) c.fail("GGUF version " + std::to_string(version_) + " is not supported (2 and 3 are)");
    const auto n_tensors = c.read<std::uint64_t>("tensor count");
    const auto n_kv = c.read<std::uint64_t>("metadata count");
    // An entry takes at least 12 bytes (empty key, type, a one-byte value); a tensor info 28.
    if (n_kv > c.left() / 12) c.fail("metadata count " + std::to_string(n_kv) + " cannot fit in the file");
    if (n_tensors > c.left() / 28) c.fail("tensor count " + std::to_string(n_tensors) + " cannot fit in the file");
    kv_.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(n_kv, max_reserve)));
    std::unordered_set<std::string> seen;  // names so far: a hash lookup each, so that a file of millions of entries cannot take quadratic time
    for (std::uint64_t i = 0; i < n_kv; ++i) {
      gguf_kv kv;
      kv.key = c.read_string("metadata key " + std::to_string(i));
      if (kv.key.empty()) c.fail("metadata key " + std::to_string(i) + " is empty");
      if (!seen.insert(kv.key).second) c.fail("metadata key \"" + kv.key + "\" appears twice");
      const auto type = c.read<std::uint32_t>("type of \"" + kv.key + "\"");
      kv.type = static_cast<gguf_type>(type);
      kv.value = read_value(c, type, "metadata \"" + kv.key + "\"", 0, &kv.element_type);
      kv_.push_back(std::move(kv));
    }
    alignment_ = 32;  // the format's default
    if (const gguf_kv* a = find("general.alignment")) {
      if (a->type != gguf_type::u32) c.fail("general.alignment is a " + std::string(gguf_type_name(static_cast<std::uint32_t>(a->type))) + ", not a u32");
      alignment_ = a->value.get<std::uint32_t>();
      if (alignment_ == 0 || !std::has_single_bit(alignment_)) c.fail("general.alignment " + std::to_string(alignment_) + " is not a power of two");
    }
    tensors_.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(n_tensors, max_reserve)));
    seen.clear();
    for (std::uint64_t i = 0; i < n_tensors; ++i) {
      gguf_tensor t;
      t.name = c.read_string("name of tensor " + std::to_string(i));
      const std::string what = "tensor \"" + t.name + "\"";
      if (t.name.empty()) c.fail("tensor " + std::to_string(i) + " has an empty name");
      if (!seen.insert(t.name).second) c.fail(what + " appears twice");
      const auto n_dims = c.read<std::uint32_t>(what + " (n_dims)");
      if (n_dims < 1 || n_dims > 4) c.fail(what + ": " + std::to_string(n_dims) + " dimensions (ggml has 1 to 4)");
      std::uint64_t numel = 1;
      for (std::uint32_t d = 0; d < n_dims; ++d) {
        const auto n = c.read<std::uint64_t>(what + " (dimension " + std::to_string(d) + ")");
        if (n == 0 || n > (std::uint64_t{1} << 62) / numel) c.fail(what + ": dimension " + std::to_string(d) + " = " + std::to_string(n) + " is zero or overflows");
        numel *= n;
        t.dims.push_back(n);
      }
      const auto type = c.read<std::uint32_t>(what + " (type)");
      t.type = ggml_type_of(type);
      if (t.type == nullptr) c.fail(what + ": ggml type " + std::to_string(type) + " is not supported");
      if (t.dims[0] % t.type->block_elems != 0)
        c.fail(what + ": " + std::to_string(t.dims[0]) + " columns are not whole " + std::string(t.type->name) + " blocks of " + std::to_string(t.type->block_elems));
      // Dimensions cap the element count at 2^62, but its bytes can still pass 2^64 (F32:
      // 4 per element) and wrap to a size that fits the file: refuse them by name.
      const std::uint64_t blocks = numel / t.type->block_elems;
      if (blocks > std::numeric_limits<std::uint64_t>::max() / t.type->block_bytes)
        c.fail(what + ": " + std::to_string(numel) + " " + std::string(t.type->name) + " elements overflow a 64-bit byte count");
      t.nbytes = blocks * t.type->block_bytes;
      t.offset = c.read<std::uint64_t>(what + " (offset)");
      if (t.offset % alignment_ != 0) c.fail(what + ": offset " + std::to_string(t.offset) + " is not a multiple of the alignment " + std::to_string(alignment_));
      tensors_.push_back(std::move(t));
    }
    // The data section starts at the next multiple of the alignment.
    data_offset_ = (c.pos + alignment_ - 1) / alignment_ * alignment_;
    if (data_offset_ > bytes.size() && !tensors_.empty()) c.fail("the data section starts past the end of the file");
    const std::uint64_t data_bytes = bytes.size() > data_offset_ ? bytes.size() - data_offset_ : 0;
    for (auto& t : tensors_) {
      if (t.offset > data_bytes || t.nbytes > data_bytes - t.offset)
        throw error("tensor \"" + t.name + "\": bytes [" + std::to_string(t.offset) + ", " + std::to_string(t.offset + t.nbytes) +
                        ") of the data section lie past its end (" + std::to_string(data_bytes) + " bytes)",
                    in_file(name_));
      t.data = bytes.data() + data_offset_ + t.offset;
    }
    std::vector<const gguf_tensor*> by_offset;
    for (const auto& t : tensors_) by_offset.push_back(&t);
    std::sort(by_offset.begin(), by_offset.end(), [](const gguf_tensor* a, const gguf_tensor* b) { return a->offset < b->offset; });
    for (std::size_t i = 1; i < by_offset.size(); ++i)
      if (by_offset[i - 1]->offset + by_offset[i - 1]->nbytes > by_offset[i]->offset)
        throw error("tensors \"" + by_offset[i - 1]->name + "\" and \"" + by_offset[i]->name + "\" overlap in the data section", in_file(name_));
  }

  mapped_file file_;
  std::string name_;
  std::uint32_t version_ = 0, alignment_ = 32;
  std::uint64_t data_offset_ = 0;
  std::vector<gguf_kv> kv_;
  std::vector<gguf_tensor> tensors_;
};

// Whether gguf_dequantize takes this type: the plain floats, the 32-element block types
// (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1) and the K types of the common llama.cpp presets
// (Q4_K, Q5_K, Q6_K). Q2_K, Q3_K, Q8_K and the i-quants are listed and sized but not decoded.
inline bool gguf_dequantizable(const ggml_type_info& t) {
  switch (t.id) {
    case 0: case 1: case 30: case 2: case 3: case 6: case 7: case 8: case 9: case 12: case 13: case 14: return true;
    default: return false;
  }
}

namespace detail {
// Sub-block j (0..7) of a Q4_K/Q5_K block: its 6-bit scale and minimum, packed in 12 bytes:
// bytes 0-3 hold scales 0-3 in their low 6 bits, bytes 4-7 minimums 0-3; bytes 8-11 hold the
// low 4 bits of scale j (low nibble) and minimum j (high nibble) for j = 4..7, whose top 2
// bits are the top bits of bytes j - 4 (scale) and j (minimum).
inline std::pair<int, int> gguf_k_scale_min(const std::byte* scales, int j) {
  const auto b = [scales](int i) { return std::to_integer<int>(scales[i]); };
  if (j < 4) return {b(j) & 63, b(j + 4) & 63};
  return {(b(j + 4) & 15) | ((b(j - 4) >> 6) << 4), (b(j + 4) >> 4) | ((b(j) >> 6) << 4)};
}
}  // namespace detail

// Decodes `n` elements (a multiple of the type's block) of `type` from `src` into `dst`,
// computing as llama.cpp's reference decoders do (the scale products first, in f32).
// Block layouts (one block = 32 elements, f16 = the block's scale d, and for Q4_1/Q5_1 its
// minimum m; codes q, element value q·d (+ m), or (q - 8)·d and (q - 16)·d for the
// symmetric 4- and 5-bit types):
//   Q4_0 d | 16 B codes: element j < 16 in the low nibble of byte j, element j + 16 in its high nibble
//   Q4_1 d m | 16 B codes, as Q4_0
//   Q5_0 d | u32 high bits (bit j: element j's fifth bit) | 16 B low nibbles, as Q4_0
//   Q5_1 d m | u32 high bits | 16 B low nibbles
//   Q8_0 d | 32 i8          Q8_1 d s | 32 i8 (s = d · Σq, not needed to decode)
// and 256-element K blocks of 8 sub-blocks of 32 (16 of 16 for Q6_K):
//   Q4_K d dmin | 12 B scales/minimums (gguf_k_scale_min) | 128 B codes: 64-element chunk c uses
//        bytes [32c, 32c + 32), sub-block 2c in their low nibbles, 2c + 1 in their high ones;
//        element = d·scale·q - dmin·minimum
//   Q5_K as Q4_K, then 32 B of fifth bits before the codes: element 32c' + l (sub-block c')
//        takes bit c' of byte l
//   Q6_K 128 B low nibbles | 64 B high 2-bit pairs | 16 i8 scales | d: each 128-element half h
//        uses low bytes [64h, 64h + 64) and high bytes [32h, 32h + 32); element 128h + 32k + l
//        (k = 0..3) takes the low (k < 2) or high nibble of low byte 64h + l + 32 (k & 1) and
//        bits 2k, 2k + 1 of high byte 32h + l, minus 32, times d · scale[8h + 2k + l / 16]
inline void gguf_dequantize(const ggml_type_info& type, const std::byte* src, std::uint64_t n, float* dst) {
  check(gguf_dequantizable(type), "gguf: cannot dequantize " + std::string(type.name) + " tensors yet");
  check(n % type.block_elems == 0, "gguf: " + std::to_string(n) + " elements are not whole " + std::string(type.name) + " blocks");
  const auto half_at = [](const std::byte* p) {
    std::uint16_t b;
    std::memcpy(&b, p, 2);
    return to_float(f16{b});
  };
  const auto byte_at = [](const std::byte* p, int i) { return std::to_integer<std::uint32_t>(p[i]); };
  const auto signed_at = [](const std::byte* p, int i) {  // an i8 field, two's complement
    const int u = std::to_integer<int>(p[i]);
    return u >= 128 ? u - 256 : u;
  };
  switch (type.id) {
    case 0: std::memcpy(dst, src, n * 4); return;
    case 1:
      for (std::uint64_t i = 0; i < n; ++i) dst[i] = half_at(src + 2 * i);
      return;
    case 30:
      for (std::uint64_t i = 0; i < n; ++i) {
        std::uint16_t b;
        std::memcpy(&b, src + 2 * i, 2);
        dst[i] = to_float(bf16{b});
      }
      return;
    case 12:    // Q4_K
    case 13: {  // Q5_K
      const bool fifth = type.id == 13;
      for (std::uint64_t b = 0; b < n / 256; ++b, src += type.block_bytes, dst += 256) {
        const float d = half_at(src), dmin = half_at(src + 2);
        const std::byte* scales = src + 4;
        const std::byte* qh = src + 16;                 // Q5_K only
        const std::byte* qs = src + (fifth ? 48 : 16);  // [128]
        for (int c = 0; c < 4; ++c)
          for (int h = 0; h < 2; ++h) {
            const int sb = 2 * c + h;
            const auto [sc, mn] = detail::gguf_k_scale_min(scales, sb);
            const float ds = d * static_cast<float>(sc), dm = dmin * static_cast<float>(mn);
            for (int l = 0; l < 32; ++l) {
              std::uint32_t q = h == 0 ? byte_at(qs, 32 * c + l) & 15u : byte_at(qs, 32 * c + l) >> 4;
              if (fifth) q |= ((byte_at(qh, l) >> sb) & 1u) << 4;
              dst[32 * sb + l] = ds * static_cast<float>(q) - dm;
            }
          }
      }
      return;
    }
    case 14:  // Q6_K
      for (std::uint64_t b = 0; b < n / 256; ++b, src += type.block_bytes, dst += 256) {
        const std::byte* ql = src;        // [128]
        const std::byte* qh = src + 128;  // [64]
        const std::byte* sc = src + 192;  // [16] i8
        const float d = half_at(src + 208);
        for (int h = 0; h < 2; ++h)
          for (int k = 0; k < 4; ++k)
            for (int l = 0; l < 32; ++l) {
              const std::uint32_t lo = byte_at(ql, 64 * h + l + 32 * (k & 1));
              const std::uint32_t q = ((k < 2 ? lo & 15u : lo >> 4) | (((byte_at(qh, 32 * h + l) >> (2 * k)) & 3u) << 4));
              const int scale = signed_at(sc, 8 * h + 2 * k + l / 16);
              dst[128 * h + 32 * k + l] = d * static_cast<float>(scale) * static_cast<float>(static_cast<int>(q) - 32);
            }
      }
      return;
    default: break;
  }
  for (std::uint64_t b = 0; b < n / 32; ++b, src += type.block_bytes, dst += 32) {
    const float d = half_at(src);
    switch (type.id) {
      case 2:  // Q4_0
      case 3: {  // Q4_1
        const bool has_min = type.id == 3;
        const float m = has_min ? half_at(src + 2) : -8.0f * d;
        const std::byte* qs = src + (has_min ? 4 : 2);
        for (int j = 0; j < 16; ++j) {
          dst[j] = static_cast<float>(byte_at(qs, j) & 15u) * d + m;
          dst[j + 16] = static_cast<float>(byte_at(qs, j) >> 4) * d + m;
        }
        break;
      }
      case 6:  // Q5_0
      case 7: {  // Q5_1
        const bool has_min = type.id == 7;
        const float m = has_min ? half_at(src + 2) : -16.0f * d;
        std::uint32_t qh;
        std::memcpy(&qh, src + (has_min ? 4 : 2), 4);
        const std::byte* qs = src + (has_min ? 8 : 6);
        for (int j = 0; j < 16; ++j) {
          const std::uint32_t lo = (byte_at(qs, j) & 15u) | (((qh >> j) & 1u) << 4);
          const std::uint32_t hi = (byte_at(qs, j) >> 4) | (((qh >> (j + 16)) & 1u) << 4);
          dst[j] = static_cast<float>(lo) * d + m;
          dst[j + 16] = static_cast<float>(hi) * d + m;
        }
        break;
      }
      case 8:    // Q8_0
      case 9: {  // Q8_1
        const std::byte* qs = src + (type.id == 9 ? 4 : 2);
        for (int j = 0; j < 32; ++j) dst[j] = static_cast<float>(signed_at(qs, j)) * d;
        break;
      }
      default: break;  // unreachable: gguf_dequantizable
    }
  }
}

// A tensor's elements as f32, row-major in its Hugging Face shape (ggml's rows are the
// innermost dimension, so the bytes are already in that order).
inline std::vector<float> gguf_dequantize(const gguf_tensor& t) {
  std::vector<float> out(static_cast<std::size_t>(t.numel()));
  gguf_dequantize(*t.type, t.data, t.numel(), out.data());
  return out;
}

}  // namespace qmr::io
