// Parsing JSON text and files (config.json, index files, tokenizer.json) into nlohmann::json with qmr errors that name the file and byte.
#pragma once

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

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

// Calls fn(object, "path:line") for each non-blank line of a JSON Lines file.
template <class F>
void for_each_jsonl(const std::filesystem::path& path, F&& fn) {
  std::ifstream in(path);
  if (!in) throw error("cannot open", in_file(path.string()));
  std::string line;
  for (std::uint64_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path.string() + ":" + std::to_string(n);
    fn(parse_json(line, where), where);
  }
}

}  // namespace qmr::io
