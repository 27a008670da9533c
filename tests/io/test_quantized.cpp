// Quantized weights in safetensors: write, read back zero-copy, and reject inconsistent files.
#include <catch2/catch.hpp>

#include <cstring>
#include <vector>

#include "../random.hpp"
#include "../temp_dir.hpp"
#include "qmr/io/quantized.hpp"
#include "qmr/quant/rtn.hpp"

using namespace qmr;

namespace {

quant::qtensor make(const std::string& spec, std::int64_t rows, std::int64_t cols, std::uint32_t seed) {
  const auto w = testing::gaussian(static_cast<std::size_t>(rows * cols), seed);
  return quant::quantize_rtn({w.data(), rows, cols}, quant::parse_format(spec));
}

}  // namespace

TEST_CASE("quantized weights round-trip through a safetensors file bit for bit", "[quantized]") {
  testing::temp_dir dir;
  const quant::qtensor a = make("w4g128", 16, 256, 1), b = make("w3g32s", 8, 96, 2), c = make("w8gc", 4, 64, 3);
  io::safetensors_writer w;
  io::write_quantized(w, "layer.a.weight", a, "rtn");
  io::write_quantized(w, "layer.b.weight", b, "rtn+clip");
  io::write_quantized(w, "layer.c.weight", c, "rtn");
  std::vector<float> norm(16, 1.0f);
  w.add<float>("layer.norm.weight", make_shape({16}), norm);
  w.write(dir / "q.safetensors");

  const auto f = io::safetensors_file::open((dir / "q.safetensors").string());
  const auto entries = io::quantized_entries(f);
  REQUIRE(entries.size() == 3);
  REQUIRE(entries[1].name == "layer.b.weight");
  REQUIRE(entries[1].spec.str() == "w3g32s");
  REQUIRE(entries[1].method == "rtn+clip");
  REQUIRE(f.find("layer.b.weight.qzeros") == nullptr);  // symmetric: no zeros stored
  const quant::qtensor* originals[] = {&a, &b, &c};
  for (std::size_t i = 0; i < 3; ++i) {
    const auto v = io::load_quantized(f, entries[i]);
    const auto o = originals[i]->view();
    REQUIRE(v.rows() == o.rows());
    REQUIRE(v.cols() == o.cols());
    REQUIRE(std::memcmp(v.codes, o.codes, static_cast<std::size_t>(o.layout.code_bytes())) == 0);
    REQUIRE(std::memcmp(v.scales, o.scales, static_cast<std::size_t>(o.layout.scale_count()) * 2) == 0);
    if (!o.spec.symmetric) REQUIRE(std::memcmp(v.zeros, o.zeros, static_cast<std::size_t>(o.layout.zero_bytes())) == 0);
    for (std::int64_t r = 0; r < o.rows(); r += 3)
      for (std::int64_t col = 0; col < o.cols(); col += 7) REQUIRE(v.value(r, col) == o.value(r, col));
  }
}

TEST_CASE("inconsistent quantized tensors are clear errors", "[quantized]") {
  testing::temp_dir dir;
  const quant::qtensor a = make("w4g64", 4, 128, 4);
  const auto write_variant = [&](const std::string& file, auto mutate) {
    io::safetensors_writer w;
    mutate(w);
    w.write(dir / file);
    return io::safetensors_file::open((dir / file).string());
  };
  const auto codes = std::as_bytes(a.codes().span());
  const auto scales = std::as_bytes(a.scales().span());
  const auto zeros = std::as_bytes(a.zeros().span());
  const auto meta = [](io::safetensors_writer& w, const std::string& json) {
    w.set_metadata("qmr.format_version", "1");
    w.set_metadata("qmr:x", json);
  };
  const std::string good = R"({"format":"w4g64","shape":[4,128],"method":"rtn"})";

  SECTION("a missing array") {
    const auto f = write_variant("a.safetensors", [&](io::safetensors_writer& w) {
      meta(w, good);
      w.add("x.qcodes", "U8", make_shape({4, 64}), codes);
      w.add("x.qscales", "F16", make_shape({4, 2}), scales);
    });
    REQUIRE_THROWS_WITH(io::load_quantized(f, io::quantized_entries(f).at(0)), Catch::Contains("missing tensor x.qzeros"));
  }
  SECTION("a shape that disagrees with the format") {
    const auto f = write_variant("b.safetensors", [&](io::safetensors_writer& w) {
      meta(w, R"({"format":"w4g32","shape":[4,128]})");
      w.add("x.qcodes", "U8", make_shape({4, 64}), codes);
      w.add("x.qscales", "F16", make_shape({4, 2}), scales);
      w.add("x.qzeros", "U8", make_shape({4, 1}), zeros);
    });
    REQUIRE_THROWS_WITH(io::load_quantized(f, io::quantized_entries(f).at(0)),
                        Catch::Contains("x.qscales") && Catch::Contains("needs F16 [4, 4]"));
  }
  SECTION("a non-finite scale") {
    std::vector<f16> bad(a.scales().begin(), a.scales().end());
    bad[5] = to_f16(INFINITY);
    const auto f = write_variant("c.safetensors", [&](io::safetensors_writer& w) {
      meta(w, good);
      w.add("x.qcodes", "U8", make_shape({4, 64}), codes);
      w.add<f16>("x.qscales", make_shape({4, 2}), bad);
      w.add("x.qzeros", "U8", make_shape({4, 1}), zeros);
    });
    REQUIRE_THROWS_WITH(io::load_quantized(f, io::quantized_entries(f).at(0)), Catch::Contains("scale 5 is not finite"));
  }
  SECTION("bad metadata") {
    for (const char* json : {R"({"format":"w7g64","shape":[4,128]})", R"({"format":"w4g64"})", R"(not json)",
                             R"({"format":"bf16","shape":[4,128]})", R"({"format":"w4g64","shape":[4,-1]})"}) {
      INFO(json);
      const auto f = write_variant("d.safetensors", [&](io::safetensors_writer& w) { meta(w, json); });
      REQUIRE_THROWS_WITH(io::quantized_entries(f), Catch::Contains("qmr:x"));
    }
    const auto f = write_variant("e.safetensors", [&](io::safetensors_writer& w) { w.set_metadata("qmr:x", good); });
    REQUIRE_THROWS_WITH(io::quantized_entries(f), Catch::Contains("qmr.format_version"));
  }
}

TEST_CASE("a quantized shape too large for 64-bit byte counts is an error, not an overflow", "[quantized]") {
  // [1, 2^62] passes the metadata checks (unsigned, a multiple of 8 and of 128); the packed row
  // length cols * bits then overflowed int64 (UB) and the error quoted a wrapped size.
  testing::temp_dir dir;
  io::safetensors_writer w;
  w.set_metadata("qmr.format_version", "1");
  w.set_metadata("qmr:x", R"({"format":"w4g128","shape":[1,4611686018427387904]})");
  w.write(dir / "big.safetensors");
  const auto f = io::safetensors_file::open((dir / "big.safetensors").string());
  const auto entries = io::quantized_entries(f);
  REQUIRE(entries.size() == 1);
  REQUIRE_THROWS_WITH(io::load_quantized(f, entries[0]), Catch::Contains("big.safetensors") && Catch::Contains("tensor 'x'") &&
                                                             Catch::Contains("at most 2^31"));
  REQUIRE_THROWS_WITH(quant::qtensor_layout::of(quant::parse_format("w8g128"), std::int64_t{1} << 40, std::int64_t{1} << 40),
                      Catch::Contains("too large"));
}
