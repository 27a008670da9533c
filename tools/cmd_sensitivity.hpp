// `qmr sensitivity`: which layers and components of a model break first under quantization (probe/sensitivity.hpp), as a table, JSON, CSV and SVG heatmaps; finished units are kept in the JSON after each one, and a rerun with the same settings resumes. `qmr stats`: activation and attention statistics per layer (probe/activation_stats.hpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli_integer.hpp"
#include "cmd_eval.hpp"
#include "qmr/io/json_file.hpp"
#include "qmr/io/text_file.hpp"
#include "qmr/model/generation_config.hpp"
#include "qmr/probe/activation_stats.hpp"
#include "qmr/probe/sensitivity.hpp"
#include "qmr/report/svg.hpp"

namespace qmr_cli {

struct sensitivity_args {
  std::string dir = default_model_dir(), quant = "w2g64", units = "linears,layers,components,all", out, plan_out;
  double plan_bits = 0;
  int n = 64, rounds = 1;
  std::uint64_t seed = 1000;
  bool clip = false, quiet = false, raise = false;
  unsigned threads = std::max(1u, std::thread::hardware_concurrency());
};

inline CLI::App* add_sensitivity_command(CLI::App& app, sensitivity_args& a) {
  auto* c = app.add_subcommand("sensitivity",
                               "Quantize one unit at a time (a linear, a layer, a component, all) and measure what it does to the "
                               "model's answers (KL to the unquantized model on teacher-forced synthetic problems)");
  c->add_option("--model", a.dir, "model directory (default: the bundled model)")->capture_default_str();
  c->add_option("--quant", a.quant, "comma-separated formats, each measured unit by unit (round to nearest)")->capture_default_str();
  c->add_option("--units", a.units, "comma-separated unit kinds: linears, layers, components, all")->capture_default_str();
  c->add_option("--n", a.n, "synthetic problems scored (all types, levels 1-5)")
      ->capture_default_str()
      ->transform(decimal_integer(false))
      ->check(CLI::Range(1, 100000));
  c->add_option("--seed", a.seed, "seed of the problems (not 1-4: the bundled model trained on those)")
      ->capture_default_str()
      ->transform(decimal_integer(false));
  c->add_flag("--clip", a.clip, "group parameters by the MSE clip search instead of min-max");
  c->add_option("--threads", a.threads, "worker threads")
      ->capture_default_str()
      ->transform(decimal_integer(false))
      ->check(CLI::Range(1u, max_threads));
  c->add_option("--out", a.out, "results JSON (also .csv and one .svg heatmap per format beside it); resumes a run with the same settings");
  c->add_flag("--quiet", a.quiet, "no progress lines");
  c->add_option("--plan-out", a.plan_out,
                "write a precision plan: the linears whose one-at-a-time KL falls most per extra bit get the higher of the "
                "two --quant formats, within --plan-bits (needs --units with linears)");
  c->add_option("--plan-bits", a.plan_bits, "the plan's budget: average bits per weight over the layer linears")->check(CLI::PositiveNumber);
  c->add_flag("--raise", a.raise,
              "also measure each linear at the higher --quant format while every other layer linear is at the lower one "
              "(what raising it saves in the quantized model, interactions included), and build --plan-out from those");
  c->add_option("--rounds", a.rounds,
                "with --raise and --plan-out: build the plan in this many rounds, each raising its share of the budget's extra "
                "bits and then measuring the remaining raises again over a background that includes them")
      ->capture_default_str()
      ->transform(decimal_integer(false))
      ->check(CLI::Range(1, 64));
  return c;
}

namespace detail {

// The model's first stop token (-1 when it has none) and n synthetic problems as teacher-forced
// items in its own tokenizer's ids: what both probes run.
struct probe_items {
  std::int32_t eos = -1;
  std::vector<qmr::probe::forced_item> items;
};
inline probe_items synthetic_probe_items(const qmr::model::model& m, const std::string& dir, int n, std::uint64_t seed) {
  const auto tok = qmr::text::tokenizer::load(std::filesystem::path(dir) / "tokenizer.json");
  const std::vector<std::int32_t> stops = qmr::model::default_stop_tokens(m);
  probe_items r;
  r.eos = stops.empty() ? -1 : stops.front();
  r.items = qmr::probe::synthetic_items(tok, static_cast<std::size_t>(n), seed, r.eos);
  return r;
}

// A result's resume key: "format|unit", and " in FORMAT" for a unit measured over a background.
inline std::string result_key(const nlohmann::json& r) {
  std::string k = r.value("format", "") + "|" + r.value("unit", "");
  if (r.contains("context")) k += " in " + r.value("context", "");
  return k;
}

inline nlohmann::json sensitivity_json(const qmr::probe::unit_result& r, const std::string& format) {
  nlohmann::json by_level = nlohmann::json::object();
  for (int l = 1; l <= qmr::probe::max_level; ++l)
    if (r.verbatim_by_level[static_cast<std::size_t>(l)] >= 0) by_level[std::to_string(l)] = r.verbatim_by_level[static_cast<std::size_t>(l)];
  return {{"format", format},     {"unit", r.name},   {"kind", qmr::probe::unit_kind_name(r.kind)},
          {"layer", r.layer},     {"component", r.component}, {"kl", r.kl},
          {"kl_max", r.kl_max},   {"nll", r.nll},     {"top1", r.top1},
          {"verbatim", r.verbatim}, {"verbatim_by_level", by_level}, {"seconds", r.seconds}};
}

}  // namespace detail

inline int run_sensitivity(const sensitivity_args& a) {
  namespace probe = qmr::probe;
  std::vector<qmr::quant::format_spec> formats;
  for (const std::string& f : qmr::quant::detail::split_on(a.quant, ',')) {
    const qmr::quant::format_spec spec = qmr::quant::parse_format(f);
    qmr::check(spec.is_quantized(), "--quant: " + f + " is not a quantized format");
    formats.push_back(spec);
  }
  qmr::check(!formats.empty(), "--quant: no format given");
  bool linears = false, layers = false, components = false, all = false;
  for (const std::string& u : qmr::quant::detail::split_on(a.units, ',')) {
    if (u == "linears") linears = true;
    else if (u == "layers") layers = true;
    else if (u == "components") components = true;
    else if (u == "all") all = true;
    else throw qmr::error("--units: '" + u + "' is not linears, layers, components or all");
  }
  qmr::check(a.plan_out.empty() || (formats.size() == 2 && linears && a.plan_bits > 0),
             "--plan-out needs two --quant formats, --units with linears and --plan-bits");
  qmr::check(!a.raise || (formats.size() == 2 && linears), "--raise needs two --quant formats and --units with linears");
  qmr::check(a.rounds == 1 || (a.raise && !a.plan_out.empty()), "--rounds needs --raise and --plan-out");
  qmr::thread_pool pool(a.threads);
  qmr::model::model m = qmr::model::model::load(a.dir);
  detail::probe_items in = detail::synthetic_probe_items(m, a.dir, a.n, a.seed);
  const std::int32_t eos = in.eos;
  const std::vector<probe::unit> units = probe::sensitivity_units(m, linears, layers, components, all);
  qmr::check(!units.empty(), "--units selects no unit of this model");

  // The settings a saved run must share to be resumed.
  const nlohmann::json settings = {{"model", std::filesystem::absolute(a.dir).lexically_normal().string()},
                                   {"n", a.n}, {"seed", a.seed}, {"eos", eos}, {"clip", a.clip}, {"method", "rtn"}};
  std::map<std::string, nlohmann::json> done;  // "format|unit" -> result
  if (!a.out.empty() && std::filesystem::exists(a.out)) {
    const nlohmann::json old = qmr::io::read_json_file(a.out);
    if (old.is_object() && old.value("settings", nlohmann::json()) == settings && old.contains("units") && old["units"].is_array())
      for (const auto& u : old["units"]) done[detail::result_key(u)] = u;
    else if (!a.quiet)
      std::fprintf(stderr, "%s: other settings; starting again\n", a.out.c_str());
  }

  const auto t0 = std::chrono::steady_clock::now();
  probe::sensitivity_probe p(m, std::move(in.items), &pool);
  const probe::unit_result& ref = p.reference();
  std::printf("model %s: %d synthetic problems (seed %llu), %lld answer tokens scored; unquantized: NLL %.4f, answers verbatim %.1f%%\n",
              a.dir.c_str(), a.n, static_cast<unsigned long long>(a.seed), static_cast<long long>(p.positions()), ref.nll,
              100 * ref.verbatim);
  std::fflush(stdout);

  nlohmann::json out = {{"settings", settings}, {"reference", detail::sensitivity_json(ref, "stored")}, {"units", nlohmann::json::array()}};
  const std::size_t total = units.size() * formats.size();
  std::size_t k = 0;
  std::vector<nlohmann::json> results;
  for (const auto& spec : formats) {
    qmr::quant::rtn_options rtn;
    rtn.clip_search = a.clip;
    for (const probe::unit& u : units) {
      ++k;
      const std::string key = spec.str() + "|" + u.name;
      nlohmann::json r;
      if (const auto it = done.find(key); it != done.end()) {
        r = it->second;
      } else {
        r = detail::sensitivity_json(p.measure(u, spec, rtn), spec.str());
        if (!a.quiet)
          std::fprintf(stderr, "[%zu/%zu] %s %-16s KL %.5f  top-1 %.1f%%  verbatim %.1f%%  (%.1f s)\n", k, total, spec.str().c_str(),
                       u.name.c_str(), r["kl"].get<double>(), 100 * r["top1"].get<double>(), 100 * r["verbatim"].get<double>(),
                       r["seconds"].get<double>());
      }
      out["units"].push_back(r);
      results.push_back(r);
      if (!a.out.empty()) qmr::io::write_text_file(a.out, out.dump(1));  // finished units survive an interruption
    }
  }

  // --raise: every layer linear at the lower format, each linear raised to the higher one in turn.
  // The two formats of --raise and --plan-out, fewer bits first (checked above to be two where used).
  const std::pair<const qmr::quant::format_spec&, const qmr::quant::format_spec&> low_high =
      std::minmax(formats.front(), formats.back(),
                  [](const qmr::quant::format_spec& x, const qmr::quant::format_spec& y) { return x.bits_per_weight(128) < y.bits_per_weight(128); });
  const qmr::quant::format_spec& low = low_high.first;
  const qmr::quant::format_spec& high = low_high.second;
  // The layer linears as allocation items (their KL filled in below), in unit order.
  std::vector<probe::allocation_item> items;
  std::vector<const probe::unit*> linear_units;
  for (const auto& u : units) {
    if (u.kind != probe::unit_kind::linear) continue;
    const auto& w = m.linear(u.tensors.front());
    items.push_back({u.tensors.front(), u.layer, u.component, w.rows * w.cols, w.cols, 0, 0});
    linear_units.push_back(&u);
  }
  std::vector<bool> raised(items.size(), false);  // --rounds: linears at the higher format in the background
  if (a.raise) {
    qmr::quant::rtn_options rtn;
    rtn.clip_search = a.clip;
    const double floor_bits = probe::uniform_bits(items, low).per_weight();  // the budget's floor: every linear low
    for (int round = 1; round <= a.rounds; ++round) {
      // The background: every layer linear at the lower format but those raised in earlier rounds.
      // Its name keys the resume: round 1's is the lower format's alone, as without --rounds.
      std::string raised_list;  // "layer 0 v at w4g128,layer 0 o at w4g128"
      std::vector<std::pair<std::string, qmr::quant::format_spec>> background;
      std::size_t n_measured = 1;
      for (std::size_t i = 0; i < items.size(); ++i) {
        for (const std::string& t : linear_units[i]->tensors) background.emplace_back(t, raised[i] ? high : low);
        if (raised[i]) raised_list += (raised_list.empty() ? "" : ",") + linear_units[i]->name + " at " + high.str();
        else ++n_measured;
      }
      const std::string context = raised_list.empty() ? low.str() : low.str() + " + " + raised_list;
      const std::string shown_context = a.rounds == 1 ? low.str() : low.str() + " round " + std::to_string(round);
      p.set_background(background, rtn);
      std::size_t kr = 0;
      const auto run_one = [&](const std::string& key_unit, auto&& measure) {
        nlohmann::json probe_key = {{"format", key_unit == "background" ? low.str() : high.str()}, {"unit", key_unit}, {"context", context}};
        ++kr;
        nlohmann::json r;
        if (const auto it = done.find(detail::result_key(probe_key)); it != done.end()) {
          r = it->second;
        } else {
          r = measure();
          r["context"] = context;
          if (!a.quiet)
            std::fprintf(stderr, "[raise %zu/%zu] %s in %s: %-16s KL %.5f  verbatim %.1f%%  (%.1f s)\n", kr, n_measured,
                         r["format"].get<std::string>().c_str(), shown_context.c_str(), key_unit.c_str(), r["kl"].get<double>(),
                         100 * r["verbatim"].get<double>(), r["seconds"].get<double>());
        }
        out["units"].push_back(r);
        if (!a.out.empty()) qmr::io::write_text_file(a.out, out.dump(1));
        return r["kl"].get<double>();
      };
      const double base_kl = run_one("background", [&] {
        nlohmann::json r = detail::sensitivity_json(p.measure_background("background"), low.str());
        r["unit"] = "background";
        return r;
      });
      for (std::size_t i = 0; i < items.size(); ++i) {
        if (raised[i]) continue;  // keeps the KL of the round that raised it (the plan's comments show it)
        items[i].kl_low = base_kl;
        items[i].kl_high = run_one(linear_units[i]->name, [&] {
          return detail::sensitivity_json(p.measure(*linear_units[i], high, rtn), high.str());
        });
      }
      p.clear_background();
      std::printf("\nevery layer linear at %s%s: KL %.5f; each linear raised to %s alone, the 12 that save the most:\n"
                  "| linear | KL | saved |\n|---|---|---|\n",
                  low.str().c_str(), raised_list.empty() ? "" : (" but " + raised_list).c_str(), base_kl,
                  high.str().c_str());
      std::vector<std::pair<double, std::string>> saved;
      for (std::size_t i = 0; i < items.size(); ++i)
        if (!raised[i]) saved.emplace_back(base_kl - items[i].kl_high, linear_units[i]->name);
      std::sort(saved.rbegin(), saved.rend());
      for (std::size_t i = 0; i < std::min<std::size_t>(12, saved.size()); ++i)
        std::printf("| %s | %.5f | %.5f |\n", saved[i].second.c_str(), base_kl - saved[i].first, saved[i].first);
      if (round < a.rounds) {
        // This round's share of the extra bits goes to the best raises just measured.
        const double tranche = floor_bits + (a.plan_bits - floor_bits) * round / a.rounds;
        const probe::allocation step = probe::allocate_bits(items, low, high, tranche, raised);
        std::printf("round %d of %d: %lld linears at %s (budget %.4f bits per weight)\n", round, a.rounds,
                    static_cast<long long>(std::count(step.high.begin(), step.high.end(), true)), high.str().c_str(), tranche);
        raised = step.high;
      }
    }
  }

  // Tables: per format, each kind sorted by KL (the linears: the 12 worst).
  for (const auto& spec : formats) {
    for (const char* kind : {"all", "component", "layer", "linear"}) {
      std::vector<nlohmann::json> rows;
      for (const auto& r : results)
        if (r["format"] == spec.str() && r["kind"] == kind) rows.push_back(r);
      if (rows.empty()) continue;
      std::sort(rows.begin(), rows.end(), [](const nlohmann::json& x, const nlohmann::json& y) { return x["kl"].get<double>() > y["kl"].get<double>(); });
      const std::size_t shown = std::string(kind) == "linear" ? std::min<std::size_t>(rows.size(), 12) : rows.size();
      std::printf("\n%s, by %s%s:\n| unit | KL (nats/token) | top-1 agreement | answers verbatim | L1 | L2 | L3 | L4 | L5 |\n|---|---|---|---|---|---|---|---|---|\n",
                  spec.str().c_str(), kind, shown < rows.size() ? " (the 12 most sensitive)" : "");
      for (std::size_t i = 0; i < shown; ++i) {
        const auto& r = rows[i];
        std::printf("| %s | %.5f | %.1f%% | %.1f%% |", r["unit"].get<std::string>().c_str(), r["kl"].get<double>(), 100 * r["top1"].get<double>(),
                    100 * r["verbatim"].get<double>());
        for (int l = 1; l <= probe::max_level; ++l) {
          const auto& b = r["verbatim_by_level"];
          if (b.contains(std::to_string(l))) std::printf(" %.0f%% |", 100 * b[std::to_string(l)].get<double>());
          else std::printf(" - |");
        }
        std::printf("\n");
      }
    }
  }
  std::printf("\nunquantized: answers verbatim %.1f%%; %.0f s in all\n", 100 * ref.verbatim,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());

  if (!a.plan_out.empty()) {
    // The gains: one at a time from the stored model (KL at low - KL at high), or with --raise from
    // the all-low model (KL of all low - KL with the linear raised), interactions included; with
    // --rounds from the last round's background, the earlier rounds' raises kept.
    if (!a.raise)
      for (std::size_t i = 0; i < items.size(); ++i)
        for (const auto& r : results)
          if (r["kind"] == "linear" && r["unit"] == linear_units[i]->name)
            (r["format"] == low.str() ? items[i].kl_low : items[i].kl_high) = r["kl"].get<double>();
    const probe::allocation alloc = probe::allocate_bits(items, low, high, a.plan_bits, raised);
    const std::string note = "qmr sensitivity --quant " + a.quant + " --n " + std::to_string(a.n) + " --seed " + std::to_string(a.seed) +
                             " --plan-bits " + std::to_string(a.plan_bits) + (a.raise ? " --raise" : "") +
                             (a.rounds > 1 ? " --rounds " + std::to_string(a.rounds) : "") + " (" + a.dir + ")";
    qmr::io::write_text_file(a.plan_out, probe::allocation_plan(items, alloc, low, high, m.config().tie_word_embeddings, note));
    std::printf("plan %s: %lld of %zu linears at %s, the rest %s: %.4f bits per weight (budget %.4f)\n", a.plan_out.c_str(),
                static_cast<long long>(std::count(alloc.high.begin(), alloc.high.end(), true)), items.size(), high.str().c_str(),
                low.str().c_str(), alloc.bits_per_weight, a.plan_bits);
  }

  if (!a.out.empty()) {
    std::string csv = "format,unit,kind,layer,component,kl,kl_max,nll,top1,verbatim\n";
    for (const auto& r : results) {
      char line[512];
      std::snprintf(line, sizeof line, "%s,%s,%s,%d,%s,%.8g,%.8g,%.8g,%.6f,%.6f\n", r["format"].get<std::string>().c_str(),
                    r["unit"].get<std::string>().c_str(), r["kind"].get<std::string>().c_str(), r["layer"].get<int>(),
                    r["component"].get<std::string>().c_str(), r["kl"].get<double>(), r["kl_max"].get<double>(), r["nll"].get<double>(),
                    r["top1"].get<double>(), r["verbatim"].get<double>());
      csv += line;
    }
    const std::filesystem::path base = std::filesystem::path(a.out).replace_extension("");
    qmr::io::write_text_file(base.string() + ".csv", csv);
    // Heatmaps of the linears' KL: layers x components, one per format.
    if (linears) {
      std::vector<std::string> comps;
      for (const auto& u : units)
        if (u.kind == probe::unit_kind::linear && std::find(comps.begin(), comps.end(), u.component) == comps.end()) comps.push_back(u.component);
      std::vector<std::string> rows;
      for (int l = 0; l < m.config().layers; ++l) rows.push_back("layer " + std::to_string(l));
      for (const auto& spec : formats) {
        std::vector<double> v(rows.size() * comps.size(), NAN);
        for (const auto& r : results)
          if (r["format"] == spec.str() && r["kind"] == "linear") {
            const auto c = std::find(comps.begin(), comps.end(), r["component"].get<std::string>()) - comps.begin();
            v[static_cast<std::size_t>(r["layer"].get<int>()) * comps.size() + static_cast<std::size_t>(c)] = r["kl"].get<double>();
          }
        const std::string path = base.string() + "_" + spec.str() + ".svg";
        qmr::io::write_text_file(path, qmr::report::heatmap_svg("KL to the unquantized model (nats/token) with one linear at " + spec.str() +
                                                                    ", " + std::to_string(a.n) + " problems",
                                                                rows, comps, v, true));
        std::printf("%s\n", path.c_str());
      }
    }
    std::printf("%s\n%s.csv\n", a.out.c_str(), base.string().c_str());
  }
  return 0;
}

struct stats_args {
  std::string dir = default_model_dir(), out;
  int n = 64;
  std::uint64_t seed = 1000;
  unsigned threads = std::max(1u, std::thread::hardware_concurrency());
};

inline CLI::App* add_stats_command(CLI::App& app, stats_args& a) {
  auto* c = app.add_subcommand("stats", "Activation and attention statistics per layer on synthetic problems: RMS, peak, kurtosis, "
                                        "outlier channels and int8/int4 per-token error of every linear's input; attention entropy");
  c->add_option("--model", a.dir, "model directory (default: the bundled model)")->capture_default_str();
  c->add_option("--n", a.n, "synthetic problems run (prompt and reference answer)")
      ->capture_default_str()
      ->transform(decimal_integer(false))
      ->check(CLI::Range(1, 100000));
  c->add_option("--seed", a.seed, "seed of the problems")->capture_default_str()->transform(decimal_integer(false));
  c->add_option("--threads", a.threads, "worker threads")
      ->capture_default_str()
      ->transform(decimal_integer(false))
      ->check(CLI::Range(1u, max_threads));
  c->add_option("--out", a.out, "results JSON");
  return c;
}

inline int run_stats(const stats_args& a) {
  namespace probe = qmr::probe;
  qmr::thread_pool pool(a.threads);
  const qmr::model::model m = qmr::model::model::load(a.dir);
  const probe::activation_report r = probe::activation_statistics(m, detail::synthetic_probe_items(m, a.dir, a.n, a.seed).items, &pool);
  std::printf("model %s: %d synthetic problems (seed %llu), %lld tokens\n\n", a.dir.c_str(), a.n, static_cast<unsigned long long>(a.seed),
              static_cast<long long>(r.tokens));
  std::printf("| layer | input of | RMS | max abs | max / RMS | kurtosis | channels > %.0f RMS | top channel | int8 error | int4 error |\n"
              "|---|---|---|---|---|---|---|---|---|---|\n",
              probe::outlier_rms_multiple);
  nlohmann::json j = {{"model", a.dir}, {"n", a.n}, {"seed", a.seed}, {"tokens", r.tokens}, {"points", nlohmann::json::array()},
                      {"attention", nlohmann::json::array()}};
  for (const auto& p : r.points) {
    std::printf("| %d | %s | %.4g | %.4g | %.1f | %.1f | %lld of %lld | %lld | %.2e | %.2e |\n", p.layer, probe::stat_point_name(p.point),
                p.rms, p.max_abs, p.rms > 0 ? p.max_abs / p.rms : 0.0, p.kurtosis, static_cast<long long>(p.outlier_channels),
                static_cast<long long>(p.channels), static_cast<long long>(p.top_channel), p.a8_error, p.a4_error);
    j["points"].push_back({{"layer", p.layer}, {"point", qmr::model::component_name(p.point)}, {"tokens", p.tokens},
                           {"channels", p.channels}, {"rms", p.rms}, {"max_abs", p.max_abs}, {"kurtosis", p.kurtosis},
                           {"outlier_channels", p.outlier_channels}, {"top_channel", p.top_channel}, {"a8_error", p.a8_error},
                           {"a4_error", p.a4_error}});
  }
  std::printf("\n| layer | attention entropy (nats) | mass on the first token |\n|---|---|---|\n");
  for (const auto& at : r.attention) {
    std::printf("| %d | %.3f | %.3f |\n", at.layer, at.entropy, at.first_token_mass);
    j["attention"].push_back({{"layer", at.layer}, {"entropy", at.entropy}, {"first_token_mass", at.first_token_mass}});
  }
  if (!a.out.empty()) {
    qmr::io::write_text_file(a.out, j.dump(1));
    std::printf("\n%s\n", a.out.c_str());
  }
  return 0;
}

}  // namespace qmr_cli
