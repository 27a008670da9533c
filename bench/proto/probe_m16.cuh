// What the 16-token probes of issue 7's bar share (rowx_s53.cu, deep_s54.cu): on 8192 x 8192 at 16 tokens, the
// baselines timed in the same run (cuBLAS f16, HEAD's split kernel, the read ceiling), HEAD's output as the reference,
// and the one-call check of a variant against it (outputs poisoned first).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
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

}  // namespace probe_m16
