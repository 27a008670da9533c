// The transformer forward pass on a CUDA GPU: a cuda_session uploads a loaded model's weights once and runs forward(tokens) -> logits (or a greedy token) with f32 activations and KV cache on the device, tracking the CPU session of forward.hpp.
//
// What runs where. A prompt runs in chunks of cuda_options::prefill_chunk tokens
// (256), decode one token at a time; every linear layer is one matmul per chunk:
//   - quantized weights: kernels/cuda/gemv.cuh (codes repacked at upload for the
//     tensor cores), the GEMV for up to 16 tokens (one launch per 16 up to 32) and
//     the tiled GEMM from 33; its activations are f16 (default) or bf16, rounded
//     from the f32 activations by the kernel that produces them, and it accumulates
//     in f32;
//   - dense f32/f16/bf16 weights: kernels/cuda/dense_gemv.cuh (one launch per 8
//     tokens), the weights in their checkpoint dtype and the activations in f32, so
//     a dense model differs from the CPU path only in the order of f32 additions;
//   - formats the GEMV does not take (7-bit) are dequantized at upload to f32.
// With `fuse` (default), q/k/v and gate/up of one format are concatenated at
// upload into one matrix each: 4 GEMV launches per layer instead of 7; quantized
// gate/up go up with their rows interleaved in blocks of 8 (qc::silu_pairs_order) and
// run as qc::gemv_silu_mul, which writes SiLU(gate)·up itself (one launch fewer per
// layer, the same values as the GEMV and silu_mul apart); quantized q/k/v of layers
// without q/k norms go up in qc::qkv_pairs_order and run as qc::gemv_qkv_rope, which
// adds the biases, applies RoPE and writes the KV cache itself (one launch fewer again).
// Chunks past 16 tokens run the plain GEMM on these interleaved matrices, and
// qc::silu_mul_pairs / qc::qkv_rope (`pairs`) read the interleaved rows: one upload
// serves both. The other ops are kernels/cuda/layer_ops.cuh, one kernel each: residual add + RMSNorm,
// bias + q/k norm + RoPE (model::rope_inv_freq, the CPU's frequencies) + KV-cache
// write, causal GQA attention (a decode step's keys split into runs over the SMs), SiLU·up; the final norm, the output head and a
// device argmax end the step. With `graphs` (default) the one-token decode step is
// captured once as a CUDA graph and replayed (a step's position and token are read
// from device memory, see qmr::cuda::step_state): ~9 launches per layer cost one
// graph launch. With `pdl` (default, sm_90+) the session's own kernels are launched
// with programmatic dependent launch, so each starts while its predecessor drains
// (the quantized GEMVs issue their first weight loads before they wait).
//
// Integrated memory (Jetson). The upload copies every weight into cudaMalloc'd
// memory, also where GPU and CPU share the DRAM. Quantized codes must be repacked
// for the tensor-core layout, so they cannot be used in place; dense weights could
// be (cudaHostRegister of the mapped file, read-only), but the kernels then read
// through the host page tables and lose the GPU's caching of device allocations, and
// a graph replay would depend on the file staying mapped. The mapped checkpoint's
// pages are clean and file-backed: after the upload the kernel can drop them under
// memory pressure, so the resident cost is one copy of the weights (plus the page
// cache while it lasts). Peak memory during upload adds one matrix's repack buffer.
//
// Not on the GPU: activation hooks (use the CPU session to probe) and sampling
// other than greedy (generate() copies the logits back and samples on the host).
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/half.hpp"
#include "../core/tensor.hpp"
#include "../kernels/cuda/dense_gemv.cuh"
#include "../kernels/cuda/gemv.cuh"
#include "../kernels/cuda/layer_ops.cuh"
#include "../quant/qtensor.hpp"
#include "forward.hpp"
#include "generate.hpp"

namespace qmr::model {

// The activation type the quantized GEMV's tensor cores take. f16 keeps 3 more
// mantissa bits than bf16 (relative rounding 2^-11 against 2^-8), so the GPU's
// logits track the CPU's more closely; bf16 has f32's range, for models whose
// activations exceed f16's 65504.
enum class cuda_activation { f16, bf16 };

struct cuda_options {
  cuda_activation activation = cuda_activation::f16;
  bool graphs = true;  // replay the one-token decode step as a captured CUDA graph
  bool fuse = true;    // one matrix for q/k/v and one for gate/up where their formats agree
  bool pdl = true;     // programmatic dependent launch of the session's own kernels (sm_90+)
  bool silu_epilogue = true;  // with fuse: quantized gate/up as qc::gemv_silu_mul (SiLU·up in the GEMV)
  bool rope_epilogue = true;  // with fuse: quantized q/k/v as qc::gemv_qkv_rope (bias, RoPE, KV cache in the GEMV)
  // Tokens per forward chunk (1..qmr::cuda::step_state::max_tokens): a longer prompt runs
  // in chunks of this many. From qmr::cuda::gemm_traits::min_batch tokens the quantized
  // matmuls run the tiled GEMM (one pass over the weights per 64 tokens); the default
  // gives the GEMM 4 token blocks per row band, which fills an H200 even on 896-row
  // matrices. Scratch grows with it: ~(6 hidden + 3.5 intermediate) floats per token.
  int prefill_chunk = 256;
};

namespace cuda_detail {

namespace qc = ::qmr::cuda;

// The GEMV kernel's formats: 2-6 and 8 bits, any group (see qc::upload).
inline bool gemv_takes(const quant::format_spec& s) { return s.bits >= 2 && s.bits <= 8 && s.bits != 7; }

// A linear layer's weight on the device, [rows, cols]: quantized or dense.
struct device_linear {
  bool quantized = false;
  bool silu_pairs = false;  // gate and up in qc::silu_pairs_order, for qc::gemv_silu_mul
  bool qkv_pairs = false;   // q, k and v in qc::qkv_pairs_order, for qc::gemv_qkv_rope
  qc::device_qtensor q;
  qc::dense_matrix d;
  std::int64_t rows = 0, cols = 0;

  std::int64_t bytes() const { return quantized ? q.weight_bytes() : d.weight_bytes(); }
};

// Row blocks that can be one matrix: one format, one column count.
inline bool can_fuse(std::span<const linear_weight* const> parts) {
  for (const linear_weight* p : parts)
    if (!(p->spec == parts[0]->spec) || p->cols != parts[0]->cols) return false;
  return true;
}

// The rows of a quantized weight as f32, for formats the GEMV does not take.
inline std::vector<float> dequantize_f32(const quant::qtensor_view& w) {
  std::vector<float> out(static_cast<std::size_t>(w.rows() * w.cols()));
  for (std::int64_t r = 0; r < w.rows(); ++r)
    for (std::int64_t c = 0; c < w.cols(); ++c) out[static_cast<std::size_t>(r * w.cols() + c)] = w.value(r, c);
  return out;
}

// Copies rows [r, r + n) of v (same format and columns as dst) to rows [i, i + n) of dst:
// codes, scales and zero points.
inline void copy_rows(quant::qtensor& dst, std::int64_t i, const quant::qtensor_view& v, std::int64_t r, std::int64_t n) {
  const quant::qtensor_layout& l = dst.layout();
  std::memcpy(dst.codes().data() + i * l.code_row_bytes, v.codes + r * l.code_row_bytes,
              static_cast<std::size_t>(n * l.code_row_bytes));
  std::memcpy(dst.scales().data() + i * l.n_groups, v.scales + r * l.n_groups, static_cast<std::size_t>(n * l.n_groups) * sizeof(f16));
  if (!dst.spec().symmetric)
    std::memcpy(dst.zeros().data() + i * l.zero_row_bytes, v.zeros + r * l.zero_row_bytes,
                static_cast<std::size_t>(n * l.zero_row_bytes));
}

// Uploads the row blocks `parts` (can_fuse) one under the other as one matrix.
inline device_linear upload_linear(std::span<const linear_weight* const> parts, cudaStream_t stream) {
  check(!parts.empty() && can_fuse(parts), "upload_linear: the row blocks differ in format or columns");
  device_linear out;
  out.cols = parts[0]->cols;
  for (const linear_weight* p : parts) out.rows += p->rows;
  const quant::format_spec spec = parts[0]->spec;
  if (spec.is_quantized() && gemv_takes(spec)) {
    out.quantized = true;
    if (parts.size() == 1) {
      out.q = qc::upload(parts[0]->quantized, stream);
      return out;
    }
    quant::qtensor cat(spec, out.rows, out.cols);  // concatenate codes, scales and zeros row-wise
    std::int64_t r0 = 0;
    for (const linear_weight* p : parts) {
      copy_rows(cat, r0, p->quantized, 0, p->rows);
      r0 += p->rows;
    }
    out.q = qc::upload(cat.view(), stream);
    return out;
  }
  std::vector<tensor_view> views;
  std::vector<std::vector<float>> dequantized;  // keeps the f32 copies alive through the upload
  for (const linear_weight* p : parts) {
    if (!spec.is_quantized()) {
      views.push_back(p->dense);
      continue;
    }
    dequantized.push_back(dequantize_f32(p->quantized));
    views.push_back(tensor_view::contiguous(reinterpret_cast<const std::byte*>(dequantized.back().data()), dtype::f32,
                                            make_shape({p->rows, p->cols})));
  }
  out.d = qc::upload_dense(views, stream);
  return out;
}

// Whether gate and up go up as one matrix for qc::gemv_silu_mul: quantized in one format
// the GEMV takes, the same shape, whole blocks of 8 rows.
inline bool silu_pairs_fusable(const linear_weight& gate, const linear_weight& up) {
  return gate.spec == up.spec && gate.spec.is_quantized() && gemv_takes(gate.spec) && gate.rows == up.rows &&
         gate.cols == up.cols && gate.rows % 8 == 0;
}

// Uploads gate and up (silu_pairs_fusable) as one matrix of 2 inter rows in
// qc::silu_pairs_order: blocks of 8 gate rows, then the same 8 up rows.
inline device_linear upload_silu_pairs(const linear_weight& gate, const linear_weight& up, cudaStream_t stream) {
  check(silu_pairs_fusable(gate, up), "upload_silu_pairs: gate and up differ in format or shape, or are not quantized");
  device_linear out;
  out.quantized = true;
  out.silu_pairs = true;
  out.rows = gate.rows + up.rows;
  out.cols = gate.cols;
  quant::qtensor cat(gate.spec, out.rows, out.cols);
  for (std::int64_t i = 0; i < out.rows; ++i) {
    const qc::silu_pair_row src = qc::silu_pairs_order(i);
    copy_rows(cat, i, src.up ? up.quantized : gate.quantized, src.row, 1);
  }
  out.q = qc::upload(cat.view(), stream);
  return out;
}

// Whether q, k and v go up as one matrix for qc::gemv_qkv_rope: quantized in one format
// the GEMV takes, heads and kv_heads rows of head_dim (a multiple of 16) each.
inline bool qkv_pairs_fusable(const linear_weight& q, const linear_weight& k, const linear_weight& v, const model_config& c) {
  const std::int64_t d = c.head_dim;
  return q.spec == k.spec && q.spec == v.spec && q.spec.is_quantized() && gemv_takes(q.spec) && d % 16 == 0 &&
         q.rows == c.heads * d && k.rows == c.kv_heads * d && v.rows == c.kv_heads * d && q.cols == k.cols && q.cols == v.cols;
}

// Uploads q, k and v (qkv_pairs_fusable) as one matrix in qc::qkv_pairs_order.
inline device_linear upload_qkv_pairs(const linear_weight& q, const linear_weight& k, const linear_weight& v,
                                      const model_config& c, cudaStream_t stream) {
  check(qkv_pairs_fusable(q, k, v, c), "upload_qkv_pairs: q, k and v differ in format or shape, or are not quantized");
  device_linear out;
  out.quantized = true;
  out.qkv_pairs = true;
  out.rows = q.rows + k.rows + v.rows;
  out.cols = q.cols;
  quant::qtensor cat(q.spec, out.rows, out.cols);
  for (std::int64_t i = 0; i < out.rows; ++i) {
    const std::int64_t n = qc::qkv_pairs_order(i, c.heads, c.kv_heads, c.head_dim);  // row of [q | k | v]
    const quant::qtensor_view& src = n < q.rows ? q.quantized : n < q.rows + k.rows ? k.quantized : v.quantized;
    copy_rows(cat, i, src, n < q.rows ? n : n < q.rows + k.rows ? n - q.rows : n - q.rows - k.rows, 1);
  }
  out.q = qc::upload(cat.view(), stream);
  return out;
}

// A float vector on the device (empty: no allocation, null pointer).
inline qc::device_buffer upload_floats(const std::vector<float>& v, cudaStream_t stream) {
  qc::device_buffer b(v.size() * sizeof(float));
  if (!v.empty()) {
    QMR_CUDA_CHECK(cudaMemcpyAsync(b.data(), v.data(), b.size(), cudaMemcpyHostToDevice, stream));
    QMR_CUDA_CHECK(cudaStreamSynchronize(stream));
  }
  return b;
}

// Owners of a graph executable and a pinned host object (the stream's: qmr::cuda::stream_owner).
struct graph_owner {
  cudaGraphExec_t exec = nullptr;
  graph_owner() = default;
  graph_owner(const graph_owner&) = delete;
  graph_owner& operator=(const graph_owner&) = delete;
  ~graph_owner() { reset(); }
  void reset() {
    if (exec != nullptr) static_cast<void>(cudaGraphExecDestroy(exec));
    exec = nullptr;
  }
};
template <class T>
struct pinned {
  T* p = nullptr;
  pinned() {
    QMR_CUDA_CHECK(cudaHostAlloc(reinterpret_cast<void**>(&p), sizeof(T), cudaHostAllocDefault));
    *p = T{};
  }
  pinned(const pinned&) = delete;
  pinned& operator=(const pinned&) = delete;
  ~pinned() { static_cast<void>(cudaFreeHost(p)); }
};

struct device_layer {
  qc::device_buffer attn_norm, mlp_norm;       // f32 [hidden]
  qc::device_buffer q_norm, k_norm;            // f32 [head_dim], Qwen3 only
  qc::device_buffer q_bias, k_bias, v_bias;    // f32 [q_dim], [kv_dim] x2, when present
  qc::device_buffer o_bias;                    // f32 [hidden], when present
  std::vector<device_linear> qkv;              // one [q_dim + 2 kv_dim, hidden] or q, k, v
  device_linear o;                             // [hidden, q_dim]
  std::vector<device_linear> gate_up;          // one [2 inter, hidden] or gate, up
  device_linear down;                          // [hidden, inter]
  qc::device_buffer k_cache, v_cache;          // f32 [capacity, kv_dim]
};

}  // namespace cuda_detail

// One sequence on the GPU: the model's weights, its KV cache and scratch, bound
// to the current CUDA device. Not copyable or movable (it owns a stream and a graph).
class cuda_session {
 public:
  // Rows of logits the head computes per launch when every position's logits are
  // asked for: one GEMM token block (the head is the largest matrix; past
  // gemm_traits::min_batch rows it runs as the GEMM), 39 MB of f32 for a 152K vocabulary.
  static constexpr int head_rows = 64;

  // capacity: the most positions the KV cache holds. Uploads every weight (and
  // waits for it); `m` may go once this returns.
  cuda_session(const model& m, int capacity, const cuda_options& o = {})
      : config_(m.config()), options_(o), capacity_(capacity), chunk_(o.prefill_chunk),
        decode_bytes_(m.decode_bytes_per_token()) {
    namespace cd = cuda_detail;
    check(capacity > 0, "cuda_session capacity must be positive");
    check(chunk_ >= 1 && chunk_ <= qmr::cuda::step_state::max_tokens,
          "cuda_options::prefill_chunk " + std::to_string(chunk_) + " is outside 1.." +
              std::to_string(qmr::cuda::step_state::max_tokens));
    const model_config& c = config_;
    const model_weights& w = m.weights();
    const cudaStream_t s = stream_.s;
    check(c.heads % c.kv_heads == 0, "heads must be a multiple of kv_heads");
    inv_freq_ = cd::upload_floats(rope_inv_freq(c), s);

    // Embedding table for the row lookups: dense as stored, or a quantized one
    // dequantized to f32. Output head: the same device matrix when tied and dense,
    // else its own upload (the GEMV copy of a quantized tied embedding).
    if (!w.embed.spec.is_quantized()) {
      const linear_weight* embed = &w.embed;
      embed_ = cd::upload_linear(std::span(&embed, 1), s);
    } else {
      const std::vector<float> table = cd::dequantize_f32(w.embed.quantized);
      const tensor_view v = tensor_view::contiguous(reinterpret_cast<const std::byte*>(table.data()), dtype::f32,
                                                    make_shape({w.embed.rows, w.embed.cols}));
      embed_.d = qmr::cuda::upload_dense(std::span(&v, 1), s);
      embed_.rows = w.embed.rows;
      embed_.cols = w.embed.cols;
    }
    const bool head_is_embed = !w.embed.spec.is_quantized() && !w.lm_head.spec.is_quantized() &&
                               w.lm_head.dense.data == w.embed.dense.data;
    if (!head_is_embed) {
      const linear_weight* head = &w.lm_head;
      head_own_ = cd::upload_linear(std::span(&head, 1), s);
    }
    head_ = head_is_embed ? &embed_ : &head_own_;
    final_norm_ = cd::upload_floats(w.final_norm, s);

    for (int l = 0; l < c.layers; ++l) {
      const layer_weights& lw = w.layers[static_cast<std::size_t>(l)];
      cd::device_layer& d = layers_.emplace_back();
      d.attn_norm = cd::upload_floats(lw.attn_norm, s);
      d.mlp_norm = cd::upload_floats(lw.mlp_norm, s);
      d.q_norm = cd::upload_floats(lw.q_norm, s);
      d.k_norm = cd::upload_floats(lw.k_norm, s);
      d.q_bias = cd::upload_floats(lw.q_bias, s);
      d.k_bias = cd::upload_floats(lw.k_bias, s);
      d.v_bias = cd::upload_floats(lw.v_bias, s);
      d.o_bias = cd::upload_floats(lw.o_bias, s);
      if (options_.fuse && options_.rope_epilogue && lw.q_norm.empty() && lw.k_norm.empty() &&
          cd::qkv_pairs_fusable(lw.q, lw.k, lw.v, c))
        d.qkv.push_back(cd::upload_qkv_pairs(lw.q, lw.k, lw.v, c, s));
      else
        upload_group_({&lw.q, &lw.k, &lw.v}, d.qkv);
      const linear_weight* o = &lw.o;
      d.o = cd::upload_linear(std::span(&o, 1), s);
      if (options_.fuse && options_.silu_epilogue && cd::silu_pairs_fusable(lw.gate, lw.up)) d.gate_up.push_back(cd::upload_silu_pairs(lw.gate, lw.up, s));
      else upload_group_({&lw.gate, &lw.up}, d.gate_up);
      const linear_weight* down = &lw.down;
      d.down = cd::upload_linear(std::span(&down, 1), s);
      const std::size_t cache = static_cast<std::size_t>(capacity) * static_cast<std::size_t>(c.kv_dim()) * sizeof(float);
      d.k_cache = qmr::cuda::device_buffer(cache);
      d.v_cache = qmr::cuda::device_buffer(cache);
    }

    // cos/sin per position for gemv_qkv_rope's epilogue, when a layer runs it.
    if (std::any_of(layers_.begin(), layers_.end(), [](const cd::device_layer& l) { return l.qkv.size() == 1 && l.qkv[0].qkv_pairs; })) {
      const std::size_t n = static_cast<std::size_t>(capacity) * static_cast<std::size_t>(c.head_dim / 2);
      rope_cos_ = qmr::cuda::device_buffer(n * sizeof(float));
      rope_sin_ = qmr::cuda::device_buffer(n * sizeof(float));
      qmr::cuda::rope_table(inv_freq_.as<const float>(), static_cast<int>(c.head_dim / 2), capacity, rope_cos_.as<float>(),
                            rope_sin_.as<float>(), s);
    }

    // Scratch for chunk_ rows (logits: head_rows). The *_half buffers are the quantized GEMV's inputs.
    const auto f32 = [](std::int64_t n) { return qmr::cuda::device_buffer(static_cast<std::size_t>(n) * sizeof(float)); };
    const auto half = [](std::int64_t n) { return qmr::cuda::device_buffer(static_cast<std::size_t>(n) * 2); };
    const std::int64_t M = chunk_, qkv = c.q_dim() + 2 * c.kv_dim();
    x_ = f32(M * c.hidden);
    h_ = f32(M * c.hidden);
    h_half_ = half(M * c.hidden);
    qkv_ = f32(M * qkv);
    q_ = f32(M * c.q_dim());
    att_ = f32(M * c.q_dim());
    att_half_ = half(M * c.q_dim());
    o_ = f32(M * c.hidden);
    gate_up_ = f32(M * 2 * c.intermediate);
    act_ = f32(M * c.intermediate);
    act_half_ = half(M * c.intermediate);
    logits_ = f32(std::min<std::int64_t>(M, head_rows) * c.vocab);
    step_ = qmr::cuda::device_buffer(sizeof(qmr::cuda::step_state));
    next_ = qmr::cuda::device_buffer(sizeof(std::int32_t));
    argmax_scratch_ = qmr::cuda::device_buffer(qmr::cuda::argmax_scratch_bytes);
    with_activation_([&](auto tag) { qmr::cuda::prepare_attention<decltype(tag)>(capacity_, c.head_dim); });
    int device = 0, major = 0;
    QMR_CUDA_CHECK(cudaGetDevice(&device));
    QMR_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
    QMR_CUDA_CHECK(cudaDeviceGetAttribute(&sm_count_, cudaDevAttrMultiProcessorCount, device));
    attention_runs_ = qmr::cuda::device_buffer(qmr::cuda::attention_workspace_bytes(static_cast<int>(c.head_dim), sm_count_));
    QMR_CUDA_CHECK(cudaMemsetAsync(attention_runs_.data(), 0, attention_runs_.size(), s));  // the counters start at zero
    pdl_ = options_.pdl && major >= 9;
    QMR_CUDA_CHECK(cudaStreamSynchronize(s));
  }

  cuda_session(const cuda_session&) = delete;
  cuda_session& operator=(const cuda_session&) = delete;

  const model_config& config() const { return config_; }
  int length() const { return length_; }
  int capacity() const { return capacity_; }
  void reset() { length_ = 0; }
  // Keeps the first n positions of the cache (n <= length).
  void truncate(int n) {
    check(n >= 0 && n <= length_, "truncate: " + std::to_string(n) + " is outside [0, " + std::to_string(length_) + "]");
    length_ = n;
  }
  cudaStream_t stream() const { return stream_.s; }
  // Bytes of weights on the device (the tied head counted once).
  std::uint64_t device_weight_bytes() const {
    std::uint64_t b = static_cast<std::uint64_t>(embed_.bytes() + (head_ == &embed_ ? 0 : head_->bytes()));
    for (const auto& l : layers_) {
      for (const auto& p : l.qkv) b += static_cast<std::uint64_t>(p.bytes());
      for (const auto& p : l.gate_up) b += static_cast<std::uint64_t>(p.bytes());
      b += static_cast<std::uint64_t>(l.o.bytes() + l.down.bytes());
    }
    return b;
  }
  // The model's weight bytes a decode step reads (model::decode_bytes_per_token).
  std::uint64_t decode_bytes_per_token() const { return decode_bytes_; }

  // Runs `tokens` at positions [length, length + n), appends them to the cache and
  // returns the logits, copied to the host, of every position ([n, vocab]) or only
  // of the last ([1, vocab]). Valid until the next call.
  matrix_view<const float> forward(std::span<const std::int32_t> tokens, bool all_logits = false) {
    run_(tokens, all_logits, true);
    const std::int64_t rows = all_logits ? static_cast<std::int64_t>(tokens.size()) : 1;
    return {host_logits_.data(), rows, config_.vocab};
  }

  // The same, returning only the argmax of the last position's logits (computed on
  // the device; ties go to the lowest id, as the CPU's greedy sampler).
  std::int32_t forward_argmax(std::span<const std::int32_t> tokens) {
    run_(tokens, false, false);
    return *next_host_.p;
  }

 private:
  template <class F>
  void with_activation_(F&& f) const {
    switch (options_.activation) {
      case cuda_activation::f16: return f(f16{});
      case cuda_activation::bf16: return f(bf16{});
    }
    throw error("cuda_session: unknown activation type");
  }

  void upload_group_(std::initializer_list<const linear_weight*> parts, std::vector<cuda_detail::device_linear>& out) {
    const std::vector<const linear_weight*> v(parts);
    if (options_.fuse && cuda_detail::can_fuse(v)) {
      out.push_back(cuda_detail::upload_linear(v, stream_.s));
      return;
    }
    for (const linear_weight* p : v) out.push_back(cuda_detail::upload_linear(std::span(&p, 1), stream_.s));
  }

  // y[m, w.rows] = x[m, w.cols] · Wᵀ: x in f32 for dense W, x_half for quantized W.
  void linear_(const cuda_detail::device_linear& w, const qmr::cuda::device_buffer& x,
               const qmr::cuda::device_buffer& x_half, float* y, int m) const {
    if (!w.quantized) return qmr::cuda::gemv(w.d, x.as<const float>(), y, m, stream_.s, pdl_);
    with_activation_([&](auto tag) {
      using TA = decltype(tag);
      qmr::cuda::gemv(w.q, x_half.as<const TA>(), y, m, stream_.s, pdl_);
    });
  }

  // Enqueues one chunk of m tokens (step_ already holds it on the device... once the
  // copy enqueued first has run): every layer, then for the last `rows` rows the
  // final norm and the head into logits_, head_rows at a time, each slice copied to
  // host_dst (row-major [rows, vocab]) when given (then rows <= head_rows unless
  // host_dst is), and when `argmax` the last row's argmax into next_host_.
  void enqueue_(int m, int rows, bool argmax, float* host_dst) {
    const model_config& c = config_;
    const cudaStream_t s = stream_.s;
    namespace qc = ::qmr::cuda;
    check(host_dst != nullptr || rows <= head_rows, "cuda_session: more rows of logits than the buffer holds");
    QMR_CUDA_CHECK(cudaMemcpyAsync(step_.data(), step_host_.p, qc::step_state_bytes(m), cudaMemcpyHostToDevice, s));
    const auto* step = step_.as<const qc::step_state>();
    switch (embed_.d.type) {
      case dtype::f32: qc::embed(embed_.d.data.as<const float>(), c.hidden, step, m, x_.as<float>(), s); break;
      case dtype::f16: qc::embed(embed_.d.data.as<const f16>(), c.hidden, step, m, x_.as<float>(), s); break;
      case dtype::bf16: qc::embed(embed_.d.data.as<const bf16>(), c.hidden, step, m, x_.as<float>(), s); break;
      default: throw error("cuda_session: embedding table must be F32, F16 or BF16");
    }
    const int q_dim = c.q_dim(), kv_dim = c.kv_dim(), inter = c.intermediate;
    with_activation_([&](auto tag) {
      using TA = decltype(tag);
      for (int l = 0; l < c.layers; ++l) {
        const cuda_detail::device_layer& L = layers_[static_cast<std::size_t>(l)];
        // Attention block: x += previous down (none before layer 0); h = norm(x); q, k, v;
        // bias, q/k norm, RoPE, cache; attention; o.
        qc::add_rmsnorm(x_.as<float>(), 0, m, l == 0 ? nullptr : o_.as<const float>(), nullptr,
                        L.attn_norm.as<const float>(), c.hidden, c.rms_norm_eps, h_.as<float>(), h_half_.as<TA>(), s, pdl_);
        qc::qkv_rope_args a{};
        float* qkv = qkv_.as<float>();
        // Layers uploaded for the epilogues take them while the GEMV runs the chunk (up to
        // 16 tokens); larger chunks run the GEMM into [m, rows] and the epilogue's kernel
        // reads the interleaved rows.
        const bool epilogue = m <= qc::gemv_traits::max_batch;
        const bool pairs = L.qkv.size() == 1 && L.qkv[0].qkv_pairs;
        const bool rope_in_gemv = pairs && epilogue;
        if (rope_in_gemv) {  // GEMV, biases, RoPE and the cache in one launch
          qc::qkv_rope_epilogue e;
          e.q_bias = L.q_bias.as<const float>(), e.k_bias = L.k_bias.as<const float>(), e.v_bias = L.v_bias.as<const float>();
          e.rope_cos = rope_cos_.as<const float>(), e.rope_sin = rope_sin_.as<const float>();
          static_assert(offsetof(qc::step_state, pos0) == 0, "pos0 is read as the step state's first member");
          e.pos0 = step_.as<const std::int32_t>();
          e.q_out = q_.as<float>();
          e.k_cache = L.k_cache.as<float>(), e.v_cache = L.v_cache.as<float>();
          e.heads = c.heads, e.kv_heads = c.kv_heads, e.d = c.head_dim;
          qc::gemv_qkv_rope(L.qkv[0].q, h_half_.as<const TA>(), e, m, s, pdl_);
        } else if (L.qkv.size() == 1) {  // fused: row t is [q | k | v], or the same in qkv_pairs_order
          linear_(L.qkv[0], h_, h_half_, qkv, m);
          a.q = qkv, a.k = qkv + q_dim, a.v = qkv + q_dim + kv_dim;
          a.ldq = a.ldk = a.ldv = q_dim + 2 * kv_dim;
          a.pairs = pairs;
        } else {
          float* k = qkv + static_cast<std::int64_t>(chunk_) * q_dim;
          float* v = k + static_cast<std::int64_t>(chunk_) * kv_dim;
          linear_(L.qkv[0], h_, h_half_, qkv, m);
          linear_(L.qkv[1], h_, h_half_, k, m);
          linear_(L.qkv[2], h_, h_half_, v, m);
          a.q = qkv, a.k = k, a.v = v;
          a.ldq = q_dim, a.ldk = a.ldv = kv_dim;
        }
        a.q_bias = L.q_bias.as<const float>(), a.k_bias = L.k_bias.as<const float>(), a.v_bias = L.v_bias.as<const float>();
        a.q_norm = L.q_norm.as<const float>(), a.k_norm = L.k_norm.as<const float>();
        a.eps = c.rms_norm_eps;
        a.inv_freq = inv_freq_.as<const float>();
        a.heads = c.heads, a.kv_heads = c.kv_heads, a.d = c.head_dim;
        a.q_out = q_.as<float>();
        a.k_cache = L.k_cache.as<float>(), a.v_cache = L.v_cache.as<float>();
        a.step = step;
        if (!rope_in_gemv) qc::qkv_rope(a, m, s, pdl_);
        const qc::attention_args at{q_.as<const float>(), L.k_cache.as<const float>(), L.v_cache.as<const float>(),
                                    c.heads, c.kv_heads, c.head_dim, att_.as<float>(), step};
        qc::attention(at, m, capacity_, att_half_.as<TA>(), s, pdl_, attention_runs_.data(), sm_count_);
        linear_(L.o, att_, att_half_, o_.as<float>(), m);

        // MLP block: x += o (+ bias); h = norm(x); down(silu(gate(h)) * up(h)).
        qc::add_rmsnorm(x_.as<float>(), 0, m, o_.as<const float>(), L.o_bias.as<const float>(),
                        L.mlp_norm.as<const float>(), c.hidden, c.rms_norm_eps, h_.as<float>(), h_half_.as<TA>(), s, pdl_);
        float* gu = gate_up_.as<float>();
        if (L.gate_up.size() == 1 && L.gate_up[0].silu_pairs && epilogue) {  // GEMV and SiLU·up in one launch
          qc::gemv_silu_mul(L.gate_up[0].q, h_half_.as<const TA>(), inter, act_.as<float>(), act_half_.as<TA>(), m, s, pdl_);
        } else if (L.gate_up.size() == 1 && L.gate_up[0].silu_pairs) {  // the GEMM, then SiLU·up from the pairs
          linear_(L.gate_up[0], h_, h_half_, gu, m);
          qc::silu_mul_pairs(gu, inter, m, act_.as<float>(), act_half_.as<TA>(), s, pdl_);
        } else if (L.gate_up.size() == 1) {  // fused: row t is [gate | up]
          linear_(L.gate_up[0], h_, h_half_, gu, m);
          qc::silu_mul(gu, 2 * inter, gu + inter, 2 * inter, inter, m, act_.as<float>(), act_half_.as<TA>(), s, pdl_);
        } else {
          linear_(L.gate_up[0], h_, h_half_, gu, m);
          float* up = gu + static_cast<std::int64_t>(chunk_) * inter;
          linear_(L.gate_up[1], h_, h_half_, up, m);
          qc::silu_mul(gu, inter, up, inter, inter, m, act_.as<float>(), act_half_.as<TA>(), s, pdl_);
        }
        linear_(L.down, act_, act_half_, o_.as<float>(), m);  // added to x by the next norm
      }
    });
    // Final norm of the last `rows` rows (x += the last down first) and the head, in
    // slices of head_rows; a slice's logits go to the host before the next overwrites them.
    for (int r0 = 0; r0 < rows; r0 += head_rows) {
      const int n = std::min(head_rows, rows - r0);
      with_activation_([&](auto tag) {
        using TA = decltype(tag);
        qc::add_rmsnorm(x_.as<float>(), m - rows + r0, n, c.layers > 0 ? o_.as<const float>() : nullptr, nullptr,
                        final_norm_.as<const float>(), c.hidden, c.rms_norm_eps, h_.as<float>(), h_half_.as<TA>(), s, pdl_);
      });
      linear_(*head_, h_, h_half_, logits_.as<float>(), n);
      if (argmax && r0 + n == rows) {
        qc::argmax(logits_.as<const float>() + static_cast<std::int64_t>(n - 1) * c.vocab, c.vocab, argmax_scratch_.data(),
                   next_.as<std::int32_t>(), s, pdl_);
        QMR_CUDA_CHECK(cudaMemcpyAsync(next_host_.p, next_.data(), sizeof(std::int32_t), cudaMemcpyDeviceToHost, s));
      }
      if (host_dst != nullptr)
        QMR_CUDA_CHECK(cudaMemcpyAsync(host_dst + static_cast<std::int64_t>(r0) * c.vocab, logits_.data(),
                                       static_cast<std::size_t>(n) * static_cast<std::size_t>(c.vocab) * sizeof(float),
                                       cudaMemcpyDeviceToHost, s));
    }
  }

  void run_(std::span<const std::int32_t> tokens, bool all_logits, bool host_logits) {
    const model_config& c = config_;
    const int n = static_cast<int>(tokens.size());
    check(n > 0, "forward needs at least one token");
    if (length_ + n > capacity_)
      throw error("sequence of " + std::to_string(length_ + n) + " positions exceeds the session capacity of " +
                  std::to_string(capacity_));
    for (int t = 0; t < n; ++t) {
      const std::int32_t id = tokens[static_cast<std::size_t>(t)];
      if (id < 0 || id >= c.vocab)
        throw error("token id " + std::to_string(id) + " at position " + std::to_string(length_ + t) +
                    " is outside the vocabulary [0, " + std::to_string(c.vocab) + ")");
    }
    if (host_logits)
      host_logits_.resize(static_cast<std::size_t>(all_logits ? n : 1) * static_cast<std::size_t>(c.vocab));
    const cudaStream_t s = stream_.s;
    for (int c0 = 0; c0 < n; c0 += chunk_) {
      const int m = std::min(chunk_, n - c0);
      const bool last = c0 + m == n;
      const int rows = all_logits ? m : (last ? 1 : 0);
      qmr::cuda::step_state& st = *step_host_.p;  // the previous chunk's copy has completed (synchronized below)
      st.pos0 = length_ + c0;
      st.n = m;
      for (int t = 0; t < m; ++t) st.tokens[t] = tokens[static_cast<std::size_t>(c0 + t)];
      float* dst = host_logits && rows > 0
                       ? host_logits_.data() + static_cast<std::size_t>(all_logits ? c0 : 0) * static_cast<std::size_t>(c.vocab)
                       : nullptr;
      if (m == 1 && rows == 1 && options_.graphs) {
        if (graph_.exec == nullptr) capture_decode_();
        QMR_CUDA_CHECK(cudaGraphLaunch(graph_.exec, s));
        if (dst != nullptr)
          QMR_CUDA_CHECK(cudaMemcpyAsync(dst, logits_.data(), static_cast<std::size_t>(c.vocab) * sizeof(float),
                                         cudaMemcpyDeviceToHost, s));
      } else {
        enqueue_(m, rows, last, dst);
      }
      QMR_CUDA_CHECK(cudaStreamSynchronize(s));
    }
    length_ += n;
  }

  // Captures enqueue_(1, 1, true, nullptr) (a decode step: copy of the step, the layers, head,
  // argmax) as a graph; its replays read the step that the host writes before each.
  void capture_decode_() {
    const cudaStream_t s = stream_.s;
    QMR_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    cudaGraph_t graph = nullptr;
    try {
      enqueue_(1, 1, true, nullptr);
    } catch (...) {
      static_cast<void>(cudaStreamEndCapture(s, &graph));
      if (graph != nullptr) static_cast<void>(cudaGraphDestroy(graph));
      throw;
    }
    QMR_CUDA_CHECK(cudaStreamEndCapture(s, &graph));
    const cudaError_t err = cudaGraphInstantiate(&graph_.exec, graph, 0);
    static_cast<void>(cudaGraphDestroy(graph));
    QMR_CUDA_CHECK(err);
  }

  model_config config_;
  cuda_options options_;
  bool pdl_ = false;  // options_.pdl on a device that has it
  int sm_count_ = 0;  // the device's SMs: how far attention splits a decode step's keys
  int capacity_;
  int chunk_;  // options_.prefill_chunk
  int length_ = 0;
  std::uint64_t decode_bytes_;
  qmr::cuda::stream_owner stream_;  // first: the uploads below run on it
  qmr::cuda::device_buffer inv_freq_;  // f32 [head_dim / 2]
  qmr::cuda::device_buffer rope_cos_, rope_sin_;  // f32 [capacity, head_dim / 2] when gemv_qkv_rope runs; else empty
  cuda_detail::device_linear embed_;  // dense [vocab, hidden] for the lookups (and the head when tied)
  cuda_detail::device_linear head_own_;  // [vocab, hidden] when the head is not embed_
  const cuda_detail::device_linear* head_ = nullptr;
  qmr::cuda::device_buffer final_norm_;  // f32 [hidden]
  std::vector<cuda_detail::device_layer> layers_;
  // Scratch, [chunk_, width] each (logits_ [min(chunk_, head_rows), vocab]); *_half in the activation type.
  qmr::cuda::device_buffer x_, h_, h_half_, qkv_, q_, att_, att_half_, o_, gate_up_, act_, act_half_, logits_;
  qmr::cuda::device_buffer step_;  // step_state
  qmr::cuda::device_buffer next_;  // i32: the argmax
  qmr::cuda::device_buffer argmax_scratch_;
  qmr::cuda::device_buffer attention_runs_;  // attention_workspace_bytes: split attention's counters and runs
  cuda_detail::pinned<qmr::cuda::step_state> step_host_;
  cuda_detail::pinned<std::int32_t> next_host_;
  cuda_detail::graph_owner graph_;  // the decode step, captured on first use
  std::vector<float> host_logits_;  // [rows, vocab]
};

// model::generate for a cuda_session: greedy decoding takes the device argmax (4
// bytes back per token); sampling copies the logits back and uses model::sampler.
inline generation generate(cuda_session& s, std::span<const std::int32_t> prompt, const sampling_options& o,
                           const token_callback& on_token = {}, const std::vector<std::string>& stop_strings = {},
                           const detokenize_fn& detokenize = {}) {
  sampler pick(o);
  const bool greedy = o.temperature == 0.0f;
  const auto step = [&](std::span<const std::int32_t> tokens) {
    if (greedy) return s.forward_argmax(tokens);
    const matrix_view<const float> logits = s.forward(tokens);
    return pick.next({logits.row(0), static_cast<std::size_t>(logits.cols)});
  };
  return detail::generate_with(s, prompt, o, step, on_token, stop_strings, detokenize);
}

}  // namespace qmr::model
