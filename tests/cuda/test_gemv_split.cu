// GPU test: the split-K tensor-core GEMV (qmr::cuda::gemv_split) matches a float64 reference on fresh random data for 2/3/4/8-bit formats, symmetric and asymmetric, every group size and per-channel, ragged row counts, columns that are not whole 128-column quanta, shapes with one slice and with many (a few, and one band's 64), M in {1, 3, 8, 9, 16, 21} (two launches past 16; 9-16 tokens in split_wide's configuration where it applies, and for symmetric codes with 2 wide slices in split_pair's), f16 and f32 outputs, with outputs poisoned before each run; twice in a row per case, the second call's output equal to the first's bit for bit (the slice counters must reset; no sum depends on timing). gemv() over an upload with a split copy gives bit for bit the output of the kernel split_takes() names (split, tiled or lanes). Matrices sharing one workspace, called back to back, give bit for bit their outputs over workspaces of their own; a used shared workspace refuses a matrix that needs more. split_pair against split_wide bit for bit at 14336 x 4096 and 12288 x 2048 (QMR_GEMV_TEST_PAIR_ONLY=1: that alone; QMR_GEMV_TEST_QUICK=1 skips it). Exits 77 (skip) without a GPU.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <cuda_runtime.h>

#include "qmr/core/thread_pool.hpp"
#include "qmr/kernels/cuda/gemv.cuh"
#include "qmr/kernels/cuda/gemv_split.cuh"
#include "gemv_reference.hpp"
#include "gpu_check.hpp"

namespace {

using qmr::testing::gpu::failures;
using qmr::testing::gpu::random_qtensor;
using qmr::testing::gpu::rng;

using qmr::f16;
namespace quant = qmr::quant;

constexpr int max_m = 21;
constexpr int batches[] = {1, 3, 8, 9, 16, 21};
constexpr int batches_n = static_cast<int>(sizeof(batches) / sizeof(batches[0]));

struct stats {
  int runs = 0;
  int wide = 0, narrow = 0;  // shapes whose 9-16-token calls ran split_wide's configuration, and the layout's
  int pair[3] = {0, 0, 0};   // of the wide ones, those that ran split_pair's, by blocks a cluster (1 or 2)
  double worst = 0.0;      // max |err| / tol
  double worst_rms = 0.0;  // max over runs of ||y - ref|| / ||Σ|w·x|||
};

template <class TY>
void check_outputs(const quant::qtensor_view& w, const qmr::cuda::device_split& dw, const qmr::cuda::device_buffer& dx,
                   const std::vector<double>& y_ref, const std::vector<double>& abs_sum, stats& st) {
  const std::int64_t rows = w.rows();
  qmr::cuda::device_buffer dy(static_cast<std::size_t>(max_m * rows) * sizeof(TY));
  std::vector<TY> y(static_cast<std::size_t>(max_m * rows));
  // The decoded weights (code - z0) / z0 and the activations are exact f16, their
  // products exact in f32; the tensor cores' f32 sums, the group scaling and the
  // slice sums round at f32 (2^-24 per step, bounded by Σ|w x|), the f16 output once more.
  const double sum_rel = 1.0e-5;
  const double out_rel = std::is_same_v<TY, f16> ? 1.0e-3 : 0.0;
  const char* ty = std::is_same_v<TY, f16> ? "f16" : "f32";
  std::vector<std::vector<TY>> first(batches_n);  // the first call's output per batch
  for (int bi = 0; bi < batches_n; ++bi)
    for (int repeat = 0; repeat < 2; ++repeat) {
      const int M = batches[bi];
      QMR_CUDA_CHECK(cudaMemset(dy.data(), 0xff, dy.size()));  // poison: NaN in both output types
      qmr::cuda::gemv_split(dw, dx.as<const f16>(), dy.as<TY>(), M, nullptr);
      QMR_CUDA_CHECK(cudaDeviceSynchronize());
      QMR_CUDA_CHECK(cudaMemcpy(y.data(), dy.data(), dy.size(), cudaMemcpyDeviceToHost));
      ++st.runs;
      const std::string what = "split " + w.spec.str() + " -> " + ty + " [" + std::to_string(rows) + ", " + std::to_string(w.cols()) +
                               "] M=" + std::to_string(M) + " (call " + std::to_string(repeat + 1) + ", " +
                               std::to_string(dw.l.slices) + " slices)";
      const double rms = qmr::testing::gpu::compare_outputs(y, M, max_m, rows, y_ref, abs_sum, sum_rel, out_rel, what, st.worst);
      if (rms > st.worst_rms) st.worst_rms = rms;
      const std::size_t n = static_cast<std::size_t>(M * rows);
      if (repeat == 0) first[static_cast<std::size_t>(bi)].assign(y.begin(), y.begin() + static_cast<std::ptrdiff_t>(n));
      else if (std::memcmp(y.data(), first[static_cast<std::size_t>(bi)].data(), n * sizeof(TY)) != 0)
        CHECK(false, "%s: not bit for bit the first call's output", what.c_str());
    }
}

void check_shape(const quant::format_spec& spec, std::int64_t rows, std::int64_t cols, rng& r, qmr::thread_pool& pool,
                 stats& st) {
  const quant::qtensor q = random_qtensor(spec, rows, cols, r);
  const quant::qtensor_view w = q.view();
  const qmr::cuda::device_split dw = qmr::cuda::upload_split(w, nullptr);
  // The configurations upload_split stored (gemv_split's at 9-16 tokens) are the rules' on this device.
  const qmr::cuda::detail::split_wide_config& wide = dw.wide;
  const qmr::cuda::detail::split_pair_config& pair = dw.pair;
  const qmr::cuda::detail::split_wide_config wide_now = qmr::cuda::detail::split_wide(dw);
  const qmr::cuda::detail::split_pair_config pair_now = qmr::cuda::detail::split_pair(dw, wide_now);
  CHECK(wide.slices == wide_now.slices && wide.slice_cols == wide_now.slice_cols && wide.smem == wide_now.smem && pair.bands == pair_now.bands &&
            pair.clusters == pair_now.clusters && pair.smem == pair_now.smem,
        "split %s [%lld, %lld]: upload_split stored other 9-16-token configurations than split_wide and split_pair give", spec.str().c_str(),
        static_cast<long long>(rows), static_cast<long long>(cols));
  ++(wide.slices > 0 ? st.wide : st.narrow);
  if (pair.bands > 0) ++st.pair[pair.clusters];
  std::vector<f16> xa(static_cast<std::size_t>(max_m * cols));
  std::vector<float> xf(xa.size());
  for (std::size_t i = 0; i < xa.size(); ++i) {
    xa[i] = qmr::to_f16(r.uniform(-1.0f, 1.0f));
    xf[i] = qmr::to_float(xa[i]);
  }
  std::vector<double> y_ref, abs_sum;
  qmr::testing::gpu::reference_gemv(w, xf, max_m, pool, y_ref, abs_sum);
  qmr::cuda::device_buffer dx(xa.size() * sizeof(f16));
  QMR_CUDA_CHECK(cudaMemcpy(dx.data(), xa.data(), dx.size(), cudaMemcpyHostToDevice));
  check_outputs<float>(w, dw, dx, y_ref, abs_sum, st);
  check_outputs<f16>(w, dw, dx, y_ref, abs_sum, st);
}

template <class F>
bool throws(F&& f) {
  try {
    f();
  } catch (const qmr::error&) {
    return true;
  }
  return false;
}

// split_pair's kernel against split_wide's on one uploaded symmetric matrix at 16 tokens, f32 and f16 outputs: the
// same bits (the same sums added in the same order), mostly finite and nonzero, and gemv_split (which takes the pair
// configuration at 16 tokens) gives them too.
template <int Bits>
void pair_matches_wide(const qmr::cuda::device_split& dw, const qmr::cuda::detail::split_wide_config& wide,
                       const qmr::cuda::detail::split_pair_config& pair, const qmr::cuda::device_buffer& dx, const std::string& what) {
  namespace qc = qmr::cuda;
  namespace qd = qmr::cuda::detail;
  const std::int64_t rows = dw.rows();
  qd::split_args a = qd::split_make_args(dw, wide.slice_cols, wide.slices);
  a.m = 16;
  const auto* x = dx.as<const __half>();
  const auto compare = [&]<class TY>(const char* ty) {
    qc::device_buffer dy(static_cast<std::size_t>(16 * rows) * sizeof(TY));  // [16, rows]
    const auto run = [&](auto&& launch) {
      QMR_CUDA_CHECK(cudaMemset(dy.data(), 0xff, dy.size()));  // poison: NaN in both output types
      launch();
      QMR_CUDA_CHECK(cudaDeviceSynchronize());
      std::vector<TY> y(static_cast<std::size_t>(16 * rows));
      QMR_CUDA_CHECK(cudaMemcpy(y.data(), dy.data(), dy.size(), cudaMemcpyDeviceToHost));
      return y;
    };
    TY* y = dy.as<TY>();
    const std::vector<TY> by_wide = run([&] { qd::split_launch<Bits, 2, false, TY, true>(a, x, y, dw.l.bands, nullptr, false, wide.smem); });
    const std::vector<TY> by_pair = run([&] { qd::split_launch<Bits, 2, false, TY, true, 2>(a, x, y, pair.bands, nullptr, false, pair.smem); });
    const std::vector<TY> by_call = run([&] { qc::gemv_split(dw, dx.as<const f16>(), y, 16, nullptr); });
    int finite = 0;
    for (const TY& v : by_wide) {
      const float f = qmr::to_float(v);
      finite += std::isfinite(f) && std::fabs(f) > 1e-3f ? 1 : 0;
    }
    const std::size_t bytes = by_wide.size() * sizeof(TY);
    CHECK(finite > static_cast<int>(by_wide.size() * 9 / 10), "split_pair %s -> %s: only %d of %zu wide outputs finite and nonzero", what.c_str(), ty,
          finite, by_wide.size());
    CHECK(std::memcmp(by_wide.data(), by_pair.data(), bytes) == 0, "split_pair %s -> %s (%d bands, clusters of %d): not split_wide's bits",
          what.c_str(), ty, pair.bands, pair.clusters);
    CHECK(std::memcmp(by_pair.data(), by_call.data(), bytes) == 0, "split_pair %s -> %s: gemv_split at 16 tokens is not the pair kernel",
          what.c_str(), ty);
    std::printf("split_pair %-9s -> %s: %d bands, clusters of %d, %d B: %s\n", what.c_str(), ty, pair.bands, pair.clusters, pair.smem,
                std::memcmp(by_wide.data(), by_pair.data(), bytes) == 0 ? "the wide kernel's bits" : "DIFFERS");
  };
  compare.template operator()<float>("f32");
  compare.template operator()<f16>("f16");
}

// split_pair at the sizes it is for, which main's shape loop does not reach (x in two staging
// rounds, 16 groups a slice, 96-112 bands on a 132-SM GPU): its outputs are bit for bit
// split_wide's (the same sums in the same order) on 14336 x 4096 (2 slices of 2048) and
// 12288 x 2048 (2 of 1024), and, where split_pair_max_clusters allows clusters of 2, on
// 8192 x 8192 and 6912 x 4096 (4 slices); 16 tokens, f16 and f32 outputs, 2-, 4- and 8-bit codes.
void check_pair_full_size() {
  namespace qc = qmr::cuda;
  namespace qd = qmr::cuda::detail;
  rng r5{17};
  int pair_cases = 0, sm_count = 0;
  for (const auto& [rows, cols] : {std::pair<std::int64_t, std::int64_t>{14336, 4096}, std::pair<std::int64_t, std::int64_t>{12288, 2048},
                                   std::pair<std::int64_t, std::int64_t>{8192, 8192}, std::pair<std::int64_t, std::int64_t>{6912, 4096}})
    for (const quant::format_spec spec : {quant::format_spec::quantized(4, 128, true), quant::format_spec::quantized(2, 64, true),
                                          quant::format_spec::quantized(8, 128, true)}) {
      if (cols == 8192 || rows == 6912) {
        if (qd::split_pair_max_clusters < 2) continue;  // 4 wide slices: the pair kernel only in clusters of 2
      }
      const quant::qtensor q = random_qtensor(spec, rows, cols, r5);
      const qc::device_split dw = qc::upload_split(q.view(), nullptr);
      sm_count = dw.sm_count;
      const qd::split_wide_config& wide = dw.wide;
      const qd::split_pair_config& pair = dw.pair;
      if (pair.bands == 0) {  // another GPU (not 132 SMs with clusters): nothing to compare
        std::printf("split_pair %s [%lld, %lld]: no pair configuration on this GPU (%d wide slices)\n", spec.str().c_str(),
                    static_cast<long long>(rows), static_cast<long long>(cols), wide.slices);
        continue;
      }
      std::vector<f16> xh(static_cast<std::size_t>(16 * cols));
      for (auto& v : xh) v = qmr::to_f16(r5.uniform(-1.0f, 1.0f));
      qc::device_buffer dx(xh.size() * sizeof(f16));
      QMR_CUDA_CHECK(cudaMemcpy(dx.data(), xh.data(), dx.size(), cudaMemcpyHostToDevice));
      const std::string what = spec.str() + " [" + std::to_string(rows) + ", " + std::to_string(cols) + "]";
      switch (spec.bits) {
        case 2: pair_matches_wide<2>(dw, wide, pair, dx, what); break;
        case 4: pair_matches_wide<4>(dw, wide, pair, dx, what); break;
        case 8: pair_matches_wide<8>(dw, wide, pair, dx, what); break;
      }
      ++pair_cases;
    }
  // 112-167 SMs with an sm_90 block's shared memory (H100, H200) give 14336 x 4096 two wide slices and room for the
  // pair kernel's 189-197 KB: it must have run there.
  int device = 0, per_block = 0;
  QMR_CUDA_CHECK(cudaGetDevice(&device));
  QMR_CUDA_CHECK(cudaDeviceGetAttribute(&per_block, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  CHECK(pair_cases > 0 || sm_count < 112 || sm_count > 167 || per_block < 196864, "split_pair ran no full-size case on %d SMs (%d B a block)",
        sm_count, per_block);
  std::printf("split_pair against split_wide at full size: %d cases\n", pair_cases);
}

// split_takes names both kernels on the dispatch cases' shapes: the split kernel for long
// rows at 16 tokens and for a large matrix at 1 token, the tiled one for short rows and
// for long rows of a small matrix at 3 tokens.
bool qc_rule_both_ways() {
  namespace qc = qmr::cuda;
  return qc::split_takes(4, 67, qc::split_min_cols * 2, 16) && qc::split_takes(4, qc::split_min_elements / 2048, 2048, 1) &&
         !qc::split_takes(4, 203, 896, 16) && !qc::split_takes(4, 67, qc::split_min_cols * 2, 3);
}

}  // namespace

int main() {
  if (!qmr::testing::gpu::device_present()) return 77;
  try {
    qmr::testing::gpu::describe_device();
    qmr::thread_pool pool;
    rng r{20261203};
    // Rows: one, ragged tiles (67 = 4 tiles + 3), ragged bands (203 rows), many bands (9000),
    // more bands than a GPU of up to 156 SMs holds in one wave (40000: 157 bands), where the
    // 9-16-token calls keep the layout's configuration (split_wide does not apply).
    const std::int64_t row_counts[] = {1, 67, 203, 9000, 40000};
    // Columns: below one 128-column quantum, not whole quanta (48, 160, 320), two slice quanta, Qwen's 896 and
    // 4864 (several slices at 9000 rows), 4 slice quanta (1024: 4 wide slices for every group
    // size, split_pair's clusters of 2 where split_pair_max_clusters allows), 7 and 8 slices of
    // one quantum, a long row (many slices of one band).
    const std::int64_t col_counts[] = {16, 48, 160, 320, 512, 896, 1024, 1792, 2048, 4864, 16384};
    const bool quick = std::getenv("QMR_GEMV_TEST_QUICK") != nullptr;
    if (std::getenv("QMR_GEMV_TEST_PAIR_ONLY") != nullptr) {  // split_pair at full size alone (for the sanitizers)
      check_pair_full_size();
      if (failures) std::fprintf(stderr, "%d failures\n", failures);
      return failures ? 1 : 0;
    }
    int device = 0, clusters = 0;
    QMR_CUDA_CHECK(cudaGetDevice(&device));
    QMR_CUDA_CHECK(cudaDeviceGetAttribute(&clusters, cudaDevAttrClusterLaunch, device));
    for (int bits : {2, 3, 4, 8})
      for (int group : {32, 64, 128, 256, quant::per_channel})
        for (bool symmetric : {true, false}) {
          if (quick && !((bits == 2 && group == 64) || (bits == 4 && group == 128))) continue;
          const quant::format_spec spec = quant::format_spec::quantized(bits, group, symmetric);
          stats st;
          int n_shapes = 0;
          const int failures_before = failures;
          for (std::int64_t cols : col_counts) {
            if (group != quant::per_channel && cols % group != 0) continue;
            for (std::int64_t rows : row_counts) {
              if (rows == 40000 && cols != 512) continue;  // one shape of many bands (2 slices): the float64 reference's time
              if (rows * cols > 9000 * 896 && rows > 1 && !(rows == 67 && cols == 16384) && rows != 40000) continue;
              if (quick && !((rows == 67 && cols == 896) || (rows == 203 && cols == 320) || (rows == 67 && cols == 16384) ||
                             (rows == 40000 && cols == 512)))
                continue;
              ++n_shapes;
              check_shape(spec, rows, cols, r, pool, st);
            }
          }
          std::printf("%-8s %s: %d shapes (%d wide at 9-16 tokens, %d + %d of them pairs in clusters of 1 + 2), %d runs, worst error %.3f of "
                      "the bound, worst ||err||/||sum|wx||| %.2e\n",
                      spec.str().c_str(), failures == failures_before ? "ok  " : "FAIL", n_shapes, st.wide, st.pair[1], st.pair[2], st.runs,
                      st.worst, st.worst_rms);
          // The pair kernel takes symmetric formats' 2-slice wide configurations (and 4-slice ones in clusters of 2 where
          // split_pair_max_clusters allows and the GPU has clusters); the shapes include both (67 x 512: 2 slices;
          // 67 x 896 and 67 x 1024: 4).
          if (symmetric && !quick)
            CHECK(st.pair[1] > 0 && (st.pair[2] > 0) == (clusters && qmr::cuda::detail::split_pair_max_clusters >= 2),
                  "%s: the pair kernel ran %d shapes in clusters of 1 and %d of 2", spec.str().c_str(), st.pair[1], st.pair[2]);
          if (!symmetric) CHECK(st.pair[1] + st.pair[2] == 0, "%s: the pair kernel took an asymmetric format", spec.str().c_str());
          CHECK(st.wide > 0 && st.narrow > 0, "%s: the shapes ran only one 16-token configuration (%d wide, %d not)", spec.str().c_str(),
                st.wide, st.narrow);
        }

    // split_pair at the sizes it is for (left to QMR_GEMV_TEST_PAIR_ONLY runs in quick mode).
    if (!quick) check_pair_full_size();

    // gemv()'s choice: over an upload with lane and/or split copies it must give, bit for
    // bit, the output of the kernel the rule names (lanes at M = 1 where present, else
    // split where split_takes, else tiled), on shapes either side of its thresholds.
    {
      rng r3{11};
      int dispatch_cases = 0;
      for (const quant::format_spec spec : {quant::format_spec::quantized(4, 128, true), quant::format_spec::quantized(8, 64, false),
                                            quant::format_spec::quantized(2, 64, false)})
        for (const auto& [rows, cols] : {std::pair<std::int64_t, std::int64_t>{67, qmr::cuda::split_min_cols * 2},
                                         std::pair<std::int64_t, std::int64_t>{203, 896},
                                         std::pair<std::int64_t, std::int64_t>{qmr::cuda::split_min_elements / 2048, 2048}}) {
          const quant::qtensor q = random_qtensor(spec, rows, cols, r3);
          namespace qc = qmr::cuda;
          const qc::device_qtensor tiled = qc::upload(q.view(), nullptr, false);
          const qc::device_qtensor with_split = qc::upload(q.view(), nullptr, qc::upload_layouts{.lanes = false, .split = true});
          const qc::device_qtensor with_both = qc::upload(q.view(), nullptr, qc::upload_layouts{.lanes = true, .split = true});
          CHECK(with_split.has_split() && with_both.has_split() && !tiled.has_split(), "%s: split copies not uploaded as asked",
                spec.str().c_str());
          std::vector<f16> xh(static_cast<std::size_t>(16 * cols));
          for (auto& v : xh) v = qmr::to_f16(r3.uniform(-1.0f, 1.0f));
          qc::device_buffer dx(xh.size() * sizeof(f16)), dy(static_cast<std::size_t>(16 * rows) * sizeof(float));
          QMR_CUDA_CHECK(cudaMemcpy(dx.data(), xh.data(), dx.size(), cudaMemcpyHostToDevice));
          const auto run = [&](auto&& call) {
            QMR_CUDA_CHECK(cudaMemset(dy.data(), 0xff, dy.size()));
            call();
            QMR_CUDA_CHECK(cudaDeviceSynchronize());
            std::vector<float> y(static_cast<std::size_t>(16 * rows));
            QMR_CUDA_CHECK(cudaMemcpy(y.data(), dy.data(), dy.size(), cudaMemcpyDeviceToHost));
            return y;
          };
          for (int M : {1, 3, 8, 9, 12, 16}) {
            const std::size_t n = static_cast<std::size_t>(M * rows);
            const auto x = dx.as<const f16>();
            const auto y = dy.as<float>();
            const bool split = qc::split_takes(spec.bits, rows, cols, M);
            const std::vector<float> want = split ? run([&] { qc::gemv_split(with_split.split, x, y, M, nullptr); })
                                                  : run([&] { qc::gemv(tiled, x, y, M, nullptr); });
            const std::vector<float> got = run([&] { qc::gemv(with_split, x, y, M, nullptr); });
            CHECK(std::memcmp(want.data(), got.data(), n * sizeof(float)) == 0,
                  "%s [%lld, %lld] M=%d: gemv() over a split copy differs from the %s kernel", spec.str().c_str(),
                  static_cast<long long>(rows), static_cast<long long>(cols), M, split ? "split" : "tiled");
            if (M == 1 && with_both.has_lanes()) {
              const std::vector<float> lanes = run([&] { qc::gemv_lanes(with_both, x, y, 1, nullptr); });
              const std::vector<float> both = run([&] { qc::gemv(with_both, x, y, 1, nullptr); });
              CHECK(std::memcmp(lanes.data(), both.data(), n * sizeof(float)) == 0,
                    "%s [%lld, %lld] M=1: gemv() over lane and split copies is not the lane kernel", spec.str().c_str(),
                    static_cast<long long>(rows), static_cast<long long>(cols));
            }
            ++dispatch_cases;
          }
        }
      // Both branches of the rule were exercised.
      CHECK(qc_rule_both_ways(), "split_takes does not name both kernels on the dispatch shapes");
      std::printf("gemv() dispatch: %d cases\n", dispatch_cases);
    }

    // A shared workspace: three matrices of different rows and slice counts uploaded onto
    // one, the largest last (it grows before its first GEMV). Called back to back on one
    // stream, each gives bit for bit its output over a workspace of its own. Once used, the
    // workspace takes a matrix that fits and refuses one that needs more.
    {
      namespace qc = qmr::cuda;
      rng r4{13};
      const quant::format_spec spec = quant::format_spec::quantized(4, 128, true);
      const std::pair<std::int64_t, std::int64_t> shapes[] = {{67, 2048}, {203, 4864}, {1000, 16384}};
      const auto shared = std::make_shared<qc::split_workspace>();
      std::vector<quant::qtensor> qs;
      std::vector<qc::device_split> own, on_shared;
      std::int64_t need_sums = 0, need_counters = 0, max_rows = 0, max_cols = 0;
      for (const auto& [rows, cols] : shapes) {
        qs.push_back(random_qtensor(spec, rows, cols, r4));
        own.push_back(qc::upload_split(qs.back().view(), nullptr));
        on_shared.push_back(qc::upload_split(qs.back().view(), nullptr, shared));
        const qc::device_split& d = on_shared.back();
        CHECK(d.l.slices > 1 && d.ws == shared && own.back().ws && own.back().ws != shared,
              "[%lld, %lld]: %d slices, not on the shared workspace as asked", static_cast<long long>(rows),
              static_cast<long long>(cols), d.l.slices);
        need_sums = std::max(need_sums, d.workspace_sums());
        need_counters = std::max(need_counters, d.workspace_counters());
        max_rows = std::max(max_rows, rows);
        max_cols = std::max(max_cols, cols);
      }
      CHECK(shared->sum_count() == need_sums && shared->counter_count() == need_counters,
            "the shared workspace holds %lld sums and %lld counters, the largest matrix needs %lld and %lld",
            static_cast<long long>(shared->sum_count()), static_cast<long long>(shared->counter_count()),
            static_cast<long long>(need_sums), static_cast<long long>(need_counters));
      std::vector<f16> xh(static_cast<std::size_t>(16 * max_cols));
      for (auto& v : xh) v = qmr::to_f16(r4.uniform(-1.0f, 1.0f));
      qc::device_buffer dx(xh.size() * sizeof(f16));
      QMR_CUDA_CHECK(cudaMemcpy(dx.data(), xh.data(), dx.size(), cudaMemcpyHostToDevice));
      const std::size_t slot = static_cast<std::size_t>(16 * max_rows);  // one output [16][rows] a call
      qc::device_buffer dy_own(4 * slot * sizeof(float)), dy_shared(4 * slot * sizeof(float));
      const int order[] = {0, 1, 2, 0};  // the first matrix again after the largest
      for (int M : {1, 9, 16}) {
        QMR_CUDA_CHECK(cudaMemset(dy_own.data(), 0xff, dy_own.size()));
        QMR_CUDA_CHECK(cudaMemset(dy_shared.data(), 0xff, dy_shared.size()));
        for (int c = 0; c < 4; ++c) {
          const std::size_t i = static_cast<std::size_t>(order[c]);
          qc::gemv_split(own[i], dx.as<const f16>(), dy_own.as<float>() + c * slot, M, nullptr);
          QMR_CUDA_CHECK(cudaDeviceSynchronize());
        }
        for (int c = 0; c < 4; ++c)  // back to back: no synchronization between matrices
          qc::gemv_split(on_shared[static_cast<std::size_t>(order[c])], dx.as<const f16>(), dy_shared.as<float>() + c * slot, M, nullptr);
        QMR_CUDA_CHECK(cudaDeviceSynchronize());
        std::vector<float> a(4 * slot), b(4 * slot);
        QMR_CUDA_CHECK(cudaMemcpy(a.data(), dy_own.data(), dy_own.size(), cudaMemcpyDeviceToHost));
        QMR_CUDA_CHECK(cudaMemcpy(b.data(), dy_shared.data(), dy_shared.size(), cudaMemcpyDeviceToHost));
        for (int c = 0; c < 4; ++c) {
          const std::int64_t rows = shapes[order[c]].first;
          const std::size_t n = static_cast<std::size_t>(M * rows), at = static_cast<std::size_t>(c) * slot;
          int finite = 0;
          for (std::size_t k = 0; k < n; ++k) finite += std::isfinite(a[at + k]) ? 1 : 0;
          CHECK(finite == static_cast<int>(n) && std::memcmp(a.data() + at, b.data() + at, n * sizeof(float)) == 0,
                "call %d ([%lld, %lld], M=%d): over the shared workspace not bit for bit the output over its own (%d of %zu finite)",
                c, static_cast<long long>(rows), static_cast<long long>(shapes[order[c]].second), M, finite, n);
        }
      }
      const quant::qtensor fits = random_qtensor(spec, 67, 2048, r4);
      const quant::qtensor larger = random_qtensor(spec, 9000, 2048, r4);  // 8 slices x 16 x 9008 sums: more than the largest above
      CHECK(!throws([&] { static_cast<void>(qc::upload_split(fits.view(), nullptr, shared)); }),
            "a used shared workspace refused a matrix that fits");
      CHECK(throws([&] { static_cast<void>(qc::upload_split(larger.view(), nullptr, shared)); }),
            "a used shared workspace took a matrix that needs more than it holds");
      const qc::device_qtensor via_upload = qc::upload(fits.view(), nullptr, qc::upload_layouts{.lanes = false, .split = true, .split_ws = shared});
      CHECK(via_upload.split.ws == shared, "upload(): upload_layouts::split_ws not used");
      std::printf("shared split workspace: %lld sums, %lld counters for 3 matrices (their own: %lld bytes, shared: %lld)\n",
                  static_cast<long long>(shared->sum_count()), static_cast<long long>(shared->counter_count()),
                  static_cast<long long>(own[0].workspace_bytes() + own[1].workspace_bytes() + own[2].workspace_bytes()),
                  static_cast<long long>(shared->bytes()));
    }

    // Formats without a split layout, bad batches and misaligned activations are errors.
    rng r2{7};
    for (const quant::format_spec spec : {quant::format_spec::quantized(6, 128, false), quant::format_spec::quantized(5, 128, true)}) {
      const quant::qtensor q = random_qtensor(spec, 8, 128, r2);
      CHECK(throws([&] { static_cast<void>(qmr::cuda::upload_split(q.view(), nullptr)); }), "%s: upload_split did not throw",
            spec.str().c_str());
    }
    const quant::qtensor q = random_qtensor(quant::format_spec::quantized(4, 128, true), 8, 128, r2);
    const qmr::cuda::device_split dw = qmr::cuda::upload_split(q.view(), nullptr);
    qmr::cuda::device_buffer dx(16 * 128 * sizeof(f16)), dy(16 * 8 * sizeof(float));
    CHECK(throws([&] { qmr::cuda::gemv_split(dw, dx.as<const f16>(), dy.as<float>(), 0, nullptr); }), "M=0 did not throw");
    CHECK(throws([&] { qmr::cuda::gemv_split(dw, dx.as<const f16>() + 1, dy.as<float>(), 1, nullptr); }),
          "misaligned x did not throw");
    CHECK(throws([&] { qmr::cuda::gemv_split(qmr::cuda::device_split{}, dx.as<const f16>(), dy.as<float>(), 1, nullptr); }),
          "an empty tensor did not throw");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  std::printf("%s: %d failures\n", failures ? "FAIL" : "ok", failures);
  return failures ? 1 : 0;
}
