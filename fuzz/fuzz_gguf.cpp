// libFuzzer target: gguf_file::parse must reject bad bytes with qmr::error, and every tensor it accepts must lie inside the input, apart from every other, and decode (where its type decodes) without reading outside it.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <span>
#include <vector>

#include "qmr/core/error.hpp"
#include "qmr/io/gguf.hpp"

namespace {

// A broken invariant is a crash, so that libFuzzer saves the input.
void require(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  std::optional<qmr::io::gguf_file> file;
  try {
    file.emplace(qmr::io::gguf_file::parse(bytes, "fuzz.gguf"));
  } catch (const qmr::error&) {
    return 0;  // rejecting bad input is the expected outcome; any other exception type crashes the fuzzer
  }
  volatile float sink = 0.0f;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
  for (const qmr::io::gguf_tensor& t : file->tensors()) {
    require(file->find_tensor(t.name) == &t);
    require(t.type != nullptr && t.nbytes == t.numel() / t.type->block_elems * t.type->block_bytes);
    require(t.data >= bytes.data() && t.data + t.nbytes <= bytes.data() + bytes.size());
    require(static_cast<std::uint64_t>(t.data - bytes.data()) == file->data_offset() + t.offset);
    ranges.emplace_back(t.offset, t.offset + t.nbytes);
    // Decode a bounded prefix: whole blocks, at most 4096 elements.
    if (qmr::io::gguf_dequantizable(*t.type)) {
      const std::uint64_t blocks = std::min<std::uint64_t>(t.numel() / t.type->block_elems, 4096 / t.type->block_elems + 1);
      std::vector<float> out(static_cast<std::size_t>(blocks * t.type->block_elems));
      qmr::io::gguf_dequantize(*t.type, t.data, blocks * t.type->block_elems, out.data());
      for (const float v : out) sink = sink + v;
    }
  }
  std::sort(ranges.begin(), ranges.end());
  for (std::size_t i = 1; i < ranges.size(); ++i) require(ranges[i - 1].second <= ranges[i].first);
  for (const auto& kv : file->metadata()) require(!kv.key.empty() && file->find(kv.key) == &kv);
  return 0;
}
