// Whole-file text reads, and writes that never leave a half-written file: write beside, then rename.
#pragma once

#include <cstdio>
#include <filesystem>
#include <string>

#include "../core/error.hpp"

namespace qmr::io {

inline void write_text_file(const std::filesystem::path& path, const std::string& text) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw error("cannot create file", in_file(tmp.string()));
  const bool written = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  if (std::fclose(f) != 0 || !written) {
    std::filesystem::remove(tmp);
    throw error("write failed (disk full?)", in_file(tmp.string()));
  }
  std::filesystem::rename(tmp, path);
}

inline std::string read_text_file(const std::filesystem::path& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw error("cannot open file", in_file(path.string()));
  std::string text;
  char buf[1 << 16];  // read in 64 KiB pieces
  std::size_t got;
  while ((got = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, got);
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) throw error("read failed", in_file(path.string()));
  return text;
}

}  // namespace qmr::io
