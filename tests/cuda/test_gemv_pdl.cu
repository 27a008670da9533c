// GPU test: quantized GEMVs launched with programmatic dependent launch (PDL), each reading the previous one's output (x -> y1 -> y2 -> y3, as a decode step chains them), give bit for bit the outputs of the same chain launched plainly: the kernels issue weight loads before they wait, and must not read x or write y before the previous kernel has completed. Intermediate outputs are poisoned (NaN) by a kernel just before each chain. Tensor-core and lane-layout kernels, M = 1 and 4. Exits 77 (skip) without a GPU.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include <cuda_runtime.h>

#include "qmr/kernels/cuda/gemv.cuh"
#include "gpu_check.hpp"

namespace {

using qmr::f16;
using qmr::testing::gpu::failures;
using qmr::testing::gpu::rng;
namespace quant = qmr::quant;
namespace qc = qmr::cuda;

// Square layers (outputs feed the next layer), long enough that a kernel runs for
// microseconds, which is the window a missing wait would read stale data in.
constexpr std::int64_t n = 4096;
constexpr int layers = 3;
constexpr int chains = 24;  // chains per configuration, each into its own output slot
constexpr int max_m = 4;

// NaN in every f16 of [p, p + count).
__global__ void poison(qmr::f16* p, std::int64_t count) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
    p[i].bits = 0xffff;
}

// Random codes with scales that keep a layer's gain near 1, so that three layers
// in f16 neither overflow nor vanish: |s| ~ 1 / (sqrt(cols) * rms(code - zero)).
quant::qtensor unit_gain_qtensor(const quant::format_spec& spec, rng& r) {
  quant::qtensor q(spec, n, n);
  for (std::size_t i = 0; i < q.codes().size(); ++i) q.codes().data()[i] = static_cast<std::uint8_t>(r.next() >> 24);
  for (std::size_t i = 0; i < q.zeros().size(); ++i) q.zeros().data()[i] = static_cast<std::uint8_t>(r.next() >> 24);
  const double code_rms = std::ldexp(1.0, spec.bits) / std::sqrt(6.0);  // uniform codes minus a uniform zero point
  const float base = static_cast<float>(1.0 / (std::sqrt(static_cast<double>(n)) * code_rms));
  for (std::size_t i = 0; i < q.scales().size(); ++i)
    q.scales().data()[i] = qmr::to_f16(base * r.uniform(0.5f, 1.5f) * ((r.next() & 1u) ? -1.0f : 1.0f));
  return q;
}

// Runs `chains` chains x -> y1 -> ... -> out[c] on one stream and returns the outputs.
std::vector<std::uint16_t> run(const std::vector<qc::device_qtensor>& w, const qc::device_buffer& x, int m, bool lanes,
                               bool pdl, cudaStream_t stream) {
  qc::device_buffer mid(static_cast<std::size_t>(layers - 1) * max_m * n * sizeof(f16));  // [layers - 1][max_m, n]
  qc::device_buffer out(static_cast<std::size_t>(chains) * max_m * n * sizeof(f16));      // [chains][max_m, n]
  QMR_CUDA_CHECK(cudaMemsetAsync(out.data(), 0xff, out.size(), stream));
  for (int c = 0; c < chains; ++c) {
    poison<<<256, 256, 0, stream>>>(mid.as<f16>(), static_cast<std::int64_t>(mid.size() / sizeof(f16)));
    QMR_CUDA_CHECK(cudaGetLastError());
    for (int l = 0; l < layers; ++l) {
      const f16* in = l == 0 ? x.as<const f16>() : mid.as<const f16>() + static_cast<std::int64_t>(l - 1) * max_m * n;
      f16* y = l + 1 == layers ? out.as<f16>() + static_cast<std::int64_t>(c) * max_m * n
                               : mid.as<f16>() + static_cast<std::int64_t>(l) * max_m * n;
      if (lanes) qc::gemv_lanes(w[static_cast<std::size_t>(l)], in, y, m, stream, pdl);
      else qc::gemv(w[static_cast<std::size_t>(l)], in, y, m, stream, pdl);
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
    std::vector<f16> xh(static_cast<std::size_t>(max_m * n));
    for (auto& v : xh) v = qmr::to_f16(r.uniform(-1.0f, 1.0f));
    qc::device_buffer x(xh.size() * sizeof(f16));
    QMR_CUDA_CHECK(cudaMemcpy(x.data(), xh.data(), x.size(), cudaMemcpyHostToDevice));
    for (const quant::format_spec& spec : {quant::format_spec::quantized(4, 128, true), quant::format_spec::quantized(8, 128, false),
                                           quant::format_spec::quantized(2, 64, true), quant::format_spec::quantized(3, 128, true)}) {
      std::vector<qc::device_qtensor> w;
      for (int l = 0; l < layers; ++l) w.push_back(qc::upload(unit_gain_qtensor(spec, r).view(), owner.s, /*with_lanes=*/true));
      for (bool lanes : {false, true})
        for (int m : {1, max_m}) {
          if (lanes && !w[0].has_lanes()) continue;
          const std::vector<std::uint16_t> plain = run(w, x, m, lanes, false, owner.s);
          const std::vector<std::uint16_t> overlapped = run(w, x, m, lanes, true, owner.s);
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
          CHECK(finite > total * 9 / 10, "%s %s M=%d: only %d of %d plain outputs are finite and nonzero", spec.str().c_str(),
                lanes ? "lanes" : "tensor-core", m, finite, total);
          // ...and the PDL chain's are the same bits.
          CHECK(differ == 0, "%s %s M=%d: %d of %d outputs differ with PDL", spec.str().c_str(), lanes ? "lanes" : "tensor-core",
                m, differ, total);
          std::printf("%-8s %-11s M=%d: %s (%d outputs, %d finite and nonzero, %d differ)\n", spec.str().c_str(),
                      lanes ? "lanes" : "tensor-core", m, differ == 0 && finite > total * 9 / 10 ? "ok  " : "FAIL", total,
                      finite, differ);
        }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "test_cuda_gemv_pdl: %s\n", e.what());
    return 1;
  }
  if (failures) std::fprintf(stderr, "%d failures\n", failures);
  return failures ? 1 : 0;
}
