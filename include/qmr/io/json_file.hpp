// Parsing JSON text and files (config.json, index files, tokenizer.json) into nlohmann::json with qmr errors that name the file and byte.
#pragma once

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/error.hpp"
#include "mapped_file.hpp"

namespace qmr::io {

// Arrays and objects nested deeper than this are an error. nlohmann parses any depth, but its
// dump() recurses once per level, and messages quote values (config.json's "got [...]", a plan
// rule): a 400 KB file of 200000 '[' overflowed the stack there. Real files nest a few levels.
inline constexpr int max_json_depth = 512;

// Throws when `text` nests arrays/objects deeper than max_json_depth, naming the byte where it
// does. Brackets inside strings do not count; malformed text is left to the parser.
inline void check_json_depth(std::string_view text, const std::string& source) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    if (in_string) {
      if (escaped) escaped = false;
      else if (ch == '\\') escaped = true;
      else if (ch == '"') in_string = false;
    } else if (ch == '"') {
      in_string = true;
    } else if (ch == '[' || ch == '{') {
      if (++depth > max_json_depth)
        throw error("JSON nests deeper than " + std::to_string(max_json_depth) + " levels, qmr's limit",
                    in_file(source, {}, {}, i));
    } else if (ch == ']' || ch == '}') {
      --depth;
    }
  }
}

// Any malformed input (syntax, a NUL byte, a number beyond double's range, nesting deeper than
// max_json_depth) becomes a qmr::error naming `source` and, where known, the byte offset.
inline nlohmann::json parse_json(std::string_view text, const std::string& source) {
  // nlohmann stops at a NUL as if the input ended there.
  if (const void* nul = text.empty() ? nullptr : std::memchr(text.data(), 0, text.size()))
    throw error("not valid JSON: NUL byte",
                in_file(source, {}, {}, static_cast<std::uint64_t>(static_cast<const char*>(nul) - text.data())));
  check_json_depth(text, source);
  try {
    return nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    throw error(std::string("not valid JSON: ") + e.what(), in_file(source, {}, {}, e.byte ? e.byte - 1 : 0));
  } catch (const nlohmann::json::exception& e) {
    throw error(std::string("not valid JSON: ") + e.what(), in_file(source));
  }
}

inline nlohmann::json read_json_file(const std::filesystem::path& path) {
  const mapped_file map(path.string());
  return parse_json({reinterpret_cast<const char*>(map.bytes().data()), map.size()}, path.string());
}

// What a reader does with a malformed line or entry (bad JSON, a missing or mistyped field):
// by default it throws a qmr::error naming "file:line"; with `skip` set it drops the line,
// counts it and keeps its error.
struct malformed_lines {
  bool skip = false;
  std::size_t skipped = 0;
  std::vector<std::string> errors;  // the first `max_errors` skipped lines' errors, "file:line: ..."
  std::size_t max_errors = 20;

  // Rethrows unless skipping; a nlohmann type error becomes a qmr::error naming `where`.
  void handle(const std::exception& e, const std::string& where) {
    const auto* qe = dynamic_cast<const error*>(&e);
    if (!skip) {
      if (qe) throw *qe;
      throw error(e.what(), in_file(where));
    }
    ++skipped;
    if (errors.size() < max_errors) errors.push_back(qe ? std::string(e.what()) : where + ": " + e.what());
  }
};

// Throws when a dataset reader found no items in `path`: an empty (or wholly skipped) file would
// otherwise be scored as 0 correct of 0, or a NaN perplexity, as if the evaluation had run.
inline void require_items(std::size_t items, const std::filesystem::path& path, const malformed_lines* malformed) {
  if (items > 0) return;
  if (malformed && malformed->skipped > 0)
    throw error("no valid items (" + std::to_string(malformed->skipped) + " malformed ones skipped)", in_file(path.string()));
  throw error("no items (an empty file?)", in_file(path.string()));
}

// Calls fn(object, "path:line") for each non-blank line of a JSON Lines file. A line that is
// not JSON, or for which fn throws, is an error naming its line, or skipped under `malformed`.
template <class F>
void for_each_jsonl(const std::filesystem::path& path, F&& fn, malformed_lines* malformed = nullptr) {
  std::ifstream in(path);
  if (!in) throw error("cannot open", in_file(path.string()));
  std::string line;
  for (std::uint64_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path.string() + ":" + std::to_string(n);
    try {
      fn(parse_json(line, where), where);
    } catch (const error& e) {
      if (!malformed) throw;
      malformed->handle(e, where);
    } catch (const nlohmann::json::exception& e) {
      if (!malformed) throw error(e.what(), in_file(where));
      malformed->handle(e, where);
    }
  }
  if (in.bad()) throw error("read failed", in_file(path.string()));
}

}  // namespace qmr::io
