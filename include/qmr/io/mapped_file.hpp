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

// Where available_memory_bytes() reads; tests point it at a tree of their own.
struct memory_sources {
  std::string meminfo = "/proc/meminfo";          // MemAvailable
  std::string self_cgroup = "/proc/self/cgroup";  // "id:controllers:path" per hierarchy
  std::string cgroup_root = "/sys/fs/cgroup";     // v2: the unified mount; v1: its memory/ mount below it
};

namespace detail_mem {
// The unsigned number after `key` where the key starts a line of `text` (key "" for the
// text's first number), or nothing when the key or the number is not there ("max", say).
inline std::optional<std::uint64_t> number_after(const std::string& text, std::string_view key) {
  std::size_t at = 0;
  if (!key.empty()) {
    for (at = text.find(key); at != std::string::npos && at > 0 && text[at - 1] != '\n'; at = text.find(key, at + 1)) {
    }
    if (at == std::string::npos) return std::nullopt;
  }
  unsigned long long v = 0;
  if (std::sscanf(text.c_str() + at + key.size(), " %llu", &v) != 1) return std::nullopt;
  return static_cast<std::uint64_t>(v);
}
// The file at `path`, or "" when it cannot be read.
inline std::string text_or_empty(const std::string& path) {
  try {
    return read_text_file(path);
  } catch (const error&) {
    return {};
  }
}
inline std::optional<std::uint64_t> number_in(const std::string& path, std::string_view key) {
  return number_after(text_or_empty(path), key);
}
// What a memory cgroup directory leaves to fill: its limit less its usage, plus its inactive
// file cache (which the kernel reclaims before it kills); nothing where it has no limit or
// its files are not there. v2: memory.max / memory.current / inactive_file; v1:
// memory.limit_in_bytes / memory.usage_in_bytes / total_inactive_file (hierarchical), and
// hierarchical_memory_limit, the lowest limit of the group and its ancestors.
inline std::optional<std::uint64_t> cgroup_headroom(const std::string& dir, bool v1) {
  const std::string stat = text_or_empty(dir + "/memory.stat");
  auto limit = number_in(dir + (v1 ? "/memory.limit_in_bytes" : "/memory.max"), "");
  const auto used = number_in(dir + (v1 ? "/memory.usage_in_bytes" : "/memory.current"), "");
  if (v1)
    if (const auto h = number_after(stat, "hierarchical_memory_limit"); h && (!limit || *h < *limit)) limit = h;
  if (!limit || !used) return std::nullopt;
  const std::uint64_t reclaimable =
      (v1 ? number_after(stat, "total_inactive_file").value_or(number_after(stat, "inactive_file").value_or(0))
          : number_after(stat, "inactive_file").value_or(0));
  return *limit + reclaimable > *used ? *limit + reclaimable - *used : 0;
}
}  // namespace detail_mem

// Bytes this process can fill without swapping or meeting the OOM killer, as far as Linux
// tells: MemAvailable in /proc/meminfo (free memory plus the reclaimable page cache), and,
// inside memory cgroups (containers, systemd slices), the least headroom among them:
//  - cgroup v2 ("0::/path"): the group and each of its ancestors under the unified mount;
//  - cgroup v1 (a "memory" controller line): the group under the memory mount, or that
//    mount's root where the path is not visible (a container sees its own group there).
// 0 where nothing is known (not Linux, or /proc/meminfo unreadable).
inline std::uint64_t available_memory_bytes(const memory_sources& src = {}) {
#if defined(__linux__)
  const auto avail_kb = detail_mem::number_in(src.meminfo, "MemAvailable:");
  if (!avail_kb) return 0;
  std::uint64_t avail = *avail_kb * 1024;
  const auto take = [&](std::optional<std::uint64_t> headroom) {
    if (headroom) avail = std::min(avail, *headroom);
  };
  const std::string groups = detail_mem::text_or_empty(src.self_cgroup);
  for (std::size_t line = 0; line < groups.size();) {
    const std::size_t eol = std::min(groups.find('\n', line), groups.size());
    const std::string entry = groups.substr(line, eol - line);
    line = eol + 1;
    const std::size_t c1 = entry.find(':'), c2 = c1 == std::string::npos ? c1 : entry.find(':', c1 + 1);
    if (c2 == std::string::npos) continue;
    const std::string controllers = "," + entry.substr(c1 + 1, c2 - c1 - 1) + ",";
    std::string path = entry.substr(c2 + 1);
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    if (path == "/") path.clear();
    if (!path.empty() && path.front() != '/') continue;  // not a cgroup path
    if (entry.compare(0, c1, "0") == 0 && controllers == ",,") {
      // v2: the group, then its ancestors up to the mount's root (a parent's limit binds too).
      for (std::string p = path;; p = p.substr(0, p.rfind('/'))) {
        take(detail_mem::cgroup_headroom(src.cgroup_root + p, false));
        if (p.empty()) break;
      }
    } else if (controllers.find(",memory,") != std::string::npos) {
      const std::string mount = src.cgroup_root + "/memory";
      const auto own = detail_mem::cgroup_headroom(mount + path, true);
      take(own ? own : detail_mem::cgroup_headroom(mount, true));
    }
  }
  return avail;
#else
  (void)src;
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
