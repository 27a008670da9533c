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

// Any malformed input (syntax, a NUL byte, a number beyond double's range) becomes a
// qmr::error naming `source` and, where known, the byte offset.
inline nlohmann::json parse_json(std::string_view text, const std::string& source) {
  // nlohmann stops at a NUL as if the input ended there.
  if (const void* nul = text.empty() ? nullptr : std::memchr(text.data(), 0, text.size()))
    throw error("not valid JSON: NUL byte",
                in_file(source, {}, {}, static_cast<std::uint64_t>(static_cast<const char*>(nul) - text.data())));
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
