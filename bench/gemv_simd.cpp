// SIMD GEMV weight bandwidth and GEMM GFLOP/s per format and activation mode (f32, or the int8-activation a8 mode), printed beside the machine's measured read bandwidth and FMA peak.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <xsimd/xsimd.hpp>

#include "bandwidth.hpp"
#include "fma_peak.hpp"
#include "matmul_bench.hpp"
#include "qmr/kernels/simd/dispatch.hpp"
#include "qmr/quant/format.hpp"

namespace {

using namespace qmr;
using qmr::bench::dispatched_isa;
using qmr::bench::matrix_copy;
using qmr::bench::parse_shape;
using qmr::bench::split;
using qmr::bench::time_calls;

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"SIMD GEMV/GEMM speed per weight format against the measured read bandwidth and FMA peak"};
  std::string shapes = "4096x4096,4096x14336,14336x4096,8192x8192,896x896,896x4864,4864x896,151936x896";
  std::string formats = "bf16,w8g128,w6g128,w5g128,w4g128,w3g128,w2g64";
  std::string thread_list = "1,2";
  std::string gemm_batches = "16,64,256";
  std::string gemm_shape = "4096x4096";
  std::string gemm_formats = "bf16,w4g128";
  // GEMV copies: 1 GB, not 256 MB: this machine's L3 (a victim cache, large on
  // V-Cache EPYCs) kept part of a 256 MB rotation (bf16 4096x4096, 1 thread: 133% of
  // the measured read bandwidth at 256 MB, 103% at 1 GB and at 2 GB).
  int rotate_mb = 1024;
  std::string acts = "f32";
  double seconds = 0.15;  // per measurement: keeps the default run (8 shapes x 7 formats x 2 thread counts) near a minute
  // Paired rounds per GEMV (a probe, then a pass over every copy; time_paired_gemv): 5 passes
  // of >= 1 GB and 5 probes of 512 MB take ~0.8 s at the Xeon VM's 10-20 GB/s.
  int rounds = 5;
  app.add_option("--shapes", shapes, "GEMV shapes NxK (output rows x input columns)")->capture_default_str();
  app.add_option("--formats", formats, "GEMV weight formats, bf16 or qmr specs")->capture_default_str();
  app.add_option("--threads", thread_list, "thread counts")->capture_default_str();
  app.add_option("--rotate-mb", rotate_mb, "GEMV rotates through copies of each matrix totalling at least this")
      ->capture_default_str();
  app.add_option("--seconds", seconds, "minimum time per measurement")->capture_default_str();
  app.add_option("--rounds", rounds, "GEMV: paired rounds (a bandwidth probe, then one pass over the copies); 0 skips them")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--gemm-batches", gemm_batches, "GEMM batch sizes (rows of X); empty skips GEMM")->capture_default_str();
  app.add_option("--gemm-shape", gemm_shape, "GEMM weight shape NxK")->capture_default_str();
  app.add_option("--gemm-formats", gemm_formats, "GEMM weight formats")->capture_default_str();
  app.add_option("--act", acts, "activation modes: f32 (exact activations), a8 (int8 per 32 columns), lut (f32 through the table GEMV over weights repacked at load, 2-6 bits, AVX-512), or a list: f32,a8,lut")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  try {
    std::printf("SIMD kernels dispatched to %s (a8 mode: %s)\n\n", dispatched_isa(), simd::a8_dispatched_isa());
    std::vector<bool> a8_modes;
    bool lut_mode = false;  // "lut": f32 activations through the table GEMV over repacked 2-6-bit weights
    for (const std::string& a : split(acts)) {
      if (a != "f32" && a != "a8" && a != "lut") throw error("--act '" + a + "': expected f32, a8 or lut");
      if (a == "lut") lut_mode = true;
      else a8_modes.push_back(a == "a8");
    }
    if (lut_mode && !simd::lut_gemv_fast()) {
      std::printf("(--act lut skipped: the table GEMV needs AVX-512BW)\n");
      lut_mode = false;
    }
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
    const aligned_buffer<float> probe = bench::bandwidth_buffer(rounds > 0 ? bench::gemv_probe_bytes : 0);
    std::printf("\nGEMV, batch 1, rotating through >= %d MB of copies per matrix: weight bytes per second; "
                "paired: median over %d rounds of a pass's GB/s over a bandwidth probe taken just before it\n\n",
                rotate_mb, rounds);
    std::printf("| shape NxK | format | act | MB/matrix | copies |");
    for (const auto& l : machine) std::printf(" %dT GB/s | %dT of read bw | %dT paired |", l.threads, l.threads, l.threads);
    std::printf("\n|---|---|---|---|---|");
    for (std::size_t i = 0; i < machine.size(); ++i) std::printf("---|---|---|");
    std::printf("\n");
    for (const std::string& shape_text : split(shapes)) {
      const auto [n, k] = parse_shape(shape_text);
      for (const std::string& f : split(formats)) {
        const quant::format_spec spec = quant::parse_format(f);
        const std::vector<matrix_copy> copies =
            bench::make_copies(spec, n, k, static_cast<std::uint64_t>(rotate_mb) << 20, rng);
        std::vector<float> x(static_cast<std::size_t>(k)), y(static_cast<std::size_t>(n));  // x [K], y [N]
        for (std::size_t i = 0; i < x.size(); ++i) x[i] = 0.5f + 0.001f * static_cast<float>(i % 97);
        // One table row: call(pool, i) runs copy i, timed on every thread count.
        const auto measure = [&](const char* act, auto&& call) {
          std::printf("| %s | %s | %s | %.1f | %zu |", shape_text.c_str(), f.c_str(), act,
                      static_cast<double>(copies[0].bytes()) / 1e6, copies.size());
          for (const auto& l : machine) {
            thread_pool pool(static_cast<unsigned>(l.threads));
            const double s = time_calls(copies.size(), seconds, [&](std::size_t i) { call(pool, i); });
            const double gbps = static_cast<double>(copies[0].bytes()) / s;
            std::printf(" %.2f | %.0f%% |", gbps / 1e9, 100.0 * gbps / l.bandwidth);
            if (rounds > 0) {
              const bench::paired_result p =
                  bench::time_paired_gemv(pool, probe, copies.size(), static_cast<double>(copies[0].bytes()), rounds,
                                          [&](std::size_t i) { call(pool, i); });
              std::printf(" %.0f%% of %.1f |", 100.0 * p.fraction, p.limit / 1e9);
            } else {
              std::printf(" - |");
            }
          }
          std::printf("\n");
          std::fflush(stdout);
        };
        for (const bool a8 : a8_modes) {
          if (a8 && !spec.is_quantized()) continue;  // dense weights have no a8 mode
          measure(a8 ? "a8" : "f32", [&](thread_pool& pool, std::size_t i) {
            copies[i].matmul({x.data(), 1, k}, {y.data(), 1, n}, pool, a8);
          });
        }
        if (lut_mode && spec.is_quantized() && simd::lut_supported_bits(spec.bits)) {
          // The same copies repacked (lut_gemv.hpp); GB/s counts the bytes of the format.
          std::vector<simd::lut_matrix> luts;
          for (const matrix_copy& c : copies) luts.emplace_back(c.q.view());
          measure("lut", [&](thread_pool& pool, std::size_t i) {
            simd::lut_gemv_dispatched(luts[i], std::span<const float>(x), std::span<float>(y), &pool);
          });
        }
      }
    }

    if (!split(gemm_batches).empty()) {
      const auto [n, k] = parse_shape(gemm_shape);
      std::printf("\nGEMM %s (one matrix, cache-warm panels): GFLOP/s and fraction of the FMA peak\n\n", gemm_shape.c_str());
      std::printf("paired: median over %d rounds of a call's GFLOP/s over an FMA-peak probe (0.05 s) taken just before it\n\n",
                  std::max(rounds, 1));
      std::printf("| format | act | batch |");
      for (const auto& l : machine) std::printf(" %dT GFLOP/s | %dT of peak | %dT paired |", l.threads, l.threads, l.threads);
      std::printf("\n|---|---|---|");
      for (std::size_t i = 0; i < machine.size(); ++i) std::printf("---|---|---|");
      std::printf("\n");
      for (const std::string& f : split(gemm_formats)) {
        const matrix_copy w(quant::parse_format(f), n, k, rng);
        // "f32", "a8", and "lut" (lut_gemm over the table repack: the prefill of a model repacked for decode).
        std::vector<std::string> modes;
        for (const bool a8 : a8_modes)
          if (!a8 || w.spec.is_quantized()) modes.emplace_back(a8 ? "a8" : "f32");
        std::optional<simd::lut_matrix> lut;
        if (lut_mode && w.spec.is_quantized() && simd::lut_supported_bits(w.spec.bits)) {
          lut.emplace(w.q.view());
          modes.emplace_back("lut");
        }
        for (const std::string& mode : modes)
          for (const std::string& b : split(gemm_batches)) {
            const std::int64_t m = std::stoll(b);
            std::vector<float> x(static_cast<std::size_t>(m * k), 0.5f), y(static_cast<std::size_t>(m * n));  // [M, K], [M, N]
            const auto call = [&](thread_pool& pool) {
              if (mode == "lut") simd::lut_gemm_dispatched(*lut, 0, n, {x.data(), m, k}, {y.data(), m, n}, &pool);
              else w.matmul({x.data(), m, k}, {y.data(), m, n}, pool, mode == "a8");
            };
            std::printf("| %s | %s | %lld |", f.c_str(), mode.c_str(), static_cast<long long>(m));
            for (const auto& l : machine) {
              thread_pool pool(static_cast<unsigned>(l.threads));
              const double s = time_calls(1, seconds, [&](std::size_t) { call(pool); });
              const double flops = 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k) / s;
              std::printf(" %.1f | %.0f%% |", flops / 1e9, 100.0 * flops / l.peak);
              const bench::paired_result p =
                  bench::time_paired_gemm(pool, flops * s, std::max(rounds, 1), 0.05, [&] { call(pool); });
              std::printf(" %.0f%% of %.1f |", 100.0 * p.fraction, p.limit / 1e9);
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
