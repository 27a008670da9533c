// The forward pass against transformers: logits of every fixture model, greedy continuations, KV-cache decode, hooks, quantized weights.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <span>

#include "../temp_dir.hpp"
#include "fixtures.hpp"
#include "qmr/model/forward.hpp"
#include "qmr/quant/quantize_checkpoint.hpp"

using namespace qmr;

namespace {

float max_abs_diff(const float* a, const float* b, std::size_t n) {
  float m = 0;
  for (std::size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

std::int32_t argmax(const float* x, std::int64_t n) {
  return static_cast<std::int32_t>(std::max_element(x, x + n) - x);
}

std::vector<std::int32_t> greedy(model::session& s, const std::vector<std::int32_t>& prompt, int n) {
  s.reset();
  auto logits = s.forward(prompt);
  std::vector<std::int32_t> out;
  for (int i = 0; i < n; ++i) {
    const std::int32_t next = argmax(logits.row(0), logits.cols);
    out.push_back(next);
    const std::int32_t one[] = {next};
    logits = s.forward(one);
  }
  return out;
}

}  // namespace

TEST_CASE("logits match transformers for every fixture model", "[forward]") {
  thread_pool pool(2);
  for (const char* name : testing::fixture_models) {
    INFO(name);
    const auto ref = testing::load_reference(name);
    const auto m = model::model::load(testing::fixture_dir(name));
    REQUIRE(m.config().vocab == ref.vocab);
    model::session s(m, 64, &pool);
    const auto logits = s.forward(ref.ids, true);
    REQUIRE(logits.rows == static_cast<std::int64_t>(ref.ids.size()));
    const float diff = max_abs_diff(logits.data, ref.logits.data(), ref.logits.size());
    float scale = 0;
    for (float x : ref.logits) scale = std::max(scale, std::fabs(x));
    INFO("max |logit| " << scale << ", max abs difference " << diff);
    REQUIRE(scale > 1.0f);  // the fixtures' logits are not trivially small
    // Weights are the same numbers in both (f16/bf16 are upcast exactly), so 1e-3 holds for every dtype.
    REQUIRE(diff < 1e-3f);
  }
}

TEST_CASE("greedy continuations match transformers token for token", "[forward]") {
  thread_pool pool(2);
  for (const char* name : testing::fixture_models) {
    INFO(name);
    const auto ref = testing::load_reference(name);
    const auto m = model::model::load(testing::fixture_dir(name));
    model::session s(m, 64, &pool);
    for (const auto& c : ref.continuations) REQUIRE(greedy(s, c.prompt, static_cast<int>(c.greedy.size())) == c.greedy);
  }
}

TEST_CASE("decoding one token at a time equals one batched prefill", "[forward]") {
  const auto ref = testing::load_reference("qwen2-gqa7-bias");
  const auto m = model::model::load(testing::fixture_dir("qwen2-gqa7-bias"));
  model::session batch(m, 64), step(m, 64);
  const auto all = batch.forward(ref.ids, true);
  // Prefill half, then decode the rest one token at a time.
  const std::size_t half = ref.ids.size() / 2;
  step.forward(std::span(ref.ids.data(), half));
  for (std::size_t t = half; t < ref.ids.size(); ++t) {
    const auto one = step.forward(std::span(ref.ids.data() + t, 1));
    REQUIRE(max_abs_diff(one.row(0), all.row(static_cast<std::int64_t>(t)), static_cast<std::size_t>(one.cols)) < 1e-4f);
  }
  REQUIRE(step.length() == static_cast<int>(ref.ids.size()));
  step.truncate(3);
  REQUIRE(step.length() == 3);
  REQUIRE_THROWS_WITH(step.forward(std::vector<std::int32_t>(62, 1)), Catch::Contains("exceeds the session capacity"));
  const std::int32_t bad[] = {100000};
  REQUIRE_THROWS_WITH(step.forward(bad), Catch::Contains("outside the vocabulary"));
}

TEST_CASE("a long prefill after a short one equals decoding one token at a time", "[forward]") {
  // 40 + 300 positions: the second prefill's attention runs in blocks of query rows (the last
  // one partial), each over the keys it can see, from a cache that already holds 40 positions.
  const auto ref = testing::load_reference("qwen2-gqa7-bias");
  const auto m = model::model::load(testing::fixture_dir("qwen2-gqa7-bias"));
  std::vector<std::int32_t> ids;  // [340] the fixture's ids, cycled
  for (std::size_t i = 0; i < 340; ++i) ids.push_back(ref.ids[(i * 7) % ref.ids.size()]);
  thread_pool pool(2);
  model::session batch(m, 340, &pool), step(m, 340, &pool);
  batch.forward(std::span(ids.data(), 40));
  const auto all = batch.forward(std::span(ids.data() + 40, 300), true);
  for (std::size_t t = 0; t < ids.size(); ++t) {
    const auto one = step.forward(std::span(ids.data() + t, 1));
    if (t >= 40)
      REQUIRE(max_abs_diff(one.row(0), all.row(static_cast<std::int64_t>(t - 40)), static_cast<std::size_t>(one.cols)) < 1e-4f);
  }
}

TEST_CASE("hooks see every component of every layer, with consistent shapes", "[forward]") {
  const auto m = model::model::load(testing::fixture_dir("qwen3-qknorm-linear-rope"));
  const auto& c = m.config();
  model::session s(m, 32);
  std::map<std::pair<int, model::component>, std::pair<std::int64_t, std::int64_t>> seen;
  s.set_hook([&](const model::activation& a) { seen[{a.layer, a.what}] = {a.data.rows, a.data.cols}; });
  const std::vector<std::int32_t> ids = {5, 6, 7, 8, 9};
  s.forward(ids);
  REQUIRE(seen.size() == static_cast<std::size_t>(c.layers) * 15 + 2);
  REQUIRE(seen.at({1, model::component::q}) == std::pair<std::int64_t, std::int64_t>{5, c.q_dim()});
  REQUIRE(seen.at({0, model::component::attn_probs}) == std::pair<std::int64_t, std::int64_t>{5 * c.heads, 5});
  REQUIRE(seen.at({0, model::component::mlp_act}) == std::pair<std::int64_t, std::int64_t>{5, c.intermediate});
  REQUIRE(seen.at({-1, model::component::logits}) == std::pair<std::int64_t, std::int64_t>{1, c.vocab});
  // Attention probabilities are causal rows that sum to one.
  s.reset();
  s.set_hook([&](const model::activation& a) {
    if (a.what != model::component::attn_probs) return;
    for (std::int64_t r = 0; r < a.data.rows; ++r) {
      const std::int64_t t = r / c.heads;
      float sum = 0;
      for (std::int64_t p = 0; p < a.data.cols; ++p) {
        sum += a.data(r, p);
        if (p > t) REQUIRE(a.data(r, p) == 0.0f);
      }
      REQUIRE(sum == Approx(1.0f).epsilon(1e-5));
    }
  });
  s.forward(ids);
}

TEST_CASE("run_layer stopped at a component emits the same activations up to it and nothing after", "[forward]") {
  const auto m = model::model::load(testing::fixture_dir("qwen3-qknorm-linear-rope"));
  const auto& c = m.config();
  model::session s(m, 32);
  const std::vector<std::int32_t> ids = {5, 6, 7, 8, 9, 10, 11};
  std::vector<float> x0(ids.size() * static_cast<std::size_t>(c.hidden));  // [7, hidden]
  s.embed(ids, matrix_view<float>(x0.data(), 7, c.hidden));
  std::map<model::component, std::vector<float>> full, part;
  const auto record = [&](std::map<model::component, std::vector<float>>& into) {
    return [&into](const model::activation& a) {
      std::vector<float>& v = into[a.what];
      for (std::int64_t r = 0; r < a.data.rows; ++r) v.insert(v.end(), a.data.row(r), a.data.row(r) + a.data.cols);
    };
  };
  auto x = x0;
  s.set_hook(record(full));
  s.run_layer(1, matrix_view<float>(x.data(), 7, c.hidden));
  for (model::component last : {model::component::attn_norm, model::component::attn_out, model::component::mlp_norm,
                                model::component::mlp_act}) {
    INFO(model::component_name(last));
    part.clear();
    x = x0;
    s.set_hook(record(part));
    s.run_layer(1, matrix_view<float>(x.data(), 7, c.hidden), last);
    REQUIRE(part.count(last) == 1);
    for (const auto& [what, v] : part) {
      REQUIRE(what <= last);
      REQUIRE(v == full.at(what));  // bit for bit: the same computation
    }
    REQUIRE(part.size() < full.size());
  }
}

TEST_CASE("quantized and mixed-precision checkpoints run and stay close to the original", "[forward]") {
  testing::temp_dir dir;
  const auto ref = testing::load_reference("llama-gqa2");
  const auto original = model::model::load(testing::fixture_dir("llama-gqa2"));
  // Error of the logits against transformers' for each format: more bits, closer.
  std::map<std::string, float> diff;
  for (const char* spec : {"w8g32", "w4g32", "w2g32"}) {
    quant::checkpoint_options opt;
    opt.spec = quant::parse_format(spec);
    quant::quantize_checkpoint(testing::fixture_dir("llama-gqa2"), dir / spec, opt);
    const auto m = model::model::load(dir / spec);
    REQUIRE(m.weights().layers[0].q.spec.str() == spec);
    REQUIRE(m.weights().embed.spec.str() == "f32");  // kept by default
    REQUIRE(m.weight_bytes() < original.weight_bytes());
    model::session s(m, 64);
    const auto logits = s.forward(ref.ids, true);
    diff[spec] = max_abs_diff(logits.data, ref.logits.data(), ref.logits.size());
  }
  INFO("w8 " << diff["w8g32"] << " w4 " << diff["w4g32"] << " w2 " << diff["w2g32"]);
  REQUIRE(diff["w8g32"] < 0.2f);  // logits here reach ~10; 8-bit weights move them by < 1%
  REQUIRE(diff["w8g32"] < diff["w4g32"]);
  REQUIRE(diff["w4g32"] < diff["w2g32"]);

  // A mix: layer 0 in w2g32 beside layer 1 in f32 and an embedding in w8g64.
  quant::checkpoint_options mix;
  mix.spec = quant::parse_format("w2g32");
  mix.skip = {"layers.1.", "lm_head"};
  quant::quantize_checkpoint(testing::fixture_dir("llama-gqa2"), dir / "mixed", mix);
  const auto m = model::model::load(dir / "mixed");
  REQUIRE(m.weights().layers[0].down.spec.str() == "w2g32");
  REQUIRE(m.weights().layers[1].down.spec.str() == "f32");
  REQUIRE(m.weights().embed.spec.str() == "w2g32");
  model::session s(m, 64);
  const auto logits = s.forward(ref.ids, true);
  const float d = max_abs_diff(logits.data, ref.logits.data(), ref.logits.size());
  REQUIRE(std::isfinite(d));
  REQUIRE(d > diff["w8g32"]);
}

TEST_CASE("in-memory quantization equals quantizing the checkpoint", "[forward]") {
  testing::temp_dir dir;
  const auto ref = testing::load_reference("qwen3-qknorm-linear-rope");
  quant::checkpoint_options opt;
  opt.spec = quant::parse_format("w4g32s");
  quant::quantize_checkpoint(testing::fixture_dir("qwen3-qknorm-linear-rope"), dir / "q", opt);
  const auto on_disk = model::model::load(dir / "q");
  auto in_memory = model::model::load(testing::fixture_dir("qwen3-qknorm-linear-rope"));
  const auto kept = in_memory.quantize(opt.spec);
  REQUIRE(kept == std::vector<std::string>{"model.embed_tokens.weight", "lm_head.weight"});
  REQUIRE(in_memory.weights().layers[1].o.spec.str() == "w4g32s");
  model::session a(on_disk, 64), b(in_memory, 64);
  const auto la = a.forward(ref.ids, true);
  const auto lb = b.forward(ref.ids, true);
  REQUIRE(max_abs_diff(la.data, lb.data, static_cast<std::size_t>(la.rows * la.cols)) == 0.0f);
  REQUIRE_THROWS(in_memory.quantize(quant::parse_format("bf16")));
}

TEST_CASE("decode steps give the same logits bit for bit on one thread and on a pool", "[forward]") {
  // The bundled model (hidden 256, intermediate 768): on 2 threads a decode step runs gate/up
  // as one row range cut into two pieces, the first spanning all of gate and part of up, so
  // the pieces' offsets into each linear and its output are exercised (session::linears_).
  thread_pool pool(2);
  for (const char* spec : {"bf16", "w4g64"}) {
    auto m = model::model::load(testing::default_model_dir());
    if (std::string(spec) != "bf16") m.quantize(quant::parse_format(spec));
    m.repack_lut();  // simd_lut's table GEMV takes the 4-bit linears where the CPU has AVX-512BW
    for (const auto kernel : {model::matmul_kernel::simd, model::matmul_kernel::simd_a8, model::matmul_kernel::reference,
                              model::matmul_kernel::simd_lut}) {
      if (kernel == model::matmul_kernel::simd_a8 && std::string(spec) == "bf16") continue;  // a8 needs quantized weights
      INFO(spec << ", kernel " << static_cast<int>(kernel));
      model::session one(m, 32), two(m, 32, &pool);
      one.set_kernel(kernel);
      two.set_kernel(kernel);
      // 11 prompt tokens: the prefill takes the GEMMs (more than 8 rows), split in panels on the pool.
      std::vector<std::int32_t> ids = {5, 17, 300, 42, 9, 77, 1, 250, 3, 64, 128};
      auto a = one.forward(ids);
      auto b = two.forward(ids);
      for (int step = 0; step < 6; ++step) {
        INFO("step " << step);
        REQUIRE(max_abs_diff(a.row(0), b.row(0), static_cast<std::size_t>(a.cols)) == 0.0f);
        const std::int32_t next[] = {argmax(a.row(0), a.cols)};
        a = one.forward(next);
        b = two.forward(next);
      }
    }
  }
}

TEST_CASE("simd_lut's prefill and decode over the repack equal the plain SIMD ones up to summation order", "[forward]") {
  // The bundled model at 2, 3, 4 and 5 bits: a prefill and decode steps through repacked linears
  // (where the CPU has AVX-512BW; elsewhere nothing is repacked and simd_lut is simd) against simd.
  for (const char* spec : {"w2g32", "w3g64s", "w4g128", "w5g32"}) {
    INFO(spec);
    auto m = model::model::load(testing::default_model_dir());
    m.quantize(quant::parse_format(spec));
    const int repacked = m.repack_lut();
    if (simd::lut_gemv_fast()) {
      REQUIRE(repacked == 7 * m.config().layers);  // every layer's linears (quantize keeps the embedding)
      REQUIRE(m.weights().layers[0].q.lut != nullptr);
    } else {
      REQUIRE(repacked == 0);
    }
    model::session plain(m, 32), lut(m, 32);
    lut.set_kernel(model::matmul_kernel::simd_lut);
    // 12 prompt tokens: the prefill runs lut_gemm over the repack (more than 8 rows of X),
    // every position's logits compared; then decode steps through the table GEMV.
    std::vector<std::int32_t> ids = {5, 17, 300, 42, 9, 77, 1, 250, 3, 64, 128, 11};
    // A 5-token prompt too: lut_gemm's one-block path, against the plain streaming GEMV.
    for (const std::size_t len : {ids.size(), std::size_t{5}}) {
      const std::span<const std::int32_t> prompt(ids.data(), len);
      const auto pa = plain.forward(prompt, true);
      const auto pb = lut.forward(prompt, true);
      REQUIRE(pa.rows == static_cast<std::int64_t>(len));
      const std::size_t all = static_cast<std::size_t>(pa.rows * pa.cols);
      float largest = 0;
      for (std::size_t i = 0; i < all; ++i) largest = std::max(largest, std::fabs(pa.data[i]));
      const float d = max_abs_diff(pa.data, pb.data, all);
      INFO("prefill of " << len << ": max |logit| " << largest << ", max difference " << d);
      REQUIRE(largest > 1.0f);
      if (len > 8) {
        // Both GEMMs fill the same k-major panels with the same values s·(code - z) and run
        // the same register tile over them: the prefill's logits agree bit for bit.
        REQUIRE(d == 0.0f);
      } else {
        REQUIRE(d <= 1e-4f * largest);
      }
      plain.reset();
      lut.reset();
    }
    auto a = plain.forward(ids);
    auto b = lut.forward(ids);
    for (int step = 0; step < 4; ++step) {
      // f32 sums of the same products in two orders, through a few layers: a few ulp of
      // logits of magnitude ~10 per step, far below a quantization step's effect.
      float largest = 0;
      for (std::int64_t i = 0; i < a.cols; ++i) largest = std::max(largest, std::fabs(a.row(0)[i]));
      const float d = max_abs_diff(a.row(0), b.row(0), static_cast<std::size_t>(a.cols));
      INFO("step " << step << ": max |logit| " << largest << ", max difference " << d);
      REQUIRE(largest > 1.0f);
      REQUIRE(d <= 1e-4f * largest);
      const std::int32_t next[] = {argmax(a.row(0), a.cols)};
      a = plain.forward(next);
      b = lut.forward(next);
    }
  }
  // A quantized tied embedding is repacked once, as the output head; lookups keep its checkpoint rows.
  if (simd::lut_gemv_fast()) {
    auto tied = model::model::load(testing::default_model_dir());
    REQUIRE(tied.config().tie_word_embeddings);
    tied.quantize(quant::parse_format("w4g64"), {}, {});
    REQUIRE(tied.repack_lut() == 1 + 7 * tied.config().layers);
    REQUIRE(tied.weights().lm_head.lut != nullptr);
    REQUIRE(tied.weights().lm_head.lut == tied.weights().embed.lut);
  }
  // Changing a weight drops its repack (it would be stale).
  auto m = model::model::load(testing::default_model_dir());
  m.quantize(quant::parse_format("w4g64"));
  m.repack_lut();
  auto& q = m.layer(0).q;
  std::vector<float> w(static_cast<std::size_t>(q.rows * q.cols), 0.01f);  // [rows, cols]
  m.set_quantized(q, quant::quantize_rtn({w.data(), q.rows, q.cols}, quant::parse_format("w4g64")));
  REQUIRE(m.weights().layers[0].q.lut == nullptr);
}

TEST_CASE("a model read into memory (load_mode::copy) computes the mapped model's logits bit for bit", "[forward]") {
  // A sharded bf16 checkpoint: every shard goes through the copy.
  for (const char* name : {"qwen2-bf16-sharded", "llama-gqa2"}) {
    INFO(name);
    const auto ref = testing::load_reference(name);
    const auto mapped = model::model::load(testing::fixture_dir(name));
    const auto copied = model::model::load(testing::fixture_dir(name), io::load_mode::copy);
    for (const auto& shard : copied.checkpoint().shards()) CHECK(shard.copied());
    for (const auto& shard : mapped.checkpoint().shards()) CHECK_FALSE(shard.copied());
    model::session a(mapped, 64), b(copied, 64);
    const auto la = a.forward(ref.ids, true);
    const auto lb = b.forward(ref.ids, true);
    REQUIRE(la.rows * la.cols == lb.rows * lb.cols);
    CHECK(std::equal(la.data, la.data + la.rows * la.cols, lb.data));
  }
}
