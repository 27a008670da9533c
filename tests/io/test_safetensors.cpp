// Safetensors reader, writer and sharded checkpoints: round trips, the file format, and rejection of malformed files.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "qmr/core/error.hpp"
#include "qmr/core/half.hpp"
#include "qmr/core/tensor.hpp"
#include "qmr/io/safetensors.hpp"
#include "random.hpp"

namespace {

namespace fs = std::filesystem;
using Catch::Contains;
using qmr::io::checkpoint;
using qmr::io::safetensors_file;
using qmr::io::safetensors_writer;

// A fresh directory under the system temp directory, removed with everything in it on destruction.
class temp_dir {
 public:
  temp_dir() {
    std::random_device rd;
    for (;;) {
      path_ = fs::temp_directory_path() / ("qmr-test-safetensors-" + std::to_string(rd()) + std::to_string(rd()));
      if (fs::create_directory(path_)) break;
    }
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

std::vector<std::byte> read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  const std::vector<char> chars{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  std::vector<std::byte> out(chars.size());
  if (!chars.empty()) std::memcpy(out.data(), chars.data(), chars.size());
  return out;
}

void write_bytes(const fs::path& path, std::span<const std::byte> bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

void write_text(const fs::path& path, std::string_view text) { write_bytes(path, std::as_bytes(std::span(text))); }

// A safetensors file whose 8-byte length field holds `length_field`, whatever the header's real size.
std::vector<std::byte> file_with_length(std::uint64_t length_field, std::string_view header,
                                        std::span<const std::byte> data = {}) {
  std::vector<std::byte> out(8 + header.size() + data.size());
  for (std::size_t i = 0; i < 8; ++i) out[i] = static_cast<std::byte>((length_field >> (8 * i)) & 0xff);
  if (!header.empty()) std::memcpy(out.data() + 8, header.data(), header.size());
  if (!data.empty()) std::memcpy(out.data() + 8 + header.size(), data.data(), data.size());
  return out;
}

// A well-framed safetensors file: header JSON text (not necessarily valid) followed by the data buffer.
std::vector<std::byte> file_of(std::string_view header, std::span<const std::byte> data = {}) {
  return file_with_length(header.size(), header, data);
}

std::vector<std::byte> zeros(std::size_t n) { return std::vector<std::byte>(n); }

// The tensor name used by the single-tensor malformed files, so messages can be checked for it.
constexpr std::string_view tensor_name = "layers.0.w";

// A header holding one tensor entry `{body}` under tensor_name.
std::string one_tensor(std::string_view body) {
  return "{\"" + std::string(tensor_name) + "\":{" + std::string(body) + "}}";
}

safetensors_file parse_memory(const std::vector<std::byte>& bytes) {
  return safetensors_file::parse(bytes, "mem.safetensors");
}

// Parses `file_bytes` and requires a qmr::error whose message matches `matcher`
// (a macro so that a failure reports the caller's line).
#define REQUIRE_REJECTED(file_bytes, matcher)                     \
  do {                                                            \
    const std::vector<std::byte> rejected_bytes_ = (file_bytes);  \
    REQUIRE_THROWS_AS(parse_memory(rejected_bytes_), qmr::error); \
    REQUIRE_THROWS_WITH(parse_memory(rejected_bytes_), matcher);  \
  } while (false)

std::uint64_t read_u64_le(std::span<const std::byte> bytes) {
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<std::uint8_t>(bytes[static_cast<std::size_t>(i)]);
  return n;
}

// One tensor given to the writer, and what reading it back must give.
struct sample {
  std::string dtype_name;
  qmr::shape_t shape;
  std::size_t element_size;
  std::vector<std::byte> bytes;
};

template <class T>
std::vector<std::byte> bytes_of(const std::vector<T>& values) {
  std::vector<std::byte> out(values.size() * sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), values.data(), out.size());
  return out;
}

std::vector<std::byte> random_bytes(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::byte> out(n);
  for (auto& b : out) b = static_cast<std::byte>(rng() & 0xff);
  return out;
}

// Tensors of every dtype qmr computes with, including a scalar, a rank-4 and a 0-element tensor.
std::map<std::string, sample> make_samples() {
  std::map<std::string, sample> s;
  std::vector<float> w = qmr::testing::gaussian(15, 1);
  w[0] = 1.5f;  // a known value, checked through the typed view
  s["f32.weight"] = {"F32", qmr::make_shape({3, 5}), 4, bytes_of(w)};
  s["f32.scalar"] = {"F32", qmr::make_shape({}), 4, bytes_of(std::vector<float>{-2.25f})};
  s["empty"] = {"F32", qmr::make_shape({0, 4}), 4, {}};
  std::vector<qmr::f16> h;
  for (float x : qmr::testing::gaussian(24, 2)) h.push_back(qmr::to_f16(x));
  h[0] = qmr::to_f16(0.5f);
  s["f16.w"] = {"F16", qmr::make_shape({2, 3, 4}), 2, bytes_of(h)};
  std::vector<qmr::bf16> b;
  for (float x : qmr::testing::gaussian(7, 3)) b.push_back(qmr::to_bf16(x));
  b[6] = qmr::to_bf16(-3.0f);
  s["bf16.w"] = {"BF16", qmr::make_shape({7}), 2, bytes_of(b)};
  s["i8.w"] = {"I8", qmr::make_shape({3, 3}), 1, random_bytes(9, 4)};
  s["u8.w"] = {"U8", qmr::make_shape({5}), 1, random_bytes(5, 5)};
  std::vector<std::int32_t> idx(12);
  for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<std::int32_t>(i * 1000003) - 7;
  s["i32.idx"] = {"I32", qmr::make_shape({1, 2, 3, 2}), 4, bytes_of(idx)};
  return s;
}

const std::map<std::string, std::string> sample_metadata = {
    {"format", "pt"}, {"note", "caf\xc3\xa9 \xe2\x9c\x93 \"quoted\"\n"}, {"empty", ""}};

void write_samples(const fs::path& path, const std::map<std::string, sample>& samples,
                   const std::map<std::string, std::string>& metadata) {
  safetensors_writer w;
  for (const auto& [name, s] : samples) w.add(name, s.dtype_name, s.shape, s.bytes);
  for (const auto& [k, v] : metadata) w.set_metadata(k, v);
  REQUIRE(w.size() == samples.size());
  w.write(path);
}

// Compares a typed view element by element (bitwise, so NaN payloads count) and checks its alignment.
template <class T>
void check_typed(const qmr::tensor_view& v, const std::vector<std::byte>& expected) {
  const T* p = v.as<T>();
  REQUIRE(reinterpret_cast<std::uintptr_t>(p) % alignof(T) == 0);
  REQUIRE(v.is_contiguous());
  REQUIRE(v.nbytes() == expected.size());
  std::size_t mismatches = 0;
  for (std::int64_t i = 0; i < v.numel(); ++i)
    if (std::memcmp(&p[i], expected.data() + static_cast<std::size_t>(i) * sizeof(T), sizeof(T)) != 0) ++mismatches;
  REQUIRE(mismatches == 0);
}

void check_samples(const safetensors_file& f, const std::map<std::string, sample>& samples) {
  REQUIRE(f.tensors().size() == samples.size());
  REQUIRE(f.metadata() == sample_metadata);
  std::uint64_t previous_begin = 0;
  for (const qmr::io::tensor_info& t : f.tensors()) {
    INFO("tensor " << t.name);
    REQUIRE(samples.count(t.name) == 1);
    const sample& s = samples.at(t.name);
    REQUIRE(t.dtype_name == s.dtype_name);
    REQUIRE(t.type == qmr::dtype_from_name(s.dtype_name));
    REQUIRE(t.element_size == s.element_size);
    REQUIRE(t.shape == s.shape);
    REQUIRE(t.nbytes() == s.bytes.size());
    REQUIRE(t.begin >= previous_begin);  // tensors() is in data-offset order
    previous_begin = t.begin;
    REQUIRE(f.find(t.name) == &t);
    REQUIRE(&f.at(t.name) == &t);
    const auto raw = f.raw(t);
    REQUIRE(raw.size() == s.bytes.size());
    REQUIRE(std::equal(raw.begin(), raw.end(), s.bytes.begin(), s.bytes.end()));

    const qmr::tensor_view v = f.view(t.name);
    REQUIRE(v.data == raw.data());  // zero-copy
    REQUIRE(v.shape == s.shape);
    REQUIRE(v.type == *t.type);
    switch (*t.type) {
      case qmr::dtype::f32: check_typed<float>(v, s.bytes); break;
      case qmr::dtype::f16: check_typed<qmr::f16>(v, s.bytes); break;
      case qmr::dtype::bf16: check_typed<qmr::bf16>(v, s.bytes); break;
      case qmr::dtype::i8: check_typed<std::int8_t>(v, s.bytes); break;
      case qmr::dtype::u8: check_typed<std::uint8_t>(v, s.bytes); break;
      case qmr::dtype::i32: check_typed<std::int32_t>(v, s.bytes); break;
      case qmr::dtype::packed: FAIL("a safetensors file cannot hold packed tensors"); break;
    }
  }
  // Known values through the typed views, not only byte equality.
  REQUIRE(f.view("f32.weight").as<float>()[0] == 1.5f);
  REQUIRE(f.view("f32.scalar").as<float>()[0] == -2.25f);
  REQUIRE(f.view("f32.scalar").shape.rank == 0);
  REQUIRE(f.view("f32.scalar").numel() == 1);
  REQUIRE(f.view("empty").numel() == 0);
  REQUIRE(qmr::to_float(f.view("f16.w").as<qmr::f16>()[0]) == 0.5f);
  REQUIRE(qmr::to_float(f.view("bf16.w").as<qmr::bf16>()[6]) == -3.0f);
  REQUIRE(f.view("i32.idx").as<std::int32_t>()[11] == 11 * 1000003 - 7);
  REQUIRE(f.view("i32.idx").strides[0] == 12);
}

}  // namespace

TEST_CASE("safetensors round trip through the writer, open() and parse()", "[safetensors]") {
  const temp_dir dir;
  const auto samples = make_samples();
  const fs::path path = dir / "model.safetensors";
  write_samples(path, samples, sample_metadata);
  REQUIRE(fs::exists(path));
  REQUIRE_FALSE(fs::exists(path.string() + ".tmp"));

  const safetensors_file opened = safetensors_file::open(path.string());
  REQUIRE(opened.file() == path.string());
  REQUIRE(opened.header_bytes() % 8 == 0);
  check_samples(opened, samples);

  const std::vector<std::byte> bytes = read_bytes(path);
  const safetensors_file parsed = safetensors_file::parse(bytes, "in-memory copy");
  REQUIRE(parsed.file() == "in-memory copy");
  REQUIRE(parsed.header_bytes() == opened.header_bytes());
  check_samples(parsed, samples);
  // Views of a parsed buffer point into that buffer.
  const auto raw = parsed.raw(parsed.at("u8.w"));
  REQUIRE(raw.data() >= bytes.data());
  REQUIRE(raw.data() + raw.size() <= bytes.data() + bytes.size());

  // The writer lays out larger elements first, so alignment holds for every tensor.
  for (std::size_t i = 1; i < opened.tensors().size(); ++i)
    REQUIRE(opened.tensors()[i - 1].element_size >= opened.tensors()[i].element_size);
}

TEST_CASE("safetensors writer output follows the format", "[safetensors]") {
  const temp_dir dir;
  const auto samples = make_samples();
  const fs::path path = dir / "format.safetensors";
  write_samples(path, samples, sample_metadata);
  const std::vector<std::byte> bytes = read_bytes(path);

  REQUIRE(bytes.size() >= 8);
  const std::uint64_t n = read_u64_le(bytes);
  REQUIRE(n % 8 == 0);
  REQUIRE(8 + n <= bytes.size());
  const std::string text(reinterpret_cast<const char*>(bytes.data() + 8), static_cast<std::size_t>(n));
  // Padding is spaces after the closing brace, nothing else.
  const std::size_t last = text.find_last_not_of(' ');
  REQUIRE(last != std::string::npos);
  REQUIRE(text[last] == '}');
  REQUIRE(text.size() - last - 1 < 8);
  REQUIRE(text[0] == '{');

  const nlohmann::json header = nlohmann::json::parse(text);
  REQUIRE(header.is_object());
  REQUIRE(header.size() == samples.size() + 1);
  REQUIRE(header.at("__metadata__").get<std::map<std::string, std::string>>() == sample_metadata);

  struct range {
    std::uint64_t begin, end;
    std::string name;
  };
  std::vector<range> ranges;
  const std::uint64_t data_size = bytes.size() - 8 - n;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    INFO("tensor " << name);
    REQUIRE(samples.count(name) == 1);
    const sample& s = samples.at(name);
    REQUIRE(entry.at("dtype") == s.dtype_name);
    std::vector<std::int64_t> shape = entry.at("shape").get<std::vector<std::int64_t>>();
    REQUIRE(shape == std::vector<std::int64_t>(s.shape.dims.begin(), s.shape.dims.begin() + s.shape.rank));
    const auto offsets = entry.at("data_offsets").get<std::vector<std::uint64_t>>();
    REQUIRE(offsets.size() == 2);
    REQUIRE(offsets[1] - offsets[0] == s.bytes.size());
    REQUIRE(offsets[0] % s.element_size == 0);  // aligned within the 8-aligned data buffer
    REQUIRE(offsets[1] <= data_size);
    const auto* data = bytes.data() + 8 + n;
    REQUIRE(std::equal(data + offsets[0], data + offsets[1], s.bytes.begin(), s.bytes.end()));
    ranges.push_back({offsets[0], offsets[1], name});
  }
  std::sort(ranges.begin(), ranges.end(),
            [](const range& a, const range& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  // The tensors tile the data buffer exactly.
  std::uint64_t expected = 0;
  for (const range& r : ranges) {
    INFO("tensor " << r.name);
    REQUIRE(r.begin == expected);
    expected = r.end;
  }
  REQUIRE(expected == data_size);
}

TEST_CASE("safetensors writer rejects inconsistent tensors", "[safetensors]") {
  safetensors_writer w;
  const std::vector<std::byte> eight = zeros(8);
  REQUIRE_THROWS_WITH(w.add("a", "F32", qmr::make_shape({3}), eight),
                      Contains("needs 12 bytes, got 8") && Contains("'a'"));
  REQUIRE_THROWS_WITH(w.add("b", "F7", qmr::make_shape({8}), eight), Contains("unknown dtype 'F7'"));
  REQUIRE_THROWS_WITH(w.add("__metadata__", "U8", qmr::make_shape({8}), eight), Contains("reserved"));
  w.add("c", "U8", qmr::make_shape({8}), eight);
  REQUIRE_THROWS_WITH(w.add("c", "U8", qmr::make_shape({8}), eight), Contains("duplicate") && Contains("'c'"));
  REQUIRE(w.size() == 1);
}

TEST_CASE("safetensors headers: minimal valid files parse", "[safetensors]") {
  SECTION("empty header, no data") {
    const auto f = parse_memory(file_of("{}"));
    REQUIRE(f.tensors().empty());
    REQUIRE(f.metadata().empty());
    REQUIRE(f.header_bytes() == 2);
  }
  SECTION("unpadded header, misaligned data: raw works, typed access is an error, not UB") {
    std::string header = one_tensor(R"("dtype":"F32","shape":[2],"data_offsets":[0,8])");
    while ((8 + header.size()) % 4 != 1) header += ' ';  // data starts 1 byte past a 4-byte boundary
    const std::vector<std::byte> bytes = file_of(header, zeros(8));
    REQUIRE(reinterpret_cast<std::uintptr_t>(bytes.data()) % 4 == 0);
    const auto f = parse_memory(bytes);
    REQUIRE(f.at(tensor_name).shape == qmr::make_shape({2}));
    REQUIRE(f.raw(f.at(tensor_name)).size() == 8);
    REQUIRE_THROWS_WITH(f.view(tensor_name).as<float>(), Contains("not aligned"));
  }
  SECTION("zero-size tensors may share an offset") {
    const auto f = parse_memory(file_of(
        R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},"b":{"dtype":"F32","shape":[2,0],"data_offsets":[0,0]},)"
        R"("c":{"dtype":"U8","shape":[3],"data_offsets":[0,3]}})",
        zeros(3)));
    REQUIRE(f.tensors().size() == 3);
    REQUIRE(f.tensors().back().name == "c");
    REQUIRE(f.view("b").numel() == 0);
  }
}

TEST_CASE("safetensors rejects bad framing", "[safetensors]") {
  SECTION("empty file") {
    REQUIRE_REJECTED(std::vector<std::byte>{}, Contains("file is 0 bytes, shorter than the 8-byte header length"));
  }
  SECTION("shorter than the length field") {
    REQUIRE_REJECTED(zeros(5), Contains("file is 5 bytes") && Contains("mem.safetensors"));
  }
  SECTION("header length past the end of the file") {
    REQUIRE_REJECTED(file_with_length(100, "{}"),
                     Contains("header length 100 runs past the end of the file (10 bytes)"));
  }
  SECTION("header length 2^63") {
    REQUIRE_REJECTED(
        file_with_length(std::uint64_t{1} << 63, "{}"),
        Contains("header length 9223372036854775808 runs past the end") && Contains("field 'header length'"));
  }
  SECTION("header length 2^64 - 1") {
    REQUIRE_REJECTED(file_with_length(~std::uint64_t{0}, "{}"), Contains("runs past the end of the file"));
  }
  SECTION("header length above the 100 MiB cap") {
    const std::uint64_t n = qmr::io::max_header_bytes + 1;
    std::vector<std::byte> big = file_with_length(n, "{}");
    big.resize(static_cast<std::size_t>(8 + n));
    REQUIRE_REJECTED(std::move(big), Contains("exceeds the 100 MiB limit"));
  }
  SECTION("a valid file with its last bytes cut off") {
    const temp_dir dir;
    write_samples(dir / "m.safetensors", make_samples(), sample_metadata);
    std::vector<std::byte> bytes = read_bytes(dir / "m.safetensors");
    const std::string last = parse_memory(bytes).tensors().back().name;
    bytes.resize(bytes.size() - 3);
    REQUIRE_REJECTED(bytes,
                     Contains("tensor '" + last + "'") && Contains("field 'data_offsets'") && Contains("past the"));
  }
  SECTION("a valid file cut inside its header") {
    const temp_dir dir;
    write_samples(dir / "m.safetensors", make_samples(), sample_metadata);
    std::vector<std::byte> bytes = read_bytes(dir / "m.safetensors");
    bytes.resize(40);
    REQUIRE_REJECTED(bytes, Contains("runs past the end of the file (40 bytes)"));
  }
}

TEST_CASE("safetensors rejects headers that are not a JSON object", "[safetensors]") {
  SECTION("truncated JSON") {
    REQUIRE_REJECTED(file_of(R"({"layers.0.w":{"dtype":"F32")"),
                     Contains("header is not valid JSON") && Contains("field 'header'"));
  }
  SECTION("empty header") { REQUIRE_REJECTED(file_of(""), Contains("header is not valid JSON")); }
  SECTION("trailing garbage") { REQUIRE_REJECTED(file_of("{} x"), Contains("header is not valid JSON")); }
  SECTION("array at the top level") { REQUIRE_REJECTED(file_of("[1,2]"), Contains("header is not a JSON object")); }
  SECTION("string at the top level") { REQUIRE_REJECTED(file_of("\"x\""), Contains("header is not a JSON object")); }
  SECTION("invalid UTF-8 in a key") {
    REQUIRE_REJECTED(file_of("{\"w\xff\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}"),
                     Contains("header is not valid JSON") && Contains("UTF-8"));
  }
  SECTION("invalid UTF-8 in a metadata value") {
    REQUIRE_REJECTED(file_of("{\"__metadata__\":{\"k\":\"\xc3\x28\"}}"), Contains("header is not valid JSON"));
  }
  SECTION("NUL byte inside a key") {
    REQUIRE_REJECTED(file_of(std::string_view("{\"a\0\":1}", 8)), Contains("header contains a NUL byte"));
  }
}

TEST_CASE("safetensors rejects bad tensor entries", "[safetensors]") {
  const auto names_tensor = Contains("tensor '" + std::string(tensor_name) + "'");
  SECTION("entry is not an object") {
    REQUIRE_REJECTED(file_of(R"({"layers.0.w":[1,2]})"), Contains("entry is not an object") && names_tensor);
  }
  SECTION("missing dtype") {
    REQUIRE_REJECTED(file_of(one_tensor(R"("shape":[1],"data_offsets":[0,1])"), zeros(1)),
                     Contains("field 'dtype'") && Contains("missing or not a string") && names_tensor);
  }
  SECTION("dtype not a string") {
    REQUIRE_REJECTED(file_of(one_tensor(R"("dtype":4,"shape":[1],"data_offsets":[0,4])"), zeros(4)),
                     Contains("field 'dtype'") && Contains("missing or not a string") && names_tensor);
  }
  SECTION("unknown dtype F7") {
    REQUIRE_REJECTED(file_of(one_tensor(R"("dtype":"F7","shape":[1],"data_offsets":[0,4])"), zeros(4)),
                     Contains("unknown dtype 'F7'") && Contains("field 'dtype'") && names_tensor);
  }
  SECTION("unknown dtype Q4_0") {
    REQUIRE_REJECTED(file_of(one_tensor(R"("dtype":"Q4_0","shape":[1],"data_offsets":[0,4])"), zeros(4)),
                     Contains("unknown dtype 'Q4_0'") && names_tensor);
  }
  SECTION("dtype names are case-sensitive") {
    REQUIRE_REJECTED(file_of(one_tensor(R"("dtype":"f32","shape":[1],"data_offsets":[0,4])"), zeros(4)),
                     Contains("unknown dtype 'f32'"));
  }
  SECTION("shape missing") {
    REQUIRE_REJECTED(file_of(one_tensor(R"("dtype":"U8","data_offsets":[0,1])"), zeros(1)),
                     Contains("field 'shape'") && Contains("missing or not an array") && names_tensor);
  }
  SECTION("shape not an array") {
    REQUIRE_REJECTED(file_of(one_tensor(R"("dtype":"U8","shape":1,"data_offsets":[0,1])"), zeros(1)),
                     Contains("field 'shape'") && Contains("missing or not an array"));
  }
  SECTION("negative dimension") {
    REQUIRE_REJECTED(
        file_of(one_tensor(R"("dtype":"U8","shape":[2,-1],"data_offsets":[0,0])")),
        Contains("dimension -1 is not a non-negative integer") && Contains("field 'shape'") && names_tensor);
  }
  SECTION("float dimension") {
    REQUIRE_REJECTED(file_of(one_tensor(R"("dtype":"U8","shape":[2.0],"data_offsets":[0,2])"), zeros(2)),
                     Contains("dimension 2.0 is not a non-negative integer"));
  }
  SECTION("string dimension") {
    REQUIRE_REJECTED(file_of(one_tensor(R"("dtype":"U8","shape":["2"],"data_offsets":[0,2])"), zeros(2)),
                     Contains("dimension \"2\" is not a non-negative integer"));
  }
  SECTION("null dimension") {
    REQUIRE_REJECTED(file_of(one_tensor(R"("dtype":"U8","shape":[null],"data_offsets":[0,0])")),
                     Contains("dimension null is not a non-negative integer"));
  }
  SECTION("rank 5") {
    REQUIRE_REJECTED(file_of(one_tensor(R"("dtype":"U8","shape":[1,1,1,1,1],"data_offsets":[0,1])"), zeros(1)),
                     Contains("rank 5 is above qmr's maximum of 4") && names_tensor);
  }
  SECTION("element count overflows 64 bits") {
    REQUIRE_REJECTED(
        file_of(one_tensor(R"("dtype":"U8","shape":[1099511627776,1099511627776,1099511627776],"data_offsets":[0,0])")),
        Contains("element count overflows") && Contains("field 'shape'") && names_tensor);
  }
  SECTION("a single dimension of 2^63") {
    REQUIRE_REJECTED(file_of(one_tensor(R"("dtype":"U8","shape":[9223372036854775808],"data_offsets":[0,0])")),
                     Contains("element count overflows"));
  }
  SECTION("a dimension above 2^64 (parsed as a float)") {
    REQUIRE_REJECTED(file_of(one_tensor(R"("dtype":"U8","shape":[18446744073709551616],"data_offsets":[0,0])")),
                     Contains("is not a non-negative integer"));
  }
  SECTION("the byte count overflows although the element count does not") {
    REQUIRE_REJECTED(file_of(one_tensor(R"("dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,0])")),
                     Contains("needs 4611686018427387904 elements of 8 bytes") && Contains("field 'data_offsets'"));
  }
}

TEST_CASE("safetensors rejects bad data_offsets", "[safetensors]") {
  const auto names_tensor = Contains("tensor '" + std::string(tensor_name) + "'");
  const auto offsets_field = Contains("field 'data_offsets'");
  const auto offsets_message = Contains("must be an array of two non-negative integers");
  SECTION("missing") {
    REQUIRE_REJECTED(file_of(one_tensor(R"("dtype":"U8","shape":[1])"), zeros(1)),
                     offsets_field && offsets_message && names_tensor);
  }
  SECTION("not an array") {
    REQUIRE_REJECTED(file_of(one_tensor(R"("dtype":"U8","shape":[1],"data_offsets":{"begin":0})"), zeros(1)),
                     offsets_field && offsets_message);
  }
  SECTION("one element") {
    REQUIRE_REJECTED(file_of(one_tensor(R"("dtype":"U8","shape":[1],"data_offsets":[1])"), zeros(1)),
                     offsets_field && offsets_message);
  }
  SECTION("three elements") {
    REQUIRE_REJECTED(file_of(one_tensor(R"("dtype":"U8","shape":[1],"data_offsets":[0,1,2])"), zeros(2)),
                     offsets_field && offsets_message);
  }
  SECTION("negative begin") {
    REQUIRE_REJECTED(file_of(one_tensor(R"("dtype":"U8","shape":[1],"data_offsets":[-1,0])"), zeros(1)),
                     offsets_field && offsets_message && names_tensor);
  }
  SECTION("float offsets") {
    REQUIRE_REJECTED(file_of(one_tensor(R"("dtype":"U8","shape":[1],"data_offsets":[0.0,1.0])"), zeros(1)),
                     offsets_field && offsets_message);
  }
  SECTION("begin after end") {
    REQUIRE_REJECTED(file_of(one_tensor(R"("dtype":"U8","shape":[0],"data_offsets":[8,4])"), zeros(8)),
                     Contains("begin 8 is after end 4") && Contains("field 'data_offsets'") && names_tensor);
  }
  SECTION("end past the data buffer") {
    REQUIRE_REJECTED(file_of(one_tensor(R"("dtype":"U8","shape":[16],"data_offsets":[0,16])"), zeros(8)),
                     Contains("end 16 is past the 8-byte data buffer") && names_tensor);
  }
  SECTION("end at 2^64 - 1") {
    REQUIRE_REJECTED(
        file_of(one_tensor(R"("dtype":"U8","shape":[1],"data_offsets":[18446744073709551614,18446744073709551615])"),
                zeros(1)),
        Contains("is past the 1-byte data buffer"));
  }
  SECTION("shape and byte count disagree") {
    REQUIRE_REJECTED(
        file_of(one_tensor(R"("dtype":"F32","shape":[3],"data_offsets":[0,8])"), zeros(8)),
        Contains("shape [3] of F32 needs 3 elements of 4 bytes, but data_offsets span 8 bytes") && names_tensor);
  }
}

TEST_CASE("safetensors requires the tensors to tile the data buffer", "[safetensors]") {
  SECTION("two tensors overlap") {
    REQUIRE_REJECTED(
        file_of(R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},)"
                R"("b":{"dtype":"U8","shape":[8],"data_offsets":[4,12]}})",
                zeros(12)),
        Contains("tensor 'b'") && Contains("overlap tensor 'a' [0, 8)") && Contains("field 'data_offsets'"));
  }
  SECTION("a zero-size tensor inside another") {
    REQUIRE_REJECTED(file_of(R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},)"
                             R"("z":{"dtype":"U8","shape":[0],"data_offsets":[4,4]}})",
                             zeros(8)),
                     Contains("tensor 'z'") && Contains("overlap tensor 'a'"));
  }
  SECTION("a hole between two tensors") {
    const std::string header = R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                               R"("b":{"dtype":"U8","shape":[4],"data_offsets":[8,12]}})";
    // The error points at the first byte of the hole: length field + header + end of 'a'.
    const std::string at = "byte " + std::to_string(8 + header.size() + 4) + ": ";
    REQUIRE_REJECTED(file_of(header, zeros(12)),
                     Contains("tensor 'b'") && Contains("leave a hole of 4 bytes before this tensor") && Contains(at));
  }
  SECTION("a hole before the first tensor") {
    REQUIRE_REJECTED(file_of(one_tensor(R"("dtype":"U8","shape":[4],"data_offsets":[4,8])"), zeros(8)),
                     Contains("leave a hole of 4 bytes"));
  }
  SECTION("trailing bytes after the last tensor") {
    REQUIRE_REJECTED(file_of(one_tensor(R"("dtype":"U8","shape":[4],"data_offsets":[0,4])"), zeros(6)),
                     Contains("tensors cover 4 bytes of a 6-byte data buffer"));
  }
  SECTION("data but no tensors") {
    REQUIRE_REJECTED(file_of("{}", zeros(1)), Contains("tensors cover 0 bytes of a 1-byte data buffer"));
  }
}

TEST_CASE("safetensors __metadata__ must be a string map", "[safetensors]") {
  SECTION("valid") {
    const auto f = parse_memory(file_of(R"({"__metadata__":{"format":"pt","b":""}})"));
    REQUIRE(f.metadata() == std::map<std::string, std::string>{{"format", "pt"}, {"b", ""}});
    REQUIRE(f.tensors().empty());
    REQUIRE(f.find("__metadata__") == nullptr);
  }
  SECTION("not an object") {
    REQUIRE_REJECTED(file_of(R"({"__metadata__":"pt"})"), Contains("__metadata__ is not an object"));
  }
  SECTION("an array") {
    REQUIRE_REJECTED(file_of(R"({"__metadata__":["pt"]})"), Contains("__metadata__ is not an object"));
  }
  SECTION("a non-string value") {
    REQUIRE_REJECTED(file_of(R"({"__metadata__":{"format":"pt","total":12}})"),
                     Contains("value of 'total' is not a string") && Contains("field '__metadata__'"));
  }
  SECTION("a nested object value") {
    REQUIRE_REJECTED(file_of(R"({"__metadata__":{"nested":{"a":"b"}}})"),
                     Contains("value of 'nested' is not a string"));
  }
}

TEST_CASE("safetensors lists dtypes qmr does not compute with", "[safetensors]") {
  std::vector<std::byte> data(24);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::byte>(i + 1);
  const std::vector<std::byte> bytes = file_of(
      R"({"d":{"dtype":"F64","shape":[2],"data_offsets":[0,16]},"l":{"dtype":"I64","shape":[1],"data_offsets":[16,24]}})",
      data);
  const safetensors_file f = parse_memory(bytes);
  REQUIRE(f.tensors().size() == 2);
  const auto& d = f.at("d");
  REQUIRE(d.dtype_name == "F64");
  REQUIRE_FALSE(d.type.has_value());
  REQUIRE(d.element_size == 8);
  REQUIRE(d.shape == qmr::make_shape({2}));
  REQUIRE(f.at("l").dtype_name == "I64");
  REQUIRE_FALSE(f.at("l").type.has_value());

  const auto raw = f.raw(d);
  REQUIRE(raw.size() == 16);
  REQUIRE(std::equal(raw.begin(), raw.end(), data.begin(), data.begin() + 16));
  REQUIRE(std::to_integer<int>(f.raw(f.at("l"))[0]) == 17);

  REQUIRE_THROWS_AS(f.view("d"), qmr::error);
  REQUIRE_THROWS_WITH(f.view("d"), Contains("dtype F64 is not supported by qmr kernels") && Contains("tensor 'd'"));
  REQUIRE_THROWS_WITH(f.view(f.at("l")), Contains("dtype I64 is not supported"));
}

TEST_CASE("safetensors at() and find() of a missing tensor", "[safetensors]") {
  const safetensors_file f =
      parse_memory(file_of(one_tensor(R"("dtype":"U8","shape":[1],"data_offsets":[0,1])"), zeros(1)));
  REQUIRE(f.find("missing") == nullptr);
  REQUIRE_THROWS_AS(f.at("missing"), qmr::error);
  REQUIRE_THROWS_WITH(f.at("missing"),
                      Contains("no such tensor") && Contains("tensor 'missing'") && Contains("mem.safetensors"));
  REQUIRE_THROWS_WITH(f.view("missing"), Contains("tensor 'missing'"));
  REQUIRE(f.find(tensor_name) != nullptr);
}

// nlohmann throws out_of_range (406), not parse_error, for a number that overflows a double.
TEST_CASE("safetensors rejects a number that overflows a double with qmr::error", "[safetensors]") {
  REQUIRE_REJECTED(file_of(R"({"__metadata__":{"a":"b"},"x":1e999})"), Contains("header is not valid JSON"));
}

// nlohmann's lexer takes a NUL byte for the end of input, so whatever follows a NUL
// would never be looked at. The format allows only spaces as padding.
TEST_CASE("safetensors rejects bytes after a NUL in the header", "[safetensors]") {
  REQUIRE_REJECTED(file_of(std::string_view("{}\0xyz", 6)), Contains("header contains a NUL byte") && Contains("byte 10"));
}

TEST_CASE("an empty tensor with huge other dimensions is rejected before any stride overflows", "[safetensors]") {
  REQUIRE_REJECTED(file_of(R"({"w":{"dtype":"U8","shape":[0,4294967296,4294967296],"data_offsets":[0,0]}})"),
                   Contains("element count overflows"));
}

TEST_CASE("a deeply nested shape entry is an error, not a stack overflow", "[safetensors]") {
  const std::string nested = std::string(100000, '[') + std::string(100000, ']');
  REQUIRE_REJECTED(file_of(R"({"w":{"dtype":"U8","shape":[)" + nested + R"(],"data_offsets":[0,0]}})"),
                   Contains("dimension of type array is not a non-negative integer"));
}

namespace {

// Two shards plus a third that repeats a tensor of the first, written with the writer.
struct sharded_fixture {
  temp_dir dir;
  std::vector<float> embed = qmr::testing::gaussian(12, 11);
  std::vector<float> head = qmr::testing::gaussian(6, 12);
  std::string shard1 = "model-00001-of-00002.safetensors";
  std::string shard2 = "model-00002-of-00002.safetensors";

  sharded_fixture() {
    safetensors_writer a;
    a.add<float>("embed.weight", qmr::make_shape({4, 3}), embed);
    a.add("layers.0.w", "U8", qmr::make_shape({2}), zeros(2));
    a.write(dir / shard1);
    safetensors_writer b;
    b.add<float>("lm_head.weight", qmr::make_shape({2, 3}), head);
    b.add("layers.1.w", "U8", qmr::make_shape({3}), zeros(3));
    b.write(dir / shard2);
    safetensors_writer c;
    c.add<float>("embed.weight", qmr::make_shape({4, 3}), embed);
    c.add("extra", "U8", qmr::make_shape({1}), zeros(1));
    c.write(dir / "dup.safetensors.part");
  }
  fs::path index() const { return dir / "model.safetensors.index.json"; }
  void write_index(const nlohmann::json& weight_map) const {
    write_text(index(), nlohmann::json{{"metadata", {{"total_size", 68}}}, {"weight_map", weight_map}}.dump(2));
  }
  nlohmann::json good_map() const {
    return {{"embed.weight", shard1}, {"layers.0.w", shard1}, {"lm_head.weight", shard2}, {"layers.1.w", shard2}};
  }
};

}  // namespace

TEST_CASE("checkpoint reads sharded safetensors through the index", "[safetensors]") {
  const sharded_fixture fx;

  SECTION("a valid index") {
    fx.write_index(fx.good_map());
    const checkpoint c = checkpoint::open(fx.dir.path());
    REQUIRE(c.directory().string() == fx.dir.path().string());
    REQUIRE(c.index_file().string() == fx.index().string());
    REQUIRE(c.shards().size() == 2);
    REQUIRE(c.names() == std::vector<std::string>{"embed.weight", "layers.0.w", "layers.1.w", "lm_head.weight"});
    REQUIRE(fs::path(c.shard_of("embed.weight").file()).filename().string() == fx.shard1);
    REQUIRE(fs::path(c.shard_of("lm_head.weight").file()).filename().string() == fx.shard2);
    const qmr::tensor_view e = c.view("embed.weight");
    REQUIRE(e.shape == qmr::make_shape({4, 3}));
    REQUIRE(std::equal(fx.embed.begin(), fx.embed.end(), e.as<float>()));
    const qmr::tensor_view h = c.view("lm_head.weight");
    REQUIRE(h.shape == qmr::make_shape({2, 3}));
    REQUIRE(std::equal(fx.head.begin(), fx.head.end(), h.as<float>()));
    REQUIRE(c.find("layers.1.w") != nullptr);
    REQUIRE(c.find("layers.1.w")->shape == qmr::make_shape({3}));
    REQUIRE(c.find("nope") == nullptr);
    REQUIRE_THROWS_AS(c.shard_of("nope"), qmr::error);
    REQUIRE_THROWS_WITH(c.view("nope"), Contains("no such tensor in the checkpoint") && Contains("tensor 'nope'"));
  }
  SECTION("views outlive a moved checkpoint") {
    fx.write_index(fx.good_map());
    checkpoint moved = checkpoint::open(fx.dir.path());
    const checkpoint c = std::move(moved);
    REQUIRE(c.view("embed.weight").as<float>()[11] == fx.embed[11]);
  }
  SECTION("the index lists a tensor that is not in any loaded shard") {
    auto map = fx.good_map();
    map["layers.1.w"] = fx.shard1;
    map.erase("lm_head.weight");  // shard2 is never loaded
    fx.write_index(map);
    REQUIRE_THROWS_AS(checkpoint::open(fx.dir.path()), qmr::error);
    REQUIRE_THROWS_WITH(checkpoint::open(fx.dir.path()),
                        Contains("listed in shard '" + fx.shard1 + "' but not found there") &&
                            Contains("tensor 'layers.1.w'") && Contains(fx.index().string()));
  }
  SECTION("the index puts a tensor in the wrong shard") {
    auto map = fx.good_map();
    map["lm_head.weight"] = fx.shard1;
    fx.write_index(map);
    REQUIRE_THROWS_WITH(checkpoint::open(fx.dir.path()),
                        Contains("listed in shard '" + fx.shard1 + "' but not found there") &&
                            Contains("tensor 'lm_head.weight'") && Contains("model.safetensors.index.json"));
  }
  SECTION("weight_map is not an object") {
    fx.write_index(nlohmann::json::array({fx.shard1}));
    REQUIRE_THROWS_AS(checkpoint::open(fx.dir.path()), qmr::error);
    REQUIRE_THROWS_WITH(checkpoint::open(fx.dir.path()),
                        Contains("field 'weight_map'") && Contains("missing or not an object"));
  }
  SECTION("weight_map is missing") {
    write_text(fx.index(), R"({"metadata":{}})");
    REQUIRE_THROWS_WITH(checkpoint::open(fx.dir.path()),
                        Contains("field 'weight_map'") && Contains("missing or not an object"));
  }
  SECTION("the index is not an object") {
    write_text(fx.index(), "[]");
    REQUIRE_THROWS_WITH(checkpoint::open(fx.dir.path()), Contains("missing or not an object"));
  }
  SECTION("a shard name is not a string") {
    write_text(fx.index(), R"({"weight_map":{"embed.weight":1}})");
    REQUIRE_THROWS_WITH(checkpoint::open(fx.dir.path()),
                        Contains("shard name is not a string") && Contains("tensor 'embed.weight'"));
  }
  SECTION("the index is invalid JSON") {
    write_text(fx.index(), R"({"weight_map":{"embed.weight":)");
    REQUIRE_THROWS_AS(checkpoint::open(fx.dir.path()), qmr::error);
    REQUIRE_THROWS_WITH(checkpoint::open(fx.dir.path()), Contains("not valid JSON") && Contains(fx.index().string()));
  }
  SECTION("the index is empty") {
    write_text(fx.index(), "");
    REQUIRE_THROWS_WITH(checkpoint::open(fx.dir.path()), Contains("not valid JSON"));
  }
  SECTION("a shard path with a slash") {
    fs::create_directory(fx.dir / "sub");
    fs::copy_file(fx.dir / fx.shard1, fx.dir / "sub" / fx.shard1);
    fx.write_index({{"embed.weight", "sub/" + fx.shard1}});
    REQUIRE_THROWS_AS(checkpoint::open(fx.dir.path()), qmr::error);
    REQUIRE_THROWS_WITH(checkpoint::open(fx.dir.path()),
                        Contains("shard 'sub/" + fx.shard1 + "' is not a file name in the checkpoint directory") &&
                            Contains("tensor 'embed.weight'"));
  }
  SECTION("a shard path escaping the directory") {
    fx.write_index({{"embed.weight", "../" + fx.shard1}});
    REQUIRE_THROWS_WITH(checkpoint::open(fx.dir.path()), Contains("is not a file name in the checkpoint directory"));
  }
  SECTION("a shard path of '..'") {
    fx.write_index({{"embed.weight", ".."}});
    REQUIRE_THROWS_WITH(checkpoint::open(fx.dir.path()), Contains("is not a file name in the checkpoint directory"));
  }
  SECTION("a shard that does not exist") {
    fx.write_index({{"embed.weight", "missing.safetensors"}});
    REQUIRE_THROWS_AS(checkpoint::open(fx.dir.path()), qmr::error);
    REQUIRE_THROWS_WITH(checkpoint::open(fx.dir.path()), Contains("missing.safetensors") && Contains("cannot open"));
  }
  SECTION("a tensor present in two shards") {
    auto map = fx.good_map();
    map["extra"] = "dup.safetensors.part";
    fx.write_index(map);
    REQUIRE_THROWS_AS(checkpoint::open(fx.dir.path()), qmr::error);
    REQUIRE_THROWS_WITH(checkpoint::open(fx.dir.path()), Contains("tensor 'embed.weight'") &&
                                                             Contains("also appears in") && Contains(fx.shard1) &&
                                                             Contains("dup.safetensors.part"));
  }
}

TEST_CASE("checkpoint opens files and directories without an index", "[safetensors]") {
  const sharded_fixture fx;

  SECTION("a single file") {
    const checkpoint c = checkpoint::open(fx.dir / fx.shard2);
    REQUIRE(c.directory().empty());
    REQUIRE(c.index_file().empty());
    REQUIRE(c.shards().size() == 1);
    REQUIRE(c.names() == std::vector<std::string>{"layers.1.w", "lm_head.weight"});
    REQUIRE(c.view("lm_head.weight").as<float>()[5] == fx.head[5]);
    REQUIRE_THROWS_WITH(c.shard_of("embed.weight"), Contains(fx.shard2) && Contains("tensor 'embed.weight'"));
  }
  SECTION("a directory with model.safetensors uses only that file") {
    fs::copy_file(fx.dir / fx.shard2, fx.dir / "model.safetensors");
    const checkpoint c = checkpoint::open(fx.dir.path());
    REQUIRE(c.shards().size() == 1);
    REQUIRE(fs::path(c.shards()[0].file()).filename().string() == "model.safetensors");
    REQUIRE(c.names() == std::vector<std::string>{"layers.1.w", "lm_head.weight"});
    REQUIRE(c.view("lm_head.weight").as<float>()[0] == fx.head[0]);
  }
  SECTION("a directory with other .safetensors files loads them all, sorted") {
    write_text(fx.dir / "notes.txt", "not a tensor file");
    // More files than the two shards, so that directory order is unlikely to be sorted already.
    for (const std::string name : {"d", "a", "c", "b"}) {
      safetensors_writer w;
      w.add("extra." + name, "U8", qmr::make_shape({1}), zeros(1));
      w.write(fx.dir / (name + ".safetensors"));
    }
    const checkpoint c = checkpoint::open(fx.dir.path());
    REQUIRE(c.index_file().empty());
    std::vector<std::string> files;
    for (const auto& shard : c.shards()) files.push_back(fs::path(shard.file()).filename().string());
    REQUIRE(files == std::vector<std::string>{"a.safetensors", "b.safetensors", "c.safetensors", "d.safetensors",
                                              fx.shard1, fx.shard2});
    REQUIRE(c.names() == std::vector<std::string>{"embed.weight", "extra.a", "extra.b", "extra.c", "extra.d",
                                                  "layers.0.w", "layers.1.w", "lm_head.weight"});
    REQUIRE(c.view("embed.weight").as<float>()[3] == fx.embed[3]);
    REQUIRE(fs::path(c.shard_of("layers.1.w").file()).filename().string() == fx.shard2);
  }
  SECTION("two unindexed files holding the same tensor") {
    fs::copy_file(fx.dir / "dup.safetensors.part", fx.dir / "z.safetensors");
    REQUIRE_THROWS_AS(checkpoint::open(fx.dir.path()), qmr::error);
    REQUIRE_THROWS_WITH(checkpoint::open(fx.dir.path()),
                        Contains("tensor 'embed.weight'") && Contains("also appears in") && Contains("z.safetensors"));
  }
  SECTION("a malformed shard names its file") {
    write_bytes(fx.dir / "broken.safetensors", file_of("[]"));
    REQUIRE_THROWS_WITH(checkpoint::open(fx.dir.path()),
                        Contains("broken.safetensors") && Contains("header is not a JSON object"));
  }
  SECTION("an empty directory") {
    const temp_dir empty;
    REQUIRE_THROWS_AS(checkpoint::open(empty.path()), qmr::error);
    REQUIRE_THROWS_WITH(checkpoint::open(empty.path()),
                        Contains("directory holds no .safetensors file") && Contains(empty.path().string()));
  }
  SECTION("a nonexistent path") {
    const fs::path missing = fx.dir / "does-not-exist";
    REQUIRE_THROWS_AS(checkpoint::open(missing), qmr::error);
    REQUIRE_THROWS_WITH(checkpoint::open(missing), Contains("no such file or directory") && Contains(missing.string()));
  }
  SECTION("safetensors_file::open of a missing file") {
    REQUIRE_THROWS_AS(safetensors_file::open((fx.dir / "nope.safetensors").string()), qmr::error);
    REQUIRE_THROWS_WITH(safetensors_file::open((fx.dir / "nope.safetensors").string()), Contains("cannot open"));
  }
}

TEST_CASE("load_mode::copy reads the same tensors as the mapping, into memory it owns", "[safetensors]") {
  using qmr::io::load_mode;
  const temp_dir dir;
  // A sample file, and one of 16 MB: above aligned_buffer's huge-page threshold, so the copy
  // takes the 2 MB-aligned, madvised path.
  const auto samples = make_samples();
  write_samples(dir / "model.safetensors", samples, sample_metadata);
  const std::uint32_t seed = qmr::testing::fresh_seed();
  INFO("seed " << seed);
  const std::vector<float> big = qmr::testing::gaussian(std::size_t{4} << 20, seed);  // [4M]
  {
    safetensors_writer w;
    w.add("big", qmr::make_shape({static_cast<std::int64_t>(big.size())}), std::span<const float>(big));
    w.write(dir / "big.safetensors");
  }

  const safetensors_file copied = safetensors_file::open((dir / "model.safetensors").string(), load_mode::copy);
  check_samples(copied, samples);
  const safetensors_file mapped = safetensors_file::open((dir / "model.safetensors").string(), load_mode::map);
  REQUIRE(copied.tensors().size() == mapped.tensors().size());
  CHECK(copied.copied());
  CHECK_FALSE(mapped.copied());

  const safetensors_file big_copy = safetensors_file::open((dir / "big.safetensors").string(), load_mode::copy);
  const auto raw = big_copy.raw(big_copy.at("big"));
  REQUIRE(raw.size() == big.size() * sizeof(float));
  CHECK(std::memcmp(raw.data(), big.data(), raw.size()) == 0);
  // The copy is independent of the file: overwrite the file, the loaded bytes stay.
  {
    std::ofstream f(dir / "big.safetensors", std::ios::binary | std::ios::trunc);
    f << "gone";
  }
  CHECK(std::memcmp(big_copy.raw(big_copy.at("big")).data(), big.data(), raw.size()) == 0);

  // Directories and shards take the mode through checkpoint::open.
  const checkpoint c = checkpoint::open(dir / "model.safetensors", load_mode::copy);
  check_samples(c.shards().front(), samples);
  CHECK(c.shards().front().copied());
  CHECK_FALSE(checkpoint::open(dir / "model.safetensors").shards().front().copied());
  // file_bytes: the one file, or every .safetensors file of a directory.
  const auto size_of = [&](const char* f) { return static_cast<std::uint64_t>(fs::file_size(dir / f)); };
  CHECK(checkpoint::file_bytes(dir / "model.safetensors") == size_of("model.safetensors"));
  CHECK(checkpoint::file_bytes(dir.path()) == size_of("model.safetensors") + size_of("big.safetensors"));

  // The memory guard: refuses what does not fit, naming the file and both sizes; 0 available = unknown.
  CHECK_THROWS_WITH(qmr::io::check_fits_in_memory(1000, 999, "shard.safetensors"),
                    Contains("shard.safetensors: cannot read 1000 bytes into memory: 999 are available"));
  CHECK_NOTHROW(qmr::io::check_fits_in_memory(1000, 1000, "shard.safetensors"));
  CHECK_NOTHROW(qmr::io::check_fits_in_memory(1000, 0, "shard.safetensors"));

  // The guard against copying more than fits: MemAvailable, read on Linux (this test's platform).
  const std::uint64_t avail = qmr::io::available_memory_bytes();
  CHECK(avail > (std::uint64_t{16} << 20));  // the 16 MB copy above fit
  CHECK(avail < (std::uint64_t{1} << 50));

  CHECK(qmr::io::parse_load_mode("map") == load_mode::map);
  CHECK(qmr::io::parse_load_mode("copy") == load_mode::copy);
  CHECK_THROWS_WITH(qmr::io::parse_load_mode("mmap"), Contains("load mode 'mmap': expected map or copy"));
}

namespace {
// write_text to dir / rel, making its directories.
void put(const fs::path& dir, const std::string& rel, const std::string& text) {
  fs::create_directories((dir / rel).parent_path());
  write_text(dir / rel, text);
}
}  // namespace

TEST_CASE("available_memory_bytes reads MemAvailable and the cgroup v1 and v2 limits", "[safetensors]") {
  using qmr::io::available_memory_bytes;
  using qmr::io::memory_sources;
  constexpr std::uint64_t MB = std::uint64_t{1} << 20;
  const temp_dir dir;
  const memory_sources src{(dir / "meminfo").string(), (dir / "cgroup").string(), (dir / "fs").string()};
  // MemAvailable in kB: 4096 MB. Other lines before it and a key that merely contains it.
  put(dir.path(), "meminfo", "MemTotal: 8388608 kB\nXMemAvailable: 1 kB\nMemAvailable:    4194304 kB\n");

  SECTION("no cgroup file: MemAvailable alone") { CHECK(available_memory_bytes(src) == 4096 * MB); }
  SECTION("no meminfo: unknown") {
    const memory_sources none{(dir / "absent").string(), src.self_cgroup, src.cgroup_root};
    CHECK(available_memory_bytes(none) == 0);
  }
  SECTION("cgroup v2: limit less usage plus inactive file cache, the tightest ancestor binding") {
    put(dir.path(), "cgroup", "0::/app/worker\n");
    put(dir.path(), "fs/app/worker/memory.max", std::to_string(1000 * MB) + "\n");
    put(dir.path(), "fs/app/worker/memory.current", std::to_string(700 * MB) + "\n");
    put(dir.path(), "fs/app/worker/memory.stat", "anon 5\nactive_file 9\ninactive_file " + std::to_string(100 * MB) + "\n");
    CHECK(available_memory_bytes(src) == 400 * MB);
    put(dir.path(), "fs/app/memory.max", std::to_string(900 * MB) + "\n");  // the parent's: 150 MB left
    put(dir.path(), "fs/app/memory.current", std::to_string(750 * MB) + "\n");
    CHECK(available_memory_bytes(src) == 150 * MB);
    put(dir.path(), "fs/app/memory.max", "max\n");  // unlimited parent: the group binds again
    CHECK(available_memory_bytes(src) == 400 * MB);
    put(dir.path(), "fs/app/worker/memory.max", "max\n");
    CHECK(available_memory_bytes(src) == 4096 * MB);
    put(dir.path(), "fs/app/worker/memory.max", std::to_string(600 * MB) + "\n");  // usage over the limit: nothing left
    put(dir.path(), "fs/app/worker/memory.stat", "inactive_file 0\n");
    CHECK(available_memory_bytes(src) == 0);
  }
  SECTION("cgroup v1: the memory controller's group, hierarchical limit and total_inactive_file") {
    put(dir.path(), "cgroup", "9:name=systemd:/\n4:cpuacct,memory:/batch/job7\n0::/\n");
    put(dir.path(), "fs/memory/batch/job7/memory.limit_in_bytes", std::to_string(2048 * MB) + "\n");
    put(dir.path(), "fs/memory/batch/job7/memory.usage_in_bytes", std::to_string(1024 * MB) + "\n");
    put(dir.path(), "fs/memory/batch/job7/memory.stat",
        "inactive_file 1\nhierarchical_memory_limit 9223372036854771712\ntotal_inactive_file " + std::to_string(256 * MB) + "\n");
    CHECK(available_memory_bytes(src) == 1280 * MB);
    put(dir.path(), "fs/memory/batch/job7/memory.stat",
        "inactive_file 1\nhierarchical_memory_limit " + std::to_string(1536 * MB) + "\ntotal_inactive_file " + std::to_string(256 * MB) + "\n");
    CHECK(available_memory_bytes(src) == 768 * MB);  // an ancestor's 1536 MB limit
    put(dir.path(), "fs/memory/batch/job7/memory.limit_in_bytes", "9223372036854771712\n");
    put(dir.path(), "fs/memory/batch/job7/memory.stat", "total_inactive_file 0\n");
    CHECK(available_memory_bytes(src) == 4096 * MB);  // unlimited
  }
  SECTION("cgroup v1 in a container: the group's path is not visible, the mount's root is the group") {
    put(dir.path(), "cgroup", "4:memory:/docker/0123abcd\n");
    put(dir.path(), "fs/memory/memory.limit_in_bytes", std::to_string(512 * MB) + "\n");
    put(dir.path(), "fs/memory/memory.usage_in_bytes", std::to_string(128 * MB) + "\n");
    CHECK(available_memory_bytes(src) == 384 * MB);
  }
  SECTION("malformed cgroup lines are skipped") {
    put(dir.path(), "cgroup", "garbage\n4:memory\n0::relative/path\n\n");
    CHECK(available_memory_bytes(src) == 4096 * MB);
  }
}

TEST_CASE("load_mode::copy of a file that ends before its stated size is an error naming the file and offset",
          "[safetensors]") {
  // sysfs attributes are regular files that report 4096 bytes and hold a line: the read ends early.
  const char* candidates[] = {"/sys/kernel/mm/transparent_hugepage/enabled", "/sys/kernel/mm/transparent_hugepage/defrag",
                              "/sys/power/state", "/sys/kernel/profiling"};
  for (const char* path : candidates) {
    std::error_code ec;
    const auto size = fs::file_size(path, ec);
    if (ec || !fs::is_regular_file(path, ec) || size == 0) continue;
    std::ifstream f(path, std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (!f.good() && !f.eof()) continue;
    if (text.empty() || text.size() >= size) continue;  // not shorter than stated: no short read to test
    INFO(path << ": " << size << " bytes stated, " << text.size() << " read");
    CHECK_THROWS_WITH(qmr::io::mapped_file(path, qmr::io::load_mode::copy),
                      Contains(path) && Contains("file ended early, " + std::to_string(size) + " bytes expected") &&
                          Contains("byte " + std::to_string(text.size()) + ": "));
    return;
  }
  WARN("no sysfs attribute with a short read here; the short-read error is untested on this machine");
}
