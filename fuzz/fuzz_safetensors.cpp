// libFuzzer target: safetensors_file::parse must reject bad bytes with qmr::error and give in-bounds views of the rest.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <span>

#include "qmr/core/error.hpp"
#include "qmr/core/half.hpp"
#include "qmr/core/tensor.hpp"
#include "qmr/io/safetensors.hpp"

namespace {

// A broken invariant is a crash, so that libFuzzer saves the input.
void require(bool condition) {
  if (!condition) std::abort();
}

// Reads every byte, so that ASan reports any span reaching outside the input.
std::uint64_t sum_bytes(const std::byte* p, std::size_t n) {
  std::uint64_t sum = 0;
  for (std::size_t i = 0; i < n; ++i) sum += std::to_integer<std::uint64_t>(p[i]);
  return sum;
}

// Reads the first and last element through the typed pointer; misalignment must be a qmr::error.
template <class T>
std::uint64_t touch_typed(const qmr::tensor_view& v) {
  const T* p = nullptr;
  try {
    p = v.as<T>();
  } catch (const qmr::error&) {
    return 0;  // the header length (unpadded) left this tensor misaligned in the input buffer
  }
  if (v.numel() == 0) return 0;
  T first, last;
  std::memcpy(&first, &p[0], sizeof(T));
  std::memcpy(&last, &p[v.numel() - 1], sizeof(T));
  return sum_bytes(reinterpret_cast<const std::byte*>(&first), sizeof(T)) +
         sum_bytes(reinterpret_cast<const std::byte*>(&last), sizeof(T));
}

std::uint64_t touch_view(const qmr::tensor_view& v) {
  switch (v.type) {
    case qmr::dtype::f32: return touch_typed<float>(v);
    case qmr::dtype::f16: return touch_typed<qmr::f16>(v);
    case qmr::dtype::bf16: return touch_typed<qmr::bf16>(v);
    case qmr::dtype::i8: return touch_typed<std::int8_t>(v);
    case qmr::dtype::u8: return touch_typed<std::uint8_t>(v);
    case qmr::dtype::i32: return touch_typed<std::int32_t>(v);
    case qmr::dtype::packed: break;
  }
  std::abort();  // parse() never yields a packed tensor
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  std::optional<qmr::io::safetensors_file> file;
  try {
    file.emplace(qmr::io::safetensors_file::parse(bytes, "fuzz.safetensors"));
  } catch (const qmr::error&) {
    return 0;  // rejecting bad input is the expected outcome; any other exception type crashes the fuzzer
  }

  // Accepted: the tensors tile the data buffer behind the header, and every view stays inside the input.
  volatile std::uint64_t sink = 0;
  const std::uint64_t data_bytes = size - 8 - file->header_bytes();
  std::uint64_t covered = 0;
  for (const qmr::io::tensor_info& t : file->tensors()) {
    require(file->find(t.name) == &t);
    const std::span<const std::byte> raw = file->raw(t);
    require(raw.size() == t.nbytes());
    require(raw.empty() || (raw.data() >= bytes.data() && raw.data() + raw.size() <= bytes.data() + bytes.size()));
    require(t.begin == covered);
    covered = t.end;
    sink = sink + sum_bytes(raw.data(), raw.size());

    if (t.type) {
      const qmr::tensor_view v = file->view(t);
      require(v.data == raw.data());
      require(v.nbytes() == raw.size());
      require(v.is_contiguous());
      sink = sink + sum_bytes(v.data, v.nbytes()) + touch_view(v);
    } else {
      bool threw = false;
      try {
        (void)file->view(t);
      } catch (const qmr::error&) {
        threw = true;
      }
      require(threw);
    }
  }
  require(covered == data_bytes);
  for (const auto& [key, value] : file->metadata()) sink = sink + key.size() + value.size();
  return 0;
}
