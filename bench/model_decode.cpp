// Prefill and decode tokens/s of a Qwen2.5-0.5B-shaped random-weight model per weight format and thread count, beside the memory-bandwidth bound.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "bandwidth.hpp"
#include "qmr/io/synthetic_checkpoint.hpp"
#include "qmr/model/forward.hpp"
#include "qmr/quant/quantize_checkpoint.hpp"

namespace {

using qmr::bench::split;

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Decode and prefill speed of the model runtime against the memory-bandwidth bound"};
  std::string work = (std::filesystem::temp_directory_path() / "qmr-bench-qwen2.5-0.5b").string();
  std::string formats = "bf16,w4g128", thread_list = "1,2", kernels = "simd", model_dir;
  int prefill = 16, decode = 8, layers = 24;
  app.add_option("--work", work, "where the random checkpoints are written (reused when present)")->capture_default_str();
  app.add_option("--formats", formats, "weight formats, bf16 or qmr specs")->capture_default_str();
  app.add_option("--threads", thread_list, "thread counts")->capture_default_str();
  app.add_option("--prefill", prefill, "prompt tokens")->capture_default_str();
  app.add_option("--decode", decode, "decoded tokens")->capture_default_str();
  app.add_option("--layers", layers, "transformer layers (24 in Qwen2.5-0.5B)")->capture_default_str();
  app.add_option("--kernels", kernels, "matmul kernels: simd (the runtime's default), simd_a8 (int8 activations), reference")->capture_default_str();
  app.add_option("--model", model_dir, "time this checkpoint (its own formats) instead of the random Qwen2.5-0.5B");
  CLI11_PARSE(app, argc, argv);

  try {
    // Qwen2.5-0.5B: hidden 896, intermediate 4864, 14 query / 2 KV heads, vocab 151936, tied embeddings, q/k/v biases.
    qmr::io::synthetic_config shape;
    shape.hidden = 896;
    shape.intermediate = 4864;
    shape.layers = layers;
    shape.heads = 14;
    shape.kv_heads = 2;
    shape.vocab = 151936;
    shape.qkv_bias = true;
    shape.tie_embeddings = true;
    std::filesystem::path base = std::filesystem::path(work) / ("bf16-l" + std::to_string(layers));
    if (!model_dir.empty()) {
      base = model_dir;
      formats = "bf16";
    } else if (!std::filesystem::exists(base / "config.json")) {
      std::fprintf(stderr, "writing the random bf16 checkpoint to %s ...\n", base.c_str());
      qmr::io::write_synthetic_checkpoint(base, shape);
    }
    if (model_dir.empty())
      std::printf("Qwen2.5-0.5B-shaped random model (%d layers), prefill %d tokens, decode %d tokens\n\n", layers,
                  prefill, decode);
    else
      std::printf("%s, prefill %d tokens, decode %d tokens\n\n", model_dir.c_str(), prefill, decode);
    std::printf("| format | kernels | threads | weight MB/token | read GB/s (measured) | bound tok/s | decode tok/s | of bound | prefill tok/s |\n");
    std::printf("|---|---|---|---|---|---|---|---|---|\n");
    std::mt19937 rng(7);
    for (const std::string& spec : split(formats)) {
      std::filesystem::path dir = base;
      if (spec != "bf16" && model_dir.empty()) {
        dir = std::filesystem::path(work) / (spec + "-l" + std::to_string(layers));
        if (!std::filesystem::exists(dir / "config.json")) {
          std::fprintf(stderr, "quantizing to %s ...\n", spec.c_str());
          qmr::quant::checkpoint_options o;
          o.spec = qmr::quant::parse_format(spec);
          qmr::thread_pool pool(2);
          qmr::quant::quantize_checkpoint(base, dir, o, &pool);
        }
      }
      const auto m = qmr::model::model::load(dir);
      for (const std::string& kernel : split(kernels)) {
        for (const std::string& t : split(thread_list)) {
          qmr::thread_pool pool(static_cast<unsigned>(std::stoi(t)));
          const double bandwidth = qmr::bench::read_bandwidth(pool);
          qmr::model::session s(m, prefill + decode + 1, &pool);
          if (kernel == "reference") s.set_kernel(qmr::model::matmul_kernel::reference);
          else if (kernel == "simd_a8") s.set_kernel(qmr::model::matmul_kernel::simd_a8);
          else if (kernel != "simd") throw qmr::error("unknown kernel '" + kernel + "' (simd, simd_a8 or reference)");
          std::vector<std::int32_t> prompt(static_cast<std::size_t>(prefill));
          std::uniform_int_distribution<std::int32_t> id(0, static_cast<std::int32_t>(m.config().vocab) - 1);
          for (auto& x : prompt) x = id(rng);
          const auto t0 = std::chrono::steady_clock::now();
          s.forward(prompt);
          const auto t1 = std::chrono::steady_clock::now();
          for (int i = 0; i < decode; ++i) {
            const std::int32_t one[] = {id(rng)};
            s.forward(one);
          }
          const auto t2 = std::chrono::steady_clock::now();
          const double prefill_tps = prefill / std::chrono::duration<double>(t1 - t0).count();
          const double decode_tps = decode / std::chrono::duration<double>(t2 - t1).count();
          // A decode step reads every weight once (one embedding row aside): that many bytes
          // over the measured bandwidth is the fastest a token can come.
          const double bytes = static_cast<double>(m.decode_bytes_per_token());
          const double bound = bandwidth / bytes;
          std::printf("| %s | %s | %s | %.1f | %.2f | %.2f | %.3f | %.1f%% | %.2f |\n", spec.c_str(), kernel.c_str(), t.c_str(), bytes / 1e6,
                      bandwidth / 1e9, bound, decode_tps, 100.0 * decode_tps / bound, prefill_tps);
          std::fflush(stdout);
        }
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "model_decode: %s\n", e.what());
    return 1;
  }
  return 0;
}
