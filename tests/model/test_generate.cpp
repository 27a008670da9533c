// Generation: greedy equals transformers' continuation; sampling is seeded; stop tokens, callbacks and top-p.
#include <catch2/catch.hpp>

#include <set>

#include "fixtures.hpp"
#include "qmr/model/generate.hpp"

using namespace qmr;

TEST_CASE("greedy generate reproduces the fixture continuations", "[generate]") {
  const auto ref = testing::load_reference("qwen3-f16-tied");
  const auto m = model::model::load(testing::fixture_dir("qwen3-f16-tied"));
  model::session s(m, 64);
  for (const auto& c : ref.continuations) {
    s.reset();
    model::sampling_options o;
    o.max_tokens = static_cast<int>(c.greedy.size());
    std::vector<std::int32_t> streamed;
    const auto g = model::generate(s, c.prompt, o, [&](std::int32_t id) {
      streamed.push_back(id);
      return true;
    });
    REQUIRE(g.tokens == c.greedy);
    REQUIRE(streamed == c.greedy);
    REQUIRE(g.reason == model::stop_reason::max_tokens);
    REQUIRE(s.length() == static_cast<int>(c.prompt.size() + c.greedy.size()) - 1);
  }
}

TEST_CASE("sampling is reproducible by seed and varies across seeds", "[generate]") {
  const auto m = model::model::load(testing::fixture_dir("llama-gqa2"));
  model::session s(m, 64);
  const std::vector<std::int32_t> prompt = {10, 20, 30};
  const auto run = [&](std::uint64_t seed, float temperature, float top_p) {
    s.reset();
    model::sampling_options o;
    o.temperature = temperature;
    o.top_p = top_p;
    o.seed = seed;
    o.max_tokens = 12;
    return model::generate(s, prompt, o).tokens;
  };
  REQUIRE(run(1, 1.0f, 1.0f) == run(1, 1.0f, 1.0f));
  std::set<std::vector<std::int32_t>> distinct;
  for (std::uint64_t seed = 0; seed < 6; ++seed) distinct.insert(run(seed, 1.5f, 1.0f));
  REQUIRE(distinct.size() > 1);
  // A nucleus too small to hold more than the top token is greedy decoding.
  REQUIRE(run(3, 1.0f, 1e-6f) == run(0, 0.0f, 1.0f));
}

TEST_CASE("stop tokens, callbacks and stop strings end generation", "[generate]") {
  const auto ref = testing::load_reference("llama-gqa2");
  const auto m = model::model::load(testing::fixture_dir("llama-gqa2"));
  model::session s(m, 64);
  const auto& c = ref.continuations.front();
  model::sampling_options o;
  o.max_tokens = 8;
  o.stop_tokens = {c.greedy[2]};
  auto g = model::generate(s, c.prompt, o);
  REQUIRE(g.reason == model::stop_reason::stop_token);
  REQUIRE(g.tokens == std::vector<std::int32_t>(c.greedy.begin(), c.greedy.begin() + 3));

  s.reset();
  o.stop_tokens.clear();
  int calls = 0;
  g = model::generate(s, c.prompt, o, [&](std::int32_t) { return ++calls < 2; });
  REQUIRE(g.reason == model::stop_reason::callback);
  REQUIRE(g.tokens.size() == 2);

  s.reset();
  const std::string marker = "<" + std::to_string(c.greedy[4]) + ">";
  g = model::generate(s, c.prompt, o, {}, {marker}, [](std::span<const std::int32_t> ids) {
    std::string text;
    for (std::int32_t id : ids) text += "<" + std::to_string(id) + ">";
    return text;
  });
  REQUIRE(g.reason == model::stop_reason::stop_string);
  REQUIRE(g.tokens.size() == 5);

  model::sampling_options bad;
  bad.top_p = 0.0f;
  REQUIRE_THROWS_WITH(model::sampler(bad), Catch::Contains("top_p"));
}

TEST_CASE("generate rejects a negative max_tokens instead of returning nothing", "[generate]") {
  const auto m = model::model::load(testing::fixture_dir("llama-gqa2"));
  model::session s(m, 16);
  const std::vector<std::int32_t> prompt = {10, 20, 30};
  model::sampling_options o;
  o.max_tokens = -5;
  REQUIRE_THROWS_WITH(model::generate(s, prompt, o), Catch::Contains("max_tokens must be >= 0, got -5"));
  o.max_tokens = 0;  // prefill only: no tokens, and no error
  REQUIRE(model::generate(s, prompt, o).tokens.empty());
}
