// What the 16-token probes of issue 7's bar share (rowx_s53.cu, deep_s54.cu, wide_s55.cu, pair_s55.cu): on 8192 x 8192 at 16 tokens, the
// baselines timed in the same run (cuBLAS f16, HEAD's split kernel, the read ceiling), HEAD's output as the reference,
// and the one-call check of a variant against it (outputs poisoned first).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "cuda_bench.cuh"

// The probes say `using namespace probe_m16;`.
namespace probe_m16 {

namespace qc = qmr::cuda;
namespace qd = qmr::cuda::detail;
namespace gpu = qmr::bench::gpu;
using qmr::f16;

constexpr int calls = 20;           // a graph's calls, as time_graph's back_to_back_calls
constexpr std::int64_t dim = 8192;  // the bar's shape
constexpr int NT = 2;               // 16 tokens: two n8 tiles of the mma

struct baselines {
  double cublas_us = 0, split_us = 0;  // per call, graph of `calls` with PDL
};

// cuBLAS f16 and HEAD's split kernel (with its read ceiling) on dim x dim at 16 tokens, printed in one line.
inline baselines time_baselines(const std::string& fmt, const qmr::quant::format_spec& spec, gpu::gemv_operands& io, cudaStream_t stream) {
  const std::vector<int> m16{16};
  gpu::cublas_handle handle(gpu::linked_cublas(), stream);
  const auto cb = gpu::time_cublas_f16(handle, dim, dim, m16, 30, 1e9, io, stream, calls);
  const auto sp = gpu::time_split_gemv(spec, dim, dim, m16, 30, 1e9, io, stream, calls);
  baselines b{cb[0].graph_pdl_seconds * 1e6, sp[0].graph_pdl_seconds * 1e6};
  std::printf("%s 8192 x 8192, 16 tokens, graph of %d calls with PDL: cuBLAS f16 %.2f us; split (HEAD) %.2f us (%.2fx); read ceiling %.2f us\n",
              fmt.c_str(), calls, b.cublas_us, b.split_us, b.cublas_us / b.split_us, sp[0].read_ceiling_seconds * 1e6);
  std::fflush(stdout);
  return b;
}

// HEAD's split kernel again at the end of a run: the drift over it.
inline void time_split_again(const qmr::quant::format_spec& spec, gpu::gemv_operands& io, cudaStream_t stream) {
  const std::vector<int> m16{16};
  const auto sp = gpu::time_split_gemv(spec, dim, dim, m16, 30, 1e9, io, stream, calls);
  std::printf("split (HEAD) again: %.2f us\n", sp[0].graph_pdl_seconds * 1e6);
}

// The 16 x dim output in io.y, copied to the host.
inline std::vector<f16> output(const gpu::gemv_operands& io, cudaStream_t stream) {
  std::vector<f16> y(static_cast<std::size_t>(16 * dim));
  QMR_CUDA_CHECK(cudaMemcpyAsync(y.data(), io.y.data(), y.size() * sizeof(f16), cudaMemcpyDeviceToHost, stream));
  QMR_CUDA_CHECK(cudaStreamSynchronize(stream));
  return y;
}

// HEAD's split kernel's output on `w` (the reference) and its largest magnitude.
struct reference {
  std::vector<f16> y;
  float max_abs = 0;
};
inline reference split_reference(const qmr::cuda::device_split& w, gpu::gemv_operands& io, cudaStream_t stream) {
  qmr::cuda::gemv_split(w, io.x.as<const f16>(), io.y.as<f16>(), 16, stream, false);
  reference r{output(io, stream), 0.0f};
  for (const f16& h : r.y) r.max_abs = std::max(r.max_abs, std::fabs(qmr::to_float(h)));
  return r;
}

// One call of `launch` (writing io.y) on a poisoned output against the reference: the largest |difference| and how
// many elements differ by more than 4e-3 of the reference's largest magnitude (NaN counts).
struct match {
  double worst = 0;
  std::size_t bad = 0;
};
template <class Launch>
match check_once(const Launch& launch, const reference& ref, gpu::gemv_operands& io, cudaStream_t stream) {
  QMR_CUDA_CHECK(cudaMemsetAsync(io.y.data(), 0xff, 16 * dim * sizeof(f16), stream));
  launch();
  const std::vector<f16> y = output(io, stream);
  match m;
  for (std::size_t i = 0; i < y.size(); ++i) {
    const float d = std::fabs(qmr::to_float(y[i]) - qmr::to_float(ref.y[i]));
    if (!(d <= 4e-3f * ref.max_abs)) ++m.bad;
    m.worst = std::max(m.worst, std::isfinite(d) ? static_cast<double>(d) : 1e30);
  }
  return m;
}

// A variant: checked once (launch(0, false)), then timed as a graph of `calls` calls with PDL (launch(i, true) on
// copy i of `copies`), printed in one line beside the baselines.
template <class Launch>
void check_and_time(const std::string& name, int width, const std::string& smem_note, const Launch& launch, int copies, const reference& ref,
                    gpu::gemv_operands& io, cudaStream_t stream, const baselines& base) {
  const match ok = check_once([&] { launch(0, false); }, ref, io, stream);
  const double s = gpu::time_graph(copies, 30, calls, stream, [&](int i) { launch(i, true); });
  std::printf("%-*s %s | max |diff| %.3g (of max |y| %.3g), %zu beyond 4e-3 | graph %.2f us a call | %.2fx cuBLAS | %.3f of split\n",
              width, name.c_str(), smem_note.c_str(), ok.worst, static_cast<double>(ref.max_abs), ok.bad, s * 1e6, base.cublas_us / (s * 1e6),
              (s * 1e6) / base.split_us);
  std::fflush(stdout);
}

// fmt as a format where it is 4-bit symmetric, the only kind the probes build; else a message naming the probe `who`.
inline std::optional<qmr::quant::format_spec> four_bit_symmetric(const std::string& fmt, const char* who) {
  const qmr::quant::format_spec spec = qmr::quant::parse_format(fmt);
  if (spec.bits == 4 && spec.symmetric) return spec;
  std::fprintf(stderr, "%s: this probe builds 4-bit symmetric formats only, not %s\n", who, fmt.c_str());
  return std::nullopt;
}

// What every run of a split probe starts from: the operands, the baselines (timed first), the dim x dim matrix in the
// split layout with clones through >= 1 GB (copy i for call i), and HEAD's output on copy 0.
struct split_probe {
  qmr::quant::format_spec spec;
  gpu::gemv_operands io;
  baselines base;
  std::vector<qc::device_split> w;
  reference ref;
  split_probe(const std::string& fmt, const qmr::quant::format_spec& s, cudaStream_t stream)
      : spec(s), io(16, dim, dim, stream), base(time_baselines(fmt, spec, io, stream)) {
    const qmr::quant::qtensor qt = gpu::random_qtensor(spec, dim, dim);
    w.push_back(qc::upload_split(qt.view(), stream));
    const int copies = gpu::copies_for(static_cast<double>(w[0].data.size()), 1e9);
    for (int i = 1; i < copies; ++i) w.push_back(qc::clone(w[0], stream));
    ref = split_reference(w[0], io, stream);
  }
};

// The next two mirror gemv_split_kernel's x staging (Wide) and loop for the probes' variants. They stay apart from the
// library: moving the kernel's own code into such helpers changed the SASS of every split kernel (stop 55, compared by
// cubin), which no GPU run has measured.
// Token rows n0 .. n0 + rows - 1 of x, columns c0 .. c0 + 8 vec_per_row - 1, into shared memory xs (row n at
// xs + n xstride) by coherent 16-byte loads through registers, thread-strided over `threads` threads, each thread's (at
// most) V loads in flight before its stores; zeros past M and past the columns.
template <int V>
__device__ __forceinline__ void stage_x_loads(const qd::split_args& a, const __half* __restrict__ x, __half* xs, int xstride, int c0,
                                              int vec_per_row, int n0, int rows, int tid, int threads) {
  const int n_vec = rows * vec_per_row;
  uint4 v[V];  // [V] 16-byte vectors of x, the thread's
#pragma unroll
  for (int k = 0; k < V; ++k) {
    const int e = tid + k * threads, n = n0 + e / vec_per_row, col = c0 + 8 * (e % vec_per_row);
    const bool in = e < n_vec && n < a.m && col < a.cols;
    v[k] = in ? qd::ld_produced(reinterpret_cast<const uint4*>(x + static_cast<std::size_t>(n) * a.cols + col)) : make_uint4(0u, 0u, 0u, 0u);
  }
#pragma unroll
  for (int k = 0; k < V; ++k) {
    const int e = tid + k * threads;
    if (e < n_vec) *reinterpret_cast<uint4*>(xs + (n0 + e / vec_per_row) * xstride + 8 * (e % vec_per_row)) = v[k];
  }
}

// Warp `warp` of a wide block (band `band` of `warps` row tiles, slice `slice`): its row tile and its slice's columns
// and 4-bit loads, as the split kernel's prologue computes them.
struct wide_warp {
  int tile = 0, c0 = 0, slen = 0, n_loads = 0, l0 = 0;
  bool active = false;
};
__device__ __forceinline__ wide_warp wide_warp_of(const qd::split_args& a, int band, int slice, int warps, int warp) {
  constexpr int LC = qc::split_load_cols(4);
  wide_warp w;
  w.tile = band * warps + warp;
  w.active = w.tile < a.rows_pad / 16;
  w.c0 = slice * a.slice_cols;
  w.slen = min(a.slice_cols, a.loads * LC - w.c0);
  w.n_loads = w.active ? w.slen / LC : 0;
  w.l0 = w.c0 / LC;
  return w;
}

// A warp's 16 x 16 partial sums of row tile `tile` to the workspace's slice `slice` (split_finish's layout), and no
// more: the probes' timing-only tail.
__device__ __forceinline__ void store_slice_sums(const qd::split_args& a, const float (&acc)[NT][4], int tile, int slice, int g, int t) {
  float* wk = a.work + static_cast<std::size_t>(slice) * 16 * a.rows_pad;
#pragma unroll
  for (int n = 0; n < NT; ++n)
#pragma unroll
    for (int k = 0; k < 4; ++k)
      __stcg(wk + static_cast<std::size_t>(8 * n + 2 * t + (k & 1)) * a.rows_pad + 16 * tile + g + 8 * (k >> 1), acc[n][k]);
}

// The split kernel's loop for one warp over its n_loads loads of 4-bit symmetric codes at 16 tokens: a ring of R slots
// (ring_q: the lane's address in slot 0, 512 bytes a slot), load i in slot i % R, loads 0 .. R - 2 issued before the
// call; issue(i, slot) copies load i (an empty group past the last); before(i) runs first in iteration i. The sums
// into acc, as the library's kernel leaves them.
template <int R, class Issue, class Before>
__device__ __forceinline__ void stream_w4(const qd::split_args& a, int n_loads, int slen, unsigned ring_q, unsigned xs_lane,
                                          const std::uint32_t* sp, int g, int t, float (&acc)[NT][4], const Issue& issue,
                                          const Before& before) {
  constexpr int Bits = 4, LC = qc::split_load_cols(Bits);
  float part[NT][4];
#pragma unroll
  for (int n = 0; n < NT; ++n)
#pragma unroll
    for (int i = 0; i < 4; ++i) acc[n][i] = part[n][i] = 0.0f;
  int flush_mask = 0;
  const unsigned flush_in_load = qd::split_flush_in_load<Bits>(a.group_shift, flush_mask);
  const std::uint32_t hw[2] = {0u, 0u};
  for (int i = 0, slot = 0; i < n_loads; ++i, slot = slot + 1 == R ? 0 : slot + 1) {
    before(i);
    issue(i + R - 1, slot == 0 ? R - 1 : slot - 1);
    qd::cp_async_wait<R - 1>();
    std::uint32_t q[4];
    asm volatile("ld.shared.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(q[0]), "=r"(q[1]), "=r"(q[2]), "=r"(q[3])
                 : "r"(ring_q + 512u * static_cast<unsigned>(slot))
                 : "memory");
    const int cb = i * LC;
    qd::split_load_mma<Bits, NT, false>(q, hw, cb, slen, flush_in_load, flush_mask, xs_lane + 2u * static_cast<unsigned>(cb), sp, nullptr,
                                        nullptr, a.group_shift, a.slice_groups, g, t, part, acc);
  }
}

// Two sums of row tile `tile` to y (16-token output, row-major [token][rows]), times `unscale`: floats e and e + 1 (e
// even) of the tile's 256 in mma fragment order, lane e / 8 holding acc[n][k] at 4 n + k = e % 8: row
// 16 tile + g + 8 (k >> 1), tokens 8 n + 2 t and the next (g = lane >> 2, t = lane & 3).
__device__ __forceinline__ void store_fragment_pair(const qd::split_args& a, f16* y, int tile, int e, float2 sum, float unscale) {
  const int lane = e >> 3, j = e & 7, n = j >> 2, k = j & 3;
  const int row = 16 * tile + (lane >> 2) + 8 * (k >> 1), tok = 8 * n + 2 * (lane & 3);
  if (row >= a.rows) return;
  if (tok < a.m) qd::lanes_store(y + static_cast<std::size_t>(tok) * a.rows + row, sum.x * unscale);
  if (tok + 1 < a.m) qd::lanes_store(y + static_cast<std::size_t>(tok + 1) * a.rows + row, sum.y * unscale);
}

// A launch of grid x `threads` threads with `bytes` of dynamic shared memory on `stream` (PDL when `pdl`, clusters of
// `cluster` blocks unless 1 x 1): the library's launch_config in the probes' argument order.
inline cudaLaunchConfig_t launch_config(dim3 grid, int threads, int bytes, cudaStream_t stream, bool pdl, dim3 cluster,
                                        cudaLaunchAttribute (&attrs)[2]) {
  return qmr::cuda::launch_config(pdl, cluster, grid, dim3(static_cast<unsigned>(threads)), static_cast<std::size_t>(bytes), stream, attrs);
}

// A probe's main: the format from argv[1] (w4g128s by default; 4-bit symmetric only), a stream, the split_probe,
// body(probe, stream) (its variants), and HEAD's split kernel timed again at the end.
template <class Body>
int probe_main(int argc, char** argv, const char* who, const Body& body) {
  const std::string fmt = argc > 1 ? argv[1] : "w4g128s";
  const std::optional<qmr::quant::format_spec> spec = four_bit_symmetric(fmt, who);
  if (!spec) return 2;
  cudaStream_t stream = nullptr;
  QMR_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  split_probe p(fmt, *spec, stream);
  body(p, stream);
  time_split_again(*spec, p.io, stream);
  QMR_CUDA_CHECK(cudaStreamDestroy(stream));
  return 0;
}

}  // namespace probe_m16
