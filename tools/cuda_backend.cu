// The qmr tool's CUDA side (nvcc): tools/cuda_backend.hpp's GPU session over model::cuda_session and the GPU measurements of `qmr bench --device cuda`, from bench/cuda_bench.cuh.
#include "cuda_backend.hpp"

#include <cuda_runtime.h>
#include <dlfcn.h>

#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "../bench/cuda_bench.cuh"
#include "qmr/model/cuda_forward.cuh"
#include "qmr/quant/format.hpp"

namespace qmr_cli {
namespace {

namespace gpu = qmr::bench::gpu;

// Throws unless a CUDA device is usable; a machine without a driver or a GPU gets an
// error code here (cudaErrorInsufficientDriver, cudaErrorNoDevice), not a crash.
void require_cuda_device() {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    static_cast<void>(cudaGetLastError());  // reset the runtime's last error: later checks must not see it
    throw qmr::error(std::string("--device cuda: no usable CUDA device (") + cudaGetErrorName(err) + ": " +
                     cudaGetErrorString(err) + ")");
  }
  if (n == 0) throw qmr::error("--device cuda: no CUDA device found");
}

class cuda_gpu_session final : public gpu_session {
 public:
  cuda_gpu_session(const qmr::model::model& m, int capacity) : s_(m, capacity) {}
  int length() const override { return s_.length(); }
  int capacity() const override { return s_.capacity(); }
  void reset() override { s_.reset(); }
  void truncate(int n) override { s_.truncate(n); }
  qmr::matrix_view<const float> forward(std::span<const std::int32_t> tokens, bool all_logits) override {
    return s_.forward(tokens, all_logits);
  }
  qmr::model::generation generate(std::span<const std::int32_t> prompt, const qmr::model::sampling_options& o,
                                  const qmr::model::token_callback& on_token,
                                  const std::vector<std::string>& stop_strings,
                                  const qmr::model::detokenize_fn& detokenize) override {
    return qmr::model::generate(s_, prompt, o, on_token, stop_strings, detokenize);
  }

 private:
  qmr::model::cuda_session s_;
};

// The GPU pass has no activation quantization (it feeds f16 activations to every linear).
void check_runs_on_gpu(const qmr::model::model& m) {
  if (m.activation_bits() != 0)
    throw qmr::error("--device cuda: the model quantizes linear inputs to " + std::to_string(m.activation_bits()) +
                     " bits (+a" + std::to_string(m.activation_bits()) +
                     " or qmr_quantization.json), which only the CPU session does; use --device cpu");
}

#ifdef QMR_HAVE_CUBLAS
// libcublas of the toolkit qmr was built with, opened on first use (see gpu::cublas_api) and
// kept open until exit: from the loader's path, else the default toolkit directory; `error`
// says why not when it cannot be.
struct loaded_cublas {
  gpu::cublas_api api;
  std::string error;
};

const loaded_cublas& cublas_library() {
  static const loaded_cublas lib = [] {
    loaded_cublas l;
    const std::string name = "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR);
    void* h = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (h == nullptr) h = dlopen(("/usr/local/cuda/lib64/" + name).c_str(), RTLD_NOW | RTLD_LOCAL);
    if (h == nullptr) {
      l.error = "cannot open " + name + " (" + dlerror() + ")";
      return l;
    }
    const auto find = [&](auto& fn, const char* symbol) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(h, symbol));
      if (fn == nullptr && l.error.empty()) l.error = name + " has no " + symbol;
    };
    find(l.api.create, "cublasCreate_v2");
    find(l.api.set_stream, "cublasSetStream_v2");
    find(l.api.gemm_ex, "cublasGemmEx");
    find(l.api.destroy, "cublasDestroy_v2");
    return l;
  }();
  return lib;
}
#endif

}  // namespace

cuda_device_info cuda_device() {
  require_cuda_device();
  int device = 0;
  QMR_CUDA_CHECK(cudaGetDevice(&device));
  cudaDeviceProp prop{};
  QMR_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  return {prop.name, prop.major * 10 + prop.minor, prop.multiProcessorCount};
}

std::unique_ptr<gpu_session> make_cuda_session(const qmr::model::model& m, int capacity) {
  require_cuda_device();
  check_runs_on_gpu(m);
  return std::make_unique<cuda_gpu_session>(m, capacity);
}

// The GEMV takes any batch (from gemm_traits::min_batch on as the tiled GEMM); 4096 rows of X
// bound the benchmark's activation buffer at 128 MB for the longest row (16384 columns).
int cuda_gemv_max_batch() { return 4096; }

std::string cuda_cublas_unavailable() {
#ifdef QMR_HAVE_CUBLAS
  return cublas_library().error;
#else
  return "qmr was built without cuBLAS";
#endif
}

double cuda_copy_bandwidth() {
  require_cuda_device();
  const qmr::cuda::stream_owner stream;
  return gpu::copy_bandwidth(stream.s);
}

std::vector<cuda_gemv_timing> cuda_time_gemv(const std::string& format, std::int64_t rows, std::int64_t cols,
                                             std::span<const int> batches, int runs, double rotate_bytes, bool cublas,
                                             cuda_gemv_kernel kernel) {
  require_cuda_device();
  const qmr::quant::format_spec spec = qmr::quant::parse_format(format);
  qmr::check(spec.is_quantized() && spec.bits != 7,
             "format '" + format + "': the GPU GEMV takes quantized formats of 2-6 or 8 bits");
  int max_batch = 1;
  for (const int b : batches) {
    qmr::check(b >= 1 && b <= cuda_gemv_max_batch(),
               "--batch " + std::to_string(b) + ": the GPU GEMV benchmark takes 1-" +
                   std::to_string(cuda_gemv_max_batch()) + " rows of X");
    max_batch = std::max(max_batch, b);
  }
  const qmr::cuda::stream_owner stream;
  const gpu::gemv_operands io(max_batch, cols, rows, stream.s);
  // (Batches past the lane kernel's 8 rows: refused by the CLI first, and by gemv_lanes.)
  const bool lanes = kernel == cuda_gemv_kernel::lanes;
  qmr::check(!lanes || qmr::cuda::lanes_supported(spec, cols),
             "--lanes: format '" + format + "' with " + std::to_string(cols) +
                 " columns has no lane layout (2, 3, 4 or 8 bits, units within a group)");
  qmr::check(kernel != cuda_gemv_kernel::split || qmr::cuda::split_supported(spec),
             "--split: format '" + format + "' has no split layout (2, 3, 4 or 8 bits; groups 16-256 or per-channel)");
  qmr::check(kernel != cuda_gemv_kernel::split || cols % 8 == 0,
             "--split: " + std::to_string(cols) + " columns: the split GEMV needs a multiple of 8");
  const std::vector<gpu::gemv_timing> q =
      kernel == cuda_gemv_kernel::split
          ? gpu::time_split_gemv(spec, rows, cols, batches, runs, rotate_bytes, io, stream.s, gpu::back_to_back_calls)
          : gpu::time_qmr_gemv(spec, rows, cols, batches, runs, rotate_bytes, io, stream.s, lanes, gpu::back_to_back_calls);
  std::vector<cuda_gemv_timing> out;
  for (const gpu::gemv_timing& t : q)
    out.push_back({t.m, t.seconds, t.weight_bytes, t.copies, 0.0, t.b2b_seconds, t.b2b_pdl_seconds, t.graph_pdl_seconds,
                   t.read_ceiling_seconds, t.read_ceiling_call_seconds});
#ifdef QMR_HAVE_CUBLAS
  if (cublas && cublas_library().error.empty()) {
    const gpu::cublas_handle handle(cublas_library().api, stream.s);
    const std::vector<gpu::gemv_timing> c = gpu::time_cublas_f16(handle, rows, cols, batches, runs, rotate_bytes, io, stream.s);
    for (std::size_t i = 0; i < out.size(); ++i) out[i].cublas_seconds = c[i].seconds;
  }
#else
  static_cast<void>(cublas);
#endif
  return out;
}

cuda_decode_timing cuda_time_decode(const qmr::model::model& m, std::span<const std::int32_t> prompt, int decode_tokens) {
  require_cuda_device();
  check_runs_on_gpu(m);
  qmr::model::cuda_session s(m, gpu::decode_capacity(prompt.size(), decode_tokens));
  const gpu::decode_timing t = gpu::time_decode(s, prompt, decode_tokens);
  return {t.prefill_seconds, t.decode_seconds, s.decode_bytes_per_token()};
}

}  // namespace qmr_cli
