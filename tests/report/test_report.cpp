// Tests of the report headers: SVG charts, the Markdown/HTML document, eval results read back with paired tests and break orders, and the study report's findings.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "qmr/report/study.hpp"

namespace {

using namespace qmr::report;

std::size_t count(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + what.size())) ++n;
  return n;
}

// A run's results JSON as qmr eval writes it: `correct[i]` for problem i, levels 1..5 and
// two types in turn.
nlohmann::json run_json(const std::string& weights, const std::vector<bool>& correct, double bits = NAN) {
  nlohmann::json j = {{"task", "synthetic"}, {"weights", weights}, {"seed", 1000}, {"items", nlohmann::json::array()}};
  if (std::isfinite(bits)) j["efficiency"] = {{"layer_bits_per_weight", bits}};
  for (std::size_t i = 0; i < correct.size(); ++i)
    j["items"].push_back({{"id", "p" + std::to_string(i)},
                          {"correct", static_cast<bool>(correct[i])},
                          {"level", static_cast<int>(i % 5) + 1},
                          {"type", i % 2 ? "addition" : "percent"},
                          {"error_kind", correct[i] ? "" : "calculation"}});
  return j;
}

// n problems; each solved unless `fails(i)`.
template <class F>
std::vector<bool> answers(std::size_t n, const F& fails) {
  std::vector<bool> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = !fails(i);
  return v;
}

}  // namespace

TEST_CASE("nice_ticks covers the range in steps of 1, 2 or 5 times a power of ten", "[report]") {
  for (const auto& [lo, hi] : std::vector<std::pair<double, double>>{{0, 100}, {2.1, 4.3}, {0.0013, 0.0171}, {-3, 7}, {5, 5}}) {
    const auto t = qmr::report::detail::nice_ticks(lo, hi);
    INFO(lo << " .. " << hi);
    REQUIRE(t.size() >= 2);
    CHECK(t.front() <= lo + 1e-12);
    CHECK(t.back() >= std::min(hi, lo + 1) - 1e-12);
    const double step = t[1] - t[0];
    const double mant = step / std::pow(10.0, std::floor(std::log10(step)));
    CHECK((std::abs(mant - 1) < 1e-6 || std::abs(mant - 2) < 1e-6 || std::abs(mant - 5) < 1e-6));
  }
}

TEST_CASE("line_chart_svg draws every finite point, lines, labels and reference lines, escaped", "[report]") {
  chart_axes a;
  a.title = "acc <by> bits";
  a.x_label = "bits";
  a.y_label = "accuracy %";
  a.y_refs.push_back({98.9, "stored & bf16"});
  chart_series s1{"uniform", {2.28, 3.16, 4.16}, {55.6, 98.5, 98.9}, {"w2g64", "w3g128", "w4g128"}, true};
  chart_series s2{"plans", {2.75, 3.0}, {96.5, NAN}, {}, false};
  const std::string svg = line_chart_svg(a, {s1, s2});
  CHECK(svg.rfind("<svg", 0) == 0);
  CHECK(svg.find("</svg>") != std::string::npos);
  CHECK(count(svg, "<circle cx=") == 3 + 1 + 2);  // the points, plus two legend markers
  CHECK(count(svg, "<path d=\"M") == 1);            // only the connected series
  CHECK(svg.find("acc &lt;by&gt; bits") != std::string::npos);
  CHECK(svg.find("stored &amp; bf16") != std::string::npos);
  CHECK(svg.find("stroke-dasharray") != std::string::npos);
  CHECK(svg.find(">w3g128<") != std::string::npos);
  CHECK_THROWS_WITH(line_chart_svg(a, {chart_series{"bad", {1, 2}, {1}, {}, true}}), Catch::Contains("'bad'") && Catch::Contains("2 x and 1 y"));
  CHECK_THROWS_WITH(line_chart_svg(a, {chart_series{"lab", {1, 2}, {1, 2}, {"one"}, true}}), Catch::Contains("1 labels for 2 points"));
  // A log axis leaves out what it cannot draw.
  a.y_log = true;
  a.y_refs.clear();
  const std::string log_svg = line_chart_svg(a, {chart_series{"kl", {0, 1, 2}, {1e-4, 0.0, 3e-2}, {}, false}});
  CHECK(count(log_svg, "<circle cx=") == 2 + 1);
}

TEST_CASE("bar_chart_svg draws one bar per finite value and checks its shapes", "[report]") {
  chart_axes a;
  a.title = "by level";
  const std::string svg = bar_chart_svg(a, {"L1", "L2", "L3"}, {{"w4", {100, 90, NAN}}, {"w2", {80, -5, 30}}});
  CHECK(count(svg, "</title></rect>") == 5);
  CHECK(svg.find("w2, L2: -5") != std::string::npos);
  CHECK_THROWS_WITH(bar_chart_svg(a, {"L1", "L2"}, {{"w4", {1}}}), Catch::Contains("'w4' has 1 values for 2 categories"));
  CHECK_THROWS(bar_chart_svg(a, {}, {}));
}

TEST_CASE("document renders Markdown with linked figures and HTML with inline ones, escaped", "[report]") {
  document d("A <study>");
  d.heading("Results");
  d.paragraph("x < y & z");
  d.bullets({"one", "two"});
  d.add_table({{"weights", "acc|%"}, {{"w4g128", "98.5"}}});
  d.add_figure({"charts/a.svg", "<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>", "Accuracy"});
  const std::string md = to_markdown(d);
  CHECK(md.rfind("# A <study>\n", 0) == 0);
  CHECK(md.find("## Results") != std::string::npos);
  CHECK(md.find("| weights | acc\\|% |\n|---|---|\n| w4g128 | 98.5 |") != std::string::npos);
  CHECK(md.find("- one\n- two") != std::string::npos);
  CHECK(md.find("![Accuracy](charts/a.svg)") != std::string::npos);
  const std::string html = to_html(d);
  CHECK(html.find("<title>A &lt;study&gt;</title>") != std::string::npos);
  CHECK(html.find("<p>x &lt; y &amp; z</p>") != std::string::npos);
  CHECK(html.find("<figure>\n<svg") != std::string::npos);
  CHECK(html.find("<td>w4g128</td>") != std::string::npos);
  CHECK_THROWS_WITH(d.add_table({{"a", "b"}, {{"only one"}}}), Catch::Contains("row 0 has 1 cells for 2 columns"));
  CHECK_THROWS(d.add_figure({"", "<svg/>", "no file"}));
  CHECK_THROWS(d.heading("deep", 5));
}

TEST_CASE("eval results parse from one run or several, and errors name the file and field", "[report]") {
  const nlohmann::json one = run_json("w4g128", answers(10, [](std::size_t i) { return i == 3; }));
  const auto r1 = parse_eval_results(one, "a.json");
  REQUIRE(r1.size() == 1);
  CHECK(r1[0].weights == "w4g128");
  CHECK(r1[0].seed == 1000);
  CHECK(r1[0].overall().n == 10);
  CHECK(r1[0].overall().correct == 9);
  CHECK(r1[0].by_level().at(4).correct == 1);  // problem 3 is level 4, and so is problem 8
  CHECK(r1[0].by_type().at("addition").n == 5);
  CHECK(r1[0].errors().at("calculation") == 1);
  CHECK(r1[0].bits_per_weight == Approx(4.15625));  // from the format's name
  nlohmann::json many = {{"task", "synthetic"}, {"runs", {run_json("stored", answers(10, [](std::size_t) { return false; }), 16.0),
                                                          run_json("@plan.txt", answers(10, [](std::size_t) { return false; }), 2.75)}}};
  const auto r2 = parse_eval_results(many, "b.json");
  REQUIRE(r2.size() == 2);
  CHECK(r2[0].bits_per_weight == 16.0);
  CHECK(r2[1].bits_per_weight == 2.75);  // recorded: plans have no name to work it out from
  CHECK(std::isnan(parse_eval_results(run_json("gptq:w3g128", {true}), "c.json")[0].bits_per_weight));

  nlohmann::json bad = many;
  bad["runs"][1]["items"][4]["correct"] = "yes";
  CHECK_THROWS_WITH(parse_eval_results(bad, "b.json"), Catch::Contains("b.json") && Catch::Contains("runs[1].items[4].correct"));
  bad = one;
  bad.erase("items");
  CHECK_THROWS_WITH(parse_eval_results(bad, "a.json"), Catch::Contains("'items'") && Catch::Contains("per-problem records"));
  bad = one;
  bad["items"][0]["level"] = -2;
  CHECK_THROWS_WITH(parse_eval_results(bad, "a.json"), Catch::Contains("items[0].level"));
  CHECK_THROWS_WITH(parse_eval_results(nlohmann::json::array(), "x.json"), Catch::Contains("x.json"));
  CHECK_THROWS_WITH(parse_eval_results(nlohmann::json{{"items", nlohmann::json::array()}}, "y.json"), Catch::Contains("'weights'"));
}

TEST_CASE("format_name_bits counts codes, scales and zero points of plain formats only", "[report]") {
  CHECK(format_name_bits("w4g128") == Approx(4 + 16.0 / 128 + 4.0 / 128));
  CHECK(format_name_bits("w2g64") == Approx(2.28125));
  CHECK(format_name_bits("w3g128s") == Approx(3.125));
  CHECK(format_name_bits("bf16") == 16.0);
  for (const char* s : {"stored", "gptq:w3g128", "@plan.txt", "w8g128+a8", "w4gc", "nonsense"}) CHECK(std::isnan(format_name_bits(s)));
}

TEST_CASE("the exact McNemar p matches the binomial tail", "[report]") {
  CHECK(mcnemar_exact_p(0, 0) == 1.0);
  CHECK(mcnemar_exact_p(5, 5) == 1.0);
  CHECK(mcnemar_exact_p(10, 0) == Approx(2.0 / 1024.0));
  CHECK(mcnemar_exact_p(0, 10) == Approx(2.0 / 1024.0));
  // 3 of 12: 2 * (1 + 12 + 66 + 220) / 4096
  CHECK(mcnemar_exact_p(3, 9) == Approx(2.0 * 299.0 / 4096.0));
  CHECK(mcnemar_exact_p(196, 20) < 1e-30);  // large counts stay finite in log space
  CHECK(mcnemar_exact_p(196, 20) > 0.0);
}

TEST_CASE("paired_compare counts the discordant problems by id, ignoring problems one side lacks", "[report]") {
  const auto a = parse_eval_results(run_json("a", answers(20, [](std::size_t i) { return i < 4; })), "a")[0];
  auto bj = run_json("b", answers(20, [](std::size_t i) { return i >= 2 && i < 10; }));
  bj["items"].erase(19);  // b lacks problem 19
  const auto b = parse_eval_results(bj, "b")[0];
  const paired_result p = paired_compare(a, b);
  CHECK(p.n == 19);
  CHECK(p.only_a == 6);  // 4..9
  CHECK(p.only_b == 2);  // 0, 1
  CHECK(p.difference() == Approx(4.0 / 19.0));
  CHECK(p.p == Approx(mcnemar_exact_p(6, 2)));
  const paired_result l1 = paired_compare(a, b, [](const eval_item& i) { return i.level == 1; });  // problems 0, 5, 10, 15
  CHECK(l1.n == 4);
  CHECK(l1.only_a == 1);
  CHECK(l1.only_b == 1);
}

TEST_CASE("break_order finds where each level breaks first, most fragile first", "[report]") {
  constexpr std::size_t n = 1000;  // 200 a level
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> u(0, 1);
  // Level L (1..5) of problem i is i % 5 + 1. The reference solves everything; w8 loses 1% at
  // random; w4 loses 40% of L5; w2 loses 40% of L4 and L5 and 10% of L3.
  const auto lose = [&](std::size_t i, double l3, double l4, double l5, double all) {
    const int level = static_cast<int>(i % 5) + 1;
    const double r = u(rng);
    return r < all || (level == 3 && r < l3) || (level == 4 && r < l4) || (level == 5 && r < l5);
  };
  const auto ref = parse_eval_results(run_json("stored", answers(n, [](std::size_t) { return false; }), 16), "s")[0];
  const auto w8 = parse_eval_results(run_json("w8g128", answers(n, [&](std::size_t i) { return lose(i, 0, 0, 0, 0.01); })), "s")[0];
  const auto w4 = parse_eval_results(run_json("w4g128", answers(n, [&](std::size_t i) { return lose(i, 0, 0, 0.4, 0); })), "s")[0];
  const auto w2 = parse_eval_results(run_json("w2g64", answers(n, [&](std::size_t i) { return lose(i, 0.1, 0.4, 0.4, 0); })), "s")[0];
  const auto plan = parse_eval_results(run_json("gptq:w3g128", answers(n, [](std::size_t) { return true; })), "s")[0];  // no bits: skipped
  const auto order = break_order(ref, {&ref, &w2, &plan, &w8, &w4}, true);
  REQUIRE(order.size() == 5);
  CHECK(order[0].category == "L5");
  CHECK(order[0].breaks_at == "w4g128");
  CHECK(order[0].breaks_at_bits == Approx(4.15625));
  CHECK(order[0].drop > 0.3);
  CHECK(order[0].p < 1e-10);
  CHECK(order[1].category == "L4");
  CHECK(order[1].breaks_at == "w2g64");
  CHECK(order[2].category == "L3");  // 10% of 200: significant
  CHECK(order[2].breaks_at == "w2g64");
  for (std::size_t i = 3; i < 5; ++i) {
    CHECK(order[i].breaks_at.empty());  // L1, L2 lose ~1% at w8: below 5 points
    CHECK(order[i].worst_drop < 0.05);
  }
  CHECK(order[0].worst_at != "gptq:w3g128");
}

TEST_CASE("study_report states what breaks first and carries its charts", "[report]") {
  constexpr std::size_t n = 500;
  study_inputs in;
  in.evals.push_back(parse_eval_results(
      nlohmann::json{{"runs",
                      {run_json("stored", answers(n, [](std::size_t) { return false; }), 16.0),
                       run_json("w4g128", answers(n, [](std::size_t i) { return i % 100 == 0; })),
                       run_json("w2g64", answers(n, [](std::size_t i) { return i % 5 == 4 || (i % 2 == 1 && i % 3 == 0); }))}}},
      "sweep.json"));
  nlohmann::json sens = {{"reference", {{"verbatim", 0.97}}}, {"units", nlohmann::json::array()}};
  const std::vector<std::string> comps = {"q", "k", "v", "o", "gate", "up", "down"};
  for (int l = 0; l < 3; ++l) {
    for (std::size_t c = 0; c < comps.size(); ++c)
      sens["units"].push_back({{"format", "w2g64"}, {"unit", "model.layers." + std::to_string(l) + "." + comps[c]}, {"kind", "linear"},
                               {"layer", l}, {"component", comps[c]}, {"kl", (l == 0 && comps[c] == "down") ? 0.5 : 0.01 * (c + 1)},
                               {"kl_max", 1.0}, {"top1", 0.9}, {"verbatim", 0.8}});
    sens["units"].push_back({{"format", "w2g64"}, {"unit", "layer " + std::to_string(l)}, {"kind", "layer"}, {"layer", l},
                             {"component", ""}, {"kl", l == 0 ? 0.9 : 0.1}, {"kl_max", 1.0}, {"top1", 0.9}, {"verbatim", 0.8}});
  }
  sens["units"].push_back({{"format", "w2g64"}, {"unit", "all"}, {"kind", "all"}, {"layer", -1}, {"component", ""}, {"kl", 5.5},
                           {"kl_max", 9.0}, {"top1", 0.5}, {"verbatim", 0.2}});
  in.sensitivity = parse_sensitivity(sens, "sensitivity.json");
  nlohmann::json st = {{"points", nlohmann::json::array()}, {"attention", {{{"layer", 0}, {"entropy", 1.5}, {"first_token_mass", 0.3}}}}};
  for (int l = 0; l < 3; ++l)
    for (const char* p : {"attn_norm", "mlp_act"})
      st["points"].push_back({{"layer", l}, {"point", p}, {"rms", 1.0}, {"max_abs", (l == 2 && std::string(p) == "mlp_act") ? 40.0 : 5.0},
                              {"kurtosis", 3.0}, {"a8_error", 0.01}, {"a4_error", l == 1 ? 0.3 : 0.1}, {"outlier_channels", 2},
                              {"channels", 256}});
  in.stats = parse_stats(st, "stats.json");

  const document d = study_report(in);
  const std::string md = to_markdown(d);
  INFO(md);
  REQUIRE(d.blocks().size() > 3);
  CHECK(d.blocks()[0].text == "Findings");
  CHECK(d.blocks()[1].k == block::kind::bullets);
  const auto& f = d.blocks()[1].items;
  const auto has = [&](const std::string& s) { return std::any_of(f.begin(), f.end(), [&](const std::string& x) { return x.find(s) != std::string::npos; }); };
  CHECK(has("w4g128 (4.16 bits/weight) is the fewest bits with no significant loss"));
  CHECK(has("the largest loss is w2g64"));
  CHECK(has("the first level to break is L5, at w2g64"));
  CHECK(has("operation types in the order they break (points lost): addition at w2g64 (-"));
  CHECK(has("), percent at w2g64 (-20.0)."));
  CHECK(has("the most sensitive linear is model.layers.0.down"));
  CHECK(has("the most sensitive layer is 0 (KL 0.9, 9.0x the next)"));
  CHECK(has("all layers at once cost 5.5, 5.0x the sum of the layers alone"));
  CHECK(has("largest activation outlier is at layer 2's down input: max |x| = 40.0x RMS"));
  CHECK(has("int4 activations hurt most at layer 1's"));
  // Charts: accuracy/bits, levels, types; layer bars; linear heatmap; two activation charts.
  CHECK(d.figures().size() == 7);
  const std::string html = to_html(d);
  CHECK(count(html, "<figure>\n<svg") == 7);
  CHECK(count(md, "](charts/") == 7);

  // Plans against the formats around them; a method against RTN at its bits; a set without
  // 'stored' compared with its configuration of the most bits.
  study_inputs plans;
  plans.evals.push_back(parse_eval_results(
      nlohmann::json{{"runs",
                      {run_json("w2g64", answers(100, [](std::size_t i) { return i % 2 == 0; })),
                       run_json("@plan.txt", answers(100, [](std::size_t i) { return i % 10 == 0; }), 2.75),
                       run_json("gptq:w2g64", answers(100, [](std::size_t i) { return i % 4 == 0; }), 2.28125),
                       run_json("w4g128", answers(100, [](std::size_t) { return false; }))}}},
      "plan.json"));
  const document pd = study_report(plans);
  const auto& pf = pd.blocks()[1].items;
  const auto phas = [&](const std::string& s) { return std::any_of(pf.begin(), pf.end(), [&](const std::string& x) { return x.find(s) != std::string::npos; }); };
  INFO(to_markdown(pd));
  CHECK(to_markdown(pd).find("no 'stored' run: every configuration is compared with w4g128") != std::string::npos);
  // (90 - 50) / (100 - 50) of the gap; (2.75 - 2.28125) / (4.15625 - 2.28125) of the bits
  CHECK(phas("@plan.txt (2.75 bits/weight) scores 90.0%, against 50.0% for w2g64 (2.28 bits; +40.0 points, 40 / 0 problems only one solved"));
  CHECK(phas("and 100.0% for w4g128 (4.16 bits; -10.0 points, 0 / 10 problems only one solved, p = 0.002): 80% of the accuracy gap closed with 25% of the extra bits"));
  CHECK(phas("gptq:w2g64 against w2g64: +25.0 points overall (25 / 0"));

  // A set without the reference still reports, and says why it compares nothing.
  study_inputs bare;
  bare.evals.push_back(parse_eval_results(run_json("w4g128", answers(20, [](std::size_t) { return false; })), "x.json"));
  const std::string bmd = to_markdown(study_report(bare));
  CHECK(bmd.find("No run named 'stored'") != std::string::npos);
  CHECK_THROWS_WITH(study_report(study_inputs{}), Catch::Contains("no results"));
}

TEST_CASE("sensitivity and statistics files: errors name the file and the field", "[report]") {
  nlohmann::json sens = {{"units", {{{"format", "w2g64"}, {"unit", "u"}, {"kind", "weird"}, {"kl", 0.1}, {"kl_max", 1}, {"top1", 1}, {"verbatim", 1}}}}};
  CHECK_THROWS_WITH(parse_sensitivity(sens, "s.json"), Catch::Contains("s.json") && Catch::Contains("units[0].kind") && Catch::Contains("weird"));
  sens["units"][0]["kind"] = "linear";
  sens["units"][0].erase("kl");
  CHECK_THROWS_WITH(parse_sensitivity(sens, "s.json"), Catch::Contains("units[0].kl"));
  CHECK_THROWS_WITH(parse_sensitivity(nlohmann::json::object(), "s.json"), Catch::Contains("no 'units' array"));
  nlohmann::json st = {{"points", {{{"layer", 0}, {"point", "attn_norm"}, {"max_abs", 1}}}}};
  CHECK_THROWS_WITH(parse_stats(st, "t.json"), Catch::Contains("t.json") && Catch::Contains("points[0].rms"));
}

TEST_CASE("calibrated runs: labels, sets merged across files by their problems, and each method against RTN by level", "[report]") {
  // A calibration record in a few words, defaults left out.
  CHECK(qmr::report::detail::calibration_label({{"source", "synth"}, {"n", 48}, {"len", 256}, {"damp", 0.01}, {"awq_pairs", "all"}, {"awq_clip", true}}) ==
        "synth 48x256");
  CHECK(qmr::report::detail::calibration_label({{"source", "data/calibration/generic_text.txt"}, {"n", 48}, {"len", 256}, {"damp", 10.0},
                                                {"awq_pairs", "qkv,gate_up"}, {"awq_clip", false}}) ==
        "generic_text 48x256, damp 10, pairs qkv,gate_up, no clip");
  CHECK(qmr::report::detail::calibration_label(nlohmann::json::object()).empty());

  constexpr std::size_t n = 200;  // 40 a level
  const auto with_calib = [](nlohmann::json run, const std::string& source) {
    run["calibration"] = {{"source", source}, {"n", 48}, {"len", 256}};
    return run;
  };
  // File 1: RTN and a synth-calibrated GPTQ that wins everywhere; file 2: the same problems, a
  // text-calibrated GPTQ that loses L5 badly and L4 by one problem; file 3: other problems (seed 2000).
  const nlohmann::json f1 = {{"runs",
                              {run_json("stored", answers(n, [](std::size_t) { return false; })),
                               run_json("w2g64", answers(n, [](std::size_t i) { return i % 2 == 0; })),
                               with_calib(run_json("gptq:w2g64", answers(n, [](std::size_t i) { return i % 10 == 0; })), "synth")}}};
  const nlohmann::json f2 = {{"runs",
                              {with_calib(run_json("gptq:w2g64", answers(n, [](std::size_t i) { return i % 5 == 4 || i == 3; })),
                                          "data/calibration/generic_text.txt"),
                               run_json("w2g64", answers(n, [](std::size_t i) { return i % 2 == 0; })),  // a duplicate: dropped
                               [&] {
                                 nlohmann::json r = run_json("gptq:w2g64", answers(n, [](std::size_t i) { return i % 2 == 0 || i == 3; }));
                                 r["calibration"] = {{"source", "generic_text.txt"}, {"n", 48}, {"len", 256}, {"damp", 10.0}};
                                 return r;
                               }()}}};
  nlohmann::json f3 = run_json("w2g64", answers(n, [](std::size_t) { return false; }));
  f3["seed"] = 2000;
  const auto sets = merge_problem_sets({parse_eval_results(f1, "f1.json"), parse_eval_results(f2, "f2.json"), parse_eval_results(f3, "f3.json")});
  REQUIRE(sets.size() == 2);
  REQUIRE(sets[0].size() == 5);
  CHECK(sets[0][2].label() == "gptq:w2g64 [synth 48x256]");
  CHECK(sets[0][3].label() == "gptq:w2g64 [generic_text 48x256]");
  CHECK(sets[1].size() == 1);
  REQUIRE(rtn_counterpart(sets[0], sets[0][3]) == &sets[0][1]);
  CHECK(rtn_counterpart(sets[0], sets[0][1]) == nullptr);

  study_inputs in;
  in.evals = sets;
  const document d = study_report(in);
  const auto& f = d.blocks()[1].items;
  INFO(to_markdown(d));
  const auto has = [&](const std::string& s) { return std::any_of(f.begin(), f.end(), [&](const std::string& x) { return x.find(s) != std::string::npos; }); };
  // synth: fails 20 (i % 10 == 0, even), RTN fails 100 evens: +40 points, 80 only GPTQ.
  CHECK(has("gptq:w2g64 [synth 48x256] against w2g64: +40.0 points overall (80 / 0 problems only one solved"));
  CHECK(has("at or above RTN at every level"));
  // text: fails L5 (i % 5 == 4: 40, the 20 odd ones RTN solves) and problem 3, where it wins L4's evens.
  CHECK(has("gptq:w2g64 [generic_text 48x256] against w2g64: +29.5 points overall (80 / 21"));
  CHECK(has("below RTN at L5 (-50.0, 0 / 20, p = 1.9e-06) (significantly at L5)"));
  // damp 10: RTN's answers but problem 3 (L4).
  CHECK(has("gptq:w2g64 [generic_text 48x256, damp 10] against w2g64: -0.5 points overall (0 / 1 problems only one solved, p = 1); "
            "below RTN at L4 (-2.5, 0 / 1, p = 1) (none significantly: each p >= 0.05)"));
  CHECK(to_markdown(d).find("| method [calibration] | RTN | all | L1 | L2 | L3 | L4 | L5 |") != std::string::npos);
}

TEST_CASE("study_report ranks the raises measured over an all-low background apart from the one-at-a-time units", "[report]") {
  nlohmann::json sens = {{"units", nlohmann::json::array()}};
  const auto unit = [](const std::string& fmt, const std::string& name, const std::string& kind, int layer, const std::string& comp, double kl) {
    return nlohmann::json{{"format", fmt}, {"unit", name}, {"kind", kind}, {"layer", layer}, {"component", comp},
                          {"kl", kl}, {"kl_max", 1.0}, {"top1", 0.9}, {"verbatim", 0.5}};
  };
  // Alone, at w2g64: down of layer 0 first, then q of layer 1, ...
  const std::vector<std::pair<std::string, double>> alone = {{"layer 0 down", 0.5}, {"layer 1 q", 0.2}, {"layer 1 down", 0.1}};
  for (const auto& [name, kl] : alone) sens["units"].push_back(unit("w2g64", name, "linear", name[6] - '0', name.substr(8), kl));
  // Over all-w2g64 (KL 4.0): raising layer 1 down saves the most, then layer 0 down.
  nlohmann::json bg = unit("w2g64", "background", "all", -1, "", 4.0);
  bg["context"] = "w2g64";
  sens["units"].push_back(bg);
  for (const auto& [name, kl] : std::vector<std::pair<std::string, double>>{{"layer 0 down", 3.0}, {"layer 1 q", 3.9}, {"layer 1 down", 2.0}}) {
    nlohmann::json r = unit("w4g128", name, "linear", name[6] - '0', name.substr(8), kl);
    r["context"] = "w2g64";
    sens["units"].push_back(r);
  }
  study_inputs in;
  in.sensitivity = parse_sensitivity(sens, "s.json");
  REQUIRE(in.sensitivity->units[4].context == "w2g64");
  const document d = study_report(in);
  const std::string md = to_markdown(d);
  INFO(md);
  CHECK(md.find("In the all-w2g64 model, raising layer 1 down alone to w4g128 saves the most: KL 4 -> 2 (50.0%); "
                "3 of its 3 best raises are among the 3 linears most sensitive when quantized alone.") != std::string::npos);
  CHECK(md.find("| layer 1 down | 2 | 2 | 50.0 | 50.0 |") != std::string::npos);
  // The raises stay out of the one-at-a-time findings: layer 0 down is still the most sensitive alone.
  CHECK(md.find("At w2g64 the most sensitive linear is layer 0 down (KL 0.5") != std::string::npos);
  CHECK(md.find("At w4g128 the most sensitive") == std::string::npos);
  sens["units"][4]["context"] = 3;
  CHECK_THROWS_WITH(parse_sensitivity(sens, "s.json"), Catch::Contains("units[4].context"));
}
