// Activation and attention statistics per layer, through the forward pass's hooks: the inputs of every linear (RMS, peak, kurtosis, outlier channels, and the error per-token int8/int4 quantization would make of them) and each layer's attention (entropy, mass on the first token).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/thread_pool.hpp"
#include "../model/forward.hpp"
#include "../quant/act_quant.hpp"
#include "sensitivity.hpp"  // forced_item, check_items

namespace qmr::probe {

// Where the statistics are taken: the inputs of the layer's linears and the residual stream it leaves.
inline constexpr model::component stat_points[] = {model::component::attn_norm, model::component::attn_out, model::component::mlp_norm,
                                                   model::component::mlp_act, model::component::layer_output};

inline const char* stat_point_name(model::component c) {
  switch (c) {
    case model::component::attn_norm: return "q/k/v input";
    case model::component::attn_out: return "o input";
    case model::component::mlp_norm: return "gate/up input";
    case model::component::mlp_act: return "down input";
    case model::component::layer_output: return "residual out";
    default: return model::component_name(c);
  }
}

// A channel counts as an outlier when its largest |x| exceeds this many times the point's RMS:
// a Gaussian channel's maximum over ~10^4 tokens sits near 4 RMS, so 8 flags only heavy tails.
inline constexpr double outlier_rms_multiple = 8.0;

struct point_stats {
  int layer = 0;
  model::component point = model::component::attn_norm;
  std::int64_t tokens = 0, channels = 0;
  double rms = 0;               // sqrt(mean x²) over every value
  double max_abs = 0;           // the largest |x|
  double kurtosis = 0;          // mean x⁴ / (mean x²)²: 3 for a Gaussian, large for outlier-heavy activations
  std::int64_t outlier_channels = 0;  // channels whose max |x| > outlier_rms_multiple x rms
  std::int64_t top_channel = 0;       // the channel holding max_abs
  double a8_error = 0, a4_error = 0;  // Σ (x - q(x))² / Σ x² with per-token int8 / int4 fake quantization (quant/act_quant.hpp)
};

struct attention_stats {
  int layer = 0;
  double entropy = 0;           // mean over query rows and heads of -Σ p log p (nats)
  double first_token_mass = 0;  // mean probability on the first position, over rows past it (an "attention sink")
};

struct activation_report {
  std::vector<point_stats> points;        // [layer][stat_points]
  std::vector<attention_stats> attention;  // [layer]
  std::int64_t tokens = 0;
};

// Runs each item's tokens (context, then continuation) through m and gathers the statistics.
inline activation_report activation_statistics(const model::model& m, const std::vector<forced_item>& items, thread_pool* pool = nullptr) {
  const model::model_config& c = m.config();
  constexpr std::size_t P = std::size(stat_points);
  struct acc {
    std::vector<double> sq;       // [channels] Σ x² per channel
    std::vector<float> peak;      // [channels] max |x| per channel
    double s2 = 0, s4 = 0, e8 = 0, e4 = 0;
    std::int64_t rows = 0;
  };
  std::vector<acc> a(static_cast<std::size_t>(c.layers) * P);
  std::vector<double> ent(static_cast<std::size_t>(c.layers), 0.0), sink(static_cast<std::size_t>(c.layers), 0.0);
  std::vector<std::int64_t> ent_rows(static_cast<std::size_t>(c.layers), 0), sink_rows(ent_rows);
  std::vector<float> row_q;  // [channels] one row, fake-quantized
  model::session s(m, check_items(items, c, "activation statistics"), pool);
  s.set_hook([&](const model::activation& act) {
    if (act.layer < 0) return;
    if (act.what == model::component::attn_probs) {  // rows t * heads + h over positions 0 .. position + t
      const std::int64_t heads = c.heads;
      for (std::int64_t r = 0; r < act.data.rows; ++r) {
        const std::int64_t t = act.position + r / heads;  // the query's absolute position
        const float* p = act.data.row(r);
        double h = 0;
        for (std::int64_t j = 0; j <= t; ++j)
          if (p[j] > 0) h -= static_cast<double>(p[j]) * std::log(static_cast<double>(p[j]));
        ent[static_cast<std::size_t>(act.layer)] += h;
        ++ent_rows[static_cast<std::size_t>(act.layer)];
        if (t > 0) {
          sink[static_cast<std::size_t>(act.layer)] += p[0];
          ++sink_rows[static_cast<std::size_t>(act.layer)];
        }
      }
      return;
    }
    const auto* at = std::find(std::begin(stat_points), std::end(stat_points), act.what);
    if (at == std::end(stat_points)) return;
    acc& x = a[static_cast<std::size_t>(act.layer) * P + static_cast<std::size_t>(at - std::begin(stat_points))];
    const std::int64_t cols = act.data.cols;
    if (x.sq.empty()) {
      x.sq.assign(static_cast<std::size_t>(cols), 0.0);
      x.peak.assign(static_cast<std::size_t>(cols), 0.0f);
    }
    row_q.resize(static_cast<std::size_t>(cols));
    for (std::int64_t r = 0; r < act.data.rows; ++r) {
      const float* v = act.data.row(r);
      double r2 = 0;
      for (std::int64_t j = 0; j < cols; ++j) {
        const double d = v[j], d2 = d * d;
        x.sq[static_cast<std::size_t>(j)] += d2;
        x.peak[static_cast<std::size_t>(j)] = std::max(x.peak[static_cast<std::size_t>(j)], std::fabs(v[j]));
        r2 += d2;
        x.s4 += d2 * d2;
      }
      x.s2 += r2;
      for (const int bits : {8, 4}) {
        std::copy(v, v + cols, row_q.begin());
        quant::fake_quantize_per_token(matrix_view<float>(row_q.data(), 1, cols), bits);
        double e = 0;
        for (std::int64_t j = 0; j < cols; ++j) {
          const double d = static_cast<double>(v[j]) - row_q[static_cast<std::size_t>(j)];
          e += d * d;
        }
        (bits == 8 ? x.e8 : x.e4) += e;
      }
      ++x.rows;
    }
  });
  activation_report rep;
  std::vector<std::int32_t> ids;
  for (const auto& it : items) {
    ids.assign(it.context.begin(), it.context.end());
    ids.insert(ids.end(), it.continuation.begin(), it.continuation.end());
    s.reset();
    static_cast<void>(s.forward(ids, false));
    rep.tokens += static_cast<std::int64_t>(ids.size());
  }
  for (int l = 0; l < c.layers; ++l) {
    for (std::size_t pi = 0; pi < P; ++pi) {
      const acc& x = a[static_cast<std::size_t>(l) * P + pi];
      point_stats ps;
      ps.layer = l;
      ps.point = stat_points[pi];
      ps.tokens = x.rows;
      ps.channels = static_cast<std::int64_t>(x.sq.size());
      const double n = static_cast<double>(x.rows) * static_cast<double>(ps.channels);
      if (n > 0) {
        ps.rms = std::sqrt(x.s2 / n);
        ps.kurtosis = x.s2 > 0 ? (x.s4 / n) / ((x.s2 / n) * (x.s2 / n)) : 0.0;
        ps.a8_error = x.s2 > 0 ? x.e8 / x.s2 : 0.0;
        ps.a4_error = x.s2 > 0 ? x.e4 / x.s2 : 0.0;
        for (std::size_t j = 0; j < x.peak.size(); ++j) {
          if (x.peak[j] > ps.max_abs) ps.max_abs = x.peak[j], ps.top_channel = static_cast<std::int64_t>(j);
          ps.outlier_channels += x.peak[j] > outlier_rms_multiple * ps.rms;
        }
      }
      rep.points.push_back(ps);
    }
    const std::size_t li = static_cast<std::size_t>(l);
    rep.attention.push_back({l, ent_rows[li] ? ent[li] / static_cast<double>(ent_rows[li]) : 0.0,
                             sink_rows[li] ? sink[li] / static_cast<double>(sink_rows[li]) : 0.0});
  }
  return rep;
}

}  // namespace qmr::probe
