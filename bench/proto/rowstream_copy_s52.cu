// Stop 52: the copy floor of a row-streaming GEMV at 16 tokens (issue 7's bar: W4 on 8192 x 8192 at least 3x
// cuBLAS f16, about 15.2 us a call in a CUDA graph with PDL). Timing only: no decode, no mma.
//
// The design it bounds has no K slices (so no workspace and no tail) and no bulk staging of x: each block owns 4 row
// tiles of 16 rows (128 blocks for 8192 rows) and streams their codes, 262144 bytes a block, in chunks of CHUNK
// columns through a ring of STAGES shared-memory stages by cp.async.bulk, one producer thread filling a stage with the
// chunk's codes (one copy: the split layout keeps a tile's loads contiguous) and the chunk of x's M token rows (one
// copy a row). With a thread-block cluster of C blocks, each block copies every C-th row of x with .multicast::cluster,
// so the L2 serves x once a cluster, not once a block (x is as many bytes as the codes at 16 tokens). 8 consumer warps
// wait for a stage, read one 16-byte vector a lane of codes and of x from it, and release it to every block of the
// cluster (remote mbarrier arrives), as the decode-and-mma warps of the real kernel would.
//
// Stop 43 measured such copies at 16.0 us (1 token) and 21.5 us (16 tokens) with clusters of 1, and clusters of 2 and
// 4 1.7-4x slower, undiagnosed (bench/results/cuda_gemv_stream_rows_h100_20261206_s43.md). This probe asks whether
// the copies themselves can run near the read ceiling (a plain read of the same bytes, timed here the same way).
//
// Build: nvcc -std=c++20 -O3 -gencode=arch=compute_90a,code=sm_90a bench/proto/rowstream_copy_s52.cu -o rowstream
// Run: rowstream  (prints us a call per configuration, the median of 30 replays of a graph of 20 calls on 20 copies)
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "ptx_sm90.cuh"

#define CK(x)                                                                                          \
  do {                                                                                                 \
    cudaError_t e_ = (x);                                                                              \
    if (e_ != cudaSuccess) {                                                                           \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_));          \
      std::exit(1);                                                                                    \
    }                                                                                                  \
  } while (0)

namespace {

constexpr int cols = 8192;                                       // the bar's shape, 8192 x 8192
constexpr int blocks = 128;                                      // 512 row tiles of 16 rows, 4 a block
constexpr std::size_t block_bytes = 4ull * 16 * cols / 2;        // 262144 bytes of 4-bit codes a block
constexpr std::size_t call_bytes = block_bytes * blocks;         // 33.5 MB a call
constexpr int calls = 20;                                        // a graph's calls, each on its own copy (671 MB)
constexpr int consumer_warps = 8;                                // as many as wait on a stage

using ptx90::bulk_g2s, ptx90::bulk_g2s_multicast, ptx90::mbar_arrive_cluster, ptx90::mbar_expect_tx, ptx90::mbar_init, ptx90::mbar_try,
    ptx90::mbar_wait, ptx90::smem_u32;
__device__ __forceinline__ unsigned cluster_rank() { return ptx90::cluster_ctarank(); }
__device__ __forceinline__ void cluster_sync() { ptx90::cluster_barrier(); }

// One call: block b streams codes[b * block_bytes ...] and x[m][cols] (f16) chunk by chunk.
template <int C, int STAGES, int CHUNK>
__global__ void __launch_bounds__(32 * (consumer_warps + 1)) rowstream_copy(const unsigned char* __restrict__ codes,
                                                                          const unsigned char* __restrict__ x, int m,
                                                                          unsigned* __restrict__ sink) {
  constexpr unsigned w_bytes = CHUNK * 32;  // 4 tiles x 16 rows x CHUNK columns x 4 bits
  constexpr unsigned x_row = CHUNK * 2;     // f16
  constexpr int chunks = cols / CHUNK;
  extern __shared__ __align__(128) unsigned char smem[];
  // [STAGES] codes (w_bytes), [STAGES] x (16 x x_row), then full[STAGES], empty[STAGES] mbarriers
  unsigned char* ws = smem;
  unsigned char* xs = smem + STAGES * w_bytes;
  const unsigned bars = smem_u32(xs + STAGES * 16 * x_row);
  const auto full = [&](int s) { return bars + 8u * static_cast<unsigned>(s); };
  const auto empty = [&](int s) { return bars + 8u * static_cast<unsigned>(STAGES + s); };
  const int warp = static_cast<int>(threadIdx.x) >> 5, lane = static_cast<int>(threadIdx.x) & 31;
  const unsigned rank = C > 1 ? cluster_rank() : 0u;
  asm volatile("griddepcontrol.launch_dependents;");
  if (threadIdx.x == 0) {
    for (int s = 0; s < STAGES; ++s) {
      mbar_init(full(s), 1);
      mbar_init(empty(s), consumer_warps * C);
    }
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  if constexpr (C > 1) cluster_sync();
  else __syncthreads();
  const unsigned x_bytes = static_cast<unsigned>(m) * x_row;
  if (warp == consumer_warps) {  // the producer
    if (lane == 0) {
      const unsigned char* src = codes + static_cast<std::size_t>(blockIdx.x) * block_bytes;
      const auto copy_x = [&](int c, int s) {
        for (int r = static_cast<int>(rank); r < m; r += C) {
          const unsigned char* xr = x + (static_cast<std::size_t>(r) * cols + static_cast<std::size_t>(c) * CHUNK) * 2;
          const unsigned dst = smem_u32(xs + (s * 16 + r) * x_row);
          if constexpr (C > 1) bulk_g2s_multicast(dst, xr, x_row, full(s), static_cast<unsigned short>((1u << C) - 1u));
          else bulk_g2s(dst, xr, x_row, full(s));
        }
      };
      // The codes of the first STAGES chunks before the wait (no kernel writes them), x after it.
      for (int c = 0; c < STAGES && c < chunks; ++c) {
        mbar_expect_tx(full(c), w_bytes + x_bytes);
        bulk_g2s(smem_u32(ws + c * w_bytes), src + static_cast<std::size_t>(c) * w_bytes, w_bytes, full(c));
      }
      asm volatile("griddepcontrol.wait;" ::: "memory");
      for (int c = 0; c < STAGES && c < chunks; ++c) copy_x(c, c);
      for (int c = STAGES; c < chunks; ++c) {
        const int s = c % STAGES;
        mbar_wait(empty(s), static_cast<unsigned>(((c / STAGES) - 1) & 1));
        mbar_expect_tx(full(s), w_bytes + x_bytes);
        bulk_g2s(smem_u32(ws + s * w_bytes), src + static_cast<std::size_t>(c) * w_bytes, w_bytes, full(s));
        copy_x(c, s);
      }
    }
  } else {  // the consumers
    unsigned acc = 0;
    for (int c = 0; c < chunks; ++c) {
      const int s = c % STAGES;
      mbar_wait(full(s), static_cast<unsigned>((c / STAGES) & 1));
      const uint4 w = reinterpret_cast<const uint4*>(ws + s * w_bytes)[(warp * 32 + lane) % (w_bytes / 16)];
      const uint4 v = reinterpret_cast<const uint4*>(xs + s * 16 * x_row)[(warp * 32 + lane) % (16 * x_row / 16)];
      acc ^= w.x ^ w.y ^ w.z ^ w.w ^ v.x ^ v.w;
      __syncwarp();
      if (lane < C) mbar_arrive_cluster(empty(s), static_cast<unsigned>(lane));
    }
    if (acc == 0x9e3779b9u) sink[blockIdx.x] = acc;  // keeps the reads
  }
  __syncwarp();
  if constexpr (C > 1) cluster_sync();  // no block leaves while a peer may still multicast into it or arrive on it
}

// The read ceiling: the same bytes read by 2 blocks an SM of 512 threads, 16-byte loads, as a graph of 20 calls.
__global__ void __launch_bounds__(512) read_copy(const uint4* __restrict__ p, std::size_t n, unsigned* __restrict__ sink) {
  asm volatile("griddepcontrol.launch_dependents;");
  unsigned acc = 0;
  for (std::size_t i = blockIdx.x * 512ull + threadIdx.x; i < n; i += static_cast<std::size_t>(gridDim.x) * 512) {
    const uint4 v = __ldcs(p + i);
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  asm volatile("griddepcontrol.wait;" ::: "memory");
  if (acc == 0x9e3779b9u) sink[blockIdx.x] = acc;
}

template <class Launch>
double graph_us(cudaStream_t st, const Launch& launch) {
  cudaGraph_t g = nullptr;
  CK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
  for (int i = 0; i < calls; ++i) launch(i);
  CK(cudaStreamEndCapture(st, &g));
  cudaGraphExec_t ex = nullptr;
  CK(cudaGraphInstantiate(&ex, g, 0));
  CK(cudaGraphDestroy(g));
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  std::vector<float> t;
  for (int r = 0; r < 33; ++r) {
    CK(cudaEventRecord(a, st));
    CK(cudaGraphLaunch(ex, st));
    CK(cudaEventRecord(b, st));
    CK(cudaEventSynchronize(b));
    float ms = 0;
    CK(cudaEventElapsedTime(&ms, a, b));
    if (r >= 3) t.push_back(ms);
  }
  std::sort(t.begin(), t.end());
  CK(cudaGraphExecDestroy(ex));
  CK(cudaEventDestroy(a));
  CK(cudaEventDestroy(b));
  return 1000.0 * t[t.size() / 2] / calls;
}

template <int C, int STAGES, int CHUNK>
void run(cudaStream_t st, const unsigned char* codes, const unsigned char* x, unsigned* sink) {
  constexpr int smem = STAGES * (CHUNK * 32 + 16 * CHUNK * 2) + 16 * STAGES;
  const auto k = rowstream_copy<C, STAGES, CHUNK>;
  CK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  if (C > 1) CK(cudaFuncSetAttribute(k, cudaFuncAttributeNonPortableClusterSizeAllowed, 1));
  for (const int m : {1, 16}) {
    const double us = graph_us(st, [&](int i) {
      cudaLaunchConfig_t cfg{};
      cfg.gridDim = dim3(blocks);
      cfg.blockDim = dim3(32 * (consumer_warps + 1));
      cfg.dynamicSmemBytes = smem;
      cfg.stream = st;
      cudaLaunchAttribute at[2];
      at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
      at[0].val.programmaticStreamSerializationAllowed = 1;
      at[1].id = cudaLaunchAttributeClusterDimension;
      at[1].val.clusterDim.x = C;
      at[1].val.clusterDim.y = 1;
      at[1].val.clusterDim.z = 1;
      cfg.attrs = at;
      cfg.numAttrs = 2;
      CK(cudaLaunchKernelEx(&cfg, k, codes + static_cast<std::size_t>(i) * call_bytes, x, m, sink));
    });
    std::printf("cluster %d, %d stages of %4d columns (%3d KB smem), M = %2d: %6.2f us a call, %.2f TB/s of codes\n", C, STAGES,
                CHUNK, smem / 1024, m, us, static_cast<double>(call_bytes) / us * 1e-6);
  }
}

}  // namespace

int main() {
  cudaStream_t st = nullptr;
  CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  unsigned char* codes = nullptr;
  unsigned char* x = nullptr;
  unsigned* sink = nullptr;
  CK(cudaMalloc(&codes, call_bytes * calls));
  CK(cudaMalloc(&x, static_cast<std::size_t>(16) * cols * 2));
  CK(cudaMalloc(&sink, 4096));
  CK(cudaMemset(codes, 0x5a, call_bytes * calls));
  CK(cudaMemset(x, 0x3c, static_cast<std::size_t>(16) * cols * 2));
  int sms = 0;
  CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  const double read_us = graph_us(st, [&](int i) {
    cudaLaunchConfig_t cfg{};
    cfg.gridDim = dim3(2 * sms);
    cfg.blockDim = dim3(512);
    cfg.stream = st;
    cudaLaunchAttribute at[1];
    at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    at[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = at;
    cfg.numAttrs = 1;
    CK(cudaLaunchKernelEx(&cfg, read_copy, reinterpret_cast<const uint4*>(codes + static_cast<std::size_t>(i) * call_bytes),
                          call_bytes / 16, sink));
  });
  std::printf("read ceiling (plain 16-byte loads, %d blocks of 512): %.2f us a call, %.2f TB/s\n", 2 * sms, read_us,
              static_cast<double>(call_bytes) / read_us * 1e-6);
  run<1, 6, 256>(st, codes, x, sink);
  run<1, 4, 512>(st, codes, x, sink);
  run<2, 6, 256>(st, codes, x, sink);
  run<2, 4, 512>(st, codes, x, sink);
  run<4, 6, 256>(st, codes, x, sink);
  run<4, 4, 512>(st, codes, x, sink);
  run<1, 3, 1024>(st, codes, x, sink);
#ifdef QMR_ROWSTREAM_DEEP  // call f: more bytes in flight a block (6-7 stages of 512 columns, 192-224 KB)
  run<1, 6, 512>(st, codes, x, sink);
  run<1, 7, 512>(st, codes, x, sink);
  run<2, 6, 512>(st, codes, x, sink);
  run<2, 7, 512>(st, codes, x, sink);
  run<2, 3, 1024>(st, codes, x, sink);
#endif
  CK(cudaDeviceSynchronize());
  return 0;
}
