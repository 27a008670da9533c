// Writes a random-weight checkpoint directory with the tensor names and shapes of a Llama/Qwen2 model, for tests and demos where no real model can be downloaded.
#pragma once

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/half.hpp"
#include "safetensors.hpp"
#include "text_file.hpp"

namespace qmr::io {

struct synthetic_config {
  int hidden = 256;
  int intermediate = 704;
  int layers = 2;
  int heads = 4;
  int kv_heads = 2;
  int vocab = 1024;
  bool qkv_bias = false;  // Qwen2 has q/k/v biases
  bool tie_embeddings = false;  // no lm_head tensor: the output head is the embedding
  int shards = 1;         // > 1 writes model-0000i-of-0000n.safetensors and an index
  std::uint32_t seed = 1;
  // Student-t degrees of freedom of the weights: 4 gives the heavy tails and
  // outliers that real LLM weights show (a Gaussian would flatter RTN).
  float dof = 4.0f;
};

// Writes config.json and bf16 weights into `dir` (created if needed).
inline void write_synthetic_checkpoint(const std::filesystem::path& dir, const synthetic_config& c) {
  std::filesystem::create_directories(dir);
  const std::int64_t head_dim = c.hidden / c.heads;  // int64 so that kv_heads * head_dim widens first
  struct spec {
    std::string name;
    std::int64_t rows, cols;  // cols 0: a vector of `rows`
  };
  std::vector<spec> specs = {{"model.embed_tokens.weight", c.vocab, c.hidden}};
  for (int l = 0; l < c.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    specs.push_back({p + "input_layernorm.weight", c.hidden, 0});
    specs.push_back({p + "self_attn.q_proj.weight", c.hidden, c.hidden});
    specs.push_back({p + "self_attn.k_proj.weight", c.kv_heads * head_dim, c.hidden});
    specs.push_back({p + "self_attn.v_proj.weight", c.kv_heads * head_dim, c.hidden});
    if (c.qkv_bias) {
      specs.push_back({p + "self_attn.q_proj.bias", c.hidden, 0});
      specs.push_back({p + "self_attn.k_proj.bias", c.kv_heads * head_dim, 0});
      specs.push_back({p + "self_attn.v_proj.bias", c.kv_heads * head_dim, 0});
    }
    specs.push_back({p + "self_attn.o_proj.weight", c.hidden, c.hidden});
    specs.push_back({p + "post_attention_layernorm.weight", c.hidden, 0});
    specs.push_back({p + "mlp.gate_proj.weight", c.intermediate, c.hidden});
    specs.push_back({p + "mlp.up_proj.weight", c.intermediate, c.hidden});
    specs.push_back({p + "mlp.down_proj.weight", c.hidden, c.intermediate});
  }
  specs.push_back({"model.norm.weight", c.hidden, 0});
  if (!c.tie_embeddings) specs.push_back({"lm_head.weight", c.vocab, c.hidden});

  std::mt19937 rng(c.seed);
  std::student_t_distribution<float> t(c.dof);
  const int shards = std::max(1, c.shards);
  std::vector<safetensors_writer> writers(static_cast<std::size_t>(shards));
  nlohmann::json weight_map = nlohmann::json::object();
  std::uint64_t total = 0;
  const auto shard_name = [&](int s) {
    if (shards == 1) return std::string("model.safetensors");
    char buf[64];
    std::snprintf(buf, sizeof buf, "model-%05d-of-%05d.safetensors", s + 1, shards);
    return std::string(buf);
  };
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const spec& s = specs[i];
    const std::int64_t n = s.cols ? s.rows * s.cols : s.rows;
    std::vector<bf16> data(static_cast<std::size_t>(n));
    // Norm weights near 1; matrices ~ t(dof) scaled like a 1/sqrt(fan_in) init.
    const float scale = s.cols ? 1.0f / std::sqrt(static_cast<float>(s.cols)) : 0.02f;
    for (bf16& x : data) x = to_bf16(s.cols ? scale * t(rng) : 1.0f + scale * t(rng));
    const int shard = static_cast<int>(i * static_cast<std::size_t>(shards) / specs.size());
    writers[static_cast<std::size_t>(shard)].add<bf16>(s.name, s.cols ? make_shape({s.rows, s.cols}) : make_shape({s.rows}), data);
    weight_map[s.name] = shard_name(shard);
    total += static_cast<std::uint64_t>(n) * 2;
  }
  for (int s = 0; s < shards; ++s) writers[static_cast<std::size_t>(s)].write(dir / shard_name(s));
  if (shards > 1)
    write_text_file(dir / "model.safetensors.index.json",
                    nlohmann::json({{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}}).dump(2) + "\n");
  const nlohmann::json config = {{"architectures", {c.qkv_bias ? "Qwen2ForCausalLM" : "LlamaForCausalLM"}},
                                 {"model_type", c.qkv_bias ? "qwen2" : "llama"},
                                 {"hidden_size", c.hidden},
                                 {"intermediate_size", c.intermediate},
                                 {"num_hidden_layers", c.layers},
                                 {"num_attention_heads", c.heads},
                                 {"num_key_value_heads", c.kv_heads},
                                 {"vocab_size", c.vocab},
                                 {"max_position_embeddings", 2048},
                                 {"rms_norm_eps", 1e-6},
                                 {"rope_theta", 10000.0},
                                 {"tie_word_embeddings", c.tie_embeddings},
                                 {"torch_dtype", "bfloat16"},
                                 {"qmr_synthetic", {{"seed", c.seed}, {"dof", c.dof}}}};
  write_text_file(dir / "config.json", config.dump(2) + "\n");
}

}  // namespace qmr::io
