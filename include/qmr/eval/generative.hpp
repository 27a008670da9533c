// Generative exact-match evaluation: greedy answers to prompts, answers extracted as lm-eval does, accuracy with Wilson intervals by level and type.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/thread_pool.hpp"
#include "../model/generate.hpp"
#include "../model/generation_config.hpp"
#include "../text/tokenizer.hpp"
#include "extract.hpp"

namespace qmr::eval {

struct gen_item {
  std::string id;
  std::string prompt;  // the full text the model continues
  std::string gold;    // the reference answer (normalized before comparison)
  std::string type;    // for grouping; may be empty
  int level = 0;       // for grouping; 0 = none
};

struct gen_record {
  std::string id, prompt, output, extracted, extracted_flexible, gold, type;
  int level = 0;
  bool correct = false;
  bool truncated = false;  // stopped at max_tokens or the session's capacity, not at a stop token or string
  int prompt_tokens = 0, output_tokens = 0;
  // Of prompt_tokens, the leading ones this item did not prefill: the items' common prefix,
  // prefilled once per session (gen_options::reuse_prefix); prefill_seconds covers the rest.
  int prefix_tokens = 0;
  double seconds = 0, prefill_seconds = 0, decode_seconds = 0;
};
struct gen_options {
  int max_tokens = 256;
  std::vector<std::string> stop_strings = {"\nQuestion:"};  // the next few-shot question would start here
  unsigned threads = 1;  // items run in parallel, one single-threaded session each
  std::vector<std::int32_t> extra_stop_tokens;  // besides the model's end-of-text ids (e.g. <|im_end|> for chat)
  // Called with each finished record, one call at a time (e.g. to append it to a journal).
  std::function<void(const gen_record&)> on_record;
  // Prefill the prompts' longest common prefix (n-shot exemplars, a system prompt) once per
  // session and rewind to it for every item, which then prefills only its own tokens. The
  // logits equal a full prefill's up to the matmul kernels' summation order for the
  // different batch sizes (bit for bit with the reference kernels), and do not depend on
  // the items' order or thread.
  bool reuse_prefix = true;
};

// Shortest common prefix worth reusing: below it the saved prefill is a few tokens' work.
inline constexpr std::size_t min_reused_prefix = 16;

// The tokens every prompt starts with, keeping at least one token of each for its own
// prefill (the first generated token's logits); 0 for fewer than two prompts or a prefix
// shorter than min_reused_prefix.
inline std::size_t common_prompt_prefix(const std::vector<std::vector<std::int32_t>>& prompts) {
  if (prompts.size() < 2) return 0;
  std::size_t n = prompts[0].size();
  for (const auto& p : prompts) {
    n = std::min(n, p.empty() ? 0 : p.size() - 1);
    n = static_cast<std::size_t>(std::mismatch(p.begin(), p.begin() + static_cast<std::ptrdiff_t>(n), prompts[0].begin()).first -
                                 p.begin());
  }
  return n >= min_reused_prefix ? n : 0;
}


struct group_stats {
  std::size_t n = 0, correct = 0;
  double accuracy() const { return n ? static_cast<double>(correct) / static_cast<double>(n) : 0.0; }
  std::pair<double, double> ci95() const { return wilson_interval(correct, n); }
};

struct gen_results {
  std::vector<gen_record> records;  // in item order
  group_stats overall;
  std::map<int, group_stats> by_level;
  std::map<std::string, group_stats> by_type;
  double seconds = 0;
  std::int64_t prompt_tokens = 0, output_tokens = 0;
};

using progress_callback = std::function<void(std::size_t done, std::size_t total)>;

// Recomputes the aggregates of r from r.records (after records were added or merged).
inline void summarize(gen_results& r) {
  r.overall = {};
  r.by_level.clear();
  r.by_type.clear();
  r.prompt_tokens = r.output_tokens = 0;
  for (const gen_record& rec : r.records) {
    for (group_stats* g : {&r.overall, &r.by_level[rec.level], &r.by_type[rec.type]}) {
      ++g->n;
      g->correct += rec.correct;
    }
    r.prompt_tokens += rec.prompt_tokens;
    r.output_tokens += rec.output_tokens;
  }
  if (r.by_level.size() == 1 && r.by_level.begin()->first == 0) r.by_level.clear();
  if (r.by_type.size() == 1 && r.by_type.begin()->first.empty()) r.by_type.clear();
}

// Greedy answers to `items`, each worker thread (o.threads) with its own session from
// make_session(capacity), which returns a std::unique_ptr to a model::session or to any
// session type with reset(), truncate(), forward(), length(), capacity() and a
// generate(session&, ...) overload that argument-dependent lookup finds, as
// model::generate's (e.g. a GPU session, one thread). With o.reuse_prefix each session
// prefills the prompts' common prefix once (common_prompt_prefix).
template <class MakeSession>
gen_results run_generative_on(const model::model& m, const text::tokenizer& tok, std::span<const gen_item> items,
                              const gen_options& o, MakeSession&& make_session, const progress_callback& progress = {}) {
  const auto start = std::chrono::steady_clock::now();
  gen_results r;
  r.records.resize(items.size());
  std::vector<std::vector<std::int32_t>> prompts(items.size());
  int longest = 0;
  for (std::size_t i = 0; i < items.size(); ++i) {
    prompts[i] = tok.encode(items[i].prompt);
    check(!prompts[i].empty(), "item " + items[i].id + " has an empty prompt");
    longest = std::max(longest, static_cast<int>(prompts[i].size()));
  }
  // Each session holds the longest prompt and its answer (and one more position); summed in
  // 64 bits, as max_tokens near INT_MAX would overflow an int.
  check(o.max_tokens >= 0, "max_tokens must be >= 0, got " + std::to_string(o.max_tokens));
  const std::int64_t capacity = std::int64_t{longest} + o.max_tokens + 1;
  check(capacity <= std::numeric_limits<int>::max(),
        "max_tokens " + std::to_string(o.max_tokens) + " after a prompt of " + std::to_string(longest) +
            " tokens needs a session of " + std::to_string(capacity) + " positions, more than an int holds");
  const std::size_t prefix = o.reuse_prefix ? common_prompt_prefix(prompts) : 0;
  model::sampling_options sampling;  // greedy
  sampling.max_tokens = o.max_tokens;
  sampling.stop_tokens = model::default_stop_tokens(m);
  sampling.stop_tokens.insert(sampling.stop_tokens.end(), o.extra_stop_tokens.begin(), o.extra_stop_tokens.end());
  std::mutex mutex;
  std::size_t done = 0;
  thread_pool pool(std::max(1u, o.threads));
  // One chunk per worker, each with its own session, claiming items one at a time
  // (answers differ in length, so a static split would leave a worker idle).
  std::atomic<std::size_t> next{0};
  pool.parallel_for(0, static_cast<std::int64_t>(pool.size()), 1, [&](std::int64_t, std::int64_t) {
    const auto s = make_session(static_cast<int>(capacity));
    if (prefix > 0) s->forward(std::span<const std::int32_t>(prompts[0].data(), prefix));  // the shared prefix, once
    for (std::size_t i; (i = next.fetch_add(1)) < items.size();) {
      const gen_item& item = items[i];
      const auto t0 = std::chrono::steady_clock::now();
      if (prefix > 0) s->truncate(static_cast<int>(prefix));  // back to the end of the shared prefix
      else s->reset();
      using model::generate;
      const auto g = generate(*s, std::span<const std::int32_t>(prompts[i]).subspan(prefix), sampling, {}, o.stop_strings,
                              [&](std::span<const std::int32_t> ids) { return tok.decode(ids, true); });
      std::vector<std::int32_t> out = g.tokens;
      if (g.reason == model::stop_reason::stop_token) out.pop_back();
      gen_record& rec = r.records[i];
      rec.id = item.id;
      rec.prompt = item.prompt;
      rec.output = tok.decode(out, true);
      for (const std::string& st : o.stop_strings)  // cut at the stop string, as lm-eval's `until`
        if (const auto at = rec.output.find(st); at != std::string::npos) rec.output.erase(at);
      rec.extracted = extract_strict(rec.output).value_or("");
      rec.extracted_flexible = extract_flexible(rec.output).value_or("");
      rec.gold = item.gold;
      rec.type = item.type;
      rec.level = item.level;
      rec.correct = !rec.extracted.empty() && normalize_answer(rec.extracted) == normalize_answer(item.gold);
      rec.prompt_tokens = static_cast<int>(prompts[i].size());
      rec.prefix_tokens = static_cast<int>(prefix);
      rec.output_tokens = static_cast<int>(g.tokens.size());
      rec.truncated = g.reason == model::stop_reason::max_tokens || g.reason == model::stop_reason::capacity;
      rec.prefill_seconds = g.prefill_seconds;
      rec.decode_seconds = g.decode_seconds;
      rec.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::lock_guard<std::mutex> lock(mutex);
      if (o.on_record) o.on_record(rec);
      ++done;
      if (progress) progress(done, items.size());
    }
  });
  summarize(r);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

// run_generative_on with one CPU model::session per worker thread.
inline gen_results run_generative(const model::model& m, const text::tokenizer& tok, std::span<const gen_item> items,
                                  const gen_options& o, const progress_callback& progress = {}) {
  return run_generative_on(
      m, tok, items, o, [&m](int capacity) { return std::make_unique<model::session>(m, capacity); }, progress);
}

inline nlohmann::json to_json(const gen_record& rec) {
  return {{"id", rec.id},
          {"prompt", rec.prompt},
          {"output", rec.output},
          {"extracted", rec.extracted},
          {"extracted_flexible", rec.extracted_flexible},
          {"gold", rec.gold},
          {"correct", rec.correct},
          {"type", rec.type},
          {"level", rec.level},
          {"truncated", rec.truncated},
          {"prompt_tokens", rec.prompt_tokens},
          {"prefix_tokens", rec.prefix_tokens},
          {"tokens", rec.output_tokens},
          {"seconds", rec.seconds},
          {"prefill_seconds", rec.prefill_seconds},
          {"decode_seconds", rec.decode_seconds}};
}

// The inverse of to_json(gen_record); `where` names the source in errors (file:line).
inline gen_record record_from_json(const nlohmann::json& j, const std::string& where) {
  gen_record rec;
  try {
    rec.id = j.at("id").get<std::string>();
    rec.prompt = j.at("prompt").get<std::string>();
    rec.output = j.at("output").get<std::string>();
    rec.extracted = j.at("extracted").get<std::string>();
    rec.extracted_flexible = j.at("extracted_flexible").get<std::string>();
    rec.gold = j.at("gold").get<std::string>();
    rec.correct = j.at("correct").get<bool>();
    rec.type = j.at("type").get<std::string>();
    rec.level = j.at("level").get<int>();
    rec.truncated = j.at("truncated").get<bool>();
    rec.prompt_tokens = j.at("prompt_tokens").get<int>();
    rec.prefix_tokens = j.value("prefix_tokens", 0);  // absent in journals written before prefix reuse
    rec.output_tokens = j.at("tokens").get<int>();
    rec.seconds = j.at("seconds").get<double>();
    rec.prefill_seconds = j.at("prefill_seconds").get<double>();
    rec.decode_seconds = j.at("decode_seconds").get<double>();
  } catch (const nlohmann::json::exception& e) {
    throw error(std::string("not a result record: ") + e.what(), in_file(where));
  }
  return rec;
}

inline nlohmann::json to_json(const group_stats& g) {
  const auto [lo, hi] = g.ci95();
  return {{"n", g.n}, {"correct", g.correct}, {"accuracy", g.accuracy()}, {"ci95", {lo, hi}}};
}

// The results schema: task, n, accuracy, accuracy_ci95, by_level, by_type, seconds,
// tokens, and `items`, one record per problem.
inline nlohmann::json to_json(const gen_results& r, const std::string& task) {
  nlohmann::json j = {{"task", task},
                      {"n", r.overall.n},
                      {"accuracy", r.overall.accuracy()},
                      {"accuracy_ci95", {r.overall.ci95().first, r.overall.ci95().second}},
                      {"seconds", r.seconds},
                      {"prompt_tokens", r.prompt_tokens},
                      {"output_tokens", r.output_tokens},
                      {"by_level", nlohmann::json::object()},
                      {"by_type", nlohmann::json::object()},
                      {"items", nlohmann::json::array()}};
  for (const auto& [level, g] : r.by_level) j["by_level"][std::to_string(level)] = to_json(g);
  for (const auto& [type, g] : r.by_type) j["by_type"][type] = to_json(g);
  for (const gen_record& rec : r.records) j["items"].push_back(to_json(rec));
  return j;
}

}  // namespace qmr::eval
