// Tests of probe/sensitivity.hpp: the units of a model, the reference pass against an independent forward, KL growing as bits fall, a unit's scores against a second model quantized by hand, the weights restored after every measurement (and after a failed one), determinism, bad input named, the bundled model's synthetic items, and bit allocation into a precision plan.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "../temp_dir.hpp"
#include "fixtures.hpp"
#include "qmr/model/generation_config.hpp"
#include "qmr/probe/sensitivity.hpp"
#include "qmr/report/svg.hpp"

namespace {

using qmr::probe::forced_item;
using qmr::testing::random_items;
using qmr::probe::unit_kind;
namespace quant = qmr::quant;

// Every scored position's logits of a fresh session over the items, in order.
std::vector<float> all_logits(const qmr::model::model& m, const std::vector<forced_item>& items) {
  std::vector<float> out;
  qmr::model::session s(m, 64);
  for (const auto& it : items) {
    std::vector<std::int32_t> in(it.context);
    in.insert(in.end(), it.continuation.begin(), it.continuation.end() - 1);
    s.reset();
    const auto z = s.forward(in, true);
    for (std::size_t i = 0; i < it.continuation.size(); ++i) {
      const float* row = z.row(static_cast<std::int64_t>(it.context.size() - 1 + i));
      out.insert(out.end(), row, row + z.cols);
    }
  }
  return out;
}

// The small model, n random items and the unquantized model's logits at their scored positions.
struct fixture {
  qmr::testing::temp_dir dir;
  qmr::model::model m;
  std::vector<forced_item> items;
  std::vector<float> logits;  // [scored positions, vocab]
  fixture(int n, std::uint32_t seed) {
    qmr::testing::write_probe_model(dir / "m");
    m = qmr::model::model::load(dir / "m");
    items = random_items(n, 96, seed);
    logits = all_logits(m, items);
  }
};

std::vector<double> log_softmax(const float* z, std::int64_t n) {
  double top = z[0];
  for (std::int64_t v = 1; v < n; ++v) top = std::max(top, static_cast<double>(z[v]));
  double sum = 0;
  for (std::int64_t v = 0; v < n; ++v) sum += std::exp(z[v] - top);
  std::vector<double> out(static_cast<std::size_t>(n));
  for (std::int64_t v = 0; v < n; ++v) out[static_cast<std::size_t>(v)] = z[v] - top - std::log(sum);
  return out;
}

}  // namespace

TEST_CASE("sensitivity units: one per linear, per layer, per component, and all", "[probe]") {
  qmr::testing::temp_dir dir;
  qmr::testing::write_probe_model(dir / "m");
  const auto m = qmr::model::model::load(dir / "m");
  const auto units = qmr::probe::sensitivity_units(m, true, true, true, true);
  REQUIRE(units.size() == 14 + 2 + 7 + 1);
  CHECK(units[0].name == "layer 0 q");
  CHECK(units[0].tensors == std::vector<std::string>{"model.layers.0.self_attn.q_proj.weight"});
  CHECK(units[13].name == "layer 1 down");
  CHECK(units[15].kind == unit_kind::layer);
  CHECK(units[15].tensors.size() == 7);
  for (const auto& t : units[15].tensors) CHECK(t.find("model.layers.1.") == 0);
  CHECK(units[22].name == "down");
  CHECK(units[22].tensors == std::vector<std::string>{"model.layers.0.mlp.down_proj.weight", "model.layers.1.mlp.down_proj.weight"});
  CHECK(units[23].kind == unit_kind::all);
  CHECK(units[23].tensors.size() == 14);  // the embedding and the head are no unit's
  CHECK(qmr::probe::sensitivity_units(m, false, true, false, false).size() == 2);
}

TEST_CASE("sensitivity: the reference scores itself as an independent forward pass does", "[probe]") {
  fixture f(12, 3);
  const auto& items = f.items;
  const std::vector<float>& z = f.logits;
  qmr::probe::sensitivity_probe p(f.m, items);
  const auto& ref = p.reference();
  CHECK(ref.kl == 0.0);
  CHECK(ref.top1 == 1.0);
  // NLL and verbatim answers from the independent pass.
  double nll = 0;
  int verbatim = 0;
  std::size_t pos = 0;
  for (const auto& it : items) {
    bool all = true;
    for (const std::int32_t want : it.continuation) {
      const float* row = z.data() + pos * 96;
      const auto lp = log_softmax(row, 96);
      nll -= lp[static_cast<std::size_t>(want)];
      std::int64_t arg = 0;
      for (std::int64_t v = 1; v < 96; ++v)
        if (row[v] > row[arg]) arg = v;
      all = all && arg == want;
      ++pos;
    }
    verbatim += all;
  }
  REQUIRE(static_cast<std::int64_t>(pos) == p.positions());
  CHECK(ref.nll == Approx(nll / static_cast<double>(pos)).epsilon(1e-12));
  CHECK(ref.verbatim == Approx(verbatim / 12.0));
  CHECK(ref.verbatim_by_level[0] == -1.0);  // no item without a level
  for (int l = 1; l <= 5; ++l) CHECK(ref.verbatim_by_level[static_cast<std::size_t>(l)] >= 0.0);
}

TEST_CASE("sensitivity: KL falls as bits rise, matches a model quantized by hand, and leaves the weights as they were", "[probe]") {
  fixture f(10, 5);
  auto& m = f.m;
  const auto& items = f.items;
  const std::vector<float>& before = f.logits;
  const auto& dir = f.dir;
  qmr::probe::sensitivity_probe p(m, items);
  const auto units = qmr::probe::sensitivity_units(m, true, true, false, true);
  const auto& all = units.back();
  REQUIRE(all.kind == unit_kind::all);

  const auto kl = [&](const char* f) { return p.measure(all, quant::parse_format(f)).kl; };
  const double k8 = kl("w8g32"), k4 = kl("w4g32"), k3 = kl("w3g32"), k2 = kl("w2g32");
  INFO("KL w8 " << k8 << ", w4 " << k4 << ", w3 " << k3 << ", w2 " << k2);
  CHECK(k8 < 0.02 * k4);  // 8 bits: nearly lossless beside 4 (Student-t weights: 7e-4 nats against 0.18)
  CHECK(k8 < k4);
  CHECK(k4 < k3);
  CHECK(k3 < k2);
  for (const auto& u : units) {
    const auto r = p.measure(u, quant::parse_format("w2g32"));
    INFO(u.name);
    CHECK(r.kl > 0.0);
    CHECK(r.kl_max >= r.kl);
    CHECK(r.top1 <= 1.0);
  }
  // The weights are back: the same logits, bit for bit.
  CHECK(all_logits(m, items) == before);

  // Layer 1 at w3g32 against a second copy of the model whose seven layer-1 linears were
  // quantized by hand; KL recomputed here from both passes' logits.
  const auto& layer1 = units[14 + 1];
  REQUIRE(layer1.name == "layer 1");
  const auto r = p.measure(layer1, quant::parse_format("w3g32"));
  auto hand = qmr::model::model::load(dir / "m");
  for (const auto& name : layer1.tensors) {
    auto& w = hand.linear(name);
    const std::vector<float> f = hand.linear_f32(w);
    hand.set_quantized(w, quant::quantize_rtn({f.data(), w.rows, w.cols}, quant::parse_format("w3g32")));
  }
  const std::vector<float> zq = all_logits(hand, items);
  double want = 0;
  std::int64_t agree = 0;
  for (std::int64_t i = 0; i < p.positions(); ++i) {
    const auto lr = log_softmax(before.data() + i * 96, 96), lq = log_softmax(zq.data() + i * 96, 96);
    double d = 0;
    std::size_t ar = 0, aq = 0;
    for (std::size_t v = 0; v < 96; ++v) {
      d += std::exp(lr[v]) * (lr[v] - lq[v]);
      if (lr[v] > lr[ar]) ar = v;
      if (lq[v] > lq[aq]) aq = v;
    }
    want += d;
    agree += ar == aq;
  }
  want /= static_cast<double>(p.positions());
  CHECK(r.kl == Approx(want).epsilon(1e-4));  // the probe keeps the reference's log-probabilities in f32
  CHECK(r.top1 == Approx(static_cast<double>(agree) / static_cast<double>(p.positions())));
  // Deterministic: the same unit again gives the same numbers.
  const auto again = p.measure(layer1, quant::parse_format("w3g32"));
  CHECK(again.kl == r.kl);
  CHECK(again.nll == r.nll);
  CHECK(again.verbatim_by_level == r.verbatim_by_level);
}

TEST_CASE("sensitivity over a background: every linear low, one raised from its stored weights, all put back", "[probe]") {
  fixture f(10, 9);
  auto& m = f.m;
  const auto& items = f.items;
  const auto units = qmr::probe::sensitivity_units(m, true, true, false, true);
  const auto& all = units.back();
  const auto& layer1 = units[14 + 1];
  REQUIRE(layer1.name == "layer 1");
  std::vector<std::string> tensors;
  for (const auto& u : units)
    if (u.kind == unit_kind::linear) tensors.insert(tensors.end(), u.tensors.begin(), u.tensors.end());
  REQUIRE(tensors.size() == 14);
  double raised_kl = 0;
  {
    qmr::probe::sensitivity_probe p(m, items);
    const auto low = quant::parse_format("w2g32"), high = quant::parse_format("w8g32");
    const double all_low = p.measure(all, low).kl;
    p.set_background(tensors, low);
    CHECK(p.measure_background("bg").kl == all_low);  // the same quantization as the 'all' unit
    const auto raised = p.measure(layer1, high);
    raised_kl = raised.kl;
    // A second copy: every layer linear at w2g32 but layer 1's, at w8g32 from the stored weights.
    auto hand = qmr::model::model::load(f.dir / "m");
    for (const auto& name : tensors) {
      auto& w = hand.linear(name);
      const std::vector<float> v = hand.linear_f32(w);
      const bool up = std::find(layer1.tensors.begin(), layer1.tensors.end(), name) != layer1.tensors.end();
      hand.set_quantized(w, quant::quantize_rtn({v.data(), w.rows, w.cols}, up ? high : low));
    }
    const std::vector<float> zq = all_logits(hand, items);
    double want = 0;
    for (std::int64_t i = 0; i < p.positions(); ++i) {
      const auto lr = log_softmax(f.logits.data() + i * 96, 96), lq = log_softmax(zq.data() + i * 96, 96);
      for (std::size_t v = 0; v < 96; ++v) want += std::exp(lr[v]) * (lr[v] - lq[v]);
    }
    want /= static_cast<double>(p.positions());
    CHECK(raised.kl == Approx(want).epsilon(1e-4));
    CHECK(raised.kl < all_low);  // 8 bits in place of 2 on a seventh of the linears
    {
      // A background with a format per tensor (a plan built in rounds): layer 1's linears at
      // w8g32 in it score what raising them over the all-w2g32 background did, bit for bit.
      std::vector<std::pair<std::string, quant::format_spec>> mixed;
      for (const auto& name : tensors)
        mixed.emplace_back(name, std::find(layer1.tensors.begin(), layer1.tensors.end(), name) != layer1.tensors.end() ? high : low);
      p.set_background(mixed);
      CHECK(p.measure_background("mixed").kl == raised.kl);
      CHECK_THROWS_WITH(p.set_background({{tensors.front(), quant::parse_format("bf16")}}), Catch::Contains(tensors.front()));
      p.set_background(tensors, low);
    }
    // After the unit, the background is as it was.
    CHECK(p.measure_background("bg").kl == all_low);
    p.clear_background();
    CHECK(all_logits(m, items) == f.logits);
    // A background that cannot be built is undone: w4g128 cannot group 64 columns.
    CHECK_THROWS_WITH(p.set_background(tensors, quant::parse_format("w4g128")), Catch::Contains("cannot group"));
    CHECK(all_logits(m, items) == f.logits);
    p.set_background(tensors, low);  // left set: the probe's end puts the weights back
  }
  CHECK(all_logits(m, items) == f.logits);
  CHECK(raised_kl > 0.0);
}

TEST_CASE("sensitivity: bad input is named, and a failed measurement leaves the weights as they were", "[probe]") {
  fixture f(6, 11);
  auto& m = f.m;
  using Catch::Matchers::Contains;
  CHECK_THROWS_WITH(qmr::probe::sensitivity_probe(m, {}), Contains("at least one item"));
  auto items = random_items(4, 96, 9);
  items[2].continuation.clear();
  CHECK_THROWS_WITH(qmr::probe::sensitivity_probe(m, items), Contains("item 2") && Contains("non-empty"));
  items = random_items(4, 96, 9);
  items[1].context[0] = 96;
  CHECK_THROWS_WITH(qmr::probe::sensitivity_probe(m, items), Contains("item 1") && Contains("token id 96"));
  items = random_items(4, 96, 9);
  items[0].context.assign(2048, 5);  // with its continuation, past the model's 2048 positions
  CHECK_THROWS_WITH(qmr::probe::sensitivity_probe(m, items), Contains("longer than the model's 2048 positions"));
  items = random_items(4, 96, 9);
  items[3].level = 6;
  CHECK_THROWS_WITH(qmr::probe::sensitivity_probe(m, items), Contains("item 3") && Contains("level 6"));

  items = f.items;
  qmr::probe::sensitivity_probe p(m, items);
  CHECK_THROWS_WITH(p.measure(qmr::probe::unit{unit_kind::layer, 0, "", "empty", {}}, quant::parse_format("w4g32")),
                    Contains("quantizes no tensor"));
  CHECK_THROWS_WITH(p.measure(qmr::probe::unit{unit_kind::linear, 0, "q", "bad", {"no.such.weight"}}, quant::parse_format("w4g32")),
                    Contains("no.such.weight"));
  CHECK_THROWS_WITH(p.measure(qmr::probe::sensitivity_units(m, false, false, false, true)[0], quant::parse_format("bf16")),
                    Contains("not a quantized format"));
  // A unit whose second tensor does not fit the format (w4g128: down_proj has 128 columns, o_proj 64)
  // fails after its first was quantized, and puts the first back.
  qmr::probe::unit mixed{unit_kind::layer, 0, "", "mixed", {"model.layers.0.mlp.down_proj.weight", "model.layers.0.self_attn.o_proj.weight"}};
  CHECK_THROWS_WITH(p.measure(mixed, quant::parse_format("w4g128")), Contains("o_proj") && Contains("64 columns"));
  CHECK(all_logits(m, items) == f.logits);
}

TEST_CASE("sensitivity: the bundled model's synthetic items are its prompts and reference answers", "[probe][bundled]") {
  const char* root = std::getenv("QMR_MODELS_DIR");
  if (root == nullptr) {
    WARN("QMR_MODELS_DIR is not set: skipped");
    return;
  }
  const std::filesystem::path dir = std::filesystem::path(root) / "qmr-math";
  const auto tok = qmr::text::tokenizer::load(dir / "tokenizer.json");
  auto m = qmr::model::model::load(dir);
  const std::int32_t eos = qmr::model::default_stop_tokens(m).at(0);
  const auto items = qmr::probe::synthetic_items(tok, 10, 1000, eos);
  REQUIRE(items.size() == 10);
  const auto problems = qmr::eval::make_problems(10, {.types = {}, .levels = {}, .max_operand = 0, .seed = 1000});
  for (std::size_t i = 0; i < items.size(); ++i) {
    CHECK(tok.decode(items[i].context) == "Question: " + problems[i].question + "\nAnswer:");
    std::vector<std::int32_t> answer(items[i].continuation.begin(), items[i].continuation.end() - 1);
    CHECK(tok.decode(answer) == " " + problems[i].answer);
    CHECK(items[i].continuation.back() == eos);
    CHECK(items[i].level == problems[i].level);
  }
  // The bundled model reproduces most reference answers, and w2g64 on every linear costs it.
  qmr::probe::sensitivity_probe p(m, items);
  CHECK(p.reference().verbatim >= 0.8);
  const auto r = p.measure(qmr::probe::sensitivity_units(m, false, false, false, true)[0], quant::parse_format("w2g64"));
  CHECK(r.kl > 1e-3);
  CHECK_THROWS_WITH(qmr::probe::synthetic_items(tok, 0, 1, eos), Catch::Matchers::Contains("at least one problem"));
}

TEST_CASE("heatmap SVG: labelled cells, missing values grey, escaped text", "[probe][report]") {
  const std::string svg = qmr::report::heatmap_svg("KL <w2>", {"layer 0", "layer 1"}, {"q", "k&v"}, {1e-4, NAN, 1e-2, 1e-3}, true);
  CHECK(svg.find("<svg") == 0);
  CHECK(svg.find("KL &lt;w2&gt;") != std::string::npos);
  CHECK(svg.find("k&amp;v") != std::string::npos);
  CHECK(svg.find("fill=\"#ddd\"") != std::string::npos);       // the missing value
  CHECK(svg.find("fill=\"rgb(140,0,0)\"") != std::string::npos);  // the largest: darkest
  CHECK(svg.find("fill=\"rgb(255,255,255)\"") != std::string::npos);  // the smallest: white
  CHECK(svg.find(">0.01<") != std::string::npos);
  CHECK_THROWS(qmr::report::heatmap_svg("t", {"a"}, {"b"}, {1.0, 2.0}, false));
}

TEST_CASE("bit allocation: the most KL saved per extra bit first, within the budget, as a plan the model accepts", "[probe]") {
  using qmr::probe::allocation_item;
  const auto lo = quant::parse_format("w2g64"), hi = quant::parse_format("w4g128");
  const double b_lo = lo.bits_per_weight(128), b_hi = hi.bits_per_weight(128);
  // Four linears of 128 columns: a (1000 weights, saves 10), b (4000, saves 20: half a's rate),
  // c (1000, saves 8), d (1000, saves nothing).
  std::vector<allocation_item> items = {{"a", 0, "q", 1000, 128, 10.0, 0.0},
                                        {"b", 0, "up", 4000, 128, 21.0, 1.0},
                                        {"c", 1, "k", 1000, 128, 8.5, 0.5},
                                        {"d", 1, "v", 1000, 128, 1.0, 1.0}};
  const double total = 7000;
  const auto bits_with = [&](double raised) { return (total * b_lo + raised * (b_hi - b_lo)) / total; };
  // Room for a and c (2000 weights) but not b: a, then c (b's rate is lower than c's, and b does not fit).
  auto r = qmr::probe::allocate_bits(items, lo, hi, bits_with(2500));
  CHECK(r.high == std::vector<bool>{true, false, true, false});
  CHECK(r.bits_per_weight == Approx(bits_with(2000)));
  CHECK(r.kl_sum == Approx(0.0 + 21.0 + 0.5 + 1.0));
  // A budget for everything raises all but d, which saves nothing.
  r = qmr::probe::allocate_bits(items, lo, hi, b_hi);
  CHECK(r.high == std::vector<bool>{true, true, true, false});
  // The floor: nothing raised; below it, an error naming the formats' bits.
  r = qmr::probe::allocate_bits(items, lo, hi, b_lo);
  CHECK(r.high == std::vector<bool>{false, false, false, false});
  CHECK(r.bits_per_weight == Approx(b_lo));
  CHECK_THROWS_WITH(qmr::probe::allocate_bits(items, lo, hi, 2.0), Catch::Matchers::Contains("below w2g64"));
  CHECK_THROWS_WITH(qmr::probe::allocate_bits(items, hi, lo, 8.0), Catch::Matchers::Contains("no more bits"));
  CHECK_THROWS(qmr::probe::allocate_bits({}, lo, hi, 3.0));
  // Raises fixed by an earlier round count first: with d fixed, the budget of a and c leaves room
  // for a alone (the best remaining), whatever d saves.
  r = qmr::probe::allocate_bits(items, lo, hi, bits_with(2500), {false, false, false, true});
  CHECK(r.high == std::vector<bool>{true, false, false, true});
  CHECK(r.bits_per_weight == Approx(bits_with(2000)));
  CHECK_THROWS_WITH(qmr::probe::allocate_bits(items, lo, hi, bits_with(2500), {false, true, false, false}),
                    Catch::Matchers::Contains("raised already"));
  CHECK_THROWS_WITH(qmr::probe::allocate_bits(items, lo, hi, b_hi, {true}), Catch::Matchers::Contains("1 fixed flags for 4 linears"));

  // As a plan over a model: each raised linear gets w4g128, the rest w2g64, the embedding and head stay.
  qmr::testing::temp_dir dir;
  qmr::testing::write_probe_model(dir / "m");
  const auto m = qmr::model::model::load(dir / "m");
  std::vector<allocation_item> lin;
  for (const auto& u : qmr::probe::sensitivity_units(m, true, false, false, false)) {
    lin.push_back({u.tensors[0], u.layer, u.component, 64 * 64, 64, u.component == "down" ? 1.0 : 0.1, 0.0});
  }
  qmr::probe::allocation a;
  a.high.assign(lin.size(), false);
  a.high[6] = a.high[13] = true;  // both down projections
  const std::string text = qmr::probe::allocation_plan(lin, a, lo, hi, m.config().tie_word_embeddings, "test");
  const auto plan = quant::precision_plan::parse(text, "alloc.plan");
  for (const auto& as : plan.resolve(m.linear_targets())) {
    INFO(as.target.name);
    if (as.target.layer < 0) CHECK(as.format.keep);
    else CHECK(as.format.spec.str() == (as.target.component == quant::plan_component::down ? "w4g128" : "w2g64"));
  }
}
