// Rolling-window perplexity of the bundled model equals transformers' (tools/perplexity_reference.py) within 0.1%, window by window.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "../model/fixtures.hpp"
#include "qmr/eval/loglikelihood.hpp"

using namespace qmr;

namespace {

constexpr const char* make_reference =
    "python3 tools/perplexity_reference.py --model models/qmr-math --text tests/data/tasks/perplexity_sample.txt "
    "--max-length 128 --out tests/data/tasks/perplexity_reference.json";

std::string read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("rolling perplexity of models/qmr-math matches transformers within 0.1%", "[perplexity_reference]") {
  const char* root = std::getenv("QMR_TEST_DATA");
  REQUIRE(root != nullptr);
  const auto tasks = std::filesystem::path(root) / "tasks";
  const auto ref_path = tasks / "perplexity_reference.json";
  if (!std::filesystem::exists(ref_path))
    FAIL("missing " << ref_path.string() << ": the transformers reference is made on the GPU machine with\n    "
                    << make_reference << "\nfrom the repository root, then committed");
  nlohmann::json ref;
  std::ifstream(ref_path) >> ref;
  const std::string text = read_bytes(tasks / "perplexity_sample.txt");
  REQUIRE(!text.empty());

  const auto dir = testing::default_model_dir();
  const auto m = model::model::load(dir);
  const auto tok = text::tokenizer::load(dir / "tokenizer.json");
  const int max_length = ref["max_length"].get<int>();
  // lm-eval's prefix_token_id: BOS, or EOS when the model has none.
  const auto& config = m.config();
  REQUIRE((config.bos_token_id || !config.eos_token_ids.empty()));
  const std::int32_t prefix = config.bos_token_id ? *config.bos_token_id : config.eos_token_ids.front();
  REQUIRE(ref["prefix_token"].get<std::int32_t>() == prefix);

  // Same tokens, same counts: otherwise the comparison below means nothing.
  const auto ids = tok.encode(text);
  REQUIRE(ids == ref["token_ids"].get<std::vector<std::int32_t>>());
  model::session s(m, max_length);
  const auto r = eval::score_rolling(s, tok, text, prefix, max_length);
  REQUIRE(r.tokens == ref["tokens"].get<std::int64_t>());
  REQUIRE(r.words == ref["words"].get<std::int64_t>());
  REQUIRE(r.bytes == ref["bytes"].get<std::int64_t>());

  // The windows transformers scored tile the text with inputs of max_length tokens (fewer only
  // for a text shorter than that), as score_rolling's do.
  std::int64_t predicted = 0;
  for (const auto& w : ref["windows"]) {
    REQUIRE(w["predict_from"].get<std::int64_t>() == predicted);
    predicted = w["predict_to"].get<std::int64_t>();
    REQUIRE(predicted - w["context_from"].get<std::int64_t>() - 1 == std::min<std::int64_t>(max_length, predicted));
  }
  REQUIRE(predicted == r.tokens);

  const double ref_ppl = ref["token_perplexity"].get<double>();
  const bool close = std::fabs(r.token_perplexity() / ref_ppl - 1) < 1e-3;
  if (!close) {
    // Which windows differ, through score_continuation on the windows transformers scored
    // (only on failure: in a debug build this pass costs as much as score_rolling).
    for (const auto& w : ref["windows"]) {
      const auto from = w["context_from"].get<std::int64_t>(), first = w["predict_from"].get<std::int64_t>(),
                 last = w["predict_to"].get<std::int64_t>();
      std::vector<std::int32_t> context;
      for (std::int64_t i = from; i < first; ++i) context.push_back(i < 0 ? prefix : ids[static_cast<std::size_t>(i)]);
      const std::vector<std::int32_t> continuation(ids.begin() + first, ids.begin() + last);
      const double ll = eval::score_continuation(s, context, continuation).logprob;
      const double expected = w["loglikelihood"].get<double>();
      INFO("window predicting tokens [" << first << ", " << last << "): qmr " << ll << ", transformers " << expected);
      CHECK(std::fabs(ll - expected) <= 1e-3 * std::fabs(expected));
    }
  }
  INFO("token perplexity: qmr " << r.token_perplexity() << ", transformers " << ref_ppl);
  CHECK(close);
  CHECK(std::fabs(r.word_perplexity() / ref["word_perplexity"].get<double>() - 1) < 1e-3);
  CHECK(std::fabs(r.byte_perplexity() / ref["byte_perplexity"].get<double>() - 1) < 1e-3);
  CHECK(std::fabs(r.bits_per_byte() / ref["bits_per_byte"].get<double>() - 1) < 1e-3);
  CHECK(r.logprob == Approx(ref["loglikelihood"].get<double>()).epsilon(1e-3));
}
