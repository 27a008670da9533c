// UTF-8 decoding of well- and ill-formed input, the regex character classes, and NFC normalization.
#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <string>

#include "qmr/text/unicode.hpp"

using namespace qmr::text;

namespace {

std::string u8(char32_t cp) { return encode_utf8(cp); }

std::string u8(std::u32string_view cps) { return to_utf8(cps); }

}  // namespace

TEST_CASE("UTF-8 encodes and decodes every boundary code point", "[unicode]") {
  for (const char32_t cp : {0x0u, 0x41u, 0x7Fu, 0x80u, 0xE9u, 0x7FFu, 0x800u, 0x4E2Du, 0xD7FFu, 0xE000u, 0xFFFDu,
                            0xFFFFu, 0x10000u, 0x1F642u, 0x10FFFFu}) {
    const std::string s = u8(cp);
    CHECK(s.size() == (cp < 0x80 ? 1u : cp < 0x800 ? 2u : cp < 0x10000 ? 3u : 4u));
    std::size_t pos = 0;
    CHECK(decode_utf8(s, pos) == cp);
    CHECK(pos == s.size());
    CHECK(is_valid_utf8(s));
  }
  CHECK(u8(U'é') == "\xC3\xA9");
  CHECK(u8(0x1F642) == "\xF0\x9F\x99\x82");
  // Surrogates and values past U+10FFFF cannot be encoded.
  CHECK(u8(0xD800) == "\xEF\xBF\xBD");
  CHECK(u8(0x110000) == "\xEF\xBF\xBD");
}

TEST_CASE("ill-formed UTF-8 becomes U+FFFD per maximal subpart, like from_utf8_lossy", "[unicode]") {
  const std::string r = "\xEF\xBF\xBD";
  const struct {
    std::string in, out;
  } cases[] = {
      {"a\xFF"
       "b",
       "a" + r + "b"},
      {"\x80", r},                                  // lone continuation byte
      {"\xC0\xAF", r + r},                          // overlong lead: each byte on its own
      {"\xC3", r},                                  // truncated at the end
      {"\xE2\x82", r},                              // one maximal subpart, one U+FFFD
      {"\xE2\x82x", r + "x"},                       // truncated before an ASCII byte
      {"\xED\xA0\x80", r + r + r},                  // a surrogate
      {"\xF4\x90\x80\x80", r + r + r + r},          // above U+10FFFF
      {"\xF0\x9F\x99", r},                          // emoji missing its last byte
      {"\xF0\x9F\x99\xF0\x9F\x99\x82", r + "\xF0\x9F\x99\x82"},
      {"\xE0\x80\x80", r + r + r},                  // overlong 3-byte form
  };
  for (const auto& c : cases) {
    INFO(c.in);
    CHECK_FALSE(is_valid_utf8(c.in));
    CHECK(to_valid_utf8(c.in) == c.out);
    CHECK(is_valid_utf8(to_valid_utf8(c.in)));
  }
  CHECK(is_valid_utf8(r));  // U+FFFD itself is well-formed
  CHECK(is_valid_utf8(""));
}

TEST_CASE("decoding any bytes always advances and stays in bounds", "[unicode]") {
  const auto check_all = [](const std::string& s) {
    std::size_t pos = 0;
    while (pos < s.size()) {
      const std::size_t before = pos;
      const char32_t cp = decode_utf8(s, pos);
      REQUIRE(pos > before);
      REQUIRE(pos <= s.size());
      REQUIRE(cp <= max_code_point);
      REQUIRE(pos - before <= 4);
    }
    const std::string fixed = to_valid_utf8(s);
    REQUIRE(is_valid_utf8(fixed));
    REQUIRE(to_valid_utf8(fixed) == fixed);
    REQUIRE(is_valid_utf8(nfc(s)));
  };
  for (unsigned a = 0; a < 256; ++a)
    for (unsigned b = 0; b < 256; b += 3) check_all({static_cast<char>(a), static_cast<char>(b)});
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> byte(0, 255), length(1, 12);
  for (int i = 0; i < 20000; ++i) {
    std::string s(static_cast<std::size_t>(length(rng)), '\0');
    for (char& ch : s) ch = static_cast<char>(byte(rng));
    check_all(s);
  }
}

TEST_CASE("character classes follow \\p{L}, \\p{N} and White_Space", "[unicode]") {
  for (const char32_t c : {U'a', U'Z', U'é', U'ß', U'Ω', U'中', U'한', U'ア', U'ß', U'ǅ', U'ʰ', U'ا'}) {
    INFO(static_cast<std::uint32_t>(c));
    CHECK(is_letter(c));
    CHECK_FALSE(is_number(c));
    CHECK_FALSE(is_whitespace(c));
    CHECK(is_word_character(c));
  }
  for (const char32_t c : {U'0', U'9', U'٣', U'Ⅻ', U'²', U'½', U'①'}) {  // Nd, Nl, No
    INFO(static_cast<std::uint32_t>(c));
    CHECK(is_number(c));
    CHECK_FALSE(is_letter(c));
  }
  for (const char32_t c : {0x9u, 0xAu, 0xBu, 0xCu, 0xDu, 0x20u, 0x85u, 0xA0u, 0x1680u, 0x2000u, 0x200Au, 0x2028u, 0x2029u,
                           0x202Fu, 0x205Fu, 0x3000u}) {
    INFO(static_cast<std::uint32_t>(c));
    CHECK(is_whitespace(c));
    CHECK_FALSE(is_letter(c));
  }
  // Not White_Space, though some libraries call them spaces.
  for (const char32_t c : {0x1Cu, 0x1Fu, 0x180Eu, 0x200Bu, 0xFEFFu}) CHECK_FALSE(is_whitespace(c));
  for (const char32_t c : {U'!', U'\'', U'-', U'🙂', U'∑', U'$', char32_t{0x301}}) {
    CHECK_FALSE(is_letter(c));
    CHECK_FALSE(is_number(c));
  }
  CHECK(is_word_character(U'_'));
  CHECK(is_word_character(0x301));  // combining marks are \w in Rust's regex
  CHECK_FALSE(is_word_character(U'-'));
  CHECK(is_word_character(0x24B6));  // Ⓐ: Other_Alphabetic
  CHECK_FALSE(is_letter(0x10FFFF));
  CHECK_FALSE(is_letter(0xE000));  // private use
  CHECK(combining_class(0x301) == 230);
  CHECK(combining_class(0x316) == 220);
  CHECK(combining_class(U'a') == 0);
  CHECK(std::string(tables::unicode_version).size() >= 4);
}

TEST_CASE("NFC composes, reorders and leaves NFC text alone", "[unicode]") {
  const struct {
    std::u32string in, out;
  } cases[] = {
      {U"e\u0301", U"\u00E9"},                        // composes
      {U"A\u030A", U"\u00C5"},
      {U"\u212B", U"\u00C5"},                         // singleton decomposition (Angstrom sign)
      {U"\u0958", U"\u0915\u093C"},                   // composition exclusion stays decomposed
      {U"q\u0307\u0323", U"q\u0323\u0307"},           // marks reordered by combining class
      {U"e\u0301\u0323", U"\u1EB9\u0301"},            // reordered, then composed with the nearer mark
      {U"a\u0300\u0300", U"\u00E0\u0300"},            // the second mark is blocked by the first
      {U"\u00C5\u0301", U"\u01FA"},                   // composes with a precomposed starter
      {U"\u1100\u1161", U"\uAC00"},                   // Hangul L V
      {U"\u1100\u1161\u11A8", U"\uAC01"},             // Hangul L V T
      {U"\uAC00\u11A8", U"\uAC01"},                   // Hangul LV T
      {U"\u0301e", U"\u0301e"},                       // a leading mark composes with nothing
      {U"", U""},
  };
  for (const auto& c : cases) {
    INFO(u8(c.in));
    CHECK(nfc(std::u32string_view(c.in)) == c.out);
    CHECK(nfc(std::string_view(u8(c.in))) == u8(c.out));
    CHECK(nfc(std::string_view(u8(c.out))) == u8(c.out));  // idempotent
  }
  for (const char* s : {"Hello, world!", "caf\xC3\xA9", "\xE4\xB8\xAD\xE6\x96\x87", "\xED\x95\x9C\xEA\xB5\xAD\xEC\x96\xB4",
                        "\xF0\x9F\x99\x82", "tab\there\n"}) {
    CHECK(is_nfc_stable(s));
    CHECK(nfc(std::string_view(s)) == s);
  }
  CHECK_FALSE(is_nfc_stable("e\xCC\x81"));
  CHECK(nfc(std::string_view("\xFF")) == "\xEF\xBF\xBD");
}
