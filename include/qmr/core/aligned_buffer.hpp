// An owning, zero-initialized, over-aligned array: the storage behind quantized tensors and scratch space.
#pragma once

#include <cstddef>
#include <cstring>
#include <new>
#include <span>
#include <type_traits>
#include <utility>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace qmr {

// 64 bytes: a cache line, and the widest SIMD load (AVX-512) qmr issues.
inline constexpr std::size_t buffer_alignment = 64;

// Buffers of at least huge_page_min_bytes (weight matrices, their repacked copies,
// the benchmarks' bandwidth probes) start on a 2 MB boundary and, on Linux, ask for
// transparent huge pages over their whole 2 MB pages (madvise; a no-op where THP is
// off, and systems in "always" mode give them anyway). The tail past the last whole
// huge page keeps 4 KB pages, so no buffer holds more than its own bytes of memory;
// the alignment costs address space only (the skipped head is never touched). A GEMV
// streams its weights once per token: with 4 KB pages every 4 KB of weights is a TLB
// miss and a page walk in the middle of the stream. The threshold was 8 MB until
// stop 42: w3g128 4096 x 4096 (6.3 MB of codes) then streamed at 66-67% of the read
// bandwidth on one thread against 78% for 8192 x 8192, and at 71-76% from 2 MB pages
// (bench/results/cpu_gemv_bars_20261206_s42.txt).
inline constexpr std::size_t huge_page_bytes = std::size_t{2} << 20;
inline constexpr std::size_t huge_page_min_bytes = huge_page_bytes;

// The alignment of an allocation of `bytes` (see huge_page_min_bytes).
inline std::size_t buffer_align_for(std::size_t bytes) {
  return bytes >= huge_page_min_bytes ? huge_page_bytes : buffer_alignment;
}
// Advice only: a failure (THP compiled out, an old kernel) leaves ordinary pages.
// p is 2 MB-aligned when bytes >= huge_page_min_bytes (buffer_align_for).
inline void advise_huge_pages([[maybe_unused]] void* p, [[maybe_unused]] std::size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  const std::size_t whole = bytes / huge_page_bytes * huge_page_bytes;
  if (whole > 0) (void)::madvise(p, whole, MADV_HUGEPAGE);
#endif
}

template <class T>
class aligned_buffer {
  static_assert(std::is_trivially_copyable_v<T>, "aligned_buffer holds plain data only");

 public:
  aligned_buffer() = default;
  explicit aligned_buffer(std::size_t size) : size_(size) {
    if (size == 0) return;
    const std::size_t bytes = alloc_bytes(size);
    data_ = static_cast<T*>(::operator new(bytes, std::align_val_t{buffer_align_for(bytes)}));
    advise_huge_pages(data_, bytes);  // before the first touch, so that the faults map huge pages
    std::memset(static_cast<void*>(data_), 0, bytes);
  }
  aligned_buffer(const aligned_buffer& other) : aligned_buffer(other.size_) {
    if (size_) std::memcpy(static_cast<void*>(data_), other.data_, size_ * sizeof(T));
  }
  aligned_buffer(aligned_buffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  aligned_buffer& operator=(aligned_buffer other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    return *this;
  }
  ~aligned_buffer() {
    if (data_) ::operator delete(static_cast<void*>(data_), std::align_val_t{buffer_align_for(alloc_bytes(size_))});
  }

  T* data() noexcept { return data_; }
  const T* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  T& operator[](std::size_t i) noexcept { return data_[i]; }
  const T& operator[](std::size_t i) const noexcept { return data_[i]; }
  T* begin() noexcept { return data_; }
  T* end() noexcept { return data_ + size_; }
  const T* begin() const noexcept { return data_; }
  const T* end() const noexcept { return data_ + size_; }
  std::span<T> span() noexcept { return {data_, size_}; }
  std::span<const T> span() const noexcept { return {data_, size_}; }

 private:
  // The allocation's size for `size` elements: rounded up so that SIMD code may read whole
  // vectors at the tail (operator delete's alignment follows it, as operator new's did).
  static std::size_t alloc_bytes(std::size_t size) noexcept {
    return (size * sizeof(T) + buffer_alignment - 1) / buffer_alignment * buffer_alignment;
  }

  T* data_ = nullptr;
  std::size_t size_ = 0;  // elements, not bytes
};

}  // namespace qmr
