// Benchmark: qmr::cuda::gemv per bit-width and batch on DRAM-resident weights, beside the card's measured copy bandwidth and cuBLAS fp16 (cublasGemmEx) on the same shapes, in one run; a table on stdout and a JSON file (--json PATH).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <cuda_runtime.h>
#ifdef QMR_HAVE_CUBLAS
#include <cublas_v2.h>
#endif

#include "qmr/kernels/cuda/gemv.cuh"
#include "qmr/quant/qtensor.hpp"

namespace {

using qmr::f16;
namespace quant = qmr::quant;
namespace qc = qmr::cuda;

#ifdef QMR_HAVE_CUBLAS
#define QMR_CUBLAS_CHECK(call)                                                                        \
  do {                                                                                                \
    const cublasStatus_t status_ = (call);                                                            \
    if (status_ != CUBLAS_STATUS_SUCCESS)                                                             \
      throw qmr::error(std::string(#call) + ": cuBLAS status " + std::to_string(static_cast<int>(status_)) + \
                       " at " + __FILE__ + ":" + std::to_string(__LINE__));                           \
  } while (0)
#endif

struct options {
  std::string json_path;
  double rotate_bytes = 1.0e9;  // weights rotated through per measurement: far above the 50-60 MB L2
  int runs = 100;               // timed calls per measurement
  bool quick = false;           // fewer shapes and runs: a smoke test
};

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw qmr::error("option " + a + " needs a value");
      return argv[++i];
    };
    if (a == "--json") o.json_path = value();
    else if (a == "--rotate-bytes") o.rotate_bytes = std::stod(value());
    else if (a == "--runs") o.runs = std::stoi(value());
    else if (a == "--quick") o.quick = true;
    else if (a == "--help" || a == "-h") {
      std::puts("cuda_gemv [--json PATH] [--rotate-bytes B (1e9)] [--runs N (100)] [--quick]");
      std::exit(0);
    } else throw qmr::error("unknown option " + a);
  }
  return o;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Holds the stream for `ns` nanoseconds of GPU time, so that the host can queue
// the timed calls behind it: without it, each call's events also measure the
// host's launch latency whenever a call is shorter than its launch (~13 us
// floors on small shapes in the first H200 runs), not the GPU's time.
__global__ void hold_stream(long long ns) {
  long long start = 0, now = 0;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
  do {
    __nanosleep(1000);
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
  } while (now - start < ns);
}

// Seconds per call: CUDA events around each call, median over `runs` calls that
// rotate through `copies` (after one untimed pass over all of them, so each timed
// call reads a matrix last touched `copies` calls earlier: from DRAM once the
// copies exceed L2). The timed calls are queued behind hold_stream and so run
// back to back on the GPU, as in a decode step.
template <class F>
double time_median(int copies, int runs, cudaStream_t stream, F&& call) {
  for (int i = 0; i < copies; ++i) call(i);
  const int n = std::max(runs, 2);
  std::vector<cudaEvent_t> events(static_cast<std::size_t>(2 * n));
  for (auto& e : events) QMR_CUDA_CHECK(cudaEventCreate(&e));
  // 20 us of hold per call: longer than the host needs to queue a call and its events.
  hold_stream<<<1, 1, 0, stream>>>(20000ll * n + 1000000ll);
  QMR_CUDA_CHECK(cudaGetLastError());
  for (int i = 0; i < n; ++i) {
    QMR_CUDA_CHECK(cudaEventRecord(events[static_cast<std::size_t>(2 * i)], stream));
    call(i % copies);
    QMR_CUDA_CHECK(cudaEventRecord(events[static_cast<std::size_t>(2 * i + 1)], stream));
  }
  QMR_CUDA_CHECK(cudaStreamSynchronize(stream));
  std::vector<double> seconds(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    float ms = 0.0f;
    QMR_CUDA_CHECK(cudaEventElapsedTime(&ms, events[static_cast<std::size_t>(2 * i)], events[static_cast<std::size_t>(2 * i + 1)]));
    seconds[static_cast<std::size_t>(i)] = 1e-3 * ms;
  }
  for (auto& e : events) QMR_CUDA_CHECK(cudaEventDestroy(e));
  return median(seconds);
}

// Device-to-device copy bandwidth, counting bytes read plus bytes written.
double copy_bandwidth(cudaStream_t stream) {
  const std::size_t bytes = std::size_t{1} << 30;
  qc::device_buffer src(bytes), dst(bytes);
  QMR_CUDA_CHECK(cudaMemsetAsync(src.data(), 1, bytes, stream));
  const double s = time_median(1, 20, stream, [&](int) {
    QMR_CUDA_CHECK(cudaMemcpyAsync(dst.data(), src.data(), bytes, cudaMemcpyDeviceToDevice, stream));
  });
  return 2.0 * static_cast<double>(bytes) / s;
}

// Random f16 in [-1, 1) from a hash of the index.
__global__ void fill_random_f16(f16* p, std::size_t n, std::uint32_t seed) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    std::uint32_t h = static_cast<std::uint32_t>(i) * 2654435761u ^ seed;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    p[i].bits = __half_as_ushort(__float2half_rn(static_cast<float>(h >> 8) * (2.0f / 16777216.0f) - 1.0f));
  }
}

void fill_f16(f16* p, std::size_t n, std::uint32_t seed, cudaStream_t stream) {
  fill_random_f16<<<1024, 256, 0, stream>>>(p, n, seed);
  QMR_CUDA_CHECK(cudaGetLastError());
}

int copies_for(double bytes_each, double rotate_bytes) {
  return std::max(2, static_cast<int>(rotate_bytes / bytes_each + 0.999));
}

struct record {
  std::string kernel, format;
  std::int64_t rows, cols;
  int m;
  double seconds, weight_bytes, cublas_seconds;
  int copies, threads_per_row;
};

}  // namespace

int main(int argc, char** argv) {
  try {
    const options opt = parse(argc, argv);
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
      std::puts("no CUDA device: skipped");
      return 77;
    }
    cudaDeviceProp prop{};
    QMR_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    cudaStream_t stream = nullptr;
    QMR_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));

    const double copy_bw = copy_bandwidth(stream);
    std::printf("device: %s, sm_%d%d, %d SMs, L2 %d MB; measured D2D copy bandwidth %.0f GB/s (read + write)\n",
                prop.name, prop.major, prop.minor, prop.multiProcessorCount, prop.l2CacheSize >> 20, copy_bw / 1e9);

    std::vector<std::pair<std::int64_t, std::int64_t>> shapes = {
        {8192, 8192}, {4096, 14336}, {14336, 4096}, {896, 4864}, {4864, 896}};  // (rows = out, cols = in)
    std::vector<int> batches = {1, 4, 8, 16, 64, 256};
    std::vector<int> bit_widths = {2, 3, 4, 5, 6, 8};
    const int group = 128;
    int runs = opt.runs;
    double rotate = opt.rotate_bytes;
    if (opt.quick) {
      shapes = {{8192, 8192}, {896, 4864}};
      runs = 50;
      rotate = 2.5e8;
    }

    std::vector<record> records;
    qc::device_buffer dx(256 * 16384 * sizeof(f16)), dy(256 * 16384 * sizeof(float));  // the largest batch x the longest row
    fill_f16(dx.as<f16>(), 256 * 16384, 99, stream);
#ifdef QMR_HAVE_CUBLAS
    cublasHandle_t handle = nullptr;
    QMR_CUBLAS_CHECK(cublasCreate(&handle));
    QMR_CUBLAS_CHECK(cublasSetStream(handle, stream));
#endif
    std::printf("\n| rows x cols | M | format | us | weight GB/s | of copy bw | cuBLAS f16 us | speedup |\n"
                "|---|---|---|---|---|---|---|---|\n");
    for (const auto& [rows, cols] : shapes) {
      // cuBLAS fp16: Y[M, rows] = X[M, cols] · Wᵀ, W row-major [rows, cols] (column-major: cols x rows, transposed).
      std::vector<double> cublas_s(batches.size(), 0.0);
#ifdef QMR_HAVE_CUBLAS
      {
        const double bytes = 2.0 * static_cast<double>(rows * cols);
        const int copies = copies_for(bytes, rotate);
        std::vector<qc::device_buffer> w;
        for (int i = 0; i < copies; ++i) {
          w.emplace_back(static_cast<std::size_t>(rows * cols) * sizeof(f16));
          fill_f16(w.back().as<f16>(), static_cast<std::size_t>(rows * cols), 1000u + static_cast<unsigned>(i), stream);
        }
        for (std::size_t b = 0; b < batches.size(); ++b) {
          const int M = batches[b];
          const float alpha = 1.0f, beta = 0.0f;
          cublas_s[b] = time_median(copies, runs, stream, [&](int i) {
            QMR_CUBLAS_CHECK(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(rows), M, static_cast<int>(cols),
                                          &alpha, w[static_cast<std::size_t>(i)].data(), CUDA_R_16F, static_cast<int>(cols),
                                          dx.data(), CUDA_R_16F, static_cast<int>(cols), &beta, dy.data(), CUDA_R_16F,
                                          static_cast<int>(rows), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
          });
          records.push_back({"cublas_f16", "f16", rows, cols, M, cublas_s[b], bytes, cublas_s[b], copies, 0});
          std::printf("| %lld x %lld | %d | cuBLAS f16 | %.2f | %.0f | %.0f%% | %.2f | 1.00 |\n", static_cast<long long>(rows),
                      static_cast<long long>(cols), M, cublas_s[b] * 1e6, bytes / cublas_s[b] / 1e9,
                      100.0 * bytes / cublas_s[b] / copy_bw, cublas_s[b] * 1e6);
        }
      }
#endif
      for (int bits : bit_widths) {
        const quant::format_spec spec = quant::format_spec::quantized(bits, group, false);
        quant::qtensor q(spec, rows, cols);
        std::uint64_t state = 0x9e3779b97f4a7c15ull * static_cast<std::uint64_t>(bits) + static_cast<std::uint64_t>(rows);
        const auto next = [&]() {
          state = state * 6364136223846793005ull + 1442695040888963407ull;
          return static_cast<std::uint32_t>(state >> 32);
        };
        for (std::size_t i = 0; i < q.codes().size(); ++i) q.codes().data()[i] = static_cast<std::uint8_t>(next() >> 24);
        for (std::size_t i = 0; i < q.scales().size(); ++i)
          q.scales().data()[i] = qmr::to_f16(0.001f + static_cast<float>(next() >> 8) * (0.01f / 16777216.0f));
        for (std::size_t i = 0; i < q.zeros().size(); ++i) q.zeros().data()[i] = static_cast<std::uint8_t>(next() >> 24);
        std::vector<qc::device_qtensor> w;
        w.push_back(qc::upload(q.view(), stream));
        const double bytes = static_cast<double>(w[0].weight_bytes());
        const int copies = copies_for(static_cast<double>(w[0].device_bytes()), rotate);
        for (int i = 1; i < copies; ++i) w.push_back(qc::clone(w[0], stream));
        for (std::size_t b = 0; b < batches.size(); ++b) {
          const int M = batches[b];
          const double s = time_median(copies, runs, stream, [&](int i) {
            qc::gemv(w[static_cast<std::size_t>(i)], dx.as<const f16>(), dy.as<f16>(), M, stream);
          });
          records.push_back({"qmr_gemv", spec.str(), rows, cols, M, s, bytes, cublas_s[b], copies, w[0].threads_per_row});
          std::printf("| %lld x %lld | %d | %s | %.2f | %.0f | %.0f%% | %.2f | %.2f |\n", static_cast<long long>(rows),
                      static_cast<long long>(cols), M, spec.str().c_str(), s * 1e6, bytes / s / 1e9,
                      100.0 * bytes / s / copy_bw, cublas_s[b] * 1e6, cublas_s[b] > 0 ? cublas_s[b] / s : 0.0);
        }
      }
      std::fflush(stdout);
    }
#ifdef QMR_HAVE_CUBLAS
    QMR_CUBLAS_CHECK(cublasDestroy(handle));
#endif

    if (!opt.json_path.empty()) {
      std::FILE* f = std::fopen(opt.json_path.c_str(), "w");
      if (f == nullptr) throw qmr::error("cannot write " + opt.json_path);
      std::fprintf(f, "{\n  \"bench\": \"cuda_gemv\",\n  \"device\": \"%s\",\n  \"sm\": %d,\n  \"sm_count\": %d,\n", prop.name,
                   prop.major * 10 + prop.minor, prop.multiProcessorCount);
      std::fprintf(f, "  \"copy_bandwidth_bytes_per_second\": %.6e,\n  \"records\": [\n", copy_bw);
      for (std::size_t i = 0; i < records.size(); ++i) {
        const record& r = records[i];
        std::fprintf(f,
                     "    {\"kernel\": \"%s\", \"format\": \"%s\", \"rows\": %lld, \"cols\": %lld, \"m\": %d, "
                     "\"seconds\": %.6e, \"weight_bytes\": %.0f, \"weight_bytes_per_second\": %.6e, "
                     "\"fraction_of_copy_bandwidth\": %.4f, \"cublas_seconds\": %.6e, \"speedup_vs_cublas\": %.4f, "
                     "\"copies\": %d, \"threads_per_row\": %d}%s\n",
                     r.kernel.c_str(), r.format.c_str(), static_cast<long long>(r.rows), static_cast<long long>(r.cols), r.m,
                     r.seconds, r.weight_bytes, r.weight_bytes / r.seconds, r.weight_bytes / r.seconds / copy_bw,
                     r.cublas_seconds, r.cublas_seconds > 0 ? r.cublas_seconds / r.seconds : 0.0, r.copies,
                     r.threads_per_row, i + 1 < records.size() ? "," : "");
      }
      std::fprintf(f, "  ]\n}\n");
      std::fclose(f);
    }
    QMR_CUDA_CHECK(cudaStreamDestroy(stream));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cuda_gemv: %s\n", e.what());
    return 1;
  }
  return 0;
}
