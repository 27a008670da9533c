// Harness of the dropped bulk-copy lane GEMV (stop 17; see bench/proto/lanes_bulk_copy.patch, which it needs applied): times the register-fed lane kernel on the untiled and band-tiled layouts and the bulk-copy kernel, per call, back to back, and in a CUDA graph with PDL, beside read_stream's ceiling, after checking the bulk-copy kernel's output against the register-fed one.
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <cstdio>
#include <cstring>
#include <vector>
#include <string>
#include <algorithm>
#include <cmath>
#include "../bench/cuda_bench.cuh"
#include "qmr/kernels/cuda/gemv_lanes.cuh"

using namespace qmr;
using namespace qmr::cuda;
using namespace qmr::cuda::detail;
namespace gpu = qmr::bench::gpu;

// ---- variant: lookahead LA items, KS warps per row pair splitting the steps (smem reduce) ----
template <int Bits, int LA>
__global__ void __launch_bounds__(512, 2) lanes_v(const lanes_args a, const __half* __restrict__ x, f16* __restrict__ y) {
  constexpr int R = 2, T = 512;
  constexpr int UC = lanes_unit_cols(Bits), P = UC / 8;
  extern __shared__ uint4 sm[];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int gw = blockIdx.x * (T / 32) + warp, W = gridDim.x * (T / 32);
  const int n_rs = (a.rows + R - 1) / R;
  const int my_rs = gw < n_rs ? (n_rs - gw + W - 1) / W : 0;
  const int steps = (a.units + 31) / 32;
  const int n_items = my_rs * steps;
  struct buf { uint4 q[R]; uint2 h[R]; __half s[R]; };
  buf b[LA + 1];
  const auto load = [&](buf& o, int item) {
    const int rs = gw + (item / steps) * W, step = item % steps;
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const int row = min(rs * R + r, a.rows - 1);
      const int u = step * 32 + lane, uc = min(u, a.units - 1);
      const std::size_t at = static_cast<std::size_t>(row) * a.units + uc;
      o.q[r] = lanes_ld16(a.q + at);
      if constexpr (Bits == 3) o.h[r] = lanes_ld8(a.hq + at); else o.h[r] = make_uint2(0u, 0u);
      const __half sv = a.scales[static_cast<std::size_t>(row) * a.n_groups + ((uc * UC) >> a.group_shift)];
      o.s[r] = u < a.units ? sv : __ushort_as_half(0);
    }
  };
  pdl_launch_dependents();
#pragma unroll
  for (int k = 0; k < LA; ++k) if (k < n_items) load(b[k], k);
  pdl_wait();
  {
    const int row_slots = a.cols / 8;
    const uint4* xv = reinterpret_cast<const uint4*>(x);
    for (int s = threadIdx.x; s < row_slots; s += T) sm[s ^ ((s >> 3) & 7)] = xv[s];
  }
  __syncthreads();
  float acc[R] = {};
  for (int it0 = 0; it0 < n_items; it0 += LA + 1) {
#pragma unroll
    for (int k = 0; k <= LA; ++k) {
      const int it = it0 + k;
      if (it < n_items) {
        if (it + LA < n_items) load(b[(k + LA) % (LA + 1)], it + LA);
        buf& c = b[k];
        const int step = it % steps;
        const int u = min(step * 32 + lane, a.units - 1);
        qstd::uint32_t part[R] = {};
#pragma unroll
        for (int sl = 0; sl < P; ++sl) {
          const int s = u * P + sl;
          const uint4 xv = sm[s ^ ((s >> 3) & 7)];
#pragma unroll
          for (int r = 0; r < R; ++r) {
            const qstd::uint32_t q[4] = {c.q[r].x, c.q[r].y, c.q[r].z, c.q[r].w};
            const qstd::uint32_t hw[2] = {c.h[r].x, c.h[r].y};
#pragma unroll
            for (int e = 0; e < 4; ++e) {
              const qstd::uint32_t wp = lanes_decode<Bits>(q, hw, sl * 4 + e);
              const qstd::uint32_t xx = e == 0 ? xv.x : e == 1 ? xv.y : e == 2 ? xv.z : xv.w;
              part[r] = lanes_hfma2(wp, xx, part[r]);
            }
          }
        }
#pragma unroll
        for (int r = 0; r < R; ++r) {
          const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&part[r]));
          acc[r] = fmaf(__half2float(c.s[r]), f.x + f.y, acc[r]);
        }
        if (step + 1 == steps) {
          const int rs = gw + (it / steps) * W;
#pragma unroll
          for (int r = 0; r < R; ++r) {
            float v = acc[r];
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
            const int row = rs * R + r;
            if (lane == 0 && row < a.rows) lanes_store(y + row, v * float(1 << (Bits - 1)));
            acc[r] = 0.f;
          }
        }
      }
    }
  }
}

// Pure read of `words` uint4 with the lanes kernel's grid: the ceiling for this access pattern.
__global__ void __launch_bounds__(512, 2) read_kernel(const uint4* __restrict__ p, std::size_t n, unsigned* out) {
  pdl_launch_dependents();
  pdl_wait();
  unsigned acc = 0;
  for (std::size_t i = blockIdx.x * 512ull + threadIdx.x; i < n; i += gridDim.x * 512ull) {
    const uint4 v = lanes_ld16(p + i);
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (acc == 0x12345678u) *out = acc;
}

template <class F>
double time_graph(int copies, int runs, int batch, cudaStream_t stream, F&& call) {
  // one graph of `batch` calls per start copy; replay, median over runs
  cudaGraph_t g; cudaGraphExec_t ge;
  std::vector<cudaGraphExec_t> execs;
  int ngraph = std::min(copies, 8);
  int next = 0;
  for (int k = 0; k < ngraph; ++k) {
    QMR_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
    for (int j = 0; j < batch; ++j) { call(next); next = (next + 1) % copies; }
    QMR_CUDA_CHECK(cudaStreamEndCapture(stream, &g));
    QMR_CUDA_CHECK(cudaGraphInstantiate(&ge, g, 0));
    cudaGraphDestroy(g);
    execs.push_back(ge);
  }
  for (auto e : execs) QMR_CUDA_CHECK(cudaGraphLaunch(e, stream));
  QMR_CUDA_CHECK(cudaStreamSynchronize(stream));
  std::vector<cudaEvent_t> ev(2 * runs);
  for (auto& e : ev) cudaEventCreate(&e);
  gpu::hold_stream<<<1, 1, 0, stream>>>(20000ll * runs * batch + 1000000ll);
  for (int i = 0; i < runs; ++i) {
    cudaEventRecord(ev[2 * i], stream);
    QMR_CUDA_CHECK(cudaGraphLaunch(execs[i % ngraph], stream));
    cudaEventRecord(ev[2 * i + 1], stream);
  }
  QMR_CUDA_CHECK(cudaStreamSynchronize(stream));
  std::vector<double> s(runs);
  for (int i = 0; i < runs; ++i) { float ms; cudaEventElapsedTime(&ms, ev[2 * i], ev[2 * i + 1]); s[i] = 1e-3 * ms / batch; }
  for (auto& e : ev) cudaEventDestroy(e);
  for (auto e : execs) cudaGraphExecDestroy(e);
  return gpu::median(s);
}

struct mat { device_buffer buf; lanes_args a; };

static mat make(int bits, int group, int rows, int cols, unsigned seed) {
  const int uc = lanes_unit_cols(bits);
  const int n_groups = group > 0 ? cols / group : 1;
  const lanes_layout l = lanes_layout::of(bits, rows, cols, n_groups, false, true, group > 0 ? group : quant::per_channel);
  std::vector<unsigned> h((l.bytes + 3) / 4);
  unsigned s = seed * 2654435761u + 1;
  for (auto& w : h) { s = s * 1664525u + 1013904223u; w = s; }
  auto* sc = reinterpret_cast<unsigned short*>(h.data() + l.scale_offset / 4);
  for (long i = 0; i < (long)rows * n_groups; ++i) { s = s * 1664525u + 1013904223u; sc[i] = __half_as_ushort(__float2half(0.001f + (s >> 8) * (0.01f / 16777216.f))); }
  mat m{device_buffer(h.size() * 4), {}};
  QMR_CUDA_CHECK(cudaMemcpy(m.buf.data(), h.data(), h.size() * 4, cudaMemcpyHostToDevice));
  auto* base = m.buf.as<char>();
  m.a.q = reinterpret_cast<const uint4*>(base);
  m.a.hq = reinterpret_cast<const uint2*>(base + l.hi_offset);
  m.a.scales = reinterpret_cast<const __half*>(base + l.scale_offset);
  m.a.zeros = nullptr;
  m.a.rows = rows; m.a.cols = cols; m.a.units = cols / uc; m.a.n_groups = n_groups;
  m.a.group_shift = group > 0 ? __builtin_ctz(group) : 31; m.a.m = 1;
  m.a.step_groups = static_cast<int>(l.step_groups);
  (void)uc;
  return m;
}

template <int Bits, int LA>
void launch_v(const lanes_args& a, const __half* x, f16* y, int sms, cudaStream_t st, bool pdl) {
  const int n_rs = (a.rows + 1) / 2;
  const int want = (n_rs + 15) / 16;
  const int blocks = std::min(want, 2 * sms);
  const int smem = (a.cols * 2 + 127) / 128 * 128;
  auto k = lanes_v<Bits, LA>;
  cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, 96 * 1024);
  launch_kernel(pdl, k, dim3(blocks), dim3(512), smem, st, a, x, y);
}

static int mma_mode(int m_batch) {
  stream_owner owner; cudaStream_t st = owner.s;
  const auto spec = quant::format_spec::quantized(4, 128, true);
  const quant::qtensor q = gpu::random_qtensor(spec, 8192, 8192);
  std::vector<device_qtensor> w;
  w.push_back(upload(q.view(), st, false));
  for (int i = 1; i < 8; ++i) w.push_back(clone(w[0], st));
  gpu::gemv_operands io(16, 8192, 8192, st);
  for (int i = 0; i < 8; ++i) gemv(w[i], io.x.as<const f16>(), io.y.as<f16>(), m_batch, st, false);
  QMR_CUDA_CHECK(cudaStreamSynchronize(st));
  std::printf("mma M=%d tpr %d\n", m_batch, w[0].threads_per_row);
  return 0;
}

int main(int argc, char** argv) {
  if (argc > 2 && !std::strcmp(argv[1], "--mma")) return mma_mode(std::atoi(argv[2]));
  const bool profile = argc > 2 && !std::strcmp(argv[1], "--profile");
  const int pcfg = profile ? std::atoi(argv[2]) : -1;
  cudaDeviceProp prop{}; cudaGetDeviceProperties(&prop, 0);
  const int sms = prop.multiProcessorCount;
  stream_owner owner; cudaStream_t st = owner.s;
  const double copy_bw = gpu::copy_bandwidth(st);
  // read bandwidth: read_kernel over 1 GiB
  device_buffer big(std::size_t(1) << 30), out(64);
  cudaMemset(big.data(), 1, std::size_t(1) << 30);
  const std::size_t nbig = (std::size_t(1) << 30) / 16;
  const double rs = gpu::time_median(1, 20, st, [&](int) { read_kernel<<<2 * sms, 512, 0, st>>>(big.as<uint4>(), nbig, out.as<unsigned>()); });
  std::printf("%s: copy bw %.0f GB/s (r+w), read-kernel bw (1 GiB) %.0f GB/s\n", prop.name, copy_bw / 1e9, (1 << 30) / rs / 1e9);
  device_buffer xb(16384 * 2 * 8), yb(16384 * 4 * 8);
  gpu::fill_f16(xb.as<f16>(), 16384 * 8, 7, st);
  const __half* x = xb.as<__half>(); f16* y = yb.as<f16>();
  struct cfg { int bits, group, rows, cols; };
  std::vector<cfg> cfgs = {{2, 64, 8192, 8192}, {3, 128, 8192, 8192}, {4, 128, 8192, 8192}, {8, 128, 8192, 8192},
                           {4, 128, 896, 4864}, {4, 128, 4864, 896}, {2, 64, 896, 4864}};
  std::printf("| bits | shape | variant | ev/call us | b2b us | b2b pdl us | graph us | graph pdl us | read-same-bytes graph pdl us | best %% of copy bw |\n|---|---|---|---|---|---|---|---|---|---|\n");
  for (int ci = 0; ci < (int)cfgs.size(); ++ci) {
    const cfg& c = cfgs[ci];
    if (profile && ci != pcfg) continue;
    const lanes_layout l = lanes_layout::of(c.bits, c.rows, c.cols, c.cols / c.group, false);
    const int copies = std::max(2, int(1.0e9 / l.bytes + 1));
    std::vector<mat> ms;
    for (int i = 0; i < copies; ++i) ms.push_back(make(c.bits, c.group, c.rows, c.cols, i + 1));
    // read kernel of the same bytes, rotating over the same buffers
    auto readcall = [&](int i, bool pdl) {
      gpu::read_bytes(ms[i].a.q, std::size_t(l.bytes), out.as<unsigned>(), sms, st, pdl);
    };
    const double rd = profile ? 0 : time_graph(copies, 30, 20, st, [&](int i) { readcall(i, true); });
    const int smem = (c.cols * 2 + 127) / 128 * 128;
    (void)smem;
    const lanes_layout lt = lanes_layout::of(c.bits, c.rows, c.cols, c.cols / c.group, false, true, c.group);
    const lanes_tma_plan plan = lanes_tma_plan_of(c.bits, 1, false, lt, c.cols);
    std::printf("plan: tiled %d stages %d slot %d smem %d\n", (int)lt.tiled(), plan.stages, plan.slot_bytes, plan.smem);
    for (int variant = 0; variant < (plan.stages ? 3 : 1); ++variant) {
      auto call = [&](int i, bool pdl) {
        lanes_args a = ms[i].a;
        if (variant == 1) a.tma = plan;
        if (variant == 2) a.step_groups = 0;  // the untiled order (other data, same speed)
        if (c.bits == 2) lanes_launch<2, 1, false, f16>(a, x, y, sms, st, pdl);
        else if (c.bits == 3) lanes_launch<3, 1, false, f16>(a, x, y, sms, st, pdl);
        else if (c.bits == 4) lanes_launch<4, 1, false, f16>(a, x, y, sms, st, pdl);
        else lanes_launch<8, 1, false, f16>(a, x, y, sms, st, pdl);
      };
      // correctness: variant output vs the repo kernel's on copy 0
      {
        std::vector<unsigned short> ref(c.rows), got(c.rows);
        cudaMemset(y, 0xff, c.rows * 2);
        variant == 0 ? (void)0 : (void)0;
        {
          const lanes_args& a = ms[0].a;
          if (c.bits == 2) lanes_launch<2, 1, false, f16>(a, x, y, sms, st, false);
          else if (c.bits == 3) lanes_launch<3, 1, false, f16>(a, x, y, sms, st, false);
          else if (c.bits == 4) lanes_launch<4, 1, false, f16>(a, x, y, sms, st, false);
          else lanes_launch<8, 1, false, f16>(a, x, y, sms, st, false);
        }
        cudaMemcpy(ref.data(), y, c.rows * 2, cudaMemcpyDeviceToHost);
        cudaMemset(y, 0xff, c.rows * 2);
        call(0, false);
        QMR_CUDA_CHECK(cudaStreamSynchronize(st));
        QMR_CUDA_CHECK(cudaGetLastError());
        cudaMemcpy(got.data(), y, c.rows * 2, cudaMemcpyDeviceToHost);
        double maxd = 0, maxr = 0;
        for (int r = 0; r < c.rows; ++r) {
          const double u = __half2float(__ushort_as_half(ref[r])), v = __half2float(__ushort_as_half(got[r]));
          maxd = std::max(maxd, std::fabs(u - v)); maxr = std::max(maxr, std::fabs(u));
        }
        std::printf("variant %d vs repo: max |diff| %.3g (max |y| %.3g)\n", variant, maxd, maxr);
      }
      if (profile) { for (int i = 0; i < 4; ++i) call(i % copies, false); cudaStreamSynchronize(st); continue; }
      const double ev = gpu::time_median(copies, 50, st, [&](int i) { call(i, false); });
      const double b2b = gpu::time_back_to_back(copies, 30, 20, st, [&](int i) { call(i, false); });
      const double b2bp = gpu::time_back_to_back(copies, 30, 20, st, [&](int i) { call(i, true); });
      const double gr = time_graph(copies, 30, 20, st, [&](int i) { call(i, false); });
      const double grp = time_graph(copies, 30, 20, st, [&](int i) { call(i, true); });
      const double best = std::min({ev, b2b, b2bp, gr, grp});
      const char* names[] = {"repo kernel, tiled", "bulk copy, tiled", "repo kernel, untiled"};
      std::printf("| %d | %dx%d | %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.0f%% |\n", c.bits, c.rows, c.cols, names[variant],
                  ev * 1e6, b2b * 1e6, b2bp * 1e6, gr * 1e6, grp * 1e6, rd * 1e6, 100.0 * l.bytes / best / copy_bw);
      std::fflush(stdout);
    }
    QMR_CUDA_CHECK(cudaGetLastError());
  }
  QMR_CUDA_CHECK(cudaDeviceSynchronize());
  return 0;
}
