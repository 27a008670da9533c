// LAMBADA as lm-evaluation-harness's lambada_openai: the official JSONL reader, last-word greedy accuracy and perplexity.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "../io/json_file.hpp"
#include "extract.hpp"
#include "loglikelihood.hpp"

namespace qmr::eval {

// One passage: the context is the text up to its last space, the target " " + the last word
// (lm-eval: doc_to_text "{{text.split(' ')[:-1]|join(' ')}}", doc_to_target "{{' '+text.split(' ')[-1]}}").
struct lambada_item {
  std::string id, text, context, target;
};

inline lambada_item split_lambada(std::string id, std::string text) {
  lambada_item item;
  const std::size_t space = text.rfind(' ');
  item.context = space == std::string::npos ? std::string() : text.substr(0, space);
  item.target = " " + (space == std::string::npos ? text : text.substr(space + 1));
  item.id = std::move(id);
  item.text = std::move(text);
  return item;
}

// The official LAMBADA JSONL (EleutherAI/lambada_openai): {"text": "..."} per line; other fields
// are ignored. A malformed line (not JSON, no string "text", a text without a last word) throws
// an error naming "file:line", or is skipped and counted under `malformed`.
inline std::vector<lambada_item> read_lambada_jsonl(const std::filesystem::path& path,
                                                    io::malformed_lines* malformed = nullptr) {
  std::vector<lambada_item> items;
  io::for_each_jsonl(path, [&](const nlohmann::json& j, const std::string& where) {
    if (!j.is_object()) throw error("not a JSON object", in_file(where));
    if (!j.contains("text") || !j["text"].is_string()) throw error("missing or not a string", in_file(where, {}, "text"));
    std::string text = j["text"].get<std::string>();
    // lm-eval would score an empty target; a passage must end in a word to be a LAMBADA item.
    if (text.empty() || text.back() == ' ' || text.find_first_not_of(" \t\r\n") == std::string::npos)
      throw error("the text does not end in a word", in_file(where, {}, "text"));
    items.push_back(split_lambada("lambada-" + std::to_string(items.size() + 1), std::move(text)));
  }, malformed);
  io::require_items(items.size(), path, malformed);
  return items;
}

struct lambada_record {
  std::string id;
  double logprob = 0;  // log p(target | context), natural log
  bool greedy = false;  // every target token is the argmax: lm-eval's is_greedy, scored as acc
  int context_tokens = 0, target_tokens = 0;
};

struct lambada_results {
  std::vector<lambada_record> records;  // in item order
  std::size_t n = 0, correct = 0;
  double logprob_sum = 0;
  double seconds = 0;
  double accuracy() const { return n ? static_cast<double>(correct) / static_cast<double>(n) : 0.0; }
  std::pair<double, double> accuracy_ci95() const { return wilson_interval(correct, n); }
  // lm-eval's perplexity aggregation: exp(-mean of the per-passage log-likelihoods).
  double perplexity() const { return std::exp(-logprob_sum / static_cast<double>(n)); }
};

// The token ids lm-eval scores for one item: encode_pair(context, target), or, for an empty
// context, [prefix_token] and the target alone. A pair longer than the session keeps the
// target and the context's last tokens, as lm-eval truncates inputs on the left.
inline std::pair<std::vector<std::int32_t>, std::vector<std::int32_t>> lambada_tokens(const text::tokenizer& tok,
                                                                                     const lambada_item& item,
                                                                                     std::int32_t prefix_token,
                                                                                     int capacity) {
  std::vector<std::int32_t> ctx, cont;
  if (item.context.empty()) {
    ctx = {prefix_token};
    cont = tok.encode(item.target);
  } else {
    std::tie(ctx, cont) = encode_pair(tok, item.context, item.target);
  }
  check(cont.size() < static_cast<std::size_t>(capacity), item.id + ": the target alone fills the session");
  // The model sees ctx + cont[:-1]; keep at most `capacity` of those.
  const std::size_t room = static_cast<std::size_t>(capacity) + 1 - cont.size();
  if (ctx.size() > room) ctx.erase(ctx.begin(), ctx.end() - static_cast<std::ptrdiff_t>(room));
  return {ctx, cont};
}

using lambada_progress = std::function<void(std::size_t done, std::size_t total)>;

// Scores every item with one session; `prefix_token` stands in for an empty context (lm-eval's
// prefix_token_id: BOS, or EOS when the model has none). Session as for score_continuation.
template <class Session>
lambada_results run_lambada(Session& s, const text::tokenizer& tok, std::span<const lambada_item> items,
                                   std::int32_t prefix_token, const lambada_progress& progress = {}) {
  const auto start = std::chrono::steady_clock::now();
  lambada_results r;
  for (const lambada_item& item : items) {
    const auto [ctx, cont] = lambada_tokens(tok, item, prefix_token, s.capacity());
    const continuation_score sc = score_continuation(s, ctx, cont);
    r.records.push_back({item.id, sc.logprob, sc.greedy, static_cast<int>(ctx.size()), sc.tokens});
    ++r.n;
    r.correct += sc.greedy;
    r.logprob_sum += sc.logprob;
    if (progress) progress(r.n, items.size());
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

// {"task", "n", "acc", "acc_ci95", "perplexity", "seconds", "items": [{"id", "logprob", "greedy", "context_tokens", "target_tokens"}]}
inline nlohmann::json to_json(const lambada_results& r, const std::string& task = "lambada_openai") {
  nlohmann::json j = {{"task", task},
                      {"n", r.n},
                      {"acc", r.accuracy()},
                      {"acc_ci95", {r.accuracy_ci95().first, r.accuracy_ci95().second}},
                      {"perplexity", r.n ? r.perplexity() : 0.0},
                      {"seconds", r.seconds},
                      {"items", nlohmann::json::array()}};
  for (const lambada_record& rec : r.records)
    j["items"].push_back({{"id", rec.id},
                          {"logprob", rec.logprob},
                          {"greedy", rec.greedy},
                          {"context_tokens", rec.context_tokens},
                          {"target_tokens", rec.target_tokens}});
  return j;
}

}  // namespace qmr::eval
