// Tests of probe/activation_stats.hpp: every statistic of one layer's inputs and attention against the same quantities computed here from activations captured through the session hook (per-token int8/int4 quantization written out by hand), and bad input named.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "../temp_dir.hpp"
#include "fixtures.hpp"
#include "qmr/probe/activation_stats.hpp"

namespace {

using qmr::model::component;

// Σ (x - q)² for one row quantized per token, symmetric, to `bits` (round half to even).
double row_error(const std::vector<float>& row, int bits) {
  float a = 0;
  for (const float v : row) a = std::max(a, std::fabs(v));
  if (a == 0) return 0;
  const float qmax = static_cast<float>((1 << (bits - 1)) - 1), scale = a / qmax;
  double e = 0;
  for (const float v : row) {
    const float q = std::clamp(std::nearbyint(v / scale), -qmax, qmax) * scale;
    e += (static_cast<double>(v) - q) * (static_cast<double>(v) - q);
  }
  return e;
}

}  // namespace

TEST_CASE("activation statistics: every figure of a layer against the captured activations", "[probe]") {
  qmr::testing::temp_dir dir;
  qmr::testing::write_probe_model(dir / "m");
  const auto m = qmr::model::model::load(dir / "m");
  const auto items = qmr::testing::random_items(7, 96, 5);
  const auto rep = qmr::probe::activation_statistics(m, items);
  REQUIRE(rep.points.size() == 2 * std::size(qmr::probe::stat_points));
  REQUIRE(rep.attention.size() == 2);

  // Capture layer 1's down input and attention probabilities directly.
  std::vector<std::vector<float>> rows;  // [tokens][intermediate]
  double ent = 0, sink = 0;
  std::int64_t ent_n = 0, sink_n = 0, tokens = 0;
  qmr::model::session s(m, 64);
  s.set_hook([&](const qmr::model::activation& a) {
    if (a.layer != 1) return;
    if (a.what == component::mlp_act)
      for (std::int64_t r = 0; r < a.data.rows; ++r) rows.emplace_back(a.data.row(r), a.data.row(r) + a.data.cols);
    if (a.what == component::attn_probs)
      for (std::int64_t r = 0; r < a.data.rows; ++r) {
        const std::int64_t t = a.position + r / 4;
        double h = 0;
        for (std::int64_t j = 0; j <= t; ++j) {
          const double p = a.data.row(r)[j];
          if (p > 0) h -= p * std::log(p);
        }
        ent += h;
        ++ent_n;
        if (t > 0) sink += a.data.row(r)[0], ++sink_n;
      }
  });
  for (const auto& it : items) {
    std::vector<std::int32_t> ids(it.context);
    ids.insert(ids.end(), it.continuation.begin(), it.continuation.end());
    s.reset();
    static_cast<void>(s.forward(ids, false));
    tokens += static_cast<std::int64_t>(ids.size());
  }
  CHECK(rep.tokens == tokens);
  double s2 = 0, s4 = 0, e8 = 0, e4 = 0, peak = 0;
  std::vector<double> chan_peak(128, 0.0);
  for (const auto& r : rows) {
    for (std::size_t j = 0; j < r.size(); ++j) {
      const double v = r[j];
      s2 += v * v;
      s4 += v * v * v * v;
      chan_peak[j] = std::max(chan_peak[j], std::fabs(v));
      peak = std::max(peak, std::fabs(v));
    }
    e8 += row_error(r, 8);
    e4 += row_error(r, 4);
  }
  const double n = static_cast<double>(rows.size()) * 128;
  const double rms = std::sqrt(s2 / n);
  std::int64_t outliers = 0;
  for (const double p : chan_peak) outliers += p > qmr::probe::outlier_rms_multiple * rms;
  const auto& down1 = rep.points[1 * std::size(qmr::probe::stat_points) + 3];
  REQUIRE(down1.point == component::mlp_act);
  CHECK(down1.layer == 1);
  CHECK(down1.tokens == static_cast<std::int64_t>(rows.size()));
  CHECK(down1.channels == 128);
  CHECK(down1.rms == Approx(rms).epsilon(1e-12));
  CHECK(down1.max_abs == Approx(peak).epsilon(1e-12));
  CHECK(down1.kurtosis == Approx((s4 / n) / ((s2 / n) * (s2 / n))).epsilon(1e-12));
  CHECK(down1.outlier_channels == outliers);
  CHECK(down1.a8_error == Approx(e8 / s2).epsilon(1e-9));
  CHECK(down1.a4_error == Approx(e4 / s2).epsilon(1e-9));
  CHECK(down1.a4_error > down1.a8_error);
  CHECK(rep.attention[1].entropy == Approx(ent / static_cast<double>(ent_n)).epsilon(1e-12));
  CHECK(rep.attention[1].first_token_mass == Approx(sink / static_cast<double>(sink_n)).epsilon(1e-12));
  CHECK(rep.attention[1].entropy > 0.0);

  CHECK_THROWS_WITH(qmr::probe::activation_statistics(m, {}), Catch::Matchers::Contains("at least one item"));
  auto bad = items;
  bad[0].continuation[0] = 96;
  CHECK_THROWS_WITH(qmr::probe::activation_statistics(m, bad), Catch::Matchers::Contains("token id 96"));
}
