// The small CUDA kernels of a transformer layer besides the matmuls (embedding lookup, residual add + RMSNorm, bias + q/k norm + RoPE + KV-cache write, causal GQA attention, SiLU·up, argmax), each a plain f32 transcription of the CPU session's loop (model/forward.hpp).
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "../../config.hpp"
#include "../../core/error.hpp"
#include "../../core/half.hpp"
#include "gemv.cuh"
#include "launch.cuh"

namespace qmr::cuda {

// The positions one forward call runs, [pos0, pos0 + n), and their tokens. The
// kernels read it from device memory rather than from their arguments, so that one
// captured CUDA graph replays every decode step: the host changes the step by a
// copy that is part of the graph.
struct step_state {
  // Tokens one forward call may run: the prefill chunk's upper bound (cuda_options::
  // prefill_chunk). 256 lets the tiled GEMM run four 64-token blocks per row band
  // while the state stays 1 KB; only the first n tokens are copied per step.
  static constexpr int max_tokens = 256;
  qstd::int32_t pos0 = 0;
  qstd::int32_t n = 0;
  qstd::int32_t tokens[max_tokens] = {};
};
// Bytes of a step_state that carry a step of n tokens (the host copies only these).
inline constexpr std::size_t step_state_bytes(int n) {
  return offsetof(step_state, tokens) + static_cast<std::size_t>(n) * sizeof(qstd::int32_t);
}

// Arguments of qkv_rope (by value).
struct qkv_rope_args {
  const float* q;  // projection outputs, row t at q + t*ldq (bias not yet added)
  const float* k;
  const float* v;
  int ldq, ldk, ldv;
  const float* q_bias;  // [heads*d], [kv_heads*d] x2; null when absent
  const float* k_bias;
  const float* v_bias;
  const float* q_norm;  // [d], Qwen3's per-head RMSNorm; null when absent
  const float* k_norm;
  double eps;
  const float* inv_freq;  // [d/2], model::rope_inv_freq
  int heads, kv_heads, d;
  // pairs: q, k and v are one row of gemv_qkv_rope's matrix, in qkv_pairs_order (what
  // gemv() of that matrix writes): row t at q + t*ldq, k and v unused.
  bool pairs;
  float* q_out;    // [M, heads*d]: q after bias, norm and RoPE
  float* k_cache;  // [capacity, kv_heads*d]: row pos0 + t receives k (after RoPE) ...
  float* v_cache;  // ... and v of token t
  const step_state* step;
};

// Arguments of attention (by value).
struct attention_args {
  const float* q;        // [M, heads*d], after RoPE
  const float* k_cache;  // [capacity, kv_heads*d], positions [0, pos0 + M) written
  const float* v_cache;
  int heads, kv_heads, d;
  float* out;  // [M, heads*d]
  const step_state* step;
};

namespace detail {

#ifdef __CUDACC__
// Sum over the block (blockDim.x a multiple of 32, at most 1024), returned to every
// thread; scratch is 32 shared elements. Callable several times in a row.
template <class T>
QMR_DEVICE T block_sum(T v, T* scratch) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  const int lane = static_cast<int>(threadIdx.x) & 31, warp = static_cast<int>(threadIdx.x) >> 5;
  __syncthreads();  // the previous call's readers are done with scratch
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  T s = 0;
  for (int i = 0; i < static_cast<int>(blockDim.x) / 32; ++i) s += scratch[i];
  return s;
}
QMR_DEVICE inline float block_max(float v, float* scratch) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
  const int lane = static_cast<int>(threadIdx.x) & 31, warp = static_cast<int>(threadIdx.x) >> 5;
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float m = -INFINITY;
  for (int i = 0; i < static_cast<int>(blockDim.x) / 32; ++i) m = fmaxf(m, scratch[i]);
  return m;
}

QMR_DEVICE __forceinline__ float to_f32(float v) { return v; }
QMR_DEVICE __forceinline__ float to_f32(bf16 v) { return __uint_as_float(static_cast<qstd::uint32_t>(v.bits) << 16); }
QMR_DEVICE __forceinline__ float to_f32(f16 v) { return __half2float(__ushort_as_half(v.bits)); }

inline constexpr int ops_block_threads = 256;

// cos and sin of RoPE's angle for position pos and frequency freq: the angle in f32, cos
// and sin in f64 as the CPU, rounded. qkv_rope_kernel and rope_table_kernel both use it.
QMR_DEVICE __forceinline__ void rope_cos_sin(int pos, float freq, float& cs, float& sn) {
  const float angle = static_cast<float>(pos) * freq;
  cs = static_cast<float>(cos(static_cast<double>(angle)));
  sn = static_cast<float>(sin(static_cast<double>(angle)));
}

// x[t] = table[tokens[t]] in f32 (the host has checked the ids). Grid: M blocks.
template <class TW>
__global__ void embed_kernel(const TW* __restrict__ table, int hidden, const step_state* __restrict__ step,
                             float* __restrict__ x) {
  const int t = static_cast<int>(blockIdx.x);
  const TW* row = table + static_cast<std::int64_t>(step->tokens[t]) * hidden;
  for (int j = static_cast<int>(threadIdx.x); j < hidden; j += static_cast<int>(blockDim.x))
    x[static_cast<std::int64_t>(t) * hidden + j] = to_f32(row[j]);
}

// Row row0 + b of x (block b): x += add (+ bias) when add is given, then
// h[b] = weight * x / sqrt(mean(x^2) + eps), in f32 and in TA for the quantized
// GEMV. The sum of squares is in f64 like the CPU's. Rows of up to
// norm_regs * 256 = 4096 stay in registers (with their weights, loaded before the
// reduction), so the kernel makes one pass over memory; longer rows re-read x.
inline constexpr int norm_regs = 16;
template <class TA>
__global__ void __launch_bounds__(ops_block_threads)
    add_rmsnorm_kernel(float* __restrict__ x, int row0, const float* __restrict__ add, const float* __restrict__ bias,
                       const float* __restrict__ weight, int cols, double eps, float* __restrict__ h,
                       TA* __restrict__ h_half) {
  pdl_wait();
  pdl_launch_dependents();
  __shared__ double scratch[32];
  const int b = static_cast<int>(blockIdx.x), tid = static_cast<int>(threadIdx.x);
  const int stride = static_cast<int>(blockDim.x);
  float* xr = x + static_cast<std::int64_t>(row0 + b) * cols;
  const float* ar = add != nullptr ? add + static_cast<std::int64_t>(row0 + b) * cols : nullptr;
  float* hr = h + static_cast<std::int64_t>(b) * cols;
  TA* hh = h_half + static_cast<std::int64_t>(b) * cols;
  const auto updated = [&](int j) {  // x[j] after the residual add, written back
    float v = xr[j];
    if (ar != nullptr) {
      v += ld_produced(ar + j) + (bias != nullptr ? bias[j] : 0.0f);  // add: the previous kernel's output
      xr[j] = v;
    }
    return v;
  };
  double ss = 0.0;
  if (cols <= norm_regs * stride) {
    float v[norm_regs], wv[norm_regs];
#pragma unroll
    for (int k = 0; k < norm_regs; ++k) {
      const int j = tid + k * stride;
      v[k] = j < cols ? updated(j) : 0.0f;
      wv[k] = j < cols ? weight[j] : 0.0f;
      ss += static_cast<double>(v[k]) * v[k];
    }
    ss = block_sum(ss, scratch);
    const float inv = static_cast<float>(1.0 / sqrt(ss / static_cast<double>(cols) + eps));
#pragma unroll
    for (int k = 0; k < norm_regs; ++k) {
      const int j = tid + k * stride;
      if (j < cols) {
        const float o = wv[k] * (v[k] * inv);
        hr[j] = o;
        store(hh + j, o);
      }
    }
    return;
  }
  for (int j = tid; j < cols; j += stride) {
    const float v = updated(j);
    ss += static_cast<double>(v) * v;
  }
  ss = block_sum(ss, scratch);
  const float inv = static_cast<float>(1.0 / sqrt(ss / static_cast<double>(cols) + eps));
  for (int j = tid; j < cols; j += stride) {
    const float o = weight[j] * (xr[j] * inv);
    hr[j] = o;
    store(hh + j, o);
  }
}

// Block (t, head) for head in [0, heads + 2*kv_heads): q heads, then k, then v.
// Adds the bias; for q and k, Qwen3's RMSNorm over the head and RoPE (rotate-half,
// angle = position * inv_freq in f32, cos/sin in f64 as the CPU); writes q to
// q_out and k, v into the cache at row pos0 + t. blockDim.x >= d.
__global__ void __launch_bounds__(1024) qkv_rope_kernel(const qkv_rope_args a) {
  pdl_wait();
  pdl_launch_dependents();
  __shared__ double scratch[32];
  extern __shared__ float head[];  // [d]
  const int t = static_cast<int>(blockIdx.x), hh = static_cast<int>(blockIdx.y), i = static_cast<int>(threadIdx.x);
  const int d = a.d, half = d / 2, kv_dim = a.kv_heads * d;
  const int pos = a.step->pos0 + t;
  const int kind = hh < a.heads ? 0 : hh < a.heads + a.kv_heads ? 1 : 2;  // q, k, v
  const int h = kind == 0 ? hh : kind == 1 ? hh - a.heads : hh - a.heads - a.kv_heads;
  const float* src = kind == 0 ? a.q + static_cast<std::int64_t>(t) * a.ldq
                     : kind == 1 ? a.k + static_cast<std::int64_t>(t) * a.ldk
                                 : a.v + static_cast<std::int64_t>(t) * a.ldv;
  const float* bias = kind == 0 ? a.q_bias : kind == 1 ? a.k_bias : a.v_bias;
  float val = 0.0f;
  if (i < d) {
    // q, k, v: the projection's output, written by the kernel before (ld_produced)
    const float raw = a.pairs ? ld_produced(a.q + static_cast<std::int64_t>(t) * a.ldq +
                                            qkv_pairs_index((kind == 0 ? 0 : kind == 1 ? a.heads * d : (a.heads + a.kv_heads) * d) +
                                                                h * d + i,
                                                            a.heads, a.kv_heads, d))
                              : ld_produced(src + h * d + i);
    val = raw + (bias != nullptr ? bias[h * d + i] : 0.0f);
  }
  if (kind == 2) {
    if (i < d) a.v_cache[static_cast<std::int64_t>(pos) * kv_dim + h * d + i] = val;
    return;  // uniform per block: no barrier below is skipped by part of it
  }
  const float* norm = kind == 0 ? a.q_norm : a.k_norm;
  if (norm != nullptr) {
    const double ss = block_sum(static_cast<double>(val) * val, scratch);
    const float inv = static_cast<float>(1.0 / sqrt(ss / static_cast<double>(d) + a.eps));
    if (i < d) val = norm[i] * (val * inv);
  }
  if (i < d) head[i] = val;
  __syncthreads();
  if (i < d) {
    const int f = i < half ? i : i - half;
    float cs, sn;
    rope_cos_sin(pos, a.inv_freq[f], cs, sn);
    const float x1 = head[f], x2 = head[f + half];
    const float r = i < half ? rope_first(x1, x2, cs, sn) : rope_second(x1, x2, cs, sn);
    if (kind == 0) a.q_out[static_cast<std::int64_t>(t) * a.heads * d + h * d + i] = r;
    else a.k_cache[static_cast<std::int64_t>(pos) * kv_dim + h * d + i] = r;
  }
}

// Thread (p, f) of rope_table: cos and sin of position p times inv_freq[f], as qkv_rope_kernel computes them.
__global__ void rope_table_kernel(const float* inv_freq, int half, int capacity, float* cos_out, float* sin_out) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= static_cast<std::int64_t>(capacity) * half) return;
  rope_cos_sin(static_cast<int>(i / half), inv_freq[i % half], cos_out[i], sin_out[i]);
}

// Block (head, t): softmax(q · K / sqrt(d)) · V over keys 0..pos0+t of KV head
// head / (heads / kv_heads), as the CPU's attention_. Dynamic shared memory holds
// the partial outputs (attention_part_floats), the scores [capacity] and q [d]. Scores:
// one thread per key, its k row read as 16-byte vectors and summed in the CPU's
// order, so many independent loads are in flight (v1 gave each key to a warp:
// ~0.3 ms of a Qwen2.5-0.5B token). Output, d a multiple of 4: thread (kg, c) owns
// the 4 dimensions of float4 chunk c < d/4 and the keys kg, kg + groups, ... with
// groups = 256 / (d/4) (16 for d = 64), one 16-byte V load per key, so that a block
// covers 16 keys per step (an earlier version gave each warp a key and each lane 8
// dimensions: d = 64 kept 2 of them busy and took 20 dependent steps for 160 keys);
// the groups' partial sums meet in shared memory. Other d: the warps split the keys,
// each lane owns up to 8 dimensions per pass. Writes f32 and TA.
//
// Split keys (splits > 1, blockIdx.z = run): a decode step has one block per head,
// 14 blocks for Qwen2.5-0.5B on 132 SMs, each walking every key (~12 us a layer at
// 512 positions). Then the keys 0..last are cut into runs = min(splits, keys / 128
// rounded down, at least 1) equal runs, one block each (blocks past `runs` return at once); a block
// writes its run's unnormalized output, its max score and its sum of
// exp(score - max) to the workspace ([t][head][run][d + 2]), and the block that
// finishes last (a counter per (t, head), which it resets to zero for the next
// launch) rescales the runs to the common max and writes the output
// (flash-decoding, without a second launch). With one run the block writes the
// output itself, as unsplit. The runs are cut on the device from pos0, so a captured
// decode graph serves every length, and short rows keep the one-block cost.
inline constexpr int attention_block_threads = 256;
// Keys per run, at least: a run's fixed cost (q, the block reductions, the counter and
// the combine) is ~1-2 us against ~18 ns a key (H200, Qwen2.5-0.5B, d 64), so shorter
// runs lose (bench/results/cuda_attention_split_20261204_s28.md: 64 and 128 tried).
inline constexpr int attention_split_keys = 128;
inline constexpr int attention_warps = attention_block_threads / 32;
inline constexpr int attention_lane_dims = 8;  // dimensions a lane owns per pass (d not a multiple of 4)
// Floats of the partial-sum area: [groups, d] with groups * d / 4 <= 256 threads, or [warps, d].
QMR_HOST_DEVICE constexpr int attention_part_floats(int d) {
  return 4 * attention_block_threads > attention_warps * d ? 4 * attention_block_threads : attention_warps * d;
}
template <class TA>
__global__ void __launch_bounds__(attention_block_threads)
    attention_kernel(const attention_args a, int capacity, TA* __restrict__ out_half, int splits, unsigned* __restrict__ counters,
                     float* __restrict__ partial) {
  pdl_wait();
  pdl_launch_dependents();
  __shared__ float scratch[32];
  __shared__ bool last_block;  // split runs: whether this block finished its row's runs last
  extern __shared__ float4 attention_smem[];  // 16-byte aligned: the partial sums are stored as float4
  const int d = a.d, kv_dim = a.kv_heads * d;
  float* part = reinterpret_cast<float*>(attention_smem);  // [groups, d] or [attention_warps, d]: attention_part_floats(d), first (aligned)
  float* p = part + attention_part_floats(d);     // [capacity]
  float* qs = p + capacity;                       // [d]
  const int hd = static_cast<int>(blockIdx.x), t = static_cast<int>(blockIdx.y);
  const int g = hd / (a.heads / a.kv_heads);
  const int last = a.step->pos0 + t;  // causal: keys 0..last
  // this block's run of keys, [k0, k1): run blockIdx.z of `runs` equal runs of at least attention_split_keys keys
  const int runs = max(1, min(splits, (last + 1) / attention_split_keys));
  if (static_cast<int>(blockIdx.z) >= runs) return;  // uniform per block, before any barrier
  const int per = (last + runs) / runs;
  const int k0 = min(last + 1, static_cast<int>(blockIdx.z) * per), k1 = min(last + 1, k0 + per);
  const int tid = static_cast<int>(threadIdx.x), lane = tid & 31, warp = tid >> 5;
  const float scale = 1.0f / sqrtf(static_cast<float>(d));
  for (int i = tid; i < d; i += attention_block_threads) qs[i] = a.q[static_cast<std::int64_t>(t) * a.heads * d + hd * d + i];
  __syncthreads();
  const float* kbase = a.k_cache + g * d;
  for (int s = k0 + tid; s < k1; s += attention_block_threads) {
    const float* kv = kbase + static_cast<std::int64_t>(s) * kv_dim;
    float dot = 0.0f;
    if (d % 4 == 0) {  // rows start 16-byte aligned: kv_dim and g*d are multiples of 4
      for (int i = 0; i < d; i += 4) {
        const float4 k4 = *reinterpret_cast<const float4*>(kv + i);
        dot = fmaf(qs[i], k4.x, dot);
        dot = fmaf(qs[i + 1], k4.y, dot);
        dot = fmaf(qs[i + 2], k4.z, dot);
        dot = fmaf(qs[i + 3], k4.w, dot);
      }
    } else {
      for (int i = 0; i < d; ++i) dot = fmaf(qs[i], kv[i], dot);
    }
    p[s] = dot * scale;
  }
  __syncthreads();
  float mx = -INFINITY;
  for (int s = k0 + tid; s < k1; s += attention_block_threads) mx = fmaxf(mx, p[s]);
  mx = block_max(mx, scratch);
  float sum = 0.0f;
  for (int s = k0 + tid; s < k1; s += attention_block_threads) sum += (p[s] = expf(p[s] - mx));
  sum = block_sum(sum, scratch);  // its barriers also order the p[] writes above before the reads below
  // Weights p[s] * inv: normalized when the block has every key, else left to the combine
  // (x 1 is exact). An empty run has mx = -inf and sum = 0, which the combine skips.
  const float inv = runs == 1 ? 1.0f / sum : 1.0f;
  const std::int64_t row = static_cast<std::int64_t>(t) * a.heads + hd;  // this (t, head)
  float* runs_of_row = runs == 1 ? nullptr : partial + row * splits * (d + 2);  // [runs][d + 2]
  float* run = runs == 1 ? nullptr : runs_of_row + static_cast<int>(blockIdx.z) * (d + 2);
  if (runs > 1 && tid == 0) run[d] = mx, run[d + 1] = sum;
  // Output element i (the block's sum over its keys): to out and out_half, or to the run.
  const auto emit = [&](int i, float acc) {
    if (runs > 1) {
      run[i] = acc;
      return;
    }
    const std::int64_t o = row * d + i;
    a.out[o] = acc;
    store(out_half + o, acc);
  };
  // After the runs are written: the last block of the row combines them.
  const auto combine = [&]() {
    if (runs == 1) return;
    __threadfence();  // this block's run is visible device-wide before the count says so
    __syncthreads();
    if (tid == 0) {
      last_block = atomicAdd(counters + row, 1u) == static_cast<unsigned>(runs - 1);
      if (last_block) counters[row] = 0;  // every run has counted: ready for the next launch
    }
    __syncthreads();
    if (!last_block) return;
    __threadfence();
    // out = sum_r acc_r exp(max_r - M) / sum_r sum_r exp(max_r - M), M the largest run max
    // (a run without keys, max -inf, skipped). __ldcg: the other blocks' runs, from L2.
    float big = -INFINITY;
    for (int r = 0; r < runs; ++r) big = fmaxf(big, __ldcg(runs_of_row + r * (d + 2) + d));
    float total = 0.0f;
    for (int r = 0; r < runs; ++r) {
      const float mr = __ldcg(runs_of_row + r * (d + 2) + d);
      if (mr != -INFINITY) total += __ldcg(runs_of_row + r * (d + 2) + d + 1) * expf(mr - big);
    }
    const float inv_total = 1.0f / total;
    for (int i = tid; i < d; i += attention_block_threads) {
      float acc = 0.0f;
      for (int r = 0; r < runs; ++r) {
        const float mr = __ldcg(runs_of_row + r * (d + 2) + d);
        if (mr != -INFINITY) acc = fmaf(__ldcg(runs_of_row + r * (d + 2) + i), expf(mr - big), acc);
      }
      const std::int64_t o = row * d + i;
      a.out[o] = acc * inv_total;
      store(out_half + o, acc * inv_total);
    }
  };
  const float* vbase = a.v_cache + g * d;
  if (d % 4 == 0 && d <= 4 * attention_block_threads) {  // uniform: rows 16-byte aligned, as for the scores
    const int chunks = d / 4, groups = attention_block_threads / chunks;
    const int c = tid % chunks, kg = tid / chunks;
    if (kg < groups) {  // threads past groups * chunks idle here
      float4 acc = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll 4
      for (int s = k0 + kg; s < k1; s += groups) {
        const float w = p[s] * inv;
        const float4 v4 = *reinterpret_cast<const float4*>(vbase + static_cast<std::int64_t>(s) * kv_dim + 4 * c);
        acc.x = fmaf(w, v4.x, acc.x);
        acc.y = fmaf(w, v4.y, acc.y);
        acc.z = fmaf(w, v4.z, acc.z);
        acc.w = fmaf(w, v4.w, acc.w);
      }
      *reinterpret_cast<float4*>(part + kg * d + 4 * c) = acc;
    }
    __syncthreads();
    for (int i = tid; i < d; i += attention_block_threads) {
      float acc = 0.0f;
      for (int k = 0; k < groups; ++k) acc += part[k * d + i];
      emit(i, acc);
    }
    combine();
    return;
  }
  for (int i0 = 0; i0 < d; i0 += 32 * attention_lane_dims) {
    float acc[attention_lane_dims];
#pragma unroll
    for (int j = 0; j < attention_lane_dims; ++j) acc[j] = 0.0f;
#pragma unroll 2
    for (int s = k0 + warp; s < k1; s += attention_warps) {
      const float w = p[s] * inv;
      const float* vv = vbase + static_cast<std::int64_t>(s) * kv_dim + i0 + lane;
#pragma unroll
      for (int j = 0; j < attention_lane_dims; ++j)
        if (i0 + lane + 32 * j < d) acc[j] = fmaf(w, vv[32 * j], acc[j]);
    }
#pragma unroll
    for (int j = 0; j < attention_lane_dims; ++j)
      if (i0 + lane + 32 * j < d) part[warp * d + i0 + lane + 32 * j] = acc[j];
  }
  __syncthreads();
  for (int i = tid; i < d; i += attention_block_threads) {
    float acc = 0.0f;
#pragma unroll
    for (int w = 0; w < attention_warps; ++w) acc += part[w * d + i];
    emit(i, acc);
  }
  combine();
}

// Prefill attention, query-tiled (flash-attention on CUDA cores, f32): block (head,
// tile) takes attention_q_tile consecutive queries of one head and walks the keys
// 0..last of its last query in tiles of attention_k_tile keys, each K and V tile
// staged in shared memory once for all its queries. One block per query (attention_kernel)
// re-reads every earlier key per query from L2: at 2048 positions that read, ~170 MB per
// token over 24 Qwen2.5-0.5B layers, set the prefill's speed. The softmax is online
// (running max and sum per query, rescaled per tile), so the sums round differently
// from the one-pass kernel, within f32. Thread (r, c) of the 256: query row r = tid / 8
// of the tile, and the 8 threads of a row (one warp's consecutive lanes) hold that row's
// scores k = c + 8j of the key tile and its output dims c + 8t, so a row's running max,
// sum and rescale stay in registers and its shuffles stay in the warp. d a multiple of
// 8, at most attention_tiled_max_d. Every loop bound is uniform over the block, so the
// whole warp runs each shuffle (segments of 8 lanes).
inline constexpr int attention_q_tile = 32;          // 256 threads / 8 per query row
inline constexpr int attention_k_tile = 64;          // 8 scores per thread per tile
inline constexpr int attention_tiled_max_d = 128;    // 16 output dims per thread; Q, K, V tiles ~93 KB of smem at 128
inline constexpr int attention_row_threads = 8;      // threads per query row
inline constexpr int attention_tile_pad = 4;         // floats after each smem row: 16-byte aligned, rows 4 banks apart
QMR_HOST_DEVICE constexpr int attention_tiled_floats(int d) {
  return (attention_q_tile + 2 * attention_k_tile) * (d + attention_tile_pad) + attention_q_tile * (attention_k_tile + 1);
}
template <class TA>
__global__ void __launch_bounds__(attention_block_threads)
    attention_tiled_kernel(const attention_args a, int m, TA* __restrict__ out_half) {
  static_assert(attention_q_tile * attention_row_threads == attention_block_threads, "one thread row of 8 per query");
  constexpr int QT = attention_q_tile, KT = attention_k_tile, R = attention_row_threads;
  constexpr int max_dims = attention_tiled_max_d / R;  // output dims a thread owns, at most
  pdl_wait();
  pdl_launch_dependents();
  extern __shared__ float4 attention_tiled_smem[];
  const int d = a.d, ds = d + attention_tile_pad, kv_dim = a.kv_heads * d;
  float* qs = reinterpret_cast<float*>(attention_tiled_smem);  // [QT][ds]
  float* ks = qs + QT * ds;                                   // [KT][ds]
  float* vs = ks + KT * ds;                                   // [KT][ds]
  float* ps = vs + KT * ds;                                   // [QT][KT + 1]: a tile's probabilities
  const int hd = static_cast<int>(blockIdx.x), q0 = static_cast<int>(blockIdx.y) * QT;
  const int g = hd / (a.heads / a.kv_heads);
  const int nq = min(QT, m - q0);
  const int tid = static_cast<int>(threadIdx.x), r = tid / R, c = tid % R;
  const int pos0 = a.step->pos0;
  const int last_r = pos0 + q0 + r;               // this row's last key (rows past nq: never written)
  const int last_block = pos0 + q0 + nq - 1;      // the block's last key
  const float scale = 1.0f / sqrtf(static_cast<float>(d));
  for (int i = tid; i < QT * d; i += attention_block_threads) {
    const int qr = i / d, qi = i % d;
    qs[qr * ds + qi] = qr < nq ? a.q[static_cast<std::int64_t>(q0 + qr) * a.heads * d + hd * d + qi] : 0.0f;
  }
  const int dims = d / R;
  float acc[max_dims];
#pragma unroll
  for (int t = 0; t < max_dims; ++t) acc[t] = 0.0f;
  float row_max = -INFINITY, row_sum = 0.0f;
  const float* kbase = a.k_cache + g * d;
  const float* vbase = a.v_cache + g * d;
  for (int k0 = 0; k0 <= last_block; k0 += KT) {
    __syncthreads();  // the previous tile's K, V and probabilities are no longer read (and Q is written)
    const int nk = min(KT, last_block + 1 - k0);
    for (int i = tid; i < KT * (d / 4); i += attention_block_threads) {  // float4: rows 16-byte aligned (d % 8 == 0)
      const int kr = i / (d / 4), kc = 4 * (i % (d / 4));
      float4 kv = make_float4(0.0f, 0.0f, 0.0f, 0.0f), vv = kv;
      if (kr < nk) {
        kv = *reinterpret_cast<const float4*>(kbase + static_cast<std::int64_t>(k0 + kr) * kv_dim + kc);
        vv = *reinterpret_cast<const float4*>(vbase + static_cast<std::int64_t>(k0 + kr) * kv_dim + kc);
      }
      *reinterpret_cast<float4*>(ks + kr * ds + kc) = kv;
      *reinterpret_cast<float4*>(vs + kr * ds + kc) = vv;
    }
    __syncthreads();
    // scores of row r against keys k0 + c + 8j, masked past the row's last key
    float sc[KT / R];
    float tile_max = -INFINITY;
#pragma unroll
    for (int j = 0; j < KT / R; ++j) {
      const int kk = c + R * j;
      float dot = 0.0f;
      for (int i = 0; i < d; i += 4) {
        const float4 qv = *reinterpret_cast<const float4*>(qs + r * ds + i);
        const float4 kv = *reinterpret_cast<const float4*>(ks + kk * ds + i);
        dot = fmaf(qv.x, kv.x, dot);
        dot = fmaf(qv.y, kv.y, dot);
        dot = fmaf(qv.z, kv.z, dot);
        dot = fmaf(qv.w, kv.w, dot);
      }
      sc[j] = k0 + kk <= last_r ? dot * scale : -INFINITY;
      tile_max = fmaxf(tile_max, sc[j]);
    }
#pragma unroll
    for (int off = R / 2; off > 0; off >>= 1) tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, off, R));
    // Every row sees key k0 <= its last key in its first tile, so new_max is finite from then on.
    const float new_max = fmaxf(row_max, tile_max);
    const float rescale = expf(row_max - new_max);  // 0 on the first tile (row_max = -inf)
    float tile_sum = 0.0f;
#pragma unroll
    for (int j = 0; j < KT / R; ++j) {
      const float pj = expf(sc[j] - new_max);  // 0 where masked
      ps[r * (KT + 1) + c + R * j] = pj;
      tile_sum += pj;
    }
#pragma unroll
    for (int off = R / 2; off > 0; off >>= 1) tile_sum += __shfl_xor_sync(0xffffffffu, tile_sum, off, R);
    row_sum = row_sum * rescale + tile_sum;
    row_max = new_max;
    __syncwarp();  // the row's probabilities, written by its 8 lanes, are read by all 8 below
#pragma unroll
    for (int t = 0; t < max_dims; ++t) {
      if (t >= dims) break;
      float o = acc[t] * rescale;
      const int col = c + R * t;
      for (int kk = 0; kk < nk; ++kk) o = fmaf(ps[r * (KT + 1) + kk], vs[kk * ds + col], o);
      acc[t] = o;
    }
  }
  if (r >= nq) return;
  const float inv = 1.0f / row_sum;
#pragma unroll
  for (int t = 0; t < max_dims; ++t) {
    if (t >= dims) break;
    const std::int64_t o = static_cast<std::int64_t>(q0 + r) * a.heads * d + hd * d + c + R * t;
    a.out[o] = acc[t] * inv;
    store(out_half + o, acc[t] * inv);
  }
}

// act = silu(gate) * up = gate / (1 + exp(-gate)) * up, [M, inter], f32 and TA.
// Pairs: gate and up are one row of gemv_silu_mul's matrix in silu_pairs_order (gate
// j at column 16 (j / 8) + j % 8, up j 8 columns later), at gate + t*ldg; up unused.
template <class TA, bool Pairs>
__global__ void silu_mul_kernel(const float* __restrict__ gate, int ldg, const float* __restrict__ up, int ldu, int inter,
                                int m, float* __restrict__ act, TA* __restrict__ act_half) {
  pdl_wait();
  pdl_launch_dependents();
  const std::int64_t n = static_cast<std::int64_t>(m) * inter;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t t = i / inter, j = i % inter;
    const std::int64_t gj = Pairs ? 16 * (j / 8) + j % 8 : j;
    const float g = ld_produced(gate + t * ldg + gj);  // gate, up: the projection's output
    const float v = g / (1.0f + expf(-g)) * ld_produced(Pairs ? gate + t * ldg + gj + 8 : up + t * ldu + j);
    act[i] = v;
    store(act_half + i, v);
  }
}

// Argmax in two launches: argmax_blocks blocks each reduce a strided slice of x to
// a (value, index) pair, then one block reduces the pairs (v1's single block took
// ~40 us over a 152K vocabulary: each thread's loads were serialized). The largest
// value wins, the lowest index on ties (torch.argmax, std::max_element).
inline constexpr int argmax_blocks = 128;
inline constexpr int argmax_threads = 256;
QMR_DEVICE __forceinline__ void argmax_merge(float& v, int& i, float ov, int oi) {
  if (ov > v || (ov == v && oi < i)) v = ov, i = oi;
}
// The block's best pair, in thread 0. Ties between threads go to the lower index;
// an empty thread holds (-inf, INT_MAX).
QMR_DEVICE inline void argmax_block(float& v, int& idx) {
  __shared__ float bv[32];
  __shared__ int bi[32];
#pragma unroll
  for (int off = 16; off > 0; off >>= 1)
    argmax_merge(v, idx, __shfl_xor_sync(0xffffffffu, v, off), __shfl_xor_sync(0xffffffffu, idx, off));
  const int lane = static_cast<int>(threadIdx.x) & 31, warp = static_cast<int>(threadIdx.x) >> 5;
  if (lane == 0) bv[warp] = v, bi[warp] = idx;
  __syncthreads();
  if (threadIdx.x == 0)
    for (int w = 1; w < static_cast<int>(blockDim.x) / 32; ++w) argmax_merge(v, idx, bv[w], bi[w]);
}
__global__ void __launch_bounds__(argmax_threads)
    argmax_partial_kernel(const float* __restrict__ x, int n, float* __restrict__ pv, int* __restrict__ pi) {
  pdl_wait();
  pdl_launch_dependents();
  float v = -INFINITY;
  int idx = 0x7fffffff;
  for (int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x); i < n;
       i += static_cast<int>(gridDim.x * blockDim.x))
    argmax_merge(v, idx, ld_produced(x + i), i);  // the logits; NaN never wins a comparison
  argmax_block(v, idx);
  if (threadIdx.x == 0) pv[blockIdx.x] = v, pi[blockIdx.x] = idx;
}
__global__ void __launch_bounds__(argmax_threads)
    argmax_final_kernel(const float* __restrict__ pv, const int* __restrict__ pi, int blocks,
                        qstd::int32_t* __restrict__ out) {
  pdl_wait();
  float v = -INFINITY;
  int idx = 0x7fffffff;
  for (int b = static_cast<int>(threadIdx.x); b < blocks; b += static_cast<int>(blockDim.x))
    argmax_merge(v, idx, ld_produced(pv + b), ld_produced(pi + b));  // argmax_partial_kernel's pairs
  argmax_block(v, idx);
  if (threadIdx.x == 0) *out = idx == 0x7fffffff ? 0 : idx;
}
#endif  // __CUDACC__

}  // namespace detail

#ifdef __CUDACC__
// Host launchers: asynchronous on `stream`, each checks its launch. `pdl`: launch
// with programmatic dependent launch (see launch.cuh; every kernel here but
// embed's waits for its predecessor first).

template <class TW>
void embed(const TW* table, int hidden, const step_state* step, int m, float* x, cudaStream_t stream) {
  detail::embed_kernel<<<static_cast<unsigned>(m), detail::ops_block_threads, 0, stream>>>(table, hidden, step, x);
  QMR_CUDA_CHECK(cudaGetLastError());
}

// Rows [row0, row0 + rows) of x [.., cols]: x += add (+ bias), h[0..rows) = RMSNorm(x) * weight.
template <class TA>
void add_rmsnorm(float* x, int row0, int rows, const float* add, const float* bias, const float* weight, int cols,
                 double eps, float* h, TA* h_half, cudaStream_t stream, bool pdl = false) {
  launch_kernel(pdl, detail::add_rmsnorm_kernel<TA>, dim3(static_cast<unsigned>(rows)), dim3(detail::ops_block_threads),
                0, stream, x, row0, add, bias, weight, cols, eps, h, h_half);
}

inline void qkv_rope(const qkv_rope_args& a, int m, cudaStream_t stream, bool pdl = false) {
  check(a.d % 2 == 0 && a.d <= 1024, "qkv_rope: head_dim " + std::to_string(a.d) + " must be even and at most 1024");
  check(!a.pairs || a.d % 16 == 0, "qkv_rope: rows in qkv_pairs_order need head_dim " + std::to_string(a.d) + " a multiple of 16");
  const unsigned threads = static_cast<unsigned>((a.d + 31) / 32 * 32);
  launch_kernel(pdl, detail::qkv_rope_kernel, dim3(static_cast<unsigned>(m), static_cast<unsigned>(a.heads + 2 * a.kv_heads)),
                dim3(threads), static_cast<std::size_t>(a.d) * sizeof(float), stream, a);
}

// cos_out/sin_out[capacity, half] = cos/sin(p * inv_freq[f]) for positions 0..capacity-1,
// bit for bit what qkv_rope uses (angle in f32, cos and sin in f64, rounded): the table
// gemv_qkv_rope's epilogue reads.
inline void rope_table(const float* inv_freq, int half, int capacity, float* cos_out, float* sin_out, cudaStream_t stream) {
  check(half > 0 && capacity > 0, "rope_table: " + std::to_string(capacity) + " positions of " + std::to_string(half) + " frequencies");
  const std::int64_t n = static_cast<std::int64_t>(capacity) * half;
  constexpr unsigned threads = 256;  // any block size works: one thread per entry
  detail::rope_table_kernel<<<static_cast<unsigned>((n + threads - 1) / threads), threads, 0, stream>>>(inv_freq, half, capacity,
                                                                                                      cos_out, sin_out);
  QMR_CUDA_CHECK(cudaGetLastError());
}

// Dynamic shared memory of attention for a cache of `capacity` positions.
inline std::size_t attention_smem_bytes(int capacity, int d) {
  return static_cast<std::size_t>(capacity + d + detail::attention_part_floats(d)) * sizeof(float);
}
// The query-tiled prefill kernel (attention_tiled_kernel): head_dim a multiple of 8 up to
// 128; batches from attention_tiled_min_batch queries (below, the per-query kernel's
// blocks already cover the keys with fewer idle rows), and, given the SM count, grids of
// at least half a block per SM: each tiled block walks its keys alone, so a small grid
// leaves SMs idle. On an H200, 256-query chunks: 14 heads x 8 tiles = 112 blocks
// (Qwen2.5-0.5B) gain 16-28% prefill at 1-2K positions, 8 x 8 = 64 (the bundled model)
// lose 11% at 1K (bench/results/cuda_attention_split_20261204_s28.md).
inline bool attention_tiled_takes(int d) { return d % detail::attention_row_threads == 0 && d <= detail::attention_tiled_max_d; }
inline constexpr int attention_tiled_min_batch = detail::attention_q_tile / 2;
inline bool attention_use_tiled(int m, int heads, int d, int sm_count) {
  const std::int64_t blocks = static_cast<std::int64_t>(heads) * ((m + detail::attention_q_tile - 1) / detail::attention_q_tile);
  return m >= attention_tiled_min_batch && attention_tiled_takes(d) && (sm_count == 0 || 2 * blocks >= sm_count);
}
inline std::size_t attention_tiled_smem_bytes(int d) { return static_cast<std::size_t>(detail::attention_tiled_floats(d)) * sizeof(float); }
// Raises attention's dynamic shared-memory limit to what `capacity` needs (once per
// session); throws when the device has less.
template <class TA>
void prepare_attention(int capacity, int d) {
  int device = 0, optin = 0;
  QMR_CUDA_CHECK(cudaGetDevice(&device));
  QMR_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  const std::size_t need = attention_smem_bytes(capacity, d) + 32 * sizeof(float);
  if (need > static_cast<std::size_t>(optin))
    throw error("attention: a cache of " + std::to_string(capacity) + " positions needs " + std::to_string(need) +
                " bytes of shared memory per block, the device allows " + std::to_string(optin));
  QMR_CUDA_CHECK(cudaFuncSetAttribute(detail::attention_kernel<TA>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      static_cast<int>(attention_smem_bytes(capacity, d))));
  if (attention_tiled_takes(d)) {
    const std::size_t tiled = attention_tiled_smem_bytes(d);
    if (tiled > static_cast<std::size_t>(optin))
      throw error("attention: query tiles of head_dim " + std::to_string(d) + " need " + std::to_string(tiled) +
                  " bytes of shared memory per block, the device allows " + std::to_string(optin));
    QMR_CUDA_CHECK(cudaFuncSetAttribute(detail::attention_tiled_kernel<TA>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(tiled)));
  }
}
// The most key runs per (head, token) of attention (see attention_kernel): 1 when m x
// heads blocks already fill the SMs (prefill); else enough runs to bring a block to
// every SM, at most attention_max_splits and, over the capacity, at least
// attention_split_keys keys each (the kernel cuts fewer while the row is short).
inline constexpr int attention_max_splits = 16;  // the combine reads every run per output: 16 keeps it short
inline int attention_splits(int m, int heads, int capacity, int sm_count) {
  const std::int64_t blocks = static_cast<std::int64_t>(m) * heads;
  if (blocks >= sm_count) return 1;
  const std::int64_t fill = (sm_count + blocks - 1) / blocks;
  const std::int64_t by_keys = capacity / detail::attention_split_keys;
  return static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>({fill, by_keys, attention_max_splits})));
}
// The workspace attention's runs need on a device of sm_count SMs, for any m that splits
// (m x heads < sm_count rows): a u32 counter per row, then per row attention_max_splits
// runs of d + 2 floats. Zero it once (cudaMemset) before the first call; the kernel
// leaves the counters at zero. One workspace serves one sm_count (it places the runs).
inline std::size_t attention_counter_bytes(int sm_count) {
  return (static_cast<std::size_t>(sm_count) * sizeof(unsigned) + 15) / 16 * 16;  // the runs start 16-byte aligned
}
inline std::size_t attention_workspace_bytes(int d, int sm_count) {
  return attention_counter_bytes(sm_count) +
         static_cast<std::size_t>(sm_count) * attention_max_splits * static_cast<std::size_t>(d + 2) * sizeof(float);
}
// out[m, heads d] = causal attention of the m queries (f32 and TA), one launch: query
// tiles where attention_use_tiled(m, heads, d, sm_count) (sm_count 0: whenever the batch
// and d allow), else one block per head and token, or with workspace =
// attention_workspace_bytes(d, sm_count) of zeroed device memory up to
// attention_splits(m, heads, capacity, sm_count) runs of keys per head and token.
template <class TA>
void attention(const attention_args& a, int m, int capacity, TA* out_half, cudaStream_t stream, bool pdl = false,
               void* workspace = nullptr, int sm_count = 0) {
  if (attention_use_tiled(m, a.heads, a.d, sm_count)) {  // prefill: query tiles
    launch_kernel(pdl, detail::attention_tiled_kernel<TA>,
                  dim3(static_cast<unsigned>(a.heads), static_cast<unsigned>((m + detail::attention_q_tile - 1) / detail::attention_q_tile)),
                  dim3(detail::attention_block_threads), attention_tiled_smem_bytes(a.d), stream, a, m, out_half);
    return;
  }
  const int splits = workspace == nullptr ? 1 : attention_splits(m, a.heads, capacity, sm_count);
  auto* counters = static_cast<unsigned*>(workspace);
  float* runs = workspace == nullptr ? nullptr
                                     : reinterpret_cast<float*>(static_cast<char*>(workspace) + attention_counter_bytes(sm_count));
  launch_kernel(pdl, detail::attention_kernel<TA>,
                dim3(static_cast<unsigned>(a.heads), static_cast<unsigned>(m), static_cast<unsigned>(splits)),
                dim3(detail::attention_block_threads), attention_smem_bytes(capacity, a.d), stream, a, capacity, out_half,
                splits, counters, runs);
}

namespace detail {
// Blocks of silu_mul for n outputs: one per 256, at most 4096 (the kernel strides).
inline unsigned silu_blocks(std::int64_t n) { return static_cast<unsigned>(std::min<std::int64_t>((n + 255) / 256, 4096)); }
}  // namespace detail

template <class TA>
void silu_mul(const float* gate, int ldg, const float* up, int ldu, int inter, int m, float* act, TA* act_half,
              cudaStream_t stream, bool pdl = false) {
  launch_kernel(pdl, detail::silu_mul_kernel<TA, false>, dim3(detail::silu_blocks(static_cast<std::int64_t>(m) * inter)),
                dim3(256), 0, stream, gate, ldg, up, ldu, inter, m, act, act_half);
}
// The same from gate/up rows in silu_pairs_order, [m, 2 inter] (gemv() of gemv_silu_mul's
// matrix): what gemv_silu_mul writes, for batches the GEMM runs. inter a multiple of 8.
template <class TA>
void silu_mul_pairs(const float* gate_up, int inter, int m, float* act, TA* act_half, cudaStream_t stream, bool pdl = false) {
  check(inter > 0 && inter % 8 == 0, "silu_mul_pairs: " + std::to_string(inter) + " rows are not a multiple of 8");
  launch_kernel(pdl, detail::silu_mul_kernel<TA, true>, dim3(detail::silu_blocks(static_cast<std::int64_t>(m) * inter)),
                dim3(256), 0, stream, gate_up, 2 * inter, static_cast<const float*>(nullptr), 0, inter, m, act, act_half);
}

// Scratch argmax needs on the device.
inline constexpr std::size_t argmax_scratch_bytes = detail::argmax_blocks * (sizeof(float) + sizeof(int));
// out = argmax of x[n]; scratch is argmax_scratch_bytes of device memory.
inline void argmax(const float* x, int n, void* scratch, qstd::int32_t* out, cudaStream_t stream, bool pdl = false) {
  float* pv = static_cast<float*>(scratch);
  int* pi = reinterpret_cast<int*>(pv + detail::argmax_blocks);
  const int blocks = std::max(1, std::min(detail::argmax_blocks, (n + detail::argmax_threads - 1) / detail::argmax_threads));
  launch_kernel(pdl, detail::argmax_partial_kernel, dim3(static_cast<unsigned>(blocks)), dim3(detail::argmax_threads), 0,
                stream, x, n, pv, pi);
  launch_kernel(pdl, detail::argmax_final_kernel, dim3(1), dim3(detail::argmax_threads), 0, stream, pv, pi, blocks, out);
}
#endif  // __CUDACC__

}  // namespace qmr::cuda
