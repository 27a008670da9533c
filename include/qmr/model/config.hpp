// A transformer's hyper-parameters read from a Hugging Face config.json (model_type llama, qwen2, qwen3), every field validated.
#pragma once

#include <climits>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/dtype.hpp"
#include "../core/error.hpp"
#include "../io/json_file.hpp"

namespace qmr::model {

enum class architecture { llama, qwen2, qwen3 };

inline const char* architecture_name(architecture a) {
  switch (a) {
    case architecture::llama: return "llama";
    case architecture::qwen2: return "qwen2";
    case architecture::qwen3: return "qwen3";
  }
  return "?";
}

enum class rope_type { standard, linear, llama3 };

struct rope_config {
  rope_type type = rope_type::standard;
  double theta = 10000.0;
  double factor = 1.0;                  // linear, llama3
  double low_freq_factor = 1.0;         // llama3
  double high_freq_factor = 4.0;        // llama3
  double original_max_positions = 0.0;  // llama3
};

struct model_config {
  architecture arch = architecture::llama;
  int hidden = 0;        // d_model
  int intermediate = 0;  // MLP width
  int layers = 0;
  int heads = 0;     // query heads
  int kv_heads = 0;  // key/value heads (grouped-query attention)
  int head_dim = 0;  // Qwen3 and some Llamas set it apart from hidden / heads
  int vocab = 0;
  int max_positions = 0;
  double rms_norm_eps = 1e-6;
  rope_config rope;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;  // Qwen2 always; Llama/Qwen3 when attention_bias
  bool o_bias = false;    // Llama/Qwen3 when attention_bias
  bool qk_norm = false;   // Qwen3: RMSNorm over each head of q and k
  dtype weight_dtype = dtype::bf16;  // torch_dtype / dtype, informative
  std::vector<std::int32_t> eos_token_ids;
  std::optional<std::int32_t> bos_token_id;

  int q_dim() const { return heads * head_dim; }
  int kv_dim() const { return kv_heads * head_dim; }

  static model_config parse(const nlohmann::json& j, const std::string& source);
  static model_config load(const std::filesystem::path& dir_or_file);
};

namespace detail {

// Fields that describe training, bookkeeping or features qmr's forward pass does not
// depend on; anything not listed here or parsed below is rejected.
inline const std::set<std::string>& ignored_config_fields() {
  static const std::set<std::string> fields = {
      "architectures", "_name_or_path", "transformers_version", "use_cache", "initializer_range",
      "attention_dropout", "pad_token_id", "model_type", "torch_dtype", "dtype", "max_window_layers",
      "output_attentions", "output_hidden_states", "return_dict", "tokenizer_class", "qmr_synthetic",
      "bos_token_id", "eos_token_id", "sliding_window", "embd_pdrop", "resid_pdrop"};
  return fields;
}

// A token id read from a JSON integer `v`: get<std::int32_t>() would wrap 4294967298 to 2 and
// stop generation at the wrong token, so anything outside [0, 2^31 - 1] is an error naming `field`.
inline std::int32_t token_id(const nlohmann::json& v, const std::string& source, const std::string& field) {
  const bool fits = v.is_number_unsigned() ? v.get<std::uint64_t>() <= INT32_MAX
                                           : v.get<std::int64_t>() >= 0 && v.get<std::int64_t>() <= INT32_MAX;
  if (!fits) throw error("token id " + v.dump() + " is outside 0..2^31-1", in_file(source, {}, field));
  return static_cast<std::int32_t>(v.get<std::int64_t>());
}

}  // namespace detail

inline model_config model_config::parse(const nlohmann::json& j, const std::string& source) {
  const auto fail = [&](const std::string& field, const std::string& why) -> void {
    throw error(why, in_file(source, {}, field));
  };
  if (!j.is_object()) fail("", "config is not a JSON object");
  model_config c;
  std::set<std::string> used;
  const auto get = [&](const std::string& field) -> const nlohmann::json* {
    used.insert(field);
    const auto it = j.find(field);
    return it == j.end() || it->is_null() ? nullptr : &*it;
  };
  const auto positive_int = [&](const std::string& field, bool required) -> int {
    const nlohmann::json* v = get(field);
    if (!v) {
      if (required) fail(field, "missing");
      return 0;
    }
    if (!v->is_number_integer() || v->get<std::int64_t>() <= 0 || v->get<std::int64_t>() > (1 << 30))
      fail(field, "must be a positive integer, got " + v->dump());
    return v->get<int>();
  };
  const auto number = [&](const nlohmann::json& v, const std::string& field) -> double {
    if (!v.is_number() || !std::isfinite(v.get<double>())) fail(field, "must be a finite number, got " + v.dump());
    return v.get<double>();
  };
  const auto boolean = [&](const std::string& field, bool fallback) -> bool {
    const nlohmann::json* v = get(field);
    if (!v) return fallback;
    if (!v->is_boolean()) fail(field, "must be true or false, got " + v->dump());
    return v->get<bool>();
  };
  const auto require_value = [&](const std::string& field, const nlohmann::json& allowed) {
    const nlohmann::json* v = get(field);
    if (v && *v != allowed) fail(field, "qmr supports only " + allowed.dump() + ", got " + v->dump());
  };

  const nlohmann::json* type = get("model_type");
  if (!type || !type->is_string()) fail("model_type", "missing or not a string");
  const std::string t = type->get<std::string>();
  if (t == "llama") c.arch = architecture::llama;
  else if (t == "qwen2") c.arch = architecture::qwen2;
  else if (t == "qwen3") c.arch = architecture::qwen3;
  else fail("model_type", "'" + t + "' is not supported (llama, qwen2, qwen3)");

  c.hidden = positive_int("hidden_size", true);
  c.intermediate = positive_int("intermediate_size", true);
  c.layers = positive_int("num_hidden_layers", true);
  c.heads = positive_int("num_attention_heads", true);
  c.kv_heads = positive_int("num_key_value_heads", false);
  if (c.kv_heads == 0) c.kv_heads = c.heads;  // transformers' own default: multi-head attention
  c.vocab = positive_int("vocab_size", true);
  c.max_positions = positive_int("max_position_embeddings", false);
  c.head_dim = positive_int("head_dim", false);
  if (c.head_dim == 0) {
    if (c.hidden % c.heads != 0) fail("num_attention_heads", "does not divide hidden_size and head_dim is not given");
    c.head_dim = c.hidden / c.heads;
  }
  if (c.head_dim % 2 != 0) fail("head_dim", "must be even for rotary embeddings");
  if (c.heads % c.kv_heads != 0) fail("num_key_value_heads", "must divide num_attention_heads");
  // q_dim() and kv_dim() are int products: each factor may be up to 2^30, so bound the product
  // here rather than let heads * head_dim overflow (UB) into a wrong weight shape.
  if (std::int64_t{c.heads} * c.head_dim > (std::int64_t{1} << 30))
    fail("head_dim", "num_attention_heads * head_dim = " + std::to_string(std::int64_t{c.heads} * c.head_dim) +
                         " exceeds 2^30");

  const nlohmann::json* eps = get("rms_norm_eps");
  if (!eps) fail("rms_norm_eps", "missing");
  c.rms_norm_eps = number(*eps, "rms_norm_eps");
  if (!(c.rms_norm_eps > 0)) fail("rms_norm_eps", "must be positive");

  const nlohmann::json* act = get("hidden_act");
  if (act && *act != "silu") fail("hidden_act", "qmr supports only \"silu\" (SwiGLU), got " + act->dump());
  require_value("mlp_bias", false);
  require_value("pretraining_tp", 1);
  if (boolean("use_sliding_window", false)) fail("use_sliding_window", "sliding-window attention is not supported");
  if (const nlohmann::json* lt = get("layer_types")) {
    if (!lt->is_array()) fail("layer_types", "must be an array");
    for (const auto& x : *lt)
      if (x != "full_attention") fail("layer_types", "only full_attention layers are supported, got " + x.dump());
  }
  c.tie_word_embeddings = boolean("tie_word_embeddings", false);  // the default of all three configs
  const bool attention_bias = boolean("attention_bias", false);
  c.qkv_bias = c.arch == architecture::qwen2 || attention_bias;
  c.o_bias = c.arch != architecture::qwen2 && attention_bias;
  if (c.arch == architecture::qwen2 && j.contains("attention_bias") && !attention_bias)
    fail("attention_bias", "Qwen2 always has q/k/v biases");
  c.qk_norm = c.arch == architecture::qwen3;

  // RoPE: transformers 5 writes rope_parameters; older files rope_theta + rope_scaling.
  const nlohmann::json* params = get("rope_parameters");
  const nlohmann::json* scaling = get("rope_scaling");
  const nlohmann::json* theta = get("rope_theta");
  if (params && scaling) fail("rope_scaling", "both rope_parameters and rope_scaling are given");
  const nlohmann::json* rp = params ? params : scaling;
  const std::string rp_name = params ? "rope_parameters" : "rope_scaling";
  if (theta) c.rope.theta = number(*theta, "rope_theta");
  if (rp) {
    if (!rp->is_object()) fail(rp_name, "must be an object");
    std::string kind = "default";
    for (const char* key : {"rope_type", "type"})
      if (rp->contains(key)) {
        if (!(*rp)[key].is_string()) fail(rp_name + "." + key, "must be a string");
        kind = (*rp)[key].get<std::string>();
      }
    const auto rp_number = [&](const char* key, bool required, double fallback) {
      if (!rp->contains(key)) {
        if (required) fail(rp_name + "." + key, "missing for rope_type " + kind);
        return fallback;
      }
      return number((*rp)[key], rp_name + "." + key);
    };
    if (rp->contains("rope_theta")) c.rope.theta = rp_number("rope_theta", true, 0);
    std::set<std::string> allowed = {"rope_type", "type", "rope_theta"};
    if (kind == "default") {
      c.rope.type = rope_type::standard;
    } else if (kind == "linear") {
      c.rope.type = rope_type::linear;
      c.rope.factor = rp_number("factor", true, 1);
      allowed.insert("factor");
    } else if (kind == "llama3") {
      c.rope.type = rope_type::llama3;
      c.rope.factor = rp_number("factor", true, 1);
      c.rope.low_freq_factor = rp_number("low_freq_factor", true, 1);
      c.rope.high_freq_factor = rp_number("high_freq_factor", true, 4);
      c.rope.original_max_positions = rp_number("original_max_position_embeddings", true, 0);
      allowed.insert({"factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"});
      // rope_inv_freq divides by both (transformers raises ZeroDivisionError on a zero factor);
      // zero or negative ones would give silently meaningless frequencies.
      if (!(c.rope.low_freq_factor > 0)) fail(rp_name + ".low_freq_factor", "must be positive");
      if (!(c.rope.original_max_positions > 0)) fail(rp_name + ".original_max_position_embeddings", "must be positive");
      if (!(c.rope.high_freq_factor > c.rope.low_freq_factor))
        fail(rp_name + ".high_freq_factor", "must exceed low_freq_factor");
    } else {
      fail(rp_name + ".rope_type", "'" + kind + "' is not supported (default, linear, llama3)");
    }
    for (const auto& [key, value] : rp->items())
      if (!allowed.count(key)) fail(rp_name + "." + key, "is not supported for rope_type " + kind);
    if (!(c.rope.factor > 0)) fail(rp_name + ".factor", "must be positive");
  }
  if (!(c.rope.theta > 0)) fail("rope_theta", "must be positive");

  for (const char* key : {"torch_dtype", "dtype"}) {
    const nlohmann::json* d = get(key);
    if (!d) continue;
    if (!d->is_string()) fail(key, "must be a string");
    const std::string s = d->get<std::string>();
    if (s == "float32") c.weight_dtype = dtype::f32;
    else if (s == "float16") c.weight_dtype = dtype::f16;
    else if (s == "bfloat16") c.weight_dtype = dtype::bf16;
    else fail(key, "'" + s + "' is not float32, float16 or bfloat16");
  }
  if (const nlohmann::json* eos = get("eos_token_id")) {
    if (eos->is_number_integer()) c.eos_token_ids.push_back(detail::token_id(*eos, source, "eos_token_id"));
    else if (eos->is_array())
      for (const auto& e : *eos) {
        if (!e.is_number_integer()) fail("eos_token_id", "must hold integers");
        c.eos_token_ids.push_back(detail::token_id(e, source, "eos_token_id"));
      }
    else fail("eos_token_id", "must be an integer or a list of integers");
  }
  if (const nlohmann::json* bos = get("bos_token_id")) {
    if (!bos->is_number_integer()) fail("bos_token_id", "must be an integer");
    c.bos_token_id = detail::token_id(*bos, source, "bos_token_id");
  }

  for (const auto& [key, value] : j.items())
    if (!used.count(key) && !detail::ignored_config_fields().count(key))
      fail(key, "is not a field qmr understands (it may change the model's computation)");
  return c;
}

inline model_config model_config::load(const std::filesystem::path& dir_or_file) {
  const std::filesystem::path path =
      std::filesystem::is_directory(dir_or_file) ? dir_or_file / "config.json" : dir_or_file;
  return parse(io::read_json_file(path), path.string());
}

}  // namespace qmr::model
