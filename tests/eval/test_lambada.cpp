// LAMBADA: the official JSONL schema with malformed lines, lm-eval's context/target split, acc and perplexity against a direct forward-pass computation.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>

#include "../model/fixtures.hpp"
#include "../temp_dir.hpp"
#include "qmr/eval/lambada.hpp"

using namespace qmr;

namespace {

std::filesystem::path tasks_dir() {
  const char* root = std::getenv("QMR_TEST_DATA");
  if (!root) throw std::runtime_error("QMR_TEST_DATA is not set");
  return std::filesystem::path(root) / "tasks";
}

struct direct_score {
  double logprob = 0;
  bool greedy = true;
};

// log p(ids[first..]) from one forward pass over all of `ids`, in double, with the argmax test.
direct_score score_direct(model::session& s, const std::vector<std::int32_t>& ids, std::size_t first) {
  s.reset();
  const auto logits = s.forward(ids, true);  // [ids, vocab]
  direct_score d;
  for (std::size_t t = first; t < ids.size(); ++t) {
    const float* row = logits.row(static_cast<std::int64_t>(t - 1));
    const float top = *std::max_element(row, row + logits.cols);
    double sum = 0;
    for (std::int64_t v = 0; v < logits.cols; ++v) sum += std::exp(static_cast<double>(row[v]) - top);
    d.logprob += static_cast<double>(row[ids[t]]) - top - std::log(sum);
    d.greedy = d.greedy && row[ids[t]] == top;
  }
  return d;
}

}  // namespace

TEST_CASE("LAMBADA JSONL: context up to the last space, target a space and the last word", "[lambada]") {
  const auto items = eval::read_lambada_jsonl(tasks_dir() / "lambada_sample.jsonl");
  REQUIRE(items.size() == 10);
  CHECK(items[0].target == " signs");
  CHECK(items[0].context.ends_with("I don't care about"));
  CHECK(items[3].target == " another");
  CHECK(items[3].context.starts_with("\"Do you have the map?\" asked Lena."));
  for (const auto& item : items) {
    CHECK(item.context + item.target == item.text);
    CHECK(item.target.rfind(' ') == 0);
    CHECK(item.target.size() > 1);
  }
  CHECK(items[9].id == "lambada-10");
  // text.split(' '): no space -> empty context; a double space leaves one in the context.
  const auto lone = eval::split_lambada("x", "Hello");
  CHECK(lone.context.empty());
  CHECK(lone.target == " Hello");
  const auto twice = eval::split_lambada("y", "a  b");
  CHECK(twice.context == "a ");
  CHECK(twice.target == " b");
}

TEST_CASE("LAMBADA: malformed lines name file and line, or are skipped and counted", "[lambada]") {
  testing::temp_dir dir;
  std::ofstream(dir / "l.jsonl") << R"({"text": "The cat sat on the mat", "domain": "ignored"})" << "\n"
                                 << "{\"text\": \"unterminated\n"
                                 << R"({"text": 5})" << "\n"
                                 << "\n"
                                 << R"(["text", "a list"])" << "\n"
                                 << R"({"text": "ends in a space "})" << "\n"
                                 << R"({"txt": "wrong field"})" << "\n"
                                 << R"({"text": "The dog ran to the park"})" << "\n";
  REQUIRE_THROWS_WITH(eval::read_lambada_jsonl(dir / "l.jsonl"), Catch::Contains("l.jsonl:2") && Catch::Contains("not valid JSON"));
  io::malformed_lines m;
  m.skip = true;
  const auto items = eval::read_lambada_jsonl(dir / "l.jsonl", &m);
  REQUIRE(items.size() == 2);
  CHECK(items[1].target == " park");
  REQUIRE(m.skipped == 5);
  REQUIRE(m.errors.size() == 5);
  CHECK_THAT(m.errors[0], Catch::Contains("l.jsonl:2:"));
  CHECK_THAT(m.errors[1], Catch::Contains("l.jsonl:3:") && Catch::Contains("field 'text'"));
  CHECK_THAT(m.errors[2], Catch::Contains("l.jsonl:5:") && Catch::Contains("not a JSON object"));
  CHECK_THAT(m.errors[3], Catch::Contains("l.jsonl:6:") && Catch::Contains("does not end in a word"));
  CHECK_THAT(m.errors[4], Catch::Contains("l.jsonl:7:") && Catch::Contains("field 'text'"));
  REQUIRE_THROWS_WITH(eval::read_lambada_jsonl(dir / "missing.jsonl"), Catch::Contains("cannot open"));
}

TEST_CASE("LAMBADA: an empty file is an error naming it", "[lambada]") {
  // Before, it gave no items, and run_lambada's perplexity() was exp(-0 / 0) = NaN.
  testing::temp_dir dir;
  std::ofstream(dir / "empty.jsonl") << "";
  REQUIRE_THROWS_WITH(eval::read_lambada_jsonl(dir / "empty.jsonl"), Catch::Contains("empty.jsonl") && Catch::Contains("no items"));
}

TEST_CASE("LAMBADA acc and perplexity equal a direct forward-pass computation", "[lambada]") {
  const auto dir = testing::fixture_dir("llama-gqa2");
  const auto m = model::model::load(dir);
  const auto tok = text::tokenizer::load(dir / "tokenizer.json");
  const std::int32_t eot = *tok.token_to_id("<|endoftext|>");
  model::session s(m, 256);
  const auto items = eval::read_lambada_jsonl(tasks_dir() / "lambada_sample.jsonl");
  const auto r = eval::run_lambada(s, tok, items, eot);
  REQUIRE(r.n == items.size());
  double sum = 0;
  std::size_t greedy = 0;
  for (std::size_t i = 0; i < items.size(); ++i) {
    // The passage encoded whole; the target is what follows the context's own encoding.
    const auto whole = tok.encode(items[i].text), ctx = tok.encode(items[i].context);
    REQUIRE(std::equal(ctx.begin(), ctx.end(), whole.begin()));
    const auto d = score_direct(s, whole, ctx.size());
    INFO(items[i].id);
    CHECK(r.records[i].logprob == Approx(d.logprob).epsilon(1e-6));
    CHECK(r.records[i].greedy == d.greedy);
    CHECK(r.records[i].target_tokens == static_cast<int>(whole.size() - ctx.size()));
    CHECK(r.records[i].context_tokens == static_cast<int>(ctx.size()));
    sum += d.logprob;
    greedy += d.greedy;
  }
  CHECK(r.correct == greedy);
  CHECK(r.accuracy() == Approx(static_cast<double>(greedy) / items.size()));
  CHECK(r.perplexity() == Approx(std::exp(-sum / items.size())).epsilon(1e-6));
  CHECK(r.perplexity() > 1);
  const auto j = eval::to_json(r);
  CHECK(j["task"] == "lambada_openai");
  CHECK(j["items"].size() == items.size());
  CHECK(j["perplexity"].get<double>() == Approx(r.perplexity()));
}

TEST_CASE("LAMBADA: a last word the model predicts greedily is correct; empty and long contexts", "[lambada]") {
  const auto dir = testing::fixture_dir("llama-gqa2");
  const auto m = model::model::load(dir);
  const auto tok = text::tokenizer::load(dir / "tokenizer.json");
  const std::int32_t eot = *tok.token_to_id("<|endoftext|>");
  model::session s(m, 256);
  // Append each context's argmax token when it decodes to " word": that passage must score greedy.
  std::vector<eval::lambada_item> made;
  for (const auto& item : eval::read_lambada_jsonl(tasks_dir() / "lambada_sample.jsonl")) {
    const auto ids = tok.encode(item.context);
    s.reset();
    const auto logits = s.forward(ids);
    const float* row = logits.row(0);
    const auto next = static_cast<std::int32_t>(std::max_element(row, row + logits.cols) - row);
    const std::string word = tok.decode(std::vector<std::int32_t>{next});
    const bool is_word = word.size() > 1 && word[0] == ' ' &&
                         std::all_of(word.begin() + 1, word.end(), [](char c) { return std::isalpha(static_cast<unsigned char>(c)); });
    if (!is_word) continue;
    auto candidate = eval::split_lambada("made-" + item.id, item.context + word);
    if (eval::lambada_tokens(tok, candidate, eot, s.capacity()).second == std::vector<std::int32_t>{next})
      made.push_back(std::move(candidate));
  }
  INFO("contexts whose argmax is a word: " << made.size());
  REQUIRE(!made.empty());
  const auto r = eval::run_lambada(s, tok, made, eot);
  CHECK(r.correct == made.size());
  CHECK(r.accuracy() == 1.0);

  // An empty context is scored after the prefix token.
  const std::vector<eval::lambada_item> lone = {eval::split_lambada("lone", "Hello")};
  std::vector<std::int32_t> ids = {eot};
  const auto hello = tok.encode(" Hello");
  ids.insert(ids.end(), hello.begin(), hello.end());
  CHECK(eval::run_lambada(s, tok, lone, eot).records[0].logprob == Approx(score_direct(s, ids, 1).logprob).epsilon(1e-6));

  // A pair longer than the session keeps the target and the context's last tokens.
  model::session small(m, 12);
  const auto item = eval::read_lambada_jsonl(tasks_dir() / "lambada_sample.jsonl")[2];
  const auto whole = tok.encode(item.text), ctx = tok.encode(item.context);
  const std::size_t target = whole.size() - ctx.size();
  const std::vector<std::int32_t> kept(whole.end() - static_cast<std::ptrdiff_t>(12 + 1), whole.end());
  const auto [c, t] = eval::lambada_tokens(tok, item, eot, small.capacity());
  CHECK(c.size() + t.size() == 13);
  CHECK(t.size() == target);
  const auto rs = eval::run_lambada(small, tok, std::span(&item, 1), eot);
  CHECK(rs.records[0].logprob == Approx(score_direct(s, kept, kept.size() - target).logprob).epsilon(1e-6));
}
