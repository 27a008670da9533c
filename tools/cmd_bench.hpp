// `qmr bench`: the SIMD kernels' speed beside the machine's limits measured in the same run (read bandwidth, f32 FMA peak), as a table and as JSON Lines.
//
//   qmr bench --kernel gemv|gemm|decode --quant SPEC[,SPEC...] --shape NxK[,NxK...]
//             [--batch B] [--threads T[,T...]] [--act f32|a8[,...]] [--json FILE]
//
// gemv: batch rows of X (1-8) times an N×K matrix, rotating through copies totalling
// --rotate-mb so that every call reads its weights from DRAM; the bound is the
// measured read bandwidth. gemm: one matrix, batch rows of X (default 64); the bound
// is the measured FMA peak. decode: tokens/s of a Qwen2.5-0.5B-shaped random model
// (written to --work once per format), the bound being its weight bytes per token
// over the read bandwidth; --shape does not apply. --act a8 runs quantized weights in
// the int8-activation mode (dense weights always take f32 activations).
//
// One JSON object per line and measurement: kernel, quant, act, isa, m (output rows N),
// k, batch, threads, seconds (per call or per token), gbps (weight bytes per second),
// bound_gbps (measured read bandwidth), fraction (of the bound: bandwidth for gemv and
// decode, FMA peak for gemm), and for gemm gflops and peak_gflops, for decode
// tokens_per_s, bound_tokens_per_s and bytes_per_token.
#pragma once

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "../bench/bandwidth.hpp"
#include "../bench/fma_peak.hpp"
#include "../bench/matmul_bench.hpp"
#include "qmr/io/synthetic_checkpoint.hpp"
#include "qmr/kernels/simd/dispatch.hpp"
#include "qmr/model/forward.hpp"
#include "qmr/quant/quantize_checkpoint.hpp"

namespace qmr_cli {

struct bench_args {
  std::string kernel = "gemv", quant = "w4g128", shape = "4096x4096", act = "f32", threads = "1", json;
  std::int64_t batch = 0;  // 0: 1 for gemv, 64 for gemm
  double seconds = 0.3;    // per measurement
  int rotate_mb = 1024;    // GEMV copies: past the L3 of large server parts too (see bench/gemv_simd.cpp)
  std::string work = (std::filesystem::temp_directory_path() / "qmr-bench-qwen2.5-0.5b").string();
  int prefill = 16, decode = 16, layers = 24;
};

inline CLI::App* add_bench_command(CLI::App& app, bench_args& a) {
  auto* cmd = app.add_subcommand("bench", "Time the SIMD kernels against the machine's measured read bandwidth and FMA peak");
  cmd->add_option("--kernel", a.kernel, "gemv | gemm | decode")->check(CLI::IsMember({"gemv", "gemm", "decode"}))->capture_default_str();
  cmd->add_option("--quant", a.quant, "weight formats, comma-separated: qmr specs (w4g128, w3g64s, ...) or bf16")
      ->capture_default_str();
  cmd->add_option("--shape", a.shape, "matrix shapes NxK (output rows x input columns), comma-separated")->capture_default_str();
  cmd->add_option("--batch", a.batch, "rows of X (gemv: 1-8, default 1; gemm: default 64)")->capture_default_str();
  cmd->add_option("--threads", a.threads, "thread counts, comma-separated")->capture_default_str();
  cmd->add_option("--act", a.act, "activations: f32 (exact), a8 (int8 per 32 columns, integer dot products), or f32,a8")
      ->capture_default_str();
  cmd->add_option("--json", a.json, "also write one JSON record per measurement to this file (JSON Lines)");
  cmd->add_option("--seconds", a.seconds, "minimum time per measurement")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--rotate-mb", a.rotate_mb, "gemv: rotate through copies of each matrix totalling at least this")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--work", a.work, "decode: where the random checkpoints are written (reused when present)")
      ->capture_default_str();
  cmd->add_option("--layers", a.layers, "decode: transformer layers of the random model")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--tokens", a.decode, "decode: tokens decoded per measurement")->capture_default_str()->check(CLI::PositiveNumber);
  return cmd;
}

namespace detail {

// The machine's limits for one thread count, measured once per run.
struct bench_limits {
  unsigned threads;
  double read_bytes_per_s;
  double peak_flops;  // 0 until a gemm needs it
};

inline std::vector<bool> parse_acts(const std::string& text) {
  std::vector<bool> modes;
  for (const std::string& a : qmr::bench::split(text)) {
    if (a != "f32" && a != "a8") throw qmr::error("--act '" + a + "': expected f32 or a8");
    modes.push_back(a == "a8");
  }
  if (modes.empty()) throw qmr::error("--act: no activation mode given");
  return modes;
}

inline std::vector<unsigned> parse_threads(const std::string& text) {
  std::vector<unsigned> out;
  for (const std::string& t : qmr::bench::split(text)) {
    std::size_t used = 0;
    long v = 0;
    try {
      v = std::stol(t, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != t.size() || v < 1 || v > 1024) throw qmr::error("--threads '" + t + "': expected a positive count");
    out.push_back(static_cast<unsigned>(v));
  }
  if (out.empty()) throw qmr::error("--threads: no thread count given");
  return out;
}

// Appends records to the --json file (if any) as they are measured.
class json_lines {
 public:
  explicit json_lines(const std::string& path) : path_(path) {
    if (path.empty()) return;
    out_.open(path, std::ios::binary | std::ios::trunc);
    if (!out_) throw qmr::error("cannot create file", qmr::in_file(path));
  }
  void write(const nlohmann::json& record) {
    if (path_.empty()) return;
    out_ << record.dump() << '\n';
    out_.flush();
    if (!out_) throw qmr::error("write failed", qmr::in_file(path_));
  }

 private:
  std::string path_;
  std::ofstream out_;
};

inline int run_matmul_bench(const bench_args& a, std::vector<bench_limits>& limits, json_lines& json) {
  const bool gemm = a.kernel == "gemm";
  const std::int64_t batch = a.batch > 0 ? a.batch : gemm ? 64 : 1;
  if (!gemm && batch > 8) throw qmr::error("gemv batch is 1-8 rows of X (--kernel gemm for more)");
  const std::vector<bool> acts = parse_acts(a.act);
  std::mt19937_64 rng(1);
  if (gemm) {
    std::printf("| kernel | quant | act | shape NxK | batch | threads | ms/call | GFLOP/s | peak GFLOP/s | of peak | weight GB/s |\n");
    std::printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
  } else {
    std::printf("| kernel | quant | act | shape NxK | batch | threads | copies | ms/call | GB/s | read GB/s | of read bw |\n");
    std::printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
  }
  for (const std::string& shape_text : qmr::bench::split(a.shape)) {
    const auto [n, k] = qmr::bench::parse_shape(shape_text);
    for (const std::string& f : qmr::bench::split(a.quant)) {
      const qmr::quant::format_spec spec = qmr::quant::parse_format(f);
      if (!spec.is_quantized() && spec.dense != qmr::dtype::bf16)
        throw qmr::error("format '" + f + "': the dense benchmark format is bf16");
      const std::uint64_t rotate = gemm ? 0 : static_cast<std::uint64_t>(a.rotate_mb) << 20;
      const std::vector<qmr::bench::matrix_copy> copies = qmr::bench::make_copies(spec, n, k, rotate, rng);
      std::vector<float> x(static_cast<std::size_t>(batch * k)), y(static_cast<std::size_t>(batch * n));  // [B, K], [B, N]
      for (std::size_t i = 0; i < x.size(); ++i) x[i] = 0.5f + 0.001f * static_cast<float>(i % 97);
      for (const bool a8 : acts) {
        if (a8 && !spec.is_quantized()) continue;  // dense weights have no a8 mode
        for (bench_limits& l : limits) {
          qmr::thread_pool pool(l.threads);
          if (gemm && l.peak_flops == 0)
            l.peak_flops = xsimd::dispatch<qmr::simd::dispatch_archs>(qmr::bench::fma_peak_fn{})(pool, 0.2);
          const double s = qmr::bench::time_calls(copies.size(), a.seconds, [&](std::size_t i) {
            copies[i].matmul({x.data(), batch, k}, {y.data(), batch, n}, pool, a8);
          });
          const double gbps = static_cast<double>(copies[0].bytes()) / s / 1e9;
          const double bound = l.read_bytes_per_s / 1e9;
          const double gflops = 2.0 * static_cast<double>(batch) * static_cast<double>(n) * static_cast<double>(k) / s / 1e9;
          nlohmann::json r = {{"kernel", a.kernel}, {"quant", f}, {"act", a8 ? "a8" : "f32"},
                              {"isa", a8 ? qmr::simd::a8_dispatched_isa() : qmr::bench::dispatched_isa()},
                              {"m", n}, {"k", k}, {"batch", batch}, {"threads", l.threads}, {"seconds", s},
                              {"gbps", gbps}, {"bound_gbps", bound}};
          if (gemm) {
            r["gflops"] = gflops;
            r["peak_gflops"] = l.peak_flops / 1e9;
            r["fraction"] = gflops / (l.peak_flops / 1e9);
            std::printf("| gemm | %s | %s | %s | %lld | %u | %.3f | %.1f | %.1f | %.0f%% | %.2f |\n", f.c_str(),
                        a8 ? "a8" : "f32", shape_text.c_str(), static_cast<long long>(batch), l.threads, s * 1e3, gflops,
                        l.peak_flops / 1e9, 100.0 * gflops / (l.peak_flops / 1e9), gbps);
          } else {
            r["fraction"] = gbps / bound;
            std::printf("| gemv | %s | %s | %s | %lld | %u | %zu | %.3f | %.2f | %.2f | %.0f%% |\n", f.c_str(),
                        a8 ? "a8" : "f32", shape_text.c_str(), static_cast<long long>(batch), l.threads, copies.size(),
                        s * 1e3, gbps, bound, 100.0 * gbps / bound);
          }
          std::fflush(stdout);
          json.write(r);
        }
      }
    }
  }
  return 0;
}

// Decode tokens/s of the Qwen2.5-0.5B-shaped random model per format, like bench/model_decode.
inline int run_decode_bench(const bench_args& a, std::vector<bench_limits>& limits, json_lines& json) {
  const std::vector<bool> acts = parse_acts(a.act);
  qmr::io::synthetic_config shape;  // Qwen2.5-0.5B: hidden 896, intermediate 4864, 14 / 2 heads, vocab 151936
  shape.hidden = 896;
  shape.intermediate = 4864;
  shape.layers = a.layers;
  shape.heads = 14;
  shape.kv_heads = 2;
  shape.vocab = 151936;
  shape.qkv_bias = true;
  shape.tie_embeddings = true;
  const std::filesystem::path base = std::filesystem::path(a.work) / ("bf16-l" + std::to_string(a.layers));
  if (!std::filesystem::exists(base / "config.json")) {
    std::fprintf(stderr, "writing the random bf16 checkpoint to %s ...\n", base.c_str());
    qmr::io::write_synthetic_checkpoint(base, shape);
  }
  std::printf("Qwen2.5-0.5B-shaped random model (%d layers), %d tokens decoded after a %d-token prompt\n\n", a.layers,
              a.decode, a.prefill);
  std::printf("| kernel | quant | act | threads | weight MB/token | tok/s | bound tok/s | of bound | GB/s | read GB/s |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|\n");
  std::mt19937 rng(7);
  for (const std::string& f : qmr::bench::split(a.quant)) {
    std::filesystem::path dir = base;
    if (f != "bf16") {
      const auto spec = qmr::quant::parse_format(f);
      dir = std::filesystem::path(a.work) / (spec.str() + "-l" + std::to_string(a.layers));
      if (!std::filesystem::exists(dir / "config.json")) {
        std::fprintf(stderr, "quantizing to %s ...\n", f.c_str());
        qmr::quant::checkpoint_options o;
        o.spec = spec;
        qmr::thread_pool pool(limits.back().threads);
        qmr::quant::quantize_checkpoint(base, dir, o, &pool);
      }
    }
    const auto m = qmr::model::model::load(dir);
    for (const bool a8 : acts) {
      if (a8 && f == "bf16") continue;
      for (const bench_limits& l : limits) {
        qmr::thread_pool pool(l.threads);
        qmr::model::session s(m, a.prefill + a.decode + 1, &pool);
        if (a8) s.set_kernel(qmr::model::matmul_kernel::simd_a8);
        std::vector<std::int32_t> prompt(static_cast<std::size_t>(a.prefill));
        std::uniform_int_distribution<std::int32_t> id(0, static_cast<std::int32_t>(m.config().vocab) - 1);
        for (auto& t : prompt) t = id(rng);
        s.forward(prompt);
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < a.decode; ++i) {
          const std::int32_t one[] = {id(rng)};
          s.forward(one);
        }
        const double per_token = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / a.decode;
        // A decode step reads every weight once (one embedding row aside).
        const double bytes = static_cast<double>(m.decode_bytes_per_token());
        const double tps = 1.0 / per_token, bound_tps = l.read_bytes_per_s / bytes;
        const double gbps = bytes * tps / 1e9, bound = l.read_bytes_per_s / 1e9;
        std::printf("| decode | %s | %s | %u | %.1f | %.2f | %.2f | %.0f%% | %.2f | %.2f |\n", f.c_str(), a8 ? "a8" : "f32",
                    l.threads, bytes / 1e6, tps, bound_tps, 100.0 * tps / bound_tps, gbps, bound);
        std::fflush(stdout);
        json.write({{"kernel", "decode"}, {"quant", f}, {"act", a8 ? "a8" : "f32"},
                    {"isa", a8 ? qmr::simd::a8_dispatched_isa() : qmr::bench::dispatched_isa()},
                    {"m", shape.hidden}, {"k", shape.hidden}, {"batch", 1}, {"threads", l.threads},
                    {"seconds", per_token}, {"gbps", gbps}, {"bound_gbps", bound}, {"fraction", tps / bound_tps},
                    {"tokens_per_s", tps}, {"bound_tokens_per_s", bound_tps}, {"bytes_per_token", bytes},
                    {"layers", a.layers}});
      }
    }
  }
  return 0;
}

}  // namespace detail

inline int run_bench(const bench_args& a) {
  // Arguments first: a typo should not cost a bandwidth measurement.
  detail::parse_acts(a.act);
  for (const std::string& f : qmr::bench::split(a.quant)) (void)qmr::quant::parse_format(f);
  if (a.kernel != "decode") {
    for (const std::string& s : qmr::bench::split(a.shape)) (void)qmr::bench::parse_shape(s);
    if (a.kernel == "gemv" && a.batch > 8) throw qmr::error("gemv batch is 1-8 rows of X (--kernel gemm for more)");
  }
  detail::json_lines json(a.json);
  std::vector<detail::bench_limits> limits;
  std::printf("f32 kernels: %s; a8 kernels: %s\n\n", qmr::bench::dispatched_isa(), qmr::simd::a8_dispatched_isa());
  std::printf("| threads | read GB/s |\n|---|---|\n");
  for (const unsigned t : detail::parse_threads(a.threads)) {
    qmr::thread_pool pool(t);
    limits.push_back({t, qmr::bench::read_bandwidth(pool), 0.0});
    std::printf("| %u | %.2f |\n", t, limits.back().read_bytes_per_s / 1e9);
  }
  std::printf("\n");
  if (a.kernel == "decode") return detail::run_decode_bench(a, limits, json);
  return detail::run_matmul_bench(a, limits, json);
}

}  // namespace qmr_cli
