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
  return m;
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
  // read bandwidth: read_stream over 1 GiB
  device_buffer big(std::size_t(1) << 30), out(64);
  cudaMemset(big.data(), 1, std::size_t(1) << 30);
  const std::size_t nbig = (std::size_t(1) << 30) / 16;
  const double rs = gpu::time_median(1, 20, st, [&](int) { gpu::read_bytes(big.data(), nbig * 16, out.as<unsigned>(), sms, st, false); });
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
    const double rd = profile ? 0 : gpu::time_graph(copies, 30, 20, st, [&](int i) { readcall(i, true); });
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
      const double gr = gpu::time_graph(copies, 30, 20, st, [&](int i) { call(i, false); });
      const double grp = gpu::time_graph(copies, 30, 20, st, [&](int i) { call(i, true); });
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
