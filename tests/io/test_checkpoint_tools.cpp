// quantize_checkpoint + inspect_checkpoint on synthetic Llama-shaped checkpoints, single-file and sharded.
#include <catch2/catch.hpp>

#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "../temp_dir.hpp"
#include "qmr/io/inspect.hpp"
#include "qmr/io/synthetic_checkpoint.hpp"
#include "qmr/quant/quantize_checkpoint.hpp"

using namespace qmr;

TEST_CASE("inspect lists every tensor of a synthetic checkpoint", "[checkpoint]") {
  testing::temp_dir dir;
  io::synthetic_config cfg;
  cfg.qkv_bias = true;
  io::write_synthetic_checkpoint(dir.path(), cfg);
  const auto rows = io::inspect_checkpoint(io::checkpoint::open(dir.path()));
  // embed + per layer (2 norms, 4 attention, 3 biases, 3 mlp) + final norm + lm_head
  REQUIRE(rows.size() == 1 + 2 * 12 + 2);
  std::uint64_t bytes = 0;
  for (const auto& r : rows) {
    REQUIRE(r.format == "BF16");
    REQUIRE(r.bits_per_weight == 16.0);
    bytes += r.bytes;
  }
  const auto& q = *std::find_if(rows.begin(), rows.end(), [](const auto& r) { return r.name == "model.layers.1.self_attn.k_proj.weight"; });
  REQUIRE(q.shape == make_shape({128, 256}));
  REQUIRE(bytes == std::filesystem::file_size(dir / "model.safetensors") - 8 -
                       io::safetensors_file::open((dir / "model.safetensors").string()).header_bytes());
}

TEST_CASE("quantize then inspect round-trips a sharded checkpoint directory", "[checkpoint]") {
  testing::temp_dir dir;
  io::synthetic_config cfg;
  cfg.shards = 3;
  io::write_synthetic_checkpoint(dir / "in", cfg);
  std::ofstream(dir / "in" / "tokenizer.json") << "{}";

  quant::checkpoint_options opt;
  opt.spec = quant::parse_format("w3g64");
  thread_pool pool(2);
  std::size_t calls = 0;
  const auto report = quant::quantize_checkpoint(dir / "in", dir / "out", opt, &pool,
                                                 [&](std::size_t done, std::size_t total, const std::string&) {
                                                   REQUIRE(done == ++calls);
                                                   REQUIRE(total == 1 + 2 * 9 + 2);
                                                 });
  REQUIRE(calls == 21);
  REQUIRE(std::filesystem::exists(dir / "out" / "config.json"));
  REQUIRE(std::filesystem::exists(dir / "out" / "tokenizer.json"));
  REQUIRE(std::filesystem::exists(dir / "out" / "model-00003-of-00003.safetensors"));
  REQUIRE(report.bytes_out < report.bytes_in / 2);

  const auto ckpt = io::checkpoint::open(dir / "out");
  REQUIRE(ckpt.shards().size() == 3);
  const auto rows = io::inspect_checkpoint(ckpt);
  REQUIRE(rows.size() == 21);
  std::set<std::string> quantized;
  for (const auto& r : rows) {
    if (r.quantized) {
      quantized.insert(r.name);
      REQUIRE(r.format == "w3g64");
      REQUIRE(r.shape.rank == 2);
      REQUIRE(r.bits_per_weight == Approx(opt.spec.bits_per_weight(r.shape[1])));
    } else {
      REQUIRE(r.format == "BF16");
    }
  }
  REQUIRE(quantized.size() == std::size_t{2} * 7);  // q, k, v, o, gate, up, down per layer
  REQUIRE_FALSE(quantized.count("model.embed_tokens.weight"));
  REQUIRE_FALSE(quantized.count("lm_head.weight"));

  // The per-tensor errors are sane for 3-bit RTN on t(4) weights and the summary records them.
  for (const auto& t : report.tensors)
    if (t.reason.empty()) REQUIRE((t.rms_relative_error > 0.05 && t.rms_relative_error < 0.3));
  nlohmann::json summary;
  std::ifstream(dir / "out" / "qmr_quantization.json") >> summary;
  REQUIRE(summary["format"] == "w3g64");
  REQUIRE(summary["tensors"].size() == 21);
  nlohmann::json index;
  std::ifstream(dir / "out" / "model.safetensors.index.json") >> index;
  REQUIRE(index["weight_map"].contains("model.layers.0.mlp.up_proj.weight.qzeros"));
  REQUIRE(index["metadata"]["total_size"] == report.bytes_out);

  // Quantizing a quantized checkpoint is refused.
  REQUIRE_THROWS_WITH(quant::quantize_checkpoint(dir / "out", dir / "out2", opt), Catch::Contains("already quantized"));
}

TEST_CASE("quantize a single file, everything included, symmetric per-channel", "[checkpoint]") {
  testing::temp_dir dir;
  io::write_synthetic_checkpoint(dir / "in", {});
  quant::checkpoint_options opt;
  opt.spec = quant::parse_format("w8gcs");
  opt.skip.clear();
  const auto report = quant::quantize_checkpoint(dir / "in" / "model.safetensors", dir / "q.safetensors", opt);
  std::size_t n = 0;
  for (const auto& t : report.tensors) n += t.reason.empty();
  REQUIRE(n == 2 + 2 * 7);  // embeddings and lm_head too
  for (const auto& t : report.tensors)
    if (t.reason.empty()) REQUIRE(t.rms_relative_error < 0.02);
  const auto rows = io::inspect_checkpoint(io::checkpoint::open(dir / "q.safetensors"));
  REQUIRE(std::count_if(rows.begin(), rows.end(), [](const auto& r) { return r.format == "w8gcs"; }) == 16);
}
