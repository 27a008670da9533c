// Log-likelihood scoring: continuation log-probs equal the forward pass's log-softmax, rolling windows as lm-eval, ARC reading and acc/acc_norm.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>

#include "../model/fixtures.hpp"
#include "../temp_dir.hpp"
#include "qmr/eval/multiple_choice.hpp"

using namespace qmr;

namespace {

// log p(ids[t] | ids[<t]) for t >= 1, from one full forward pass, in double.
std::vector<double> token_logprobs(model::session& s, const std::vector<std::int32_t>& ids) {
  s.reset();
  const auto logits = s.forward(ids, true);
  std::vector<double> out(ids.size(), 0.0);
  for (std::size_t t = 1; t < ids.size(); ++t) {
    const float* row = logits.row(static_cast<std::int64_t>(t - 1));
    double sum = 0;
    for (std::int64_t v = 0; v < logits.cols; ++v) sum += std::exp(static_cast<double>(row[v]));
    out[t] = static_cast<double>(row[ids[t]]) - std::log(sum);
  }
  return out;
}

}  // namespace

TEST_CASE("continuation log-likelihood is the sum of the forward pass's log-softmax", "[loglikelihood]") {
  const auto m = model::model::load(testing::fixture_dir("qwen2-gqa7-bias"));
  const auto ref = testing::load_reference("qwen2-gqa7-bias");
  model::session s(m, 64);
  const auto lp = token_logprobs(s, ref.ids);
  for (std::size_t split : {1u, 5u, 20u}) {
    const std::span<const std::int32_t> ctx(ref.ids.data(), split), cont(ref.ids.data() + split, ref.ids.size() - split);
    const auto r = eval::score_continuation(s, ctx, cont);
    double expected = 0;
    for (std::size_t t = split; t < ref.ids.size(); ++t) expected += lp[t];
    REQUIRE(r.logprob == Approx(expected).epsilon(1e-6));
    REQUIRE(r.tokens == static_cast<int>(ref.ids.size() - split));
    REQUIRE(r.logprob < 0);
  }
  // A continuation of argmax tokens is greedy.
  const std::vector<std::int32_t> ctx = {5, 6, 7};
  s.reset();
  const auto logits = s.forward(ctx);
  const auto next = static_cast<std::int32_t>(std::max_element(logits.row(0), logits.row(0) + logits.cols) - logits.row(0));
  REQUIRE(eval::score_continuation(s, ctx, std::vector<std::int32_t>{next}).greedy);
  REQUIRE_THROWS(eval::score_continuation(s, {}, ctx));
}

TEST_CASE("rolling perplexity predicts every token once in lm-eval's windows", "[loglikelihood]") {
  const auto m = model::model::load(testing::fixture_dir("llama-gqa2"));
  const auto tok = text::tokenizer::load(testing::fixture_dir("llama-gqa2") / "tokenizer.json");
  model::session s(m, 64);
  const std::string doc = "Tom has 12 apples. He buys 3*4=<<3*4=12>>12 more.\n#### 24  and  then";
  const auto ids = tok.encode(doc);
  const std::int32_t eot = *tok.token_to_id("<|endoftext|>");
  // One window holding everything: the prefix token then the whole document.
  std::vector<std::int32_t> full = {eot};
  full.insert(full.end(), ids.begin(), ids.end());
  const auto lp = token_logprobs(s, full);
  double whole = 0;
  for (std::size_t t = 1; t < full.size(); ++t) whole += lp[t];
  const auto one = eval::score_rolling(s, tok, doc, eot, 64);
  REQUIRE(one.logprob == Approx(whole).epsilon(1e-6));
  REQUIRE(one.tokens == static_cast<std::int64_t>(ids.size()));
  REQUIRE(one.bytes == static_cast<std::int64_t>(doc.size()));
  REQUIRE(one.words == 12);  // re.split(r"\s+") pieces
  REQUIRE(one.bits_per_byte() == Approx(-whole / (doc.size() * std::log(2.0))));
  REQUIRE(one.token_perplexity() == Approx(std::exp(-whole / ids.size())));

  // Windows of 8: window k predicts ids[8k, 8k+8) from the 8 tokens before its last prediction.
  const auto small = eval::score_rolling(s, tok, doc, eot, 8);
  double expected = 0;
  for (std::size_t start = 0; start < ids.size(); start += 8) {
    const std::size_t end = std::min(ids.size(), start + 8);
    std::vector<std::int32_t> input;
    for (std::int64_t i = static_cast<std::int64_t>(end) - 9; i < static_cast<std::int64_t>(end) - 1; ++i)
      if (i >= -1) input.push_back(i < 0 ? eot : ids[static_cast<std::size_t>(i)]);
    input.push_back(ids[end - 1]);
    const auto w = token_logprobs(s, input);
    for (std::size_t t = input.size() - (end - start); t < input.size(); ++t) expected += w[t];
  }
  REQUIRE(small.logprob == Approx(expected).epsilon(1e-6));
  REQUIRE(small.logprob < one.logprob + 50);  // shorter contexts: a different, but finite, score
}

TEST_CASE("encode_pair moves the context's trailing spaces into the continuation", "[loglikelihood]") {
  const auto tok = text::tokenizer::load(testing::fixture_dir("llama-gqa2") / "tokenizer.json");
  const auto [ctx, cont] = eval::encode_pair(tok, "Answer: ", "yes");
  REQUIRE(ctx == tok.encode("Answer:"));
  std::vector<std::int32_t> joined = ctx;
  joined.insert(joined.end(), cont.begin(), cont.end());
  REQUIRE(joined == tok.encode("Answer: yes"));
}

TEST_CASE("ARC JSONL is read and scored with acc and acc_norm", "[loglikelihood]") {
  const char* root = std::getenv("QMR_TEST_DATA");
  REQUIRE(root != nullptr);
  const auto items = eval::read_arc_jsonl(std::filesystem::path(root) / "tasks" / "arc_sample.jsonl");
  REQUIRE(items.size() == 3);
  REQUIRE(items[1].answer == 0);
  REQUIRE(items[2].answer == 1);
  REQUIRE(items[0].choices.size() == 4);
  const auto m = model::model::load(testing::fixture_dir("llama-gqa2"));
  const auto tok = text::tokenizer::load(testing::fixture_dir("llama-gqa2") / "tokenizer.json");
  model::session s(m, 128);
  for (const auto& item : items) {
    const auto r = eval::score_choices(s, tok, item);
    REQUIRE(r.logprobs.size() == item.choices.size());
    const auto best = std::max_element(r.logprobs.begin(), r.logprobs.end()) - r.logprobs.begin();
    REQUIRE(r.predicted == best);
    REQUIRE(r.correct == (r.predicted == item.answer));
    REQUIRE(r.predicted_norm >= 0);
  }

  testing::temp_dir dir;
  std::ofstream(dir / "bad.jsonl") << R"({"question": "q", "choices": {"text": ["a", "b"], "label": ["A", "B"]}, "answerKey": "C"})"
                                   << "\n";
  REQUIRE_THROWS_WITH(eval::read_arc_jsonl(dir / "bad.jsonl"),
                      Catch::Contains("bad.jsonl:1") && Catch::Contains("answerKey") && Catch::Contains("'C'"));
  std::ofstream(dir / "bad2.jsonl") << "{\"question\": 1}\n";
  REQUIRE_THROWS_WITH(eval::read_arc_jsonl(dir / "bad2.jsonl"), Catch::Contains("field 'question'"));
}
