// The transformer forward pass (Llama, Qwen2, Qwen3) over a KV cache, with optional activation hooks; reads top to bottom.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <span>
#include <string>
#include <vector>

#include "../core/aligned_buffer.hpp"
#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../core/thread_pool.hpp"
#include "../kernels/simd/layer_ops_dispatch.hpp"
#include "../quant/act_quant.hpp"
#include "weights.hpp"

namespace qmr::model {

// Where in the network an activation was taken.
enum class component : std::uint8_t {
  layer_input,    // residual stream entering the layer        [T, hidden]
  attn_norm,      // input of q/k/v projections                [T, hidden]
  q, k, v,        // projection outputs (bias added; before q/k norm and RoPE) [T, q_dim|kv_dim]
  attn_probs,     // softmax probabilities, row t*heads + h     [T*heads, positions]
  attn_out,       // attention output, input of o_proj          [T, q_dim]
  o,              // o_proj output                              [T, hidden]
  attn_residual,  // residual stream after attention            [T, hidden]
  mlp_norm,       // input of gate/up projections               [T, hidden]
  gate, up,       // projection outputs                         [T, intermediate]
  mlp_act,        // silu(gate) * up, input of down_proj        [T, intermediate]
  down,           // down_proj output                           [T, hidden]
  layer_output,   // residual stream leaving the layer          [T, hidden]
  final_norm,     // input of the output head                   [rows, hidden]
  logits,         //                                            [rows, vocab]
};

inline const char* component_name(component c) {
  switch (c) {
    case component::layer_input: return "layer_input";
    case component::attn_norm: return "attn_norm";
    case component::q: return "q";
    case component::k: return "k";
    case component::v: return "v";
    case component::attn_probs: return "attn_probs";
    case component::attn_out: return "attn_out";
    case component::o: return "o";
    case component::attn_residual: return "attn_residual";
    case component::mlp_norm: return "mlp_norm";
    case component::gate: return "gate";
    case component::up: return "up";
    case component::mlp_act: return "mlp_act";
    case component::down: return "down";
    case component::layer_output: return "layer_output";
    case component::final_norm: return "final_norm";
    case component::logits: return "logits";
  }
  return "?";
}

struct activation {
  int layer = -1;  // -1 for final_norm and logits
  component what = component::layer_input;
  int position = 0;  // absolute position of the first token of this forward call
  matrix_view<const float> data;
};
using activation_hook = std::function<void(const activation&)>;

// RoPE inverse frequencies [head_dim / 2], in f32 as transformers computes them
// (including its linear and llama3 rescalings).
inline std::vector<float> rope_inv_freq(const model_config& c) {
  const int half = c.head_dim / 2;
  std::vector<float> inv(static_cast<std::size_t>(half));
  for (int i = 0; i < half; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(c.head_dim);
    inv[static_cast<std::size_t>(i)] = 1.0f / std::pow(static_cast<float>(c.rope.theta), exponent);
  }
  if (c.rope.type == rope_type::linear) {
    for (float& f : inv) f /= static_cast<float>(c.rope.factor);
  } else if (c.rope.type == rope_type::llama3) {
    constexpr double pi = 3.14159265358979323846;
    const double low_wavelen = c.rope.original_max_positions / c.rope.low_freq_factor;
    const double high_wavelen = c.rope.original_max_positions / c.rope.high_freq_factor;
    for (float& f : inv) {
      const double wavelen = 2 * pi / f;
      if (wavelen > low_wavelen) {
        f = static_cast<float>(f / c.rope.factor);  // long wavelengths: interpolate fully
      } else if (wavelen >= high_wavelen) {         // the band between: blend smoothly
        const double smooth = (c.rope.original_max_positions / wavelen - c.rope.low_freq_factor) /
                              (c.rope.high_freq_factor - c.rope.low_freq_factor);
        f = static_cast<float>((1 - smooth) * f / c.rope.factor + smooth * f);
      }
    }
  }
  return inv;
}

// One sequence's state: the KV cache and scratch buffers, bound to a model.
class session {
 public:
  // capacity: the most positions the KV cache holds.
  session(const model& m, int capacity, thread_pool* pool = nullptr)
      : m_(&m), pool_(pool), capacity_(capacity), inv_freq_(rope_inv_freq(m.config())), act_bits_(m.activation_bits()) {
    check(capacity > 0, "session capacity must be positive");
    const model_config& c = m.config();
    for (int l = 0; l < c.layers; ++l) {
      k_cache_.emplace_back(static_cast<std::size_t>(capacity) * static_cast<std::size_t>(c.kv_dim()));
      v_cache_.emplace_back(static_cast<std::size_t>(capacity) * static_cast<std::size_t>(c.kv_dim()));
    }
  }

  int length() const { return length_; }
  int capacity() const { return capacity_; }
  const model& model_ref() const { return *m_; }
  void reset() { length_ = 0; }
  // Keeps the first n positions of the cache (n <= length): rewinds for a new continuation.
  void truncate(int n) {
    check(n >= 0 && n <= length_, "truncate: " + std::to_string(n) + " is outside [0, " + std::to_string(length_) + "]");
    length_ = n;
  }
  void set_hook(activation_hook hook) { hook_ = std::move(hook); }
  // The matmul implementation of every linear layer: SIMD by default, or the scalar reference.
  void set_kernel(matmul_kernel kernel) { kernel_ = kernel; }

  // Quantizes the input of every layer's linear (q, k, v, o, gate, up, down; not the output head)
  // per token to `bits` (8 or 4) and back before its matmul, the W·A8 / W·A4 configurations of
  // the study; 0 (the default) leaves activations exact.
  void set_activation_bits(int bits) {
    check(bits == 0 || bits == 4 || bits == 8, "activation bits must be 0 (off), 4 or 8, got " + std::to_string(bits));
    act_bits_ = bits;
  }
  int activation_bits() const { return act_bits_; }

  // Layer-by-layer use (calibration): the embeddings of `tokens` into x [n, hidden] ...
  // (pos0 only labels positions in messages).
  void embed(std::span<const std::int32_t> tokens, matrix_view<float> x, int pos0 = 0) const {
    const model_config& c = m_->config();
    check(x.rows == static_cast<std::int64_t>(tokens.size()) && x.cols == c.hidden,
          "embed: x is [" + std::to_string(x.rows) + ", " + std::to_string(x.cols) + "], expected [" +
              std::to_string(tokens.size()) + ", " + std::to_string(c.hidden) + "]");
    for (std::size_t t = 0; t < tokens.size(); ++t) {
      const std::int32_t id = tokens[t];
      if (id < 0 || id >= c.vocab)
        throw error("token id " + std::to_string(id) + " at position " + std::to_string(pos0 + static_cast<int>(t)) +
                    " is outside the vocabulary [0, " + std::to_string(c.vocab) + ")");
      row_to_f32(m_->weights().embed, id, x.row(static_cast<std::int64_t>(t)));
    }
  }
  // ... and layer l over x [n, hidden] in place, as positions [0, n) of a sequence of their own
  // (layer l's cache is overwritten; the session's length is left alone, so a session used this
  // way is reset() before forward() again). Hooks see the layer's activations as in forward().
  // With `last` before layer_output the layer stops once that activation is emitted, skipping
  // the matmuls after it (a calibration pass that only wants inputs of the linears), and x is
  // left part-way through the layer.
  void run_layer(int l, matrix_view<float> x, component last = component::layer_output) {
    const model_config& c = m_->config();
    check(l >= 0 && l < c.layers, "run_layer: layer " + std::to_string(l) + " outside [0, " + std::to_string(c.layers) + ")");
    check(x.cols == c.hidden && x.rows > 0, "run_layer: x must be [n, " + std::to_string(c.hidden) + "]");
    if (x.rows > capacity_)
      throw error("sequence of " + std::to_string(x.rows) + " positions exceeds the session capacity of " +
                  std::to_string(capacity_));
    grow_(static_cast<int>(x.rows));
    layer_(l, x, 0, last);
  }

  // Runs `tokens` at positions [length, length + n), appends them to the cache and returns
  // the logits of every position ([n, vocab]) or only of the last ([1, vocab]).
  matrix_view<const float> forward(std::span<const std::int32_t> tokens, bool all_logits = false) {
    const model_config& c = m_->config();
    const model_weights& w = m_->weights();
    const int n = static_cast<int>(tokens.size());
    check(n > 0, "forward needs at least one token");
    if (length_ + n > capacity_)
      throw error("sequence of " + std::to_string(length_ + n) + " positions exceeds the session capacity of " +
                  std::to_string(capacity_));
    grow_(n);
    const int pos0 = length_;
    const std::int64_t hidden = c.hidden;

    matrix_view<float> x(x_.data(), n, hidden);  // residual stream [n, hidden]
    embed(tokens, x, pos0);

    for (int l = 0; l < c.layers; ++l) layer_(l, x, pos0);
    length_ += n;

    // Final norm and output head, for every position or only the last.
    const int rows = all_logits ? n : 1;
    const matrix_view<float> last(x.row(n - rows), rows, hidden);
    matrix_view<float> h(h_.data(), rows, hidden);
    rms_norm_rows_(last, w.final_norm.data(), h);
    emit_(-1, component::final_norm, pos0 + n - rows, h);
    matrix_view<float> logits(logits_.data(), rows, c.vocab);
    matmul(w.lm_head, h, logits, pool_, kernel_);
    emit_(-1, component::logits, pos0 + n - rows, logits);
    return logits;
  }

 private:
  // Layer l over the residual stream x [n, hidden] of positions [pos0, pos0 + n), in place; writes
  // those positions of layer l's KV cache and reads the earlier ones. Returns early once `last`
  // is emitted, at the points where work is left to skip (components are in forward order).
  void layer_(int l, matrix_view<float> x, int pos0, component last = component::layer_output) {
    const model_config& c = m_->config();
    const std::int64_t hidden = c.hidden;
    const int n = static_cast<int>(x.rows);
    const layer_weights& lw = m_->weights().layers[static_cast<std::size_t>(l)];
    emit_(l, component::layer_input, pos0, x);

    // Attention block: h = norm(x); q, k, v; RoPE; causal GQA attention; x += o.
    matrix_view<float> h(h_.data(), n, hidden);
    rms_norm_rows_(x, lw.attn_norm.data(), h);
    emit_(l, component::attn_norm, pos0, h);
    if (last <= component::attn_norm) return;
    matrix_view<float> q(q_.data(), n, c.q_dim());   // [n, heads * head_dim]
    matrix_view<float> k(k_.data(), n, c.kv_dim());  // [n, kv_heads * head_dim]
    matrix_view<float> v(v_.data(), n, c.kv_dim());
    linears_(h, {{&lw.q, q, &lw.q_bias}, {&lw.k, k, &lw.k_bias}, {&lw.v, v, &lw.v_bias}});
    emit_(l, component::q, pos0, q);
    emit_(l, component::k, pos0, k);
    emit_(l, component::v, pos0, v);
    if (c.qk_norm) {  // Qwen3: RMSNorm over each head, before RoPE
      const matrix_view<float> q_heads(q.data, static_cast<std::int64_t>(n) * c.heads, c.head_dim);
      const matrix_view<float> k_heads(k.data, static_cast<std::int64_t>(n) * c.kv_heads, c.head_dim);
      rms_norm_rows_(q_heads, lw.q_norm.data(), q_heads);
      rms_norm_rows_(k_heads, lw.k_norm.data(), k_heads);
    }
    apply_rope_(q, c.heads, pos0);
    apply_rope_(k, c.kv_heads, pos0);
    float* k_cache = k_cache_[static_cast<std::size_t>(l)].data();  // [capacity, kv_dim]
    float* v_cache = v_cache_[static_cast<std::size_t>(l)].data();
    std::copy(k.data, k.data + static_cast<std::ptrdiff_t>(n) * c.kv_dim(), k_cache + static_cast<std::ptrdiff_t>(pos0) * c.kv_dim());
    std::copy(v.data, v.data + static_cast<std::ptrdiff_t>(n) * c.kv_dim(), v_cache + static_cast<std::ptrdiff_t>(pos0) * c.kv_dim());
    matrix_view<float> att(att_.data(), n, c.q_dim());  // [n, heads * head_dim]
    attention_(q, k_cache, v_cache, pos0, n, att);
    if (hook_) emit_(l, component::attn_probs, pos0, matrix_view<float>(probs_.data(), static_cast<std::int64_t>(n) * c.heads, pos0 + n));
    emit_(l, component::attn_out, pos0, att);
    if (last <= component::attn_out) return;
    matrix_view<float> o(o_.data(), n, hidden);
    linear_(lw.o, att, o, lw.o_bias);
    emit_(l, component::o, pos0, o);
    add_rows_(x, o);
    emit_(l, component::attn_residual, pos0, x);

    // MLP block: h = norm(x); x += down(silu(gate(h)) * up(h)).
    rms_norm_rows_(x, lw.mlp_norm.data(), h);
    emit_(l, component::mlp_norm, pos0, h);
    if (last <= component::mlp_norm) return;
    matrix_view<float> gate(gate_.data(), n, c.intermediate);  // [n, intermediate]
    matrix_view<float> up(up_.data(), n, c.intermediate);
    linears_(h, {{&lw.gate, gate, nullptr}, {&lw.up, up, nullptr}});
    emit_(l, component::gate, pos0, gate);
    emit_(l, component::up, pos0, up);
    // gate and up are [n, intermediate] with stride intermediate (contiguous). Elements
    // over the pool where there are many (a prefill), else on the caller: see
    // silu_parallel_min.
    const auto silu_mul = [&](std::int64_t i0, std::int64_t i1) { simd::silu_mul_best(gate.data + i0, up.data + i0, i1 - i0); };
    const std::int64_t elements = std::int64_t{n} * c.intermediate;
    if (elements >= silu_parallel_min) {
      parallel_for(pool_, elements, silu_mul);
    } else {
      silu_mul(0, elements);
    }
    emit_(l, component::mlp_act, pos0, gate);
    if (last <= component::mlp_act) return;
    linear_(lw.down, gate, o, {});
    emit_(l, component::down, pos0, o);
    add_rows_(x, o);
    emit_(l, component::layer_output, pos0, x);
  }

  void grow_(int n) {
    const model_config& c = m_->config();
    const auto need = [&](std::vector<float>& b, std::int64_t size) {
      if (b.size() < static_cast<std::size_t>(size)) b.resize(static_cast<std::size_t>(size));
    };
    need(x_, std::int64_t{n} * c.hidden);
    need(h_, std::int64_t{n} * c.hidden);
    need(o_, std::int64_t{n} * c.hidden);
    need(q_, std::int64_t{n} * c.q_dim());
    need(att_, std::int64_t{n} * c.q_dim());
    need(k_, std::int64_t{n} * c.kv_dim());
    need(v_, std::int64_t{n} * c.kv_dim());
    need(gate_, std::int64_t{n} * c.intermediate);
    need(up_, std::int64_t{n} * c.intermediate);
    need(probs_, std::int64_t{n} * c.heads * (length_ + n));
    need(logits_, std::int64_t{n} * c.vocab);
    // RoPE's cos and sin for positions [0, length_ + n): a prefill of 512 rows costs 16K cos/sin
    // pairs (in double) per linear input otherwise, recomputed by every layer and calibration pass.
    const int half = c.head_dim / 2;
    for (std::int64_t pos = static_cast<std::int64_t>(rope_cos_.size()) / half; pos < length_ + n; ++pos)
      for (int i = 0; i < half; ++i) {
        const float angle = static_cast<float>(pos) * inv_freq_[static_cast<std::size_t>(i)];  // f32, as transformers
        rope_cos_.push_back(static_cast<float>(std::cos(static_cast<double>(angle))));
        rope_sin_.push_back(static_cast<float>(std::sin(static_cast<double>(angle))));
      }
  }

  void emit_(int layer, component what, int position, matrix_view<float> data) const {
    if (hook_) hook_(activation{layer, what, position, data});
  }

  // in, or its per-token fake-quantized copy when the session quantizes linear inputs.
  matrix_view<const float> linear_input_(matrix_view<const float> in) {
    if (act_bits_ == 0) return in;
    const std::size_t size = static_cast<std::size_t>(in.rows * in.cols);
    if (act_.size() < size) act_.resize(size);
    matrix_view<float> a(act_.data(), in.rows, in.cols);  // [n, cols], the quantized copy of in
    for (std::int64_t t = 0; t < in.rows; ++t) std::copy(in.row(t), in.row(t) + in.cols, a.row(t));
    quant::fake_quantize_per_token(a, act_bits_);
    return a;
  }

  static void add_bias_(matrix_view<float> out, const std::vector<float>& bias) {
    if (bias.empty()) return;
    for (std::int64_t t = 0; t < out.rows; ++t)
      for (std::int64_t j = 0; j < out.cols; ++j) out(t, j) += bias[static_cast<std::size_t>(j)];
  }

  void linear_(const linear_weight& w, matrix_view<const float> in, matrix_view<float> out,
               const std::vector<float>& bias) {
    matmul(w, linear_input_(in), out, pool_, kernel_);
    add_bias_(out, bias);
  }

  // One linear of a group that reads the same input: out = in · wᵀ (+ bias when not null).
  struct linear_job {
    const linear_weight* w;
    matrix_view<float> out;  // [n, w->rows]
    const std::vector<float>* bias;
  };

  // Linears of one input (q/k/v, gate/up). With a few rows (decode: the GEMV) their output
  // rows form one range that a single parallel_for splits into pieces of whole rows, each
  // a single-threaded matmul_rows: one hand-off to the pool instead of one per linear, and
  // k and v (128 rows of Qwen2.5-0.5B, below a GEMV's split threshold) no longer run on the
  // caller alone after q. The values are matmul's bit for bit (see matmul_rows). Larger
  // inputs (a prefill, the GEMM) run one linear at a time, each over the whole pool.
  void linears_(matrix_view<const float> in, std::initializer_list<linear_job> jobs) {
    in = linear_input_(in);
    std::int64_t total = 0;
    for (const linear_job& j : jobs) total += j.w->rows;
    if (pool_ == nullptr || pool_->size() == 1 || in.rows > 8 || total == 0) {
      for (const linear_job& j : jobs) matmul(*j.w, in, j.out, pool_, kernel_);
    } else {
      // Two pieces per thread, none under min_matmul_chunk_macs (the GEMV's own split's minimum).
      std::int64_t grain = split_grain(pool_->size(), total, in.cols * in.rows, min_matmul_chunk_macs, 2);
      // The table GEMV takes whole 16-row tiles (the linears' row counts are multiples of
      // 16 in every supported model; a piece off the tiles takes the plain GEMV).
      if (kernel_ == matmul_kernel::simd_lut)
        grain = (grain + simd::lut_tile_rows - 1) / simd::lut_tile_rows * simd::lut_tile_rows;
      pool_->parallel_for(0, total, grain, [&](std::int64_t r0, std::int64_t r1) {
        std::int64_t base = 0;  // first row of the current linear in [0, total)
        for (const linear_job& j : jobs) {
          const std::int64_t lo = std::max(r0, base), hi = std::min(r1, base + j.w->rows);
          if (lo < hi) {
            const matrix_view<float> out(j.out.data + (lo - base), j.out.rows, hi - lo, j.out.stride);  // [n, hi - lo]
            matmul_rows(*j.w, lo - base, hi - base, in, out, nullptr, kernel_);
          }
          base += j.w->rows;
        }
      });
    }
    for (const linear_job& j : jobs)
      if (j.bias != nullptr) add_bias_(j.out, *j.bias);
  }

  // out = weight * x / sqrt(mean(x^2) + eps), row by row (in may alias out).
  // Rows over the pool when there are many (a prefill); the same arithmetic per row either way.
  void rms_norm_rows_(matrix_view<const float> in, const float* weight, matrix_view<float> out) const {
    const double eps = m_->config().rms_norm_eps;
    const auto rows = [&](std::int64_t r0, std::int64_t r1) {
      for (std::int64_t r = r0; r < r1; ++r) {
        const float* x = in.row(r);
        double sum = 0;
        for (std::int64_t j = 0; j < in.cols; ++j) sum += static_cast<double>(x[j]) * x[j];
        const float inv = static_cast<float>(1.0 / std::sqrt(sum / static_cast<double>(in.cols) + eps));
        float* y = out.row(r);
        for (std::int64_t j = 0; j < in.cols; ++j) y[j] = weight[j] * (x[j] * inv);
      }
    };
    // 64 rows of a 896-wide model are ~0.1 ms of work, well above a parallel_for's wake-up.
    if (in.rows >= 64) {
      parallel_for(pool_, in.rows, rows);
    } else {
      rows(0, in.rows);
    }
  }

  // Rotates each head of each row by its position, transformers' rotate-half convention:
  // (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin) with x1, x2 the two halves of the head.
  // The angles come from rope_cos_/rope_sin_, filled once per position by grow_.
  void apply_rope_(matrix_view<float> m, int n_heads, int pos0) const {
    const int d = m_->config().head_dim, half = d / 2;
    for (std::int64_t t = 0; t < m.rows; ++t) {
      const float* cos_row = rope_cos_.data() + (pos0 + t) * half;
      const float* sin_row = rope_sin_.data() + (pos0 + t) * half;
      for (int i = 0; i < half; ++i) {
        const float cs = cos_row[i], sn = sin_row[i];
        for (int hd = 0; hd < n_heads; ++hd) {
          float* x = m.row(t) + static_cast<std::ptrdiff_t>(hd) * d;
          const float x1 = x[i], x2 = x[i + half];
          x[i] = x1 * cs - x2 * sn;
          x[i + half] = x2 * cs + x1 * sn;
        }
      }
    }
  }

  // att[t, head h] = softmax(q_t,h · K_g / sqrt(d), causal) · V_g with g = h / (heads / kv_heads).
  void attention_(matrix_view<const float> q, const float* k_cache, const float* v_cache, int pos0, int n,
                  matrix_view<float> att) {
    const model_config& c = m_->config();
    const int d = c.head_dim, group = c.heads / c.kv_heads, positions = pos0 + n;
    const float scale = 1.0f / std::sqrt(static_cast<float>(d));
    if (n >= attention_gemm_min_rows) {
      attention_gemm_(q, k_cache, v_cache, pos0, n, att, scale);
      return;
    }
    parallel_for(pool_, c.heads, [&](std::int64_t h0, std::int64_t h1) {
      for (std::int64_t hd = h0; hd < h1; ++hd) {
        const std::int64_t g = hd / group;
        for (int t = 0; t < n; ++t) {
          float* p = probs_.data() + (static_cast<std::ptrdiff_t>(t) * c.heads + hd) * positions;  // [positions]
          const int keys = pos0 + t + 1;  // causal: keys 0..pos0 + t
          simd::attend_head_best(q.row(t) + hd * d, k_cache + g * d, v_cache + g * d, c.kv_dim(), d, keys, scale, p,
                                 att.row(t) + hd * d);
          std::fill(p + keys, p + positions, 0.0f);
        }
      }
    });
  }

  // silu(gate) · up runs on the pool from this many elements. With vector exponentials
  // a decode step's 4864 (Qwen2.5-0.5B) take ~2 us on one thread, less than a hand-off
  // to the pool; scalar std::exp took 15 us there, when it paid to split them.
  static constexpr std::int64_t silu_parallel_min = 65536;

  // Prefills of at least this many rows compute attention as matrix products on the SIMD GEMM
  // (scores = Q·Kᵀ, out = P·V); below it (decode) the per-row loops cost less than packing K and V.
  static constexpr int attention_gemm_min_rows = 16;

  // Query rows per block of the causal prefill: the block of rows [t0, t1) attends to keys
  // [0, pos0 + t1) only, so its products skip the masked keys right of that. At 512 rows in
  // blocks of 128 the two products do 62% of the full square's work; 128 rows keep the GEMM's
  // row count (its M) far above its register tile.
  static constexpr int attention_block_rows = 128;

  // The same attention for n >= attention_gemm_min_rows: per KV head, K is packed once and Vᵀ
  // once per block of query rows ([positions, d] and [d, keys of the block], allocated per call:
  // prefill only); both serve the `group` query heads that share them. Scores land in probs_
  // (the block's keys, then zeros: the causal mask).
  void attention_gemm_(matrix_view<const float> q, const float* k_cache, const float* v_cache, int pos0, int n,
                       matrix_view<float> att, float scale) {
    const model_config& c = m_->config();
    const int d = c.head_dim, group = c.heads / c.kv_heads, positions = pos0 + n;
    const std::int64_t kv_dim = c.kv_dim();
    parallel_for(pool_, c.kv_heads, [&](std::int64_t g0, std::int64_t g1) {
      aligned_buffer<float> kg(static_cast<std::size_t>(positions) * d);  // [positions, d]
      aligned_buffer<float> vt(static_cast<std::size_t>(positions) * d);  // [d, keys]: keys of the block
      for (std::int64_t g = g0; g < g1; ++g) {
        for (int s = 0; s < positions; ++s) {
          const float* k = k_cache + s * kv_dim + g * d;
          std::copy(k, k + d, kg.data() + static_cast<std::ptrdiff_t>(s) * d);
        }
        for (int t0 = 0; t0 < n; t0 += attention_block_rows) {
          const int t1 = std::min(n, t0 + attention_block_rows), rows = t1 - t0;
          const int keys = pos0 + t1;  // keys [0, keys) are visible to some row of the block
          for (int s = 0; s < keys; ++s) {
            const float* v = v_cache + s * kv_dim + g * d;
            for (int i = 0; i < d; ++i) vt[static_cast<std::size_t>(i) * static_cast<std::size_t>(keys) + static_cast<std::size_t>(s)] = v[i];
          }
          // The first `keys` rows of kg, and vt as [d, keys]: both contiguous.
          const tensor_view k_view = tensor_view::contiguous(reinterpret_cast<const std::byte*>(kg.data()), dtype::f32, make_shape({keys, d}));
          const tensor_view v_view = tensor_view::contiguous(reinterpret_cast<const std::byte*>(vt.data()), dtype::f32, make_shape({d, keys}));
          for (std::int64_t hd = g * group; hd < (g + 1) * group; ++hd) {
            // scores [rows, keys], rows (t0 + t)*heads + hd of probs_
            const matrix_view<float> p(probs_.data() + (static_cast<std::int64_t>(t0) * c.heads + hd) * positions, rows, keys,
                                       static_cast<std::int64_t>(c.heads) * positions);
            simd::gemm_best(k_view, matrix_view<const float>(q.row(t0) + hd * d, rows, d, q.stride), p, nullptr);
            for (int t = 0; t < rows; ++t) {
              float* row = p.row(t);
              const int last = pos0 + t0 + t;  // causal: keys 0..last
              float max_score = -INFINITY;
              for (int s = 0; s <= last; ++s) max_score = std::max(max_score, row[s] *= scale);
              float sum = 0;
              for (int s = 0; s <= last; ++s) sum += (row[s] = std::exp(row[s] - max_score));
              const float inv = 1.0f / sum;
              for (int s = 0; s <= last; ++s) row[s] *= inv;
              for (int s = last + 1; s < positions; ++s) row[s] = 0.0f;
            }
            simd::gemm_best(v_view, matrix_view<const float>(p), matrix_view<float>(att.row(t0) + hd * d, rows, d, att.stride), nullptr);
          }
        }
      }
    });
  }

  static void add_rows_(matrix_view<float> x, matrix_view<const float> y) {
    for (std::int64_t t = 0; t < x.rows; ++t)
      for (std::int64_t j = 0; j < x.cols; ++j) x(t, j) += y(t, j);
  }

  const model* m_;
  thread_pool* pool_;
  int capacity_;
  int length_ = 0;
  std::vector<float> inv_freq_;                                   // [head_dim / 2]
  std::vector<float> rope_cos_, rope_sin_;                        // [positions so far, head_dim / 2]
  std::vector<aligned_buffer<float>> k_cache_, v_cache_;          // [layers] x [capacity, kv_dim]
  std::vector<float> x_, h_, o_, q_, att_, k_, v_, gate_, up_;    // scratch, [n, width] each
  std::vector<float> probs_;                                      // [n, heads, positions]
  std::vector<float> logits_;                                     // [n, vocab]
  std::vector<float> act_;                                        // [n, widest linear input], activation quantization
  int act_bits_ = 0;
  activation_hook hook_;
  matmul_kernel kernel_ = matmul_kernel::simd;
};

}  // namespace qmr::model
