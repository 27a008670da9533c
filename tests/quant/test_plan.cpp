// Precision plans: parsing (text and JSON), resolution against a model's weights, and the errors that name the line.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "qmr/quant/plan.hpp"

using namespace qmr;
using namespace qmr::quant;

namespace {

// The weights of a small Llama: embed, 4 layers × 7 linears, an untied head.
std::vector<plan_target> targets(int layers = 4, bool head = true) {
  using c = plan_component;
  std::vector<plan_target> t;
  t.push_back({"model.embed_tokens.weight", -1, c::embed});
  const std::pair<const char*, c> names[] = {{"self_attn.q_proj", c::q}, {"self_attn.k_proj", c::k},
                                             {"self_attn.v_proj", c::v}, {"self_attn.o_proj", c::o},
                                             {"mlp.gate_proj", c::gate}, {"mlp.up_proj", c::up},
                                             {"mlp.down_proj", c::down}};
  for (int l = 0; l < layers; ++l)
    for (const auto& [n, comp] : names) t.push_back({"model.layers." + std::to_string(l) + "." + n + ".weight", l, comp});
  if (head) t.push_back({"lm_head.weight", -1, c::lm_head});
  return t;
}

std::string format_of(const std::vector<plan_assignment>& a, const std::string& name) {
  for (const auto& x : a)
    if (x.target.name == name) return x.format.str();
  FAIL("no assignment for " << name);
  return "";
}

std::string error_of(const std::string& text, const std::vector<plan_target>& t = targets()) {
  try {
    precision_plan::parse(text, "p.plan").resolve(t);
  } catch (const error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("a text plan assigns by layer range, component group, glob and default") {
  const std::string text =
      "# mixed precision\n"
      "layers 0-1 attn w2g64     # early attention at 2 bits\n"
      "layers 2,3 q,k w3g128s\n"
      "*.down_proj.weight w8g128\n"
      "lm_head w8gc\n"
      "embed keep\n"
      "\n"
      "default w4g128\n";
  const auto a = precision_plan::parse(text, "p.plan").resolve(targets());
  REQUIRE(a.size() == 1 + 4 * 7 + 1);
  CHECK(format_of(a, "model.layers.0.self_attn.q_proj.weight") == "w2g64");
  CHECK(format_of(a, "model.layers.1.self_attn.o_proj.weight") == "w2g64");
  CHECK(format_of(a, "model.layers.2.self_attn.o_proj.weight") == "w4g128");
  CHECK(format_of(a, "model.layers.3.self_attn.k_proj.weight") == "w3g128s");
  CHECK(format_of(a, "model.layers.3.self_attn.v_proj.weight") == "w4g128");
  CHECK(format_of(a, "model.layers.0.mlp.down_proj.weight") == "w8g128");
  CHECK(format_of(a, "model.layers.3.mlp.gate_proj.weight") == "w4g128");
  CHECK(format_of(a, "lm_head.weight") == "w8gc");
  CHECK(format_of(a, "model.embed_tokens.weight") == "keep");
  for (const auto& x : a) {
    if (x.target.name == "model.layers.2.mlp.up_proj.weight") CHECK(x.rule_line == 0);  // the default
    if (x.target.name == "lm_head.weight") CHECK(x.rule_line == 5);
  }
}

TEST_CASE("the JSON form is equivalent to the text form") {
  const std::string text = "layers 0-1 attn w2g64\nmlp w4g128\nlm_head w8g128\nembed bf16\nlayers 2-3 attn w3g64\n";
  const std::string json = R"({"rules": [
      {"layers": "0-1", "select": "attn", "format": "w2g64"},
      {"select": ["gate", "up", "down"], "format": "w4g128"},
      {"select": "lm_head", "format": "w8g128"},
      {"select": "embed", "format": "bf16"},
      {"layers": "2-3", "select": "q,k,v,o", "format": "w3g64"}]})";
  const auto a = precision_plan::parse(text).resolve(targets());
  const auto b = precision_plan::parse(json).resolve(targets());
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].target.name == b[i].target.name);
    CHECK(a[i].format.str() == b[i].format.str());
  }
  CHECK(format_of(a, "model.embed_tokens.weight") == "bf16");
}

TEST_CASE("a uniform plan quantizes every layer linear and keeps embeddings and head") {
  const auto a = precision_plan::uniform(parse_format("w3g32")).resolve(targets(2));
  for (const auto& x : a) {
    if (x.target.layer < 0) CHECK(x.format.keep);
    else CHECK(x.format.str() == "w3g32");
  }
  // On a tied model (no lm_head target) it still resolves.
  CHECK_NOTHROW(precision_plan::uniform(parse_format("w4g128")).resolve(targets(2, false)));
}

TEST_CASE("glob matching") {
  using qmr::quant::detail::glob_match;
  CHECK(glob_match("*.down_proj.weight", "model.layers.3.mlp.down_proj.weight"));
  CHECK_FALSE(glob_match("*.down_proj.weight", "model.layers.3.mlp.down_proj.bias"));
  CHECK(glob_match("model.layers.?.mlp.*", "model.layers.7.mlp.up_proj.weight"));
  CHECK_FALSE(glob_match("model.layers.?.mlp.*", "model.layers.17.mlp.up_proj.weight"));
  CHECK(glob_match("*", ""));
  CHECK(glob_match("a*b*c", "aXXbYYc"));
  CHECK_FALSE(glob_match("a*b*c", "aXXbYY"));
}

TEST_CASE("a JSON plan nested too deep or cut by a NUL byte is an error, not a crash or a silent cut") {
  using Catch::Matchers::Contains;
  // 200000 nested arrays as "select": rule.dump() recursed once per level and overflowed the stack.
  const std::string deep = R"({"rules": [{"select": )" + std::string(200000, '[') + std::string(200000, ']') +
                           R"(, "format": "w4g128"}]})";
  CHECK_THAT(error_of(deep), Contains("p.plan") && Contains("deeper than 512 levels"));
  // nlohmann stops at a NUL: the rules after it were silently dropped.
  std::string cut = R"({"default": "w4g128")";
  cut += '\0';
  cut += R"(, "rules": [{"select": "attn", "format": "w2g64"}]})";
  CHECK_THAT(error_of(cut), Contains("p.plan") && Contains("NUL byte"));
}

TEST_CASE("plan errors name the line and what is wrong") {
  using Catch::Matchers::Contains;
  // Two rules select the same weight: both lines named.
  const std::string twice = error_of("attn w4g128\nlayers 0 q w2g64\ndefault w4g128\n");
  CHECK_THAT(twice, Contains("model.layers.0.self_attn.q_proj.weight") && Contains("p.plan:1") && Contains("p.plan:2"));
  // Nothing covers the MLP and no default.
  CHECK_THAT(error_of("attn w4g128\nembed,lm_head keep\n"), Contains("no rule selects model.layers.0.mlp.gate_proj.weight"));
  // A rule that selects nothing (layers beyond the model).
  CHECK_THAT(error_of("layers 10-12 attn w2g64\ndefault w4g128\n"), Contains("p.plan:1") && Contains("selects no weight"));
  // Parse errors.
  CHECK_THAT(error_of("layers 0-3 attn w7g128\n"), Contains("p.plan:1") && Contains("7-bit"));
  CHECK_THAT(error_of("default w4g128\nlayers 3-1 mlp w4g64\n"), Contains("p.plan:2") && Contains("backwards"));
  CHECK_THAT(error_of("default w4g128\nlayers x mlp w4g64\n"), Contains("p.plan:2") && Contains("'x'"));
  CHECK_THAT(error_of("default w4g128\n\nmlpp w4g64\n"), Contains("p.plan:3") && Contains("unknown selector 'mlpp'"));
  CHECK_THAT(error_of("default w4g128\nmlp\n"), Contains("p.plan:2") && Contains("SELECTORS FORMAT"));
  CHECK_THAT(error_of("default w4g128\ndefault w3g128\n"), Contains("p.plan:2") && Contains("second default"));
  CHECK_THAT(error_of("layers 0-1 embed w8g128\ndefault w4g128\n"), Contains("p.plan:1") && Contains("no layer range"));
  CHECK_THAT(error_of("mlp,,attn w4g128\n"), Contains("p.plan:1") && Contains("empty selector"));
  CHECK_THAT(error_of("# nothing\n"), Contains("no rules and no default"));
  // JSON errors name the rule.
  CHECK_THAT(error_of(R"({"rules": [{"select": "mlp", "format": "w4g128"}, {"select": "attn", "fmt": "w4g128"}]})"),
             Contains("rule 1") && Contains("\"fmt\""));
  CHECK_THAT(error_of(R"({"rules": [{"select": "mlp", "format": "w4g128"},)"), Contains("not valid JSON"));
  CHECK_THAT(error_of(R"({"default": "w4g128", "layers": 3})"), Contains("unknown key \"layers\""));
}
