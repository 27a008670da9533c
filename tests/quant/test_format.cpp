// Format specs: parsing, printing, the closed set, and bits per weight against real storage.
#include <catch2/catch.hpp>

#include <set>
#include <string>

#include "qmr/quant/format.hpp"
#include "qmr/quant/qtensor.hpp"

using namespace qmr::quant;

TEST_CASE("every supported spec parses and prints back", "[format]") {
  std::set<std::string> seen;
  for (int bits : supported_bits)
    for (int group : supported_groups)
      for (bool sym : {false, true}) {
        const format_spec s = format_spec::quantized(bits, group, sym);
        const std::string text = s.str();
        REQUIRE(parse_format(text) == s);
        seen.insert(text);
      }
  REQUIRE(seen.size() == 60);
  REQUIRE(seen.count("w4g128"));
  REQUIRE(seen.count("w3g64s"));
  REQUIRE(seen.count("w8gc"));
  REQUIRE(parse_format("bf16") == format_spec::dense_of(qmr::dtype::bf16));
  REQUIRE(parse_format("f16").str() == "f16");
  REQUIRE(parse_format("f32").str() == "f32");
}

TEST_CASE("unknown or unsupported specs are errors naming the text", "[format]") {
  for (const char* bad : {"w7g128", "w4g100", "w4", "w4g", "w4g128x", "q4_0", "", "wg128", "w4gcs2", "W4G128",
                          "w16g128", "w1g32", "w4g0", "w99999999999g32"}) {
    INFO(bad);
    REQUIRE_THROWS_AS(parse_format(bad), qmr::error);
    try {
      parse_format(bad);
    } catch (const qmr::error& e) {
      REQUIRE(std::string(e.what()).find(std::string("'") + bad + "'") != std::string::npos);
    }
  }
}

TEST_CASE("with_format reaches the compile-time format of every spec", "[format]") {
  for (int bits : supported_bits)
    for (int group : supported_groups)
      for (bool sym : {false, true}) {
        const auto spec = format_spec::quantized(bits, group, sym);
        const auto got = with_format(spec, [](auto f) {
          using F = decltype(f);
          return format_spec::quantized(F::bits, F::group_size, F::symmetric);
        });
        REQUIRE(got == spec);
      }
  REQUIRE_THROWS(with_format(format_spec::dense_of(qmr::dtype::f16), [](auto) { return 0; }));
  REQUIRE_THROWS(with_format(format_spec::quantized(7, 32, false), [](auto) { return 0; }));
}

TEST_CASE("bits per weight equals the bytes the layout allocates", "[format]") {
  for (int bits : supported_bits)
    for (int group : supported_groups)
      for (bool sym : {false, true}) {
        const auto spec = format_spec::quantized(bits, group, sym);
        for (std::int64_t cols : {256, 768, 4096}) {
          const auto l = qtensor_layout::of(spec, 3, cols);
          const double measured = 8.0 * static_cast<double>(l.total_bytes()) / static_cast<double>(3 * cols);
          REQUIRE(spec.bits_per_weight(cols) == Approx(measured).epsilon(1e-12));
          // The nominal figure holds when a row's zeros fill whole bytes (they are padded to a byte).
          if (group != per_channel && (sym || (cols / group * bits) % 8 == 0)) {
            const double nominal = with_format(spec, [](auto f) { return decltype(f)::bits_per_weight; });
            REQUIRE(measured == Approx(nominal).epsilon(1e-12));
          }
        }
      }
}

TEST_CASE("layouts reject shapes the format cannot hold", "[format]") {
  REQUIRE_THROWS_WITH(qtensor_layout::of(parse_format("w4g128"), 4, 96),
                      Catch::Contains("multiple of 128"));
  REQUIRE_THROWS_WITH(qtensor_layout::of(parse_format("w4gc"), 4, 12), Catch::Contains("multiple of 8"));
  REQUIRE_THROWS(qtensor_layout::of(parse_format("w4gc"), 0, 16));
  REQUIRE_THROWS(qtensor_layout::of(parse_format("bf16"), 4, 16));
  const auto l = qtensor_layout::of(parse_format("w3g32"), 2, 96);
  REQUIRE(l.n_groups == 3);
  REQUIRE(l.code_row_bytes == 36);
  REQUIRE(l.zero_row_bytes == 2);  // 3 zeros of 3 bits
}
