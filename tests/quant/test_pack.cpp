// Bit packing round trips exactly for random codes at every bit-width.
#include <catch2/catch.hpp>

#include <random>
#include <vector>

#include "qmr/quant/format.hpp"
#include "qmr/quant/pack.hpp"

using namespace qmr::quant;

TEST_CASE("packing random codes round-trips at every bit-width", "[pack]") {
  std::mt19937 rng(42);
  for (int bits : supported_bits) {
    for (std::int64_t n : {1, 7, 8, 33, 1000, 4096}) {
      std::uniform_int_distribution<std::uint32_t> code(0, (1u << bits) - 1);
      std::vector<std::uint32_t> codes(static_cast<std::size_t>(n));
      for (auto& c : codes) c = code(rng);
      // One guard byte past the end catches writes outside packed_bytes().
      std::vector<std::uint8_t> packed(static_cast<std::size_t>(packed_bytes(n, bits)) + 1, 0);
      packed.back() = 0xA5;
      for (std::int64_t i = 0; i < n; ++i) put_code(packed.data(), i, bits, codes[static_cast<std::size_t>(i)]);
      REQUIRE(packed.back() == 0xA5);
      for (std::int64_t i = 0; i < n; ++i) REQUIRE(get_code(packed.data(), i, bits) == codes[static_cast<std::size_t>(i)]);
    }
  }
}

TEST_CASE("the bitstream is little-endian, least significant bits first", "[pack]") {
  std::uint8_t nibbles[2] = {};
  put_code(nibbles, 0, 4, 0x3);
  put_code(nibbles, 1, 4, 0xC);
  put_code(nibbles, 2, 4, 0x5);
  REQUIRE(nibbles[0] == 0xC3);
  REQUIRE(nibbles[1] == 0x05);
  std::uint8_t threes[3] = {};  // 8 codes of 3 bits = 3 bytes
  for (int i = 0; i < 8; ++i) put_code(threes, i, 3, static_cast<std::uint32_t>(i));
  // codes 0..7 laid end to end: bits 000 001 010 011 100 101 110 111 from bit 0 upwards
  REQUIRE(threes[0] == 0b10001000);
  REQUIRE(threes[1] == 0b11000110);
  REQUIRE(threes[2] == 0b11111010);
  REQUIRE(packed_bytes(8, 3) == 3);
  REQUIRE(packed_bytes(9, 3) == 4);
}

TEST_CASE("dequant_value is scale times (code minus zero)", "[pack]") {
  REQUIRE(dequant_value(qmr::to_f16(0.5f), 3, 8) == -2.5f);
  REQUIRE(dequant_value(qmr::to_f16(-0.25f), 15, 0) == -3.75f);
}
