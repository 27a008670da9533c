// Prototype harness (not built by meson): where the lane GEMV's time goes at M = 1 on
// DRAM-resident 8192 x 8192 weights. Needs bench/proto/lanes_ablate.patch applied to a copy
// of include/ (at d4f0687): QMR_LANES_ABLATE 0 = the kernel, 1 = without the per-unit
// rescaling pass, 2 = without staging x at all, 3 = without the decode and dot products
// (the loads kept), 4 = neither staging nor decode; QMR_R / QMR_T / QMR_BPS set rows per
// warp, block threads and blocks per SM (2 / 512 / 2 in the kernel). Results are wrong for
// 1-4 by design: it only times. Per format: 20 calls with PDL in one CUDA graph, per call,
// beside read_stream's ceiling on the same bytes.
//   nvcc -O3 -std=c++20 --expt-relaxed-constexpr -Iinclude -Ibench -gencode=arch=compute_90,code=sm_90 \
//        -DQMR_LANES_ABLATE=N [-DQMR_R=4 -DQMR_T=384 -DQMR_BPS=2] bench/proto/lanes_ablate.cu -o lanes_ablate_N -lcublas
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <vector>

#include "cuda_bench.cuh"
#include "qmr/kernels/cuda/gemv.cuh"

using namespace qmr;
using namespace qmr::cuda;
using namespace qmr::cuda::detail;
namespace gpu = qmr::bench::gpu;

int main() {
  cudaDeviceProp prop{};
  QMR_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  const int sms = prop.multiProcessorCount;
  cudaStream_t st;
  QMR_CUDA_CHECK(cudaStreamCreate(&st));
  const double copy_bw = gpu::copy_bandwidth(st);
  gpu::gemv_operands io(8, 8192, 8192, st);
  std::printf("variant %d, copy bw %.0f GB/s\n", QMR_LANES_ABLATE, copy_bw / 1e9);
  for (const auto& spec : {quant::format_spec::quantized(2, 64, true), quant::format_spec::quantized(3, 128, true),
                           quant::format_spec::quantized(4, 128, true), quant::format_spec::quantized(8, 128, true)}) {
    const quant::qtensor q = gpu::random_qtensor(spec, 8192, 8192);
    const device_qtensor w0 = upload(q.view(), st, true);
    const int copies = gpu::copies_for(static_cast<double>(w0.lanes_l.bytes), 1e9);
    std::vector<device_qtensor> ws;
    for (int i = 0; i < copies; ++i) ws.push_back(clone(w0, st));
    const auto call = [&](int i) { gemv_lanes(ws[i], io.x.as<const f16>(), io.y.as<f16>(), 1, st, true); };
    const double g = gpu::time_graph(copies, 30, 20, st, call);
    const double rd = gpu::time_graph(copies, 30, 20, st, [&](int i) {
      gpu::read_bytes(ws[i].lanes.data(), static_cast<std::size_t>(ws[i].lanes_l.bytes), io.sink.as<unsigned>(), sms, st, true);
    });
    std::printf("%-8s graph %.2f us (%.0f%% of copy bw), read ceiling %.2f us\n", spec.str().c_str(), g * 1e6,
                100.0 * static_cast<double>(w0.lanes_l.bytes) / g / copy_bw, rd * 1e6);
  }
  return 0;
}
