// The qmr tool's `--device cuda`, seen from code that g++ compiles: a GPU session for generate and eval and the GPU measurements of `qmr bench`, behind plain C++ (no CUDA types); tools/cuda_backend.cu implements it with nvcc and is linked only where meson found nvcc (QMR_HAVE_CUDA_BACKEND), else every entry point throws no_cuda_message.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "qmr/core/error.hpp"
#include "qmr/core/tensor.hpp"
#include "qmr/model/generate.hpp"

namespace qmr_cli {

inline constexpr const char* no_cuda_message =
    "--device cuda: this qmr was built without CUDA (nvcc not found at configure time)";

// A model::cuda_session (model/cuda_forward.cuh): the model's weights on the GPU, one
// sequence. Its methods mirror model::session's, so that the eval templates
// (qmr::eval::score_continuation, run_lambada, run_generative_on, ...) take either.
class gpu_session {
 public:
  virtual ~gpu_session() = default;
  virtual int length() const = 0;
  virtual int capacity() const = 0;
  virtual void reset() = 0;
  virtual void truncate(int n) = 0;  // keeps the first n positions of the cache
  // Logits of every position ([n, vocab]) or only of the last ([1, vocab]), on the host;
  // valid until the next call.
  virtual qmr::matrix_view<const float> forward(std::span<const std::int32_t> tokens, bool all_logits = false) = 0;
  // model::generate of cuda_forward.cuh: greedy takes the device argmax, sampling runs on the host.
  virtual qmr::model::generation generate(std::span<const std::int32_t> prompt, const qmr::model::sampling_options& o,
                                          const qmr::model::token_callback& on_token,
                                          const std::vector<std::string>& stop_strings,
                                          const qmr::model::detokenize_fn& detokenize) = 0;
};

// model::generate's signature for a gpu_session (found by argument-dependent lookup).
inline qmr::model::generation generate(gpu_session& s, std::span<const std::int32_t> prompt,
                                       const qmr::model::sampling_options& o,
                                       const qmr::model::token_callback& on_token = {},
                                       const std::vector<std::string>& stop_strings = {},
                                       const qmr::model::detokenize_fn& detokenize = {}) {
  return s.generate(prompt, o, on_token, stop_strings, detokenize);
}

struct cuda_device_info {
  std::string name;
  int sm = 0;        // compute capability, e.g. 90
  int sm_count = 0;  // multiprocessors
};

// Which GPU GEMV `qmr bench --device cuda --kernel gemv` times: qmr::cuda::gemv (the tensor-core
// tiles, and the GEMM past 32 rows), the lane-layout kernel (--lanes: qmr::cuda::gemv_lanes,
// batches 1-8) or the split-K tensor-core kernel (--split: qmr::cuda::gemv_split, any batch in
// launches of 16 rows). 2/3/4/8-bit formats for the last two.
enum class cuda_gemv_kernel { tiles, lanes, split };

// qmr::cuda::gemv per call on one rows x cols matrix, for one batch (rows of X).
struct cuda_gemv_timing {
  int batch = 0;
  double seconds = 0;        // median per call
  double weight_bytes = 0;   // codes, scales and zeros a call reads
  int copies = 0;            // matrices rotated through
  double cublas_seconds = 0; // cuBLAS f16 GEMM on the same shape and batch; 0 when not run
  double back_to_back_seconds = 0;      // per call, 20 calls back to back with no event between them
  double back_to_back_pdl_seconds = 0;  // the same with programmatic dependent launch
  double graph_pdl_seconds = 0;         // per call, the 20 calls with PDL in one CUDA graph, replayed
  double read_ceiling_seconds = 0;      // a kernel that only reads the same bytes, timed as graph_pdl_seconds
  double read_ceiling_call_seconds = 0; // the same read kernel timed as `seconds` (events around each call)
};

// Greedy prefill and decode of a cuda_session, after a warm-up (bench/cuda_bench.cuh).
struct cuda_decode_timing {
  double prefill_seconds = 0;                // the whole prompt
  double decode_seconds = 0;                 // all decoded tokens
  std::uint64_t bytes_per_token = 0;         // model weight bytes a decode step reads
};

#ifdef QMR_HAVE_CUDA_BACKEND

// The first CUDA device; throws naming --device cuda when there is none (or no driver).
cuda_device_info cuda_device();
// A GPU session of `capacity` positions with m's weights uploaded (m may go once it returns).
// Throws for models the GPU pass does not run: activation quantization (+a8/+a4).
std::unique_ptr<gpu_session> make_cuda_session(const qmr::model::model& m, int capacity);
// The most rows of X `qmr bench --device cuda --kernel gemv` takes (the GEMV itself takes
// any batch, in launches of up to qmr::cuda::gemv_traits::max_batch rows).
int cuda_gemv_max_batch();
// Why cuda_time_gemv cannot run the cuBLAS f16 baseline (built without cuBLAS, libcublas not
// loadable); empty when it can.
std::string cuda_cublas_unavailable();
// Device-to-device copy bandwidth, bytes read plus bytes written per second.
double cuda_copy_bandwidth();
// qmr::cuda::gemv (f16 activations) of a random `format` matrix [rows, cols] per batch,
// rotating through copies of at least rotate_bytes in all, median of `runs` timed calls;
// with `cublas` (and cuda_cublas_unavailable() empty) also cuBLAS f16 on the same shape;
// `kernel` picks the GEMV timed.
std::vector<cuda_gemv_timing> cuda_time_gemv(const std::string& format, std::int64_t rows, std::int64_t cols,
                                             std::span<const int> batches, int runs, double rotate_bytes, bool cublas,
                                             cuda_gemv_kernel kernel);
// Greedy decode of decode_tokens tokens after `prompt` on a fresh cuda_session of m.
cuda_decode_timing cuda_time_decode(const qmr::model::model& m, std::span<const std::int32_t> prompt, int decode_tokens);

#else

[[noreturn]] inline void no_cuda() { throw qmr::error(no_cuda_message); }
inline cuda_device_info cuda_device() { no_cuda(); }
inline std::unique_ptr<gpu_session> make_cuda_session(const qmr::model::model&, int) { no_cuda(); }
inline int cuda_gemv_max_batch() { no_cuda(); }
inline std::string cuda_cublas_unavailable() { return "qmr was built without CUDA"; }
inline double cuda_copy_bandwidth() { no_cuda(); }
inline std::vector<cuda_gemv_timing> cuda_time_gemv(const std::string&, std::int64_t, std::int64_t, std::span<const int>,
                                                    int, double, bool, cuda_gemv_kernel) {
  no_cuda();
}
inline cuda_decode_timing cuda_time_decode(const qmr::model::model&, std::span<const std::int32_t>, int) { no_cuda(); }

#endif

// Checks `--device`'s value (CLI11 has already limited it to cpu or cuda) and, for cuda,
// that this qmr has CUDA and the machine a device: before any model is loaded.
inline void require_device(const std::string& device) {
  if (device == "cuda") static_cast<void>(cuda_device());
  else if (device != "cpu") throw qmr::error("--device '" + device + "': expected cpu or cuda");
}

}  // namespace qmr_cli
