// A byte-level BPE tokenizer loaded from a Hugging Face tokenizer.json (Qwen2/Qwen2.5/Qwen3, Llama 3, GPT-2 style).
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/error.hpp"
#include "../io/json_file.hpp"
#include "../io/mapped_file.hpp"
#include "unicode.hpp"

namespace qmr::text {

// What encode() does, in Hugging Face tokenizers' order:
//   1. split the text on added tokens (those with normalized=false), longest match first;
//   2. NFC-normalize each piece in between (if the normalizer asks), split it again on the
//      added tokens with normalized=true;
//   3. pre-tokenize each remaining piece with the split pattern (below);
//   4. map each pre-token's bytes to GPT-2's byte-level alphabet and apply the BPE merges by
//      rank; 5. map the symbols to ids.
//
// Supported tokenizer.json, and nothing else (anything else is a qmr::error naming the field):
//   model           BPE; merges as "a b" strings or ["a", "b"] pairs; ignore_merges; unk_token
//                   and fuse_unk; dropout null, byte_fallback false, no subword prefix/suffix
//   normalizer      null, NFC, Sequence of NFC
//   pre_tokenizer   Sequence[Split{Regex: Qwen2 or Llama 3 pattern, Isolated}, ByteLevel{use_regex:
//                   false}] or ByteLevel{use_regex: true (GPT-2's regex) or false}; add_prefix_space false
//   decoder         ByteLevel
//   post_processor  null, ByteLevel, TemplateProcessing, Sequence of those: accepted and ignored,
//                   since encode() never adds BOS/EOS (add them yourself, or use chat.hpp)
//   truncation, padding: ignored; encode() neither truncates nor pads.
// Where qmr differs from HF on purpose:
//   - added_tokens ids are taken from the file and must agree with model.vocab (HF re-derives
//     them and only warns when they differ);
//   - ill-formed UTF-8 given to encode() is read as U+FFFD (HF only takes well-formed strings);
//   - decode() throws for an id that is not a token (HF skips it);
//   - single_word's \w approximates Unicode's Other_Alphabetic (see unicode.hpp).
// A tokenizer is immutable after loading: encode() and decode() may run concurrently.

// ---- pre-tokenizers -----------------------------------------------------------------------

// The split patterns qmr knows, each exactly as its tokenizer.json writes it. Every one is
// matched by hand below with the semantics of a backtracking regex engine (Oniguruma, which
// HF tokenizers uses): leftmost-first alternation, greedy quantifiers, and the backtracking of
// `\s+(?!\S)`, which leaves the last whitespace character of a run to the word after it.
enum class split_pattern {
  none,    // ByteLevel with use_regex false and no Split: the text is one pre-token
  gpt2,    // ByteLevel's built-in regex (GPT-2)
  qwen2,   // Qwen2, Qwen2.5, Qwen3
  llama3,  // Llama 3, 3.1, 3.2, 3.3
};

inline constexpr std::string_view gpt2_pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
inline constexpr std::string_view qwen2_pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
inline constexpr std::string_view llama3_pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// The pattern whose regex source is `regex`, if qmr knows it.
inline std::optional<split_pattern> split_pattern_from_regex(std::string_view regex) noexcept {
  if (regex == qwen2_pattern) return split_pattern::qwen2;
  if (regex == llama3_pattern) return split_pattern::llama3;
  if (regex == gpt2_pattern) return split_pattern::gpt2;
  return std::nullopt;
}

// ---- GPT-2's bytes_to_unicode -------------------------------------------------------------

namespace detail {

// Bytes that stand for themselves: printable ASCII and printable Latin-1 (not the soft hyphen).
constexpr bool byte_is_printable(unsigned b) noexcept {
  return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

// The other 68 bytes (controls, space, DEL, C1, NBSP, soft hyphen) map, in byte order, to
// U+0100.., so that every byte becomes a visible, non-space character.
inline constexpr std::array<char32_t, 256> byte_to_unicode_table = [] {
  std::array<char32_t, 256> t{};
  char32_t next = 0x100;
  for (unsigned b = 0; b < 256; ++b) t[b] = byte_is_printable(b) ? b : next++;
  return t;
}();

inline constexpr char32_t byte_level_shift_count = 68;

inline constexpr std::array<std::uint8_t, byte_level_shift_count> shifted_bytes = [] {
  std::array<std::uint8_t, byte_level_shift_count> t{};
  std::size_t n = 0;
  for (unsigned b = 0; b < 256; ++b)
    if (!byte_is_printable(b)) t[n++] = static_cast<std::uint8_t>(b);
  return t;
}();

}  // namespace detail

// The character GPT-2's byte-level alphabet uses for byte b (e.g. ' ' -> U+0120 'Ġ').
constexpr char32_t byte_to_unicode(std::uint8_t b) noexcept { return detail::byte_to_unicode_table[b]; }

// The byte that character cp stands for in the byte-level alphabet, if it is one of its 256.
constexpr std::optional<std::uint8_t> unicode_to_byte(char32_t cp) noexcept {
  if (cp < 0x100) {
    if (detail::byte_is_printable(cp)) return static_cast<std::uint8_t>(cp);
    return std::nullopt;
  }
  if (cp < 0x100 + detail::byte_level_shift_count) return detail::shifted_bytes[cp - 0x100];
  return std::nullopt;
}

// The byte-level form of some bytes: each byte replaced by its alphabet character, as UTF-8.
inline std::string byte_level_encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes) encode_utf8(byte_to_unicode(static_cast<std::uint8_t>(c)), out);
  return out;
}

// The bytes a byte-level token stands for. As HF's ByteLevel decoder does, a token with any
// character outside the alphabet (an added token such as "<|x|> " with a plain space) stands
// for its own UTF-8 bytes instead.
inline std::string byte_level_decode(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  std::size_t pos = 0;
  while (pos < token.size()) {
    const auto b = unicode_to_byte(decode_utf8(token, pos));
    if (!b) return std::string(token);
    out += static_cast<char>(*b);
  }
  return out;
}

// ---- the split matchers -------------------------------------------------------------------

namespace detail {

// One code point of the text being split, with the properties the patterns test.
struct scan_char {
  char32_t cp;
  std::uint8_t props;   // tables::prop_* bits
  std::size_t offset;   // byte offset of cp in the text
};

constexpr std::uint8_t prop_l = tables::prop_letter;
constexpr std::uint8_t prop_n = tables::prop_number;
constexpr std::uint8_t prop_s = tables::prop_space;

constexpr bool is_cr_or_lf(char32_t cp) noexcept { return cp == U'\r' || cp == U'\n'; }
// [^\s\p{L}\p{N}]
constexpr bool is_other(const scan_char& c) noexcept { return (c.props & (prop_l | prop_n | prop_s)) == 0; }

// Simple case folding of the few letters the contractions use. Unicode's folding also sends
// U+017F LATIN SMALL LETTER LONG S to 's', which Oniguruma's (?i) honours.
constexpr char32_t fold_contraction_letter(char32_t cp) noexcept {
  if (cp >= U'A' && cp <= U'Z') return cp - U'A' + U'a';
  if (cp == 0x17F) return U's';
  return cp;
}

// Length of the contraction 's|'t|'re|'ve|'m|'ll|'d at c[i] (0 when none).
inline std::size_t match_contraction(const scan_char* c, std::size_t i, std::size_t n, bool ignore_case) noexcept {
  if (c[i].cp != U'\'' || i + 1 >= n) return 0;
  const auto fold = [&](char32_t cp) { return ignore_case ? fold_contraction_letter(cp) : cp; };
  const char32_t a = fold(c[i + 1].cp);
  if (a == U's' || a == U't' || a == U'm' || a == U'd') return 2;
  if (i + 2 >= n) return 0;
  const char32_t b = fold(c[i + 2].cp);
  if ((a == U'r' && b == U'e') || (a == U'v' && b == U'e') || (a == U'l' && b == U'l')) return 3;
  return 0;
}

// End of the whitespace run starting at i.
inline std::size_t whitespace_run_end(const scan_char* c, std::size_t i, std::size_t n) noexcept {
  while (i < n && (c[i].props & prop_s)) ++i;
  return i;
}

// `\s+(?!\S)|\s+` at i, given the end e of the whitespace run at i (e > i). Before a
// non-space, `\s+` backtracks one character so that the lookahead sees a space: the run minus
// its last character, unless that would be empty, in which case `\s+` takes the run.
inline std::size_t match_trailing_whitespace(std::size_t i, std::size_t e, std::size_t n) noexcept {
  if (e == n || e - i == 1) return e;
  return e - 1;
}

// The end of the match of Qwen2's (max_digits 1) or Llama 3's (max_digits 3) pattern at i,
// or i when nothing matches there.
inline std::size_t match_qwen2_llama3(const scan_char* c, std::size_t i, std::size_t n, std::size_t max_digits) noexcept {
  // (?i:'s|'t|'re|'ve|'m|'ll|'d)
  if (const std::size_t len = match_contraction(c, i, n, true)) return i + len;
  // [^\r\n\p{L}\p{N}]?\p{L}+
  {
    std::size_t j = i;
    if (!is_cr_or_lf(c[j].cp) && !(c[j].props & (prop_l | prop_n)) && j + 1 < n && (c[j + 1].props & prop_l)) ++j;
    if (c[j].props & prop_l) {
      while (j < n && (c[j].props & prop_l)) ++j;
      return j;
    }
  }
  // \p{N} or \p{N}{1,3}
  if (c[i].props & prop_n) {
    std::size_t j = i;
    while (j < n && j - i < max_digits && (c[j].props & prop_n)) ++j;
    return j;
  }
  // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
  {
    std::size_t j = i;
    if (c[j].cp == U' ' && j + 1 < n && is_other(c[j + 1])) ++j;
    if (is_other(c[j])) {
      while (j < n && is_other(c[j])) ++j;
      while (j < n && is_cr_or_lf(c[j].cp)) ++j;
      return j;
    }
  }
  if (!(c[i].props & prop_s)) return i;
  const std::size_t e = whitespace_run_end(c, i, n);
  // \s*[\r\n]+ : `\s*` backtracks to the last CR/LF of the run, `[\r\n]+` takes just it.
  for (std::size_t k = e; k > i; --k)
    if (is_cr_or_lf(c[k - 1].cp)) return k;
  // \s+(?!\S)|\s+
  return match_trailing_whitespace(i, e, n);
}

// The end of the match of GPT-2's pattern at i, or i when nothing matches there.
inline std::size_t match_gpt2(const scan_char* c, std::size_t i, std::size_t n) noexcept {
  // 's|'t|'re|'ve|'m|'ll|'d (case-sensitive)
  if (const std::size_t len = match_contraction(c, i, n, false)) return i + len;
  // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`, in this order
  const auto optional_space_then_run = [&](auto&& in_class) -> std::size_t {
    std::size_t j = i;
    if (c[j].cp == U' ' && j + 1 < n && in_class(c[j + 1])) ++j;
    if (!in_class(c[j])) return i;
    while (j < n && in_class(c[j])) ++j;
    return j;
  };
  if (const std::size_t j = optional_space_then_run([](const scan_char& x) { return (x.props & prop_l) != 0; }); j != i) return j;
  if (const std::size_t j = optional_space_then_run([](const scan_char& x) { return (x.props & prop_n) != 0; }); j != i) return j;
  if (const std::size_t j = optional_space_then_run(is_other); j != i) return j;
  if (!(c[i].props & prop_s)) return i;
  return match_trailing_whitespace(i, whitespace_run_end(c, i, n), n);
}

// Decodes text into `chars` (reused between calls to save allocations).
inline void scan(std::string_view text, std::vector<scan_char>& chars) {
  chars.clear();
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t start = pos;
    const char32_t cp = decode_utf8(text, pos);
    chars.push_back({cp, properties(cp), start});
  }
}

}  // namespace detail

// Calls emit(piece) for each pre-token of text, in order; the pieces tile text. As a Split
// with behavior Isolated does, characters that no alternative matches form pieces of their
// own (none of the known patterns leaves any). `chars` is scratch space.
template <typename Emit>
void for_each_pre_token(split_pattern pattern, std::string_view text, std::vector<detail::scan_char>& chars, Emit&& emit) {
  if (text.empty()) return;
  if (pattern == split_pattern::none) {
    emit(text);
    return;
  }
  detail::scan(text, chars);
  const std::size_t n = chars.size();
  const auto offset = [&](std::size_t i) { return i < n ? chars[i].offset : text.size(); };
  std::size_t unmatched = n;  // start of a run of unmatched characters, n when none
  for (std::size_t i = 0; i < n;) {
    std::size_t end = i;
    switch (pattern) {
      case split_pattern::qwen2: end = detail::match_qwen2_llama3(chars.data(), i, n, 1); break;
      case split_pattern::llama3: end = detail::match_qwen2_llama3(chars.data(), i, n, 3); break;
      case split_pattern::gpt2: end = detail::match_gpt2(chars.data(), i, n); break;
      case split_pattern::none: end = n; break;
    }
    if (end == i) {
      if (unmatched == n) unmatched = i;
      ++i;
      continue;
    }
    if (unmatched != n) {
      emit(text.substr(offset(unmatched), offset(i) - offset(unmatched)));
      unmatched = n;
    }
    emit(text.substr(offset(i), offset(end) - offset(i)));
    i = end;
  }
  if (unmatched != n) emit(text.substr(offset(unmatched)));
}

// The pre-tokens of text (views into it).
inline std::vector<std::string_view> pre_tokenize(split_pattern pattern, std::string_view text) {
  std::vector<std::string_view> pieces;
  std::vector<detail::scan_char> chars;
  for_each_pre_token(pattern, text, chars, [&](std::string_view piece) { pieces.push_back(piece); });
  return pieces;
}

// ---- tokenizer ----------------------------------------------------------------------------

// One entry of tokenizer.json's added_tokens.
struct added_token {
  std::int32_t id = 0;
  std::string content;
  bool special = false;      // skipped by decode(..., skip_special = true)
  bool lstrip = false;       // a match also takes the whitespace on its left
  bool rstrip = false;       // a match also takes the whitespace on its right
  bool single_word = false;  // only matches when no word character (\w) touches it
  bool normalized = false;   // matched in the normalized text rather than the raw text
};

namespace detail {

struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

// Finds added tokens in text, leftmost match first and the longest one at that position (the
// Aho-Corasick MatchKind::LeftmostLongest that HF uses). Candidates are bucketed by first byte,
// longest first: added tokens are few, and most positions have no candidate at all.
class added_token_matcher {
 public:
  static constexpr std::size_t npos = std::string_view::npos;

  void add(std::string pattern, std::size_t token_index) {
    const auto first = static_cast<std::uint8_t>(pattern[0]);
    patterns_.push_back(std::move(pattern));
    token_index_.push_back(token_index);
    auto& bucket = by_first_byte_[first];
    bucket.push_back(patterns_.size() - 1);
    std::stable_sort(bucket.begin(), bucket.end(),
                     [&](std::size_t a, std::size_t b) { return patterns_[a].size() > patterns_[b].size(); });
  }

  bool empty() const noexcept { return patterns_.empty(); }
  const std::string& pattern(std::size_t p) const noexcept { return patterns_[p]; }
  std::size_t token_index(std::size_t p) const noexcept { return token_index_[p]; }

  // The leftmost-longest match at or after `from`, as (start, pattern); start is npos if none.
  std::pair<std::size_t, std::size_t> find(std::string_view text, std::size_t from) const noexcept {
    for (std::size_t i = from; i < text.size(); ++i) {
      for (const std::size_t p : by_first_byte_[static_cast<std::uint8_t>(text[i])]) {
        const std::string& s = patterns_[p];
        if (text.compare(i, s.size(), s) == 0) return {i, p};
      }
    }
    return {npos, 0};
  }

 private:
  std::vector<std::string> patterns_;
  std::vector<std::size_t> token_index_;  // into tokenizer::added_
  std::array<std::vector<std::size_t>, 256> by_first_byte_;
};

// One symbol of the word being merged: a doubly linked list over a vector.
struct bpe_symbol {
  std::int32_t id;
  std::int32_t prev, next;  // -1 at the ends
  bool alive;
};

// A possible merge of symbols[pos] with the symbol after it.
struct bpe_candidate {
  std::int32_t rank, pos, new_id;
};

// Lowest rank first, then leftmost, as HF's BPE::merge_all orders its heap.
struct bpe_candidate_after {
  bool operator()(const bpe_candidate& a, const bpe_candidate& b) const noexcept {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  }
};

// Buffers one encode() call reuses for every pre-token.
struct encode_scratch {
  std::vector<scan_char> chars;
  std::vector<bpe_symbol> symbols;
  std::vector<bpe_candidate> heap;
  std::string byte_level;
};

// Start of the code point that ends at byte `end` of valid UTF-8 text (end > 0).
inline std::size_t previous_char_start(std::string_view text, std::size_t end) noexcept {
  std::size_t p = end - 1;
  while (p > 0 && end - p < 4 && (static_cast<std::uint8_t>(text[p]) & 0xC0) == 0x80) --p;
  return p;
}

inline char32_t char_before(std::string_view text, std::size_t end) noexcept {
  std::size_t p = previous_char_start(text, end);
  return decode_utf8(text, p);
}

inline std::string quoted(std::string_view s) {
  constexpr std::size_t max_shown = 80;  // keeps a 100 KB bogus regex out of the message
  if (s.size() <= max_shown) return "'" + std::string(s) + "'";
  return "'" + std::string(s.substr(0, previous_char_start(s, max_shown + 1))) + "...'";
}

}  // namespace detail

class tokenizer {
 public:
  // Reads and validates the tokenizer.json at `path`.
  static tokenizer load(const std::filesystem::path& path) {
    const io::mapped_file file(path.string());
    const auto bytes = file.bytes();
    return parse(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), path.string());
  }

  // Parses and validates tokenizer.json text; `source_name` names it in error messages.
  static tokenizer parse(std::string_view json_text, std::string source_name) {
    tokenizer t;
    t.source_ = std::move(source_name);
    const nlohmann::json root = io::parse_json(json_text, t.source_);
    if (!root.is_object()) t.fail("", "expected a JSON object, got " + std::string(root.type_name()));
    t.parse_model_(root);
    t.parse_normalizer_(find_(root, "normalizer"), "normalizer");
    t.parse_pre_tokenizer_(root);
    t.parse_decoder_(root);
    t.parse_post_processor_(find_(root, "post_processor"), "post_processor");
    t.parse_added_tokens_(root);
    return t;
  }

  // The ids of text; no BOS/EOS or other special tokens are added. Ill-formed UTF-8 in text is
  // read as U+FFFD (HF takes Rust strings, which are always well-formed).
  std::vector<std::int32_t> encode(std::string_view text) const {
    std::string repaired;
    if (!is_valid_utf8(text)) {
      repaired = to_valid_utf8(text);
      text = repaired;
    }
    std::vector<std::int32_t> ids;
    ids.reserve(text.size() / 3 + 1);  // ~4 bytes per token in English text; a guess, not a bound
    detail::encode_scratch scratch;
    split_on_added_(raw_matcher_, text, [&](std::string_view gap) { encode_gap_(gap, ids, scratch); }, ids);
    return ids;
  }

  // The text of ids: the bytes of each token concatenated, and ill-formed UTF-8 (from a token
  // sequence that ends or starts inside a character) replaced by U+FFFD like Rust's
  // String::from_utf8_lossy. Throws qmr::error naming any id that is not a token.
  std::string decode(std::span<const std::int32_t> ids, bool skip_special = false) const {
    std::string bytes;
    bytes.reserve(ids.size() * 4);
    for (const std::int32_t id : ids) {
      const std::string_view token = id_to_token(id);
      if (skip_special && is_special(id)) continue;
      bytes += byte_level_decode(token);
    }
    return to_valid_utf8(bytes);
  }

  // The raw bytes of one token (possibly part of a UTF-8 character), for streaming output.
  std::string decode_token(std::int32_t id) const { return byte_level_decode(id_to_token(id)); }

  // The id of a token given in its vocabulary form (byte-level, e.g. "Ġthe"), or of an added
  // token given by its content.
  std::optional<std::int32_t> token_to_id(std::string_view token) const {
    if (const auto it = added_by_content_.find(token); it != added_by_content_.end()) return added_[it->second].id;
    if (const auto it = vocab_.find(token); it != vocab_.end()) return it->second;
    return std::nullopt;
  }

  // The vocabulary form of a token (added tokens: their content). Throws for an unknown id.
  std::string_view id_to_token(std::int32_t id) const {
    if (const auto it = added_by_id_.find(id); it != added_by_id_.end()) return added_[it->second].content;
    if (id >= 0 && static_cast<std::size_t>(id) < id_to_token_.size()) return id_to_token_[static_cast<std::size_t>(id)];
    throw error("token id " + std::to_string(id) + " is not in the vocabulary (ids are 0.." +
                    std::to_string(vocab_size_ - 1) + ")",
                in_file(source_));
  }

  // One more than the largest id (model vocabulary and added tokens). The model's embedding
  // table may be larger (padded); ids beyond this are not tokens.
  std::int32_t vocab_size() const noexcept { return vocab_size_; }

  bool is_special(std::int32_t id) const {
    const auto it = added_by_id_.find(id);
    return it != added_by_id_.end() && added_[it->second].special;
  }

  const std::vector<added_token>& added_tokens() const noexcept { return added_; }
  split_pattern pre_tokenizer_pattern() const noexcept { return pattern_; }
  bool normalizes_nfc() const noexcept { return nfc_; }
  bool ignores_merges() const noexcept { return ignore_merges_; }
  const std::string& source() const noexcept { return source_; }

 private:
  using json = nlohmann::json;

  // The merge of a pair of symbol ids.
  struct merge {
    std::int32_t rank;    // position in model.merges: lower merges first
    std::int32_t new_id;  // id of the concatenation
  };

  static std::uint64_t pair_key(std::int32_t a, std::int32_t b) noexcept {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) | static_cast<std::uint32_t>(b);
  }

  const merge* find_merge_(std::int32_t a, std::int32_t b) const noexcept {
    const auto it = merges_.find(pair_key(a, b));
    return it == merges_.end() ? nullptr : &it->second;
  }

  // ---- encoding ----

  // Splits text on the matcher's added tokens exactly as HF's AddedVocabulary::find_matches:
  // appends each token's id to ids and passes each stretch in between to on_gap.
  template <typename OnGap>
  void split_on_added_(const detail::added_token_matcher& m, std::string_view text, OnGap&& on_gap,
                       std::vector<std::int32_t>& ids) const {
    if (m.empty()) {
      if (!text.empty()) on_gap(text);
      return;
    }
    std::size_t done = 0;    // text before this is emitted
    std::size_t search = 0;  // where the next match may start
    while (true) {
      auto [start, p] = m.find(text, search);
      if (start == detail::added_token_matcher::npos) break;
      std::size_t stop = start + m.pattern(p).size();
      search = stop;
      const added_token& t = added_[m.token_index(p)];
      if (t.single_word) {
        const bool free_left = start == 0 || !is_word_character(detail::char_before(text, start));
        std::size_t q = stop;
        const bool free_right = stop == text.size() || !is_word_character(decode_utf8(text, q));
        if (!free_left || !free_right) continue;
      }
      if (t.lstrip) {
        std::size_t s = start;
        while (s > done && is_whitespace(detail::char_before(text, s))) s = detail::previous_char_start(text, s);
        start = s;
      }
      if (t.rstrip) {
        while (stop < text.size()) {
          std::size_t q = stop;
          if (!is_whitespace(decode_utf8(text, q))) break;
          stop = q;
        }
        search = stop;
      }
      if (done < start) on_gap(text.substr(done, start - done));
      ids.push_back(t.id);
      done = stop;
    }
    if (done < text.size()) on_gap(text.substr(done));
  }

  // A stretch between non-normalized added tokens: normalize, split on normalized added tokens,
  // pre-tokenize, BPE.
  void encode_gap_(std::string_view gap, std::vector<std::int32_t>& ids, detail::encode_scratch& scratch) const {
    std::string normalized;
    if (nfc_ && !is_nfc_stable(gap)) {
      normalized = nfc(gap);
      gap = normalized;
    }
    split_on_added_(
        normalized_matcher_, gap,
        [&](std::string_view piece) {
          for_each_pre_token(pattern_, piece, scratch.chars, [&](std::string_view word) { encode_word_(word, ids, scratch); });
        },
        ids);
  }

  // BPE of one pre-token, as HF's BPE::merge_word and Word::merge_all.
  void encode_word_(std::string_view word, std::vector<std::int32_t>& ids, detail::encode_scratch& scratch) const {
    if (ignore_merges_) {
      scratch.byte_level.clear();
      for (const char c : word) encode_utf8(byte_to_unicode(static_cast<std::uint8_t>(c)), scratch.byte_level);
      if (const auto it = vocab_.find(std::string_view(scratch.byte_level)); it != vocab_.end()) {
        ids.push_back(it->second);
        return;
      }
    }
    // Symbol positions are int32 (as in HF); a 2 GiB run of letters is not text.
    if (word.size() >= static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()))
      throw error("a pre-token of " + std::to_string(word.size()) + " bytes is too long to encode", in_file(source_));
    auto& symbols = scratch.symbols;
    symbols.clear();
    bool last_was_unk = false;
    for (const char c : word) {
      const std::int32_t id = byte_ids_[static_cast<std::uint8_t>(c)];
      if (id >= 0) {
        symbols.push_back({id, 0, 0, true});
        last_was_unk = false;
      } else if (unk_id_) {
        if (!(fuse_unk_ && last_was_unk)) symbols.push_back({*unk_id_, 0, 0, true});
        last_was_unk = true;
      }  // else: HF drops a byte that has no token and no unk_token to stand for it
    }
    if (symbols.size() <= 1) {
      if (!symbols.empty()) ids.push_back(symbols[0].id);
      return;
    }
    const auto n = static_cast<std::int32_t>(symbols.size());
    auto& heap = scratch.heap;
    heap.clear();
    for (std::int32_t i = 0; i < n; ++i) {
      symbols[static_cast<std::size_t>(i)].prev = i - 1;
      symbols[static_cast<std::size_t>(i)].next = i + 1 < n ? i + 1 : -1;
      if (i + 1 < n)
        if (const merge* m = find_merge_(symbols[static_cast<std::size_t>(i)].id, symbols[static_cast<std::size_t>(i) + 1].id))
          heap.push_back({m->rank, i, m->new_id});
    }
    const detail::bpe_candidate_after after;
    std::make_heap(heap.begin(), heap.end(), after);
    while (!heap.empty()) {
      std::pop_heap(heap.begin(), heap.end(), after);
      const detail::bpe_candidate top = heap.back();
      heap.pop_back();
      detail::bpe_symbol& left = symbols[static_cast<std::size_t>(top.pos)];
      if (!left.alive || left.next < 0) continue;
      detail::bpe_symbol& right = symbols[static_cast<std::size_t>(left.next)];
      // A stale candidate: one of its symbols has merged since. HF compares only the result id.
      const merge* now = find_merge_(left.id, right.id);
      if (now == nullptr || now->new_id != top.new_id) continue;
      left.id = top.new_id;
      right.alive = false;
      left.next = right.next;
      if (left.next >= 0) symbols[static_cast<std::size_t>(left.next)].prev = top.pos;
      if (left.prev >= 0)
        if (const merge* m = find_merge_(symbols[static_cast<std::size_t>(left.prev)].id, left.id)) {
          heap.push_back({m->rank, left.prev, m->new_id});
          std::push_heap(heap.begin(), heap.end(), after);
        }
      if (left.next >= 0)
        if (const merge* m = find_merge_(left.id, symbols[static_cast<std::size_t>(left.next)].id)) {
          heap.push_back({m->rank, top.pos, m->new_id});
          std::push_heap(heap.begin(), heap.end(), after);
        }
    }
    // Symbol 0 is always alive: a merge keeps its left symbol.
    for (std::int32_t i = 0; i >= 0; i = symbols[static_cast<std::size_t>(i)].next)
      ids.push_back(symbols[static_cast<std::size_t>(i)].id);
  }

  // ---- parsing ----

  [[noreturn]] void fail(const std::string& field, const std::string& message) const {
    throw error(message, in_file(source_, {}, field));
  }

  static const json* find_(const json& object, const char* key) {
    if (!object.is_object()) return nullptr;
    const auto it = object.find(key);
    return it == object.end() ? nullptr : &*it;
  }

  static bool absent_(const json* j) { return j == nullptr || j->is_null(); }

  static std::optional<std::int64_t> as_integer_(const json& j) {
    if (j.is_number_unsigned()) {
      const auto u = j.get<std::uint64_t>();
      return u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) ? std::numeric_limits<std::int64_t>::max()
                                                                                       : static_cast<std::int64_t>(u);
    }
    if (j.is_number_integer()) return j.get<std::int64_t>();
    return std::nullopt;
  }

  // The string member `key` of object (required).
  std::string string_member_(const json& object, const char* key, const std::string& path) const {
    const json* j = find_(object, key);
    if (absent_(j)) fail(path, "missing");
    if (!j->is_string()) fail(path, "expected a string, got " + std::string(j->type_name()));
    return j->get<std::string>();
  }

  // The boolean member `key` of object; `otherwise` when absent or null.
  bool bool_member_(const json& object, const char* key, const std::string& path, bool otherwise) const {
    const json* j = find_(object, key);
    if (absent_(j)) return otherwise;
    if (!j->is_boolean()) fail(path, "expected true or false, got " + std::string(j->type_name()));
    return j->get<bool>();
  }

  // The "type" of a component object.
  std::string type_of_(const json& component, const std::string& path) const {
    if (!component.is_object()) fail(path, "expected an object, got " + std::string(component.type_name()));
    return string_member_(component, "type", path + ".type");
  }

  const json& array_member_(const json& object, const char* key, const std::string& path) const {
    const json* j = find_(object, key);
    if (absent_(j)) fail(path, "missing");
    if (!j->is_array()) fail(path, "expected an array, got " + std::string(j->type_name()));
    return *j;
  }

  static std::string index_path(const std::string& path, std::size_t i) { return path + "[" + std::to_string(i) + "]"; }

  void parse_model_(const json& root) {
    const json* model = find_(root, "model");
    if (absent_(model)) fail("model", "missing");
    const std::string type = type_of_(*model, "model");
    if (type != "BPE") fail("model.type", "unsupported model type '" + type + "' (qmr supports BPE only)");

    // Options that change the algorithm: only the values of byte-level BPE are supported.
    if (!absent_(find_(*model, "dropout"))) fail("model.dropout", "BPE dropout is not supported (must be null)");
    if (bool_member_(*model, "byte_fallback", "model.byte_fallback", false))
      fail("model.byte_fallback", "byte_fallback true is not supported (byte-level BPE needs no fallback)");
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
      const json* j = find_(*model, key);
      if (!absent_(j) && !(j->is_string() && j->get_ref<const std::string&>().empty()))
        fail(std::string("model.") + key, "only null or \"\" is supported");
    }
    fuse_unk_ = bool_member_(*model, "fuse_unk", "model.fuse_unk", false);
    ignore_merges_ = bool_member_(*model, "ignore_merges", "model.ignore_merges", false);

    const json* vocab = find_(*model, "vocab");
    if (absent_(vocab)) fail("model.vocab", "missing");
    if (!vocab->is_object()) fail("model.vocab", "expected an object {token: id}, got " + std::string(vocab->type_name()));
    // Ids must be exactly 0..n-1, as every trainer writes them: it catches duplicates and
    // keeps the id -> token table dense.
    const std::size_t n = vocab->size();
    if (n >= static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max())) fail("model.vocab", "too many entries");
    id_to_token_.assign(n, {});
    std::vector<bool> seen(n, false);
    vocab_.reserve(n);
    for (const auto& [token, id_json] : vocab->items()) {
      const auto id = as_integer_(id_json);
      if (!id) fail("model.vocab", "the id of token " + detail::quoted(token) + " is not an integer");
      if (*id < 0 || static_cast<std::uint64_t>(*id) >= n)
        fail("model.vocab", "id " + std::to_string(*id) + " of token " + detail::quoted(token) + " is out of range: the " +
                                std::to_string(n) + " entries must have the ids 0.." + std::to_string(n - 1));
      const auto i = static_cast<std::size_t>(*id);
      if (seen[i])
        fail("model.vocab", "id " + std::to_string(*id) + " is given to both " + detail::quoted(id_to_token_[i]) + " and " +
                                detail::quoted(token));
      seen[i] = true;
      id_to_token_[i] = token;
      vocab_.emplace(token, static_cast<std::int32_t>(i));
    }
    vocab_size_ = static_cast<std::int32_t>(n);

    const json* unk = find_(*model, "unk_token");
    if (!absent_(unk)) {
      if (!unk->is_string()) fail("model.unk_token", "expected a string or null");
      const auto it = vocab_.find(unk->get_ref<const std::string&>());
      if (it == vocab_.end()) fail("model.unk_token", detail::quoted(unk->get_ref<const std::string&>()) + " is not in model.vocab");
      unk_id_ = it->second;
    }

    for (unsigned b = 0; b < 256; ++b) {
      const auto it = vocab_.find(encode_utf8(byte_to_unicode(static_cast<std::uint8_t>(b))));
      byte_ids_[b] = it == vocab_.end() ? -1 : it->second;
    }

    const json& merges = array_member_(*model, "merges", "model.merges");
    if (merges.size() >= static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max())) fail("model.merges", "too many merges");
    merges_.reserve(merges.size());
    for (std::size_t i = 0; i < merges.size(); ++i) {
      const json& m = merges[i];
      const std::string path = index_path("model.merges", i);
      std::string left, right;
      if (m.is_string()) {  // "left right", the format of older files (e.g. Qwen2's)
        const std::string& s = m.get_ref<const std::string&>();
        const std::size_t space = s.find(' ');
        if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
          fail(path, "expected \"left right\" with exactly one space, got " + detail::quoted(s));
        left = s.substr(0, space);
        right = s.substr(space + 1);
      } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {  // ["left", "right"]
        left = m[0].get<std::string>();
        right = m[1].get<std::string>();
      } else {
        fail(path, "expected \"left right\" or [\"left\", \"right\"], got " + m.dump().substr(0, 80));
      }
      const auto l = vocab_.find(left);
      if (l == vocab_.end()) fail(path, "the left token " + detail::quoted(left) + " is not in model.vocab");
      const auto r = vocab_.find(right);
      if (r == vocab_.end()) fail(path, "the right token " + detail::quoted(right) + " is not in model.vocab");
      const auto merged = vocab_.find(left + right);
      if (merged == vocab_.end()) fail(path, "the merged token " + detail::quoted(left + right) + " is not in model.vocab");
      // A repeated pair takes its last rank, as HF's HashMap collection does.
      merges_.insert_or_assign(pair_key(l->second, r->second), merge{static_cast<std::int32_t>(i), merged->second});
    }
  }

  void parse_normalizer_(const json* normalizer, const std::string& path) {
    if (absent_(normalizer)) return;
    const std::string type = type_of_(*normalizer, path);
    if (type == "NFC") {
      nfc_ = true;  // NFC is idempotent: any number of them is one
    } else if (type == "Sequence") {
      const std::string list_path = path + ".normalizers";
      const json& list = array_member_(*normalizer, "normalizers", list_path);
      for (std::size_t i = 0; i < list.size(); ++i) parse_normalizer_(&list[i], index_path(list_path, i));
    } else {
      fail(path + ".type", "unsupported normalizer '" + type + "' (qmr supports null, NFC and Sequence of NFC)");
    }
  }

  void parse_pre_tokenizer_(const json& root) {
    const json* pre = find_(root, "pre_tokenizer");
    if (absent_(pre)) fail("pre_tokenizer", "missing: qmr supports byte-level BPE, which needs a ByteLevel pre-tokenizer");
    const std::string type = type_of_(*pre, "pre_tokenizer");
    if (type == "ByteLevel") {
      parse_byte_level_(*pre, "pre_tokenizer", false);
      return;
    }
    if (type != "Sequence")
      fail("pre_tokenizer.type", "unsupported pre-tokenizer '" + type + "' (qmr supports ByteLevel and Sequence[Split, ByteLevel])");
    const json& list = array_member_(*pre, "pretokenizers", "pre_tokenizer.pretokenizers");
    const auto item = [](std::size_t i) { return index_path("pre_tokenizer.pretokenizers", i); };
    if (list.empty() || list.size() > 2)
      fail("pre_tokenizer.pretokenizers", "unsupported sequence of " + std::to_string(list.size()) +
                                              " pre-tokenizers (qmr supports [Split, ByteLevel] and [ByteLevel])");
    if (list.size() == 2) {
      const std::string split_type = type_of_(list[0], item(0));
      if (split_type != "Split") fail(item(0) + ".type", "unsupported pre-tokenizer '" + split_type + "' here (expected Split)");
      parse_split_(list[0], item(0));
    }
    const std::string last_type = type_of_(list.back(), item(list.size() - 1));
    if (last_type != "ByteLevel")
      fail(item(list.size() - 1) + ".type", "unsupported pre-tokenizer '" + last_type + "' here (expected ByteLevel)");
    parse_byte_level_(list.back(), item(list.size() - 1), list.size() == 2);
  }

  void parse_split_(const json& split, const std::string& path) {
    const json* pattern = find_(split, "pattern");
    if (absent_(pattern) || !pattern->is_object()) fail(path + ".pattern", "missing or not an object");
    if (const json* regex = find_(*pattern, "Regex"); !absent_(regex)) {
      if (!regex->is_string()) fail(path + ".pattern.Regex", "expected a string");
      const auto known = split_pattern_from_regex(regex->get_ref<const std::string&>());
      if (!known)
        fail(path + ".pattern.Regex", "unsupported split regex " + detail::quoted(regex->get_ref<const std::string&>()) +
                                          " (qmr knows the Qwen2, Llama 3 and GPT-2 patterns)");
      pattern_ = *known;
    } else {
      fail(path + ".pattern", "unsupported split pattern (qmr supports {\"Regex\": <a known pattern>})");
    }
    const std::string behavior = string_member_(split, "behavior", path + ".behavior");
    if (behavior != "Isolated") fail(path + ".behavior", "unsupported behavior '" + behavior + "' (qmr supports Isolated)");
    if (bool_member_(split, "invert", path + ".invert", false)) fail(path + ".invert", "invert true is not supported");
  }

  void parse_byte_level_(const json& byte_level, const std::string& path, bool after_split) {
    if (bool_member_(byte_level, "add_prefix_space", path + ".add_prefix_space", false))
      fail(path + ".add_prefix_space", "add_prefix_space true is not supported");
    const bool use_regex = bool_member_(byte_level, "use_regex", path + ".use_regex", true);  // HF's default
    if (after_split) {
      if (use_regex) fail(path + ".use_regex", "use_regex true after a Split is not supported");
    } else {
      pattern_ = use_regex ? split_pattern::gpt2 : split_pattern::none;
    }
  }

  void parse_decoder_(const json& root) {
    const json* decoder = find_(root, "decoder");
    if (absent_(decoder)) fail("decoder", "missing: qmr supports the ByteLevel decoder only");
    const std::string type = type_of_(*decoder, "decoder");
    if (type != "ByteLevel") fail("decoder.type", "unsupported decoder '" + type + "' (qmr supports ByteLevel)");
  }

  // Post-processors only add special tokens when asked to, which encode() never does; the ones
  // byte-level tokenizers use are accepted so that a file is not refused for them.
  void parse_post_processor_(const json* processor, const std::string& path) {
    if (absent_(processor)) return;
    const std::string type = type_of_(*processor, path);
    if (type == "ByteLevel" || type == "TemplateProcessing") return;
    if (type == "Sequence") {
      const std::string list_path = path + ".processors";
      const json& list = array_member_(*processor, "processors", list_path);
      for (std::size_t i = 0; i < list.size(); ++i) parse_post_processor_(&list[i], index_path(list_path, i));
      return;
    }
    fail(path + ".type", "unsupported post-processor '" + type + "' (qmr supports ByteLevel, TemplateProcessing, Sequence)");
  }

  void parse_added_tokens_(const json& root) {
    const json* list = find_(root, "added_tokens");
    if (absent_(list)) return;
    if (!list->is_array()) fail("added_tokens", "expected an array, got " + std::string(list->type_name()));
    const auto n_vocab = static_cast<std::int64_t>(id_to_token_.size());
    for (std::size_t i = 0; i < list->size(); ++i) {
      const json& entry = (*list)[i];
      const std::string path = index_path("added_tokens", i);
      if (!entry.is_object()) fail(path, "expected an object, got " + std::string(entry.type_name()));
      added_token t;
      const json* id_json = find_(entry, "id");
      if (absent_(id_json)) fail(path + ".id", "missing");
      const auto id = as_integer_(*id_json);
      if (!id || *id < 0 || *id >= std::numeric_limits<std::int32_t>::max())
        fail(path + ".id", "expected an integer in 0..2^31-2, got " + id_json->dump());
      t.id = static_cast<std::int32_t>(*id);
      t.content = string_member_(entry, "content", path + ".content");
      if (t.content.empty()) fail(path + ".content", "empty");
      t.special = bool_member_(entry, "special", path + ".special", false);
      t.lstrip = bool_member_(entry, "lstrip", path + ".lstrip", false);
      t.rstrip = bool_member_(entry, "rstrip", path + ".rstrip", false);
      t.single_word = bool_member_(entry, "single_word", path + ".single_word", false);
      t.normalized = bool_member_(entry, "normalized", path + ".normalized", !t.special);  // HF's default

      // The file's ids are trusted where HF would re-derive them, so they must agree with the vocab.
      if (*id < n_vocab && id_to_token_[static_cast<std::size_t>(*id)] != t.content)
        fail(path + ".id", "id " + std::to_string(*id) + " of added token " + detail::quoted(t.content) + " is token " +
                               detail::quoted(id_to_token_[static_cast<std::size_t>(*id)]) + " in model.vocab");
      if (const auto it = vocab_.find(t.content); it != vocab_.end() && it->second != t.id)
        fail(path + ".id", "added token " + detail::quoted(t.content) + " has id " + std::to_string(t.id) +
                               " but id " + std::to_string(it->second) + " in model.vocab");
      if (const auto it = added_by_id_.find(t.id); it != added_by_id_.end())
        fail(path + ".id", "id " + std::to_string(t.id) + " is also the id of added token " +
                               detail::quoted(added_[it->second].content));
      if (added_by_content_.find(t.content) != added_by_content_.end())
        fail(path + ".content", "added token " + detail::quoted(t.content) + " appears twice");

      const std::size_t index = added_.size();
      added_by_id_.emplace(t.id, index);
      added_by_content_.emplace(t.content, index);
      if (t.normalized)
        normalized_matcher_.add(nfc_ ? nfc(std::string_view(t.content)) : t.content, index);
      else
        raw_matcher_.add(t.content, index);
      vocab_size_ = std::max(vocab_size_, t.id + 1);
      added_.push_back(std::move(t));
    }
  }

  std::string source_;
  // Model
  std::unordered_map<std::string, std::int32_t, detail::string_hash, std::equal_to<>> vocab_;  // byte-level form -> id
  std::vector<std::string> id_to_token_;                                                      // dense, 0..n-1
  std::unordered_map<std::uint64_t, merge> merges_;                                          // pair_key -> merge
  std::array<std::int32_t, 256> byte_ids_{};  // id of each byte's one-character token, -1 if none
  std::optional<std::int32_t> unk_id_;
  bool fuse_unk_ = false;
  bool ignore_merges_ = false;
  // Pipeline
  bool nfc_ = false;
  split_pattern pattern_ = split_pattern::none;
  // Added tokens
  std::vector<added_token> added_;
  std::unordered_map<std::int32_t, std::size_t> added_by_id_;                                       // -> index in added_
  std::unordered_map<std::string, std::size_t, detail::string_hash, std::equal_to<>> added_by_content_;  // -> index in added_
  detail::added_token_matcher raw_matcher_;         // normalized == false, matched in the raw text
  detail::added_token_matcher normalized_matcher_;  // normalized == true, matched after NFC
  std::int32_t vocab_size_ = 0;
};

}  // namespace qmr::text
