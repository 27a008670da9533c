// GGUF reader: metadata and tensor tables of files built here byte by byte, f32 decoding of the plain, 32-element block and Q4_K/Q5_K/Q6_K types against values written into the blocks, and rejection (a qmr::error naming the field, never a crash) of malformed files: every truncation, random byte flips, and each broken field.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qmr/core/error.hpp"
#include "qmr/core/half.hpp"
#include "qmr/io/gguf.hpp"
#include "qmr/io/gguf_quant.hpp"
#include "temp_dir.hpp"

namespace {

using Catch::Contains;
using qmr::io::gguf_file;

// Writes GGUF bytes as the format describes them (little-endian), tensors laid out at
// multiples of the alignment in the order added.
struct gguf_builder {
  struct tensor {
    std::string name;
    std::vector<std::uint64_t> dims;
    std::uint32_t type;
    std::vector<std::uint8_t> data;
  };
  std::uint32_t version = 3, alignment = 32;
  std::vector<std::uint8_t> kv_bytes;
  std::uint64_t n_kv = 0;
  std::vector<tensor> tensors;

  template <class T>
  static void put(std::vector<std::uint8_t>& o, T v) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(&v);
    o.insert(o.end(), p, p + sizeof(T));
  }
  static void put_str(std::vector<std::uint8_t>& o, std::string_view s) {
    put<std::uint64_t>(o, s.size());
    o.insert(o.end(), s.begin(), s.end());
  }
  // A key with raw value bytes of the given GGUF type.
  void kv_raw(std::string_view key, std::uint32_t type, const std::vector<std::uint8_t>& value) {
    put_str(kv_bytes, key);
    put<std::uint32_t>(kv_bytes, type);
    kv_bytes.insert(kv_bytes.end(), value.begin(), value.end());
    ++n_kv;
  }
  template <class T>
  void kv(std::string_view key, std::uint32_t type, T v) {
    std::vector<std::uint8_t> b;
    put<T>(b, v);
    kv_raw(key, type, b);
  }
  void kv_string(std::string_view key, std::string_view s) {
    std::vector<std::uint8_t> b;
    put_str(b, s);
    kv_raw(key, 8, b);
  }
  void add(std::string name, std::vector<std::uint64_t> dims, std::uint32_t type, std::vector<std::uint8_t> data) {
    tensors.push_back({std::move(name), std::move(dims), type, std::move(data)});
  }
  std::vector<std::uint8_t> bytes() const {
    std::vector<std::uint8_t> o;
    put<std::uint32_t>(o, 0x46554747u);  // "GGUF"
    put<std::uint32_t>(o, version);
    put<std::uint64_t>(o, tensors.size());
    put<std::uint64_t>(o, n_kv);
    o.insert(o.end(), kv_bytes.begin(), kv_bytes.end());
    std::uint64_t offset = 0;
    for (const auto& t : tensors) {
      put_str(o, t.name);
      put<std::uint32_t>(o, static_cast<std::uint32_t>(t.dims.size()));
      for (const auto d : t.dims) put<std::uint64_t>(o, d);
      put<std::uint32_t>(o, t.type);
      put<std::uint64_t>(o, offset);
      offset = (offset + t.data.size() + alignment - 1) / alignment * alignment;
    }
    o.resize((o.size() + alignment - 1) / alignment * alignment, 0);
    for (const auto& t : tensors) {
      o.insert(o.end(), t.data.begin(), t.data.end());
      o.resize(o.size() + (alignment - t.data.size() % alignment) % alignment, 0);
    }
    return o;
  }
};

std::span<const std::byte> as_bytes(const std::vector<std::uint8_t>& v) { return std::as_bytes(std::span(v)); }
gguf_file parse(const std::vector<std::uint8_t>& v) { return gguf_file::parse(as_bytes(v), "t.gguf"); }

void put_half(std::vector<std::uint8_t>& o, float v) { gguf_builder::put<std::uint16_t>(o, qmr::to_f16(v).bits); }

// Block values written into each type's blocks, and the values they must decode to.
struct block_case {
  std::uint32_t type;
  std::vector<std::uint8_t> data;
  std::vector<float> want;
};

std::vector<block_case> block_cases() {
  std::vector<block_case> cases;
  const int blocks = 2;
  {  // Q4_0: d; element j < 16 the low nibble of byte j, j + 16 the high nibble; (q - 8) d
    block_case c{2, {}, {}};
    for (int b = 0; b < blocks; ++b) {
      const float d = 0.5f + b;
      put_half(c.data, d);
      std::vector<float> hi;
      for (int j = 0; j < 16; ++j) {
        const int lo = (j + b) & 15, up = 15 - j;
        c.data.push_back(static_cast<std::uint8_t>(lo | (up << 4)));
        c.want.push_back(static_cast<float>(lo - 8) * d);
        hi.push_back(static_cast<float>(up - 8) * d);
      }
      c.want.insert(c.want.end(), hi.begin(), hi.end());
    }
    cases.push_back(c);
  }
  {  // Q4_1: d, m; q d + m
    block_case c{3, {}, {}};
    for (int b = 0; b < blocks; ++b) {
      const float d = 0.25f, m = -1.0f - b;
      put_half(c.data, d);
      put_half(c.data, m);
      std::vector<float> hi;
      for (int j = 0; j < 16; ++j) {
        const int lo = (3 * j + b) & 15, up = (j * 7) & 15;
        c.data.push_back(static_cast<std::uint8_t>(lo | (up << 4)));
        c.want.push_back(static_cast<float>(lo) * d + m);
        hi.push_back(static_cast<float>(up) * d + m);
      }
      c.want.insert(c.want.end(), hi.begin(), hi.end());
    }
    cases.push_back(c);
  }
  for (const bool has_min : {false, true}) {  // Q5_0 / Q5_1: d (m); u32 fifth bits; low nibbles as Q4
    block_case c{has_min ? 7u : 6u, {}, {}};
    for (int b = 0; b < blocks; ++b) {
      const float d = 2.0f, m = has_min ? 0.5f : 0.0f;
      const std::uint32_t qh = b == 0 ? 0xA5C3F00Fu : 0x5A3C0FF0u;
      put_half(c.data, d);
      if (has_min) put_half(c.data, m);
      gguf_builder::put<std::uint32_t>(c.data, qh);
      std::vector<float> hi;
      for (int j = 0; j < 16; ++j) {
        const int lo = (j * 5 + b) & 15, up = (j * 11 + 3) & 15;
        c.data.push_back(static_cast<std::uint8_t>(lo | (up << 4)));
        const int q_lo = lo + 16 * static_cast<int>((qh >> j) & 1u), q_hi = up + 16 * static_cast<int>((qh >> (j + 16)) & 1u);
        c.want.push_back(has_min ? static_cast<float>(q_lo) * d + m : static_cast<float>(q_lo - 16) * d);
        hi.push_back(has_min ? static_cast<float>(q_hi) * d + m : static_cast<float>(q_hi - 16) * d);
      }
      c.want.insert(c.want.end(), hi.begin(), hi.end());
    }
    cases.push_back(c);
  }
  for (const bool q8_1 : {false, true}) {  // Q8_0 / Q8_1: d (s); 32 i8; q d
    block_case c{q8_1 ? 9u : 8u, {}, {}};
    for (int b = 0; b < blocks; ++b) {
      const float d = 0.125f * (b + 1);
      put_half(c.data, d);
      if (q8_1) put_half(c.data, 99.0f);  // the block sum: not used to decode
      for (int j = 0; j < 32; ++j) {
        const int q = (j * 9 + b * 50) % 256 - 128;
        c.data.push_back(static_cast<std::uint8_t>(static_cast<std::int8_t>(q)));
        c.want.push_back(static_cast<float>(q) * d);
      }
    }
    cases.push_back(c);
  }
  return cases;
}

// A valid file with every metadata type, plain and block tensors, and a K-quant tensor.
gguf_builder sample() {
  gguf_builder g;
  g.kv_string("general.architecture", "llama");
  g.kv<std::uint32_t>("llama.block_count", 4, 2);
  g.kv<std::int8_t>("t.i8", 1, -3);
  g.kv<std::uint16_t>("t.u16", 2, 65535);
  g.kv<std::int64_t>("t.i64", 11, -(std::int64_t{1} << 40));
  g.kv<float>("t.f32", 6, 1.5f);
  g.kv<double>("t.f64", 12, -2.25);
  g.kv<std::uint8_t>("t.bool", 7, 1);
  {  // an array of strings
    std::vector<std::uint8_t> b;
    gguf_builder::put<std::uint32_t>(b, 8);
    gguf_builder::put<std::uint64_t>(b, 3);
    for (const char* s : {"<s>", "a", ""}) gguf_builder::put_str(b, s);
    g.kv_raw("tokenizer.ggml.tokens", 9, b);
  }
  {  // an array of arrays of i32
    std::vector<std::uint8_t> b;
    gguf_builder::put<std::uint32_t>(b, 9);
    gguf_builder::put<std::uint64_t>(b, 2);
    for (int n : {2, 1}) {
      gguf_builder::put<std::uint32_t>(b, 5);
      gguf_builder::put<std::uint64_t>(b, static_cast<std::uint64_t>(n));
      for (int i = 0; i < n; ++i) gguf_builder::put<std::int32_t>(b, 10 * n + i);
    }
    g.kv_raw("t.nested", 9, b);
  }
  std::vector<std::uint8_t> f32;
  for (int i = 0; i < 12; ++i) gguf_builder::put<float>(f32, 0.5f * i - 2.0f);
  g.add("token_embd.weight", {4, 3}, 0, f32);
  std::vector<std::uint8_t> f16s, bf16s;
  for (int i = 0; i < 16; ++i) {
    put_half(f16s, 0.25f * i);
    gguf_builder::put<std::uint16_t>(bf16s, qmr::to_bf16(-1.0f * i).bits);
  }
  g.add("blk.0.attn_q.weight", {8, 2}, 1, f16s);
  g.add("blk.0.attn_k.weight", {16}, 30, bf16s);
  for (const block_case& c : block_cases())
    g.add("blk.1.type" + std::to_string(c.type) + ".weight", {32, 2}, c.type, c.data);
  g.add("output.weight", {256, 1}, 10, std::vector<std::uint8_t>(84, 7));  // Q2_K: sized, not decoded
  return g;
}

}  // namespace

TEST_CASE("gguf: metadata, tensor table and zero-copy data of a valid file", "[io][gguf]") {
  const std::vector<std::uint8_t> bytes = sample().bytes();
  qmr::testing::temp_dir dir;
  const std::string path = (dir / "m.gguf").string();
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  for (const bool from_file : {false, true}) {
    const gguf_file f = from_file ? gguf_file::open(path) : parse(bytes);
    CHECK(f.version() == 3);
    CHECK(f.alignment() == 32);
    CHECK(f.data_offset() % 32 == 0);
    CHECK(f.metadata().size() == 10);
    CHECK(f.get_string("general.architecture") == "llama");
    CHECK(f.get_int("llama.block_count") == 2);
    CHECK(f.find("llama.block_count")->type == qmr::io::gguf_type::u32);
    CHECK(f.get_int("t.i8") == -3);
    CHECK(f.get_int("t.u16") == 65535);
    CHECK(f.get_int("t.i64") == -(std::int64_t{1} << 40));
    CHECK(f.find("t.f32")->value.get<double>() == 1.5);
    CHECK(f.find("t.f64")->value.get<double>() == -2.25);
    CHECK(f.find("t.bool")->value.get<bool>());
    CHECK_FALSE(f.get_int("t.f32").has_value());
    CHECK_FALSE(f.get_string("llama.block_count").has_value());
    CHECK(f.find("missing") == nullptr);
    const auto& tokens = *f.find("tokenizer.ggml.tokens");
    CHECK(tokens.element_type == qmr::io::gguf_type::string);
    CHECK(tokens.value == nlohmann::json::array({"<s>", "a", ""}));
    CHECK(f.find("t.nested")->value == nlohmann::json::parse("[[20, 21], [10]]"));

    REQUIRE(f.tensors().size() == 10);
    const auto* embd = f.find_tensor("token_embd.weight");
    REQUIRE(embd != nullptr);
    CHECK(embd->shape() == std::vector<std::int64_t>{3, 4});
    CHECK(embd->nbytes == 48);
    CHECK(embd->data == f.tensors()[0].data);
    const std::vector<float> e = qmr::io::gguf_dequantize(*embd);
    for (int i = 0; i < 12; ++i) CHECK(e[static_cast<std::size_t>(i)] == 0.5f * i - 2.0f);
    const std::vector<float> q = qmr::io::gguf_dequantize(*f.find_tensor("blk.0.attn_q.weight"));
    const std::vector<float> k = qmr::io::gguf_dequantize(*f.find_tensor("blk.0.attn_k.weight"));
    for (int i = 0; i < 16; ++i) {
      CHECK(q[static_cast<std::size_t>(i)] == 0.25f * i);
      CHECK(k[static_cast<std::size_t>(i)] == -1.0f * i);
    }
    const auto* head = f.find_tensor("output.weight");
    CHECK(head->nbytes == 84);
    CHECK(head->type->name == "Q2_K");
    CHECK_FALSE(qmr::io::gguf_dequantizable(*head->type));
    CHECK_THROWS_WITH(qmr::io::gguf_dequantize(*head), Contains("Q2_K"));
    if (from_file) {  // the views point into the mapping, at the offsets the file gives
      for (const auto& t : f.tensors()) CHECK((t.offset % 32) == 0);
    }
  }
}

TEST_CASE("gguf: 32-element block types decode to the values written into their blocks", "[io][gguf]") {
  const std::vector<std::uint8_t> bytes = sample().bytes();  // parse() borrows them
  const gguf_file f = parse(bytes);
  for (const block_case& c : block_cases()) {
    INFO("ggml type " << c.type);
    const auto* t = f.find_tensor("blk.1.type" + std::to_string(c.type) + ".weight");
    REQUIRE(t != nullptr);
    CHECK(t->nbytes == c.data.size());
    CHECK(std::memcmp(t->data, c.data.data(), c.data.size()) == 0);
    const std::vector<float> got = qmr::io::gguf_dequantize(*t);
    REQUIRE(got.size() == c.want.size());
    int bad = 0;
    for (std::size_t i = 0; i < got.size(); ++i) bad += got[i] != c.want[i];
    CHECK(bad == 0);
  }
}

TEST_CASE("gguf: every truncation and random byte flips give a qmr::error or a consistent file", "[io][gguf]") {
  const std::vector<std::uint8_t> bytes = sample().bytes();
  const gguf_file whole = parse(bytes);
  // The last tensor's padding may be cut without harm; anything shorter than its end may not.
  const auto& last = whole.tensors().back();
  const std::size_t needed = whole.data_offset() + last.offset + last.nbytes;
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    const std::vector<std::uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    if (n < needed) CHECK_THROWS_AS(parse(cut), qmr::error);
    else CHECK_NOTHROW(parse(cut));
  }
  std::mt19937 rng(20261204);
  int parsed = 0, rejected = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::vector<std::uint8_t> m = bytes;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < flips; ++i) m[rng() % m.size()] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
    try {
      const gguf_file f = parse(m);
      ++parsed;
      for (const auto& t : f.tensors()) {  // in bounds: the tensor's bytes lie inside the buffer
        const auto* begin = reinterpret_cast<const std::byte*>(m.data());
        REQUIRE(t.data >= begin);
        REQUIRE(t.data + t.nbytes <= begin + m.size());
      }
    } catch (const qmr::error&) {
      ++rejected;
    }
  }
  CHECK(parsed > 0);
  CHECK(rejected > 0);
}

TEST_CASE("gguf: malformed fields are refused with the field named", "[io][gguf]") {
  const auto fails_with = [](const gguf_builder& g, const std::string& what) {
    CHECK_THROWS_WITH(parse(g.bytes()), Contains(what));
  };
  {
    std::vector<std::uint8_t> b = sample().bytes();
    b[0] = 'X';
    CHECK_THROWS_WITH(parse(b), Contains("not a GGUF file"));
  }
  {
    gguf_builder g = sample();
    g.version = 1;
    fails_with(g, "version 1 is not supported");
  }
  // One broken field each: the builder edit and the words the error must contain.
  const std::vector<std::pair<std::function<void(gguf_builder&)>, std::string>> cases = {
      {[](gguf_builder& g) {
         g.kv<std::uint8_t>("flag", 7, 2);
       },
       "metadata \"flag\": bool value 2"},
      {[](gguf_builder& g) {
         g.kv<std::uint32_t>("odd", 13, 0);
       },
       "metadata \"odd\": unknown value type 13"},
      {[](gguf_builder& g) {
         g.kv<std::uint32_t>("k", 4, 1);
         g.kv<std::uint32_t>("k", 4, 2);
       },
       "\"k\" appears twice"},
      {[](gguf_builder& g) {
         std::vector<std::uint8_t> b;
         gguf_builder::put<std::uint32_t>(b, 5);
         gguf_builder::put<std::uint64_t>(b, std::uint64_t{1} << 40);
         g.kv_raw("big", 9, b);
       },
       "cannot fit"},
      {[](gguf_builder& g) {
         std::vector<std::uint8_t> b;
         for (int i = 0; i < 6; ++i) {  // six levels of arrays, one element each
           gguf_builder::put<std::uint32_t>(b, 9);
           gguf_builder::put<std::uint64_t>(b, 1);
         }
         gguf_builder::put<std::uint32_t>(b, 4);
         gguf_builder::put<std::uint64_t>(b, 0);
         g.kv_raw("deep", 9, b);
       },
       "nested deeper"},
      {[](gguf_builder& g) {
         g.kv<std::uint32_t>("general.alignment", 4, 24);
       },
       "not a power of two"},
      {[](gguf_builder& g) {
         g.kv<std::uint64_t>("general.alignment", 10, 64);
       },
       "not a u32"},
      {[](gguf_builder& g) {
         g.add("w", {32, 1, 1, 1, 1}, 0, std::vector<std::uint8_t>(128));
       },
       "tensor \"w\": 5 dimensions"},
      {[](gguf_builder& g) {
         g.add("w", {32, 0}, 0, {});
       },
       "tensor \"w\": dimension 1 = 0"},
      {[](gguf_builder& g) {
         g.add("w", {std::uint64_t{1} << 40, std::uint64_t{1} << 40}, 0, {});
       },
       "overflows"},
      {[](gguf_builder& g) {  // 2^62 F32 elements: 2^64 bytes, which wrapped to 0 and passed the bounds check (fuzzer, stop 37)
         g.add("w", {std::uint64_t{1} << 31, std::uint64_t{1} << 31}, 0, {});
       },
       "overflow a 64-bit byte count"},
      {[](gguf_builder& g) {
         g.add("w", {32}, 99, std::vector<std::uint8_t>(32));
       },
       "tensor \"w\": ggml type 99 is not supported"},
      {[](gguf_builder& g) {
         g.add("w", {48}, 8, std::vector<std::uint8_t>(34 * 2));
       },
       "not whole Q8_0 blocks"},
      {[](gguf_builder& g) {
         g.add("a", {8}, 0, std::vector<std::uint8_t>(32));
         g.add("a", {8}, 0, std::vector<std::uint8_t>(32));
       },
       "tensor \"a\" appears twice"},
  };
  for (const auto& [edit, what] : cases) {
    INFO(what);
    gguf_builder g;
    edit(g);
    fails_with(g, what);
  }
  {
    gguf_builder g;
    g.kv_string("name", "x");
    std::vector<std::uint8_t> b = g.bytes();
    b[24] = 0xff;  // the key's length: past the end
    CHECK_THROWS_WITH(parse(b), Contains("metadata key 0"));
  }
  {  // a tensor whose bytes run past the file: declared larger than what is written
    gguf_builder g;
    g.add("w", {64}, 0, std::vector<std::uint8_t>(32));
    fails_with(g, "tensor \"w\": bytes [0, 256)");
  }
  {  // offsets edited: misaligned, then overlapping
    gguf_builder g;
    g.add("a", {16}, 0, std::vector<std::uint8_t>(64));
    g.add("b", {16}, 0, std::vector<std::uint8_t>(64));
    std::vector<std::uint8_t> b = g.bytes();
    const gguf_file ok = parse(b);
    // b's offset field: the 8 bytes before the padding that ends the tensor infos.
    std::size_t pos = 24;
    for (const auto& t : ok.tensors()) pos += 8 + t.name.size() + 4 + 8 * t.dims.size() + 4 + 8;
    const std::size_t b_offset_at = pos - 8;
    std::uint64_t v = 8;
    std::memcpy(&b[b_offset_at], &v, 8);
    CHECK_THROWS_WITH(parse(b), Contains("tensor \"b\": offset 8 is not a multiple of the alignment 32"));
    v = 32;
    std::memcpy(&b[b_offset_at], &v, 8);
    CHECK_THROWS_WITH(parse(b), Contains("tensors \"a\" and \"b\" overlap"));
  }
  CHECK_THROWS_WITH(gguf_file::open("/nonexistent/m.gguf"), Contains("/nonexistent/m.gguf"));
}

TEST_CASE("gguf: Q4_K, Q5_K and Q6_K blocks decode element by element", "[io][gguf]") {
  std::mt19937 rng(77);
  const auto random_bytes = [&rng](std::size_t n) {
    std::vector<std::uint8_t> v(n);
    for (auto& b : v) b = static_cast<std::uint8_t>(rng());
    return v;
  };
  // 6-bit scale and minimum of sub-block j from the 12 packed bytes (llama.cpp's K packing).
  const auto scale_min = [](const std::uint8_t* p, int j) {
    return j < 4 ? std::pair<int, int>{p[j] & 63, p[j + 4] & 63}
                 : std::pair<int, int>{(p[j + 4] & 15) | ((p[j - 4] >> 6) << 4), (p[j + 4] >> 4) | ((p[j] >> 6) << 4)};
  };
  const int blocks = 2;
  gguf_builder g;
  std::vector<std::vector<float>> want(3);
  std::vector<std::vector<std::uint8_t>> data(3);
  for (int b = 0; b < blocks; ++b) {
    const float d = 0.01f * (b + 1), dmin = 0.02f * (b + 2);
    for (int kind = 0; kind < 2; ++kind) {  // Q4_K, Q5_K: d dmin | scales[12] | (qh[32]) | qs[128]
      std::vector<std::uint8_t> blk;
      put_half(blk, d);
      put_half(blk, dmin);
      const std::vector<std::uint8_t> scales = random_bytes(12), qh = random_bytes(32), qs = random_bytes(128);
      blk.insert(blk.end(), scales.begin(), scales.end());
      if (kind == 1) blk.insert(blk.end(), qh.begin(), qh.end());
      blk.insert(blk.end(), qs.begin(), qs.end());
      const float dq = qmr::to_float(qmr::to_f16(d)), dmq = qmr::to_float(qmr::to_f16(dmin));
      for (int e = 0; e < 256; ++e) {
        const int sb = e / 32, l = e % 32, byte = qs[static_cast<std::size_t>(32 * (sb / 2) + l)];
        int q = sb % 2 ? byte >> 4 : byte & 15;
        if (kind == 1) q += 16 * ((qh[static_cast<std::size_t>(l)] >> sb) & 1);
        const auto [sc, mn] = scale_min(scales.data(), sb);
        want[static_cast<std::size_t>(kind)].push_back(dq * static_cast<float>(sc) * static_cast<float>(q) - dmq * static_cast<float>(mn));
      }
      data[static_cast<std::size_t>(kind)].insert(data[static_cast<std::size_t>(kind)].end(), blk.begin(), blk.end());
    }
    {  // Q6_K: ql[128] | qh[64] | scales i8[16] | d
      const std::vector<std::uint8_t> ql = random_bytes(128), qh = random_bytes(64), sc = random_bytes(16);
      std::vector<std::uint8_t> blk(ql);
      blk.insert(blk.end(), qh.begin(), qh.end());
      blk.insert(blk.end(), sc.begin(), sc.end());
      put_half(blk, d);
      const float dq = qmr::to_float(qmr::to_f16(d));
      for (int e = 0; e < 256; ++e) {
        const int h = e / 128, k = (e % 128) / 32, l = e % 32;
        const int low = ql[static_cast<std::size_t>(64 * h + l + (k % 2 ? 32 : 0))];
        const int q = ((k < 2 ? low & 15 : low >> 4) | (((qh[static_cast<std::size_t>(32 * h + l)] >> (2 * k)) & 3) << 4)) - 32;
        const int s = static_cast<std::int8_t>(sc[static_cast<std::size_t>(8 * h + 2 * k + l / 16)]);
        want[2].push_back(dq * static_cast<float>(s) * static_cast<float>(q));
      }
      data[2].insert(data[2].end(), blk.begin(), blk.end());
    }
  }
  const std::uint32_t types[] = {12, 13, 14};
  for (int i = 0; i < 3; ++i) g.add("k" + std::to_string(types[i]), {256, blocks}, types[i], data[static_cast<std::size_t>(i)]);
  const std::vector<std::uint8_t> bytes = g.bytes();
  const gguf_file f = parse(bytes);
  for (int i = 0; i < 3; ++i) {
    const auto* t = f.find_tensor("k" + std::to_string(types[i]));
    REQUIRE(t != nullptr);
    INFO(t->type->name);
    REQUIRE(qmr::io::gguf_dequantizable(*t->type));
    const std::vector<float> got = qmr::io::gguf_dequantize(*t);
    REQUIRE(got.size() == want[static_cast<std::size_t>(i)].size());
    int bad = 0;
    for (std::size_t e = 0; e < got.size(); ++e) bad += got[e] != want[static_cast<std::size_t>(i)][e];
    CHECK(bad == 0);
  }
}

TEST_CASE("gguf: Q4_0 and Q8_0 tensors become w4g32s and w8g32s qtensors with every value unchanged", "[io][gguf]") {
  std::mt19937 rng(4032);
  const int rows = 3, cols = 96;  // three 32-element blocks a row
  gguf_builder g;
  for (const std::uint32_t type : {2u, 8u}) {
    std::vector<std::uint8_t> data;
    for (int b = 0; b < rows * cols / 32; ++b) {
      const float d = (static_cast<float>(rng() % 2000) - 1000.0f) / 4096.0f;  // both signs, and zero
      put_half(data, d);
      for (int j = 0; j < (type == 2 ? 16 : 32); ++j) data.push_back(static_cast<std::uint8_t>(rng()));
    }
    g.add(type == 2 ? "q4" : "q8", {cols, rows}, type, data);
  }
  g.add("q4_1", {32}, 3, std::vector<std::uint8_t>(20, 1));
  const std::vector<std::uint8_t> bytes = g.bytes();
  const gguf_file f = parse(bytes);
  for (const char* name : {"q4", "q8"}) {
    INFO(name);
    const qmr::io::gguf_tensor& t = *f.find_tensor(name);
    const qmr::quant::qtensor q = qmr::io::gguf_to_qtensor(t);
    CHECK(q.spec().str() == (t.type->id == 2 ? "w4g32s" : "w8g32s"));
    REQUIRE(q.rows() == rows);
    REQUIRE(q.cols() == cols);
    const std::vector<float> want = qmr::io::gguf_dequantize(t);
    int bad = 0;
    for (int r = 0; r < rows; ++r)
      for (int c = 0; c < cols; ++c) bad += q.view().value(r, c) != want[static_cast<std::size_t>(r * cols + c)];
    CHECK(bad == 0);
  }
  CHECK_THROWS_WITH(qmr::io::gguf_to_qtensor(*f.find_tensor("q4_1")), Contains("Q4_1 has no exact qmr format"));
}
