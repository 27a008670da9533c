// config.json parsing: every fixture, old and new RoPE fields, and clear errors for what qmr does not run.
#include <catch2/catch.hpp>

#include <fstream>

#include "../temp_dir.hpp"
#include "fixtures.hpp"
#include "qmr/io/synthetic_checkpoint.hpp"
#include "qmr/model/forward.hpp"
#include "qmr/model/generation_config.hpp"

using namespace qmr;
using model::model_config;

namespace {

nlohmann::json base() {
  return {{"model_type", "qwen2"},      {"hidden_size", 64},         {"intermediate_size", 128},
          {"num_hidden_layers", 2},     {"num_attention_heads", 4},  {"num_key_value_heads", 2},
          {"vocab_size", 100},          {"rms_norm_eps", 1e-6},      {"rope_theta", 10000.0},
          {"hidden_act", "silu"},       {"tie_word_embeddings", true}};
}

model_config parse(const nlohmann::json& j) { return model_config::parse(j, "config.json"); }

}  // namespace

TEST_CASE("every fixture config parses to what transformers was given", "[config]") {
  const auto llama3 = model_config::load(testing::fixture_dir("llama-gqa1-tied-rope-llama3"));
  REQUIRE(llama3.arch == model::architecture::llama);
  REQUIRE(llama3.rope.type == model::rope_type::llama3);
  REQUIRE(llama3.rope.theta == 500000.0);
  REQUIRE(llama3.rope.factor == 8.0);
  REQUIRE(llama3.rope.original_max_positions == 64.0);
  REQUIRE(llama3.tie_word_embeddings);
  REQUIRE(llama3.kv_heads == 4);
  REQUIRE(llama3.weight_dtype == dtype::f32);

  const auto qwen3 = model_config::load(testing::fixture_dir("qwen3-qknorm-linear-rope"));
  REQUIRE(qwen3.head_dim == 32);
  REQUIRE(qwen3.q_dim() == 128);
  REQUIRE(qwen3.qk_norm);
  REQUIRE_FALSE(qwen3.qkv_bias);
  REQUIRE(qwen3.rope.type == model::rope_type::linear);
  REQUIRE(qwen3.rope.factor == 2.0);

  const auto qwen2 = model_config::load(testing::fixture_dir("qwen2-gqa7-bias"));
  REQUIRE(qwen2.qkv_bias);
  REQUIRE_FALSE(qwen2.o_bias);
  REQUIRE(qwen2.heads / qwen2.kv_heads == 7);
  REQUIRE(qwen2.rope.theta == 1000000.0);

  REQUIRE(model_config::load(testing::fixture_dir("qwen2-bf16-sharded")).weight_dtype == dtype::bf16);
  REQUIRE(model_config::load(testing::fixture_dir("qwen3-f16-tied")).kv_heads == 1);
}

TEST_CASE("older configs: top-level rope_theta with rope_scaling", "[config]") {
  auto j = base();
  j["rope_scaling"] = nullptr;
  REQUIRE(parse(j).rope.type == model::rope_type::standard);
  j["rope_scaling"] = {{"type", "linear"}, {"factor", 4.0}};
  REQUIRE(parse(j).rope.type == model::rope_type::linear);
  REQUIRE(parse(j).rope.factor == 4.0);
  j["model_type"] = "llama";
  j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 32.0}, {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                       {"original_max_position_embeddings", 8192}};
  const auto c = parse(j);
  REQUIRE(c.rope.type == model::rope_type::llama3);
  REQUIRE(c.rope.theta == 10000.0);
  // llama3 RoPE: high frequencies untouched, low ones divided by the factor.
  const auto inv = model::rope_inv_freq(c);
  REQUIRE(inv.front() == 1.0f);
  const float plain_last = 1.0f / std::pow(10000.0f, static_cast<float>(c.head_dim - 2) / static_cast<float>(c.head_dim));
  REQUIRE(inv.back() == Approx(plain_last / 32.0f));
}

TEST_CASE("unsupported, malformed or out-of-range fields are errors naming the field", "[config]") {
  const struct {
    const char* what;
    std::function<void(nlohmann::json&)> edit;
    const char* field;
    const char* says;
  } cases[] = {
      {"architecture", [](auto& j) { j["model_type"] = "mistral"; }, "model_type", "'mistral' is not supported"},
      {"missing size", [](auto& j) { j.erase("hidden_size"); }, "hidden_size", "missing"},
      {"negative size", [](auto& j) { j["intermediate_size"] = -5; }, "intermediate_size", "positive integer"},
      {"string eps", [](auto& j) { j["rms_norm_eps"] = "1e-6"; }, "rms_norm_eps", "finite number"},
      {"activation", [](auto& j) { j["hidden_act"] = "gelu"; }, "hidden_act", "silu"},
      {"rope type", [](auto& j) { j["rope_scaling"] = {{"type", "yarn"}, {"factor", 4.0}}; }, "rope_scaling.rope_type", "'yarn'"},
      {"rope field", [](auto& j) { j["rope_parameters"] = {{"rope_type", "default"}, {"beta_fast", 32}}; },
       "rope_parameters.beta_fast", "not supported"},
      {"llama3 factor", [](auto& j) { j["rope_parameters"] = {{"rope_type", "llama3"}, {"rope_theta", 1e4}}; },
       "rope_parameters.factor", "missing"},
      {"sliding window", [](auto& j) { j["use_sliding_window"] = true; }, "use_sliding_window", "not supported"},
      {"layer types", [](auto& j) { j["layer_types"] = {"full_attention", "sliding_attention"}; }, "layer_types", "full_attention"},
      {"mlp bias", [](auto& j) { j["mlp_bias"] = true; }, "mlp_bias", "only false"},
      {"gqa", [](auto& j) { j["num_key_value_heads"] = 3; }, "num_key_value_heads", "divide"},
      {"odd head_dim", [](auto& j) { j["head_dim"] = 15; }, "head_dim", "even"},
      {"unknown field", [](auto& j) { j["quantization_config"] = {{"bits", 4}}; }, "quantization_config", "not a field qmr understands"},
      {"dtype", [](auto& j) { j["torch_dtype"] = "float8"; }, "torch_dtype", "'float8'"},
      {"tie", [](auto& j) { j["tie_word_embeddings"] = "yes"; }, "tie_word_embeddings", "true or false"},
      // get<std::int32_t>() wrapped 4294967298 to 2: generation stopped at the wrong token.
      {"eos beyond int32", [](auto& j) { j["eos_token_id"] = 4294967298LL; }, "eos_token_id", "4294967298"},
      {"eos list beyond int32", [](auto& j) { j["eos_token_id"] = {1, 8589934593LL}; }, "eos_token_id", "8589934593"},
      {"negative eos", [](auto& j) { j["eos_token_id"] = -1; }, "eos_token_id", "outside 0..2^31-1"},
      {"bos beyond int32", [](auto& j) { j["bos_token_id"] = 4294967297LL; }, "bos_token_id", "4294967297"},
      // q_dim() = heads * head_dim overflowed int (UB) and the weights were checked against a wrapped shape.
      {"head product", [](auto& j) { j["head_dim"] = 1 << 30; }, "head_dim", "exceeds 2^30"},
      // rope_inv_freq divides by these; transformers raises ZeroDivisionError.
      {"llama3 low_freq_factor 0",
       [](auto& j) {
         j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 0.0},
                              {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192}};
       },
       "rope_scaling.low_freq_factor", "positive"},
      {"llama3 original_max_position_embeddings 0",
       [](auto& j) {
         j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                              {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 0}};
       },
       "rope_scaling.original_max_position_embeddings", "positive"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    auto j = base();
    c.edit(j);
    REQUIRE_THROWS_WITH(parse(j), Catch::Contains(std::string("field '") + c.field + "'") && Catch::Contains(c.says) &&
                                      Catch::Contains("config.json"));
  }
  REQUIRE_THROWS_WITH(parse(nlohmann::json::array()), Catch::Contains("not a JSON object"));
  auto j = base();
  j["eos_token_id"] = {0, 2147483647};  // the largest id that fits stays as it is
  REQUIRE(parse(j).eos_token_ids == std::vector<std::int32_t>{0, 2147483647});
}

TEST_CASE("a config that disagrees with the weights is an error naming the tensor", "[config]") {
  testing::temp_dir dir;
  io::write_synthetic_checkpoint(dir.path(), {});
  REQUIRE_NOTHROW(model::model::load(dir.path()));
  nlohmann::json j;
  std::ifstream(dir / "config.json") >> j;
  j["intermediate_size"] = 512;
  std::ofstream(dir / "config.json") << j.dump();
  REQUIRE_THROWS_WITH(model::model::load(dir.path()),
                      Catch::Contains("model.layers.0.mlp.gate_proj.weight") && Catch::Contains("config implies [512, 256]"));
  j["intermediate_size"] = 704;
  j["num_hidden_layers"] = 3;
  std::ofstream(dir / "config.json") << j.dump();
  REQUIRE_THROWS_WITH(model::model::load(dir.path()),
                      Catch::Contains("model.layers.2.input_layernorm.weight") && Catch::Contains("missing"));
  std::ofstream(dir / "config.json") << "{not json";
  REQUIRE_THROWS_WITH(model::model::load(dir.path()), Catch::Contains("config.json") && Catch::Contains("not valid JSON"));
}

TEST_CASE("generation_config.json and qmr_quantization.json values are range-checked, and deep JSON is an error",
          "[config]") {
  testing::temp_dir dir;
  io::write_synthetic_checkpoint(dir.path(), {});
  {
    const auto m = model::model::load(dir.path());
    std::ofstream(dir / "generation_config.json") << R"({"eos_token_id": [5, 4294967301]})";
    REQUIRE_THROWS_WITH(model::default_stop_tokens(m), Catch::Contains("generation_config.json") &&
                                                           Catch::Contains("field 'eos_token_id'") &&
                                                           Catch::Contains("4294967301"));
  }
  // get<int>() wrapped 4294967300 to 4 and loaded the model as W·A4.
  std::ofstream(dir / "qmr_quantization.json") << R"({"activation_bits": 4294967300})";
  REQUIRE_THROWS_WITH(model::model::load(dir.path()), Catch::Contains("qmr_quantization.json") &&
                                                          Catch::Contains("field 'activation_bits'") &&
                                                          Catch::Contains("4294967300"));
  std::filesystem::remove(dir / "qmr_quantization.json");
  // 200000 nested arrays: quoting the value in the error ("got [[[...") recursed once per level
  // and overflowed the stack. The error names the '[' at level 513: the object is level 1, so
  // the 512th '[', at byte 1 + 15 + 511.
  nlohmann::json cfg;
  std::ifstream(dir / "config.json") >> cfg;
  cfg.erase("hidden_size");
  std::string text = cfg.dump();
  text.insert(1, "\"hidden_size\": " + std::string(200000, '[') + std::string(200000, ']') + ", ");
  std::ofstream(dir / "config.json") << text;
  REQUIRE_THROWS_WITH(model_config::load(dir.path()), Catch::Contains("config.json") && Catch::Contains("byte 527") &&
                                                          Catch::Contains("deeper than 512 levels"));
}
