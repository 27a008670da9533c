// GPU test: quantized GEMVs launched with programmatic dependent launch (PDL), each reading the previous one's output (x -> y1 -> ... -> y6 through two ping-pong buffers, as a decode step chains them), give bit for bit the outputs of the same chain launched plainly: the kernels issue weight loads before they wait, and must not read x or write y before the previous kernel has completed. Intermediate outputs are poisoned (NaN) by a kernel just before each chain. Tensor-core, lane-layout and split-K kernels (the split layers sharing one slice-sum workspace, as a model's would), M = 1, 4 and 16 (lanes: 1 and 4) on 4096 x 4096 layers. Exits 77 (skip) without a GPU.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include <cuda_runtime.h>

#include "qmr/kernels/cuda/gemv.cuh"
#include "qmr/kernels/cuda/gemv_split.cuh"
#include "gpu_check.hpp"

namespace {

using qmr::f16;
using qmr::testing::gpu::failures;
using qmr::testing::gpu::rng;
namespace quant = qmr::quant;
namespace qc = qmr::cuda;

// Square layers (outputs feed the next layer), long enough that a kernel runs for
// microseconds, which is the window a missing wait would read stale data in.
// The middle layers ping-pong between two buffers, so that layer l + 1 reads what
// layer l - 1 read and layer l then overwrote: under PDL the three kernels' blocks
// may be resident together, the pattern that makes a read through the read-only
// cache (ld.global.nc) stale (see ld_produced in launch.cuh).
constexpr std::int64_t n_small = 4096;
constexpr int layers = 6;
constexpr int chains = 24;  // chains per configuration, each into its own output slot
constexpr int max_m = 16;

// NaN in every f16 of [p, p + count).
__global__ void poison(qmr::f16* p, std::int64_t count) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
    p[i].bits = 0xffff;
}

// Random codes with scales that keep a layer's gain near 1, so that three layers
// in f16 neither overflow nor vanish: |s| ~ 1 / (sqrt(cols) * rms(code - zero)).
quant::qtensor unit_gain_qtensor(const quant::format_spec& spec, std::int64_t n, rng& r) {
  quant::qtensor q(spec, n, n);
  for (std::size_t i = 0; i < q.codes().size(); ++i) q.codes().data()[i] = static_cast<std::uint8_t>(r.next() >> 24);
  for (std::size_t i = 0; i < q.zeros().size(); ++i) q.zeros().data()[i] = static_cast<std::uint8_t>(r.next() >> 24);
  const double code_rms = std::ldexp(1.0, spec.bits) / std::sqrt(6.0);  // uniform codes minus a uniform zero point
  const float base = static_cast<float>(1.0 / (std::sqrt(static_cast<double>(n)) * code_rms));
  for (std::size_t i = 0; i < q.scales().size(); ++i)
    q.scales().data()[i] = qmr::to_f16(base * r.uniform(0.5f, 1.5f) * ((r.next() & 1u) ? -1.0f : 1.0f));
  return q;
}

enum class kernel { tiles, lanes, split };
const char* name_of(kernel k) { return k == kernel::tiles ? "tensor-core" : k == kernel::lanes ? "lanes" : "split"; }

// One layer's weights in each layout.
struct layer {
  qc::device_qtensor w;      // tiles and lanes
  qc::device_split split;
};

// Runs `chains` chains x -> y1 -> ... -> out[c] on one stream and returns the outputs.
std::vector<std::uint16_t> run(const std::vector<layer>& w, std::int64_t n, const qc::device_buffer& x, int m, kernel k, bool pdl,
                               cudaStream_t stream) {
  qc::device_buffer mid(static_cast<std::size_t>(2) * max_m * n * sizeof(f16));  // [2][max_m, n]: ping-pong
  qc::device_buffer out(static_cast<std::size_t>(chains) * max_m * n * sizeof(f16));      // [chains][max_m, n]
  QMR_CUDA_CHECK(cudaMemsetAsync(out.data(), 0xff, out.size(), stream));
  for (int c = 0; c < chains; ++c) {
    poison<<<256, 256, 0, stream>>>(mid.as<f16>(), static_cast<std::int64_t>(mid.size() / sizeof(f16)));
    QMR_CUDA_CHECK(cudaGetLastError());
    for (int l = 0; l < layers; ++l) {
      const f16* in = l == 0 ? x.as<const f16>() : mid.as<const f16>() + static_cast<std::int64_t>((l - 1) % 2) * max_m * n;
      f16* y = l + 1 == layers ? out.as<f16>() + static_cast<std::int64_t>(c) * max_m * n
                               : mid.as<f16>() + static_cast<std::int64_t>(l % 2) * max_m * n;
      const layer& wl = w[static_cast<std::size_t>(l)];
      if (k == kernel::lanes) qc::gemv_lanes(wl.w, in, y, m, stream, pdl);
      else if (k == kernel::split) qc::gemv_split(wl.split, in, y, m, stream, pdl);
      else qc::gemv(wl.w, in, y, m, stream, pdl);
    }
  }
  std::vector<std::uint16_t> host(out.size() / 2);
  QMR_CUDA_CHECK(cudaMemcpyAsync(host.data(), out.data(), out.size(), cudaMemcpyDeviceToHost, stream));
  QMR_CUDA_CHECK(cudaStreamSynchronize(stream));
  return host;
}

}  // namespace

int main() {
  if (!qmr::testing::gpu::device_present()) return 77;
  try {
    const cudaDeviceProp prop = qmr::testing::gpu::describe_device();
    if (prop.major < 9) std::puts("no PDL before sm_90: the launches are plain");
    const qc::stream_owner owner;
    rng r{20261203};
    std::vector<f16> xh(static_cast<std::size_t>(max_m * n_small));
    for (auto& v : xh) v = qmr::to_f16(r.uniform(-1.0f, 1.0f));
    qc::device_buffer x(xh.size() * sizeof(f16));  // [max_m, n]: the first max_m * n of it
    QMR_CUDA_CHECK(cudaMemcpy(x.data(), xh.data(), x.size(), cudaMemcpyHostToDevice));
    const auto check_chains = [&](const quant::format_spec& spec, const std::vector<layer>& w, std::int64_t n, kernel k, int m) {
      const std::vector<std::uint16_t> plain = run(w, n, x, m, k, false, owner.s);
      const std::vector<std::uint16_t> overlapped = run(w, n, x, m, k, true, owner.s);
      int finite = 0, differ = 0;
      for (int c = 0; c < chains; ++c)
        for (int i = 0; i < m; ++i)
          for (std::int64_t j = 0; j < n; ++j) {
            const std::size_t at = static_cast<std::size_t>((static_cast<std::int64_t>(c) * max_m + i) * n + j);
            f16 v;
            v.bits = plain[at];
            finite += std::isfinite(qmr::to_float(v)) && std::fabs(qmr::to_float(v)) > 1e-3f ? 1 : 0;
            differ += plain[at] != overlapped[at] ? 1 : 0;
          }
      const int total = chains * m * static_cast<int>(n);
      // The plain chain's outputs are finite and mostly nonzero (else the comparison proves little)...
      CHECK(finite > total * 9 / 10, "%s %s %lld M=%d: only %d of %d plain outputs are finite and nonzero", spec.str().c_str(), name_of(k),
            static_cast<long long>(n), m, finite, total);
      // ...and the PDL chain's are the same bits.
      CHECK(differ == 0, "%s %s %lld M=%d: %d of %d outputs differ with PDL", spec.str().c_str(), name_of(k), static_cast<long long>(n), m,
            differ, total);
      std::printf("%-8s %-11s %lld M=%-2d: %s (%d outputs, %d finite and nonzero, %d differ)\n", spec.str().c_str(), name_of(k),
                  static_cast<long long>(n), m, differ == 0 && finite > total * 9 / 10 ? "ok  " : "FAIL", total, finite, differ);
    };
    for (const quant::format_spec& spec : {quant::format_spec::quantized(4, 128, true), quant::format_spec::quantized(8, 128, false),
                                           quant::format_spec::quantized(2, 64, true), quant::format_spec::quantized(3, 128, true)}) {
      std::vector<layer> w;
      const auto split_ws = std::make_shared<qc::split_workspace>();  // the layers' split GEMVs share one, as a model's would
      for (int l = 0; l < layers; ++l) {
        const quant::qtensor q = unit_gain_qtensor(spec, n_small, r);
        w.push_back({qc::upload(q.view(), owner.s, /*with_lanes=*/true), qc::upload_split(q.view(), owner.s, split_ws)});
      }
      for (kernel k : {kernel::tiles, kernel::lanes, kernel::split})
        for (int m : {1, 4, max_m}) {
          if (k == kernel::lanes && (!w[0].w.has_lanes() || m > qc::gemv_lanes_traits::max_batch)) continue;  // lanes: 1-8 tokens
          check_chains(spec, w, n_small, k, m);
        }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "test_cuda_gemv_pdl: %s\n", e.what());
    return 1;
  }
  if (failures) std::fprintf(stderr, "%d failures\n", failures);
  return failures ? 1 : 0;
}
