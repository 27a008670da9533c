// Profiling driver for ncu: qmr::cuda::gemv (tensor-core kernel) on one random
// 8192 x 8192 matrix of the format in argv[1] (default w4g128s), M = argv[2]
// (default 1), threads_per_row argv[3] (default: upload's choice), 20 calls, f16.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "../cuda_bench.cuh"

int main(int argc, char** argv) {
  namespace qc = qmr::cuda;
  namespace gpu = qmr::bench::gpu;
  const std::string fmt = argc > 1 ? argv[1] : "w4g128s";
  const int m = argc > 2 ? std::atoi(argv[2]) : 1;
  const qmr::quant::format_spec spec = qmr::quant::parse_format(fmt);
  const qc::stream_owner owner;
  const qmr::quant::qtensor q = gpu::random_qtensor(spec, 8192, 8192);
  qc::device_qtensor w = qc::upload(q.view(), owner.s);
  if (argc > 3) w.threads_per_row = std::atoi(argv[3]);
  const gpu::gemv_operands io(16, 8192, 8192, owner.s);
  for (int i = 0; i < 20; ++i) qc::gemv(w, io.x.as<const qmr::f16>(), io.y.as<qmr::f16>(), m, owner.s);
  QMR_CUDA_CHECK(cudaStreamSynchronize(owner.s));
  std::printf("ok %s M=%d tpr=%d\n", fmt.c_str(), m, w.threads_per_row);
  return 0;
}
