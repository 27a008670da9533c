// Multiple-choice tasks scored by log-likelihood (ARC's JSONL format), reporting acc and acc_norm as lm-evaluation-harness does.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "../io/json_file.hpp"
#include "loglikelihood.hpp"

namespace qmr::eval {

struct choice_item {
  std::string id, question;
  std::vector<std::string> choices, labels;
  int answer = -1;  // index into choices
};

// ARC JSONL: {"id", "question", "choices": {"text": [...], "label": [...]}, "answerKey"}, one per line.
// A malformed line throws an error naming "file:line", or is skipped and counted under `malformed`.
inline std::vector<choice_item> read_arc_jsonl(const std::filesystem::path& path, io::malformed_lines* malformed = nullptr) {
  std::vector<choice_item> items;
  io::for_each_jsonl(path, [&](const nlohmann::json& j, const std::string& where) {
    const auto fail = [&](const char* field, const std::string& why) { throw error(why, in_file(where, {}, field)); };
    if (!j.is_object()) fail("", "not a JSON object");
    choice_item item;
    if (!j.contains("question") || !j["question"].is_string()) fail("question", "missing or not a string");
    item.question = j["question"].get<std::string>();
    item.id = j.contains("id") && j["id"].is_string() ? j["id"].get<std::string>() : "arc-" + std::to_string(items.size() + 1);
    if (!j.contains("choices") || !j["choices"].is_object()) fail("choices", "missing or not an object");
    const auto& c = j["choices"];
    if (!c.contains("text") || !c["text"].is_array() || !c.contains("label") || !c["label"].is_array() ||
        c["text"].size() != c["label"].size() || c["text"].size() < 2)
      fail("choices", "needs arrays text and label of equal length >= 2");
    for (std::size_t i = 0; i < c["text"].size(); ++i) {
      if (!c["text"][i].is_string() || !c["label"][i].is_string()) fail("choices", "text and label must be strings");
      item.choices.push_back(c["text"][i].get<std::string>());
      item.labels.push_back(c["label"][i].get<std::string>());
    }
    if (!j.contains("answerKey") || !j["answerKey"].is_string()) fail("answerKey", "missing or not a string");
    const std::string key = j["answerKey"].get<std::string>();
    for (std::size_t i = 0; i < item.labels.size(); ++i)
      if (item.labels[i] == key) item.answer = static_cast<int>(i);
    if (item.answer < 0) fail("answerKey", "'" + key + "' is not one of the labels");
    items.push_back(std::move(item));
  }, malformed);
  io::require_items(items.size(), path, malformed);
  return items;
}

struct choice_result {
  std::vector<double> logprobs;  // per choice
  int predicted = -1, predicted_norm = -1;
  bool correct = false, correct_norm = false;
};

// lm-eval's ARC: context "Question: {q}\nAnswer:", continuation " {choice}"; acc takes the
// largest log-likelihood, acc_norm the largest log-likelihood per character of the continuation.
// Session as for score_continuation.
template <class Session>
choice_result score_choices(Session& s, const text::tokenizer& tok, const choice_item& item) {
  choice_result r;
  double best = -INFINITY, best_norm = -INFINITY;
  for (std::size_t i = 0; i < item.choices.size(); ++i) {
    const std::string continuation = " " + item.choices[i];
    const auto [ctx, cont] = encode_pair(tok, "Question: " + item.question + "\nAnswer:", continuation);
    const double lp = score_continuation(s, ctx, cont).logprob;
    r.logprobs.push_back(lp);
    if (lp > best) best = lp, r.predicted = static_cast<int>(i);
    const double norm = lp / static_cast<double>(continuation.size());
    if (norm > best_norm) best_norm = norm, r.predicted_norm = static_cast<int>(i);
  }
  r.correct = r.predicted == item.answer;
  r.correct_norm = r.predicted_norm == item.answer;
  return r;
}

}  // namespace qmr::eval
