// Benchmark: qmr::cuda::gemv per bit-width and batch on DRAM-resident weights, beside the card's measured copy bandwidth and cuBLAS fp16 (cublasGemmEx) on the same shapes, in one run; a table on stdout and a JSON file (--json PATH).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include "cuda_bench.cuh"
#include "list.hpp"
#include "qmr/kernels/cuda/gemv.cuh"
#include "qmr/quant/qtensor.hpp"

namespace {

using qmr::f16;
namespace quant = qmr::quant;
namespace qc = qmr::cuda;
namespace gpu = qmr::bench::gpu;

struct options {
  std::string json_path;
  double rotate_bytes = 1.0e9;  // weights rotated through per measurement: far above the 50-60 MB L2
  int runs = 100;               // timed calls per measurement
  bool quick = false;           // fewer shapes and runs: a smoke test
  bool lanes = false;           // also the lane-layout kernel against the tensor-core one (the formats it takes)
  bool lanes_only = false;      // only that comparison (no per-bit-width table, no cuBLAS)
  bool split = false;           // the split-K tensor-core kernel beside cuBLAS f16 (and the lane kernel at M = 1)
  bool split_only = false;      // only that table
  // Filters of the per-bit-width and lane tables (empty: the defaults), e.g. one case for a profiler.
  std::vector<std::pair<std::int64_t, std::int64_t>> shapes;
  std::vector<int> batches, bit_widths;
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
    else if (a == "--lanes") o.lanes = true;
    else if (a == "--lanes-only") o.lanes = o.lanes_only = true;
    else if (a == "--split") o.split = true;
    else if (a == "--split-only") o.split = o.split_only = true;
    else if (a == "--shapes") {
      for (const std::string& t : qmr::bench::split_list(value())) {
        const std::size_t x = t.find('x');
        if (x == std::string::npos) throw qmr::error("--shapes: '" + t + "' is not ROWSxCOLS");
        o.shapes.push_back({std::stoll(t.substr(0, x)), std::stoll(t.substr(x + 1))});
      }
    } else if (a == "--batches") {
      for (const std::string& t : qmr::bench::split_list(value())) o.batches.push_back(std::stoi(t));
    } else if (a == "--bits") {
      for (const std::string& t : qmr::bench::split_list(value())) o.bit_widths.push_back(std::stoi(t));
    } else if (a == "--help" || a == "-h") {
      std::puts("cuda_gemv [--json PATH] [--rotate-bytes B (1e9)] [--runs N (100)] [--quick] [--lanes] [--lanes-only] [--split] [--split-only]\n"
                "          [--shapes RxC,...] [--batches M,...] [--bits B,...]  (filters of both tables)");
      std::exit(0);
    } else throw qmr::error("unknown option " + a);
  }
  return o;
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
    const qc::stream_owner owner;
    const cudaStream_t stream = owner.s;

    const double copy_bw = gpu::copy_bandwidth(stream);
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
    if (!opt.shapes.empty()) shapes = opt.shapes;
    if (!opt.batches.empty()) batches = opt.batches;
    if (!opt.bit_widths.empty()) bit_widths = opt.bit_widths;

    std::vector<record> records;
    {
      const gpu::gemv_operands io(256, 16384, 16384, stream);  // the largest batch x the longest row and column
#ifdef QMR_HAVE_CUBLAS
      const gpu::cublas_handle handle(gpu::linked_cublas(), stream);
#endif
      std::printf("\n| rows x cols | M | format | us | weight GB/s | of copy bw | cuBLAS f16 us | speedup |\n"
                  "|---|---|---|---|---|---|---|---|\n");
      if (opt.lanes_only || opt.split_only) shapes.clear();
      for (const auto& [rows, cols] : shapes) {
        std::vector<double> cublas_s(batches.size(), 0.0);
#ifdef QMR_HAVE_CUBLAS
        const std::vector<gpu::gemv_timing> cub = gpu::time_cublas_f16(handle, rows, cols, batches, runs, rotate, io, stream);
        for (std::size_t b = 0; b < batches.size(); ++b) {
          const gpu::gemv_timing& t = cub[b];
          cublas_s[b] = t.seconds;
          records.push_back({"cublas_f16", "f16", rows, cols, t.m, t.seconds, t.weight_bytes, t.seconds, t.copies, 0});
          std::printf("| %lld x %lld | %d | cuBLAS f16 | %.2f | %.0f | %.0f%% | %.2f | 1.00 |\n", static_cast<long long>(rows),
                      static_cast<long long>(cols), t.m, t.seconds * 1e6, t.weight_bytes / t.seconds / 1e9,
                      100.0 * t.weight_bytes / t.seconds / copy_bw, t.seconds * 1e6);
        }
#endif
        for (int bits : bit_widths) {
          const quant::format_spec spec = quant::format_spec::quantized(bits, group, false);
          const std::vector<gpu::gemv_timing> ts = gpu::time_qmr_gemv(spec, rows, cols, batches, runs, rotate, io, stream);
          for (std::size_t b = 0; b < batches.size(); ++b) {
            const gpu::gemv_timing& t = ts[b];
            records.push_back({"qmr_gemv", spec.str(), rows, cols, t.m, t.seconds, t.weight_bytes, cublas_s[b], t.copies,
                               t.threads_per_row});
            std::printf("| %lld x %lld | %d | %s | %.2f | %.0f | %.0f%% | %.2f | %.2f |\n", static_cast<long long>(rows),
                        static_cast<long long>(cols), t.m, spec.str().c_str(), t.seconds * 1e6,
                        t.weight_bytes / t.seconds / 1e9, 100.0 * t.weight_bytes / t.seconds / copy_bw, cublas_s[b] * 1e6,
                        cublas_s[b] > 0 ? cublas_s[b] / t.seconds : 0.0);
          }
        }
        std::fflush(stdout);
      }

      // --split: the split-K tensor-core kernel (gemv_split.cuh) against cuBLAS f16 on the same
      // shapes and batches, every call timed three ways (events per call; 20 calls with PDL in a
      // CUDA graph, cuBLAS's without PDL), with the lane kernel's graph time at M = 1.
      if (opt.split) {
        std::vector<std::pair<std::int64_t, std::int64_t>> split_shapes = {
            {8192, 8192}, {4096, 14336}, {14336, 4096}, {896, 896}, {4864, 896}, {896, 4864}, {151936, 896}};
        if (opt.quick) split_shapes = {{8192, 8192}, {896, 4864}};
        if (!opt.shapes.empty()) split_shapes = opt.shapes;
        std::vector<int> split_batches = {1, 4, 8, 16};
        if (!opt.batches.empty()) split_batches = opt.batches;
        constexpr int b2b = gpu::back_to_back_calls;
        std::printf("\n| rows x cols | M | format | split us | of copy bw | split graph us | of copy bw | read ceiling us | "
                    "read ceiling us/call | "
                    "cuBLAS f16 us | cuBLAS graph us | speedup (per call) | speedup (graph) | lanes graph us | tensor-core graph us | "
                    "\n"
                    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        for (const auto& [rows, cols] : split_shapes) {
          std::vector<gpu::gemv_timing> cub(split_batches.size());
#ifdef QMR_HAVE_CUBLAS
          cub = gpu::time_cublas_f16(handle, rows, cols, split_batches, runs, rotate, io, stream, b2b);
          for (const gpu::gemv_timing& t : cub) {
            records.push_back({"cublas_f16", "f16", rows, cols, t.m, t.seconds, t.weight_bytes, t.seconds, t.copies, 0});
            records.push_back({"cublas_f16_graph", "f16", rows, cols, t.m, t.graph_pdl_seconds, t.weight_bytes, t.graph_pdl_seconds, t.copies, 0});
          }
#endif
          for (const quant::format_spec& spec :
               {quant::format_spec::quantized(2, 64, true), quant::format_spec::quantized(3, 128, true),
                quant::format_spec::quantized(4, 128, true), quant::format_spec::quantized(8, 128, true),
                quant::format_spec::quantized(4, 128, false), quant::format_spec::quantized(8, 128, false)}) {
            if (!opt.bit_widths.empty() && std::find(opt.bit_widths.begin(), opt.bit_widths.end(), spec.bits) == opt.bit_widths.end())
              continue;
            const auto sp = gpu::time_split_gemv(spec, rows, cols, split_batches, runs, rotate, io, stream, b2b);
            const std::vector<int> one = {1};
            const auto tc = gpu::time_qmr_gemv(spec, rows, cols, split_batches, runs, rotate, io, stream, false, b2b);
            std::vector<gpu::gemv_timing> ln;
            if (std::find(split_batches.begin(), split_batches.end(), 1) != split_batches.end() && qc::lanes_supported(spec, cols))
              ln = gpu::time_qmr_gemv(spec, rows, cols, one, runs, rotate, io, stream, true, b2b);
            for (std::size_t b = 0; b < split_batches.size(); ++b) {
              const gpu::gemv_timing& t = sp[b];
              const gpu::gemv_timing& c = cub[b];
              records.push_back({"qmr_gemv_split", spec.str(), rows, cols, t.m, t.seconds, t.weight_bytes, c.seconds, t.copies, 0});
              records.push_back({"qmr_gemv_split_graph_pdl", spec.str(), rows, cols, t.m, t.graph_pdl_seconds, t.weight_bytes,
                                 c.graph_pdl_seconds, t.copies, 0});
              records.push_back({"qmr_gemv_split_read_ceiling", spec.str(), rows, cols, t.m, t.read_ceiling_seconds, t.weight_bytes,
                                 0.0, t.copies, 0});
              const double lanes_graph = t.m == 1 && !ln.empty() ? ln[0].graph_pdl_seconds : 0.0;
              records.push_back({"qmr_gemv_graph_pdl", spec.str(), rows, cols, t.m, tc[b].graph_pdl_seconds, t.weight_bytes,
                                 c.graph_pdl_seconds, t.copies, tc[b].threads_per_row});
              std::printf("| %lld x %lld | %d | %s | %.2f | %.0f%% | %.2f | %.0f%% | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | "
                          "%.2f |\n",
                          static_cast<long long>(rows), static_cast<long long>(cols), t.m, spec.str().c_str(), t.seconds * 1e6,
                          100.0 * t.weight_bytes / t.seconds / copy_bw, t.graph_pdl_seconds * 1e6,
                          100.0 * t.weight_bytes / t.graph_pdl_seconds / copy_bw, t.read_ceiling_seconds * 1e6,
                          t.read_ceiling_call_seconds * 1e6, c.seconds * 1e6, c.graph_pdl_seconds * 1e6, c.seconds > 0 ? c.seconds / t.seconds : 0.0,
                          c.graph_pdl_seconds > 0 ? c.graph_pdl_seconds / t.graph_pdl_seconds : 0.0, lanes_graph * 1e6,
                          tc[b].graph_pdl_seconds * 1e6);
            }
            std::fflush(stdout);
          }
        }
      }

      // --lanes: the lane-layout kernel (gemv_lanes.cuh) beside the tensor-core one on the
      // formats it takes (issue 7's symmetric ones, the asymmetric defaults), M = 1, 4, 8, the
      // issue's shapes and Qwen2.5-0.5B's.
      if (opt.lanes) {
        std::vector<std::pair<std::int64_t, std::int64_t>> lane_shapes = {
            {8192, 8192}, {896, 896}, {4864, 896}, {896, 4864}, {151936, 896}};
        if (opt.quick) lane_shapes = {{8192, 8192}, {896, 4864}};
        if (!opt.shapes.empty()) lane_shapes = opt.shapes;
        std::vector<int> lane_batches = {1, 4, 8};
        if (!opt.batches.empty()) lane_batches = opt.batches;
        constexpr int b2b = gpu::back_to_back_calls;
        struct b2b_row {
          std::string kernel, format;
          std::int64_t rows, cols;
          gpu::gemv_timing t;
        };
        std::vector<b2b_row> b2b_rows;
        std::printf("\n| rows x cols | M | format | tensor-core us | of copy bw | lanes us | of copy bw | speedup |\n"
                    "|---|---|---|---|---|---|---|---|\n");
        for (const auto& [rows, cols] : lane_shapes)
          for (const quant::format_spec& spec :
               {quant::format_spec::quantized(2, 64, true), quant::format_spec::quantized(2, 128, true),
                quant::format_spec::quantized(3, 128, true), quant::format_spec::quantized(4, 128, true),
                quant::format_spec::quantized(8, 128, true), quant::format_spec::quantized(4, 128, false),
                quant::format_spec::quantized(8, 128, false)}) {
            if (!opt.bit_widths.empty() && std::find(opt.bit_widths.begin(), opt.bit_widths.end(), spec.bits) == opt.bit_widths.end())
              continue;
            const auto tc = gpu::time_qmr_gemv(spec, rows, cols, lane_batches, runs, rotate, io, stream, false, b2b);
            const auto ln = gpu::time_qmr_gemv(spec, rows, cols, lane_batches, runs, rotate, io, stream, true, b2b);
            for (std::size_t b = 0; b < lane_batches.size(); ++b)
              for (const auto& [name, t] : {std::pair{"qmr_gemv", tc[b]}, std::pair{"qmr_gemv_lanes", ln[b]}}) {
                const std::string k(name);
                records.push_back({k + "_b2b", spec.str(), rows, cols, t.m, t.b2b_seconds, t.weight_bytes, 0.0, t.copies, 0});
                records.push_back({k + "_b2b_pdl", spec.str(), rows, cols, t.m, t.b2b_pdl_seconds, t.weight_bytes, 0.0, t.copies, 0});
                records.push_back({k + "_graph_pdl", spec.str(), rows, cols, t.m, t.graph_pdl_seconds, t.weight_bytes, 0.0, t.copies, 0});
                records.push_back({k + "_read_ceiling", spec.str(), rows, cols, t.m, t.read_ceiling_seconds, t.weight_bytes, 0.0, t.copies, 0});
                records.push_back({k + "_read_ceiling_call", spec.str(), rows, cols, t.m, t.read_ceiling_call_seconds, t.weight_bytes,
                                   0.0, t.copies, 0});
                b2b_rows.push_back({k, spec.str(), rows, cols, t});
              }
            for (std::size_t b = 0; b < lane_batches.size(); ++b) {
              records.push_back({"qmr_gemv", spec.str(), rows, cols, tc[b].m, tc[b].seconds, tc[b].weight_bytes, 0.0,
                                 tc[b].copies, tc[b].threads_per_row});
              records.push_back({"qmr_gemv_lanes", spec.str(), rows, cols, ln[b].m, ln[b].seconds, ln[b].weight_bytes, 0.0,
                                 ln[b].copies, 0});
              std::printf("| %lld x %lld | %d | %s | %.2f | %.0f%% | %.2f | %.0f%% | %.2f |\n", static_cast<long long>(rows),
                          static_cast<long long>(cols), tc[b].m, spec.str().c_str(), tc[b].seconds * 1e6,
                          100.0 * tc[b].weight_bytes / tc[b].seconds / copy_bw, ln[b].seconds * 1e6,
                          100.0 * ln[b].weight_bytes / ln[b].seconds / copy_bw, tc[b].seconds / ln[b].seconds);
            }
            std::fflush(stdout);
          }
        std::printf("\n%d calls back to back (no event between calls; per call); \"graph\": the %d calls with PDL in one\n"
                    "CUDA graph, replayed (as a decode step runs); \"read ceiling\": a kernel that only reads the same bytes, timed so:\n"
                    "| rows x cols | M | format | kernel | us/call (events per call) | back to back us | of copy bw | "
                    "with PDL us | of copy bw | graph us | of copy bw | read ceiling us | of ceiling | "
                    "read ceiling us/call (events) | of copy bw | us/call of it |\n"
                    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n", b2b, b2b);
        for (const b2b_row& r : b2b_rows)
          std::printf("| %lld x %lld | %d | %s | %s | %.2f | %.2f | %.0f%% | %.2f | %.0f%% | %.2f | %.0f%% | %.2f | %.0f%% | %.2f | %.0f%% "
                      "| %.0f%% |\n",
                      static_cast<long long>(r.rows), static_cast<long long>(r.cols), r.t.m, r.format.c_str(), r.kernel.c_str(),
                      r.t.seconds * 1e6, r.t.b2b_seconds * 1e6, 100.0 * r.t.weight_bytes / r.t.b2b_seconds / copy_bw,
                      r.t.b2b_pdl_seconds * 1e6, 100.0 * r.t.weight_bytes / r.t.b2b_pdl_seconds / copy_bw,
                      r.t.graph_pdl_seconds * 1e6, 100.0 * r.t.weight_bytes / r.t.graph_pdl_seconds / copy_bw,
                      r.t.read_ceiling_seconds * 1e6, 100.0 * r.t.read_ceiling_seconds / r.t.graph_pdl_seconds,
                      r.t.read_ceiling_call_seconds * 1e6, 100.0 * r.t.weight_bytes / r.t.read_ceiling_call_seconds / copy_bw,
                      100.0 * r.t.read_ceiling_call_seconds / r.t.seconds);
      }
    }

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
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cuda_gemv: %s\n", e.what());
    return 1;
  }
  return 0;
}
