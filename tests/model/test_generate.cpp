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

// The decode loop that the CPU and GPU sessions share (model::detail::generate_with), over a
// scripted session: what each step is fed, and why the loop ends.
namespace {
struct scripted_session {
  int len = 0, cap = 0;
  std::vector<std::vector<std::int32_t>> fed;  // every step's input, in order
  int length() const { return len; }
  int capacity() const { return cap; }
  // The next id: 100 + the number of steps so far, so each output is distinct and predictable.
  std::int32_t step(std::span<const std::int32_t> tokens) {
    fed.emplace_back(tokens.begin(), tokens.end());
    len += static_cast<int>(tokens.size());
    return 100 + static_cast<std::int32_t>(fed.size()) - 1;
  }
};
}  // namespace

TEST_CASE("the shared decode loop feeds the prompt once, then each token back, and names why it stopped", "[generate]") {
  const std::vector<std::int32_t> prompt = {7, 8, 9};
  const auto run = [&](scripted_session& s, const model::sampling_options& o, const model::token_callback& cb = {}) {
    return model::detail::generate_with(s, prompt, o, [&](std::span<const std::int32_t> t) { return s.step(t); }, cb, {}, {});
  };
  SECTION("max_tokens") {
    scripted_session s{0, 64, {}};
    model::sampling_options o;
    o.max_tokens = 4;
    const auto g = run(s, o);
    REQUIRE(g.tokens == std::vector<std::int32_t>{100, 101, 102, 103});
    REQUIRE(g.reason == model::stop_reason::max_tokens);
    // The prompt, then the first three outputs one at a time; the last output is never fed.
    REQUIRE(s.fed == std::vector<std::vector<std::int32_t>>{{7, 8, 9}, {100}, {101}, {102}});
  }
  SECTION("capacity") {
    scripted_session s{0, 5, {}};  // room for the prompt and two fed tokens
    model::sampling_options o;
    o.max_tokens = 10;
    const auto g = run(s, o);
    REQUIRE(g.reason == model::stop_reason::capacity);
    REQUIRE(g.tokens == std::vector<std::int32_t>{100, 101, 102});
    REQUIRE(s.len == 5);
  }
  SECTION("stop token and callback") {
    scripted_session s{0, 64, {}};
    model::sampling_options o;
    o.max_tokens = 10;
    o.stop_tokens = {102};
    auto g = run(s, o);
    REQUIRE(g.reason == model::stop_reason::stop_token);
    REQUIRE(g.tokens.back() == 102);
    scripted_session s2{0, 64, {}};
    o.stop_tokens.clear();
    g = run(s2, o, [](std::int32_t id) { return id != 101; });
    REQUIRE(g.reason == model::stop_reason::callback);
    REQUIRE(g.tokens == std::vector<std::int32_t>{100, 101});
  }
  SECTION("bad arguments are refused before any step") {
    scripted_session s{0, 64, {}};
    model::sampling_options o;
    o.max_tokens = -1;
    REQUIRE_THROWS_WITH(run(s, o), Catch::Contains("max_tokens must be >= 0"));
    const std::vector<std::int32_t> none;
    o.max_tokens = 1;
    REQUIRE_THROWS_WITH(model::detail::generate_with(s, none, o, [&](std::span<const std::int32_t> t) { return s.step(t); }, {}, {}, {}),
                        Catch::Contains("non-empty prompt"));
    REQUIRE(s.fed.empty());
  }
}
