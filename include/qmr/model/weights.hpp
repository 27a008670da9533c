// A model's weights as views into its memory-mapped checkpoint (dense or qmr-quantized, per tensor), checked against its config.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <filesystem>
#include <map>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "../io/json_file.hpp"
#include "../io/quantized.hpp"
#include "../quant/plan.hpp"
#include "../quant/rtn.hpp"
#include "../io/safetensors.hpp"
#include "config.hpp"
#include "linear.hpp"

namespace qmr::model {

struct layer_weights {
  std::vector<float> attn_norm, mlp_norm;  // [hidden]
  std::vector<float> q_norm, k_norm;       // [head_dim], Qwen3 only
  std::vector<float> q_bias, k_bias, v_bias, o_bias;  // [q_dim], [kv_dim], [kv_dim], [hidden] when present
  linear_weight q, k, v, o;                // [q_dim, hidden], [kv_dim, hidden] x2, [hidden, q_dim]
  linear_weight gate, up, down;            // [inter, hidden] x2, [hidden, inter]
};

struct model_weights {
  linear_weight embed;  // [vocab, hidden]
  std::vector<layer_weights> layers;
  std::vector<float> final_norm;  // [hidden]
  linear_weight lm_head;          // [vocab, hidden]; the embedding itself when tied
};

// Owns the checkpoint (mapped, or copied into memory: io::load_mode), the config and the views into it.
class model {
 public:
  model() = default;
  model(model&&) = default;
  model& operator=(model&&) = default;
  model(const model&) = delete;  // the index below points into this object's checkpoint
  model& operator=(const model&) = delete;

  // mode: map the checkpoint (default) or copy it into huge-page memory (io::load_mode).
  static model load(const std::filesystem::path& dir, io::load_mode mode = io::load_mode::map) {
    model m;
    m.dir_ = dir;
    m.config_ = model_config::load(dir);
    m.checkpoint_ = io::checkpoint::open(dir, mode);
    m.index_quantized_();
    m.bind_();
    m.read_quantization_notes_();
    return m;
  }

  const model_config& config() const { return config_; }
  // Bits to which sessions quantize linear-layer inputs (0: exact): what `qmr quantize --act`
  // recorded in the checkpoint's qmr_quantization.json, or what set_activation_bits says.
  int activation_bits() const { return activation_bits_; }
  void set_activation_bits(int bits) {
    check(bits == 0 || bits == 4 || bits == 8, "activation bits must be 0 (off), 4 or 8, got " + std::to_string(bits));
    activation_bits_ = bits;
  }
  const model_weights& weights() const { return weights_; }
  const std::filesystem::path& directory() const { return dir_; }

  // Bytes of every weight a forward pass reads once per token (the tied head counted once).
  std::uint64_t weight_bytes() const {
    std::uint64_t b = weights_.embed.bytes();
    if (!config_.tie_word_embeddings) b += weights_.lm_head.bytes();
    for (const auto& l : weights_.layers)
      for (const linear_weight* w : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) b += w->bytes();
    return b;
  }
  // Storage bits per weight over the layer linears (q, k, v, o, gate, up, down): codes, scales
  // and zero points, the measure precision plans budget; 0 for a model without layers.
  double layer_bits_per_weight() const {
    double bits = 0, weights = 0;
    for (const auto& l : weights_.layers)
      for (const linear_weight* w : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) {
        bits += 8.0 * static_cast<double>(w->bytes());
        weights += static_cast<double>(w->rows) * static_cast<double>(w->cols);
      }
    return weights > 0 ? bits / weights : 0.0;
  }
  // Quantizes, in memory and by round to nearest, every linear weight whose name contains
  // none of `skip` and whose shape fits `spec`; returns the names left as they were.
  // (The tied output head follows the embedding.)
  std::vector<std::string> quantize(const quant::format_spec& spec, const quant::rtn_options& rtn = {},
                                    const std::vector<std::string>& skip = {"embed_tokens", "lm_head"},
                                    thread_pool* pool = nullptr) {
    check(spec.is_quantized(), "quantize needs a quantized format, got " + spec.str());
    std::vector<std::string> kept;
    const auto convert = [&](linear_weight& w) {
      const bool skipped = std::any_of(skip.begin(), skip.end(), [&](const std::string& s) {
        return w.name.find(s) != std::string::npos;
      });
      if (skipped || !fits_format(w, spec) || w.spec.is_quantized()) {
        kept.push_back(w.name);
        return;
      }
      std::vector<float> f32(static_cast<std::size_t>(w.rows * w.cols));  // [rows, cols]
      copy_to_f32(w.dense, f32.data());
      set_quantized(w, quant::quantize_rtn({f32.data(), w.rows, w.cols}, spec, rtn, pool, w.name));
    };
    convert(weights_.embed);
    for (auto& l : weights_.layers)
      for (linear_weight* w : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) convert(*w);
    if (config_.tie_word_embeddings) weights_.lm_head = weights_.embed;
    else convert(weights_.lm_head);
    return kept;
  }

  // Repacks every 2- to 6-bit linear for the table GEMV (simd/lut_gemv.hpp), which
  // sessions with matmul_kernel::simd_lut run for one row of X (decode) and, through
  // lut_gemm's panels, for more (prefill). The repack is a second copy of those weights
  // in memory; a simd_lut forward pass no longer reads the format's copy (a mapped
  // checkpoint's pages), which other kernels and the tools that read the format keep.
  // Changing a weight afterwards (set_quantized, set_dense) drops its repack.
  // Returns how many linears were repacked: none where lut_gemv_fast() is false (no
  // AVX-512BW), as the scalar loop over the repack would be slower than the SIMD GEMVs.
  int repack_lut(thread_pool* pool = nullptr) {
    if (!simd::lut_gemv_fast()) return 0;
    std::vector<linear_weight*> todo;
    const auto add = [&](linear_weight& w) {
      if (w.spec.is_quantized() && simd::lut_supported_bits(w.spec.bits) && w.lut == nullptr) todo.push_back(&w);
    };
    // The embedding only as the tied output head: its lookups read the checkpoint's rows.
    add(config_.tie_word_embeddings ? weights_.embed : weights_.lm_head);
    for (auto& l : weights_.layers)
      for (linear_weight* w : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) add(*w);
    const auto one = [&](std::int64_t i0, std::int64_t i1) {
      for (std::int64_t i = i0; i < i1; ++i) {
        linear_weight& w = *todo[static_cast<std::size_t>(i)];
        w.lut = std::make_shared<const simd::lut_matrix>(w.quantized);
      }
    };
    if (pool) pool->parallel_for(0, static_cast<std::int64_t>(todo.size()), 1, one);
    else one(0, static_cast<std::int64_t>(todo.size()));
    sync_tied_();
    return static_cast<int>(todo.size());
  }

  // --- Changing weights in memory (plans, GPTQ, AWQ, SmoothQuant) ---------------------------

  // Every linear weight as precision plans name them: the embedding, each layer's q, k, v, o,
  // gate, up, down, and the output head when it is not tied to the embedding.
  std::vector<quant::plan_target> linear_targets() const {
    using c = quant::plan_component;
    std::vector<quant::plan_target> out;
    out.push_back({weights_.embed.name, -1, c::embed});
    for (std::size_t l = 0; l < weights_.layers.size(); ++l) {
      const layer_weights& lw = weights_.layers[l];
      const int li = static_cast<int>(l);
      out.push_back({lw.q.name, li, c::q});
      out.push_back({lw.k.name, li, c::k});
      out.push_back({lw.v.name, li, c::v});
      out.push_back({lw.o.name, li, c::o});
      out.push_back({lw.gate.name, li, c::gate});
      out.push_back({lw.up.name, li, c::up});
      out.push_back({lw.down.name, li, c::down});
    }
    if (!config_.tie_word_embeddings) out.push_back({weights_.lm_head.name, -1, c::lm_head});
    return out;
  }

  layer_weights& layer(int l) {
    check(l >= 0 && l < config_.layers, "layer " + std::to_string(l) + " outside [0, " + std::to_string(config_.layers) + ")");
    return weights_.layers[static_cast<std::size_t>(l)];
  }
  // The linear weight called `name` (as linear_targets lists it).
  linear_weight& linear(const std::string& name) {
    if (weights_.embed.name == name) return weights_.embed;
    if (!config_.tie_word_embeddings && weights_.lm_head.name == name) return weights_.lm_head;
    for (auto& l : weights_.layers)
      for (linear_weight* w : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down})
        if (w->name == name) return *w;
    throw error("no linear weight of this model is called '" + name + "'", in_file(source_()));
  }

  // w (one of this model's linears) now holds q, which the model keeps.
  void set_quantized(linear_weight& w, quant::qtensor q) {
    check(q.rows() == w.rows && q.cols() == w.cols,
          w.name + ": quantized tensor is [" + std::to_string(q.rows()) + ", " + std::to_string(q.cols()) +
              "], the weight is [" + std::to_string(w.rows) + ", " + std::to_string(w.cols) + "]");
    owned_.push_back(std::make_unique<quant::qtensor>(std::move(q)));
    w.spec = owned_.back()->spec();
    w.quantized = owned_.back()->view();
    w.dense = {};
    w.lut.reset();  // a repack of the old weights
    sync_tied_();
  }
  // w now holds `values` [rows, cols] stored densely as `type` (f32, f16 or bf16), owned by the model.
  void set_dense(linear_weight& w, std::span<const float> values, dtype type) {
    check(values.size() == static_cast<std::size_t>(w.rows * w.cols),
          w.name + ": " + std::to_string(values.size()) + " values for a [" + std::to_string(w.rows) + ", " +
              std::to_string(w.cols) + "] weight");
    check(type == dtype::f32 || type == dtype::f16 || type == dtype::bf16,
          w.name + ": dense weights are F32, F16 or BF16, not " + std::string(dtype_name(type)));
    auto buf = std::make_unique<aligned_buffer<std::uint8_t>>(values.size() * dtype_size(type));  // [rows, cols] of type
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (type == dtype::f32) reinterpret_cast<float*>(buf->data())[i] = values[i];
      else if (type == dtype::f16) reinterpret_cast<f16*>(buf->data())[i] = to_f16(values[i]);
      else reinterpret_cast<bf16*>(buf->data())[i] = to_bf16(values[i]);
    }
    w.spec = quant::format_spec::dense_of(type);
    w.dense = tensor_view::contiguous(reinterpret_cast<const std::byte*>(buf->data()), type, make_shape({w.rows, w.cols}));
    w.quantized = {};
    w.lut.reset();
    owned_dense_.push_back(std::move(buf));
    sync_tied_();
  }
  // w's weights in f32 [rows, cols], whatever its storage.
  std::vector<float> linear_f32(const linear_weight& w) const {
    std::vector<float> out(static_cast<std::size_t>(w.rows * w.cols));  // [rows, cols]
    if (w.spec.is_quantized()) {
      for (std::int64_t r = 0; r < w.rows; ++r)
        for (std::int64_t c = 0; c < w.cols; ++c) out[static_cast<std::size_t>(r * w.cols + c)] = w.quantized.value(r, c);
    } else {
      copy_to_f32(w.dense, out.data());
    }
    return out;
  }
  // The norm weights of layer l that scaling folds into: "input_layernorm" (attn_norm) or
  // "post_attention_layernorm" (mlp_norm). Changing them through here marks them for writers.
  std::vector<float>& norm_for_update(int l, const std::string& which) {
    layer_weights& lw = layer(l);
    const std::string name = "model.layers." + std::to_string(l) + "." + which + ".weight";
    if (which == "input_layernorm") {
      changed_vectors_.insert(name);
      return lw.attn_norm;
    }
    if (which == "post_attention_layernorm") {
      changed_vectors_.insert(name);
      return lw.mlp_norm;
    }
    throw error("no norm '" + which + "' in layer " + std::to_string(l));
  }
  // The current values of a changed vector tensor (norm), or null when it is as stored.
  const std::vector<float>* changed_vector(const std::string& name) const {
    if (!changed_vectors_.count(name)) return nullptr;
    for (std::size_t l = 0; l < weights_.layers.size(); ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      if (name == p + "input_layernorm.weight") return &weights_.layers[l].attn_norm;
      if (name == p + "post_attention_layernorm.weight") return &weights_.layers[l].mlp_norm;
    }
    return nullptr;
  }
  const io::checkpoint& checkpoint() const { return checkpoint_; }

  // The same, less the embedding (a decode step reads one row of it).
  std::uint64_t decode_bytes_per_token() const {
    return weight_bytes() - (config_.tie_word_embeddings ? 0 : weights_.embed.bytes());
  }

 private:
  void read_quantization_notes_() {
    const std::filesystem::path notes = dir_ / "qmr_quantization.json";
    if (!std::filesystem::is_regular_file(notes)) return;
    const nlohmann::json j = io::read_json_file(notes);
    if (!j.is_object() || !j.contains("activation_bits")) return;
    const auto& a = j["activation_bits"];
    // Compared as int64: get<int>() would wrap 4294967300 to 4 and accept it.
    if (!a.is_number_integer() || (a.get<std::int64_t>() != 0 && a.get<std::int64_t>() != 4 && a.get<std::int64_t>() != 8))
      throw error("must be 0, 4 or 8, got " + (a.is_primitive() ? a.dump() : std::string(a.type_name())),
                  in_file(notes.string(), "", "activation_bits"));
    activation_bits_ = static_cast<int>(a.get<std::int64_t>());
  }

  void sync_tied_() {
    if (config_.tie_word_embeddings) weights_.lm_head = weights_.embed;
  }

  void index_quantized_() {
    for (const auto& shard : checkpoint_.shards())
      for (io::quantized_entry& e : io::quantized_entries(shard)) quantized_.emplace(e.name, std::make_pair(&shard, e));
  }

  std::string source_() const { return dir_.string(); }

  linear_weight linear_(const std::string& name, std::int64_t rows, std::int64_t cols) const {
    linear_weight w;
    w.name = name;
    w.rows = rows;
    w.cols = cols;
    const std::string expected = "[" + std::to_string(rows) + ", " + std::to_string(cols) + "]";
    if (const auto it = quantized_.find(name); it != quantized_.end()) {
      const auto& [shard, entry] = it->second;
      if (entry.rows != rows || entry.cols != cols)
        throw error("is [" + std::to_string(entry.rows) + ", " + std::to_string(entry.cols) + "], config implies " + expected,
                    in_file(shard->file(), name));
      w.spec = entry.spec;
      w.quantized = io::load_quantized(*shard, entry);
      return w;
    }
    const io::tensor_info* t = checkpoint_.find(name);
    if (!t) throw error("missing from the checkpoint", in_file(source_(), name));
    const auto& file = checkpoint_.shard_of(name).file();
    if (!(t->shape == make_shape({rows, cols})))
      throw error("has shape " + t->shape.str() + ", config implies " + expected, in_file(file, name));
    if (!t->type || (*t->type != dtype::f32 && *t->type != dtype::f16 && *t->type != dtype::bf16))
      throw error("dtype " + t->dtype_name + " is not F32, F16 or BF16", in_file(file, name));
    w.spec = quant::format_spec::dense_of(*t->type);
    w.dense = checkpoint_.view(name);
    if (reinterpret_cast<std::uintptr_t>(w.dense.data) % dtype_size(*t->type) != 0)
      throw error("data is not aligned to its element size", in_file(file, name));
    return w;
  }

  std::vector<float> vector_(const std::string& name, std::int64_t n) const {
    const io::tensor_info* t = checkpoint_.find(name);
    if (!t) throw error("missing from the checkpoint", in_file(source_(), name));
    if (!(t->shape == make_shape({n})))
      throw error("has shape " + t->shape.str() + ", config implies [" + std::to_string(n) + "]",
                  in_file(checkpoint_.shard_of(name).file(), name));
    std::vector<float> out(static_cast<std::size_t>(n));
    copy_to_f32(checkpoint_.view(name), out.data());
    return out;
  }

  void bind_() {
    const model_config& c = config_;
    weights_.embed = linear_("model.embed_tokens.weight", c.vocab, c.hidden);
    weights_.layers.resize(static_cast<std::size_t>(c.layers));
    for (int i = 0; i < c.layers; ++i) {
      const std::string p = "model.layers." + std::to_string(i) + ".";
      layer_weights& l = weights_.layers[static_cast<std::size_t>(i)];
      l.attn_norm = vector_(p + "input_layernorm.weight", c.hidden);
      l.mlp_norm = vector_(p + "post_attention_layernorm.weight", c.hidden);
      l.q = linear_(p + "self_attn.q_proj.weight", c.q_dim(), c.hidden);
      l.k = linear_(p + "self_attn.k_proj.weight", c.kv_dim(), c.hidden);
      l.v = linear_(p + "self_attn.v_proj.weight", c.kv_dim(), c.hidden);
      l.o = linear_(p + "self_attn.o_proj.weight", c.hidden, c.q_dim());
      if (c.qkv_bias) {
        l.q_bias = vector_(p + "self_attn.q_proj.bias", c.q_dim());
        l.k_bias = vector_(p + "self_attn.k_proj.bias", c.kv_dim());
        l.v_bias = vector_(p + "self_attn.v_proj.bias", c.kv_dim());
      }
      if (c.o_bias) l.o_bias = vector_(p + "self_attn.o_proj.bias", c.hidden);
      if (c.qk_norm) {
        l.q_norm = vector_(p + "self_attn.q_norm.weight", c.head_dim);
        l.k_norm = vector_(p + "self_attn.k_norm.weight", c.head_dim);
      }
      l.gate = linear_(p + "mlp.gate_proj.weight", c.intermediate, c.hidden);
      l.up = linear_(p + "mlp.up_proj.weight", c.intermediate, c.hidden);
      l.down = linear_(p + "mlp.down_proj.weight", c.hidden, c.intermediate);
    }
    weights_.final_norm = vector_("model.norm.weight", c.hidden);
    weights_.lm_head = c.tie_word_embeddings ? weights_.embed : linear_("lm_head.weight", c.vocab, c.hidden);
  }

  std::filesystem::path dir_;
  model_config config_;
  io::checkpoint checkpoint_;
  std::map<std::string, std::pair<const io::safetensors_file*, io::quantized_entry>> quantized_;
  model_weights weights_;
  std::vector<std::unique_ptr<quant::qtensor>> owned_;  // weights quantized in memory, at stable addresses
  std::vector<std::unique_ptr<aligned_buffer<std::uint8_t>>> owned_dense_;  // dense weights rewritten in memory
  std::set<std::string> changed_vectors_;  // names of norm tensors changed in memory
  int activation_bits_ = 0;
};

}  // namespace qmr::model
