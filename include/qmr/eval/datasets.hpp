// Readers for generative math datasets (GSM8K JSONL, SVAMP JSON) and lm-eval-style n-shot prompts.
#pragma once

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "../io/json_file.hpp"
#include "extract.hpp"
#include "generative.hpp"

namespace qmr::eval {

// One question with its worked answer (may be empty) and the gold final answer.
struct qa_example {
  std::string id, question, answer, gold, type;
};

// GSM8K JSONL: {"question", "answer"} per line, the answer ending in "#### N". A malformed line
// throws an error naming "file:line", or is skipped and counted under `malformed`.
inline std::vector<qa_example> read_gsm8k_jsonl(const std::filesystem::path& path, io::malformed_lines* malformed = nullptr) {
  std::vector<qa_example> out;
  io::for_each_jsonl(path, [&](const nlohmann::json& j, const std::string& where) {
    for (const char* field : {"question", "answer"})
      if (!j.is_object() || !j.contains(field) || !j[field].is_string())
        throw error("missing or not a string", in_file(where, {}, field));
    qa_example e;
    e.id = "gsm8k-" + std::to_string(out.size() + 1);
    e.question = j["question"].get<std::string>();
    e.answer = j["answer"].get<std::string>();
    const auto gold = extract_strict(e.answer);
    if (!gold) throw error("does not end in '#### N'", in_file(where, {}, "answer"));
    e.gold = *gold;
    out.push_back(std::move(e));
  }, malformed);
  io::require_items(out.size(), path, malformed);
  return out;
}

// SVAMP JSON: an array of {"ID", "Body", "Question", "Answer", "Type"}; the question is Body + " " + Question.
// A file that is not JSON throws (the message gives its line and column); a malformed entry
// throws an error naming "file[index]", or is skipped and counted under `malformed`.
inline std::vector<qa_example> read_svamp_json(const std::filesystem::path& path, io::malformed_lines* malformed = nullptr) {
  const nlohmann::json j = io::read_json_file(path);
  if (!j.is_array()) throw error("expected a JSON array of problems", in_file(path.string()));
  std::vector<qa_example> out;
  for (std::size_t i = 0; i < j.size(); ++i) {
    const auto& p = j[i];
    const std::string where = path.string() + "[" + std::to_string(i) + "]";
    try {
      for (const char* field : {"Body", "Question"})
        if (!p.is_object() || !p.contains(field) || !p[field].is_string())
          throw error("missing or not a string", in_file(where, {}, field));
      if (!p.contains("Answer") || !p["Answer"].is_number()) throw error("missing or not a number", in_file(where, {}, "Answer"));
      const double a = p["Answer"].get<double>();
      if (!std::isfinite(a)) throw error("not a finite number", in_file(where, {}, "Answer"));
      qa_example e;
      e.id = p.contains("ID") && p["ID"].is_string() ? p["ID"].get<std::string>() : "svamp-" + std::to_string(i);
      std::string body = p["Body"].get<std::string>();
      if (!body.empty() && body.back() != ' ') body += ' ';
      e.question = body + p["Question"].get<std::string>();
      std::ostringstream s;  // 5.0 -> "5", 2.5 -> "2.5"
      if (a == std::floor(a) && std::fabs(a) < 1e15) s << static_cast<long long>(a);
      else s << a;
      e.gold = s.str();
      e.type = p.contains("Type") && p["Type"].is_string() ? p["Type"].get<std::string>() : "";
      out.push_back(std::move(e));
    } catch (const error& e) {
      if (!malformed) throw;
      malformed->handle(e, where);
    }
  }
  io::require_items(out.size(), path, malformed);
  return out;
}

enum class prompt_style {
  question_answer,  // lm-eval gsm8k: "Question: {q}\nAnswer:", exemplars answered " {answer}"
  cot,              // chain of thought: "Q: {q}\n\nA:", exemplars answered " {answer}"
};

// n-shot prompt: exemplars (with their answers) separated by a blank line, then the question.
inline std::string build_prompt(const qa_example& e, std::span<const qa_example> shots, prompt_style style) {
  const auto question = [&](const qa_example& x) {
    return style == prompt_style::question_answer ? "Question: " + x.question + "\nAnswer:" : "Q: " + x.question + "\n\nA:";
  };
  std::string out;
  for (const qa_example& s : shots) out += question(s) + " " + s.answer + "\n\n";
  return out + question(e);
}

// Generative items for run_generative(); stop strings should include the next "Question:" / "Q:".
inline std::vector<gen_item> to_items(std::span<const qa_example> examples, std::span<const qa_example> shots,
                                      prompt_style style) {
  std::vector<gen_item> items;
  for (const qa_example& e : examples) items.push_back({e.id, build_prompt(e, shots, style), e.gold, e.type, 0});
  return items;
}

}  // namespace qmr::eval
