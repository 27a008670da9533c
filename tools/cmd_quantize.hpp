// Quantization recipes shared by `qmr quantize` and `qmr eval --quant`: method, format or plan, activation bits,
// and the calibration set they need.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>

#include "cli_integer.hpp"
#include "qmr/io/text_file.hpp"
#include "qmr/model/generation_config.hpp"
#include "qmr/quant/calibrate.hpp"
#include "qmr/text/tokenizer.hpp"

namespace qmr_cli {

// One way to run a model, as `qmr eval --quant` items spell it:
//   [METHOD:]TARGET[+clip][+a8|+a4]
//   METHOD  rtn (default), gptq, awq, sq (SmoothQuant migration, then RTN)
//   TARGET  stored | bf16 | f16 | f32 (the stored weights, when they are that dtype)
//           | a format (w4g128, w3g64s, ...): every layer's linears; embeddings and head kept
//           | @FILE: a precision plan (quant/plan.hpp)
//   +clip   each group's scale and zero by the MSE clip search (rtn_options::clip_search) instead
//           of min-max: for RTN, for GPTQ's groups, for the RTN after AWQ's scales and auto_clip
//   +aN     quantize linear-layer inputs per token to N bits (8 or 4) at inference
// e.g. "w4g128", "gptq:w3g128+clip", "awq:@mixed.plan", "sq:w8g128+a8", "stored+a8".
struct quant_recipe {
  std::string text;
  qmr::quant::method how = qmr::quant::method::rtn;
  bool stored = false;                       // TARGET keeps the weights
  std::string stored_dtype;                  // "bf16", ... when TARGET names one ("" for stored)
  std::optional<qmr::quant::format_spec> spec;
  std::string plan_file;
  int act_bits = 0;
  bool clip = false;  // +clip: MSE clip search for group parameters

  bool changes_weights() const { return !stored; }
  bool needs_calibration() const { return changes_weights() && qmr::quant::needs_calibration(how); }
};

inline quant_recipe parse_recipe(const std::string& item) {
  quant_recipe r;
  r.text = item;
  std::string rest = item;
  const auto fail = [&](const std::string& why) -> quant_recipe {
    throw qmr::error("--quant '" + item + "': " + why +
                     " (expected [rtn:|gptq:|awq:|sq:](stored|bf16|FORMAT|@PLAN)[+clip][+a8|+a4])");
  };
  // Suffixes, last first: +a8/+a4 at most once, then +clip at most once.
  for (std::size_t plus = rest.rfind('+'); plus != std::string::npos; plus = rest.rfind('+')) {
    const std::string a = rest.substr(plus + 1);
    if ((a == "a8" || a == "a4") && !r.act_bits && !r.clip) r.act_bits = a == "a8" ? 8 : 4;
    else if (a == "clip" && !r.clip) r.clip = true;
    else return fail("unknown or misplaced suffix '+" + a + "'");
    rest.erase(plus);
  }
  if (const std::size_t colon = rest.find(':'); colon != std::string::npos) {
    try {
      r.how = qmr::quant::parse_method(rest.substr(0, colon));
    } catch (const qmr::error& e) {
      return fail(e.message());
    }
    rest.erase(0, colon + 1);
  }
  if (rest.empty()) return fail("nothing to quantize to");
  if (rest == "stored" || rest == "bf16" || rest == "f16" || rest == "f32") {
    r.stored = true;
    r.stored_dtype = rest == "stored" ? "" : rest;
    if (r.how != qmr::quant::method::rtn) return fail("a method needs a format or a plan");
    if (r.clip) return fail("+clip needs a format or a plan to quantize to");
  } else if (rest[0] == '@') {
    r.plan_file = rest.substr(1);
    if (r.plan_file.empty()) return fail("'@' needs a plan file");
  } else {
    try {
      r.spec = qmr::quant::parse_format(rest);
    } catch (const qmr::error& e) {
      return fail(e.message());
    }
    if (!r.spec->is_quantized()) return fail("'" + rest + "' is not a quantized format");
  }
  return r;
}

// Where calibration samples come from: "synth" (the synthetic generator), "self" (sampled from the model
// itself: quant::calibration_self), "random" (uniform token ids, for random-weight models), a .jsonl file
// or a text file.
// With them, GPTQ's dampening (gptq_options::damp), which also decides what a calibrated item computes.
struct calib_args {
  std::string source = "synth";
  int n = 128;
  int len = 512;
  std::uint64_t seed = 5;  // the bundled model trained on seeds 1-4 and is evaluated on 1000
  double damp = qmr::quant::gptq_options{}.damp;  // λ = damp · mean diag H (the GPTQ paper's and AutoGPTQ's 0.01)
  std::string awq_pairs = "all";                  // --awq-pairs: quant::scale_pairs::parse's syntax
  bool awq_clip = qmr::quant::awq_options{}.clip_search;

  // Defaults are left out, so that journals written before --damp, --awq-pairs and --awq-clip existed stay valid.
  nlohmann::json json() const {
    nlohmann::json j = {{"source", source}, {"n", n}, {"len", len}, {"seed", seed}};
    if (damp != qmr::quant::gptq_options{}.damp) j["damp"] = damp;
    const std::string pairs = qmr::quant::scale_pairs::parse(awq_pairs).str();
    if (pairs != "all") j["awq_pairs"] = pairs;
    if (awq_clip != qmr::quant::awq_options{}.clip_search) j["awq_clip"] = awq_clip;
    return j;
  }
  // Every setting, defaults included: what a results file records beside a calibrated run.
  nlohmann::json full_json() const {
    return {{"source", source}, {"n", n}, {"len", len}, {"seed", seed}, {"damp", damp},
            {"awq_pairs", qmr::quant::scale_pairs::parse(awq_pairs).str()}, {"awq_clip", awq_clip}};
  }
};

// --damp, --awq-pairs and --awq-clip on `qmr quantize` and `qmr eval`.
inline void add_method_options(CLI::App* cmd, calib_args& c) {
  cmd->add_option("--damp", c.damp,
                  "GPTQ dampening: damp * mean diag(H) is added to H's diagonal (0.01 as in the GPTQ paper and "
                  "AutoGPTQ; larger values move GPTQ toward RTN, which can help when the calibration set is unlike "
                  "the model's inputs)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e6));
  cmd->add_option("--awq-pairs", c.awq_pairs,
                  "where AWQ and SmoothQuant migrate scales: all (default, as AWQ's code), norm (qkv,gate_up: the pairs "
                  "fed by a norm), none, or a list of qkv, o, gate_up, down. The o and down pairs' scales transfer "
                  "worst from calibration data unlike the model's inputs")
      ->capture_default_str()
      ->check([](const std::string& v) {
        try {
          (void)qmr::quant::scale_pairs::parse(v);
        } catch (const qmr::error& e) {
          return e.message();
        }
        return std::string();
      });
  cmd->add_option("--awq-clip", c.awq_clip,
                  "AWQ's per-group clipping search after the scales (auto_clip): true (default) or false")
      ->capture_default_str();
}

inline qmr::quant::calibration_set make_calibration(const calib_args& c, const std::string& model_dir) {
  if (c.source == "random") {
    const auto config = qmr::model::model_config::load(model_dir);
    return qmr::quant::calibration_random(config.vocab, c.n, c.len, c.seed);
  }
  const auto tok = qmr::text::tokenizer::load(std::filesystem::path(model_dir) / "tokenizer.json");
  if (c.source == "synth") return qmr::quant::calibration_from_synth(tok, c.n, c.len, c.seed);
  if (c.source == "self") {
    const qmr::model::model m = qmr::model::model::load(model_dir);
    const std::vector<std::int32_t> stops = qmr::model::default_stop_tokens(m);
    qmr::check(m.config().bos_token_id.has_value() || !stops.empty(),
               "--calib self: the model has neither a BOS nor an end-of-text token to start its samples from");
    qmr::thread_pool pool(std::max(1u, std::thread::hardware_concurrency()));
    return qmr::quant::calibration_self(m, m.config().bos_token_id ? *m.config().bos_token_id : stops.front(), c.n, c.len, c.seed, &pool);
  }
  const std::string content = qmr::io::read_text_file(c.source);
  if (c.source.size() > 6 && c.source.compare(c.source.size() - 6, 6, ".jsonl") == 0)
    return qmr::quant::calibration_from_jsonl(tok, content, c.n, c.len, c.source);
  return qmr::quant::calibration_from_text(tok, content, c.n, c.len, c.source);
}

// Per-layer progress on stderr: "\r" updates on a terminal; otherwise one line per layer once it
// is done, with the wall seconds of each stage (capture, quantize, propagate) and the total so far.
inline qmr::quant::layer_progress_fn layer_progress(const std::string& label, bool quiet) {
  if (quiet) return {};
  const bool tty = isatty(STDERR_FILENO);
  using clock = std::chrono::steady_clock;
  struct stage_clock {
    clock::time_point start = clock::now(), stage_start = start;
    std::string stage, times;  // the stage running now; "capture 20.1 s, quantize 12.0 s" of the layer so far
    int layer = -1;
  };
  auto st = std::make_shared<stage_clock>();
  return [label, tty, st](int layer, int layers, const std::string& stage) {
    const clock::time_point now = clock::now();
    if (!st->stage.empty()) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%s%s %.1f s", st->times.empty() ? "" : ", ", st->stage.c_str(),
                    std::chrono::duration<double>(now - st->stage_start).count());
      st->times += buf;
    }
    if (!tty && layer != st->layer && st->layer >= 0)
      std::fprintf(stderr, "%s: layer %d/%d done (%s; %.0f s in all)\n", label.c_str(), st->layer + 1, layers,
                   st->times.c_str(), std::chrono::duration<double>(now - st->start).count());
    if (layer != st->layer) st->times.clear();
    st->layer = layer;
    st->stage = stage;
    st->stage_start = now;
    if (layer >= layers) {
      std::fprintf(stderr, tty ? "\r\033[K%s: %d/%d layers done\n" : "%s: %d/%d layers done\n", label.c_str(), layers, layers);
      return;
    }
    if (tty) std::fprintf(stderr, "\r\033[K%s: layer %d/%d %s", label.c_str(), layer + 1, layers, stage.c_str());
  };
}

// Applies the recipe to a loaded model (in memory). Returns the report (empty tensors for stored).
inline qmr::quant::model_quant_report apply_recipe(qmr::model::model& m, const quant_recipe& r, const calib_args& calib,
                                                   const std::string& model_dir, qmr::thread_pool& pool, bool quiet,
                                                   const qmr::quant::model_quant_options& base = {}) {
  qmr::quant::model_quant_report report;
  if (r.stored) {
    if (!r.stored_dtype.empty()) {
      const std::string stored = m.weights().layers.at(0).q.spec.str();
      if (stored != r.stored_dtype)
        throw qmr::error("--quant " + r.text + ": the model stores " + stored + " weights; converting to " +
                         r.stored_dtype + " is not supported (use 'stored')");
    }
  } else {
    const qmr::quant::precision_plan plan =
        r.spec ? qmr::quant::precision_plan::uniform(*r.spec) : qmr::quant::precision_plan::load(r.plan_file);
    qmr::quant::model_quant_options o = base;
    o.how = r.how;
    o.gptq.damp = calib.damp;
    o.pairs = qmr::quant::scale_pairs::parse(calib.awq_pairs);
    o.awq.clip_search = calib.awq_clip;
    if (r.clip) o.rtn.clip_search = o.gptq.rtn.clip_search = true;
    std::optional<qmr::quant::calibration_set> set;
    if (r.needs_calibration()) {
      if (!quiet) std::fprintf(stderr, "%s: calibrating on %d x %d tokens from %s\n", r.text.c_str(), calib.n, calib.len,
                               calib.source.c_str());
      set = make_calibration(calib, model_dir);
    }
    report = qmr::quant::quantize_model(m, plan, o, set ? &*set : nullptr, &pool, layer_progress(r.text, quiet));
  }
  if (r.act_bits) m.set_activation_bits(r.act_bits);
  report.activation_bits = r.act_bits;
  return report;
}

// How well the model predicts its calibration set (quant/calibrate.hpp, calibration_fit), and a warning
// when it predicts it worse than a uniform guess; "" when it was not measured.
inline std::string calibration_fit_note(const qmr::quant::model_quant_report& r) {
  const qmr::quant::calibration_fit& f = r.fit;
  if (!f.measured()) return "";
  char line[512];
  std::snprintf(line, sizeof line, "calibration: the unquantized model's NLL on %s is %.2f nats/token over %lld positions (uniform guess: %.2f)",
                r.calibration.c_str(), f.nll, static_cast<long long>(f.positions), f.uniform_nll);
  std::string note = line;
  if (f.far_from_model())
    note += "\nwarning: the model predicts its calibration set worse than a uniform guess: these tokens are far from what it "
            "was trained on. GPTQ and AWQ fit every layer to their activations and can end up worse than RTN on the model's "
            "own inputs; calibrate on data like the model's tasks (e.g. --calib synth for the bundled model).";
  return note;
}

// The per-layer table: output error of each quantized linear against RTN's.
inline void print_quant_report(const qmr::quant::model_quant_report& r) {
  std::size_t width = 4;
  for (const auto& t : r.tensors) width = std::max(width, t.name.size());
  std::printf("%-*s  %-8s  %-7s  %12s  %12s  %12s\n", static_cast<int>(width), "name", "format", "method", "out_err",
              "rtn_out_err", "weight_err");
  double sum = 0, sum_rtn = 0;
  int n = 0;
  for (const auto& t : r.tensors) {
    char out[32] = "-", rtn[32] = "-";
    if (t.output_error >= 0) {
      std::snprintf(out, sizeof out, "%.5f", t.output_error);
      std::snprintf(rtn, sizeof rtn, "%.5f", t.rtn_output_error);
      sum += t.output_error;
      sum_rtn += t.rtn_output_error;
      ++n;
    }
    std::printf("%-*s  %-8s  %-7s  %12s  %12s  %12.5f\n", static_cast<int>(width), t.name.c_str(), t.format.c_str(),
                t.method.c_str(), out, rtn, t.weight_error);
  }
  if (n)
    std::printf("mean relative output error over %d calibrated linears: %.5f (RTN: %.5f, ratio %.3f)\n", n, sum / n,
                sum_rtn / n, sum_rtn > 0 ? sum / sum_rtn : 0.0);
  std::printf("%s in %.1f s", r.method.c_str(), r.seconds);
  if (r.calibration_tokens) std::printf(", calibrated on %lld tokens of %s", static_cast<long long>(r.calibration_tokens), r.calibration.c_str());
  if (r.method == "gptq") std::printf(", damp %g", r.gptq_damp);
  if (!r.scale_pairs.empty()) std::printf(", scale pairs %s", r.scale_pairs.c_str());
  if (r.method == "awq") std::printf(", clip search %s", r.awq_clip ? "on" : "off");
  std::printf("\n");
  if (const std::string note = calibration_fit_note(r); !note.empty()) std::printf("%s\n", note.c_str());
}

}  // namespace qmr_cli
