// GPU test: qmr::cuda::attention (kernels/cuda/layer_ops.cuh), one block per head and token, with the keys split into runs (flash-decoding, the decode step's path) and query-tiled (prefill batches), matches a float64 causal GQA softmax attention on fresh random q and KV caches: head shapes with d a multiple of 4 and not, 1-100 queries at positions from 0 to the end of the cache, runs from 1 to 16 (an SM count forced high), f16/bf16 copies equal to the rounded f32 output, poisoned outputs with the row past the batch left alone. Exits 77 (skip) without a GPU.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <cuda_runtime.h>

#include "qmr/core/half.hpp"
#include "qmr/kernels/cuda/layer_ops.cuh"
#include "gemv_reference.hpp"
#include "gpu_check.hpp"

namespace {

using qmr::f16;
using qmr::bf16;
using qmr::testing::gpu::failures;
using qmr::testing::gpu::rng;
using qmr::testing::gpu::to_act;
using qmr::testing::gpu::type_name;

struct heads_shape {
  int heads, kv_heads, d;
};

// Cache positions: past attention_max_splits x attention_split_keys, so that the key
// count allows every run count up to the cap.
constexpr int capacity = 2100;

// out[t, h d] in float64: softmax over keys 0..pos0+t of q_t,h · k / sqrt(d), times V.
std::vector<double> reference(const std::vector<float>& q, const std::vector<float>& kc, const std::vector<float>& vc,
                              heads_shape hs, int m, int pos0) {
  const int d = hs.d, kv_dim = hs.kv_heads * d, group = hs.heads / hs.kv_heads;
  std::vector<double> out(static_cast<std::size_t>(m) * hs.heads * d, 0.0);
  for (int t = 0; t < m; ++t)
    for (int h = 0; h < hs.heads; ++h) {
      const int g = h / group, last = pos0 + t;
      std::vector<double> s(static_cast<std::size_t>(last + 1));
      double mx = -INFINITY;
      for (int k = 0; k <= last; ++k) {
        double dot = 0;
        for (int i = 0; i < d; ++i)
          dot += static_cast<double>(q[static_cast<std::size_t>((t * hs.heads + h) * d + i)]) *
                 kc[static_cast<std::size_t>(k * kv_dim + g * d + i)];
        s[static_cast<std::size_t>(k)] = dot / std::sqrt(static_cast<double>(d));
        mx = std::max(mx, s[static_cast<std::size_t>(k)]);
      }
      double sum = 0;
      for (double& v : s) sum += (v = std::exp(v - mx));
      for (int k = 0; k <= last; ++k)
        for (int i = 0; i < d; ++i)
          out[static_cast<std::size_t>((t * hs.heads + h) * d + i)] +=
              s[static_cast<std::size_t>(k)] / sum * vc[static_cast<std::size_t>(k * kv_dim + g * d + i)];
    }
  return out;
}

template <class TA>
int run_shape(heads_shape hs, int sm_count, rng& r) {
  const int d = hs.d, q_dim = hs.heads * d, kv_dim = hs.kv_heads * d;
  qmr::cuda::prepare_attention<TA>(capacity, d);
  // Keys and values in [-1, 1); queries in [-3, 3) so that some softmax rows are peaked.
  std::vector<float> kc(static_cast<std::size_t>(capacity) * kv_dim), vc(kc.size());
  for (auto& v : kc) v = r.uniform(-1.0f, 1.0f);
  for (auto& v : vc) v = r.uniform(-1.0f, 1.0f);
  qmr::cuda::device_buffer dk(kc.size() * sizeof(float)), dv(vc.size() * sizeof(float)), dstep(sizeof(qmr::cuda::step_state));
  QMR_CUDA_CHECK(cudaMemcpy(dk.data(), kc.data(), dk.size(), cudaMemcpyHostToDevice));
  QMR_CUDA_CHECK(cudaMemcpy(dv.data(), vc.data(), dv.size(), cudaMemcpyHostToDevice));
  // Workspaces for the device's SM count and a forced 4096 (a workspace serves one count).
  constexpr int forced_sms = 4096;
  qmr::cuda::device_buffer ws_device(qmr::cuda::attention_workspace_bytes(d, sm_count)),
      ws_forced(qmr::cuda::attention_workspace_bytes(d, forced_sms));
  QMR_CUDA_CHECK(cudaMemset(ws_device.data(), 0, ws_device.size()));  // the counters start at zero
  QMR_CUDA_CHECK(cudaMemset(ws_forced.data(), 0, ws_forced.size()));
  int cases = 0;
  // (m, pos0): single queries at the first, a run boundary's and the last position; batches.
  // From attention_tiled_min_batch (16) queries the query-tiled kernel runs (d a multiple of 8):
  // a ragged tile, tiles from position 0, a chunk late in the cache.
  const int runs[][2] = {{1, 0},   {1, 1},   {1, 255},  {1, 256},   {1, 517}, {1, capacity - 1}, {3, 300},
                         {15, 40}, {16, 5},  {16, 1900}, {40, 300}, {100, 0}, {33, 2000},       {64, 63}};
  for (const auto& mp : runs) {
    const int m = mp[0], pos0 = mp[1];
    std::vector<float> q(static_cast<std::size_t>(m) * q_dim);
    for (auto& v : q) v = r.uniform(-3.0f, 3.0f);
    const std::vector<double> want = reference(q, kc, vc, hs, m, pos0);
    qmr::cuda::step_state st{};
    st.pos0 = pos0;
    st.n = m;
    QMR_CUDA_CHECK(cudaMemcpy(dstep.data(), &st, sizeof st, cudaMemcpyHostToDevice));
    qmr::cuda::device_buffer dq(q.size() * sizeof(float));
    QMR_CUDA_CHECK(cudaMemcpy(dq.data(), q.data(), dq.size(), cudaMemcpyHostToDevice));
    // m + 1 rows: the last must stay poisoned
    const std::size_t n_out = static_cast<std::size_t>(m + 1) * q_dim;
    qmr::cuda::device_buffer dout(n_out * sizeof(float)), dhalf(n_out * sizeof(TA));
    // SM counts: none (one block per head and token), the device's, and a forced 4096 (16 runs where the keys allow)
    for (const int sms : {0, sm_count, forced_sms}) {
      QMR_CUDA_CHECK(cudaMemset(dout.data(), 0xff, dout.size()));
      QMR_CUDA_CHECK(cudaMemset(dhalf.data(), 0xff, dhalf.size()));
      const qmr::cuda::attention_args a{dq.as<const float>(), dk.as<const float>(), dv.as<const float>(), hs.heads, hs.kv_heads, d,
                                        dout.as<float>(), dstep.as<const qmr::cuda::step_state>()};
      void* ws = sms == 0 ? nullptr : sms == forced_sms ? ws_forced.data() : ws_device.data();
      qmr::cuda::attention(a, m, capacity, dhalf.as<TA>(), nullptr, false, ws, sms);
      QMR_CUDA_CHECK(cudaDeviceSynchronize());
      std::vector<float> out(n_out);
      std::vector<TA> half(n_out);
      QMR_CUDA_CHECK(cudaMemcpy(out.data(), dout.data(), dout.size(), cudaMemcpyDeviceToHost));
      QMR_CUDA_CHECK(cudaMemcpy(half.data(), dhalf.data(), dhalf.size(), cudaMemcpyDeviceToHost));
      // runs the kernel cuts for the first query: min(splits, keys / 128 rounded down), at least 1
      const int splits =
          std::max(1, std::min(sms == 0 ? 1 : qmr::cuda::attention_splits(m, hs.heads, capacity, sms), (pos0 + 1) / 128));
      const bool tiled = qmr::cuda::attention_use_tiled(m, hs.heads, d, sms);
      int bad = 0;
      for (std::size_t i = 0; i < n_out; ++i) {
        bool ok;
        if (i >= want.size()) {  // the row past the batch
          std::uint32_t bits;
          std::memcpy(&bits, &out[i], 4);
          ok = bits == 0xffffffffu && half[i].bits == 0xffffu;
        } else {
          // a convex combination of values in [-1, 1), summed in f32 over up to 1100 keys (and
          // rescaled per run): a few 1e-7 in practice; 1e-5 still catches a missed or doubled key
          ok = std::fabs(out[i] - want[i]) <= 1e-5 && to_act<TA>(out[i]).bits == half[i].bits;
        }
        if (!ok && ++bad <= 3)
          CHECK(false, "attention %s heads %d/%d d %d m %d pos0 %d %s %d: out[%zu] = %.8g (half %g), want %.8g",
                type_name<TA>(), hs.heads, hs.kv_heads, d, m, pos0, tiled ? "tiled" : "runs", splits, i, static_cast<double>(out[i]),
                static_cast<double>(qmr::to_float(half[i])), i < want.size() ? want[i] : 0.0);
      }
      ++cases;
    }
  }
  return cases;
}

}  // namespace

int main() {
  if (!qmr::testing::gpu::device_present()) return 77;
  const cudaDeviceProp prop = qmr::testing::gpu::describe_device();
  rng r{20261204};
  // The splits the forward pass gets: Qwen2.5-0.5B's decode step on this device.
  std::printf("attention_splits(1, 14 heads, %d positions, %d SMs) = %d\n", capacity, prop.multiProcessorCount,
              qmr::cuda::attention_splits(1, 14, capacity, prop.multiProcessorCount));
  CHECK(qmr::cuda::attention_splits(1, 14, capacity, 132) == 10, "14 heads on 132 SMs: 10 runs");
  CHECK(qmr::cuda::attention_splits(1, 14, 300, 132) == 2, "300 positions: 2 runs of at least 128 keys");
  CHECK(qmr::cuda::attention_splits(1, 14, 100, 132) == 1, "100 positions: one run");
  CHECK(qmr::cuda::attention_splits(16, 14, capacity, 132) == 1, "16 x 14 blocks fill 132 SMs: one run");
  CHECK(qmr::cuda::attention_splits(1, 2, 4096, 132) == 16, "at most 16 runs");
  CHECK(qmr::cuda::attention_use_tiled(256, 14, 64, 132) && !qmr::cuda::attention_use_tiled(256, 8, 32, 132) &&
            !qmr::cuda::attention_use_tiled(15, 14, 64, 0) && !qmr::cuda::attention_use_tiled(64, 2, 30, 0),
        "query tiles: 112 blocks on 132 SMs yes, 64 no; not below 16 queries or for d 30");
  int cases = 0;
  // Qwen2.5-0.5B (GQA 7), Llama-style MHA at d 128, d 48, d 30 (not a multiple of 4: the per-lane path), the bundled model.
  // QMR_ATTENTION_TEST_QUICK (for compute-sanitizer): the Qwen shape in f16 alone.
  const bool quick = std::getenv("QMR_ATTENTION_TEST_QUICK") != nullptr;
  for (const heads_shape hs : {heads_shape{14, 2, 64}, heads_shape{4, 4, 128}, heads_shape{3, 1, 48}, heads_shape{2, 1, 30},
                               heads_shape{8, 4, 32}}) {
    cases += run_shape<f16>(hs, prop.multiProcessorCount, r);
    if (quick) break;
    cases += run_shape<bf16>(hs, prop.multiProcessorCount, r);
  }
  std::printf("attention %s: %d cases\n", failures == 0 ? "ok  " : "FAIL", cases);
  std::printf("%s: %d failures\n", failures == 0 ? "ok" : "FAILED", failures);
  return failures == 0 ? 0 : 1;
}
