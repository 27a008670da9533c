// libFuzzer target: the tokenizer encodes any bytes without crashing, and for valid UTF-8 decode(encode(x)) gives back NFC(x).
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include "qmr/text/tokenizer.hpp"
#include "qmr/text/unicode.hpp"

namespace {

// The fixture tokenizer (Qwen2 pre-tokenizer, NFC, every byte in the alphabet), found
// through QMR_TOKENIZER, which the meson test sets.
const qmr::text::tokenizer& fixture() {
  static const qmr::text::tokenizer tok = [] {
    const char* path = std::getenv("QMR_TOKENIZER");
    if (!path) std::abort();
    return qmr::text::tokenizer::load(path);
  }();
  return tok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto& tok = fixture();
  const auto ids = tok.encode(text);
  for (std::int32_t id : ids)
    if (id < 0 || id >= tok.vocab_size()) std::abort();
  const std::string back = tok.decode(ids);
  // Every byte has a token, so nothing is lost: the round trip is the normalized input.
  // (Not across added tokens: text is split at them before NFC, as HF does, so a mark
  // after "<|im_end|>" cannot compose with its '>'.)
  if (qmr::text::is_valid_utf8(text) && text.find("<|") == std::string_view::npos && back != qmr::text::nfc(text))
    std::abort();
  return 0;
}
