// qmr: the command-line tool (inspect and quantize checkpoints).
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "qmr/io/inspect.hpp"
#include "qmr/quant/quantize_checkpoint.hpp"

namespace {

std::string human_bytes(std::uint64_t b) {
  char buf[32];
  if (b >= (1ull << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(b) / (1ull << 30));
  else if (b >= (1ull << 20)) std::snprintf(buf, sizeof buf, "%.2f MiB", static_cast<double>(b) / (1ull << 20));
  else if (b >= 1024) std::snprintf(buf, sizeof buf, "%.2f KiB", static_cast<double>(b) / 1024);
  else std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(b));
  return buf;
}

int run_inspect(const std::string& path, bool as_json) {
  const auto checkpoint = qmr::io::checkpoint::open(path);
  const auto rows = qmr::io::inspect_checkpoint(checkpoint);
  std::uint64_t bytes = 0;
  std::int64_t params = 0, quantized = 0;
  for (const auto& r : rows) {
    bytes += r.bytes;
    params += r.shape.numel();
    quantized += r.quantized;
  }
  if (as_json) {
    nlohmann::json j = {{"path", path}, {"tensors", nlohmann::json::array()}, {"bytes", bytes}, {"parameters", params}};
    for (const auto& r : rows) {
      std::vector<std::int64_t> shape(r.shape.dims.begin(), r.shape.dims.begin() + r.shape.rank);
      j["tensors"].push_back({{"name", r.name},
                              {"format", r.format},
                              {"shape", shape},
                              {"bytes", r.bytes},
                              {"bits_per_weight", r.bits_per_weight},
                              {"quantized", r.quantized},
                              {"file", r.file}});
    }
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::size_t width = 4;
  for (const auto& r : rows) width = std::max(width, r.name.size());
  std::printf("%-*s  %-8s  %-18s  %14s  %7s\n", static_cast<int>(width), "name", "format", "shape", "bytes", "bits/w");
  for (const auto& r : rows)
    std::printf("%-*s  %-8s  %-18s  %14llu  %7.3f\n", static_cast<int>(width), r.name.c_str(), r.format.c_str(),
                r.shape.str().c_str(), static_cast<unsigned long long>(r.bytes), r.bits_per_weight);
  std::printf("%zu tensors (%lld quantized) in %zu file(s), %lld parameters, %s, %.3f bits per parameter\n", rows.size(),
              static_cast<long long>(quantized), checkpoint.shards().size(), static_cast<long long>(params),
              human_bytes(bytes).c_str(), params ? 8.0 * static_cast<double>(bytes) / static_cast<double>(params) : 0.0);
  return 0;
}

int run_quantize(const std::string& in, const std::string& out, const std::string& spec_text,
                 const qmr::quant::checkpoint_options& options, unsigned threads, bool quiet) {
  qmr::quant::checkpoint_options o = options;
  o.spec = qmr::quant::parse_format(spec_text);
  qmr::thread_pool pool(threads);
  const bool tty = isatty(STDERR_FILENO);
  const auto progress = [&](std::size_t done, std::size_t total, const std::string& name) {
    if (quiet) return;
    std::fprintf(stderr, tty ? "\r\033[K[%zu/%zu] %s" : "[%zu/%zu] %s\n", done, total, name.c_str());
    if (tty && done == total) std::fputc('\n', stderr);
  };
  const auto report = qmr::quant::quantize_checkpoint(in, out, o, &pool, progress);
  std::size_t n_quantized = 0;
  double error_sum = 0;
  for (const auto& t : report.tensors)
    if (t.reason.empty()) {
      ++n_quantized;
      error_sum += t.rms_relative_error;
    }
  std::printf("%s: quantized %zu of %zu tensors to %s (%s); %s -> %s (%.2fx) in %.2f s; mean RMS relative error %.4f\n",
              out.c_str(), n_quantized, report.tensors.size(), o.spec.str().c_str(),
              o.rtn.clip_search ? "rtn+clip" : "rtn", human_bytes(report.bytes_in).c_str(),
              human_bytes(report.bytes_out).c_str(),
              report.bytes_out ? static_cast<double>(report.bytes_in) / static_cast<double>(report.bytes_out) : 0.0,
              report.seconds, n_quantized ? error_sum / static_cast<double>(n_quantized) : 0.0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"qmr " QMR_VERSION_STRING ": quantize language models and measure what it does to them"};
  app.require_subcommand(1);
  app.set_version_flag("--version", QMR_VERSION_STRING);

  std::string inspect_path;
  bool inspect_json = false;
  auto* inspect = app.add_subcommand("inspect", "List the tensors of a safetensors file or checkpoint directory");
  inspect->add_option("path", inspect_path, "a .safetensors file or a model directory")->required();
  inspect->add_flag("--json", inspect_json, "print JSON instead of a table");

  std::string q_in, q_out, q_group = "128", q_format;
  int q_bits = 4;
  bool q_sym = false, q_all = false, q_quiet = false;
  unsigned q_threads = std::max(1u, std::thread::hardware_concurrency());
  qmr::quant::checkpoint_options q_options;
  std::vector<std::string> q_skip;
  auto* quantize = app.add_subcommand("quantize", "Quantize the linear weights of a checkpoint (round to nearest)");
  quantize->add_option("--model", q_in, "input .safetensors file or model directory")->required();
  quantize->add_option("--out", q_out, "output file (for a file) or directory (for a directory)")->required();
  quantize->add_option("--bits", q_bits, "bits per weight: 2, 3, 4, 5, 6 or 8")->capture_default_str();
  quantize->add_option("--group", q_group, "group size: 32, 64, 128, 256, or c for per-channel")->capture_default_str();
  quantize->add_flag("--sym", q_sym, "symmetric (no zero points)");
  quantize->add_option("--format", q_format, "format spec instead of --bits/--group/--sym, e.g. w3g64s");
  quantize->add_flag("--clip", q_options.rtn.clip_search, "search a clipping range per group that minimizes MSE");
  quantize->add_option("--skip", q_skip, "keep weights whose name contains this (repeatable; default embed_tokens, lm_head)");
  quantize->add_flag("--all", q_all, "quantize embeddings and the output head too");
  quantize->add_option("--threads", q_threads, "worker threads")->capture_default_str();
  quantize->add_flag("--quiet", q_quiet, "no progress lines");

  CLI11_PARSE(app, argc, argv);
  try {
    if (*inspect) return run_inspect(inspect_path, inspect_json);
    if (*quantize) {
      if (!q_skip.empty()) q_options.skip = q_skip;
      if (q_all) q_options.skip.clear();
      const std::string group = q_group == "c" || q_group == "channel" ? "c" : q_group;
      const std::string spec = !q_format.empty() ? q_format : "w" + std::to_string(q_bits) + "g" + group + (q_sym ? "s" : "");
      return run_quantize(q_in, q_out, spec, q_options, q_threads, q_quiet);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qmr: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
