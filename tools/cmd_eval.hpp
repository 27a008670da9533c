// `qmr eval`: evaluates a model on a task in one or several precisions (a sweep), prints
// comparison tables and writes results JSON + CSV, journaling every item so that an
// interrupted run resumes where it stopped.
//
// Results JSON (--out FILE): for one precision, one run object; for several, {"task", "runs": [run...]}.
// A run object: task, weights, n, accuracy, accuracy_ci95, by_level, by_type ({n, correct,
// accuracy, ci95}), errors (count per error kind, generative tasks), efficiency (model_bytes,
// prefill_tokens_per_s, decode_tokens_per_s, time_to_first_token_ms, peak_rss_mb, seconds,
// threads), and items (one record per problem: id, prompt, output, extracted, gold, correct,
// error_kind, error_detail, tokens, seconds, prompt_tokens, prefix_tokens — the leading
// prompt tokens shared by every item and prefilled once per session, see
// gen_options::reuse_prefix and --no-prefix-reuse —, ...). Perplexity and ARC runs carry their own metrics.
// FILE.csv holds one summary row per precision; FILE.items.jsonl is the journal.
// --device cuda runs every forward pass on the GPU (model/cuda_forward.cuh, one session, items
// in turn; run objects then carry "device": "cuda"); activation quantization (+a8/+a4) stays
// CPU-only and is rejected there.
#pragma once

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "qmr/eval/datasets.hpp"
#include "qmr/eval/generative.hpp"
#include "qmr/eval/lambada.hpp"
#include "qmr/eval/loglikelihood.hpp"
#include "qmr/eval/multiple_choice.hpp"
#include "cmd_quantize.hpp"
#include "cuda_backend.hpp"
#include "qmr/eval/synth.hpp"
#include "qmr/eval/taxonomy.hpp"
#include "qmr/io/text_file.hpp"
#include "qmr/model/weights.hpp"
#include "qmr/text/chat.hpp"

#ifndef QMR_DEFAULT_MODEL_DIR
#define QMR_DEFAULT_MODEL_DIR "models/qmr-math"
#endif

namespace qmr_cli {

// The bundled model: $QMR_MODEL if set, else the path the tool was built with.
inline std::string default_model_dir() {
  const char* env = std::getenv("QMR_MODEL");
  return env && *env ? env : QMR_DEFAULT_MODEL_DIR;
}

struct eval_args {
  std::string dir = default_model_dir(), task = "synthetic", data, types, levels, quant = "stored", out,
              style = "qa";
  std::size_t n = 100, limit = 0;
  std::uint64_t seed = 1000;  // the default model trained on seeds 1-4
  std::int64_t max_operand = 0;
  int shots = 0, max_tokens = 320, window = 128;
  unsigned threads = 1;
  bool quiet = false, chat = false, no_prefix_reuse = false;
  bool lut = false;  // generative tasks on the CPU: decode through the table GEMV (model::repack_lut)
  calib_args calib;  // for gptq:/awq:/sq: items of --quant
  std::string device = "cpu";

  bool on_gpu() const { return device == "cuda"; }
  // Items evaluated at once: one per thread on the CPU, one GPU session.
  unsigned item_threads() const { return on_gpu() ? 1u : std::max(1u, threads); }
};

inline CLI::App* add_eval_command(CLI::App& app, eval_args& a) {
  auto* cmd = app.add_subcommand("eval", "Evaluate a model on a task, in one or several precisions");
  cmd->add_option("--model", a.dir, "model directory (original or qmr-quantized); default: the bundled model")
      ->capture_default_str();
  cmd->add_option("--task", a.task, "synthetic | gsm8k | svamp | arc | lambada | perplexity")->capture_default_str();
  cmd->add_option("--data", a.data, "dataset file (gsm8k: JSONL, svamp: JSON, arc: JSONL, lambada: JSONL, perplexity: text)");
  cmd->add_option("--types", a.types, "synthetic: operation types, e.g. addition,division (default all)");
  cmd->add_option("--levels", a.levels, "synthetic: complexity levels, e.g. 1,2 (default 1-5)");
  cmd->add_option("--max-operand", a.max_operand, "synthetic: largest operand (0 = the generator's default)")
      ->transform(decimal_integer(true));
  cmd->add_option("--n", a.n, "synthetic: number of problems (spread evenly over types and levels)")
      ->capture_default_str()
      ->transform(decimal_integer(false))
      ->check(CLI::PositiveNumber);  // 0 printed an accuracy of 0% over no problems
  cmd->add_option("--seed", a.seed, "synthetic: problem seed (the bundled model trained on 1-4)")
      ->capture_default_str()
      ->transform(decimal_integer(false));
  cmd->add_option("--shots", a.shots, "gsm8k/svamp: exemplars taken from the start of the file")
      ->capture_default_str()
      ->transform(decimal_integer(true))
      ->check(CLI::NonNegativeNumber);  // a negative count was read as 0
  cmd->add_option("--style", a.style,
                  "generative prompts: qa = 'Question: ...\\nAnswer:' (lm-eval gsm8k), cot = 'Q: ...\\n\\nA:'")
      ->check(CLI::IsMember({"qa", "cot"}))
      ->capture_default_str();
  cmd->add_flag("--chat", a.chat, "wrap each generative prompt as a ChatML user turn (instruct models)");
  cmd->add_flag("--no-prefix-reuse", a.no_prefix_reuse,
                "generative: prefill every prompt whole (by default the prompts' common prefix, e.g. the n-shot "
                "exemplars, is prefilled once per session)");
  cmd->add_option("--limit", a.limit, "evaluate only the first N items (0 = all)")
      ->capture_default_str()
      ->transform(decimal_integer(false));
  cmd->add_option("--quant", a.quant,
                  "precisions, comma-separated, each [rtn:|gptq:|awq:|sq:](stored|FORMAT|@PLAN)[+clip][+a8|+a4]: 'stored' "
                  "(as in the checkpoint), a format such as w4g128 (every layer's linears, in memory; embeddings and "
                  "head stay as stored), @FILE a precision plan; the method calibrates layer by layer (--calib); "
                  "+clip picks group scales by an MSE clip search; +a8/+a4 quantizes linear inputs per token. Several = a sweep, e.g. stored,w4g128,gptq:w3g128,w8g128+a8")
      ->capture_default_str();
  cmd->add_option("--calib", a.calib.source, "calibration data of gptq/awq/sq items: synth, self (sampled from the model), random, a .jsonl or a text file")
      ->capture_default_str();
  cmd->add_option("--calib-n", a.calib.n, "calibration samples")
      ->capture_default_str()
      ->transform(decimal_integer(true))
      ->check(CLI::PositiveNumber);
  cmd->add_option("--calib-len", a.calib.len, "tokens per calibration sample")
      ->capture_default_str()
      ->transform(decimal_integer(true))
      ->check(CLI::PositiveNumber);
  add_method_options(cmd, a.calib);
  cmd->add_option("--calib-seed", a.calib.seed, "seed of synthetic calibration problems (not an evaluation seed)")
      ->capture_default_str()
      ->transform(decimal_integer(false));
  // Each session holds a KV cache of the longest prompt plus --max-tokens positions, and
  // perplexity's one of --window + 1: bounded, so that a typo is an error rather than
  // std::bad_alloc or an int overflow. --max-tokens 0 scored every answer empty (0%, silently);
  // a negative one or --window 0 failed as a session too small, not naming the option.
  cmd->add_option("--max-tokens", a.max_tokens, "most tokens per answer")
      ->capture_default_str()
      ->transform(decimal_integer(true))
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--window", a.window, "perplexity: tokens predicted per window")
      ->capture_default_str()
      ->transform(decimal_integer(true))
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--out", a.out, "results JSON; FILE.csv and the journal FILE.items.jsonl go beside it");
  cmd->add_option("--threads", a.threads, "items evaluated in parallel (cpu; also the calibration threads)")
      ->capture_default_str()
      ->transform(decimal_integer(false))
      ->check(CLI::Range(1u, max_threads));  // as every --threads
  cmd->add_option("--device", a.device, "cpu, or cuda: forward passes on the GPU (model/cuda_forward.cuh), one item at a time")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  cmd->add_flag("--quiet", a.quiet, "no progress bar");
  cmd->add_flag("--lut", a.lut,
                "generative tasks on the CPU: decode the 2-6-bit linears through the table GEMV over a load-time "
                "repack (AVX-512; f32 numerics in another summation order; a second copy of those weights in memory)");
  return cmd;
}

// The precisions of a sweep (quant_recipe items), checked up front.
inline std::vector<std::string> parse_quant_list(const std::string& text) {
  std::vector<std::string> specs;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t end = std::min(text.find(',', start), text.size());
    std::string item = text.substr(start, end - start);
    parse_recipe(item);  // throws naming the item
    specs.push_back(item);
    start = end + 1;
  }
  std::set<std::string> seen;
  for (const auto& s : specs)
    if (!seen.insert(s).second) throw qmr::error("--quant: '" + s + "' is listed twice");
  return specs;
}

// Loads the model as the recipe `spec` says (quant_recipe): stored, or quantized in memory by
// RTN, GPTQ, AWQ or SmoothQuant to a format or plan, with activation quantization if asked.
inline qmr::model::model load_in(const eval_args& a, const std::string& spec) {
  auto m = qmr::model::model::load(a.dir);
  const quant_recipe r = parse_recipe(spec);
  qmr::thread_pool pool(std::max(2u, a.threads));
  const auto report = apply_recipe(m, r, a.calib, a.dir, pool, a.quiet);
  if (!a.quiet && !report.tensors.empty()) {
    double sum = 0, sum_rtn = 0;
    int n = 0;
    for (const auto& t : report.tensors)
      if (t.output_error >= 0) {
        sum += t.output_error;
        sum_rtn += t.rtn_output_error;
        ++n;
      }
    if (n)
      std::fprintf(stderr, "%s: mean relative output error %.5f over %d linears (RTN %.5f), %.1f s\n", spec.c_str(),
                   sum / n, n, sum_rtn / n, report.seconds);
  }
  // The warning is printed even with --quiet: it can explain a collapsed accuracy.
  if (report.fit.far_from_model() || (!a.quiet && report.fit.measured()))
    std::fprintf(stderr, "%s: %s\n", spec.c_str(), calibration_fit_note(report).c_str());
  return m;
}

// Calls f(session) with a session of `capacity` positions on --device: a model::session or a
// gpu_session (cuda_backend.hpp), which has the same methods; f is generic over the two.
template <class F>
auto with_session(const eval_args& a, const qmr::model::model& m, int capacity, F&& f) {
  if (a.on_gpu()) {
    const std::unique_ptr<gpu_session> s = make_cuda_session(m, capacity);
    return f(*s);
  }
  qmr::model::session s(m, capacity);
  return f(s);
}

// A progress bar on stderr (a line every 10% when stderr is not a terminal).
struct progress_bar {
  std::string label;
  bool quiet = false, tty = isatty(STDERR_FILENO) != 0;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  void operator()(std::size_t done, std::size_t total) const {
    if (quiet || total == 0) return;
    const std::size_t step = std::max<std::size_t>(1, total / 10);
    if (!tty && done != total && done % step != 0) return;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const int width = 30;
    const int filled = static_cast<int>(width * done / total);
    std::fprintf(stderr, "%s%s [%s%s] %zu/%zu %.0fs%s", tty ? "\r\033[K" : "", label.c_str(),
                 std::string(static_cast<std::size_t>(filled), '#').c_str(),
                 std::string(static_cast<std::size_t>(width - filled), '.').c_str(), done, total, s,
                 tty && done != total ? "" : "\n");
  }
};

inline double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;  // Linux reports KiB
}

// The journal: one JSON line per finished item, keyed by the run (task, data, seed...) and the
// precision, so that a rerun with the same arguments skips what is done.
class journal {
 public:
  journal() = default;
  journal(const std::string& path, std::string run_key) : path_(path), run_key_(std::move(run_key)) {
    if (std::filesystem::exists(path)) {
      std::ifstream in(path, std::ios::binary);
      std::string line;
      std::size_t line_no = 0;
      while (std::getline(in, line)) {
        ++line_no;
        if (line.empty()) continue;
        const std::string where = path + ":" + std::to_string(line_no);
        nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_discarded() || !j.is_object() || !j.contains("run") || !j.contains("weights") || !j.contains("record")) {
          // An interrupted write leaves at most a partial last line; anything else is damage.
          if (in.peek() == EOF) break;
          throw qmr::error("malformed journal line", qmr::in_file(where));
        }
        if (j["run"] != run_key_)
          throw qmr::error("the journal belongs to another run (" + j["run"].dump() +
                               "); delete it or choose another --out",
                           qmr::in_file(where));
        done_[j["weights"].get<std::string>()].push_back(j["record"]);
      }
    }
    out_.open(path, std::ios::binary | std::ios::app);
    if (!out_) throw qmr::error("cannot open the journal for appending", qmr::in_file(path));
  }
  bool active() const { return out_.is_open(); }
  const std::vector<nlohmann::json>& done(const std::string& weights) const {
    static const std::vector<nlohmann::json> none;
    const auto it = done_.find(weights);
    return it == done_.end() ? none : it->second;
  }
  void append(const std::string& weights, const nlohmann::json& record) {
    if (!active()) return;
    out_ << nlohmann::json{{"run", run_key_}, {"weights", weights}, {"record", record}}.dump() << '\n';
    out_.flush();  // an interrupted run keeps every finished item
    if (!out_) throw qmr::error("journal write failed", qmr::in_file(path_));
  }

 private:
  std::string path_;
  nlohmann::json run_key_;
  std::map<std::string, std::vector<nlohmann::json>> done_;
  std::ofstream out_;
};

// A generative task's items and, for synthetic problems, the reference solutions.
struct generative_task {
  std::vector<qmr::eval::gen_item> items;
  std::map<std::string, std::vector<qmr::eval::step>> reference_steps;  // by item id (synthetic only)
  std::vector<std::string> stop_strings;
};

inline generative_task make_generative_task(const eval_args& a) {
  generative_task t;
  const auto style = a.style == "cot" ? qmr::eval::prompt_style::cot : qmr::eval::prompt_style::question_answer;
  if (a.task == "synthetic") {
    qmr::eval::synth_options so;
    if (!a.types.empty()) so.types = qmr::eval::parse_op_types(a.types);
    if (!a.levels.empty()) so.levels = qmr::eval::parse_levels(a.levels);
    so.max_operand = a.max_operand;
    so.seed = a.seed;
    const auto problems = qmr::eval::make_problems(a.n, so);
    for (std::size_t i = 0; i < problems.size(); ++i) {
      const auto& p = problems[i];
      const std::string id = "synthetic-" + std::to_string(a.seed) + "-" + std::to_string(i);
      // --style qa is the prompt format the bundled model was trained with (tools/train_default_model.py).
      qmr::eval::qa_example e{id, p.question, "", std::to_string(p.final_answer), ""};
      t.items.push_back({id, qmr::eval::build_prompt(e, {}, style), e.gold, std::string(qmr::eval::op_type_name(p.type)),
                         p.level});
      t.reference_steps[id] = p.steps;
    }
  } else {
    if (a.data.empty()) throw qmr::error("--task " + a.task + " needs --data FILE");
    auto examples = a.task == "gsm8k" ? qmr::eval::read_gsm8k_jsonl(a.data) : qmr::eval::read_svamp_json(a.data);
    const std::size_t shots = static_cast<std::size_t>(std::max(0, a.shots));
    if (shots >= examples.size())
      throw qmr::error("--shots " + std::to_string(shots) + " leaves no questions", qmr::in_file(a.data));
    const std::vector<qmr::eval::qa_example> exemplars(examples.begin(), examples.begin() + static_cast<std::ptrdiff_t>(shots));
    examples.erase(examples.begin(), examples.begin() + static_cast<std::ptrdiff_t>(shots));
    t.items = qmr::eval::to_items(examples, exemplars, style);
    t.stop_strings = {"\n\n"};  // lm-eval's gsm8k `until`: the blank line before the next exemplar
  }
  // The next question would start here.
  t.stop_strings.push_back(style == qmr::eval::prompt_style::cot ? "\nQ:" : "\nQuestion:");
  if (a.chat)
    for (auto& item : t.items) {
      const qmr::text::chat_message user{"user", item.prompt};
      item.prompt = qmr::text::format_chatml(std::span(&user, 1), true);
    }
  if (a.limit && t.items.size() > a.limit) t.items.resize(a.limit);
  return t;
}

struct run_summary {
  std::string weights;
  nlohmann::json json;                     // the run object
  std::map<int, double> level_accuracy;    // for the comparison table
  std::map<std::string, double> type_accuracy;
  std::map<std::string, std::size_t> errors;
  double accuracy = 0;
  std::size_t n = 0;
};

inline nlohmann::json efficiency_json(const qmr::model::model& m, const qmr::eval::gen_results& r, double seconds,
                                      unsigned threads) {
  double prefill = 0, decode = 0;
  std::int64_t decode_tokens = 0, prefilled = 0;
  for (const auto& rec : r.records) {
    prefill += rec.prefill_seconds;
    prefilled += rec.prompt_tokens - rec.prefix_tokens;  // a reused prefix was not prefilled for the item
    decode += rec.decode_seconds;
    decode_tokens += std::max(0, rec.output_tokens - 1);  // the first output token comes from the prefill
  }
  const double n = static_cast<double>(std::max<std::size_t>(1, r.records.size()));
  double item_seconds = 0;
  for (const auto& rec : r.records) item_seconds += rec.seconds;
  return {{"model_bytes", m.weight_bytes()},
          {"layer_bits_per_weight", m.layer_bits_per_weight()},  // what a report plots accuracy against
          {"prefill_tokens_per_s", prefill > 0 ? static_cast<double>(prefilled) / prefill : 0.0},
          {"decode_tokens_per_s", decode > 0 ? static_cast<double>(decode_tokens) / decode : 0.0},
          {"time_to_first_token_ms", 1000.0 * prefill / n},
          {"peak_rss_mb", peak_rss_mb()},
          {"item_seconds", item_seconds},    // summed over items, resumed ones included
          {"wall_seconds", seconds},         // this invocation (less when resumed)
          {"threads", threads},
          {"note", "per-stream rates: each thread decodes its own item"}};
}

inline run_summary run_generative_spec(const eval_args& a, const generative_task& t, const std::string& spec,
                                       journal& jr) {
  const auto t0 = std::chrono::steady_clock::now();
  auto m = load_in(a, spec);
  const auto tok = qmr::text::tokenizer::load(std::filesystem::path(a.dir) / "tokenizer.json");
  const bool lut = a.lut && !a.on_gpu() && m.repack_lut() > 0;

  // Resume: records already in the journal for this precision are kept, the rest are run.
  std::map<std::string, qmr::eval::gen_record> done;
  for (const auto& j : jr.done(spec)) {
    auto rec = qmr::eval::record_from_json(j, a.out + ".items.jsonl");
    done.emplace(rec.id, std::move(rec));
  }
  std::vector<qmr::eval::gen_item> todo;
  for (const auto& item : t.items)
    if (!done.count(item.id)) todo.push_back(item);
  if (!done.empty() && !a.quiet)
    std::fprintf(stderr, "%s: resuming, %zu of %zu items already done\n", spec.c_str(), t.items.size() - todo.size(),
                 t.items.size());

  qmr::eval::gen_options o;
  o.max_tokens = a.max_tokens;
  o.threads = a.item_threads();
  o.reuse_prefix = !a.no_prefix_reuse;
  o.stop_strings = t.stop_strings;
  if (a.chat) {
    const auto im_end = tok.token_to_id("<|im_end|>");
    if (!im_end) throw qmr::error("--chat: the tokenizer has no <|im_end|> token", qmr::in_file(a.dir));
    o.extra_stop_tokens.push_back(*im_end);
  }
  o.on_record = [&](const qmr::eval::gen_record& rec) { jr.append(spec, qmr::eval::to_json(rec)); };
  progress_bar bar{a.task + " " + spec, a.quiet};
  const std::size_t already = t.items.size() - todo.size();
  const auto progress = [&](std::size_t k, std::size_t) { bar(already + k, t.items.size()); };
  auto r = a.on_gpu() ? qmr::eval::run_generative_on(
                            m, tok, todo, o, [&m](int capacity) { return make_cuda_session(m, capacity); }, progress)
                      : qmr::eval::run_generative_on(
                            m, tok, todo, o,
                            [&m, lut](int capacity) {
                              auto s = std::make_unique<qmr::model::session>(m, capacity);
                              if (lut) s->set_kernel(qmr::model::matmul_kernel::simd_lut);
                              return s;
                            },
                            progress);
  // Records in item order, fresh and journaled alike.
  std::map<std::string, qmr::eval::gen_record> fresh;
  for (auto& rec : r.records) fresh.emplace(rec.id, std::move(rec));
  r.records.clear();
  for (const auto& item : t.items) {
    auto it = done.find(item.id);
    r.records.push_back(it != done.end() ? it->second : fresh.at(item.id));
  }
  qmr::eval::summarize(r);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  run_summary s;
  s.weights = spec;
  s.json = qmr::eval::to_json(r, a.task);
  s.json["weights"] = spec;
  s.json["model"] = a.dir;
  s.json["device"] = a.device;
  s.json["efficiency"] = efficiency_json(m, r, seconds, a.item_threads());
  s.json["efficiency"]["decode_kernel"] = lut ? "lut" : "simd";
  if (a.task == "synthetic") {
    s.json["seed"] = a.seed;
    s.json["synth_version"] = qmr::eval::synth_version;
  }
  // The error taxonomy, for every wrong answer.
  for (std::size_t i = 0; i < r.records.size(); ++i) {
    const auto& rec = r.records[i];
    const auto steps_it = t.reference_steps.find(rec.id);
    const std::span<const qmr::eval::step> steps =
        steps_it == t.reference_steps.end() ? std::span<const qmr::eval::step>{} : std::span<const qmr::eval::step>(steps_it->second);
    const auto e = qmr::eval::classify(rec.output, rec.extracted, rec.gold, rec.truncated, steps);
    const std::string kind(qmr::eval::error_kind_name(e.kind));
    s.json["items"][i]["error_kind"] = kind;
    s.json["items"][i]["error_detail"] = e.detail;
    if (!rec.correct) ++s.errors[kind];
  }
  s.json["errors"] = s.errors;
  s.accuracy = r.overall.accuracy();
  s.n = r.overall.n;
  for (const auto& [level, g] : r.by_level) s.level_accuracy[level] = g.accuracy();
  for (const auto& [type, g] : r.by_type) s.type_accuracy[type] = g.accuracy();
  return s;
}

inline run_summary run_arc_spec(const eval_args& a, const std::string& spec) {
  if (a.data.empty()) throw qmr::error("--task arc needs --data FILE");
  const auto t0 = std::chrono::steady_clock::now();
  const auto m = load_in(a, spec);
  const auto tok = qmr::text::tokenizer::load(std::filesystem::path(a.dir) / "tokenizer.json");
  auto items = qmr::eval::read_arc_jsonl(a.data);
  if (a.limit && items.size() > a.limit) items.resize(a.limit);
  std::vector<qmr::eval::choice_result> results(items.size());
  std::size_t longest = 0;
  for (const auto& it : items) {
    std::size_t l = tok.encode("Question: " + it.question + "\nAnswer:").size();
    std::size_t c = 0;
    for (const auto& ch : it.choices) c = std::max(c, tok.encode(" " + ch).size());
    longest = std::max(longest, l + c + 2);
  }
  std::atomic<std::size_t> next{0}, finished{0};
  std::mutex mutex;
  progress_bar bar{"arc " + spec, a.quiet};
  // Each worker (one on the GPU) claims items one at a time with its own session.
  const auto score_items = [&](auto& sess) {
    for (std::size_t i; (i = next.fetch_add(1)) < items.size();) {
      results[i] = qmr::eval::score_choices(sess, tok, items[i]);
      std::lock_guard<std::mutex> lock(mutex);
      bar(++finished, items.size());
    }
  };
  qmr::thread_pool pool(a.item_threads());
  pool.parallel_for(0, static_cast<std::int64_t>(pool.size()), 1, [&](std::int64_t, std::int64_t) {
    with_session(a, m, static_cast<int>(longest), score_items);
  });
  qmr::eval::group_stats acc, acc_norm;
  nlohmann::json records = nlohmann::json::array();
  for (std::size_t i = 0; i < items.size(); ++i) {
    ++acc.n;
    ++acc_norm.n;
    acc.correct += results[i].correct;
    acc_norm.correct += results[i].correct_norm;
    records.push_back({{"id", items[i].id},
                       {"logprobs", results[i].logprobs},
                       {"predicted", results[i].predicted},
                       {"predicted_norm", results[i].predicted_norm},
                       {"gold", items[i].answer},
                       {"correct", results[i].correct},
                       {"correct_norm", results[i].correct_norm}});
  }
  run_summary s;
  s.weights = spec;
  s.accuracy = acc.accuracy();
  s.n = acc.n;
  s.json = {{"task", "arc"},
            {"weights", spec},
            {"device", a.device},
            {"model", a.dir},
            {"n", acc.n},
            {"accuracy", acc.accuracy()},
            {"accuracy_ci95", {acc.ci95().first, acc.ci95().second}},
            {"acc", acc.accuracy()},
            {"acc_norm", acc_norm.accuracy()},
            {"acc_norm_ci95", {acc_norm.ci95().first, acc_norm.ci95().second}},
            {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()},
            {"model_bytes", m.weight_bytes()},
            {"peak_rss_mb", peak_rss_mb()},
            {"items", records}};
  s.type_accuracy["acc_norm"] = acc_norm.accuracy();
  return s;
}

inline run_summary run_perplexity_spec(const eval_args& a, const std::string& spec) {
  if (a.data.empty()) throw qmr::error("--task perplexity needs --data FILE (raw text)");
  const auto t0 = std::chrono::steady_clock::now();
  const auto m = load_in(a, spec);
  const auto tok = qmr::text::tokenizer::load(std::filesystem::path(a.dir) / "tokenizer.json");
  const std::string text = qmr::io::read_text_file(a.data);
  const auto stops = qmr::model::default_stop_tokens(m);
  if (stops.empty()) throw qmr::error("the model names no end-of-text token to start the first window with");
  const auto r = with_session(a, m, a.window + 1, [&](auto& sess) {
    return qmr::eval::score_rolling(sess, tok, text, stops.front(), a.window);
  });
  run_summary s;
  s.weights = spec;
  s.n = static_cast<std::size_t>(r.tokens);
  s.accuracy = r.token_perplexity();
  s.json = {{"task", "perplexity"},
            {"weights", spec},
            {"device", a.device},
            {"model", a.dir},
            {"data", a.data},
            {"window", a.window},
            {"tokens", r.tokens},
            {"words", r.words},
            {"bytes", r.bytes},
            {"loglikelihood", r.logprob},
            {"token_perplexity", r.token_perplexity()},
            {"word_perplexity", r.word_perplexity()},
            {"byte_perplexity", r.byte_perplexity()},
            {"bits_per_byte", r.bits_per_byte()},
            {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()},
            {"model_bytes", m.weight_bytes()}};
  s.type_accuracy["word_perplexity"] = r.word_perplexity();
  s.type_accuracy["bits_per_byte"] = r.bits_per_byte();
  return s;
}

inline run_summary run_lambada_spec(const eval_args& a, const std::string& spec) {
  if (a.data.empty()) throw qmr::error("--task lambada needs --data FILE (lambada_openai JSONL)");
  const auto t0 = std::chrono::steady_clock::now();
  const auto m = load_in(a, spec);
  const auto tok = qmr::text::tokenizer::load(std::filesystem::path(a.dir) / "tokenizer.json");
  auto items = qmr::eval::read_lambada_jsonl(a.data);
  if (a.limit && items.size() > a.limit) items.resize(a.limit);
  // lm-eval's prefix token: BOS, else EOS.
  const auto& cfg = m.config();
  const auto stops = qmr::model::default_stop_tokens(m);
  if (!cfg.bos_token_id && stops.empty()) throw qmr::error("the model names neither a BOS nor an EOS token");
  const std::int32_t prefix = cfg.bos_token_id ? *cfg.bos_token_id : stops.front();
  // Passages longer than this are cut on the left, as lm-eval truncates to the model's length.
  const int capacity = cfg.max_positions > 0 ? std::min(cfg.max_positions, 4096) : 2048;
  progress_bar bar{"lambada " + spec, a.quiet};
  const auto r = with_session(a, m, capacity, [&](auto& sess) { return qmr::eval::run_lambada(sess, tok, items, prefix, bar); });
  run_summary s;
  s.weights = spec;
  s.n = r.n;
  s.accuracy = r.accuracy();
  s.json = qmr::eval::to_json(r);
  s.json["weights"] = spec;
  s.json["model"] = a.dir;
  s.json["device"] = a.device;
  s.json["model_bytes"] = m.weight_bytes();
  s.json["peak_rss_mb"] = peak_rss_mb();
  s.json["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  s.type_accuracy["perplexity"] = r.perplexity();
  return s;
}

inline std::string pct(double x) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", 100 * x);
  return b;
}

// Prints the sweep as markdown tables: accuracy by level and error kinds, then by type.
inline void print_tables(const eval_args& a, const std::vector<run_summary>& runs) {
  if (a.task == "perplexity") {
    std::printf("| weights | tokens | token ppl | word ppl | bits/byte |\n|---|---|---|---|---|\n");
    for (const auto& r : runs)
      std::printf("| %s | %zu | %.4f | %.4f | %.4f |\n", r.weights.c_str(), r.n, r.accuracy,
                  r.type_accuracy.at("word_perplexity"), r.type_accuracy.at("bits_per_byte"));
    return;
  }
  if (a.task == "lambada") {
    std::printf("| weights | n | acc | perplexity |\n|---|---|---|---|\n");
    for (const auto& r : runs)
      std::printf("| %s | %zu | %s%% | %.3f |\n", r.weights.c_str(), r.n, pct(r.accuracy).c_str(),
                  r.type_accuracy.at("perplexity"));
    return;
  }
  if (a.task == "arc") {
    std::printf("| weights | n | acc | acc_norm |\n|---|---|---|---|\n");
    for (const auto& r : runs)
      std::printf("| %s | %zu | %s%% | %s%% |\n", r.weights.c_str(), r.n, pct(r.accuracy).c_str(),
                  pct(r.type_accuracy.at("acc_norm")).c_str());
    return;
  }
  std::set<int> levels;
  std::set<std::string> kinds;
  for (const auto& r : runs) {
    for (const auto& [l, v] : r.level_accuracy) levels.insert(l);
    for (const auto& [k, v] : r.errors) kinds.insert(k);
  }
  std::printf("| weights | n | accuracy |");
  for (int l : levels) std::printf(" L%d |", l);
  for (const auto& k : kinds) std::printf(" %s errors |", k.c_str());
  std::printf("\n|---|---|---|");
  for (std::size_t i = 0; i < levels.size() + kinds.size(); ++i) std::printf("---|");
  std::printf("\n");
  for (const auto& r : runs) {
    std::printf("| %s | %zu | %s%% |", r.weights.c_str(), r.n, pct(r.accuracy).c_str());
    for (int l : levels) std::printf(" %s |", r.level_accuracy.count(l) ? pct(r.level_accuracy.at(l)).c_str() : "-");
    for (const auto& k : kinds) std::printf(" %zu |", r.errors.count(k) ? r.errors.at(k) : 0);
    std::printf("\n");
  }
  if (runs.front().type_accuracy.size() > 1) {
    std::printf("\n| type |");
    for (const auto& r : runs) std::printf(" %s |", r.weights.c_str());
    std::printf("\n|---|");
    for (std::size_t i = 0; i < runs.size(); ++i) std::printf("---|");
    std::printf("\n");
    for (const auto& [type, v] : runs.front().type_accuracy) {
      std::printf("| %s |", type.c_str());
      for (const auto& r : runs)
        std::printf(" %s%% |", r.type_accuracy.count(type) ? pct(r.type_accuracy.at(type)).c_str() : "-");
      std::printf("\n");
    }
  }
}

inline std::string csv_summary(const eval_args& a, const std::vector<run_summary>& runs) {
  std::ostringstream s;
  s << "task,weights,n,metric,value,ci95_low,ci95_high";
  for (int l = 1; l <= 5; ++l) s << ",level" << l;
  s << ",calculation_errors,reasoning_errors,format_errors,rounding_errors,model_bytes,prefill_tokens_per_s,"
       "decode_tokens_per_s,time_to_first_token_ms,peak_rss_mb,item_seconds\n";
  for (const auto& r : runs) {
    const auto& j = r.json;
    const bool ppl = a.task == "perplexity";
    s << a.task << ',' << r.weights << ',' << r.n << ',' << (ppl ? "token_perplexity" : "accuracy") << ','
      << r.accuracy << ',';
    if (j.contains("accuracy_ci95")) s << j["accuracy_ci95"][0].get<double>() << ',' << j["accuracy_ci95"][1].get<double>();
    else s << ',';
    for (int l = 1; l <= 5; ++l) {
      s << ',';
      if (r.level_accuracy.count(l)) s << r.level_accuracy.at(l);
    }
    for (const char* k : {"calculation", "reasoning", "format", "rounding"}) {
      s << ',';
      if (!ppl && a.task != "arc" && a.task != "lambada") s << (r.errors.count(k) ? r.errors.at(k) : 0);
    }
    const nlohmann::json eff = j.contains("efficiency") ? j["efficiency"] : nlohmann::json::object();
    const auto num = [&](const char* key) {
      if (eff.contains(key)) return eff[key].dump();
      return j.contains(key) ? j[key].dump() : std::string();
    };
    s << ',' << num("model_bytes") << ',' << num("prefill_tokens_per_s") << ',' << num("decode_tokens_per_s") << ','
      << num("time_to_first_token_ms") << ',' << num("peak_rss_mb") << ',' << (eff.contains("item_seconds") ? eff["item_seconds"].dump() : num("seconds")) << '\n';
  }
  return s.str();
}

inline int run_eval(const eval_args& a) {
  static const std::set<std::string> tasks = {"synthetic", "gsm8k", "svamp", "arc", "lambada", "perplexity"};
  if (!tasks.count(a.task))
    throw qmr::error("--task '" + a.task + "' is not one of synthetic, gsm8k, svamp, arc, lambada, perplexity");
  const auto specs = parse_quant_list(a.quant);
  if (a.on_gpu())
    for (const auto& spec : specs)
      if (parse_recipe(spec).act_bits != 0)
        throw qmr::error("--quant '" + spec + "': activation quantization (+a8/+a4) runs only on the CPU session; "
                         "--device cuda runs f16 activations (use --device cpu)");
  require_device(a.device);  // before any model is loaded or calibrated
  const bool generative = a.task == "synthetic" || a.task == "gsm8k" || a.task == "svamp";
  generative_task gt;
  if (generative) gt = make_generative_task(a);

  // The run key: everything that decides the items and their answers, but not the threads.
  const nlohmann::json run_key = {{"task", a.task},   {"model", a.dir},         {"data", a.data},
                                  {"n", a.n},         {"seed", a.seed},         {"types", a.types},
                                  {"levels", a.levels}, {"max_operand", a.max_operand}, {"shots", a.shots},
                                  {"limit", a.limit}, {"max_tokens", a.max_tokens},
                                  {"style", a.style}, {"chat", a.chat}};
  // Calibration decides answers only when some item calibrates (so older journals stay valid).
  nlohmann::json key = run_key;
  for (const auto& spec : specs)
    if (parse_recipe(spec).needs_calibration()) key["calib"] = a.calib.json();
  // The GPU's f16 activations can change answers; CPU journals keep their old key. So can
  // the table GEMV's summation order (a near-tie at a greedy step), rarely.
  if (a.on_gpu()) key["device"] = a.device;
  if (a.lut && generative && !a.on_gpu()) key["kernel"] = "lut";
  journal jr;
  if (!a.out.empty() && generative) jr = journal(a.out + ".items.jsonl", key.dump());

  std::vector<run_summary> runs;
  for (const auto& spec : specs) {
    if (a.task == "arc") runs.push_back(run_arc_spec(a, spec));
    else if (a.task == "perplexity") runs.push_back(run_perplexity_spec(a, spec));
    else if (a.task == "lambada") runs.push_back(run_lambada_spec(a, spec));
    else runs.push_back(run_generative_spec(a, gt, spec, jr));
    const auto& r = runs.back();
    if (!a.quiet)
      std::fprintf(stderr, "%s: %s %.4g\n", spec.c_str(), a.task == "perplexity" ? "token perplexity" : "accuracy",
                   a.task == "perplexity" ? r.accuracy : r.accuracy);
  }

  std::printf("task %s, model %s, threads %u", a.task.c_str(), a.dir.c_str(), a.threads);
  if (a.on_gpu()) std::printf(", device cuda");
  if (a.task == "synthetic")
    std::printf(", %zu problems from seed %llu (synth v%d)", gt.items.size(), static_cast<unsigned long long>(a.seed),
                qmr::eval::synth_version);
  std::printf("\n\n");
  print_tables(a, runs);

  if (!a.out.empty()) {
    // A calibrated run records its calibration: which data, and the method settings (--damp,
    // --awq-pairs, --awq-clip), so that a results file alone says what was measured.
    for (std::size_t i = 0; i < runs.size(); ++i)
      if (parse_recipe(specs[i]).needs_calibration()) runs[i].json["calibration"] = a.calib.full_json();
    nlohmann::json j;
    if (runs.size() == 1) {
      j = runs.front().json;
    } else {
      j = {{"task", a.task}, {"n", runs.front().n}, {"runs", nlohmann::json::array()}};
      for (const auto& r : runs) j["runs"].push_back(r.json);
    }
    qmr::io::write_text_file(a.out, j.dump(1) + "\n");
    qmr::io::write_text_file(a.out + ".csv", csv_summary(a, runs));
    std::printf("\nwrote %s and %s.csv\n", a.out.c_str(), a.out.c_str());
  }
  return 0;
}

}  // namespace qmr_cli
