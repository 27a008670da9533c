// Answer extraction and normalization against lm-evaluation-harness's GSM8K regexes, the Wilson interval, the generative runner, dataset readers.
#include <catch2/catch.hpp>

#include <fstream>
#include <limits>

#include "../model/fixtures.hpp"
#include "../temp_dir.hpp"
#include "qmr/eval/datasets.hpp"
#include "qmr/eval/extract.hpp"
#include "qmr/eval/generative.hpp"

using namespace qmr;

TEST_CASE("strict extraction takes the first '#### N'", "[extract]") {
  REQUIRE(eval::extract_strict("so 3+4=7\n#### 7") == "7");
  REQUIRE(eval::extract_strict("#### -1,234.5 dollars") == "-1,234.5");
  REQUIRE(eval::extract_strict("#### 12\n#### 13") == "12");
  REQUIRE(eval::extract_strict("####  12") == std::nullopt);  // the regex wants exactly one space
  REQUIRE(eval::extract_strict("#### -") == std::nullopt);
  REQUIRE(eval::extract_strict("#### x\n#### 5") == "5");
  REQUIRE(eval::extract_strict("no answer") == std::nullopt);
  REQUIRE(eval::extract_strict("#### .,") == ".,");
}

TEST_CASE("flexible extraction takes the last number-like match", "[extract]") {
  REQUIRE(eval::extract_flexible("He has 3 apples and buys 12 more, 15 in all.") == "15");
  REQUIRE(eval::extract_flexible("costs $1,250.00.") == "$1,250.00.");
  REQUIRE(eval::extract_flexible("x = -5") == "-5");
  REQUIRE(eval::extract_flexible("a - 7") == "7");
  REQUIRE(eval::extract_flexible("7 and -") == "7");
  REQUIRE(eval::extract_flexible("3.5 or 4") == "4");
  REQUIRE(eval::extract_flexible("ends with ,.") == ",.");
  REQUIRE(eval::extract_flexible("none") == std::nullopt);
}

TEST_CASE("normalization drops commas, dollars, the #### prefix and one trailing dot", "[extract]") {
  REQUIRE(eval::normalize_answer("$1,250.") == "1250");
  REQUIRE(eval::normalize_answer("Natalia sold 48/2 = 24 clips.\n#### 72") == "72");
  REQUIRE(eval::normalize_answer(" 18 ") == "18");
  REQUIRE(eval::normalize_answer("3..") == "3.");
}

TEST_CASE("Wilson interval", "[extract]") {
  const auto [lo, hi] = eval::wilson_interval(90, 100);
  REQUIRE(lo == Approx(0.8256).epsilon(1e-3));
  REQUIRE(hi == Approx(0.9448).epsilon(1e-3));
  REQUIRE(eval::wilson_interval(0, 10).first == 0.0);
  REQUIRE(eval::wilson_interval(10, 10).second == Approx(1.0));
}

TEST_CASE("the generative runner records greedy outputs identically on 1 and 2 threads", "[extract]") {
  const auto m = model::model::load(testing::fixture_dir("llama-gqa2"));
  const auto tok = text::tokenizer::load(testing::fixture_dir("llama-gqa2") / "tokenizer.json");
  const auto ref = testing::load_reference("llama-gqa2");
  std::vector<eval::gen_item> items;
  for (std::size_t i = 0; i < ref.continuations.size(); ++i) {
    const auto& c = ref.continuations[i];
    // Gold is the decoded greedy continuation's last number, if any, so that scoring is exercised.
    const std::string expected = tok.decode(c.greedy, true);
    items.push_back({"item" + std::to_string(i), tok.decode(c.prompt), eval::extract_flexible(expected).value_or("0"),
                     i % 2 ? "odd" : "even", static_cast<int>(i % 2) + 1});
  }
  eval::gen_options o;
  o.max_tokens = 8;
  o.stop_strings.clear();
  std::size_t calls = 0;
  const auto one = eval::run_generative(m, tok, items, o, [&](std::size_t done, std::size_t total) {
    REQUIRE(done == ++calls);
    REQUIRE(total == items.size());
  });
  o.threads = 2;
  const auto two = eval::run_generative(m, tok, items, o);
  REQUIRE(one.records.size() == items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    INFO(i);
    REQUIRE(one.records[i].output == tok.decode(ref.continuations[i].greedy, true));
    REQUIRE(two.records[i].output == one.records[i].output);
    REQUIRE(one.records[i].output_tokens == 8);
  }
  REQUIRE(one.overall.n == items.size());
  REQUIRE(one.by_level.size() == 2);
  REQUIRE(one.by_type.count("odd"));
  const auto j = eval::to_json(one, "fixture");
  REQUIRE(j["task"] == "fixture");
  REQUIRE(j["items"].size() == items.size());
  REQUIRE(j.contains("by_level"));
}

TEST_CASE("the generative runner names max_tokens when it is negative or overflows the session size", "[extract]") {
  const auto m = model::model::load(testing::fixture_dir("llama-gqa2"));
  const auto tok = text::tokenizer::load(testing::fixture_dir("llama-gqa2") / "tokenizer.json");
  const std::vector<eval::gen_item> items = {{"a", "1 + 1 =", "2", "t", 1}};
  eval::gen_options o;
  o.max_tokens = -5;  // was a session too small for the prompt ("sequence of N positions exceeds ...")
  REQUIRE_THROWS_WITH(eval::run_generative(m, tok, items, o), Catch::Contains("max_tokens must be >= 0, got -5"));
  // longest + max_tokens + 1 overflowed an int (undefined behaviour; in practice a negative capacity).
  o.max_tokens = std::numeric_limits<int>::max();
  REQUIRE_THROWS_WITH(eval::run_generative(m, tok, items, o),
                      Catch::Contains("max_tokens 2147483647") && Catch::Contains("more than an int holds"));
}


TEST_CASE("the common prompt prefix keeps one token of each prompt and a minimum length", "[extract]") {
  std::vector<std::int32_t> base(40);
  for (std::size_t i = 0; i < base.size(); ++i) base[i] = static_cast<std::int32_t>(i);
  auto a = base, b = base, c = base;
  b[30] = 999;
  REQUIRE(eval::common_prompt_prefix({a, b}) == 30);
  REQUIRE(eval::common_prompt_prefix({a}) == 0);                  // one prompt: nothing to share
  REQUIRE(eval::common_prompt_prefix({a, c}) == 39);              // equal prompts keep their last token
  c.resize(20);
  REQUIRE(eval::common_prompt_prefix({a, c}) == 19);
  c.resize(eval::min_reused_prefix);                              // 15 shared tokens: below the minimum
  REQUIRE(eval::common_prompt_prefix({a, b, c}) == 0);
}

TEST_CASE("reusing the prompts' common prefix gives the outputs of full prefills", "[extract]") {
  const auto m = model::model::load(testing::fixture_dir("llama-gqa2"));
  const auto tok = text::tokenizer::load(testing::fixture_dir("llama-gqa2") / "tokenizer.json");
  const auto ref = testing::load_reference("llama-gqa2");
  // A shared few-shot-like preamble before each reference prompt.
  std::string preamble;
  for (const auto& c : ref.continuations) preamble += tok.decode(c.prompt) + " " + tok.decode(c.greedy, true) + "\n";
  std::vector<eval::gen_item> items;
  for (std::size_t i = 0; i < ref.continuations.size(); ++i)
    items.push_back({"item" + std::to_string(i), preamble + tok.decode(ref.continuations[i].prompt), "0", "t", 1});
  REQUIRE(items.size() >= 2);
  eval::gen_options o;
  o.max_tokens = 8;
  o.stop_strings.clear();
  o.threads = 2;
  // The reference kernels: every logit is computed in one order whatever the batch, so the
  // reused prefix must give the same bits as a full prefill.
  const auto make = [&m](int capacity) {
    auto s = std::make_unique<model::session>(m, capacity);
    s->set_kernel(model::matmul_kernel::reference);
    return s;
  };
  const auto reused = eval::run_generative_on(m, tok, items, o, make);
  o.reuse_prefix = false;
  const auto whole = eval::run_generative_on(m, tok, items, o, make);
  std::vector<std::vector<std::int32_t>> prompts;
  for (const auto& it : items) prompts.push_back(tok.encode(it.prompt));
  const std::size_t prefix = eval::common_prompt_prefix(prompts);
  REQUIRE(prefix >= eval::min_reused_prefix);
  for (std::size_t i = 0; i < items.size(); ++i) {
    INFO(i);
    REQUIRE(reused.records[i].prefix_tokens == static_cast<int>(prefix));
    REQUIRE(whole.records[i].prefix_tokens == 0);
    REQUIRE(reused.records[i].prompt_tokens == whole.records[i].prompt_tokens);
    REQUIRE(reused.records[i].output_tokens == 8);
    REQUIRE(reused.records[i].output == whole.records[i].output);
  }
  // The record round-trips with its prefix count; journals without the field read as 0.
  auto j = eval::to_json(reused.records[0]);
  REQUIRE(eval::record_from_json(j, "x").prefix_tokens == static_cast<int>(prefix));
  j.erase("prefix_tokens");
  REQUIRE(eval::record_from_json(j, "x").prefix_tokens == 0);
}

TEST_CASE("GSM8K and SVAMP readers, n-shot prompts", "[datasets]") {
  const std::filesystem::path root = std::getenv("QMR_TEST_DATA");
  const auto gsm = eval::read_gsm8k_jsonl(root / "tasks" / "gsm8k_sample.jsonl");
  REQUIRE(gsm.size() == 2);
  REQUIRE(gsm[0].gold == "12");
  REQUIRE(gsm[1].gold == "900");
  const auto svamp = eval::read_svamp_json(root / "tasks" / "svamp_sample.json");
  REQUIRE(svamp.size() == 2);
  REQUIRE(svamp[0].question == "Jack had 8 pens and gave 3 to Mary. How many pens does Jack have now?");
  REQUIRE(svamp[0].gold == "5");
  REQUIRE(svamp[1].gold == "3.5");
  REQUIRE(svamp[1].type == "Common-Division");
  const std::string p = eval::build_prompt(gsm[1], std::span(gsm.data(), 1), eval::prompt_style::question_answer);
  REQUIRE(p == "Question: " + gsm[0].question + "\nAnswer: " + gsm[0].answer + "\n\nQuestion: " + gsm[1].question + "\nAnswer:");
  REQUIRE(eval::build_prompt(gsm[0], {}, eval::prompt_style::cot) == "Q: " + gsm[0].question + "\n\nA:");
  const auto items = eval::to_items(svamp, {}, eval::prompt_style::question_answer);
  REQUIRE(items[1].gold == "3.5");

  testing::temp_dir dir;
  std::ofstream(dir / "g.jsonl") << R"({"question": "q", "answer": "no final line"})" << "\n";
  REQUIRE_THROWS_WITH(eval::read_gsm8k_jsonl(dir / "g.jsonl"), Catch::Contains("g.jsonl:1") && Catch::Contains("####"));
  std::ofstream(dir / "s.json") << R"([{"Body": "b", "Question": "q", "Answer": "5"}])";
  REQUIRE_THROWS_WITH(eval::read_svamp_json(dir / "s.json"), Catch::Contains("s.json[0]") && Catch::Contains("'Answer'"));
}
