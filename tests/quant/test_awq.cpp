// AWQ scale and clip search: beats RTN on salient-channel inputs for every format, α = 0 is RTN, errors match a double-precision reference, folding is exact, clipping stays in its group.
#include <catch2/catch.hpp>

#include <chrono>
#include <ctime>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "../random.hpp"
#include "../sanitizer.hpp"
#include "qmr/quant/awq.hpp"
#include "qmr/quant/rtn.hpp"

using namespace qmr::quant;
using qmr::matrix_view;

namespace {

using qmr::testing::fresh_seed;

// Calibration inputs in the AWQ setting: x [n, cols] = diag-scaled correlated
// features. Tokens share 8 latent factors (plus noise and a per-channel offset),
// and a few salient channels carry 10-40x the magnitude of the rest, as the
// outlier channels of LLM activations do.
struct calibration {
  std::vector<float> x;         // [n, cols]
  std::vector<float> abs_mean;  // [cols] mean |x| over the n tokens
  std::int64_t n = 0, cols = 0;
  matrix_view<const float> view() const { return {x.data(), n, cols}; }
};

calibration make_calibration(std::int64_t n, std::int64_t cols, std::uint32_t seed, int n_salient = 6) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  constexpr int factors = 8;
  std::vector<float> v(static_cast<std::size_t>(factors * cols));  // [factors, cols] loadings
  for (float& e : v) e = normal(rng) / std::sqrt(static_cast<float>(factors));
  std::vector<float> magnitude(static_cast<std::size_t>(cols)), offset(static_cast<std::size_t>(cols));  // [cols]
  for (std::int64_t j = 0; j < cols; ++j) {
    magnitude[static_cast<std::size_t>(j)] = std::exp(0.3f * normal(rng));
    offset[static_cast<std::size_t>(j)] = 0.5f * normal(rng);
  }
  std::uniform_int_distribution<std::int64_t> pick(0, cols - 1);
  std::uniform_real_distribution<float> boost(10.0f, 40.0f);
  for (int i = 0; i < n_salient; ++i) magnitude[static_cast<std::size_t>(pick(rng))] *= boost(rng);
  calibration c;
  c.n = n;
  c.cols = cols;
  c.x.resize(static_cast<std::size_t>(n * cols));
  c.abs_mean.assign(static_cast<std::size_t>(cols), 0.0f);
  std::vector<double> sum(static_cast<std::size_t>(cols), 0.0);
  float u[factors];
  for (std::int64_t t = 0; t < n; ++t) {
    for (float& e : u) e = normal(rng);
    for (std::int64_t j = 0; j < cols; ++j) {
      float shared = 0;
      for (int f = 0; f < factors; ++f) shared += u[f] * v[static_cast<std::size_t>(f * cols + j)];
      const float value = magnitude[static_cast<std::size_t>(j)] *
                          (0.8f * shared + 0.6f * normal(rng) + offset[static_cast<std::size_t>(j)]);
      c.x[static_cast<std::size_t>(t * cols + j)] = value;
      sum[static_cast<std::size_t>(j)] += std::fabs(value);
    }
  }
  for (std::int64_t j = 0; j < cols; ++j)
    c.abs_mean[static_cast<std::size_t>(j)] = static_cast<float>(sum[static_cast<std::size_t>(j)] / static_cast<double>(n));
  return c;
}

// ||X Wᵀ − X_q Ŵᵀ||² in double, straight from the definition: X_q is X, or X with
// its columns divided by `s` (the folded form); Ŵ is `w_hat` [rows, cols].
double output_error(const calibration& c, const std::vector<float>& w, const std::vector<float>& w_hat,
                    const std::vector<float>& s = {}) {
  const std::int64_t rows = static_cast<std::int64_t>(w.size()) / c.cols;
  double total = 0;
  std::vector<double> xq(static_cast<std::size_t>(c.cols));  // [cols] one token as the quantized linear sees it
  for (std::int64_t t = 0; t < c.n; ++t) {
    const float* xt = c.x.data() + t * c.cols;
    for (std::int64_t j = 0; j < c.cols; ++j)
      xq[static_cast<std::size_t>(j)] = s.empty() ? xt[j] : static_cast<double>(xt[j] / s[static_cast<std::size_t>(j)]);
    for (std::int64_t r = 0; r < rows; ++r) {
      const float* wr = w.data() + r * c.cols;
      const float* qr = w_hat.data() + r * c.cols;
      double y = 0, yq = 0;
      for (std::int64_t j = 0; j < c.cols; ++j) {
        y += static_cast<double>(xt[j]) * wr[j];
        yq += xq[static_cast<std::size_t>(j)] * qr[j];
      }
      total += (y - yq) * (y - yq);
    }
  }
  return total;
}

// Ŵ = dequantize(quantize_rtn(W)), the weight the runtime multiplies with.
std::vector<float> rtn_round_trip(const std::vector<float>& w, std::int64_t cols, const format_spec& spec) {
  const std::int64_t rows = static_cast<std::int64_t>(w.size()) / cols;
  const qtensor q = quantize_rtn({w.data(), rows, cols}, spec);
  std::vector<float> out(w.size());
  dequantize(q.view(), {out.data(), rows, cols});
  return out;
}

std::vector<float> scale_columns(std::vector<float> m, std::int64_t cols, const std::vector<float>& s, bool divide) {
  for (std::size_t i = 0; i < m.size(); ++i) {
    const float sj = s[i % static_cast<std::size_t>(cols)];
    m[i] = divide ? m[i] / sj : m[i] * sj;
  }
  return m;
}

std::vector<matrix_view<const float>> views(const std::vector<std::vector<float>>& ws, std::int64_t cols) {
  std::vector<matrix_view<const float>> v;
  for (const auto& w : ws) v.push_back({w.data(), static_cast<std::int64_t>(w.size()) / cols, cols});
  return v;
}

}  // namespace

TEST_CASE("AWQ scales + clip beat RTN's calibrated output error for every bit-width, group size and symmetry",
          "[awq]") {
  qmr::thread_pool pool(2);
  constexpr std::int64_t cols = 256, n = 512;
  const std::int64_t rows[] = {96, 64};  // two linears reading x, as gate and up do
  const int groups[] = {32, 64, 128, per_channel};
  for (int bits : {2, 3, 4, 5, 6, 8})
    for (int gi = 0; gi < 4; ++gi)
      for (bool sym : {false, true}) {
        if (!qmr::testing::sweep_runs(bits, gi, 4)) continue;
        const auto spec = format_spec::quantized(bits, groups[gi], sym);
        const std::uint32_t seed = fresh_seed();
        INFO(spec.str() << " seed " << seed);
        const calibration c = make_calibration(n, cols, seed);
        std::vector<std::vector<float>> ws;
        for (std::size_t i = 0; i < 2; ++i)
          ws.push_back(qmr::testing::gaussian(static_cast<std::size_t>(rows[i] * cols), seed + 1 + static_cast<std::uint32_t>(i)));
        const auto wv = views(ws, cols);

        const awq_scale_result res = awq_search_scales(wv, c.view(), c.abs_mean, spec, {}, &pool);
        REQUIRE(res.scales.size() == static_cast<std::size_t>(cols));
        REQUIRE(res.errors.size() == 20);
        REQUIRE(res.errors[0] == res.error_rtn);
        REQUIRE(res.error_best <= res.error_rtn);
        for (double e : res.errors) REQUIRE(res.error_best <= e);
        for (float s : res.scales) REQUIRE((std::isfinite(s) && s > 0.0f));

        // The search's RTN error is the definition's, to f32 GEMM rounding.
        double rtn = 0;
        for (const auto& w : ws) rtn += output_error(c, w, rtn_round_trip(w, cols, spec));
        REQUIRE(res.error_rtn == Approx(rtn).epsilon(1e-3));

        // The full pipeline: scale, clip on the scaled inputs, quantize, run on x / s.
        const std::vector<float> xs = scale_columns(c.x, cols, res.scales, true);
        double awq = 0, before_clip = 0, after_clip = 0;
        for (const auto& w : ws) {
          std::vector<float> w_scaled = scale_columns(w, cols, res.scales, false);
          const auto [before, after] = awq_clip({w_scaled.data(), static_cast<std::int64_t>(w.size()) / cols, cols},
                                                {xs.data(), n, cols}, spec, {}, &pool);
          REQUIRE(after <= before);
          before_clip += before;
          after_clip += after;
          awq += output_error(c, w, rtn_round_trip(w_scaled, cols, spec), res.scales);
        }
        // awq_clip's "before" is the scaled search's best error seen from the folded side.
        REQUIRE(before_clip == Approx(res.error_best).epsilon(1e-3));
        REQUIRE(awq == Approx(after_clip).epsilon(1e-3));
        INFO("RTN " << rtn << " AWQ scales " << res.error_best << " (alpha " << res.alpha << ") + clip " << awq);
        // Salient channels make the gain large at every width; 0.9 keeps it from being noise.
        REQUIRE(awq < 0.9 * rtn);
        // ... and the scales alone do (the clip search could hide a broken scale search).
        REQUIRE(res.error_best < 0.9 * res.error_rtn);
        REQUIRE(res.alpha > 0.0f);
      }
}

TEST_CASE("alpha = 0 is plain RTN: s = 1 exactly and error_best = error_rtn", "[awq]") {
  const std::uint32_t seed = fresh_seed();
  INFO("seed " << seed);
  const calibration c = make_calibration(200, 128, seed);
  const auto w = qmr::testing::gaussian(std::size_t{48} * 128, seed + 1);
  const matrix_view<const float> wv[] = {{w.data(), 48, 128}};
  awq_options only_zero;
  only_zero.grid = 1;  // α ∈ {0}
  for (bool sym : {false, true}) {
    const auto spec = format_spec::quantized(4, 32, sym);
    const awq_scale_result res = awq_search_scales(wv, c.view(), c.abs_mean, spec, only_zero);
    REQUIRE(res.alpha == 0.0f);
    for (float s : res.scales) REQUIRE(s == 1.0f);
    REQUIRE(res.error_best == res.error_rtn);
    REQUIRE(res.errors.size() == 1);
    // The default grid starts with the same α = 0 evaluation.
    const awq_scale_result full = awq_search_scales(wv, c.view(), c.abs_mean, spec);
    REQUIRE(full.error_rtn == res.error_rtn);
    REQUIRE(full.error_best <= full.error_rtn);
  }
}

TEST_CASE("every alpha's error matches the double-precision definition, in the Gram and the direct form", "[awq]") {
  constexpr std::int64_t cols = 128;
  // n > cols takes the Gram form (XᵀX), n <= cols the direct X·Dᵀ form.
  for (std::int64_t n : {64, 128, 400}) {
    const std::uint32_t seed = fresh_seed();
    INFO("n " << n << " seed " << seed);
    const calibration c = make_calibration(n, cols, seed);
    const auto w = qmr::testing::student_t(std::size_t{40} * cols, seed + 1);
    const matrix_view<const float> wv[] = {{w.data(), 40, cols}};
    const auto spec = format_spec::quantized(3, 64, false);
    awq_options opt;
    opt.grid = 5;
    const awq_scale_result res = awq_search_scales(wv, c.view(), c.abs_mean, spec, opt);
    for (int k = 0; k < opt.grid; ++k) {
      const float alpha = static_cast<float>(k) / 5.0f;
      std::vector<float> s(cols);
      double lo = 1e300, hi = 0;
      for (std::int64_t j = 0; j < cols; ++j) {
        s[static_cast<std::size_t>(j)] = std::max(std::pow(c.abs_mean[static_cast<std::size_t>(j)], alpha), 1e-4f);
        lo = std::min(lo, static_cast<double>(s[static_cast<std::size_t>(j)]));
        hi = std::max(hi, static_cast<double>(s[static_cast<std::size_t>(j)]));
      }
      for (float& v : s) v = static_cast<float>(v / std::sqrt(lo * hi));
      const double expected = output_error(c, w, rtn_round_trip(scale_columns(w, cols, s, false), cols, spec), s);
      INFO("alpha " << alpha);
      REQUIRE(res.errors[static_cast<std::size_t>(k)] == Approx(expected).epsilon(1e-3));
      if (alpha == res.alpha) {
        for (std::int64_t j = 0; j < cols; ++j)
          REQUIRE(res.scales[static_cast<std::size_t>(j)] == s[static_cast<std::size_t>(j)]);
      }
    }
  }
}

TEST_CASE("folding: (W·diag(s)) applied to x / s equals W x to float tolerance", "[awq]") {
  const std::uint32_t seed = fresh_seed();
  INFO("seed " << seed);
  constexpr std::int64_t cols = 128, rows = 32;
  const calibration c = make_calibration(64, cols, seed);
  const auto w = qmr::testing::gaussian(static_cast<std::size_t>(rows * cols), seed + 1);
  const matrix_view<const float> wv[] = {{w.data(), rows, cols}};
  const awq_scale_result res = awq_search_scales(wv, c.view(), c.abs_mean, format_spec::quantized(4, 128, true));
  REQUIRE(res.alpha > 0.0f);
  const std::vector<float> ws = scale_columns(w, cols, res.scales, false);
  const std::vector<float> xs = scale_columns(c.x, cols, res.scales, true);
  for (std::int64_t t = 0; t < c.n; ++t)
    for (std::int64_t r = 0; r < rows; ++r) {
      float y = 0, y_folded = 0, magnitude = 0;
      for (std::int64_t j = 0; j < cols; ++j) {
        y += c.x[static_cast<std::size_t>(t * cols + j)] * w[static_cast<std::size_t>(r * cols + j)];
        y_folded += xs[static_cast<std::size_t>(t * cols + j)] * ws[static_cast<std::size_t>(r * cols + j)];
        magnitude += std::fabs(c.x[static_cast<std::size_t>(t * cols + j)] * w[static_cast<std::size_t>(r * cols + j)]);
      }
      // Each product gains at most 2 ulps from the folding; the sums round in the same order.
      REQUIRE(std::fabs(y - y_folded) <= 1e-5f * magnitude);
    }
}

TEST_CASE("more calibration rows than max_tokens: an even subsample, the same as passing it", "[awq]") {
  const std::uint32_t seed = fresh_seed();
  INFO("seed " << seed);
  constexpr std::int64_t cols = 128, n = 1000, keep = 300;
  const calibration c = make_calibration(n, cols, seed);
  std::vector<float> sub(static_cast<std::size_t>(keep * cols));  // [keep, cols] rows floor(i n / keep)
  for (std::int64_t i = 0; i < keep; ++i)
    std::copy_n(c.x.data() + (i * n / keep) * cols, cols, sub.data() + i * cols);
  const auto w = qmr::testing::gaussian(std::size_t{24} * cols, seed + 1);
  const matrix_view<const float> wv[] = {{w.data(), 24, cols}};
  awq_options opt;
  opt.max_tokens = keep;
  opt.grid = 8;
  const auto spec = format_spec::quantized(3, 32, true);
  const awq_scale_result a = awq_search_scales(wv, c.view(), c.abs_mean, spec, opt);
  const awq_scale_result b = awq_search_scales(wv, {sub.data(), keep, cols}, c.abs_mean, spec, opt);
  REQUIRE(a.errors == b.errors);
  REQUIRE(a.scales == b.scales);

  std::vector<float> w1 = w, w2 = w;
  const auto r1 = awq_clip({w1.data(), 24, cols}, c.view(), spec, opt);
  const auto r2 = awq_clip({w2.data(), 24, cols}, {sub.data(), keep, cols}, spec, opt);
  REQUIRE(r1 == r2);
  REQUIRE(w1 == w2);
}

TEST_CASE("awq_clip never increases the output error and clamps each group to its own shrunk range", "[awq][clip]") {
  qmr::thread_pool pool(2);
  constexpr std::int64_t cols = 256, rows = 48;
  awq_options opt;
  std::vector<float> ratios;  // AWQ's defaults: 1, 0.95, ..., 0.55
  for (int k = 0; k < 10; ++k) ratios.push_back(1.0f - static_cast<float>(k) / 20.0f);
  int clipped_groups = 0;
  const int groups[] = {32, 64, 128, per_channel};
  for (int bits : {2, 3, 4, 5, 6, 8})
    for (int gi = 0; gi < 4; ++gi)
      for (bool sym : {false, true}) {
        if (!qmr::testing::sweep_runs(bits, gi, 4)) continue;
        const int group = groups[gi];
        const auto spec = format_spec::quantized(bits, group, sym);
        const std::uint32_t seed = fresh_seed();
        INFO(spec.str() << " seed " << seed);
        const calibration c = make_calibration(300, cols, seed, 3);
        // Heavy tails: outlier weights are what clipping trades away.
        const std::vector<float> w0 = qmr::testing::student_t(static_cast<std::size_t>(rows * cols), seed + 1);
        std::vector<float> w = w0;
        const auto [before, after] = awq_clip({w.data(), rows, cols}, c.view(), spec, opt, &pool);
        REQUIRE(after <= before);
        REQUIRE(before == Approx(output_error(c, w0, rtn_round_trip(w0, cols, spec))).epsilon(1e-3));
        REQUIRE(after == Approx(output_error(c, w0, rtn_round_trip(w, cols, spec))).epsilon(1e-3));

        const std::int64_t g_size = group == per_channel ? cols : group;
        for (std::int64_t r = 0; r < rows; ++r)
          for (std::int64_t g0 = 0; g0 < cols; g0 += g_size) {
            const float* a = w0.data() + r * cols + g0;
            const float* b = w.data() + r * cols + g0;
            float lo = a[0], hi = a[0];
            for (std::int64_t j = 1; j < g_size; ++j) {
              lo = std::min(lo, a[j]);
              hi = std::max(hi, a[j]);
            }
            // The group is clamp(a, bounds(ratio)) for one candidate ratio.
            bool matched = false;
            for (float ratio : ratios) {
              const float amax = std::max(-lo, hi);
              const float b_lo = sym ? -ratio * amax : ratio * lo, b_hi = sym ? ratio * amax : ratio * hi;
              bool all = true;
              for (std::int64_t j = 0; j < g_size && all; ++j) all = b[j] == std::clamp(a[j], b_lo, b_hi);
              if (all) {
                matched = true;
                break;
              }
            }
            INFO("row " << r << " group at column " << g0);
            REQUIRE(matched);
            bool changed = false;
            for (std::int64_t j = 0; j < g_size; ++j) changed = changed || a[j] != b[j];
            clipped_groups += changed;
          }
        // Per-channel ranges of t(3) weights are outlier-dominated: at 2-3 bits clipping must pay.
        if (group == per_channel && bits <= 3) REQUIRE(after < 0.95 * before);
      }
  REQUIRE(clipped_groups > 0);
}

TEST_CASE("awq_clip with clip_search off measures and leaves the weight alone", "[awq][clip]") {
  const std::uint32_t seed = fresh_seed();
  INFO("seed " << seed);
  const calibration c = make_calibration(100, 64, seed);
  const std::vector<float> w0 = qmr::testing::student_t(std::size_t{16} * 64, seed + 1);
  std::vector<float> w = w0;
  awq_options off;
  off.clip_search = false;
  const auto [before, after] = awq_clip({w.data(), 16, 64}, c.view(), format_spec::quantized(2, 32, false), off);
  REQUIRE(before == after);
  REQUIRE(w == w0);
  REQUIRE(before == Approx(output_error(c, w0, rtn_round_trip(w0, 64, format_spec::quantized(2, 32, false)))).epsilon(1e-3));
}

TEST_CASE("AWQ input errors name what is wrong", "[awq]") {
  const calibration c = make_calibration(40, 64, 7);
  std::vector<float> w = qmr::testing::gaussian(std::size_t{8} * 64, 8);
  const auto spec = format_spec::quantized(4, 32, false);
  const matrix_view<const float> ok[] = {{w.data(), 8, 64}};
  using Catch::Contains;

  REQUIRE_THROWS_WITH(awq_search_scales({}, c.view(), c.abs_mean, spec), Contains("no weights"));
  const matrix_view<const float> narrow[] = {{w.data(), 8, 64}, {w.data(), 16, 32}};
  REQUIRE_THROWS_WITH(awq_search_scales(narrow, c.view(), c.abs_mean, spec),
                      Contains("linear 1 [16, 32]") && Contains("[40, 64]"));
  REQUIRE_THROWS_WITH(awq_search_scales(ok, c.view(), std::span<const float>(c.abs_mean).first(10), spec),
                      Contains("x_abs_mean has 10 entries") && Contains("64 columns"));
  std::vector<float> mean = c.abs_mean;
  mean[5] = -1.0f;
  REQUIRE_THROWS_WITH(awq_search_scales(ok, c.view(), mean, spec), Contains("x_abs_mean[5]"));
  REQUIRE_THROWS_WITH(awq_search_scales(ok, c.view(), c.abs_mean, format_spec::dense_of(qmr::dtype::f32)),
                      Contains("not a quantized format"));
  REQUIRE_THROWS_WITH(awq_search_scales(ok, c.view(), c.abs_mean, format_spec::quantized(4, 128, false)),
                      Contains("linear 0") && Contains("multiple of 128"));
  awq_options bad;
  bad.grid = 0;
  REQUIRE_THROWS_WITH(awq_search_scales(ok, c.view(), c.abs_mean, spec, bad), Contains("grid must be positive"));
  bad = {};
  bad.max_tokens = 0;
  REQUIRE_THROWS_WITH(awq_search_scales(ok, c.view(), c.abs_mean, spec, bad), Contains("max_tokens"));

  std::vector<float> x = c.x;
  x[static_cast<std::size_t>(3 * 64 + 9)] = NAN;
  REQUIRE_THROWS_WITH(awq_search_scales(ok, {x.data(), 40, 64}, c.abs_mean, spec),
                      Contains("calibration input x") && Contains("non-finite") && Contains("(3, 9)"));
  std::vector<float> w_inf = w;
  w_inf[70] = INFINITY;
  const matrix_view<const float> inf_view[] = {{w_inf.data(), 8, 64}};
  REQUIRE_THROWS_WITH(awq_search_scales(inf_view, c.view(), c.abs_mean, spec),
                      Contains("linear 0") && Contains("non-finite") && Contains("(1, 6)"));
  std::vector<float> w_huge = w;
  w_huge[70] = 3e9f;
  const matrix_view<const float> huge_view[] = {{w_huge.data(), 8, 64}};
  REQUIRE_THROWS_WITH(awq_search_scales(huge_view, c.view(), c.abs_mean, spec),
                      Contains("linear 0, row 1, group 0") && Contains("overflows f16"));

  REQUIRE_THROWS_WITH(awq_clip({w.data(), 16, 32}, c.view(), spec), Contains("[16, 32]") && Contains("[40, 64]"));
  REQUIRE_THROWS_WITH(awq_clip({w_inf.data(), 8, 64}, c.view(), spec), Contains("non-finite") && Contains("(1, 6)"));
  bad = {};
  bad.clip_max_shrink = 1.0f;
  REQUIRE_THROWS_WITH(awq_clip({w.data(), 8, 64}, c.view(), spec, bad), Contains("clip_max_shrink"));
  bad = {};
  bad.clip_grid = -3;
  REQUIRE_THROWS_WITH(awq_clip({w.data(), 8, 64}, c.view(), spec, bad), Contains("clip_grid"));
  REQUIRE(w == qmr::testing::gaussian(std::size_t{8} * 64, 8));  // failed calls leave w alone
}

// Timing of the Qwen2.5-0.5B MLP shape (gate_proj [4864, 896]) with 4096 tokens on
// 2 threads; hidden: run with `test_quant_awq "[.bench]"`. CPU seconds are printed
// beside wall seconds since a shared machine stretches the latter.
TEST_CASE("AWQ search time on a [4864, 896] linear with 4096 tokens", "[.bench]") {
  qmr::thread_pool pool(2);
  constexpr std::int64_t rows = 4864, cols = 896, n = 4096;
  const calibration c = make_calibration(n, cols, 1);
  const auto w = qmr::testing::gaussian(static_cast<std::size_t>(rows * cols), 2);
  const matrix_view<const float> wv[] = {{w.data(), rows, cols}};
  struct clock_pair {
    std::chrono::steady_clock::time_point wall = std::chrono::steady_clock::now();
    std::clock_t cpu = std::clock();
  };
  const auto since = [](const clock_pair& t0) {
    return std::to_string(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0.wall).count()) +
           " s wall, " + std::to_string(static_cast<double>(std::clock() - t0.cpu) / CLOCKS_PER_SEC) + " s CPU";
  };
  for (const char* f : {"w4g128", "w3g128s", "w4gc"}) {
    const auto spec = parse_format(f);
    const clock_pair t0;
    const awq_scale_result res = awq_search_scales(wv, c.view(), c.abs_mean, spec, {}, &pool);
    const std::string search_time = since(t0);
    std::vector<float> ws = scale_columns(w, cols, res.scales, false);
    const std::vector<float> xs = scale_columns(c.x, cols, res.scales, true);
    const clock_pair t1;
    const auto [before, after] = awq_clip({ws.data(), rows, cols}, {xs.data(), n, cols}, spec, {}, &pool);
    WARN(f << ": scale search " << search_time << " (alpha " << res.alpha << ", error " << res.error_rtn << " -> "
           << res.error_best << "); clip " << since(t1) << " (" << before << " -> " << after << ")");
  }
}
