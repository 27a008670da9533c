// Benchmark: greedy decode and prefill tokens/s of the CUDA forward pass (model/cuda_forward.cuh) for the bundled model and a Qwen2.5-0.5B-shaped random model, bf16 and w4g128 weights, as a CUDA graph with and without programmatic dependent launch and eagerly, beside the bound of the card's measured copy bandwidth over the weight bytes a token reads; a table on stdout and a JSON file (--json PATH).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <cuda_runtime.h>

#include <nlohmann/json.hpp>

#include "cuda_bench.cuh"
#include "list.hpp"
#include "qmr/core/half.hpp"
#include "qmr/core/thread_pool.hpp"
#include "qmr/io/safetensors.hpp"
#include "qmr/io/text_file.hpp"
#include "qmr/model/cuda_forward.cuh"
#include "qmr/quant/format.hpp"

namespace {

namespace fs = std::filesystem;
namespace gpu = qmr::bench::gpu;

struct options {
  std::string json_path;
  fs::path models_dir;
  fs::path work = fs::temp_directory_path() / "qmr-bench-cuda";
  std::vector<std::string> models = {"qmr-math", "qwen2.5-0.5b"};
  std::vector<std::string> formats = {"bf16", "w4g128"};
  // graph: the decode step replayed as a CUDA graph, kernels with programmatic dependent
  // launch (the session's defaults); graph-norope: the same with bias + RoPE + KV cache in
  // their own kernel after the q/k/v GEMV (cuda_options::rope_epilogue off); graph-noepilogue:
  // SiLU·up in its own kernel too (silu_epilogue off as well); graph-nopdl; eager: neither.
  std::vector<std::string> modes = {"graph", "graph-norope", "graph-noepilogue", "graph-nopdl", "eager"};
  int prefill = 32, decode = 128, layers = 24;
};

options parse(int argc, char** argv) {
  options o;
  const char* env = std::getenv("QMR_MODELS_DIR");
  o.models_dir = env != nullptr ? fs::path(env) : fs::path(__FILE__).parent_path().parent_path() / "models";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw qmr::error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--json") o.json_path = value();
    else if (a == "--models-dir") o.models_dir = value();
    else if (a == "--work") o.work = value();
    else if (a == "--models") o.models = qmr::bench::split_list(value());
    else if (a == "--formats") o.formats = qmr::bench::split_list(value());
    else if (a == "--prefill") o.prefill = std::stoi(value());
    else if (a == "--decode") o.decode = std::stoi(value());
    else if (a == "--layers") o.layers = std::stoi(value());
    else if (a == "--modes") o.modes = qmr::bench::split_list(value());
    else if (a == "--help" || a == "-h") {
      std::puts("cuda_decode [--json PATH] [--models qmr-math,qwen2.5-0.5b] [--formats bf16,w4g128] [--prefill 32]\n"
                "            [--decode 128] [--modes graph,graph-norope,graph-noepilogue,graph-nopdl,eager] [--layers 24] [--models-dir DIR] [--work DIR]");
      std::exit(0);
    } else {
      throw qmr::error("unknown argument " + a + " (--help)");
    }
  }
  return o;
}

// A Qwen2.5-0.5B-shaped checkpoint (hidden 896, intermediate 4864, 14/2 heads,
// vocab 151936, tied embeddings, q/k/v biases) of random bf16 weights, written
// with a counter-based generator on every core: io::write_synthetic_checkpoint's
// Student-t draws take minutes for 0.5B weights, and a speed test needs only
// nonzero data of the right shapes.
void write_qwen_shaped(const fs::path& dir, int layers) {
  const std::int64_t hidden = 896, inter = 4864, heads = 14, kv_heads = 2, vocab = 151936, kv = kv_heads * hidden / heads;
  struct spec {
    std::string name;
    std::int64_t rows, cols;  // cols 0: a vector
  };
  std::vector<spec> specs = {{"model.embed_tokens.weight", vocab, hidden}, {"model.norm.weight", hidden, 0}};
  for (int l = 0; l < layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    specs.push_back({p + "input_layernorm.weight", hidden, 0});
    specs.push_back({p + "post_attention_layernorm.weight", hidden, 0});
    specs.push_back({p + "self_attn.q_proj.weight", hidden, hidden});
    specs.push_back({p + "self_attn.k_proj.weight", kv, hidden});
    specs.push_back({p + "self_attn.v_proj.weight", kv, hidden});
    specs.push_back({p + "self_attn.q_proj.bias", hidden, 0});
    specs.push_back({p + "self_attn.k_proj.bias", kv, 0});
    specs.push_back({p + "self_attn.v_proj.bias", kv, 0});
    specs.push_back({p + "self_attn.o_proj.weight", hidden, hidden});
    specs.push_back({p + "mlp.gate_proj.weight", inter, hidden});
    specs.push_back({p + "mlp.up_proj.weight", inter, hidden});
    specs.push_back({p + "mlp.down_proj.weight", hidden, inter});
  }
  fs::create_directories(dir);
  qmr::io::safetensors_writer w;
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  std::uint64_t seed = 1;
  for (const spec& s : specs) {
    const std::int64_t n = s.cols ? s.rows * s.cols : s.rows;
    std::vector<qmr::bf16> data(static_cast<std::size_t>(n));
    // Uniform with the variance of a 1/sqrt(fan_in) init; norm weights near 1.
    const float scale = s.cols ? std::sqrt(3.0f / static_cast<float>(s.cols)) : 0.02f;
    const float offset = s.cols ? 0.0f : 1.0f;
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        for (std::int64_t i = t; i < n; i += threads) {
          std::uint64_t z = (seed << 40) + static_cast<std::uint64_t>(i) + 0x9e3779b97f4a7c15ull;  // splitmix64
          z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
          z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
          z ^= z >> 31;
          const float u = static_cast<float>(z >> 40) * (2.0f / 16777216.0f) - 1.0f;  // [-1, 1)
          data[static_cast<std::size_t>(i)] = qmr::to_bf16(offset + scale * u);
        }
      });
    for (auto& th : pool) th.join();
    ++seed;
    w.add<qmr::bf16>(s.name, s.cols ? qmr::make_shape({s.rows, s.cols}) : qmr::make_shape({s.rows}), data);
  }
  w.write(dir / "model.safetensors");
  const nlohmann::json config = {{"architectures", {"Qwen2ForCausalLM"}},
                                 {"model_type", "qwen2"},
                                 {"hidden_size", hidden},
                                 {"intermediate_size", inter},
                                 {"num_hidden_layers", layers},
                                 {"num_attention_heads", heads},
                                 {"num_key_value_heads", kv_heads},
                                 {"vocab_size", vocab},
                                 {"max_position_embeddings", 32768},
                                 {"rms_norm_eps", 1e-6},
                                 {"rope_theta", 1000000.0},
                                 {"tie_word_embeddings", true},
                                 {"torch_dtype", "bfloat16"}};
  qmr::io::write_text_file(dir / "config.json", config.dump(2) + "\n");
}

struct record {
  std::string model, format;
  std::string mode;
  double bytes_per_token, bound, decode_tps, prefill_tps;
};

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const options opt = parse(argc, argv);
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
      std::puts("no CUDA device");
      return 77;
    }
    cudaDeviceProp prop{};
    QMR_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    double bw = 0;
    {
      qmr::cuda::stream_owner stream;
      bw = gpu::copy_bandwidth(stream.s);
    }
    std::printf("device: %s, %d SMs; measured D2D copy bandwidth %.0f GB/s (read + write)\n", prop.name,
                prop.multiProcessorCount, bw / 1e9);
    std::printf("greedy decode of %d tokens after a %d-token prompt; tok/s by wall clock, host round trip included\n\n",
                opt.decode, opt.prefill);
    std::printf("| model | format | launch | weight MB/token | bound tok/s | decode tok/s | of bound | prefill tok/s |\n");
    std::printf("|---|---|---|---|---|---|---|---|\n");
    qmr::thread_pool pool(std::max(1u, std::min(16u, std::thread::hardware_concurrency())));
    std::vector<record> records;
    for (const std::string& name : opt.models) {
      fs::path dir;
      if (name == "qwen2.5-0.5b") {
        dir = opt.work / ("qwen2.5-0.5b-l" + std::to_string(opt.layers));
        if (!fs::exists(dir / "config.json")) {
          const auto t = std::chrono::steady_clock::now();
          write_qwen_shaped(dir, opt.layers);
          std::fprintf(stderr, "wrote %s in %.1f s\n", dir.c_str(), seconds_since(t));
        }
      } else {
        dir = opt.models_dir / name;
      }
      for (const std::string& format : opt.formats) {
        auto m = qmr::model::model::load(dir);
        if (format != "bf16") m.quantize(qmr::quant::parse_format(format), {}, {"embed_tokens", "lm_head"}, &pool);
        const int vocab = m.config().vocab;
        std::vector<std::int32_t> prompt(static_cast<std::size_t>(opt.prefill));
        for (std::size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<std::int32_t>((i * 7919 + 11) % vocab);
        for (const std::string& mode : opt.modes) {
          if (mode != "graph" && mode != "graph-norope" && mode != "graph-noepilogue" && mode != "graph-nopdl" && mode != "eager")
            throw qmr::error("--modes takes graph, graph-norope, graph-noepilogue, graph-nopdl and eager, got " + mode);
          qmr::model::cuda_options co;
          co.graphs = mode != "eager";
          co.pdl = mode == "graph" || mode == "graph-norope" || mode == "graph-noepilogue";
          co.rope_epilogue = mode != "graph-norope" && mode != "graph-noepilogue";
          co.silu_epilogue = mode != "graph-noepilogue";
          const auto tu = std::chrono::steady_clock::now();
          qmr::model::cuda_session s(m, gpu::decode_capacity(prompt.size(), opt.decode), co);
          const double upload = seconds_since(tu);
          const gpu::decode_timing t = gpu::time_decode(s, prompt, opt.decode);
          record r{name, format, mode, static_cast<double>(s.decode_bytes_per_token()), 0, opt.decode / t.decode_seconds,
                   opt.prefill / t.prefill_seconds};
          r.bound = bw / r.bytes_per_token;
          records.push_back(r);
          std::printf("| %s | %s | %s | %.1f | %.0f | %.0f | %.1f%% | %.0f |\n", name.c_str(), format.c_str(),
                      mode.c_str(), r.bytes_per_token / 1e6, r.bound, r.decode_tps,
                      100.0 * r.decode_tps / r.bound, r.prefill_tps);
          std::fprintf(stderr, "  (%s %s: upload %.1f s)\n", name.c_str(), format.c_str(), upload);
          std::fflush(stdout);
        }
      }
    }
    if (!opt.json_path.empty()) {
      std::FILE* f = std::fopen(opt.json_path.c_str(), "w");
      if (f == nullptr) throw qmr::error("cannot write " + opt.json_path);
      std::fprintf(f, "{\n  \"benchmark\": \"cuda_decode\",\n  \"device\": \"%s\",\n", prop.name);
      std::fprintf(f, "  \"copy_bandwidth_bytes_per_second\": %.6e,\n  \"prefill_tokens\": %d,\n  \"decode_tokens\": %d,\n",
                   bw, opt.prefill, opt.decode);
      std::fprintf(f, "  \"records\": [\n");
      for (std::size_t i = 0; i < records.size(); ++i) {
        const record& r = records[i];
        std::fprintf(f,
                     "    {\"model\": \"%s\", \"format\": \"%s\", \"launch\": \"%s\", \"weight_bytes_per_token\": %.0f, "
                     "\"bound_tokens_per_second\": %.2f, \"decode_tokens_per_second\": %.2f, \"fraction_of_bound\": %.4f, "
                     "\"prefill_tokens_per_second\": %.2f}%s\n",
                     r.model.c_str(), r.format.c_str(), r.mode.c_str(), r.bytes_per_token, r.bound,
                     r.decode_tps, r.decode_tps / r.bound, r.prefill_tps, i + 1 < records.size() ? "," : "");
      }
      std::fprintf(f, "  ]\n}\n");
      std::fclose(f);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cuda_decode: %s\n", e.what());
    return 1;
  }
  return 0;
}
