// `qmr bench`: the SIMD kernels' speed beside the machine's limits measured in the same run (read bandwidth, f32 FMA peak), as a table and as JSON Lines.
//
//   qmr bench --kernel gemv|gemm|decode --quant SPEC[,SPEC...] --shape NxK[,NxK...]
//             [--batch B[,B...]] [--threads T[,T...]] [--act f32|a8|lut[,...]] [--json FILE] [--device cpu|cuda]
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
// tokens_per_s, bound_tokens_per_s and bytes_per_token. CPU gemv records add
// paired_fraction, paired_read_gbps and paired_median_seconds (--rounds rounds of a
// bandwidth probe followed by one pass over the copies; bench::time_paired_gemv), the
// fraction that holds on a host whose bandwidth drifts during the run; gemm records
// add paired_fraction, paired_peak_gflops and paired_median_seconds the same way (an
// FMA-peak probe of 0.05 s before each call; bench::time_paired_gemm).
//
// --device cuda (gemv and decode): qmr::cuda::gemv with f16 activations on rotated
// DRAM-resident weights (any batch: from gemm_traits::min_batch tokens the tiled GEMM), and greedy decode of a
// model::cuda_session, timed as bench/cuda_gemv and bench/cuda_decode do (bench/cuda_bench.cuh,
// --runs timed calls per GEMV measurement). The records keep the fields above, with act
// "f16", isa "sm_XX", threads 0 (one host thread launches), bound_gbps the device's measured
// copy bandwidth (read + write) and `device` its name; gemv records add copies and
// cublas_seconds (cuBLAS f16 on the same shape and batch, where qmr was built with cuBLAS),
// back_to_back_seconds and back_to_back_pdl_seconds (per call of 20 calls queued with no event
// between them, plain and with programmatic dependent launch, as a decode step runs them)
// and back_to_back_pdl_fraction, graph_pdl_seconds and graph_pdl_fraction (the 20 calls with
// PDL captured in one CUDA graph and replayed, as cuda_forward runs a decode step), and
// read_ceiling_seconds (a kernel that only reads the same bytes, timed as graph_pdl_seconds:
// what any kernel reading them reaches at that size) and read_ceiling_call_seconds (that
// kernel timed as `seconds`, with events around each call: the per-call measure's own
// ceiling, its launch and ramp included); --lanes times the lane-layout kernel
// (kernel "gemv_lanes"), --split the split-K tensor-core kernel (kernel "gemv_split").
// Decode records add prompt_tokens (--prompt, the context the timed tokens follow) and,
// on cuda, prefill_tokens_per_s.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "../bench/bandwidth.hpp"
#include "../bench/fma_peak.hpp"
#include "../bench/matmul_bench.hpp"
#include "../bench/median.hpp"
#include "cli_integer.hpp"
#include "cuda_backend.hpp"
#include "qmr/io/synthetic_checkpoint.hpp"
#include "qmr/kernels/simd/dispatch.hpp"
#include "qmr/model/forward.hpp"
#include "qmr/quant/quantize_checkpoint.hpp"

namespace qmr_cli {

struct bench_args {
  std::string kernel = "gemv", quant = "w4g128", shape = "4096x4096", act = "f32", threads = "1", json;
  std::string batch;       // comma-separated; empty: 1 for gemv, 64 for gemm
  std::string device = "cpu";
  int runs = 100;          // cuda: timed calls per GEMV measurement (as bench/cuda_gemv)
  bool lanes = false;      // cuda gemv: the lane-layout kernel instead of the tensor-core one
  bool split = false;      // cuda gemv: the split-K tensor-core kernel instead
  double seconds = 0.3;    // per measurement
  int rotate_mb = 1024;    // GEMV copies: past the L3 of large server parts too (see bench/gemv_simd.cpp)
  int rounds = 5;          // cpu gemv and gemm: paired rounds (bench::time_paired_gemv, time_paired_gemm)
  std::string work = (std::filesystem::temp_directory_path() / "qmr-bench-qwen2.5-0.5b").string();
  int prefill = 16, decode = 16, layers = 24;
  std::string load;  // decode: --load (load_mode_for)
};

// --load's value, or its default for the device and checkpoint: copy on the CPU (decoding
// streams every weight from huge pages: 62.6 against 46.7-49.6 tok/s at w4g128 a8 on the 2-vCPU
// AVX-512 VM, bench/results/cpu_decode_huge_pages_20261206_s39.txt) when the checkpoint fits in
// the available memory, else map with a note; map on CUDA (the weights are uploaded, so a
// private host copy would only cost memory). An explicit --load copy that does not fit is an error.
inline qmr::io::load_mode load_mode_for(const std::string& load, const std::string& device, const std::filesystem::path& dir) {
  if (!load.empty()) return qmr::io::parse_load_mode(load);
  if (device == "cuda") return qmr::io::load_mode::map;
  const std::uint64_t need = qmr::io::checkpoint::file_bytes(dir), avail = qmr::io::available_memory_bytes();
  if (avail > 0 && need > avail) {
    std::fprintf(stderr, "note: mapping %s: its %llu bytes do not fit the %llu available for a copy (--load copy)\n",
                 dir.string().c_str(), static_cast<unsigned long long>(need), static_cast<unsigned long long>(avail));
    return qmr::io::load_mode::map;
  }
  return qmr::io::load_mode::copy;
}

// --load on the commands that load a model to run it.
inline void add_load_option(CLI::App* cmd, std::string& load) {
  cmd->add_option("--load", load,
                  "map: mmap the checkpoint (shared page cache, 4 KB pages); copy: read it into private memory that "
                  "asks for transparent huge pages (slower to open, twice the memory while the page cache holds the "
                  "file, far fewer TLB misses while decoding streams the weights). Default: copy on cpu, map on cuda")
      ->check(CLI::IsMember({"map", "copy"}));
}

inline CLI::App* add_bench_command(CLI::App& app, bench_args& a) {
  auto* cmd = app.add_subcommand("bench", "Time the SIMD kernels against the machine's measured read bandwidth and FMA peak");
  cmd->add_option("--kernel", a.kernel, "gemv | gemm | decode")->check(CLI::IsMember({"gemv", "gemm", "decode"}))->capture_default_str();
  cmd->add_option("--quant", a.quant, "weight formats, comma-separated: qmr specs (w4g128, w3g64s, ...) or bf16")
      ->capture_default_str();
  cmd->add_option("--shape", a.shape, "matrix shapes NxK (output rows x input columns), comma-separated")->capture_default_str();
  cmd->add_option("--batch", a.batch, "rows of X, comma-separated (gemv: 1-8, on cuda up to the GPU GEMV's limit, default 1; "
                  "gemm: default 64)");
  cmd->add_option("--threads", a.threads, "thread counts, comma-separated")->capture_default_str();
  cmd->add_option("--act", a.act, "activations: f32 (exact), a8 (int8 per 32 columns, integer dot products), lut (f32 over 2-6-bit weights repacked at load: the table GEMV for one row of X, lut_gemm for more; AVX-512), or a list: f32,a8,lut")
      ->capture_default_str();
  cmd->add_option("--json", a.json, "also write one JSON record per measurement to this file (JSON Lines)");
  cmd->add_option("--seconds", a.seconds, "minimum time per measurement")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--rotate-mb", a.rotate_mb, "gemv: rotate through copies of each matrix totalling at least this")->transform(decimal_integer(false))
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--rounds", a.rounds, "cpu gemv and gemm: paired rounds (a bandwidth or FMA-peak probe, then one pass over the copies or one call)")->transform(decimal_integer(false))
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--work", a.work, "decode: where the random checkpoints are written (reused when present)")
      ->capture_default_str();
  cmd->add_option("--layers", a.layers, "decode: transformer layers of the random model")->transform(decimal_integer(false))->capture_default_str()->check(CLI::PositiveNumber);
  add_load_option(cmd, a.load);
  cmd->add_option("--tokens", a.decode, "decode: tokens decoded per measurement")->transform(decimal_integer(false))->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--prompt", a.prefill, "decode: prompt tokens before them (decode speed at that context; on cuda also prefill tok/s)")->transform(decimal_integer(false))
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--device", a.device, "cpu (the SIMD kernels) or cuda (the GPU GEMV and forward pass; gemv and decode)")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  cmd->add_option("--runs", a.runs, "cuda gemv: timed calls per measurement (median)")->transform(decimal_integer(false))->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_flag("--lanes", a.lanes, "cuda gemv: the CUDA-core lane-layout kernel (batch 1-8; 2, 3, 4, 8 bits) instead of the "
                "tensor-core one");
  cmd->add_flag("--split", a.split, "cuda gemv: the split-K tensor-core kernel (any batch, 16 rows a launch; 2, 3, 4, 8 bits) "
                "instead of the tiled one");
  return cmd;
}

namespace detail {

// The machine's limits for one thread count, measured once per run.
struct bench_limits {
  unsigned threads;
  double read_bytes_per_s;
  double peak_flops;  // 0 until a gemm needs it
};

// --act's modes: f32, a8, and lut: f32 through the table GEMV (one row of X) and
// lut_gemm (more) over weights repacked at load (simd::lut_matrix; in decode,
// model::repack_lut).
inline std::vector<std::string> parse_act_modes(const std::string& text) {
  std::vector<std::string> modes;
  for (const std::string& a : qmr::bench::split(text)) {
    if (a != "f32" && a != "a8" && a != "lut") throw qmr::error("--act '" + a + "': expected f32, a8 or lut");
    modes.push_back(a);
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
    if (used != t.size() || v < 1 || v > static_cast<long>(max_threads)) throw qmr::error("--threads '" + t + "': expected a positive count");
    out.push_back(static_cast<unsigned>(v));
  }
  if (out.empty()) throw qmr::error("--threads: no thread count given");
  return out;
}

// --batch: positive counts; empty gives `fallback`.
inline std::vector<std::int64_t> parse_batches(const std::string& text, std::int64_t fallback) {
  if (text.empty()) return {fallback};
  std::vector<std::int64_t> out;
  for (const std::string& t : qmr::bench::split(text)) {
    std::size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(t, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != t.size() || v < 1 || v > 65536) throw qmr::error("--batch '" + t + "': expected a positive count");
    out.push_back(v);
  }
  if (out.empty()) throw qmr::error("--batch: no batch size given");
  return out;
}

inline std::int64_t default_batch(const bench_args& a) { return a.kernel == "gemm" ? 64 : 1; }

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
  const std::vector<std::int64_t> batches = parse_batches(a.batch, default_batch(a));
  const std::vector<std::string> acts = parse_act_modes(a.act);
  std::mt19937_64 rng(1);
  const qmr::aligned_buffer<float> probe = qmr::bench::bandwidth_buffer(gemm ? 0 : qmr::bench::gemv_probe_bytes);
  if (gemm) {
    std::printf("| kernel | quant | act | shape NxK | batch | threads | ms/call | GFLOP/s | peak GFLOP/s | of peak | weight GB/s | "
                "paired (of probe GFLOP/s) |\n");
    std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  } else {
    std::printf("| kernel | quant | act | shape NxK | batch | threads | copies | ms/call | GB/s | read GB/s | of read bw | "
                "paired (of probe GB/s) |\n");
    std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  }
  for (const std::string& shape_text : qmr::bench::split(a.shape)) {
    const auto [n, k] = qmr::bench::parse_shape(shape_text);
    for (const std::string& f : qmr::bench::split(a.quant)) {
      const qmr::quant::format_spec spec = qmr::quant::parse_format(f);
      if (!spec.is_quantized() && spec.dense != qmr::dtype::bf16)
        throw qmr::error("format '" + f + "': the dense benchmark format is bf16");
      const std::uint64_t rotate = gemm ? 0 : static_cast<std::uint64_t>(a.rotate_mb) << 20;
      const std::vector<qmr::bench::matrix_copy> copies = qmr::bench::make_copies(spec, n, k, rotate, rng);
      // lut: the same copies repacked (GB/s counts the format's bytes, which the repack holds).
      const bool lut_runs = spec.is_quantized() && qmr::simd::lut_supported_bits(spec.bits) && qmr::simd::lut_gemv_fast();
      std::vector<qmr::simd::lut_matrix> luts;
      if (lut_runs && std::find(acts.begin(), acts.end(), "lut") != acts.end())
        for (const auto& c : copies) luts.emplace_back(c.q.view());
      for (const std::int64_t batch : batches) {
        std::vector<float> x(static_cast<std::size_t>(batch * k)), y(static_cast<std::size_t>(batch * n));  // [B, K], [B, N]
        for (std::size_t i = 0; i < x.size(); ++i) x[i] = 0.5f + 0.001f * static_cast<float>(i % 97);
        for (const std::string& act : acts) {
          const bool a8 = act == "a8", lut = act == "lut";
          if (a8 && !spec.is_quantized()) continue;  // dense weights have no a8 mode
          if (lut && !lut_runs) {
            std::printf("| %s | %s | lut | %s | - | (not 2-6-bit, or no AVX-512BW: no table kernel) |\n", a.kernel.c_str(),
                        f.c_str(), shape_text.c_str());
            continue;
          }
          const auto call = [&](qmr::thread_pool& pool, std::size_t i) {
            if (lut) qmr::simd::lut_gemm_dispatched(luts[i], 0, n, {x.data(), batch, k}, {y.data(), batch, n}, &pool);
            else copies[i].matmul({x.data(), batch, k}, {y.data(), batch, n}, pool, a8);
          };
          const char* isa = a8 ? qmr::simd::a8_dispatched_isa() : lut ? "avx512bw" : qmr::bench::dispatched_isa();
          for (bench_limits& l : limits) {
            qmr::thread_pool pool(l.threads);
            if (gemm && l.peak_flops == 0)
              l.peak_flops = xsimd::dispatch<qmr::simd::dispatch_archs>(qmr::bench::fma_peak_fn{})(pool, 0.2);
            const double s = qmr::bench::time_calls(copies.size(), a.seconds, [&](std::size_t i) { call(pool, i); });
            const double gbps = static_cast<double>(copies[0].bytes()) / s / 1e9;
            const double bound = l.read_bytes_per_s / 1e9;
            const double gflops = 2.0 * static_cast<double>(batch) * static_cast<double>(n) * static_cast<double>(k) / s / 1e9;
            nlohmann::json r = {{"kernel", a.kernel}, {"quant", f}, {"act", act}, {"isa", isa},
                                {"m", n}, {"k", k}, {"batch", batch}, {"threads", l.threads}, {"seconds", s},
                                {"gbps", gbps}, {"bound_gbps", bound}};
            if (gemm) {
              r["gflops"] = gflops;
              r["peak_gflops"] = l.peak_flops / 1e9;
              r["fraction"] = gflops / (l.peak_flops / 1e9);
              const qmr::bench::paired_result p = qmr::bench::time_paired_gemm(
                  pool, gflops * 1e9 * s, a.rounds, 0.05,
                  [&] { call(pool, 0); });
              r["paired_fraction"] = p.fraction;
              r["paired_peak_gflops"] = p.limit / 1e9;
              r["paired_median_seconds"] = p.seconds;
              std::printf("| gemm | %s | %s | %s | %lld | %u | %.3f | %.1f | %.1f | %.0f%% | %.2f | %.0f%% (of %.1f) |\n",
                          f.c_str(), act.c_str(), shape_text.c_str(), static_cast<long long>(batch), l.threads,
                          s * 1e3, gflops, l.peak_flops / 1e9, 100.0 * gflops / (l.peak_flops / 1e9), gbps,
                          100.0 * p.fraction, p.limit / 1e9);
            } else {
              r["fraction"] = gbps / bound;
              const qmr::bench::paired_result p = qmr::bench::time_paired_gemv(
                  pool, probe, copies.size(), static_cast<double>(copies[0].bytes()), a.rounds,
                  [&](std::size_t i) { call(pool, i); });
              r["paired_fraction"] = p.fraction;
              r["paired_read_gbps"] = p.limit / 1e9;
              r["paired_median_seconds"] = p.seconds;
              std::printf("| gemv | %s | %s | %s | %lld | %u | %zu | %.3f | %.2f | %.2f | %.0f%% | %.0f%% (of %.2f) |\n",
                          f.c_str(), act.c_str(), shape_text.c_str(), static_cast<long long>(batch), l.threads,
                          copies.size(), s * 1e3, gbps, bound, 100.0 * gbps / bound, 100.0 * p.fraction, p.limit / 1e9);
            }
            std::fflush(stdout);
            json.write(r);
          }
        }
      }
    }
  }
  return 0;
}

// The decode benchmarks' model: Qwen2.5-0.5B-shaped (hidden 896, intermediate 4864, 14 / 2
// heads, vocab 151936) with --layers layers.
inline qmr::io::synthetic_config decode_shape(const bench_args& a) {
  qmr::io::synthetic_config shape;
  shape.hidden = 896;
  shape.intermediate = 4864;
  shape.layers = a.layers;
  shape.heads = 14;
  shape.kv_heads = 2;
  shape.vocab = 151936;
  shape.qkv_bias = true;
  shape.tie_embeddings = true;
  return shape;
}

// The random checkpoint of the decode benchmarks in format f (bf16 or a qmr spec) under --work:
// written (bf16) and quantized on first use, reused after.
inline std::filesystem::path decode_model_dir(const bench_args& a, const std::string& f, unsigned threads) {
  const std::filesystem::path base = std::filesystem::path(a.work) / ("bf16-l" + std::to_string(a.layers));
  if (!std::filesystem::exists(base / "config.json")) {
    std::fprintf(stderr, "writing the random bf16 checkpoint to %s ...\n", base.c_str());
    qmr::io::write_synthetic_checkpoint(base, decode_shape(a));
  }
  if (f == "bf16") return base;
  const auto spec = qmr::quant::parse_format(f);
  const std::filesystem::path dir = std::filesystem::path(a.work) / (spec.str() + "-l" + std::to_string(a.layers));
  if (!std::filesystem::exists(dir / "config.json")) {
    std::fprintf(stderr, "quantizing to %s ...\n", f.c_str());
    qmr::quant::checkpoint_options o;
    o.spec = spec;
    qmr::thread_pool pool(threads);
    qmr::quant::quantize_checkpoint(base, dir, o, &pool);
  }
  return dir;
}

// The bandwidth probe before each paired decode token: 128 MB, 8x the last-level cache
// of the Zen 5 VM (16 MB) and ~2.5 ms at its 50 GB/s, a fifth of a token.
inline constexpr std::size_t paired_probe_bytes = std::size_t{128} << 20;

// Decode tokens/s of the Qwen2.5-0.5B-shaped random model per format, like bench/model_decode.
inline int run_decode_bench(const bench_args& a, std::vector<bench_limits>& limits, json_lines& json) {
  const std::vector<std::string> acts = parse_act_modes(a.act);
  const qmr::io::synthetic_config shape = decode_shape(a);
  const bool copy_asked = a.load.empty() || qmr::io::parse_load_mode(a.load) == qmr::io::load_mode::copy;
  std::printf("Qwen2.5-0.5B-shaped random model (%d layers), %d tokens decoded after a %d-token prompt, weights %s\n\n",
              a.layers, a.decode, a.prefill,
              copy_asked ? "read into huge-page memory (--load copy)" : "mapped (--load map)");
  std::printf("| kernel | quant | act | threads | weight MB/token | tok/s | bound tok/s | of bound | GB/s | read GB/s | of bound, paired |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
  std::mt19937 rng(7);
  const qmr::aligned_buffer<float> probe = qmr::bench::bandwidth_buffer(paired_probe_bytes);
  for (const std::string& f : qmr::bench::split(a.quant)) {
    const std::filesystem::path dir = decode_model_dir(a, f, limits.back().threads);
    const qmr::io::load_mode load = load_mode_for(a.load, "cpu", dir);
    auto m = qmr::model::model::load(dir, load);
    for (const std::string& act : acts) {
      const bool a8 = act == "a8", lut = act == "lut";
      if (a8 && f == "bf16") continue;
      if (lut) {
        qmr::thread_pool pool(limits.back().threads);
        if (m.repack_lut(&pool) == 0) {
          std::printf("| decode | %s | lut | - | (no 2-6-bit weights, or no AVX-512BW: nothing repacked) |\n", f.c_str());
          continue;
        }
      }
      for (const bench_limits& l : limits) {
        qmr::thread_pool pool(l.threads);
        qmr::model::session s(m, a.prefill + a.decode + 1, &pool);
        if (a8) s.set_kernel(qmr::model::matmul_kernel::simd_a8);
        if (lut) s.set_kernel(qmr::model::matmul_kernel::simd_lut);
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
        // Paired: the same tokens again (the cache rewound to the prompt), each timed right
        // after a bandwidth measurement of its own (one sum over paired_probe_bytes), and the
        // median of the per-token fractions. On a shared host the bandwidth drifts within a
        // run (this 2-vCPU VM measured 30-56 GB/s minutes apart), and a bound taken once
        // before the tokens misstates their fraction by as much.
        s.truncate(a.prefill);
        std::vector<double> fractions, probes, times;  // [tokens] each
        for (int i = 0; i < a.decode; ++i) {
          const double bw = qmr::bench::read_bandwidth(pool, probe, 1);
          const std::int32_t one[] = {id(rng)};
          const auto p0 = std::chrono::steady_clock::now();
          s.forward(one);
          const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - p0).count();
          fractions.push_back(bytes / t / bw);
          probes.push_back(bw);
          times.push_back(t);
        }
        // paired_median_seconds against the run's bound separates the pairing from the
        // median: a token stalled by the host (a vCPU descheduled) moves a mean, not a median.
        const double paired = qmr::bench::median(fractions), paired_bw = qmr::bench::median(probes),
                     median_seconds = qmr::bench::median(times);
        std::printf("| decode | %s | %s | %u | %.1f | %.2f | %.2f | %.0f%% | %.2f | %.2f | %.0f%% |\n", f.c_str(),
                    act.c_str(), l.threads, bytes / 1e6, tps, bound_tps, 100.0 * tps / bound_tps, gbps, bound,
                    100.0 * paired);
        std::fflush(stdout);
        json.write({{"kernel", "decode"}, {"quant", f}, {"act", act},
                    {"isa", a8 ? qmr::simd::a8_dispatched_isa() : qmr::bench::dispatched_isa()},
                    {"load", qmr::io::load_mode_name(load)},
                    {"m", shape.hidden}, {"k", shape.hidden}, {"batch", 1}, {"threads", l.threads},
                    {"seconds", per_token}, {"gbps", gbps}, {"bound_gbps", bound}, {"fraction", tps / bound_tps},
                    {"tokens_per_s", tps}, {"bound_tokens_per_s", bound_tps}, {"bytes_per_token", bytes},
                    {"layers", a.layers}, {"prompt_tokens", a.prefill}, {"paired_fraction", paired}, {"paired_read_gbps", paired_bw / 1e9},
                    {"paired_median_seconds", median_seconds},
                    {"median_fraction", bytes / median_seconds / l.read_bytes_per_s}});
      }
    }
  }
  return 0;
}

// Rows of X the lane-layout kernel takes (qmr::cuda::gemv_lanes_traits::max_batch; this
// header is compiled without CUDA, and checks --batch before any device is touched).
inline constexpr std::int64_t cuda_lanes_max_batch = 8;

// --device cuda: the GPU GEMV per format, shape and batch, with cuBLAS f16 beside it.
inline int run_cuda_gemv_bench(const bench_args& a, const cuda_device_info& dev, double copy_bw, json_lines& json) {
  std::vector<int> batches;
  for (const std::int64_t b : parse_batches(a.batch, 1)) batches.push_back(static_cast<int>(b));
  const double rotate = static_cast<double>(static_cast<std::uint64_t>(a.rotate_mb) << 20);
  const std::string isa = "sm_" + std::to_string(dev.sm);
  const std::string kernel = a.lanes ? "gemv_lanes" : a.split ? "gemv_split" : "gemv";
  const cuda_gemv_kernel which = a.lanes ? cuda_gemv_kernel::lanes : a.split ? cuda_gemv_kernel::split : cuda_gemv_kernel::tiles;
  std::printf("| kernel | quant | act | shape NxK | batch | device | copies | us/call | GB/s | copy GB/s | of copy bw | "
              "back to back us | with PDL us | of copy bw | graph us | of copy bw | read ceiling us | read ceiling us/call | "
              "cuBLAS f16 us |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const std::string& shape_text : qmr::bench::split(a.shape)) {
    const auto [n, k] = qmr::bench::parse_shape(shape_text);
    bool cublas = cuda_cublas_unavailable().empty();  // once per shape: the baseline does not depend on the format
    std::vector<double> cublas_s(batches.size(), 0.0);
    for (const std::string& f : qmr::bench::split(a.quant)) {
      const std::vector<cuda_gemv_timing> ts = cuda_time_gemv(f, n, k, batches, a.runs, rotate, cublas, which);
      for (std::size_t i = 0; i < ts.size(); ++i) {
        const cuda_gemv_timing& t = ts[i];
        if (cublas) cublas_s[i] = t.cublas_seconds;
        const double gbps = t.weight_bytes / t.seconds / 1e9, bound = copy_bw / 1e9;
        const double pdl_gbps = t.weight_bytes / t.back_to_back_pdl_seconds / 1e9;
        const double graph_gbps = t.weight_bytes / t.graph_pdl_seconds / 1e9;
        nlohmann::json r = {{"kernel", kernel}, {"quant", f}, {"act", "f16"}, {"isa", isa}, {"device", dev.name},
                            {"m", n}, {"k", k}, {"batch", t.batch}, {"threads", 0}, {"seconds", t.seconds},
                            {"gbps", gbps}, {"bound_gbps", bound}, {"fraction", gbps / bound}, {"copies", t.copies},
                            {"back_to_back_seconds", t.back_to_back_seconds},
                            {"back_to_back_pdl_seconds", t.back_to_back_pdl_seconds},
                            {"back_to_back_pdl_fraction", pdl_gbps / bound},
                            {"graph_pdl_seconds", t.graph_pdl_seconds},
                            {"graph_pdl_fraction", graph_gbps / bound},
                            {"read_ceiling_seconds", t.read_ceiling_seconds},
                            {"read_ceiling_call_seconds", t.read_ceiling_call_seconds}};
        char cublas_us[32] = "-";
        if (cublas_s[i] > 0) {
          r["cublas_seconds"] = cublas_s[i];
          std::snprintf(cublas_us, sizeof cublas_us, "%.2f", cublas_s[i] * 1e6);
        }
        std::printf("| %s | %s | f16 | %s | %d | %s | %d | %.2f | %.1f | %.1f | %.0f%% | %.2f | %.2f | %.0f%% | %.2f | %.0f%% | %.2f | "
                    "%.2f | %s |\n",
                    kernel.c_str(), f.c_str(), shape_text.c_str(), t.batch, isa.c_str(), t.copies, t.seconds * 1e6, gbps,
                    bound, 100.0 * gbps / bound, t.back_to_back_seconds * 1e6, t.back_to_back_pdl_seconds * 1e6,
                    100.0 * pdl_gbps / bound, t.graph_pdl_seconds * 1e6, 100.0 * graph_gbps / bound,
                    t.read_ceiling_seconds * 1e6, t.read_ceiling_call_seconds * 1e6, cublas_us);
        std::fflush(stdout);
        json.write(r);
      }
      cublas = false;
    }
  }
  return 0;
}

// --device cuda: greedy decode tokens/s of the decode benchmarks' model on a model::cuda_session.
inline int run_cuda_decode_bench(const bench_args& a, const cuda_device_info& dev, double copy_bw, json_lines& json) {
  const qmr::io::synthetic_config shape = decode_shape(a);
  const std::string isa = "sm_" + std::to_string(dev.sm);
  std::printf("Qwen2.5-0.5B-shaped random model (%d layers) on %s, greedy: %d tokens decoded after a %d-token prompt\n\n",
              a.layers, dev.name.c_str(), a.decode, a.prefill);
  std::printf("| kernel | quant | act | device | weight MB/token | tok/s | bound tok/s | of bound | GB/s | copy GB/s | prefill tok/s |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());  // only to write the checkpoints
  for (const std::string& f : qmr::bench::split(a.quant)) {
    const std::filesystem::path dir = decode_model_dir(a, f, threads);
    const qmr::io::load_mode load = load_mode_for(a.load, "cuda", dir);
    const auto m = qmr::model::model::load(dir, load);
    std::vector<std::int32_t> prompt(static_cast<std::size_t>(a.prefill));
    for (std::size_t i = 0; i < prompt.size(); ++i)  // spread over the vocabulary, as bench/cuda_decode
      prompt[i] = static_cast<std::int32_t>((i * 7919 + 11) % static_cast<std::size_t>(m.config().vocab));
    const cuda_decode_timing t = cuda_time_decode(m, prompt, a.decode);
    const double per_token = t.decode_seconds / a.decode;
    const double bytes = static_cast<double>(t.bytes_per_token);
    const double tps = 1.0 / per_token, bound_tps = copy_bw / bytes;
    const double gbps = bytes * tps / 1e9, bound = copy_bw / 1e9;
    const double prefill_tps = a.prefill / t.prefill_seconds;
    std::printf("| decode | %s | f16 | %s | %.1f | %.1f | %.1f | %.0f%% | %.1f | %.1f | %.1f |\n", f.c_str(), isa.c_str(),
                bytes / 1e6, tps, bound_tps, 100.0 * tps / bound_tps, gbps, bound, prefill_tps);
    std::fflush(stdout);
    json.write({{"kernel", "decode"}, {"quant", f}, {"act", "f16"}, {"isa", isa}, {"device", dev.name},
                {"m", shape.hidden}, {"k", shape.hidden}, {"batch", 1}, {"threads", 0},
                {"seconds", per_token}, {"gbps", gbps}, {"bound_gbps", bound}, {"fraction", tps / bound_tps},
                {"tokens_per_s", tps}, {"bound_tokens_per_s", bound_tps}, {"bytes_per_token", bytes},
                {"prefill_tokens_per_s", prefill_tps}, {"prompt_tokens", a.prefill}, {"layers", a.layers},
                {"load", qmr::io::load_mode_name(load)}});
  }
  return 0;
}

inline int run_cuda_bench(const bench_args& a) {
  if (a.kernel == "gemm") throw qmr::error("--device cuda: --kernel gemm has no GPU benchmark (gemv or decode)");
  if (a.act != "f32" && a.act != "f16")
    throw qmr::error("--act '" + a.act + "': the GPU kernels take f16 activations (--device cuda with --act f16)");
  if (a.kernel == "gemv") {
    for (const std::int64_t b : parse_batches(a.batch, 1)) {
      const std::int64_t max_batch = a.lanes ? cuda_lanes_max_batch : cuda_gemv_max_batch();
      if (b > max_batch)
        throw qmr::error("--batch " + std::to_string(b) + ": the GPU GEMV" + (a.lanes ? " with --lanes" : "") + " takes 1-" +
                         std::to_string(max_batch) + " rows of X");
    }
    for (const std::string& f : qmr::bench::split(a.quant)) {
      const qmr::quant::format_spec spec = qmr::quant::parse_format(f);
      if (!spec.is_quantized())
        throw qmr::error("format '" + f + "': the GPU GEMV benchmark takes quantized formats (cuBLAS f16 is its dense "
                         "baseline, reported as cublas_seconds)");
    }
  }
  const cuda_device_info dev = cuda_device();  // no GPU: an error before anything is written
  json_lines json(a.json);
  const double copy_bw = cuda_copy_bandwidth();
  const std::string no_cublas = cuda_cublas_unavailable();
  std::printf("device: %s, sm_%d, %d SMs; measured device copy bandwidth %.1f GB/s (read + write)%s%s\n\n", dev.name.c_str(),
              dev.sm, dev.sm_count, copy_bw / 1e9, no_cublas.empty() ? "" : "; no cuBLAS f16 baseline: ", no_cublas.c_str());
  if (a.kernel == "decode") return run_cuda_decode_bench(a, dev, copy_bw, json);
  return run_cuda_gemv_bench(a, dev, copy_bw, json);
}

}  // namespace detail

inline int run_bench(const bench_args& a) {
  // Arguments first: a typo should not cost a bandwidth measurement. An empty --quant or
  // --shape list measured the bandwidth and printed an empty table (exit 0); a bad
  // --threads item failed only after the items before it were measured.
  if (qmr::bench::split(a.quant).empty()) throw qmr::error("--quant: no weight format given");
  for (const std::string& f : qmr::bench::split(a.quant)) (void)qmr::quant::parse_format(f);
  if (a.kernel != "decode") {
    if (!a.load.empty()) throw qmr::error("--load applies to --kernel decode (the GEMV and GEMM benchmarks load no model)");
    if (qmr::bench::split(a.shape).empty()) throw qmr::error("--shape: no NxK shape given");
    for (const std::string& s : qmr::bench::split(a.shape)) (void)qmr::bench::parse_shape(s);
    (void)detail::parse_batches(a.batch, detail::default_batch(a));
  }
  if (a.device != "cuda") (void)detail::parse_threads(a.threads);
  if (a.lanes && !(a.device == "cuda" && a.kernel == "gemv"))
    throw qmr::error("--lanes: the lane-layout kernel is a GPU GEMV (--device cuda --kernel gemv)");
  if (a.split && !(a.device == "cuda" && a.kernel == "gemv"))
    throw qmr::error("--split: the split-K kernel is a GPU GEMV (--device cuda --kernel gemv)");
  if (a.split && a.lanes) throw qmr::error("--split and --lanes: two kernels; time one per run");
  if (a.device == "cuda") return detail::run_cuda_bench(a);  // checks its own arguments, then the device
  require_device(a.device);
  detail::parse_act_modes(a.act);
  if (a.kernel == "gemv")
    for (const std::int64_t b : detail::parse_batches(a.batch, 1))
      if (b > 8) throw qmr::error("gemv batch is 1-8 rows of X (--kernel gemm for more)");
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
