// A whole file's bytes, read-only: an RAII memory mapping, or (load_mode::copy) a private copy in huge-page memory.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "../core/aligned_buffer.hpp"
#include "../core/error.hpp"
#include "text_file.hpp"

namespace qmr::io {

// How a checkpoint's bytes get into memory.
//  map:  mmap the file read-only (the default): nothing is read until used, the page cache
//        is shared between processes, and the kernel backs it with 4 KB pages.
//  copy: read the whole file into anonymous memory that asks for transparent huge pages
//        (aligned_buffer): slower to open and private to the process, but a GEMV streaming
//        its weights walks far fewer pages (llama.cpp's --no-mmap does the same copy).
enum class load_mode { map, copy };

// "map" or "copy"; anything else is an error naming the text.
inline load_mode parse_load_mode(std::string_view text) {
  if (text == "map") return load_mode::map;
  if (text == "copy") return load_mode::copy;
  throw error("load mode '" + std::string(text) + "': expected map or copy");
}

// The inverse of parse_load_mode: "map" or "copy".
inline const char* load_mode_name(load_mode mode) { return mode == load_mode::copy ? "copy" : "map"; }

namespace detail_mem {
// The unsigned number after `key` in the file at `path` (a /proc or cgroup file; key "" for
// its first number), or nothing when the file or the number is not there.
inline std::optional<std::uint64_t> number_in(const std::string& path, const char* key) {
  std::string text;
  try {
    text = read_text_file(path);
  } catch (const error&) {
    return std::nullopt;
  }
  const std::size_t at = text.find(key);
  unsigned long long v = 0;
  if (at == std::string::npos || std::sscanf(text.c_str() + at + std::strlen(key), " %llu", &v) != 1) return std::nullopt;
  return static_cast<std::uint64_t>(v);
}
}  // namespace detail_mem

// Bytes this process can fill without swapping or meeting the OOM killer, as far as Linux
// tells: MemAvailable in /proc/meminfo (free memory plus the reclaimable page cache), and,
// inside a cgroup v2 memory limit (a container), that limit less the group's usage plus its
// inactive file cache. 0 where nothing is known (not Linux, or unreadable). cgroup v1 limits
// are not read.
inline std::uint64_t available_memory_bytes() {
#if defined(__linux__)
  const auto avail_kb = detail_mem::number_in("/proc/meminfo", "MemAvailable:");
  if (!avail_kb) return 0;
  std::uint64_t avail = *avail_kb * 1024;
  // "0::/path" is the process's cgroup v2 group; its memory.max reads "max" when unlimited.
  std::string cg;
  try {
    cg = read_text_file("/proc/self/cgroup");
  } catch (const error&) {
  }
  if (const std::size_t at = cg.find("0::"); at != std::string::npos) {
    const std::size_t end = cg.find('\n', at);
    const std::string dir = "/sys/fs/cgroup" + cg.substr(at + 3, end == std::string::npos ? std::string::npos : end - at - 3);
    const auto limit = detail_mem::number_in(dir + "/memory.max", "");
    const auto used = detail_mem::number_in(dir + "/memory.current", "");
    if (limit && used) {
      const std::uint64_t reclaimable = detail_mem::number_in(dir + "/memory.stat", "inactive_file").value_or(0);
      avail = std::min(avail, *limit + reclaimable > *used ? *limit + reclaimable - *used : 0);
    }
  }
  return avail;
#else
  return 0;
#endif
}

// Throws unless `bytes` fit in `available` (0: unknown, not checked). A private copy of a
// checkpoint lives in memory the kernel cannot drop (a mapping's pages it can), so a file
// larger than that would end in the OOM killer rather than in an error.
inline void check_fits_in_memory(std::uint64_t bytes, std::uint64_t available, const std::string& file) {
  if (available > 0 && bytes > available)
    throw error("cannot read " + std::to_string(bytes) + " bytes into memory: " + std::to_string(available) +
                    " are available (load it mapped instead: --load map, io::load_mode::map)",
                in_file(file));
}

class mapped_file {
 public:
  mapped_file() = default;

  // Maps `path` read-only (MAP_PRIVATE: the file is never written through the map), or with
  // load_mode::copy reads it into an owned buffer.
  explicit mapped_file(std::string path, load_mode mode = load_mode::map) : path_(std::move(path)) {
    const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw error(std::string("cannot open: ") + std::strerror(errno), in_file(path_));
    const fd_closer closer{fd};  // on every exit: a mapping keeps the file alive without it
    struct stat st {};
    if (::fstat(fd, &st) != 0) throw error(std::string("cannot stat: ") + std::strerror(errno), in_file(path_));
    if (!S_ISREG(st.st_mode)) throw error("not a regular file", in_file(path_));
    size_ = static_cast<std::size_t>(st.st_size);
    if (size_ > 0 && mode == load_mode::copy) {
      check_fits_in_memory(size_, available_memory_bytes(), path_);
      try {
        copy_ = aligned_buffer<std::byte>(size_);
      } catch (const std::bad_alloc&) {
        throw error("cannot allocate " + std::to_string(size_) + " bytes to read the file into", in_file(path_));
      }
      std::size_t done = 0;
      while (done < size_) {
        const ::ssize_t n = ::pread(fd, copy_.data() + done, size_ - done, static_cast<::off_t>(done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0)
          throw error(n == 0 ? "file ended early, " + std::to_string(size_) + " bytes expected (truncated while read?)"
                             : std::string("cannot read: ") + std::strerror(errno),
                      in_file(path_, {}, {}, done));
        done += static_cast<std::size_t>(n);
      }
      data_ = copy_.data();
    } else if (size_ > 0) {
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) throw error(std::string("cannot mmap: ") + std::strerror(errno), in_file(path_));
      data_ = static_cast<const std::byte*>(p);
    }
  }

  mapped_file(const mapped_file&) = delete;
  mapped_file& operator=(const mapped_file&) = delete;
  mapped_file(mapped_file&& o) noexcept
      : path_(std::move(o.path_)),
        copy_(std::move(o.copy_)),
        data_(std::exchange(o.data_, nullptr)),
        size_(std::exchange(o.size_, 0)) {}
  mapped_file& operator=(mapped_file&& o) noexcept {
    if (this != &o) {
      unmap();
      path_ = std::move(o.path_);
      copy_ = std::move(o.copy_);
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  ~mapped_file() { unmap(); }

  const std::string& path() const noexcept { return path_; }
  std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }
  std::size_t size() const noexcept { return size_; }
  // Whether the bytes are a private copy (load_mode::copy) rather than a mapping.
  bool copied() const noexcept { return !copy_.empty(); }

 private:
  struct fd_closer {  // closes a descriptor when it goes out of scope
    int fd;
    ~fd_closer() { ::close(fd); }
  };

  void unmap() noexcept {
    if (data_ && copy_.empty()) ::munmap(const_cast<std::byte*>(data_), size_);
    copy_ = aligned_buffer<std::byte>();
    data_ = nullptr;
    size_ = 0;
  }

  std::string path_;
  aligned_buffer<std::byte> copy_;  // [size_] the file's bytes under load_mode::copy, else empty
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace qmr::io
