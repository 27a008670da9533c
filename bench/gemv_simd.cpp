// SIMD GEMV weight bandwidth and GEMM GFLOP/s per format, printed beside the machine's measured read bandwidth and FMA peak.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <xsimd/xsimd.hpp>

#include "bandwidth.hpp"
#include "fma_peak.hpp"
#include "qmr/core/aligned_buffer.hpp"
#include "qmr/kernels/simd/dispatch.hpp"
#include "qmr/quant/format.hpp"
#include "qmr/quant/qtensor.hpp"

namespace {

using namespace qmr;

using qmr::bench::split;

// "4096x14336" -> {4096, 14336}: output rows N × input columns K.
std::pair<std::int64_t, std::int64_t> parse_shape(const std::string& s) {
  const auto x = s.find('x');
  if (x == std::string::npos) throw error("shape '" + s + "': expected NxK");
  return {std::stoll(s.substr(0, x)), std::stoll(s.substr(x + 1))};
}

const char* dispatched_isa() {
  const auto isa = xsimd::available_architectures();
#if defined(__aarch64__)
  return isa.neon64 ? "neon64" : "none";
#else
  return isa.avx512bw ? "avx512bw" : isa.fma3_avx2 ? "avx2+fma" : "sse2";
#endif
}

// One weight matrix in a format, filled with random bytes (every bit pattern is a
// valid code; scales are kept finite), and the views the kernels read.
struct matrix_copy {
  quant::qtensor q;              // quantized storage
  aligned_buffer<bf16> dense;    // [N, K] when the format is dense (bf16 only here)
  quant::format_spec spec;
  std::int64_t n = 0, k = 0;

  matrix_copy(const quant::format_spec& s, std::int64_t rows, std::int64_t cols, std::mt19937_64& rng)
      : spec(s), n(rows), k(cols) {
    const auto fill = [&](auto& buf) {
      auto* bytes = reinterpret_cast<std::uint8_t*>(buf.data());
      const std::size_t size = buf.size() * sizeof(buf[0]);
      for (std::size_t i = 0; i + 8 <= size; i += 8) {
        const std::uint64_t r = rng();
        std::memcpy(bytes + i, &r, 8);
      }
    };
    if (spec.is_quantized()) {
      q = quant::qtensor(spec, rows, cols);
      fill(q.codes());
      fill(q.zeros());
      for (auto& v : q.scales()) v = to_f16(0.01f);
    } else {
      check(spec.dense == dtype::bf16, "the bench's dense format is bf16");
      dense = aligned_buffer<bf16>(static_cast<std::size_t>(rows * cols));
      // Small bf16 values: the low byte random, the high byte 0x3c (about 0.01).
      for (std::size_t i = 0; i < dense.size(); ++i) dense[i] = bf16{static_cast<std::uint16_t>(0x3c00u | (rng() & 0xffu))};
    }
  }

  std::uint64_t bytes() const {
    return spec.is_quantized() ? static_cast<std::uint64_t>(q.layout().total_bytes())
                               : static_cast<std::uint64_t>(n * k) * 2u;
  }

  void matmul(matrix_view<const float> x, matrix_view<float> y, thread_pool& pool) const {
    if (spec.is_quantized()) {
      simd::gemm_dispatched(q.view(), x, y, &pool);
    } else {
      const auto view = tensor_view::contiguous(reinterpret_cast<const std::byte*>(dense.data()), dtype::bf16,
                                                make_shape({n, k}));
      simd::gemm_dispatched(view, x, y, &pool);
    }
  }
};

// Seconds per call of fn(i) over rotating copies, at least `min_seconds` in total.
template <class F>
double time_calls(std::size_t copies, double min_seconds, F&& fn) {
  for (std::size_t i = 0; i < copies; ++i) fn(i);  // warm-up: page faults, the pool's threads
  std::size_t calls = 0;
  const auto t0 = std::chrono::steady_clock::now();
  double elapsed = 0;
  do {
    fn(calls % copies);
    ++calls;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  } while (elapsed < min_seconds || calls < copies);
  return elapsed / static_cast<double>(calls);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"SIMD GEMV/GEMM speed per weight format against the measured read bandwidth and FMA peak"};
  std::string shapes = "4096x4096,4096x14336,14336x4096,8192x8192,896x896,896x4864,4864x896,151936x896";
  std::string formats = "bf16,w8g128,w6g128,w5g128,w4g128,w3g128,w2g64";
  std::string thread_list = "1,2";
  std::string gemm_batches = "16,64,256";
  std::string gemm_shape = "4096x4096";
  std::string gemm_formats = "bf16,w4g128";
  int rotate_mb = 256;
  double seconds = 0.15;  // per measurement: keeps the default run (8 shapes x 7 formats x 2 thread counts) near a minute
  app.add_option("--shapes", shapes, "GEMV shapes NxK (output rows x input columns)")->capture_default_str();
  app.add_option("--formats", formats, "GEMV weight formats, bf16 or qmr specs")->capture_default_str();
  app.add_option("--threads", thread_list, "thread counts")->capture_default_str();
  app.add_option("--rotate-mb", rotate_mb, "GEMV rotates through copies of each matrix totalling at least this")
      ->capture_default_str();
  app.add_option("--seconds", seconds, "minimum time per measurement")->capture_default_str();
  app.add_option("--gemm-batches", gemm_batches, "GEMM batch sizes (rows of X); empty skips GEMM")->capture_default_str();
  app.add_option("--gemm-shape", gemm_shape, "GEMM weight shape NxK")->capture_default_str();
  app.add_option("--gemm-formats", gemm_formats, "GEMM weight formats")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  try {
    std::printf("SIMD kernels dispatched to %s\n\n", dispatched_isa());
    struct limits {
      int threads;
      double bandwidth, peak;
    };
    std::vector<limits> machine;
    std::printf("| threads | read GB/s | f32 FMA peak GFLOP/s |\n|---|---|---|\n");
    for (const std::string& t : split(thread_list)) {
      thread_pool pool(static_cast<unsigned>(std::stoi(t)));
      const double bw = bench::read_bandwidth(pool);
      const double peak = xsimd::dispatch<simd::dispatch_archs>(bench::fma_peak_fn{})(pool, 0.2);
      machine.push_back({std::stoi(t), bw, peak});
      std::printf("| %d | %.2f | %.1f |\n", machine.back().threads, bw / 1e9, peak / 1e9);
    }

    std::mt19937_64 rng(1);
    std::printf("\nGEMV, batch 1, rotating through >= %d MB of copies per matrix: weight bytes per second\n\n", rotate_mb);
    std::printf("| shape NxK | format | MB/matrix | copies |");
    for (const auto& l : machine) std::printf(" %dT GB/s | %dT of read bw |", l.threads, l.threads);
    std::printf("\n|---|---|---|---|");
    for (std::size_t i = 0; i < machine.size(); ++i) std::printf("---|---|");
    std::printf("\n");
    for (const std::string& shape_text : split(shapes)) {
      const auto [n, k] = parse_shape(shape_text);
      for (const std::string& f : split(formats)) {
        const quant::format_spec spec = quant::parse_format(f);
        std::vector<matrix_copy> copies;
        const std::uint64_t target = static_cast<std::uint64_t>(rotate_mb) << 20;
        std::uint64_t total = 0;
        do {
          copies.emplace_back(spec, n, k, rng);
          total += copies.back().bytes();
        } while (total < target);
        std::vector<float> x(static_cast<std::size_t>(k), 0.5f), y(static_cast<std::size_t>(n));  // x [K], y [N]
        std::printf("| %s | %s | %.1f | %zu |", shape_text.c_str(), f.c_str(), static_cast<double>(copies[0].bytes()) / 1e6,
                    copies.size());
        for (const auto& l : machine) {
          thread_pool pool(static_cast<unsigned>(l.threads));
          const double s = time_calls(copies.size(), seconds, [&](std::size_t i) {
            copies[i].matmul({x.data(), 1, k}, {y.data(), 1, n}, pool);
          });
          const double gbps = static_cast<double>(copies[0].bytes()) / s;
          std::printf(" %.2f | %.0f%% |", gbps / 1e9, 100.0 * gbps / l.bandwidth);
        }
        std::printf("\n");
        std::fflush(stdout);
      }
    }

    if (!split(gemm_batches).empty()) {
      const auto [n, k] = parse_shape(gemm_shape);
      std::printf("\nGEMM %s (one matrix, cache-warm panels): GFLOP/s and fraction of the FMA peak\n\n", gemm_shape.c_str());
      std::printf("| format | batch |");
      for (const auto& l : machine) std::printf(" %dT GFLOP/s | %dT of peak |", l.threads, l.threads);
      std::printf("\n|---|---|");
      for (std::size_t i = 0; i < machine.size(); ++i) std::printf("---|---|");
      std::printf("\n");
      for (const std::string& f : split(gemm_formats)) {
        const matrix_copy w(quant::parse_format(f), n, k, rng);
        for (const std::string& b : split(gemm_batches)) {
          const std::int64_t m = std::stoll(b);
          std::vector<float> x(static_cast<std::size_t>(m * k), 0.5f), y(static_cast<std::size_t>(m * n));  // [M, K], [M, N]
          std::printf("| %s | %lld |", f.c_str(), static_cast<long long>(m));
          for (const auto& l : machine) {
            thread_pool pool(static_cast<unsigned>(l.threads));
            const double s = time_calls(1, seconds, [&](std::size_t) { w.matmul({x.data(), m, k}, {y.data(), m, n}, pool); });
            const double flops = 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k) / s;
            std::printf(" %.1f | %.0f%% |", flops / 1e9, 100.0 * flops / l.peak);
          }
          std::printf("\n");
          std::fflush(stdout);
        }
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gemv_simd: %s\n", e.what());
    return 1;
  }
  return 0;
}
