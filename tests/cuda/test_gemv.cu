// GPU test: qmr::cuda::gemv's tensor-core kernel (uploads without the lane layout) matches qmr::ref::gemm_ref on fresh random data for every format, ragged shapes, every launch shape, M in {1, 3, 8, 9, 16, 19} (19: two launches; tests/cuda/test_gemm.cu covers the tiled GEMM of larger batches), f16/bf16 activations and f16/bf16 outputs (the activation type) and f32 outputs (from f16); qmr::cuda::gemv_silu_mul writes SiLU(gate)·up of the GEMV's own sums (f32 within expf's rounding, the activation-type copy its exact rounding), poisoned outputs, ragged row groups, two launches past 16 tokens; qmr::cuda::gemv_qkv_rope writes the same bits into q and the KV cache as gemv() followed by qmr::cuda::qkv_rope (with and without biases, every cache row outside the chunk left alone), and so does qkv_rope reading the GEMV's rows in qkv_pairs_order (pairs); silu_mul_pairs on the GEMV's rows gives gemv_silu_mul's bits. Exits 77 (skip) without a GPU.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include <cuda_runtime.h>

#include "qmr/core/thread_pool.hpp"
#include "qmr/kernels/cuda/gemv.cuh"
#include "qmr/kernels/cuda/layer_ops.cuh"
#include "qmr/kernels/ref/matmul.hpp"
#include "gemv_reference.hpp"
#include "gpu_check.hpp"

namespace {

using qmr::testing::gpu::failures;
using qmr::testing::gpu::random_qtensor;
using qmr::testing::gpu::rng;

using qmr::bf16;
using qmr::f16;
namespace quant = qmr::quant;

using qmr::testing::gpu::out_rel;
using qmr::testing::gpu::to_act;
using qmr::testing::gpu::type_name;

constexpr int max_m = qmr::cuda::gemv_traits::max_batch + 3;
constexpr int batches[] = {1, 3, 8, 9, 16, max_m};  // one n-block (1..8), two (9..16), two launches
constexpr int launch_shapes[] = {8, 16, 32, 64, 128, 256};  // threads per row

struct stats {
  bool quick = false;  // sanitizer runs: fewer batches and launch shapes
  int runs = 0;
  double worst = 0.0;  // max |err| / tol
};

// One activation type: reference on the host from the rounded activations, then
// every output type, batch and launch shape on the device.
template <class TX, class TY>
void check_outputs(const quant::qtensor_view& w, qmr::cuda::device_qtensor& dw, const qmr::cuda::device_buffer& dx,
                   const std::vector<float>& y_ref, const std::vector<float>& abs_sum, stats& st) {
  const std::int64_t rows = w.rows();
  qmr::cuda::device_buffer dy(static_cast<std::size_t>(max_m * rows) * sizeof(TY));
  std::vector<TY> y(static_cast<std::size_t>(max_m * rows));
  const int chosen = dw.threads_per_row;
  for (int tpr : launch_shapes) {
    if (st.quick && tpr != 8 && tpr != 256) continue;
    dw.threads_per_row = tpr;
    for (int M : batches) {
      if (st.quick && M != 1 && M != max_m) continue;
      QMR_CUDA_CHECK(cudaMemset(dy.data(), 0xff, dy.size()));  // poison: NaN in every output type
      qmr::cuda::gemv(dw, dx.as<const TX>(), dy.as<TY>(), M, nullptr);
      QMR_CUDA_CHECK(cudaDeviceSynchronize());
      QMR_CUDA_CHECK(cudaMemcpy(y.data(), dy.data(), dy.size(), cudaMemcpyDeviceToHost));
      ++st.runs;
      for (std::int64_t m = 0; m < max_m; ++m)
        for (std::int64_t r = 0; r < rows; ++r) {
          const std::size_t i = static_cast<std::size_t>(m * rows + r);
          if (m >= M) {
            std::uint8_t bytes[sizeof(TY)];
            std::memcpy(bytes, &y[i], sizeof(TY));
            bool untouched = true;
            for (std::uint8_t b : bytes) untouched = untouched && b == 0xff;
            CHECK(untouched, "%s x %s -> %s [%lld, %lld] M=%d tpr=%d: row %lld of y was written past M",
                  w.spec.str().c_str(), type_name<TX>(), type_name<TY>(), static_cast<long long>(rows),
                  static_cast<long long>(w.cols()), M, tpr, static_cast<long long>(m));
            continue;
          }
          const float got = qmr::to_float(y[i]);
          const double tol = 8.0e-6 * abs_sum[i] + out_rel<TY>() * std::fabs(y_ref[i]) + 1.0e-6;
          const double err = std::fabs(static_cast<double>(got) - y_ref[i]);
          const bool ok = std::isfinite(got) && err <= tol;
          if (std::isfinite(err) && err / tol > st.worst) st.worst = err / tol;
          CHECK(ok, "%s x %s -> %s [%lld, %lld] M=%d tpr=%d: y[%lld, %lld] = %.8g, reference %.8g (tolerance %.3g)",
                w.spec.str().c_str(), type_name<TX>(), type_name<TY>(), static_cast<long long>(rows),
                static_cast<long long>(w.cols()), M, tpr, static_cast<long long>(m), static_cast<long long>(r),
                static_cast<double>(got), static_cast<double>(y_ref[i]), tol);
        }
    }
  }
  dw.threads_per_row = chosen;
}

template <class TX>
void check_activation(const quant::qtensor_view& w, qmr::cuda::device_qtensor& dw, rng& r, qmr::thread_pool& pool,
                      stats& st) {
  const std::int64_t rows = w.rows(), cols = w.cols();
  std::vector<TX> xa(static_cast<std::size_t>(max_m * cols));
  std::vector<float> xf(xa.size());
  for (std::size_t i = 0; i < xa.size(); ++i) {
    xa[i] = to_act<TX>(r.uniform(-1.0f, 1.0f));
    xf[i] = qmr::to_float(xa[i]);
  }
  std::vector<float> y_ref(static_cast<std::size_t>(max_m * rows)), abs_sum(y_ref.size());
  qmr::ref::gemm_ref(w, qmr::matrix_view<const float>(xf.data(), max_m, cols),
                     qmr::matrix_view<float>(y_ref.data(), max_m, rows), &pool);
  // Σ|w·x| per output: the scale of the f32 rounding error of any summation order.
  qmr::parallel_for(&pool, rows, [&](std::int64_t r0, std::int64_t r1) {
    std::vector<float> row(static_cast<std::size_t>(cols));
    for (std::int64_t n = r0; n < r1; ++n) {
      for (std::int64_t c = 0; c < cols; ++c) row[static_cast<std::size_t>(c)] = std::fabs(w.value(n, c));
      for (std::int64_t m = 0; m < max_m; ++m) {
        double s = 0.0;
        for (std::int64_t c = 0; c < cols; ++c)
          s += static_cast<double>(row[static_cast<std::size_t>(c)]) * std::fabs(xf[static_cast<std::size_t>(m * cols + c)]);
        abs_sum[static_cast<std::size_t>(m * rows + n)] = static_cast<float>(s);
      }
    }
  });
  qmr::cuda::device_buffer dx(xa.size() * sizeof(TX));
  QMR_CUDA_CHECK(cudaMemcpy(dx.data(), xa.data(), dx.size(), cudaMemcpyHostToDevice));
  check_outputs<TX, TX>(w, dw, dx, y_ref, abs_sum, st);
  // f32 outputs from f16 activations only: the f32 store is the same for both
  // activation types, and each kernel instantiation costs CI compile time (2 archs).
  if constexpr (std::is_same_v<TX, f16>) check_outputs<TX, float>(w, dw, dx, y_ref, abs_sum, st);
}

}  // namespace

int main() {
  if (!qmr::testing::gpu::device_present()) return 77;
  try {
    qmr::testing::gpu::describe_device();
    qmr::thread_pool pool;
    rng r{20261201};
    // (rows, cols): ragged row counts for every rows-per-block (256 / threads per row),
    // the issue's columns 896, 4864, 4096, partial 128-column tiles (320, 200), a long row.
    const std::int64_t shapes[][2] = {{67, 896}, {203, 4864}, {130, 4096}, {45, 320}, {19, 200}, {37, 16384}, {1000, 896}};
    // QMR_GEMV_TEST_QUICK=1 (for compute-sanitizer runs): two bit-widths, two group sizes, two
    // launch shapes, batches 1 and 19 (one n-block; two launches of two n-blocks and one).
    const bool quick = std::getenv("QMR_GEMV_TEST_QUICK") != nullptr;
    // QMR_GEMV_TEST_QUICK=2 (racecheck, the slowest tool): one format family, w4g32.
    const bool quickest = quick && std::string(std::getenv("QMR_GEMV_TEST_QUICK")) == "2";
    const std::vector<int> bit_widths =
        quickest ? std::vector<int>{4} : quick ? std::vector<int>{3, 4} : std::vector<int>{2, 3, 4, 5, 6, 8};
    const std::vector<int> groups = quickest ? std::vector<int>{32}
                                    : quick  ? std::vector<int>{32, quant::per_channel}
                                             : std::vector<int>{32, 64, 128, 256, quant::per_channel};
    for (int bits : bit_widths)
      for (int group : groups)
        for (bool symmetric : {true, false}) {
          const quant::format_spec spec = quant::format_spec::quantized(bits, group, symmetric);
          stats st;
          st.quick = quick;
          int n_shapes = 0;
          const int failures_before = failures;
          for (const auto& shape : shapes) {
            const std::int64_t rows = shape[0], cols = shape[1];
            if (group != quant::per_channel && cols % group != 0) continue;
            ++n_shapes;
            const quant::qtensor q = random_qtensor(spec, rows, cols, r);
            // The tensor-core kernel at every batch: no lane layout, which gemv() would
            // take at M = 1 (tests/cuda/test_gemv_lanes.cu covers that path).
            qmr::cuda::device_qtensor dw = qmr::cuda::upload(q.view(), nullptr, /*with_lanes=*/false);
            check_activation<f16>(q.view(), dw, r, pool, st);
            check_activation<bf16>(q.view(), dw, r, pool, st);
          }
          std::printf("%-8s %s: %d shapes, %d runs, worst error %.3f of tolerance\n", spec.str().c_str(),
                      failures == failures_before ? "ok  " : "FAIL", n_shapes, st.runs, st.worst);
        }

    // gemv_silu_mul against gemv() on the same upload and SiLU·up on the host.
    {
      int cases = 0;
      const int failures_before = failures;
      for (const quant::format_spec spec :
           {quant::format_spec::quantized(4, 128, false), quant::format_spec::quantized(2, 64, true),
            quant::format_spec::quantized(3, 32, false), quant::format_spec::quantized(8, 128, true),
            quant::format_spec::quantized(6, quant::per_channel, false)})
        for (const std::int64_t inter : {8, 200, 1000})
          for (const std::int64_t cols : {320, 896}) {
            if (spec.group != quant::per_channel && cols % spec.group != 0) continue;
            const quant::qtensor q = random_qtensor(spec, 2 * inter, cols, r);  // read as silu_pairs_order
            const qmr::cuda::device_qtensor dw = qmr::cuda::upload(q.view(), nullptr, /*with_lanes=*/false);
            for (const int M : {1, 3, 9, 19}) {
              const auto run = [&](auto tag) {
                using TX = decltype(tag);
                std::vector<TX> xa(static_cast<std::size_t>(M * cols));
                for (auto& v : xa) v = to_act<TX>(r.uniform(-1.0f, 1.0f));
                qmr::cuda::device_buffer dx(xa.size() * sizeof(TX)), dy(static_cast<std::size_t>(M * 2 * inter) * sizeof(float));
                qmr::cuda::device_buffer da(static_cast<std::size_t>(M * inter) * sizeof(float)), dh(static_cast<std::size_t>(M * inter) * sizeof(TX));
                QMR_CUDA_CHECK(cudaMemcpy(dx.data(), xa.data(), dx.size(), cudaMemcpyHostToDevice));
                QMR_CUDA_CHECK(cudaMemset(da.data(), 0xff, da.size()));  // poison (NaN)
                QMR_CUDA_CHECK(cudaMemset(dh.data(), 0xff, dh.size()));
                // gemv_silu_mul sums as the 16-token GEMV does: the reference in launches of
                // at most 16 tokens (from gemm_traits::min_batch on, gemv() takes the tiled GEMM).
                constexpr int chunk = qmr::cuda::gemv_traits::max_batch;
                for (int m0 = 0; m0 < M; m0 += chunk)
                  qmr::cuda::gemv(dw, dx.as<const TX>() + m0 * cols, dy.as<float>() + m0 * 2 * inter, std::min(chunk, M - m0), nullptr);
                qmr::cuda::gemv_silu_mul(dw, dx.as<const TX>(), static_cast<int>(inter), da.as<float>(), dh.as<TX>(), M, nullptr);
                // silu_mul_pairs (what the forward runs after the GEMM) on the reference sums: the same bits
                qmr::cuda::device_buffer da2(da.size()), dh2(dh.size());
                QMR_CUDA_CHECK(cudaMemset(da2.data(), 0xff, da2.size()));
                QMR_CUDA_CHECK(cudaMemset(dh2.data(), 0xff, dh2.size()));
                qmr::cuda::silu_mul_pairs(dy.as<const float>(), static_cast<int>(inter), M, da2.as<float>(), dh2.as<TX>(), nullptr);
                QMR_CUDA_CHECK(cudaDeviceSynchronize());
                std::vector<float> y(static_cast<std::size_t>(M * 2 * inter)), act(static_cast<std::size_t>(M * inter)), act2(act.size());
                std::vector<TX> half(act.size()), half2(act.size());
                QMR_CUDA_CHECK(cudaMemcpy(y.data(), dy.data(), dy.size(), cudaMemcpyDeviceToHost));
                QMR_CUDA_CHECK(cudaMemcpy(act.data(), da.data(), da.size(), cudaMemcpyDeviceToHost));
                QMR_CUDA_CHECK(cudaMemcpy(half.data(), dh.data(), dh.size(), cudaMemcpyDeviceToHost));
                QMR_CUDA_CHECK(cudaMemcpy(act2.data(), da2.data(), da2.size(), cudaMemcpyDeviceToHost));
                QMR_CUDA_CHECK(cudaMemcpy(half2.data(), dh2.data(), dh2.size(), cudaMemcpyDeviceToHost));
                int bad = 0, bad_pairs = 0;
                for (std::size_t o = 0; o < act.size(); ++o)
                  if ((std::memcmp(&act[o], &act2[o], 4) != 0 || half[o].bits != half2[o].bits) && ++bad_pairs <= 3)
                    CHECK(false, "silu_mul_pairs %s %s inter %lld M=%d: act[%zu] = %g (half %g), gemv_silu_mul %g (half %g)",
                          spec.str().c_str(), type_name<TX>(), static_cast<long long>(inter), M, o, static_cast<double>(act2[o]),
                          static_cast<double>(qmr::to_float(half2[o])), static_cast<double>(act[o]),
                          static_cast<double>(qmr::to_float(half[o])));
                for (int n = 0; n < M; ++n)
                  for (std::int64_t j = 0; j < inter; ++j) {
                    const std::int64_t ig = 16 * (j / 8) + j % 8;  // silu_pairs_order's gate row j; up is 8 further
                    CHECK(!qmr::cuda::silu_pairs_order(ig).up && qmr::cuda::silu_pairs_order(ig).row == j &&
                              qmr::cuda::silu_pairs_order(ig + 8).up && qmr::cuda::silu_pairs_order(ig + 8).row == j,
                          "silu_pairs_order(%lld)", static_cast<long long>(ig));
                    const float g = y[static_cast<std::size_t>(n * 2 * inter + ig)], u = y[static_cast<std::size_t>(n * 2 * inter + ig + 8)];
                    const float want = g / (1.0f + std::exp(-g)) * u;
                    const std::size_t o = static_cast<std::size_t>(n * inter + j);
                    // device expf is within 2 ulp of the host's: a few f32 ulps after the division and product
                    const bool ok = std::isfinite(act[o]) && std::fabs(act[o] - want) <= 4e-6f * std::fabs(want) + 1e-30f &&
                                    to_act<TX>(act[o]).bits == half[o].bits;
                    if (!ok && ++bad <= 3)
                      CHECK(false, "gemv_silu_mul %s %s inter %lld cols %lld M=%d: token %d j %lld: act %g (half %g), want %g",
                            spec.str().c_str(), type_name<TX>(), static_cast<long long>(inter), static_cast<long long>(cols), M, n,
                            static_cast<long long>(j), static_cast<double>(act[o]), static_cast<double>(qmr::to_float(half[o])),
                            static_cast<double>(want));
                  }
                ++cases;
              };
              run(f16{});
              run(bf16{});
            }
          }
      std::printf("gemv_silu_mul %s: %d cases\n", failures == failures_before ? "ok  " : "FAIL", cases);
      CHECK(cases > 0, "gemv_silu_mul ran no case");
      bool threw = false;
      try {  // 2 inter rows must match: 16 rows are not gate and up of 12
        const quant::qtensor q = random_qtensor(quant::format_spec::quantized(4, 128, true), 16, 128, r);
        const qmr::cuda::device_qtensor dw = qmr::cuda::upload(q.view(), nullptr);
        qmr::cuda::device_buffer dx(16 * 128 * 2), da(16 * 12 * 4), dh(16 * 12 * 2);
        qmr::cuda::gemv_silu_mul(dw, dx.as<const f16>(), 12, da.as<float>(), dh.as<f16>(), 1, nullptr);
      } catch (const qmr::error&) {
        threw = true;
      }
      CHECK(threw, "gemv_silu_mul with a wrong intermediate size did not throw");
    }

    // gemv_qkv_rope against gemv() on the same upload followed by qkv_rope: the same bits.
    {
      struct heads_shape {
        int heads, kv_heads, d;
      };
      int cases = 0;
      const int failures_before = failures;
      for (const quant::format_spec spec :
           {quant::format_spec::quantized(4, 128, false), quant::format_spec::quantized(2, 64, true),
            quant::format_spec::quantized(3, 32, false), quant::format_spec::quantized(8, quant::per_channel, true)})
        for (const heads_shape hs : {heads_shape{2, 1, 16}, heads_shape{14, 2, 64}, heads_shape{4, 4, 128}, heads_shape{3, 1, 48}})
          for (const std::int64_t cols : {128, 896}) {
            const int q_dim = hs.heads * hs.d, kv_dim = hs.kv_heads * hs.d, rows = q_dim + 2 * kv_dim;
            const quant::qtensor q = random_qtensor(spec, rows, cols, r);  // read as qkv_pairs_order
            const qmr::cuda::device_qtensor dw = qmr::cuda::upload(q.view(), nullptr, /*with_lanes=*/false);
            // inv_freq as a model's: theta^(-2f/d), theta = 1e6 (Qwen2.5)
            std::vector<float> inv_freq(static_cast<std::size_t>(hs.d / 2));
            for (std::size_t f = 0; f < inv_freq.size(); ++f)
              inv_freq[f] = static_cast<float>(std::pow(1.0e6, -2.0 * static_cast<double>(f) / hs.d));
            qmr::cuda::device_buffer dfreq(inv_freq.size() * sizeof(float));
            QMR_CUDA_CHECK(cudaMemcpy(dfreq.data(), inv_freq.data(), dfreq.size(), cudaMemcpyHostToDevice));
            constexpr int capacity = 70;  // positions up to 37 * 16 % 50 + 16: rows on both sides of each chunk left alone
            qmr::cuda::device_buffer dcos(inv_freq.size() * capacity * sizeof(float)), dsin(dcos.size());
            qmr::cuda::rope_table(dfreq.as<const float>(), hs.d / 2, capacity, dcos.as<float>(), dsin.as<float>(), nullptr);
            for (const bool with_bias : {false, true}) {
              std::vector<float> bias(static_cast<std::size_t>(rows));  // [q | k | v] biases
              for (auto& b : bias) b = r.uniform(-0.5f, 0.5f);
              qmr::cuda::device_buffer dbias(bias.size() * sizeof(float));
              QMR_CUDA_CHECK(cudaMemcpy(dbias.data(), bias.data(), dbias.size(), cudaMemcpyHostToDevice));
              const float* qb = with_bias ? dbias.as<const float>() : nullptr;
              const float* kb = with_bias ? qb + q_dim : nullptr;
              const float* vb = with_bias ? qb + q_dim + kv_dim : nullptr;
              for (const int M : {1, 3, 9, 16}) {
                const int pos0 = 37 * M % 50;
                const auto run = [&](auto tag) {
                  using TX = decltype(tag);
                  std::vector<TX> xa(static_cast<std::size_t>(M * cols));
                  for (auto& v : xa) v = to_act<TX>(r.uniform(-1.0f, 1.0f));
                  qmr::cuda::step_state st{};
                  st.pos0 = pos0;
                  st.n = M;
                  qmr::cuda::device_buffer dx(xa.size() * sizeof(TX)), dstep(sizeof st);
                  qmr::cuda::device_buffer dy(static_cast<std::size_t>(M * rows) * sizeof(float));  // [M, rows] in pairs order
                  qmr::cuda::device_buffer dcat(dy.size());  // [M, q | k | v]
                  const std::size_t q_bytes = static_cast<std::size_t>(M * q_dim) * sizeof(float),
                                    cache_bytes = static_cast<std::size_t>(capacity * kv_dim) * sizeof(float);
                  qmr::cuda::device_buffer q1(q_bytes), k1(cache_bytes), v1(cache_bytes), q2(q_bytes), k2(cache_bytes), v2(cache_bytes);
                  qmr::cuda::device_buffer q3(q_bytes), k3(cache_bytes), v3(cache_bytes);  // qkv_rope reading the pairs order
                  QMR_CUDA_CHECK(cudaMemcpy(dx.data(), xa.data(), dx.size(), cudaMemcpyHostToDevice));
                  QMR_CUDA_CHECK(cudaMemcpy(dstep.data(), &st, sizeof st, cudaMemcpyHostToDevice));
                  for (auto* b : {&q1, &k1, &v1, &q2, &k2, &v2, &q3, &k3, &v3})
                    QMR_CUDA_CHECK(cudaMemset(b->data(), 0xff, b->size()));  // poison
                  // reference: the GEMV, its rows put back in [q | k | v] order, then qkv_rope
                  qmr::cuda::gemv(dw, dx.as<const TX>(), dy.as<float>(), M, nullptr);
                  std::vector<float> y(static_cast<std::size_t>(M * rows)), cat(y.size());
                  QMR_CUDA_CHECK(cudaMemcpy(y.data(), dy.data(), dy.size(), cudaMemcpyDeviceToHost));
                  for (int n = 0; n < M; ++n)
                    for (int i = 0; i < rows; ++i)
                      cat[static_cast<std::size_t>(n * rows + qmr::cuda::qkv_pairs_order(i, hs.heads, hs.kv_heads, hs.d))] =
                          y[static_cast<std::size_t>(n * rows + i)];
                  QMR_CUDA_CHECK(cudaMemcpy(dcat.data(), cat.data(), dcat.size(), cudaMemcpyHostToDevice));
                  qmr::cuda::qkv_rope_args a{};
                  a.q = dcat.as<const float>(), a.k = a.q + q_dim, a.v = a.k + kv_dim;
                  a.ldq = a.ldk = a.ldv = rows;
                  a.q_bias = qb, a.k_bias = kb, a.v_bias = vb;
                  a.inv_freq = dfreq.as<const float>();
                  a.heads = hs.heads, a.kv_heads = hs.kv_heads, a.d = hs.d;
                  a.q_out = q1.as<float>(), a.k_cache = k1.as<float>(), a.v_cache = v1.as<float>();
                  a.step = dstep.as<const qmr::cuda::step_state>();
                  qmr::cuda::qkv_rope(a, M, nullptr);
                  qmr::cuda::qkv_rope_args ap = a;  // the GEMV's rows as they come, in qkv_pairs_order
                  ap.q = dy.as<const float>(), ap.k = ap.v = nullptr;
                  ap.pairs = true;
                  ap.q_out = q3.as<float>(), ap.k_cache = k3.as<float>(), ap.v_cache = v3.as<float>();
                  qmr::cuda::qkv_rope(ap, M, nullptr);
                  qmr::cuda::qkv_rope_epilogue e;
                  e.q_bias = qb, e.k_bias = kb, e.v_bias = vb;
                  e.rope_cos = dcos.as<const float>(), e.rope_sin = dsin.as<const float>();
                  e.pos0 = dstep.as<const std::int32_t>();
                  e.q_out = q2.as<float>(), e.k_cache = k2.as<float>(), e.v_cache = v2.as<float>();
                  e.heads = hs.heads, e.kv_heads = hs.kv_heads, e.d = hs.d;
                  qmr::cuda::gemv_qkv_rope(dw, dx.as<const TX>(), e, M, nullptr);
                  QMR_CUDA_CHECK(cudaDeviceSynchronize());
                  const char* names[] = {"q", "k cache", "v cache", "q (pairs)", "k cache (pairs)", "v cache (pairs)"};
                  const qmr::cuda::device_buffer* want[] = {&q1, &k1, &v1, &q1, &k1, &v1};
                  const qmr::cuda::device_buffer* got[] = {&q2, &k2, &v2, &q3, &k3, &v3};
                  for (int b = 0; b < 6; ++b) {
                    std::vector<std::uint32_t> hw(want[b]->size() / 4), hg(hw.size());
                    QMR_CUDA_CHECK(cudaMemcpy(hw.data(), want[b]->data(), want[b]->size(), cudaMemcpyDeviceToHost));
                    QMR_CUDA_CHECK(cudaMemcpy(hg.data(), got[b]->data(), got[b]->size(), cudaMemcpyDeviceToHost));
                    int bad = 0;
                    for (std::size_t i = 0; i < hw.size(); ++i)
                      if (hw[i] != hg[i] && ++bad <= 3) {
                        float fw, fg;
                        std::memcpy(&fw, &hw[i], 4), std::memcpy(&fg, &hg[i], 4);
                        CHECK(false, "%s %s %s heads %d/%d d %d cols %lld M=%d pos0 %d bias %d: %s[%zu] = %g, want %g",
                              b < 3 ? "gemv_qkv_rope" : "qkv_rope (pairs)", spec.str().c_str(), type_name<TX>(), hs.heads, hs.kv_heads, hs.d, static_cast<long long>(cols), M, pos0,
                              with_bias ? 1 : 0, names[b], i, static_cast<double>(fg), static_cast<double>(fw));
                      }
                  }
                  ++cases;
                };
                run(f16{});
                run(bf16{});
              }
            }
          }
      std::printf("gemv_qkv_rope %s: %d cases\n", failures == failures_before ? "ok  " : "FAIL", cases);
      CHECK(cases > 0, "gemv_qkv_rope ran no case");
      bool threw = false;
      try {  // 96 rows are not q, k and v of 2 + 2 x 1 heads of 16 (64 rows)
        const quant::qtensor q = random_qtensor(quant::format_spec::quantized(4, 128, true), 96, 128, r);
        const qmr::cuda::device_qtensor dw = qmr::cuda::upload(q.view(), nullptr);
        qmr::cuda::device_buffer dx(128 * 2), dq(64 * 4), dc(64 * 4), df(8 * 4), dp(4);
        qmr::cuda::qkv_rope_epilogue e;
        e.rope_cos = df.as<const float>(), e.rope_sin = df.as<const float>(), e.pos0 = dp.as<const std::int32_t>();
        e.q_out = dq.as<float>(), e.k_cache = dc.as<float>(), e.v_cache = dc.as<float>();
        e.heads = 2, e.kv_heads = 1, e.d = 16;
        qmr::cuda::gemv_qkv_rope(dw, dx.as<const f16>(), e, 1, nullptr);
      } catch (const qmr::error&) {
        threw = true;
      }
      CHECK(threw, "gemv_qkv_rope with rows that are not q, k and v did not throw");
    }

    // Errors come back as qmr::error, not as a crash or exit().
    {
      rng r2{7};
      const quant::qtensor q = random_qtensor(quant::format_spec::quantized(4, 128, false), 8, 128, r2);
      qmr::cuda::device_qtensor dw = qmr::cuda::upload(q.view(), nullptr);
      qmr::cuda::device_buffer dx(32 * 128 * sizeof(f16)), dy(32 * 8 * sizeof(float));
      for (int bad_m : {0, -3}) {
        bool threw = false;
        try {
          qmr::cuda::gemv(dw, dx.as<const f16>(), dy.as<float>(), bad_m, nullptr);
        } catch (const qmr::error&) {
          threw = true;
        }
        CHECK(threw, "gemv with M=%d did not throw", bad_m);
      }
      bool threw = false;
      try {
        qmr::cuda::gemv(dw, dx.as<const f16>() + 1, dy.as<float>(), 1, nullptr);  // misaligned activations
      } catch (const qmr::error&) {
        threw = true;
      }
      CHECK(threw, "gemv with misaligned x did not throw");
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  std::printf("%s: %d failures\n", failures ? "FAIL" : "ok", failures);
  return failures ? 1 : 0;
}
