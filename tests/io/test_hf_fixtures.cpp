// Real checkpoints written by transformers' save_pretrained (tests/data/hf, made by tools/make_hf_fixtures.py): read, inspect, quantize.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>

#include "../temp_dir.hpp"
#include "qmr/io/inspect.hpp"
#include "qmr/quant/distortion.hpp"
#include "qmr/quant/quantize_checkpoint.hpp"

using namespace qmr;

namespace {

std::filesystem::path fixture(const std::string& name) {
  const char* root = std::getenv("QMR_TEST_DATA");
  REQUIRE(root != nullptr);
  return std::filesystem::path(root) / "hf" / name;
}

}  // namespace

TEST_CASE("transformers checkpoints of three architectures are read as written", "[hf]") {
  const struct {
    const char* name;
    std::size_t tensors, shards;
    const char* dtype;
    const char* q_proj;  // a tensor and its shape, from the architecture
    shape_t q_shape;
  } cases[] = {
      {"llama", 21, 1, "F32", "model.layers.1.self_attn.q_proj.weight", make_shape({64, 64})},
      {"qwen2", 26, 5, "BF16", "model.layers.0.self_attn.k_proj.bias", make_shape({32})},
      {"qwen3", 24, 1, "F16", "model.layers.0.self_attn.q_proj.weight", make_shape({128, 64})},  // head_dim 32
  };
  for (const auto& c : cases) {
    INFO(c.name);
    const auto ckpt = io::checkpoint::open(fixture(c.name));
    REQUIRE(ckpt.shards().size() == c.shards);
    REQUIRE(ckpt.names().size() == c.tensors);
    REQUIRE(ckpt.shards().front().metadata().at("format") == "pt");
    const auto* t = ckpt.find(c.q_proj);
    REQUIRE(t != nullptr);
    REQUIRE(t->shape == c.q_shape);
    REQUIRE(t->dtype_name == c.dtype);
    for (const auto& row : io::inspect_checkpoint(ckpt)) REQUIRE(row.format == c.dtype);
    // Norm weights were drawn around 1: reading them through a typed view must show that.
    std::vector<float> norm(64);
    copy_to_f32(ckpt.view("model.norm.weight"), norm.data());
    for (float x : norm) REQUIRE((x > 0.7f && x < 1.3f));
  }
}

TEST_CASE("transformers checkpoints quantize, keep what does not fit, and read back", "[hf]") {
  testing::temp_dir dir;
  for (const char* name : {"llama", "qwen2", "qwen3"}) {
    INFO(name);
    quant::checkpoint_options opt;
    opt.spec = quant::parse_format("w4g64");
    const auto report = quant::quantize_checkpoint(fixture(name), dir / name, opt);
    const auto ckpt = io::checkpoint::open(dir / name);
    const auto original = io::checkpoint::open(fixture(name));
    int quantized = 0;
    for (const auto& t : report.tensors) {
      if (t.name.find("down_proj.weight") != std::string::npos) {
        REQUIRE(t.reason.find("not a multiple of the group") != std::string::npos);  // 160 columns
      }
      if (!t.reason.empty()) continue;
      ++quantized;
      // Dequantized weights are close to the originals: 4-bit RTN on Gaussian weights ~ 0.1.
      const io::safetensors_file& shard = ckpt.shard_of(t.name + ".qcodes");
      const auto entries = io::quantized_entries(shard);
      const auto e = std::find_if(entries.begin(), entries.end(), [&](const auto& x) { return x.name == t.name; });
      REQUIRE(e != entries.end());
      const auto v = io::load_quantized(shard, *e);
      std::vector<float> w(static_cast<std::size_t>(t.shape.numel()));
      copy_to_f32(original.view(t.name), w.data());
      const double err = quant::measure_distortion({w.data(), t.shape[0], t.shape[1]}, v).rms_relative();
      REQUIRE(err == Approx(t.rms_relative_error));
      REQUIRE((err > 0.05 && err < 0.15));
    }
    REQUIRE(quantized == 2 * 6);  // q, k, v, o, gate, up per layer
  }
}
