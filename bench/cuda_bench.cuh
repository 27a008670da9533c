// GPU measurement shared by bench/cuda_gemv.cu, bench/cuda_decode.cu and `qmr bench --device cuda` (tools/cuda_backend.cu): GPU time per call queued behind a hold kernel, the device's copy bandwidth, qmr::cuda::gemv and cuBLAS f16 on rotated DRAM-resident weights, and greedy decode of a cuda_session.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <cuda_runtime.h>
#ifdef QMR_HAVE_CUBLAS
#include <cublas_v2.h>
#endif

#include "median.hpp"
#include "qmr/core/half.hpp"
#include "qmr/kernels/cuda/gemv.cuh"
#include "qmr/kernels/cuda/gemv_split.cuh"
#include "qmr/quant/qtensor.hpp"

namespace qmr::bench::gpu {

namespace qc = ::qmr::cuda;

#ifdef QMR_HAVE_CUBLAS
#define QMR_CUBLAS_CHECK(call)                                                                        \
  do {                                                                                                \
    const cublasStatus_t status_ = (call);                                                            \
    if (status_ != CUBLAS_STATUS_SUCCESS)                                                             \
      throw ::qmr::error(std::string(#call) + ": cuBLAS status " + std::to_string(static_cast<int>(status_)) + \
                         " at " + __FILE__ + ":" + std::to_string(__LINE__));                         \
  } while (0)
#endif

// Holds the stream for `ns` nanoseconds of GPU time, so that the host can queue
// the timed calls behind it: without it, each call's events also measure the
// host's launch latency whenever a call is shorter than its launch (~13 us
// floors on small shapes in the first H200 runs), not the GPU's time.
// (Kernels here are templates so that several translation units may include them.)
template <class Nanoseconds>
__global__ void hold_stream(Nanoseconds ns) {
  long long start = 0, now = 0;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
  do {
    __nanosleep(1000);
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
  } while (now - start < ns);
}

// Calls per batch of time_back_to_back in the benchmarks: a decode step runs ~170
// kernels in a row, so 20 is well inside one.
inline constexpr int back_to_back_calls = 20;

// Median seconds per call over `runs` (at least 2) timed units of `batch` calls: the host
// queues enqueue(i), i = 0, 1, ..., between two events each, all behind hold_stream so that
// the GPU runs them back to back whatever the host's launch speed.
template <class F>
double time_units(int runs, int batch, cudaStream_t stream, F&& enqueue) {
  const int n = std::max(runs, 2);
  std::vector<cudaEvent_t> events;
  const auto destroy = [&]() {
    for (cudaEvent_t e : events) static_cast<void>(cudaEventDestroy(e));
  };
  try {
    for (int i = 0; i < 2 * n; ++i) {
      cudaEvent_t e = nullptr;
      QMR_CUDA_CHECK(cudaEventCreate(&e));
      events.push_back(e);
    }
    // 20 us of hold per call: longer than the host needs to queue a call and its events.
    hold_stream<<<1, 1, 0, stream>>>(20000ll * n * batch + 1000000ll);
    QMR_CUDA_CHECK(cudaGetLastError());
    for (int i = 0; i < n; ++i) {
      QMR_CUDA_CHECK(cudaEventRecord(events[static_cast<std::size_t>(2 * i)], stream));
      enqueue(i);
      QMR_CUDA_CHECK(cudaEventRecord(events[static_cast<std::size_t>(2 * i + 1)], stream));
    }
    QMR_CUDA_CHECK(cudaStreamSynchronize(stream));
    std::vector<double> seconds(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
      float ms = 0.0f;
      QMR_CUDA_CHECK(cudaEventElapsedTime(&ms, events[static_cast<std::size_t>(2 * i)], events[static_cast<std::size_t>(2 * i + 1)]));
      seconds[static_cast<std::size_t>(i)] = 1e-3 * ms / batch;
    }
    destroy();
    return median(seconds);
  } catch (...) {
    destroy();
    throw;
  }
}

// Seconds per call of `batch` calls queued back to back with no event between them,
// as a decode step's GEMVs run: events around each batch, median over `runs`
// batches, calls rotating through `copies` as in time_median. Per-call events (time_median)
// also time the gap a launch leaves after an event; here consecutive calls may
// overlap it, and with PDL (programmatic dependent launch) overlap the next call's
// first weight loads with the previous call's last blocks.
template <class F>
double time_back_to_back(int copies, int runs, int batch, cudaStream_t stream, F&& call) {
  for (int i = 0; i < copies; ++i) call(i);
  int next = 0;
  return time_units(runs, batch, stream, [&](int) {
    for (int j = 0; j < batch; ++j) {
      call(next);
      next = next + 1 == copies ? 0 : next + 1;
    }
  });
}

// Seconds per call of `batch` calls captured in one CUDA graph and replayed, as the
// decode step runs its kernels (cuda_forward captures each step): events around each
// replay, median over `runs` replays. One graph per starting copy (up to
// graph_variants of them, replayed in turn), so that consecutive replays read
// different copies and every call reads DRAM. Launches with the PDL attribute become
// programmatic edges of the graph, so `call(i)` decides PDL as on a stream.
inline constexpr int graph_variants = 8;
template <class F>
double time_graph(int copies, int runs, int batch, cudaStream_t stream, F&& call) {
  const int variants = std::min(copies, graph_variants);
  std::vector<cudaGraphExec_t> execs;
  const auto destroy = [&]() {
    for (cudaGraphExec_t e : execs) static_cast<void>(cudaGraphExecDestroy(e));
  };
  try {
    int next = 0;
    for (int v = 0; v < variants; ++v) {
      cudaGraph_t g = nullptr;
      QMR_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
      try {
        for (int j = 0; j < batch; ++j) {
          call(next);
          next = next + 1 == copies ? 0 : next + 1;
        }
      } catch (...) {
        static_cast<void>(cudaStreamEndCapture(stream, &g));
        if (g != nullptr) static_cast<void>(cudaGraphDestroy(g));
        throw;
      }
      QMR_CUDA_CHECK(cudaStreamEndCapture(stream, &g));
      cudaGraphExec_t exec = nullptr;
      const cudaError_t e = cudaGraphInstantiate(&exec, g, 0);
      static_cast<void>(cudaGraphDestroy(g));
      QMR_CUDA_CHECK(e);
      execs.push_back(exec);
    }
    for (cudaGraphExec_t e : execs) QMR_CUDA_CHECK(cudaGraphLaunch(e, stream));  // upload and warm up
    QMR_CUDA_CHECK(cudaStreamSynchronize(stream));
    const double s = time_units(runs, batch, stream, [&](int i) {
      QMR_CUDA_CHECK(cudaGraphLaunch(execs[static_cast<std::size_t>(i % variants)], stream));
    });
    destroy();
    return s;
  } catch (...) {
    destroy();
    throw;
  }
}

// The read ceiling of a GEMV: a kernel that only streams the same bytes (16-byte
// loads that skip L1, read_unroll of them in flight per thread, XOR-folded so the
// loads stay live), on the lane kernel's grid (gemv_lanes_traits: two 512-thread blocks per SM), with
// PDL. Timed like the GEMV, it is what any kernel reading those bytes could reach
// at that size, ramp-up and tail included: the GEMV's fraction of it separates the
// kernel's own cost from the memory system's.
inline constexpr int read_unroll = 4;  // 4 x 16 B per thread in flight: 64 KB per 1024-thread SM
template <class Word>
__global__ void __launch_bounds__(qc::gemv_lanes_traits::block_threads) read_stream(const Word* __restrict__ p, std::size_t n, unsigned* sink) {
  qc::detail::pdl_launch_dependents();
  qc::detail::pdl_wait();
  unsigned acc = 0;
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  for (; i + (read_unroll - 1) * stride < n; i += read_unroll * stride) {
    uint4 v[read_unroll];
#pragma unroll
    for (int u = 0; u < read_unroll; ++u) v[u] = qc::detail::lanes_ld16(p + i + u * stride);
#pragma unroll
    for (int u = 0; u < read_unroll; ++u) acc ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
  }
  for (; i < n; i += stride) {
    const uint4 v = qc::detail::lanes_ld16(p + i);
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (acc == 0x9e3779b9u) *sink = acc;  // practically never true: keeps the loads
}
inline void read_bytes(const void* p, std::size_t bytes, unsigned* sink, int sm_count, cudaStream_t stream, bool pdl) {
  using lt = qc::gemv_lanes_traits;
  qc::launch_kernel(pdl, read_stream<uint4>, dim3(static_cast<unsigned>(lt::blocks_per_sm * sm_count)),
                    dim3(lt::block_threads), 0, stream, static_cast<const uint4*>(p), bytes / 16, sink);
}

// Seconds per call: CUDA events around each call, median over `runs` calls that
// rotate through `copies` (after one untimed pass over all of them, so each timed
// call reads a matrix last touched `copies` calls earlier: from DRAM once the
// copies exceed L2). The timed calls are queued behind hold_stream and so run
// back to back on the GPU, as in a decode step.
template <class F>
double time_median(int copies, int runs, cudaStream_t stream, F&& call) {
  return time_back_to_back(copies, runs, 1, stream, std::forward<F>(call));
}

// Device-to-device copy bandwidth, counting bytes read plus bytes written: median
// of 20 copies of 1 GiB (far above the 50-60 MB L2 of current parts).
inline double copy_bandwidth(cudaStream_t stream) {
  const std::size_t bytes = std::size_t{1} << 30;
  qc::device_buffer src(bytes), dst(bytes);
  QMR_CUDA_CHECK(cudaMemsetAsync(src.data(), 1, bytes, stream));
  const double s = time_median(1, 20, stream, [&](int) {
    QMR_CUDA_CHECK(cudaMemcpyAsync(dst.data(), src.data(), bytes, cudaMemcpyDeviceToDevice, stream));
  });
  return 2.0 * static_cast<double>(bytes) / s;
}

// Random f16 in [-1, 1) from a hash of the index.
template <class T>
__global__ void fill_random(T* p, std::size_t n, std::uint32_t seed) {
  static_assert(qstd::is_same_v<T, f16>, "fill_random: f16 only");
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    std::uint32_t h = static_cast<std::uint32_t>(i) * 2654435761u ^ seed;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    p[i].bits = __half_as_ushort(__float2half_rn(static_cast<float>(h >> 8) * (2.0f / 16777216.0f) - 1.0f));
  }
}

inline void fill_f16(f16* p, std::size_t n, std::uint32_t seed, cudaStream_t stream) {
  fill_random<<<1024, 256, 0, stream>>>(p, n, seed);
  QMR_CUDA_CHECK(cudaGetLastError());
}

// Copies of a matrix of bytes_each to rotate through so that they total rotate_bytes (at least 2).
inline int copies_for(double bytes_each, double rotate_bytes) {
  return std::max(2, static_cast<int>(rotate_bytes / bytes_each + 0.999));
}

// A [rows, cols] matrix of `spec` with random codes, scales in [0.001, 0.011) and zeros,
// from a generator seeded by the bit-width and the rows.
inline quant::qtensor random_qtensor(const quant::format_spec& spec, std::int64_t rows, std::int64_t cols) {
  quant::qtensor q(spec, rows, cols);
  std::uint64_t state = 0x9e3779b97f4a7c15ull * static_cast<std::uint64_t>(spec.bits) + static_cast<std::uint64_t>(rows);
  const auto next = [&]() {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<std::uint32_t>(state >> 32);
  };
  for (std::size_t i = 0; i < q.codes().size(); ++i) q.codes().data()[i] = static_cast<std::uint8_t>(next() >> 24);
  for (std::size_t i = 0; i < q.scales().size(); ++i)
    q.scales().data()[i] = to_f16(0.001f + static_cast<float>(next() >> 8) * (0.01f / 16777216.0f));
  for (std::size_t i = 0; i < q.zeros().size(); ++i) q.zeros().data()[i] = static_cast<std::uint8_t>(next() >> 24);
  return q;
}

// The activations and outputs of a GEMV timing: X f16 [batch, cols], Y f16 [batch, rows],
// random X (seed 99, as the first cuda_gemv runs).
struct gemv_operands {
  qc::device_buffer x, y;
  qc::device_buffer sink{16};  // read_stream's never-written output
  gemv_operands(int max_batch, std::int64_t max_cols, std::int64_t max_rows, cudaStream_t stream)
      : x(static_cast<std::size_t>(max_batch * max_cols) * sizeof(f16)),
        y(static_cast<std::size_t>(max_batch * std::max(max_rows, max_cols)) * sizeof(float)) {
    fill_f16(x.as<f16>(), static_cast<std::size_t>(max_batch * max_cols), 99, stream);
  }
};

struct gemv_timing {
  int m = 0;                 // rows of X
  double seconds = 0;        // median per call
  double weight_bytes = 0;   // W's bytes a call reads
  int copies = 0;
  int threads_per_row = 0;   // qmr GEMV only
  double b2b_seconds = 0;      // per call, back to back (time_back_to_back), when asked for
  double b2b_pdl_seconds = 0;  // the same with programmatic dependent launch
  double graph_pdl_seconds = 0;  // per call, back_to_back calls with PDL in one CUDA graph (time_graph)
  double read_ceiling_seconds = 0;  // the read ceiling of the same bytes, timed like graph_pdl_seconds
  double read_ceiling_call_seconds = 0;  // the read ceiling timed like `seconds` (events around each call)
};

// The timings of one GEMV at one batch: per call (call(i, false) on copy i), and with
// back_to_back > 0 that many calls back to back, plain and with PDL, in a CUDA graph with
// PDL, and the read ceiling (read_copy(i): a kernel reading copy i's weight bytes).
template <class Call, class ReadCopy>
gemv_timing time_gemv_modes(int m, double bytes, int copies, int runs, int back_to_back, cudaStream_t stream, Call&& call,
                            ReadCopy&& read_copy) {
  gemv_timing t{m, time_median(copies, runs, stream, [&](int i) { call(i, false); }), bytes, copies, 0};
  if (back_to_back > 0) {
    t.b2b_seconds = time_back_to_back(copies, runs, back_to_back, stream, [&](int i) { call(i, false); });
    t.b2b_pdl_seconds = time_back_to_back(copies, runs, back_to_back, stream, [&](int i) { call(i, true); });
    t.graph_pdl_seconds = time_graph(copies, runs, back_to_back, stream, [&](int i) { call(i, true); });
    t.read_ceiling_seconds = time_graph(copies, runs, back_to_back, stream, read_copy);
    t.read_ceiling_call_seconds = time_median(copies, runs, stream, read_copy);
  }
  return t;
}

// qmr::cuda::gemv, y = x · Wᵀ in f16, for each batch in `batches` (any positive batch: past
// gemv_traits::max_batch the GEMV runs in chunks). lanes: the lane-layout kernel
// (qmr::cuda::gemv_lanes, batches 1..8, 2/3/4/8-bit formats) instead of the
// tensor-core one; the weights are then uploaded in both layouts, but a call reads one.
// back_to_back > 0: also per-call times of that many calls back to back, plain and with
// PDL, in a CUDA graph with PDL, and the read ceiling of the same bytes (read_stream).
inline std::vector<gemv_timing> time_qmr_gemv(const quant::format_spec& spec, std::int64_t rows, std::int64_t cols,
                                              std::span<const int> batches, int runs, double rotate_bytes,
                                              const gemv_operands& io, cudaStream_t stream, bool lanes = false,
                                              int back_to_back = 0) {
  const quant::qtensor q = random_qtensor(spec, rows, cols);
  std::vector<qc::device_qtensor> w;
  w.push_back(qc::upload(q.view(), stream, lanes));
  const double bytes = static_cast<double>(w[0].weight_bytes());
  const int copies =
      copies_for(static_cast<double>(w[0].device_bytes()), rotate_bytes);
  for (int i = 1; i < copies; ++i) w.push_back(qc::clone(w[0], stream));
  std::vector<gemv_timing> out;
  for (const int m : batches) {
    const auto call = [&](int i, bool pdl) {
      if (lanes) qc::gemv_lanes(w[static_cast<std::size_t>(i)], io.x.as<const f16>(), io.y.as<f16>(), m, stream, pdl);
      else qc::gemv(w[static_cast<std::size_t>(i)], io.x.as<const f16>(), io.y.as<f16>(), m, stream, pdl);
    };
    gemv_timing t = time_gemv_modes(m, bytes, copies, runs, back_to_back, stream, call, [&](int i) {
      const qc::device_qtensor& wi = w[static_cast<std::size_t>(i)];
      const qc::device_buffer& buf = lanes ? wi.lanes : wi.blocks;
      read_bytes(buf.data(), std::min(static_cast<std::size_t>(bytes), buf.size()), io.sink.as<unsigned>(), wi.sm_count,
                 stream, true);
    });
    t.threads_per_row = lanes ? 0 : w[0].threads_per_row;
    out.push_back(t);
  }
  return out;
}

// qmr::cuda::gemv_split (the split-K tensor-core GEMV, gemv_split.cuh), timed as
// time_qmr_gemv times the others (time_gemv_modes). The rotated copies share the
// first one's slice-sum workspace (clone), as a model's matrices on one stream can.
inline std::vector<gemv_timing> time_split_gemv(const quant::format_spec& spec, std::int64_t rows, std::int64_t cols,
                                                std::span<const int> batches, int runs, double rotate_bytes,
                                                const gemv_operands& io, cudaStream_t stream, int back_to_back = 0) {
  const quant::qtensor q = random_qtensor(spec, rows, cols);
  std::vector<qc::device_split> w;
  w.push_back(qc::upload_split(q.view(), stream));
  const double bytes = static_cast<double>(w[0].weight_bytes());
  const int copies = copies_for(static_cast<double>(w[0].data.size()), rotate_bytes);
  for (int i = 1; i < copies; ++i) w.push_back(qc::clone(w[0], stream));
  QMR_CUDA_CHECK(cudaStreamSynchronize(stream));
  std::vector<gemv_timing> out;
  for (const int m : batches) {
    const auto call = [&](int i, bool pdl) {
      qc::gemv_split(w[static_cast<std::size_t>(i)], io.x.as<const f16>(), io.y.as<f16>(), m, stream, pdl);
    };
    out.push_back(time_gemv_modes(m, bytes, copies, runs, back_to_back, stream, call, [&](int i) {
      const qc::device_split& wi = w[static_cast<std::size_t>(i)];
      read_bytes(wi.data.data(), std::min(static_cast<std::size_t>(bytes), wi.data.size()), io.sink.as<unsigned>(),
                 wi.sm_count, stream, true);
    }));
  }
  return out;
}

#ifdef QMR_HAVE_CUBLAS
// The cuBLAS entry points of the f16 baseline: those of the library the program links
// (linked_cublas: bench/cuda_gemv), or looked up in it at run time (the qmr tool, which
// loads libcublas only for `bench --device cuda`: linked, its static initialization
// costs every qmr command ~0.4 s).
struct cublas_api {
  cublasStatus_t (*create)(cublasHandle_t*) = nullptr;
  cublasStatus_t (*set_stream)(cublasHandle_t, cudaStream_t) = nullptr;
  cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void*, const void*,
                            cudaDataType, int, const void*, cudaDataType, int, const void*, void*, cudaDataType, int,
                            cublasComputeType_t, cublasGemmAlgo_t) = nullptr;
  cublasStatus_t (*destroy)(cublasHandle_t) = nullptr;
};

inline cublas_api linked_cublas() {
  cublas_api api;
  api.create = &cublasCreate_v2;
  api.set_stream = &cublasSetStream_v2;
  api.gemm_ex = &cublasGemmEx;  // the C entry point (the overload of the member's type)
  api.destroy = &cublasDestroy_v2;
  return api;
}

// A cuBLAS handle bound to a stream.
class cublas_handle {
 public:
  cublas_handle(const cublas_api& api, cudaStream_t stream) : api_(api) {
    QMR_CUBLAS_CHECK(api_.create(&h_));
    const cublasStatus_t status = api_.set_stream(h_, stream);
    if (status != CUBLAS_STATUS_SUCCESS) static_cast<void>(api_.destroy(h_));
    QMR_CUBLAS_CHECK(status);
  }
  cublas_handle(const cublas_handle&) = delete;
  cublas_handle& operator=(const cublas_handle&) = delete;
  ~cublas_handle() { static_cast<void>(api_.destroy(h_)); }
  cublasHandle_t get() const { return h_; }
  const cublas_api& api() const { return api_; }

 private:
  cublas_api api_;
  cublasHandle_t h_ = nullptr;
};

// cuBLAS fp16 (cublasGemmEx, f32 compute): Y[M, rows] = X[M, cols] · Wᵀ, W row-major
// [rows, cols] (column-major: cols x rows, transposed), for each batch M.
inline std::vector<gemv_timing> time_cublas_f16(const cublas_handle& handle, std::int64_t rows, std::int64_t cols,
                                                std::span<const int> batches, int runs, double rotate_bytes,
                                                const gemv_operands& io, cudaStream_t stream, int back_to_back = 0) {
  const double bytes = 2.0 * static_cast<double>(rows * cols);
  const int copies = copies_for(bytes, rotate_bytes);
  std::vector<qc::device_buffer> w;
  for (int i = 0; i < copies; ++i) {
    w.emplace_back(static_cast<std::size_t>(rows * cols) * sizeof(f16));
    fill_f16(w.back().as<f16>(), static_cast<std::size_t>(rows * cols), 1000u + static_cast<unsigned>(i), stream);
  }
  std::vector<gemv_timing> out;
  for (const int m : batches) {
    const float alpha = 1.0f, beta = 0.0f;
    const auto call = [&](int i) {
      QMR_CUBLAS_CHECK(handle.api().gemm_ex(handle.get(), CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(rows), m,
                                    static_cast<int>(cols), &alpha, w[static_cast<std::size_t>(i)].data(), CUDA_R_16F,
                                    static_cast<int>(cols), io.x.data(), CUDA_R_16F, static_cast<int>(cols), &beta,
                                    io.y.data(), CUDA_R_16F, static_cast<int>(rows), CUBLAS_COMPUTE_32F,
                                    CUBLAS_GEMM_DEFAULT));
    };
    const double s = time_median(copies, runs, stream, call);
    gemv_timing t{m, s, bytes, copies, 0};
    if (back_to_back > 0) {  // the same calls back to back, and captured in a CUDA graph (no PDL: not our kernels)
      t.b2b_seconds = time_back_to_back(copies, runs, back_to_back, stream, call);
      t.graph_pdl_seconds = time_graph(copies, runs, back_to_back, stream, call);
    }
    out.push_back(t);
  }
  return out;
}
#endif

// Greedy decode: a warm-up (module load, graph capture) of the prompt and decode_warmup
// tokens, then, from an empty cache, the timed prefill and `decode` tokens, each fed the
// previous argmax; wall clock, the host's round trip per token included.
inline constexpr int decode_warmup = 8;
// The positions a session needs for time_decode.
inline int decode_capacity(std::size_t prompt, int decode) {
  return static_cast<int>(prompt) + std::max(decode, decode_warmup) + 1;
}

struct decode_timing {
  double prefill_seconds = 0, decode_seconds = 0;
};

// Session: model::cuda_session (reset, forward_argmax) of decode_capacity positions.
template <class Session>
decode_timing time_decode(Session& s, std::span<const std::int32_t> prompt, int decode) {
  const auto since = [](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  };
  std::int32_t next = s.forward_argmax(prompt);
  for (int i = 0; i < decode_warmup; ++i) {
    const std::int32_t one[] = {next};
    next = s.forward_argmax(one);
  }
  s.reset();
  decode_timing t;
  const auto t0 = std::chrono::steady_clock::now();
  next = s.forward_argmax(prompt);
  t.prefill_seconds = since(t0);
  const auto t1 = std::chrono::steady_clock::now();
  for (int i = 0; i < decode; ++i) {
    const std::int32_t one[] = {next};
    next = s.forward_argmax(one);
  }
  t.decode_seconds = since(t1);
  return t;
}

}  // namespace qmr::bench::gpu
