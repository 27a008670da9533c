// The bundled default model (models/qmr-math): qmr's logits equal transformers' and it answers a synthetic problem.
#include <catch2/catch.hpp>

#include <cmath>

#include "fixtures.hpp"
#include "qmr/model/forward.hpp"

using namespace qmr;

TEST_CASE("the default model's logits match transformers within 1e-3", "[default_model]") {
  const auto dir = testing::default_model_dir();
  const auto ref = testing::load_reference_at(dir);
  const auto m = model::model::load(dir);
  REQUIRE(m.weights().layers[0].q.spec.str() == "bf16");
  model::session s(m, static_cast<int>(ref.ids.size()));
  const auto logits = s.forward(ref.ids, true);
  float diff = 0, scale = 0;
  for (std::size_t i = 0; i < ref.logits.size(); ++i) {
    diff = std::max(diff, std::fabs(logits.data[i] - ref.logits[i]));
    scale = std::max(scale, std::fabs(ref.logits[i]));
  }
  INFO("max |logit| " << scale << ", max abs difference " << diff);
  REQUIRE(scale > 1.0f);
  REQUIRE(diff < 1e-3f);
}
