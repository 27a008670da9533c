// Stop 57's probe for issue 7's 16-token bar (W4 on 8192 x 8192 at least 3x cuBLAS f16 in a CUDA graph with PDL):
// a timeline of the wide kernel (split_wide's configuration: one block of 16 warps an SM, 32 bands x 4 slices of 2048
// columns, a ring of 4 loads a warp, x by plain loads), and a ring that is deep only before griddepcontrol.wait.
//
// Why: the wide kernel takes 17.2-17.6 us; without its tail (partial sums stored, no counter or adding) 14.9-15.1
// (stop 55), and stop 56's cluster-of-2 pair kernel, whose tail goes through DSMEM and not L2, pays the same ~2 us.
// Stop 56 inferred that the tail is the wait for a band's slowest slices, without a timeline. Here every block of
// every call of one graph replay records the global timer (and its SM) at entry, after griddepcontrol.wait, with x
// staged, and per warp at the end of its loop and after its tail; the records go to a CSV for analysis
// (bench/proto/timeline_s57_analyze.py), with the SM -> GPC map from clusters of 8 and 4 blocks placed one an SM.
//
// The deep-burst variants (D > 4): a ring of D slots; D - 1 loads a warp are copied before the wait (while the
// previous call's tail runs and its SMs free up), but after it only R - 1 = 3 stay in flight, as in the R = 4 ring.
// Stop 54's deep rings kept D - 1 in flight throughout and lost more the deeper they were; whether the cost is the
// depth during streaming or the burst is what D 8/12/16 here separate.
//
// TM 0: the library's tail (split_finish: workspace, counter, the tile's last warp adds its slices); TM 1: timing
// only, every warp stores its partial sums to the workspace and leaves.
// Build (sm_90):
//   nvcc -std=c++20 --expt-relaxed-constexpr -O3 -gencode=arch=compute_90,code=sm_90 -Xptxas -v
//        -DQMR_HAVE_CUBLAS -I include -I bench bench/proto/timeline_s57.cu -lcublas -o timeline
// Run: timeline [FORMAT (w4g128s)] [CSV_DIR] (bash bench/proto/s58c_device.sh; call b ran s58b with the burst variants).
// Results: bench/results/cuda_gemv_split_timeline_wide_h100_20261208_s57.md. Since call c the loop tops up its ring with
// a while over a runtime count; that made every variant 2.5 us a call slower than call b's code (compare within a call).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "probe_m16.cuh"
#include "ptx_sm90.cuh"

using namespace probe_m16;  // qc, qd, gpu, f16, calls, dim, NT
using ptx90::gtimer;
using ptx90::sm_id;

namespace {

constexpr int W = 16;  // warps a block (row tiles a band)
constexpr int R = 4;   // the library's ring: R - 1 loads in flight while streaming
constexpr int blocks = static_cast<int>(dim / (16 * W)) * 4;  // a call's: 32 bands x 4 slices

// One block of one call: its SM, and the global timer (ns) at each step.
struct trace_rec {
  unsigned smid = 0;
  unsigned long long entry = 0, waited = 0, staged = 0;
  unsigned long long loop_end[W] = {}, fin_end[W] = {};  // per warp
};

// Waits until at most n cp.async groups of the thread are pending (N >= n: the largest n it is called with).
template <int N>
__device__ __forceinline__ void cp_async_wait_upto(int n) {
  if constexpr (N <= 0) {
    qd::cp_async_wait<0>();
  } else {
    if (n >= N) qd::cp_async_wait<N>();
    else cp_async_wait_upto<N - 1>(n);
  }
}

// Shared memory, bytes: x f16 [16][slice_cols + 8], the ring uint4 [W][D][32], the scale pairs u32 [W][slice_groups][8].
struct tl_smem {
  int ring = 0, scale = 0, bytes = 0;
  static constexpr tl_smem of(int d, int slice_cols, int slice_groups) {
    tl_smem m;
    m.ring = 16 * qd::split_x_stride(slice_cols) * 2;
    m.scale = m.ring + W * d * 512;
    m.bytes = m.scale + W * slice_groups * 32;
    return m;
  }
};

template <int TM, bool TRACE, int D, int PRE, int A>
__global__ void __launch_bounds__(32 * W, 1) tl_kernel(const qd::split_args a, const __half* __restrict__ x, f16* __restrict__ y, trace_rec* tr) {
  constexpr int Bits = 4, LC = qc::split_load_cols(Bits), TOK = 16;
  extern __shared__ uint4 tl_smem_raw[];
  const int tid = static_cast<int>(threadIdx.x), lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
  const int band = static_cast<int>(blockIdx.x), slice = static_cast<int>(blockIdx.y);
  trace_rec* rec = TRACE ? tr + slice * gridDim.x + band : nullptr;
  if constexpr (TRACE)
    if (tid == 0) {
      rec->entry = gtimer();
      rec->smid = sm_id();
    }
  const probe_m16::wide_warp ww = probe_m16::wide_warp_of(a, band, slice, W, warp);
  const int tile = ww.tile, c0 = ww.c0, slen = ww.slen, n_loads = ww.n_loads, l0 = ww.l0;
  const bool active = ww.active;
  const int xstride = qd::split_x_stride(a.slice_cols);
  const tl_smem sm = tl_smem::of(D, a.slice_cols, a.slice_groups);
  unsigned char* sb = reinterpret_cast<unsigned char*>(tl_smem_raw);
  __half* xs = reinterpret_cast<__half*>(sb);  // [TOK][xstride]
  const unsigned ring_q = qd::split_smem_u32(sb + sm.ring) + static_cast<unsigned>(warp * D * 512 + lane * 16);  // slot s: + 512 s
  auto* sp = reinterpret_cast<std::uint32_t*>(sb + sm.scale) + warp * a.slice_groups * 8;

  const uint4* qp = a.q + (static_cast<std::size_t>(active ? tile : 0) * a.loads + l0) * 32 + lane;
  const auto issue = [&](int i) {  // load i into slot i % D; one group a load (empty past the last)
    if (i < n_loads) qd::split_cp_async16(ring_q + 512u * static_cast<unsigned>(i % D), qp + static_cast<std::size_t>(i) * 32, 16u);
    qd::cp_async_commit();
  };
  qd::pdl_launch_dependents();
  if (active) qd::split_stage_tile_scales<false>(a, tile, c0, sp, nullptr, lane);  // the oldest group
  qd::cp_async_commit();
#pragma unroll
  for (int i = 0; i < PRE; ++i) issue(i);  // before the wait (no kernel writes the weights)
  qd::pdl_wait();
  if constexpr (TRACE)
    if (tid == 0) rec->waited = gtimer();
  constexpr int XPT = (TOK * 2048 / 8 + 32 * W - 1) / (32 * W);  // x vectors a thread at most (slices of <= 2048 columns)
  probe_m16::stage_x_loads<XPT>(a, x, xs, xstride, c0, a.slice_cols / 8, 0, TOK, tid, 32 * W);
  cp_async_wait_upto<PRE>(PRE);  // the thread's scale copies (the oldest group)
  __syncthreads();
  if constexpr (TRACE)
    if (tid == 0) rec->staged = gtimer();

  float acc[NT][4], part[NT][4];
#pragma unroll
  for (int n = 0; n < NT; ++n)
#pragma unroll
    for (int i = 0; i < 4; ++i) acc[n][i] = part[n][i] = 0.0f;
  const unsigned xs_lane = qd::split_xs_lane<NT>(qd::split_smem_u32(xs), xstride, lane);
  int flush_mask = 0;
  const unsigned flush_in_load = qd::split_flush_in_load<Bits>(a.group_shift, flush_mask);
  const std::uint32_t hw[2] = {0u, 0u};
  int issued = PRE;  // loads issued (groups after the scales')
  for (int i = 0; i < n_loads; ++i) {
    while (issued < i + A) issue(issued++);  // A loads in flight with load i (after a burst: once it has drained to A)
    if (issued - 1 - i == A - 1) qd::cp_async_wait<A - 1>();
    else cp_async_wait_upto<(PRE > A ? PRE : A) - 1>(issued - 1 - i);  // load i has landed
    std::uint32_t q[4];
    asm volatile("ld.shared.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(q[0]), "=r"(q[1]), "=r"(q[2]), "=r"(q[3])
                 : "r"(ring_q + 512u * static_cast<unsigned>(i % D))
                 : "memory");
    const int cb = i * LC;
    qd::split_load_mma<Bits, NT, false>(q, hw, cb, slen, flush_in_load, flush_mask, xs_lane + 2u * static_cast<unsigned>(cb), sp, nullptr,
                                        nullptr, a.group_shift, a.slice_groups, g, t, part, acc);
  }
  qd::cp_async_wait<0>();
  if constexpr (TRACE)
    if (lane == 0) rec->loop_end[warp] = gtimer();
  const float unscale = static_cast<float>(1 << (Bits - 1));
  if constexpr (TM == 0) {
    qd::split_finish<NT>(a, acc, tile, g, t, lane, active, slice, unscale, y);
  } else if (active) {
    probe_m16::store_slice_sums(a, acc, tile, slice, g, t);
  }
  if constexpr (TRACE)
    if (lane == 0) rec->fin_end[warp] = gtimer();
}

// D ring slots; PRE loads a warp copied before the wait; A loads in flight during the loop (the library: 4, 3, 4).
template <int TM, bool TRACE, int D, int PRE = D - 1, int A = R>
struct tl_variant {
  static_assert(PRE < D && A <= D, "tl_variant: the ring holds the loads in flight");
  static std::string name() {
    return std::string("wide ring ") + std::to_string(D) + " (" + std::to_string(PRE) + " before the wait, " + std::to_string(A) +
           " in flight)" + (TM == 1 ? ", no tail (timing)" : "") + (TRACE ? ", traced" : "");
  }
  static constexpr auto kernel = tl_kernel<TM, TRACE, D, PRE, A>;
};

// The SM -> GPC map: clusters of `c` blocks with one block an SM (shared memory over half an SM's) are placed within
// one GPC, so SMs that share a cluster share a GPC. Each block spins `spin_ns` so that a launch's clusters are all
// resident at once, and records its SM.
__global__ void gpc_probe_kernel(unsigned* smids, unsigned long long spin_ns) {
  const unsigned long long t0 = gtimer();
  if (threadIdx.x == 0) smids[blockIdx.x] = sm_id();
  while (gtimer() - t0 < spin_ns) {
  }
}

struct union_find {
  std::vector<int> p;
  explicit union_find(int n) : p(static_cast<std::size_t>(n)) {
    for (int i = 0; i < n; ++i) p[static_cast<std::size_t>(i)] = i;
  }
  int find(int i) { return p[static_cast<std::size_t>(i)] == i ? i : p[static_cast<std::size_t>(i)] = find(p[static_cast<std::size_t>(i)]); }
  void join(int i, int j) { p[static_cast<std::size_t>(find(i))] = find(j); }
};

// GPC index per SM (-1: never placed), printed with the component sizes.
std::vector<int> gpc_map(cudaStream_t stream) {
  int device = 0, sms = 0, per_sm = 0;
  QMR_CUDA_CHECK(cudaGetDevice(&device));
  QMR_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  QMR_CUDA_CHECK(cudaDeviceGetAttribute(&per_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, device));
  const int smem = per_sm / 2 + 1024;
  QMR_CUDA_CHECK(cudaFuncSetAttribute(gpc_probe_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  QMR_CUDA_CHECK(cudaFuncSetAttribute(gpc_probe_kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1));
  union_find uf(sms);
  std::vector<bool> seen(static_cast<std::size_t>(sms), false);
  qc::device_buffer ids(static_cast<std::size_t>(sms) * sizeof(unsigned) * 4);
  for (const int c : {16, 8, 4, 8, 4, 2}) {
    cudaLaunchAttribute attrs[2]{};
    cudaLaunchConfig_t config = probe_m16::launch_config(dim3(static_cast<unsigned>(c)), 32, smem, stream, false, dim3(static_cast<unsigned>(c), 1u), attrs);
    int clusters = 0;
    if (cudaOccupancyMaxActiveClusters(&clusters, gpc_probe_kernel, &config) != cudaSuccess || clusters == 0) {
      static_cast<void>(cudaGetLastError());
      std::printf("gpc map: clusters of %d: none resident\n", c);
      continue;
    }
    config.gridDim = dim3(static_cast<unsigned>(clusters * c));
    QMR_CUDA_CHECK(cudaLaunchKernelEx(&config, gpc_probe_kernel, ids.as<unsigned>(), 200000ull));
    std::vector<unsigned> h(static_cast<std::size_t>(clusters * c));
    QMR_CUDA_CHECK(cudaMemcpyAsync(h.data(), ids.data(), h.size() * sizeof(unsigned), cudaMemcpyDeviceToHost, stream));
    QMR_CUDA_CHECK(cudaStreamSynchronize(stream));
    for (std::size_t b = 0; b < h.size(); ++b) {
      seen[h[b]] = true;
      if (b % static_cast<std::size_t>(c) != 0) uf.join(static_cast<int>(h[b]), static_cast<int>(h[b - b % static_cast<std::size_t>(c)]));
    }
    std::printf("gpc map: clusters of %d: %d resident\n", c, clusters);
  }
  std::vector<int> root_to_gpc(static_cast<std::size_t>(sms), -1), gpc(static_cast<std::size_t>(sms), -1), sizes;
  for (int s = 0; s < sms; ++s) {
    if (!seen[static_cast<std::size_t>(s)]) continue;
    int& gi = root_to_gpc[static_cast<std::size_t>(uf.find(s))];
    if (gi < 0) {
      gi = static_cast<int>(sizes.size());
      sizes.push_back(0);
    }
    gpc[static_cast<std::size_t>(s)] = gi;
    ++sizes[static_cast<std::size_t>(gi)];
  }
  std::printf("gpc map: %zu groups of SMs, sizes", sizes.size());
  for (int z : sizes) std::printf(" %d", z);
  std::printf("\n");
  return gpc;
}

struct setup {
  std::vector<qd::split_args> as;  // per copy
  int bands = 0, smem = 0;
};

template <class V, int D>
setup prepare(const probe_m16::split_probe& p) {
  setup s;
  constexpr int slices = 4;
  for (const qc::device_split& m : p.w) {
    qd::split_args a = qd::split_make_args(m, static_cast<int>(dim) / slices, slices);
    a.m = 16;
    s.as.push_back(a);
  }
  s.bands = static_cast<int>((p.w[0].l.rows_pad / 16 + W - 1) / W);
  if (s.bands * 4 != blocks) throw std::runtime_error("timeline: the trace records hold " + std::to_string(blocks) + " blocks a call");
  int device = 0, per_sm = 0;
  QMR_CUDA_CHECK(cudaGetDevice(&device));
  QMR_CUDA_CHECK(cudaDeviceGetAttribute(&per_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, device));
  s.smem = std::max(tl_smem::of(D, s.as[0].slice_cols, s.as[0].slice_groups).bytes, per_sm / 2 + 1024);  // one block an SM
  QMR_CUDA_CHECK(cudaFuncSetAttribute(V::kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, s.smem));
  return s;
}

template <class V>
void launch(const setup& s, int copy, trace_rec* tr, const f16* x, f16* y, cudaStream_t stream, bool pdl) {
  qc::launch_kernel(pdl, V::kernel, dim3(static_cast<unsigned>(s.bands), 4u), dim3(32 * W), static_cast<std::size_t>(s.smem), stream,
                    s.as[static_cast<std::size_t>(copy)], reinterpret_cast<const __half*>(x), y, tr);
}

// Checked once, timed as a graph of `calls` calls with PDL (trace slots reused call after call when traced).
template <int TM, bool TRACE, int D, int PRE = D - 1, int A = R>
void run_variant(probe_m16::split_probe& p, qc::device_buffer& trace, cudaStream_t stream) {
  using V = tl_variant<TM, TRACE, D, PRE, A>;
  const setup s = prepare<V, D>(p);
  char note[32];
  std::snprintf(note, sizeof note, "smem %6d B", s.smem);
  probe_m16::check_and_time(
      V::name(), 52, note,
      [&](int i, bool pdl) {
        launch<V>(s, i, trace.as<trace_rec>() + static_cast<std::size_t>(i % calls) * blocks, p.io.x.as<const f16>(), p.io.y.as<f16>(), stream, pdl);
      },
      static_cast<int>(p.w.size()), p.ref, p.io, stream, p.base);
}

// One graph of `calls` calls (copies 0 .. calls - 1, call j's records at slot j), replayed 5 times, then once more with
// the records cleared; they go to DIR/NAME.csv, one line a block of a call.
template <int TM, int D, int PRE = D - 1, int A = R>
void trace_replay(probe_m16::split_probe& p, qc::device_buffer& trace, const std::vector<int>& gpc, const std::string& dir, const char* name,
                  cudaStream_t stream) {
  using V = tl_variant<TM, true, D, PRE, A>;
  const setup s = prepare<V, D>(p);
  cudaGraph_t g = nullptr;
  QMR_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  for (int j = 0; j < calls; ++j)
    launch<V>(s, j % static_cast<int>(p.w.size()), trace.as<trace_rec>() + static_cast<std::size_t>(j) * blocks, p.io.x.as<const f16>(),
              p.io.y.as<f16>(), stream, true);
  QMR_CUDA_CHECK(cudaStreamEndCapture(stream, &g));
  cudaGraphExec_t exec = nullptr;
  QMR_CUDA_CHECK(cudaGraphInstantiate(&exec, g, 0));
  QMR_CUDA_CHECK(cudaGraphDestroy(g));
  for (int r = 0; r < 5; ++r) QMR_CUDA_CHECK(cudaGraphLaunch(exec, stream));
  QMR_CUDA_CHECK(cudaMemsetAsync(trace.data(), 0, static_cast<std::size_t>(calls) * blocks * sizeof(trace_rec), stream));
  cudaEvent_t e0 = nullptr, e1 = nullptr;
  QMR_CUDA_CHECK(cudaEventCreate(&e0));
  QMR_CUDA_CHECK(cudaEventCreate(&e1));
  QMR_CUDA_CHECK(cudaEventRecord(e0, stream));
  QMR_CUDA_CHECK(cudaGraphLaunch(exec, stream));
  QMR_CUDA_CHECK(cudaEventRecord(e1, stream));
  std::vector<trace_rec> h(static_cast<std::size_t>(calls) * blocks);
  QMR_CUDA_CHECK(cudaMemcpyAsync(h.data(), trace.data(), h.size() * sizeof(trace_rec), cudaMemcpyDeviceToHost, stream));
  QMR_CUDA_CHECK(cudaStreamSynchronize(stream));
  float ms = 0;
  QMR_CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
  QMR_CUDA_CHECK(cudaEventDestroy(e0));
  QMR_CUDA_CHECK(cudaEventDestroy(e1));
  QMR_CUDA_CHECK(cudaGraphExecDestroy(exec));
  const std::string path = dir + "/" + name + ".csv";
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) {
    std::printf("trace %s: cannot write %s\n", name, path.c_str());
    return;
  }
  std::fprintf(f, "call,band,slice,smid,gpc,entry,waited,staged");
  for (int w = 0; w < W; ++w) std::fprintf(f, ",loop%d", w);
  for (int w = 0; w < W; ++w) std::fprintf(f, ",fin%d", w);
  std::fprintf(f, "\n");
  for (int j = 0; j < calls; ++j)
    for (int b = 0; b < blocks; ++b) {
      const trace_rec& r = h[static_cast<std::size_t>(j) * blocks + b];
      std::fprintf(f, "%d,%d,%d,%u,%d,%llu,%llu,%llu", j, b % s.bands, b / s.bands, r.smid,
                   r.smid < gpc.size() ? gpc[r.smid] : -1, r.entry, r.waited, r.staged);
      for (int w = 0; w < W; ++w) std::fprintf(f, ",%llu", r.loop_end[w]);
      for (int w = 0; w < W; ++w) std::fprintf(f, ",%llu", r.fin_end[w]);
      std::fprintf(f, "\n");
    }
  std::fclose(f);
  std::printf("trace %s: %s, graph of %d calls %.2f us a call (events, one replay)\n", name, path.c_str(), calls, 1e3 * ms / calls);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = argc > 2 ? argv[2] : ".";
  return probe_m16::probe_main(argc, argv, "timeline", [&](probe_m16::split_probe& p, cudaStream_t stream) {
    qc::device_buffer trace(static_cast<std::size_t>(calls) * blocks * sizeof(trace_rec));
    const std::vector<int> gpc = gpc_map(stream);
    // Call b (h100_s57/b): the traces of the wide kernel with its tail, without, and with a 12-load burst; the bursts'
    // timings. Call c: rings kept deeper during the loop (5 or 7 loads ahead once x is staged, 3 before the wait).
    trace_replay<0, 4>(p, trace, gpc, dir, "wide_tail", stream);
    trace_replay<0, 6, 3, 6>(p, trace, gpc, dir, "ring6_tail", stream);
    trace_replay<0, 8, 3, 8>(p, trace, gpc, dir, "ring8_tail", stream);
    trace_replay<1, 8, 3, 8>(p, trace, gpc, dir, "ring8_notail", stream);
    run_variant<0, false, 4>(p, trace, stream);
    run_variant<0, false, 6, 3, 6>(p, trace, stream);
    run_variant<0, false, 8, 3, 8>(p, trace, stream);
    run_variant<0, false, 12, 3, 12>(p, trace, stream);
    run_variant<1, false, 4>(p, trace, stream);
    run_variant<1, false, 8, 3, 8>(p, trace, stream);
    run_variant<0, false, 4>(p, trace, stream);
    run_variant<0, false, 6, 3, 6>(p, trace, stream);
    run_variant<0, false, 8, 3, 8>(p, trace, stream);
  });
}
