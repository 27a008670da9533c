// The CUDA basics every qmr kernel header shares: errors (QMR_CUDA_CHECK), device buffers, streams, a format's group shift, and the cp.async group operations.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <string>
#include <utility>

#include "../../config.hpp"
#include "../../core/error.hpp"
#include "../../quant/format.hpp"

namespace qmr::cuda {

// ---------------------------------------------------------------------------
// Errors: every CUDA call goes through QMR_CUDA_CHECK, which turns a failure into
// a qmr::error naming the call, the CUDA error and the call site.
// ---------------------------------------------------------------------------
namespace detail {
inline void check_cuda(cudaError_t err, const char* call, const char* file, int line) {
  if (err != cudaSuccess)
    throw error(std::string(call) + ": " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ") at " + file +
                ":" + std::to_string(line));
}
}  // namespace detail

#define QMR_CUDA_CHECK(call) ::qmr::cuda::detail::check_cuda((call), #call, __FILE__, __LINE__)

// One cudaMalloc'd allocation, freed by the destructor; move-only.
class device_buffer {
 public:
  device_buffer() = default;
  explicit device_buffer(std::size_t bytes) : bytes_(bytes) {
    if (bytes != 0) QMR_CUDA_CHECK(cudaMalloc(&data_, bytes));
  }
  device_buffer(const device_buffer&) = delete;
  device_buffer& operator=(const device_buffer&) = delete;
  device_buffer(device_buffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
  device_buffer& operator=(device_buffer&& other) noexcept {
    if (this != &other) {
      release();
      data_ = std::exchange(other.data_, nullptr);
      bytes_ = std::exchange(other.bytes_, 0);
    }
    return *this;
  }
  ~device_buffer() { release(); }

  void* data() const { return data_; }
  std::size_t size() const { return bytes_; }
  template <class T>
  T* as() const {
    return static_cast<T*>(data_);
  }

 private:
  void release() noexcept {
    if (data_ != nullptr) static_cast<void>(cudaFree(data_));  // a destructor cannot report; the next call will
    data_ = nullptr;
    bytes_ = 0;
  }
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
};

// A non-blocking stream, destroyed with its owner.
struct stream_owner {
  cudaStream_t s = nullptr;
  stream_owner() { QMR_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking)); }
  stream_owner(const stream_owner&) = delete;
  stream_owner& operator=(const stream_owner&) = delete;
  ~stream_owner() { static_cast<void>(cudaStreamDestroy(s)); }
};

// log2 of a format's group size, as the kernels take it: 31 (wider than any row) per channel.
inline int group_shift_of(const quant::format_spec& spec) {
  return spec.group == quant::per_channel ? 31 : qstd::countr_zero(static_cast<unsigned>(spec.group));
}

#ifdef __CUDACC__
namespace detail {
// cp.async groups (sm_80+): close the copies issued since the last commit into a
// group; wait until at most N of this thread's groups are still in flight.
QMR_DEVICE __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int N>
QMR_DEVICE __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}
}  // namespace detail
#endif  // __CUDACC__

}  // namespace qmr::cuda
