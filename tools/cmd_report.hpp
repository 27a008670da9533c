// `qmr report`: a study's results files (qmr eval, qmr sensitivity, qmr stats) turned into one report — report.md with its SVG charts, and report.html with them inline — findings first (report/study.hpp).
#pragma once

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "qmr/io/json_file.hpp"
#include "qmr/io/text_file.hpp"
#include "qmr/quant/plan.hpp"
#include "qmr/report/study.hpp"

namespace qmr_cli {

struct report_args {
  std::string dir, evals, sensitivity, stats, out, reference = "stored", title = "Quantization study";
};

inline CLI::App* add_report_command(CLI::App& app, report_args& a) {
  auto* c = app.add_subcommand("report",
                               "Write a study's report (report.md + charts/*.svg, and report.html with the charts inline) from its "
                               "qmr eval, qmr sensitivity and qmr stats results: what breaks first, with paired tests and charts");
  c->add_option("--dir", a.dir,
                "a study's results folder: every .json in it that is a qmr eval, sensitivity or stats results file is used "
                "(the report is written there unless --out)");
  c->add_option("--eval", a.evals, "comma-separated qmr eval --out files (each one problem set)");
  c->add_option("--sensitivity", a.sensitivity, "a qmr sensitivity --out file");
  c->add_option("--stats", a.stats, "a qmr stats --out file");
  c->add_option("--reference", a.reference, "the --quant name every run is compared with")->capture_default_str();
  c->add_option("--title", a.title, "the report's title")->capture_default_str();
  c->add_option("--out", a.out, "output folder (default: --dir)");
  return c;
}

namespace detail {
enum class results_kind { eval, sensitivity, stats, other };
// Which results file a JSON is, by its fields.
inline results_kind classify_results(const nlohmann::json& j) {
  if (!j.is_object()) return results_kind::other;
  if (j.contains("units") && j["units"].is_array()) return results_kind::sensitivity;
  if (j.contains("points") && j["points"].is_array()) return results_kind::stats;
  if ((j.contains("runs") && j["runs"].is_array()) || (j.contains("weights") && j.contains("items"))) return results_kind::eval;
  return results_kind::other;
}
}  // namespace detail

inline int run_report(const report_args& a) {
  namespace report = qmr::report;
  qmr::check(!a.dir.empty() || !a.evals.empty() || !a.sensitivity.empty() || !a.stats.empty(),
             "report: give --dir or at least one of --eval, --sensitivity, --stats");
  report::study_inputs in;
  in.title = a.title;
  in.reference = a.reference;
  std::vector<std::string> eval_files;
  std::string sens_file = a.sensitivity, stats_file = a.stats;
  if (!a.evals.empty())
    for (const std::string& f : qmr::quant::detail::split_on(a.evals, ',')) eval_files.push_back(f);
  std::size_t dir_evals = 0;  // eval files found in --dir (after the named ones)
  if (!a.dir.empty()) {
    qmr::check(std::filesystem::is_directory(a.dir), "report: --dir " + a.dir + " is not a folder");
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(a.dir))
      if (e.is_regular_file() && e.path().extension() == ".json") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      nlohmann::json j;
      try {
        j = qmr::io::read_json_file(f);
      } catch (const qmr::error& e) {
        std::fprintf(stderr, "report: skipping %s: %s\n", f.string().c_str(), e.what());
        continue;
      }
      switch (detail::classify_results(j)) {
        case detail::results_kind::eval:
          eval_files.push_back(f.string());
          ++dir_evals;
          break;
        case detail::results_kind::sensitivity:
          qmr::check(sens_file.empty() || sens_file == f.string(),
                     "report: two sensitivity results (" + sens_file + ", " + f.string() + "); name one with --sensitivity");
          sens_file = f.string();
          break;
        case detail::results_kind::stats:
          qmr::check(stats_file.empty() || stats_file == f.string(),
                     "report: two statistics results (" + stats_file + ", " + f.string() + "); name one with --stats");
          stats_file = f.string();
          break;
        case detail::results_kind::other: std::fprintf(stderr, "report: %s is not a results file qmr report reads; skipped\n", f.string().c_str());
      }
    }
  }
  const std::size_t named = eval_files.size() - dir_evals;  // --eval files come first
  for (std::size_t i = 0; i < eval_files.size(); ++i) {
    const std::string& f = eval_files[i];
    try {
      in.evals.push_back(report::parse_eval_results(qmr::io::read_json_file(f), f));
    } catch (const qmr::error& e) {
      if (i < named) throw;  // a file the user named: its error stops the report
      // Found in --dir: results the report cannot read (perplexity, no per-problem records) are skipped, said so.
      std::fprintf(stderr, "report: skipping %s: %s\n", f.c_str(), e.what());
      continue;
    }
    std::fprintf(stderr, "report: %s: %zu runs, %zu problems\n", f.c_str(), in.evals.back().size(), in.evals.back().front().items.size());
  }
  // Files that scored the same problems as one set (e.g. a calibration study's RTN and its text-calibrated runs).
  in.evals = report::merge_problem_sets(in.evals);
  // Problem sets with the reference run first (the sweep before the plans' set), otherwise as given.
  std::stable_partition(in.evals.begin(), in.evals.end(), [&](const std::vector<report::eval_run>& set) {
    return std::any_of(set.begin(), set.end(), [&](const report::eval_run& r) { return r.weights == a.reference; });
  });
  qmr::check(!in.evals.empty() || !sens_file.empty() || !stats_file.empty(), "report: no results file it can read");
  if (!sens_file.empty()) in.sensitivity = report::parse_sensitivity(qmr::io::read_json_file(sens_file), sens_file);
  if (!stats_file.empty()) in.stats = report::parse_stats(qmr::io::read_json_file(stats_file), stats_file);
  const report::document d = report::study_report(in);

  const std::filesystem::path out = !a.out.empty() ? std::filesystem::path(a.out) : std::filesystem::path(a.dir.empty() ? "." : a.dir);
  std::filesystem::create_directories(out / in.chart_dir);
  for (const report::figure* f : d.figures()) qmr::io::write_text_file(out / f->file, f->svg);
  qmr::io::write_text_file(out / "report.md", report::to_markdown(d));
  qmr::io::write_text_file(out / "report.html", report::to_html(d));
  // The findings on stdout: the report's first bullet list.
  for (const auto& b : d.blocks())
    if (b.k == report::block::kind::bullets) {
      for (const auto& i : b.items) std::printf("- %s\n", i.c_str());
      break;
    }
  std::printf("\nwrote %s and %s (%zu charts in %s)\n", (out / "report.md").string().c_str(), (out / "report.html").string().c_str(),
              d.figures().size(), (out / in.chart_dir).string().c_str());
  return 0;
}

}  // namespace qmr_cli
