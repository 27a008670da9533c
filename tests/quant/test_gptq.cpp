// GPTQ against a plain float64 re-implementation of the published algorithm, its calibrated error against RTN, dead columns, damping, the Hessian accumulator and bad input.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "../random.hpp"
#include "../sanitizer.hpp"
#include "qmr/quant/gptq.hpp"
#include "qmr/quant/gptq_reference.hpp"
#include "qmr/quant/hessian.hpp"
#include "qmr/quant/rtn.hpp"

using namespace qmr::quant;
using qmr::matrix_view;
using reference_result = qmr::quant::ref::gptq_reference_result;
using qmr::quant::ref::gptq_reference;

namespace {

using qmr::testing::fresh_seed;

std::size_t idx(std::int64_t r, std::int64_t c, std::int64_t cols) { return static_cast<std::size_t>(r * cols + c); }

// Calibration inputs X [tokens, cols] with correlated channels, like a transformer's
// hidden states: x = s ∘ (A z + 0.3 ε) for a random mixing A [cols, 32] of 32 latent
// factors z ~ N(0, I) plus independent noise ε (so that H has full rank), channel
// scales s spread over a decade, and every 16th channel 20x larger (the outliers).
std::vector<float> correlated_inputs(std::int64_t tokens, std::int64_t cols, std::uint32_t seed) {
  constexpr std::int64_t latent = 32;
  const auto a = qmr::testing::gaussian(static_cast<std::size_t>(cols * latent), seed);        // [cols, latent]
  const auto z = qmr::testing::gaussian(static_cast<std::size_t>(tokens * latent), seed + 1);  // [tokens, latent]
  const auto noise = qmr::testing::gaussian(static_cast<std::size_t>(tokens * cols), seed + 2, 0.3f);  // [tokens, cols]
  std::mt19937 rng(seed + 3);
  std::uniform_real_distribution<float> spread(-1.0f, 0.0f);
  std::vector<float> scale(static_cast<std::size_t>(cols));  // [cols]
  for (std::int64_t c = 0; c < cols; ++c)
    scale[static_cast<std::size_t>(c)] = std::pow(10.0f, spread(rng)) * (c % 16 == 3 ? 20.0f : 1.0f);
  std::vector<float> x(static_cast<std::size_t>(tokens * cols));  // [tokens, cols]
  const double norm = 1.0 / std::sqrt(static_cast<double>(latent));
  for (std::int64_t t = 0; t < tokens; ++t)
    for (std::int64_t c = 0; c < cols; ++c) {
      double s = 0;
      for (std::int64_t k = 0; k < latent; ++k) s += a[idx(c, k, latent)] * z[idx(t, k, latent)];
      x[idx(t, c, cols)] = static_cast<float>((s * norm + noise[idx(t, c, cols)]) * scale[static_cast<std::size_t>(c)]);
    }
  return x;
}

// (2/n) XᵀX in double, the plain way.
std::vector<double> naive_hessian(const std::vector<float>& x, std::int64_t tokens, std::int64_t cols) {
  std::vector<double> h(static_cast<std::size_t>(cols * cols), 0.0);
  for (std::int64_t t = 0; t < tokens; ++t)
    for (std::int64_t i = 0; i < cols; ++i) {
      const double xi = x[idx(t, i, cols)];
      for (std::int64_t j = 0; j < cols; ++j) h[idx(i, j, cols)] += xi * x[idx(t, j, cols)];
    }
  for (double& v : h) v *= 2.0 / static_cast<double>(tokens);
  return h;
}


// ||X Wᵀ - X Qᵀ||²_F / tokens for Q the dequantized q, in double.
double output_error(const std::vector<float>& x, std::int64_t tokens, const std::vector<float>& w, const qtensor& q) {
  const std::int64_t rows = q.rows(), cols = q.cols();
  std::vector<double> d(static_cast<std::size_t>(rows * cols));  // [rows, cols] W - Q
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) d[idx(r, c, cols)] = w[idx(r, c, cols)] - static_cast<double>(q.view().value(r, c));
  double sum = 0;
  for (std::int64_t t = 0; t < tokens; ++t)
    for (std::int64_t r = 0; r < rows; ++r) {
      double y = 0;
      for (std::int64_t c = 0; c < cols; ++c) y += x[idx(t, c, cols)] * d[idx(r, c, cols)];
      sum += y * y;
    }
  return sum / static_cast<double>(tokens);
}

// Compares q with the reference: codes and dequantized values. Every element is
// expected to agree (both run in double); the tolerance only absorbs the f32 of the
// stored values, and a handful of codes may flip where a value lands on a rounding
// boundary to within the two orders of summation.
void require_matches(const qtensor& q, const reference_result& ref, const std::vector<float>& w) {
  const std::int64_t rows = q.rows(), cols = q.cols();
  std::int64_t code_mismatches = 0, value_mismatches = 0;
  double worst = 0;
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) {
      const float want = ref.values[idx(r, c, cols)];
      const double diff = std::fabs(static_cast<double>(q.view().value(r, c)) - want);
      code_mismatches += q.view().code(r, c) != ref.codes[idx(r, c, cols)];
      if (diff > 1e-4 * std::max(1.0, std::fabs(static_cast<double>(w[idx(r, c, cols)])))) ++value_mismatches;
      worst = std::max(worst, diff);
    }
  INFO("codes differing " << code_mismatches << ", values beyond 1e-4: " << value_mismatches << " of "
                          << rows * cols << ", worst " << worst);
  REQUIRE(code_mismatches * 1000 <= rows * cols);
  REQUIRE(value_mismatches * 1000 <= rows * cols);
}

}  // namespace

TEST_CASE("GPTQ equals the unblocked float64 reference for every column order, block size and format", "[gptq]") {
  qmr::thread_pool pool(2);
  struct fixture {
    std::int64_t rows, cols;
    const char* format;
  };
  const fixture fixtures[] = {{16, 64, "w4g32"},   {24, 128, "w3g64s"}, {20, 96, "w2g32"},  {48, 256, "w8gc"},
                              {16, 256, "w4g128s"}, {32, 192, "w5g64"}, {17, 128, "w6g32s"}, {40, 256, "w2g256s"},
                              {24, 64, "w3gc"}};
  for (const fixture& f : fixtures) {
    const std::uint32_t seed = fresh_seed();
    const format_spec spec = parse_format(f.format);
    const std::int64_t tokens = 2 * f.cols;
    const auto x = correlated_inputs(tokens, f.cols, seed);
    const auto h = naive_hessian(x, tokens, f.cols);
    const auto w = qmr::testing::gaussian(static_cast<std::size_t>(f.rows * f.cols), seed + 3);
    for (bool act_order : {true, false}) {
      const auto ref = gptq_reference(w, f.rows, f.cols, h, spec, act_order, 0.01);
      for (int block : {128, 1, 7, 48, 1000}) {
        INFO(f.format << " [" << f.rows << ", " << f.cols << "] act_order " << act_order << " block " << block
                      << " seed " << seed);
        gptq_options opt;
        opt.act_order = act_order;
        opt.block = block;
        gptq_report report;
        const qtensor q = quantize_gptq({w.data(), f.rows, f.cols}, h, spec, opt, block == 7 ? nullptr : &pool,
                                        "fixture", &report);
        REQUIRE(report.damp_used == 0.01);
        REQUIRE(report.dead_columns == 0);
        require_matches(q, ref, w);
      }
    }
  }
}

TEST_CASE("GPTQ with clip-searched group parameters equals the reference with the same search", "[gptq]") {
  constexpr std::int64_t rows = 16, cols = 128;
  const std::uint32_t seed = fresh_seed();
  INFO("seed " << seed);
  const auto x = correlated_inputs(256, cols, seed);
  const auto h = naive_hessian(x, 256, cols);
  const auto w = qmr::testing::student_t(static_cast<std::size_t>(rows * cols), seed + 3);
  gptq_options opt;
  opt.rtn.clip_search = true;
  for (const char* f : {"w3g32", "w4gcs"})
    for (bool act_order : {true, false}) {
      INFO(f << " act_order " << act_order);
      opt.act_order = act_order;
      const qtensor q = quantize_gptq({w.data(), rows, cols}, h, parse_format(f), opt);
      require_matches(q, gptq_reference(w, rows, cols, h, parse_format(f), act_order, 0.01, opt.rtn), w);
    }
}

TEST_CASE("GPTQ's calibrated output error is below RTN's for every bit width, group size and symmetry", "[gptq]") {
  qmr::thread_pool pool(2);
  constexpr std::int64_t rows = 32, cols = 256, tokens = 1024;
  const int groups[] = {32, 64, 128, per_channel};
  for (int bits : supported_bits)
    for (int gi = 0; gi < 4; ++gi)
      for (bool sym : {false, true}) {
        if (!qmr::testing::sweep_runs(bits, gi, 4)) continue;
        const int group = groups[gi];
        const std::uint32_t seed = fresh_seed();
        const format_spec spec = format_spec::quantized(bits, group, sym);
        INFO(spec.str() << " seed " << seed);
        const auto x = correlated_inputs(tokens, cols, seed);
        hessian_accumulator acc(cols);
        acc.add({x.data(), tokens, cols}, &pool);
        const auto h = acc.hessian();
        const auto w = qmr::testing::gaussian(static_cast<std::size_t>(rows * cols), seed + 3);
        const qtensor rtn = quantize_rtn({w.data(), rows, cols}, spec, {}, &pool);
        const double rtn_error = output_error(x, tokens, w, rtn);
        for (bool act_order : {true, false}) {
          gptq_options opt;
          opt.act_order = act_order;
          gptq_report report;
          const qtensor q = quantize_gptq({w.data(), rows, cols}, h, spec, opt, &pool, "layer", &report);
          const double gptq_error = output_error(x, tokens, w, q);
          INFO("act_order " << act_order << ": GPTQ " << gptq_error << " RTN " << rtn_error << " (report "
                            << report.proxy_loss << " / " << report.rtn_proxy_loss << ")");
          // Act-order (the default) wins everywhere: GPTQ/RTN was at most 0.13 over 12
          // seeds per format. Natural order with dynamic groups is asserted from 3 bits
          // (at most 0.70) and per-channel: at 2 bits with groups, the error fed into
          // later groups on inputs with outlier channels widens their ranges, and
          // GPTQ/RTN reached 1.15 at w2g32s (1.9 with denser mixing; the float64
          // reference agrees: it is the algorithm, and the reason act-order exists).
          if (act_order || bits >= 3 || group == per_channel) REQUIRE(gptq_error < rtn_error);
          // The report's losses are these errors (H = (2/n) XᵀX), computed in f32.
          REQUIRE(report.proxy_loss == Approx(gptq_error).epsilon(2e-3));
          REQUIRE(report.rtn_proxy_loss == Approx(rtn_error).epsilon(2e-3));
        }
      }
}

TEST_CASE("GPTQ with a thread pool equals GPTQ without one, bit for bit", "[gptq]") {
  constexpr std::int64_t rows = 150, cols = 128;  // rows not a multiple of the 64-row tasks
  const std::uint32_t seed = fresh_seed();
  INFO("seed " << seed);
  const auto x = correlated_inputs(512, cols, seed);
  const auto h = naive_hessian(x, 512, cols);
  const auto w = qmr::testing::student_t(static_cast<std::size_t>(rows * cols), seed + 3);
  qmr::thread_pool pool(2);
  for (const char* f : {"w4g32", "w3gcs"}) {
    const qtensor a = quantize_gptq({w.data(), rows, cols}, h, parse_format(f));
    const qtensor b = quantize_gptq({w.data(), rows, cols}, h, parse_format(f), {}, &pool);
    REQUIRE(std::equal(a.codes().begin(), a.codes().end(), b.codes().begin()));
    REQUIRE(std::equal(a.zeros().begin(), a.zeros().end(), b.zeros().begin()));
    for (std::size_t i = 0; i < a.scales().size(); ++i) REQUIRE(a.scales()[i].bits == b.scales()[i].bits);
  }
}

TEST_CASE("GPTQ with a factor prepared once equals GPTQ factoring H itself, for each linear sharing H", "[gptq]") {
  // As q/k/v (or gate/up) share one H in calibration: one gptq_prepare, several quantize_gptq.
  constexpr std::int64_t cols = 128;
  const std::uint32_t seed = fresh_seed();
  INFO("seed " << seed);
  const auto x = correlated_inputs(512, cols, seed);
  const auto h = naive_hessian(x, 512, cols);
  qmr::thread_pool pool(2);
  for (const bool act_order : {true, false}) {
    gptq_options opt;
    opt.act_order = act_order;
    const gptq_factor factor = gptq_prepare(h, cols, opt, &pool, "attn_in");
    for (const std::int64_t rows : {std::int64_t{96}, std::int64_t{16}}) {
      const auto w = qmr::testing::student_t(static_cast<std::size_t>(rows * cols), seed + 3 + static_cast<std::uint32_t>(rows));
      const qtensor a = quantize_gptq({w.data(), rows, cols}, h, parse_format("w4g32"), opt, &pool);
      gptq_report report;
      const qtensor b = quantize_gptq({w.data(), rows, cols}, h, factor, parse_format("w4g32"), opt, &pool, "m", &report);
      REQUIRE(std::equal(a.codes().begin(), a.codes().end(), b.codes().begin()));
      REQUIRE(std::equal(a.zeros().begin(), a.zeros().end(), b.zeros().begin()));
      for (std::size_t i = 0; i < a.scales().size(); ++i) REQUIRE(a.scales()[i].bits == b.scales()[i].bits);
      REQUIRE(report.damp_used == opt.damp);
    }
    // A factor for another column count or order is an error naming the linear.
    const auto w = qmr::testing::student_t(static_cast<std::size_t>(8 * 64), seed + 9);
    const auto h64 = naive_hessian(x, 512, 64);
    REQUIRE_THROWS_WITH(quantize_gptq({w.data(), 8, 64}, h64, factor, parse_format("w4g32"), opt, nullptr, "blk.0.v"),
                        Catch::Contains("prepared factor is for 128 columns") && Catch::Contains("blk.0.v"));
    gptq_options other = opt;
    other.act_order = !act_order;
    const auto w128 = qmr::testing::student_t(static_cast<std::size_t>(8 * cols), seed + 10);
    REQUIRE_THROWS_WITH(quantize_gptq({w128.data(), 8, cols}, h, factor, parse_format("w4g32"), other),
                        Catch::Contains("another act_order"));
  }
}

TEST_CASE("dead input channels: their weights are zeroed and H_ii set to 1", "[gptq]") {
  constexpr std::int64_t rows = 24, cols = 128, tokens = 512;
  const std::uint32_t seed = fresh_seed();
  INFO("seed " << seed);
  auto x = correlated_inputs(tokens, cols, seed);
  const std::int64_t dead_cols[] = {0, 5, 6, 77, 127};
  for (std::int64_t t = 0; t < tokens; ++t)
    for (std::int64_t c : dead_cols) x[idx(t, c, cols)] = 0.0f;
  const auto h = naive_hessian(x, tokens, cols);
  const auto w = qmr::testing::gaussian(static_cast<std::size_t>(rows * cols), seed + 3);
  for (bool act_order : {true, false}) {
    gptq_options opt;
    opt.act_order = act_order;
    gptq_report report;
    const qtensor q = quantize_gptq({w.data(), rows, cols}, h, parse_format("w4g32"), opt, nullptr, "m", &report);
    REQUIRE(report.dead_columns == 5);
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t c : dead_cols) REQUIRE(q.view().value(r, c) == 0.0f);
    require_matches(q, gptq_reference(w, rows, cols, h, parse_format("w4g32"), act_order, 0.01), w);
    REQUIRE(output_error(x, tokens, w, q) < output_error(x, tokens, w, quantize_rtn({w.data(), rows, cols}, parse_format("w4g32"))));
  }
  // No calibration signal at all: every column is dead and the result is all zeros.
  const std::vector<double> zero(static_cast<std::size_t>(cols * cols), 0.0);
  gptq_report report;
  const qtensor q = quantize_gptq({w.data(), rows, cols}, zero, parse_format("w4g32s"), {}, nullptr, "m", &report);
  REQUIRE(report.dead_columns == cols);
  REQUIRE(report.proxy_loss == 0.0);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) REQUIRE(q.view().value(r, c) == 0.0f);
}

TEST_CASE("damping escalates while the Cholesky factorization fails, then gives up on an indefinite H", "[gptq]") {
  constexpr std::int64_t rows = 16, cols = 64;
  const std::uint32_t seed = fresh_seed();
  INFO("seed " << seed);
  // 16 tokens for 64 channels: H has rank 16.
  const auto x = qmr::testing::gaussian(static_cast<std::size_t>(16 * cols), seed);
  const auto h = naive_hessian(x, 16, cols);
  const auto w = qmr::testing::gaussian(static_cast<std::size_t>(rows * cols), seed + 3);
  for (bool act_order : {true, false}) {
    gptq_options opt;
    opt.act_order = act_order;
    opt.damp = 0;
    gptq_report report;
    const qtensor q = quantize_gptq({w.data(), rows, cols}, h, parse_format("w3g32"), opt, nullptr, "m", &report);
    REQUIRE(report.damp_used == detail::gptq_first_escalation);
    require_matches(q, gptq_reference(w, rows, cols, h, parse_format("w3g32"), act_order, report.damp_used), w);

    opt.damp = 1e-14;  // positive but too small: doubled until the pivots clear rounding
    quantize_gptq({w.data(), rows, cols}, h, parse_format("w3g32"), opt, nullptr, "m", &report);
    REQUIRE(report.damp_used > 1e-14);
    REQUIRE(report.damp_used < 1e-6);
    const double doublings = std::log2(report.damp_used / 1e-14);
    REQUIRE(doublings == Approx(std::round(doublings)).margin(1e-9));
  }
  // Indefinite: H(0, 1) = 2 with unit diagonal has eigenvalue -1, which damping up to
  // λ = mean diag H = 1 cannot lift above zero.
  std::vector<double> bad(static_cast<std::size_t>(cols * cols), 0.0);
  for (std::int64_t i = 0; i < cols; ++i) bad[idx(i, i, cols)] = 1.0;
  bad[idx(0, 1, cols)] = bad[idx(1, 0, cols)] = 2.0;
  REQUIRE_THROWS_WITH(quantize_gptq({w.data(), rows, cols}, bad, parse_format("w4g32"), {}, nullptr, "blk.3.attn.q"),
                      Catch::Contains("blk.3.attn.q") && Catch::Contains("not positive definite"));
}

TEST_CASE("hessian_accumulator equals (2/n) XᵀX in double over several batches", "[gptq][hessian]") {
  qmr::thread_pool pool(2);
  for (std::int64_t cols : {8, 300, 520}) {
    const std::uint32_t seed = fresh_seed();
    INFO("cols " << cols << " seed " << seed);
    const std::int64_t batches[] = {1, 100, 700, 3, 513};  // 700 and 513 span two 512-token chunks
    const std::int64_t tokens = std::accumulate(std::begin(batches), std::end(batches), std::int64_t{0});
    const auto x = qmr::testing::student_t(static_cast<std::size_t>(tokens * cols), seed);
    const auto want = naive_hessian(x, tokens, cols);
    hessian_accumulator acc(cols);
    REQUIRE(acc.cols() == cols);
    REQUIRE(acc.samples() == 0);
    for (double v : acc.hessian()) REQUIRE(v == 0.0);
    std::int64_t t0 = 0;
    int i = 0;
    for (std::int64_t b : batches) {
      acc.add({x.data() + t0 * cols, b, cols}, i++ % 2 ? &pool : nullptr);
      t0 += b;
    }
    acc.add({x.data(), 0, cols});  // an empty batch changes nothing
    REQUIRE(acc.samples() == tokens);
    const auto h = acc.hessian();
    REQUIRE(h.size() == static_cast<std::size_t>(cols * cols));
    double worst = 0;
    for (std::int64_t r = 0; r < cols; ++r)
      for (std::int64_t c = 0; c < cols; ++c) {
        REQUIRE(h[idx(r, c, cols)] == h[idx(c, r, cols)]);
        // f32 products summed over <= 512 tokens per chunk: relative to the channels' norms.
        const double bound = std::sqrt(want[idx(r, r, cols)] * want[idx(c, c, cols)]);
        worst = std::max(worst, std::fabs(h[idx(r, c, cols)] - want[idx(r, c, cols)]) / bound);
      }
    INFO("worst relative error " << worst);
    REQUIRE(worst < 1e-5);
  }
  // A strided view (a column slice of a wider matrix) reads only its columns.
  const auto wide = qmr::testing::gaussian(std::size_t{40} * 24, 7);
  std::vector<float> narrow(std::size_t{40} * 16);
  for (std::int64_t t = 0; t < 40; ++t)
    for (std::int64_t c = 0; c < 16; ++c) narrow[idx(t, c, 16)] = wide[idx(t, c + 4, 24)];
  hessian_accumulator acc(16);
  acc.add(matrix_view<const float>(wide.data() + 4, 40, 16, 24));
  const auto want = naive_hessian(narrow, 40, 16);
  const auto h = acc.hessian();
  for (std::size_t k = 0; k < h.size(); ++k) REQUIRE(h[k] == Approx(want[k]).margin(1e-5));
}

TEST_CASE("bad input is a qmr::error that names the tensor and what is wrong", "[gptq]") {
  constexpr std::int64_t rows = 4, cols = 64;
  auto w = qmr::testing::gaussian(static_cast<std::size_t>(rows * cols), 9);
  const auto x = correlated_inputs(128, cols, 10);
  const auto h = naive_hessian(x, 128, cols);
  const format_spec spec = parse_format("w4g32");
  const auto gptq = [&](std::span<const double> hh, const format_spec& s = parse_format("w4g32"),
                        gptq_options opt = {}) {
    return quantize_gptq({w.data(), rows, cols}, hh, s, opt, nullptr, "blk.0.ffn_down");
  };
  using Catch::Contains;

  w[idx(2, 5, cols)] = NAN;
  REQUIRE_THROWS_WITH(gptq(h), Contains("blk.0.ffn_down") && Contains("non-finite weight") && Contains("row 2, column 5"));
  w[idx(2, 5, cols)] = INFINITY;
  REQUIRE_THROWS_AS(gptq(h), qmr::error);
  w[idx(2, 5, cols)] = 0.5f;

  REQUIRE_THROWS_WITH(gptq(std::span<const double>(h.data(), h.size() - 1)),
                      Contains("blk.0.ffn_down") && Contains("H has 4095 elements") && Contains("[64, 64]"));
  REQUIRE_THROWS_WITH(gptq(std::span<const double>()), Contains("blk.0.ffn_down") && Contains("H has 0 elements"));
  auto bad = h;
  bad[idx(3, 4, cols)] = NAN;
  REQUIRE_THROWS_WITH(gptq(bad), Contains("blk.0.ffn_down") && Contains("non-finite H(3, 4)"));
  bad = h;
  bad[idx(7, 7, cols)] = -1.0;
  REQUIRE_THROWS_WITH(gptq(bad), Contains("blk.0.ffn_down") && Contains("H(7, 7)") && Contains("negative"));
  REQUIRE_THROWS_WITH(gptq(h, parse_format("w4g128")), Contains("blk.0.ffn_down") && Contains("multiple of 128"));
  REQUIRE_THROWS_WITH(gptq(h, parse_format("f16")), Contains("blk.0.ffn_down") && Contains("not a quantized format"));
  gptq_options opt;
  opt.block = 0;
  REQUIRE_THROWS_WITH(gptq(h, spec, opt), Contains("blk.0.ffn_down") && Contains("block size"));
  opt = {};
  opt.damp = -0.1;
  REQUIRE_THROWS_WITH(gptq(h, spec, opt), Contains("blk.0.ffn_down") && Contains("damp"));
  // Weights too wide for an f16 scale surface with their row and group.
  w[idx(1, 40, cols)] = 3e9f;
  REQUIRE_THROWS_WITH(gptq(h), Contains("blk.0.ffn_down") && Contains("row 1, group 1") && Contains("overflows f16"));
  w[idx(1, 40, cols)] = 0.5f;
  REQUIRE_NOTHROW(gptq(h));

  hessian_accumulator acc(cols);
  const auto x2 = qmr::testing::gaussian(std::size_t{5} * 7, 1);
  REQUIRE_THROWS_WITH(acc.add({x2.data(), 5, 7}), Contains("[5, 7]") && Contains("expected [tokens, 64]"));
  auto x3 = x;
  x3[idx(100, 3, cols)] = NAN;
  REQUIRE_THROWS_WITH(acc.add({x3.data(), 128, cols}),
                      Contains("non-finite activation") && Contains("token 100, column 3"));
  REQUIRE(acc.samples() == 0);  // a rejected batch leaves the accumulator unchanged
  for (double v : acc.hessian()) REQUIRE(v == 0.0);
  REQUIRE_THROWS_AS(hessian_accumulator(0), qmr::error);
}
