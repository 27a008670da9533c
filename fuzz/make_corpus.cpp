// Writes the seed corpus of fuzz_safetensors (fuzz/corpus/): small valid files of every dtype and a few malformed ones.
//
// Rebuild the checked-in corpus with:
//   c++ -std=c++20 -Iinclude fuzz/make_corpus.cpp -o /tmp/make_corpus && /tmp/make_corpus fuzz/corpus
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "qmr/core/half.hpp"
#include "qmr/io/safetensors.hpp"

namespace {

namespace fs = std::filesystem;

// length field (little-endian) + header text + data buffer, with nothing checked.
std::vector<std::byte> raw_file(std::string_view header, std::size_t data_bytes, std::uint64_t length_field) {
  std::vector<std::byte> out(8 + header.size() + data_bytes);
  for (std::size_t i = 0; i < 8; ++i) out[i] = static_cast<std::byte>((length_field >> (8 * i)) & 0xff);
  std::memcpy(out.data() + 8, header.data(), header.size());
  for (std::size_t i = 0; i < data_bytes; ++i) out[8 + header.size() + i] = static_cast<std::byte>(i * 37 + 1);
  return out;
}
std::vector<std::byte> raw_file(std::string_view header, std::size_t data_bytes = 0) {
  return raw_file(header, data_bytes, header.size());
}

void save(const fs::path& path, const std::vector<std::byte>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

template <class T>
std::span<const std::byte> bytes_of(const std::vector<T>& v) {
  return std::as_bytes(std::span(v));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTPUT_DIR\n", argv[0]);
    return 2;
  }
  const fs::path dir = argv[1];
  fs::create_directories(dir);

  {  // every dtype qmr computes with, a scalar, a rank-4 and a 0-element tensor, and metadata
    qmr::io::safetensors_writer w;
    w.add<float>("model.embed.weight", qmr::make_shape({2, 3}), std::vector<float>{1, -2, 3.5f, 0, 1e-8f, -0.0f});
    w.add<float>("scale", qmr::make_shape({}), std::vector<float>{0.125f});
    w.add<std::int32_t>("ids", qmr::make_shape({1, 1, 2, 1}), std::vector<std::int32_t>{7, -1});
    w.add<qmr::f16>("h", qmr::make_shape({4}),
                    std::vector<qmr::f16>{qmr::to_f16(1), qmr::to_f16(-1), {0x7c00}, {0x7e00}});
    w.add<qmr::bf16>("b", qmr::make_shape({2, 2}), std::vector<qmr::bf16>{qmr::to_bf16(2), {0}, {0x8000}, {0x7f80}});
    w.add<std::int8_t>("q", qmr::make_shape({3}), std::vector<std::int8_t>{-128, 0, 127});
    w.add<std::uint8_t>("u", qmr::make_shape({5}), std::vector<std::uint8_t>{0, 1, 2, 254, 255});
    w.add("empty", "U8", qmr::make_shape({0, 3}), {});
    w.set_metadata("format", "pt");
    w.set_metadata("qmr.note", "seed");
    w.write(dir / "valid_all_dtypes.safetensors");
  }
  {  // dtypes qmr only lists and copies
    qmr::io::safetensors_writer w;
    w.add("d", "F64", qmr::make_shape({2}), bytes_of(std::vector<double>{1.0, -2.0}));
    w.add("l", "I64", qmr::make_shape({1}), bytes_of(std::vector<std::int64_t>{-3}));
    w.add("m", "BOOL", qmr::make_shape({3}), bytes_of(std::vector<std::uint8_t>{0, 1, 1}));
    w.add("e", "F8_E4M3", qmr::make_shape({2}), bytes_of(std::vector<std::uint8_t>{0x38, 0xb8}));
    w.add("s", "U16", qmr::make_shape({1, 1}), bytes_of(std::vector<std::uint16_t>{65535}));
    w.set_metadata("format", "np");
    w.write(dir / "valid_other_dtypes.safetensors");
  }
  save(dir / "valid_empty.safetensors", raw_file("{}"));
  save(dir / "valid_metadata_only.safetensors", raw_file(R"({"__metadata__":{"a":"b","":"\u00e9"}})"));
  // Unpadded header: the F32 data lands misaligned in the input buffer.
  save(dir / "valid_unpadded.safetensors", raw_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8));
  save(
      dir / "valid_zero_sized.safetensors",
      raw_file(
          R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},"b":{"dtype":"I32","shape":[3,0,2],"data_offsets":[0,0]},)"
          R"("c":{"dtype":"BF16","shape":[1],"data_offsets":[0,2]}})",
          2));

  save(
      dir / "bad_overlap.safetensors",
      raw_file(
          R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[8],"data_offsets":[4,12]}})",
          12));
  save(
      dir / "bad_hole.safetensors",
      raw_file(
          R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[8,12]}})",
          12));
  save(dir / "bad_trailing.safetensors", raw_file(R"({"a":{"dtype":"I8","shape":[4],"data_offsets":[0,4]}})", 6));
  save(dir / "bad_shape_mismatch.safetensors",
       raw_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8));
  save(dir / "bad_dtype.safetensors", raw_file(R"({"a":{"dtype":"Q4_0","shape":[2],"data_offsets":[0,2]}})", 2));
  save(dir / "bad_huge_shape.safetensors",
       raw_file(R"({"a":{"dtype":"U8","shape":[1099511627776,1099511627776,1099511627776],"data_offsets":[0,0]}})"));
  save(dir / "bad_truncated_json.safetensors", raw_file(R"({"a":{"dtype":"F16","shape":[1],"data_off)"));
  save(dir / "bad_header_length.safetensors", raw_file("{}", 0, std::uint64_t{1} << 63));
  save(dir / "bad_metadata.safetensors",
       raw_file(R"({"__metadata__":{"n":1},"a":{"dtype":"U8","shape":[],"data_offsets":[0,1]}})", 1));
  return 0;
}
