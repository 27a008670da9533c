// The byte-level BPE tokenizer against Hugging Face tokenizers' own output, its pre-tokenizer splits, added tokens, loading errors and ChatML.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "qmr/core/error.hpp"
#include "qmr/text/chat.hpp"
#include "qmr/text/tokenizer.hpp"

using namespace qmr::text;
using nlohmann::json;

namespace {

std::filesystem::path data_dir() {
  const char* root = std::getenv("QMR_TEST_DATA");
  REQUIRE(root != nullptr);
  return std::filesystem::path(root) / "hf";
}

std::filesystem::path fixture_path() { return data_dir() / "tokenizer" / "tokenizer.json"; }

json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  REQUIRE(in);
  return json::parse(in);
}

const json& fixture_json() {
  static const json j = read_json(fixture_path());
  return j;
}

const json& cases() {
  static const json j = read_json(data_dir() / "tokenizer" / "cases.json");
  return j;
}

const tokenizer& fixture() {
  static const tokenizer t = tokenizer::load(fixture_path());
  return t;
}

std::vector<std::string> split(split_pattern p, std::string_view text) {
  std::vector<std::string> out;
  for (const std::string_view piece : pre_tokenize(p, text)) out.emplace_back(piece);
  return out;
}

// The message of the qmr::error that parsing `j` throws ("" when it does not throw).
std::string parse_error(const json& j) {
  try {
    (void)tokenizer::parse(j.dump(), "variant.json");
  } catch (const qmr::error& e) {
    return e.what();
  }
  return "";
}

// A tokenizer.json whose vocab is the 256 byte-level characters (id = byte) plus `extra`
// tokens (ids 256..), with the given merges; no normalizer unless asked.
json synthetic(const std::vector<std::string>& extra, const json& merges, std::string_view regex, bool nfc = false) {
  json vocab = json::object();
  for (unsigned b = 0; b < 256; ++b) vocab[encode_utf8(byte_to_unicode(static_cast<std::uint8_t>(b)))] = b;
  for (std::size_t i = 0; i < extra.size(); ++i) vocab[extra[i]] = 256 + i;
  json j = {
      {"version", "1.0"},
      {"added_tokens", json::array()},
      {"normalizer", nfc ? json{{"type", "NFC"}} : json(nullptr)},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         {{{"type", "Split"}, {"pattern", {{"Regex", std::string(regex)}}}, {"behavior", "Isolated"}, {"invert", false}},
          {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}}}}}},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr},
        {"fuse_unk", false},
        {"byte_fallback", false},
        {"ignore_merges", false},
        {"vocab", vocab},
        {"merges", merges}}},
  };
  return j;
}

json added(std::int32_t id, const std::string& content, bool special, bool lstrip = false, bool rstrip = false,
           bool single_word = false, bool normalized = false) {
  return {{"id", id},         {"content", content},       {"single_word", single_word}, {"lstrip", lstrip},
          {"rstrip", rstrip}, {"normalized", normalized}, {"special", special}};
}

std::vector<std::int32_t> bytes_of(std::string_view s) {
  std::vector<std::int32_t> ids;
  for (const char c : s) ids.push_back(static_cast<std::uint8_t>(c));
  return ids;
}

std::vector<std::int32_t> concat(std::initializer_list<std::vector<std::int32_t>> parts) {
  std::vector<std::int32_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

}  // namespace

TEST_CASE("every case encodes and decodes exactly as HF tokenizers did", "[tokenizer]") {
  const tokenizer& t = fixture();
  CHECK(t.pre_tokenizer_pattern() == split_pattern::qwen2);
  CHECK(t.normalizes_nfc());
  REQUIRE(cases().size() >= 50);
  for (const json& c : cases()) {
    const auto text = c["text"].get<std::string>();
    const auto ids = c["ids"].get<std::vector<std::int32_t>>();
    INFO(c["text"].dump());
    CHECK(t.encode(text) == ids);
    CHECK(t.decode(ids) == c["decoded"].get<std::string>());
  }
}

TEST_CASE("every model directory's tokenizer.json loads the same tokenizer", "[tokenizer]") {
  int seen = 0;
  for (const auto& entry : std::filesystem::directory_iterator(data_dir())) {
    const auto path = entry.path() / "tokenizer.json";
    if (!std::filesystem::exists(path)) continue;
    INFO(path.string());
    const tokenizer t = tokenizer::load(path);
    CHECK(t.vocab_size() == fixture().vocab_size());
    CHECK(t.encode("Hello world, 123!") == fixture().encode("Hello world, 123!"));
    ++seen;
  }
  CHECK(seen >= 7);
}

TEST_CASE("merges written as \"a b\" strings give the same ids as pairs", "[tokenizer]") {
  json j = fixture_json();
  json strings = json::array();
  for (const json& m : j["model"]["merges"]) strings.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
  j["model"]["merges"] = strings;
  const tokenizer t = tokenizer::parse(j.dump(), "string-merges.json");
  for (const json& c : cases()) {
    INFO(c["text"].dump());
    CHECK(t.encode(c["text"].get<std::string>()) == c["ids"].get<std::vector<std::int32_t>>());
  }
}

TEST_CASE("vocabulary, special tokens and ids", "[tokenizer]") {
  const tokenizer& t = fixture();
  CHECK(t.vocab_size() == 512);
  CHECK(t.token_to_id("<|endoftext|>") == 0);
  CHECK(t.token_to_id("<|im_start|>") == 1);
  CHECK(t.token_to_id("<|im_end|>") == 2);
  CHECK(t.token_to_id("\xC4\xA0") == t.encode(" ").at(0));  // "Ġ" is the space
  CHECK_FALSE(t.token_to_id("no such token").has_value());
  CHECK(t.id_to_token(1) == "<|im_start|>");
  CHECK(t.is_special(0));
  CHECK(t.is_special(2));
  CHECK_FALSE(t.is_special(100));
  CHECK(t.added_tokens().size() == 3);
  for (std::int32_t id = 0; id < t.vocab_size(); ++id) CHECK(t.token_to_id(t.id_to_token(id)) == id);
}

TEST_CASE("decode: special tokens, partial characters, streaming, bad ids", "[tokenizer]") {
  const tokenizer& t = fixture();
  const auto ids = t.encode("<|im_start|>user\nHi<|im_end|>");
  CHECK(ids.front() == 1);
  CHECK(ids.back() == 2);
  CHECK(t.decode(ids) == "<|im_start|>user\nHi<|im_end|>");
  CHECK(t.decode(ids, true) == "user\nHi");

  // An emoji split over several byte tokens: alone they are not UTF-8.
  const auto emoji = t.encode("\xF0\x9F\x99\x82");
  REQUIRE(emoji.size() >= 2);
  CHECK(t.decode(std::vector<std::int32_t>{emoji[0]}) == "\xEF\xBF\xBD");
  std::string streamed;
  for (const std::int32_t id : emoji) streamed += t.decode_token(id);
  CHECK(streamed == "\xF0\x9F\x99\x82");
  CHECK(t.decode(emoji) == "\xF0\x9F\x99\x82");

  for (const std::int32_t bad : {512, 100000, -1}) {
    INFO(bad);
    try {
      (void)t.decode(std::vector<std::int32_t>{3, bad});
      FAIL("no error");
    } catch (const qmr::error& e) {
      CHECK_THAT(e.what(), Catch::Contains(std::to_string(bad)));
    }
    CHECK_THROWS_AS(t.id_to_token(bad), qmr::error);
    CHECK_THROWS_AS(t.decode_token(bad), qmr::error);
  }
}

TEST_CASE("encode reads ill-formed UTF-8 as U+FFFD and normalizes to NFC", "[tokenizer]") {
  const tokenizer& t = fixture();
  CHECK(t.encode("a\xFF"
                 "b") == t.encode("a\xEF\xBF\xBD"
                                  "b"));
  CHECK(t.encode("cafe\xCC\x81") == t.encode("caf\xC3\xA9"));
  CHECK(t.encode("") == std::vector<std::int32_t>{});
}

TEST_CASE("Qwen2 split: contractions, letters, single digits, punctuation, whitespace", "[tokenizer][pre_tokenizer]") {
  using v = std::vector<std::string>;
  const auto q = [](std::string_view s) { return split(split_pattern::qwen2, s); };
  CHECK(q("I'm sure they'll say") == v{"I", "'m", " sure", " they", "'ll", " say"});
  CHECK(q("DON'T SHOUT, I'LL") == v{"DON", "'T", " SHOUT", ",", " I", "'LL"});  // case-insensitive
  CHECK(q("we've 're 'd 's 't") == v{"we", "'ve", " '", "re", " '", "d", " '", "s", " '", "t"});
  CHECK(q("'sup") == v{"'s", "up"});                                   // the contraction wins
  CHECK(q("'\xC5\xBFx") == v{"'\xC5\xBF", "x"});                       // U+017F folds to 's'
  CHECK(q("'fine' x'y") == v{"'fine", "'", " x", "'y"});
  CHECK(q("1234567") == v{"1", "2", "3", "4", "5", "6", "7"});
  CHECK(q("3.14") == v{"3", ".", "1", "4"});
  CHECK(q("Hello  world") == v{"Hello", " ", " world"});              // \s+(?!\S) leaves one space
  CHECK(q("Hello   world") == v{"Hello", "  ", " world"});
  CHECK(q("trailing ") == v{"trailing", " "});
  CHECK(q("end.  ") == v{"end", ".", "  "});
  CHECK(q("a\n\nb") == v{"a", "\n\n", "b"});
  CHECK(q("line\r\nnext") == v{"line", "\r\n", "next"});
  CHECK(q("  \n  \n") == v{"  \n  \n"});                              // \s*[\r\n]+ to the last newline
  CHECK(q("x  \n y") == v{"x", "  \n", " y"});
  CHECK(q("\tfoo") == v{"\tfoo"});                                    // one non-letter may lead a word
  CHECK(q("...\n\nfoo") == v{"...\n\n", "foo"});                      // punctuation takes newlines after it
  CHECK(q(" ?! x") == v{" ?!", " x"});
  CHECK(q("(12+3)*4") == v{"(", "1", "2", "+", "3", ")*", "4"});
  CHECK(q("mixed\xE4\xB8\xAD\xE6\x96\x87" "and") == v{"mixed\xE4\xB8\xAD\xE6\x96\x87" "and"});  // CJK are letters
  CHECK(q("\xE4\xB8\xAD \xE6\x96\x87") == v{"\xE4\xB8\xAD", " \xE6\x96\x87"});
  CHECK(q("hi \xF0\x9F\x99\x82\xF0\x9F\x99\x82!") == v{"hi", " \xF0\x9F\x99\x82\xF0\x9F\x99\x82!"});  // emoji are punctuation here
  CHECK(q("\xC2\xA0non") == v{"\xC2\xA0non"});                        // NBSP leads a word
  CHECK(q("zero\xE2\x80\x8Bwidth") == v{"zero", "\xE2\x80\x8Bwidth"});  // U+200B is not a space
  CHECK(q("") == v{});
  CHECK(q(" ") == v{" "});
}

TEST_CASE("Llama 3 split groups up to three digits", "[tokenizer][pre_tokenizer]") {
  using v = std::vector<std::string>;
  const auto l = [](std::string_view s) { return split(split_pattern::llama3, s); };
  CHECK(l("1234567") == v{"123", "456", "7"});
  CHECK(l("12345 67") == v{"123", "45", " ", "67"});
  CHECK(l("x2024y") == v{"x", "202", "4", "y"});
  CHECK(l("I'M here") == v{"I", "'M", " here"});
  CHECK(l("Hello  world\n") == v{"Hello", " ", " world", "\n"});
  CHECK(l("\xD9\xA3\xD9\xA4") == v{"\xD9\xA3\xD9\xA4"});  // Arabic-Indic digits are \p{N}
}

TEST_CASE("GPT-2 split: case-sensitive contractions, runs of digits", "[tokenizer][pre_tokenizer]") {
  using v = std::vector<std::string>;
  const auto g = [](std::string_view s) { return split(split_pattern::gpt2, s); };
  CHECK(g("Hello world 123  abc\n") == v{"Hello", " world", " 123", " ", " abc", "\n"});
  CHECK(g("I'm I'M") == v{"I", "'m", " I", "'", "M"});
  CHECK(g("'\xC5\xBFx") == v{"'", "\xC5\xBFx"});
  CHECK(g("a\n\nb") == v{"a", "\n", "\n", "b"});
  CHECK(g("x  ") == v{"x", "  "});
  CHECK(g("foo!!  bar") == v{"foo", "!!", " ", " bar"});
  CHECK(split(split_pattern::none, "a b") == v{"a b"});
}

TEST_CASE("GPT-2's byte-level alphabet", "[tokenizer]") {
  CHECK(byte_to_unicode(' ') == 0x120);   // 'Ġ'
  CHECK(byte_to_unicode('\n') == 0x10A);  // 'Ċ'
  CHECK(byte_to_unicode('a') == U'a');
  CHECK(byte_to_unicode(0xAD) == 0x143);  // the soft hyphen is remapped
  CHECK(byte_to_unicode(0xFF) == 0xFF);
  for (unsigned b = 0; b < 256; ++b) CHECK(unicode_to_byte(byte_to_unicode(static_cast<std::uint8_t>(b))) == b);
  CHECK_FALSE(unicode_to_byte(U' ').has_value());
  CHECK_FALSE(unicode_to_byte(0x144).has_value());
  CHECK(byte_level_decode(byte_level_encode("a b\n\xFF")) == "a b\n\xFF");
  CHECK(byte_level_decode("<|x|> ") == "<|x|> ");  // a character outside the alphabet: raw bytes
}

TEST_CASE("BPE applies merges by rank; ignore_merges emits whole vocabulary words", "[tokenizer]") {
  // "bc" merges before "ab", so "abc" is a + bc, never ab + c, and "abc" is only reachable
  // through ignore_merges.
  json j = synthetic({"bc", "ab", "abc"}, json::array({json::array({"b", "c"}), json::array({"a", "b"})}), llama3_pattern);
  const tokenizer merges = tokenizer::parse(j.dump(), "bpe.json");
  CHECK(merges.encode("abc") == std::vector<std::int32_t>{'a', 256});
  CHECK(merges.encode("abab") == std::vector<std::int32_t>{257, 257});
  CHECK(merges.encode("abcab") == std::vector<std::int32_t>{'a', 256, 257});
  j["model"]["ignore_merges"] = true;
  const tokenizer whole = tokenizer::parse(j.dump(), "bpe.json");
  CHECK(whole.ignores_merges());
  CHECK(whole.encode("abc") == std::vector<std::int32_t>{258});
  CHECK(whole.encode("abc\nabc abcd") == std::vector<std::int32_t>{258, '\n', 258, ' ', 'a', 256, 'd'});
  CHECK(whole.encode("12345") == std::vector<std::int32_t>{'1', '2', '3', '4', '5'});
  CHECK(whole.decode(whole.encode("abc\nabc abcd")) == "abc\nabc abcd");
}

TEST_CASE("added tokens: longest match first, normalized matching, lstrip/rstrip/single_word as HF", "[tokenizer]") {
  json j = synthetic({}, json::array(), qwen2_pattern, true);
  j["added_tokens"] = {added(256, "<mask>", true, true, true), added(257, "<m>", true),
                       added(258, "<mask2>", false), added(259, "n\xC3\xA9", false, false, false, false, true),
                       added(260, "<w>", false, false, false, true)};
  const tokenizer t = tokenizer::parse(j.dump(), "added.json");
  CHECK(t.vocab_size() == 261);  // added tokens past the model vocabulary
  // lstrip/rstrip swallow the whitespace around the token (HF's test_lstrip_unicode_space).
  CHECK(t.encode("Hi <mask> there\t<mask>\t<mask>\xE2\x80\x80") ==
        concat({bytes_of("Hi"), {256}, bytes_of("there"), {256}, {256}}));
  CHECK(t.encode("<mask2>") == std::vector<std::int32_t>{258});  // longest match
  CHECK(t.encode("<m><mask2") == concat({{257}, bytes_of("<mask2")}));
  // normalized: the token "né" also matches "ne" + U+0301, which NFC composes.
  CHECK(t.encode("ne\xCC\x81") == std::vector<std::int32_t>{259});
  CHECK(t.encode("xne\xCC\x81y") == concat({bytes_of("x"), {259}, bytes_of("y")}));
  // single_word: not when a word character touches it (HF's test_single_word_is_correct).
  CHECK(t.encode("<w> a<w> <w>b <w>") ==
        concat({{260}, bytes_of(" a<w> <w>b "), {260}}));
  CHECK(t.is_special(256));
  CHECK_FALSE(t.is_special(258));
  CHECK(t.decode(t.encode("a<m>b"), true) == "ab");
}

TEST_CASE("unknown bytes: unk_token, fused or not, or dropped as HF does", "[tokenizer]") {
  json j = synthetic({"<unk>"}, json::array(), qwen2_pattern);
  j["model"]["vocab"].erase(encode_utf8(byte_to_unicode('z')));
  j["model"]["vocab"]["z_"] = 'z';  // keep the ids dense
  CHECK(tokenizer::parse(j.dump(), "unk.json").encode("azzb") == bytes_of("ab"));
  j["model"]["unk_token"] = "<unk>";
  CHECK(tokenizer::parse(j.dump(), "unk.json").encode("azzb") == std::vector<std::int32_t>{'a', 256, 256, 'b'});
  j["model"]["fuse_unk"] = true;
  CHECK(tokenizer::parse(j.dump(), "unk.json").encode("azzb") == std::vector<std::int32_t>{'a', 256, 'b'});
}

TEST_CASE("GPT-2 style ByteLevel pre-tokenizer with use_regex", "[tokenizer]") {
  json j = synthetic({}, json::array(), qwen2_pattern);
  j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  j["post_processor"] = {{"type", "Sequence"},
                         {"processors", {{{"type", "ByteLevel"}}, {{"type", "TemplateProcessing"}}}}};
  const tokenizer t = tokenizer::parse(j.dump(), "gpt2.json");
  CHECK(t.pre_tokenizer_pattern() == split_pattern::gpt2);
  CHECK_FALSE(t.normalizes_nfc());
  CHECK(t.encode("Hi there") == bytes_of("Hi there"));
  CHECK(t.encode("e\xCC\x81") == bytes_of("e\xCC\x81"));  // no normalizer
}

TEST_CASE("malformed or unsupported tokenizer.json files are clear errors naming the field", "[tokenizer][errors]") {
  const json& base = fixture_json();
  const auto variant = [&](auto&& edit) {
    json j = base;
    edit(j);
    return parse_error(j);
  };
  SECTION("invalid JSON names the byte") {
    try {
      (void)tokenizer::parse("{\"model\": [1, 2", "broken.json");
      FAIL("no error");
    } catch (const qmr::error& e) {
      CHECK_THAT(e.what(), Catch::StartsWith("broken.json: byte "));
      CHECK_THAT(e.what(), Catch::Contains("not valid JSON"));
      CHECK(e.context().offset.has_value());
    }
    CHECK_THAT(parse_error(json::array()), Catch::Contains("expected a JSON object"));
  }
  SECTION("a missing file") {
    CHECK_THROWS_AS(tokenizer::load(data_dir() / "no-such-tokenizer.json"), qmr::error);
  }
  SECTION("the model") {
    CHECK_THAT(variant([](json& j) { j.erase("model"); }), Catch::Contains("variant.json: field 'model': missing"));
    CHECK_THAT(variant([](json& j) { j["model"]["type"] = "WordPiece"; }),
               Catch::Contains("field 'model.type'") && Catch::Contains("WordPiece"));
    CHECK_THAT(variant([](json& j) { j["model"]["type"] = "Unigram"; }),
               Catch::Contains("field 'model.type'") && Catch::Contains("Unigram"));
    CHECK_THAT(variant([](json& j) { j["model"]["byte_fallback"] = true; }), Catch::Contains("field 'model.byte_fallback'"));
    CHECK_THAT(variant([](json& j) { j["model"]["dropout"] = 0.1; }), Catch::Contains("field 'model.dropout'"));
    CHECK_THAT(variant([](json& j) { j["model"]["continuing_subword_prefix"] = "##"; }),
               Catch::Contains("field 'model.continuing_subword_prefix'"));
    CHECK_THAT(variant([](json& j) { j["model"]["unk_token"] = "<unk>"; }), Catch::Contains("field 'model.unk_token'"));
  }
  SECTION("the vocabulary") {
    CHECK_THAT(variant([](json& j) { j["model"]["vocab"]["!"] = j["model"]["vocab"]["\""]; }),
               Catch::Contains("field 'model.vocab'") && Catch::Contains("given to both"));
    CHECK_THAT(variant([](json& j) { j["model"]["vocab"]["!"] = 512; }),
               Catch::Contains("field 'model.vocab'") && Catch::Contains("out of range"));
    CHECK_THAT(variant([](json& j) { j["model"]["vocab"]["!"] = -1; }),
               Catch::Contains("field 'model.vocab'") && Catch::Contains("out of range"));
    CHECK_THAT(variant([](json& j) { j["model"]["vocab"]["!"] = "3"; }), Catch::Contains("field 'model.vocab'"));
    CHECK_THAT(variant([](json& j) { j["model"]["vocab"] = json::array(); }), Catch::Contains("field 'model.vocab'"));
  }
  SECTION("the merges") {
    const std::string n = std::to_string(base["model"]["merges"].size());
    CHECK_THAT(variant([](json& j) { j["model"]["merges"].push_back({"no-such-token", "a"}); }),
               Catch::Contains("field 'model.merges[" + n + "]'") && Catch::Contains("no-such-token"));
    CHECK_THAT(variant([](json& j) { j["model"]["merges"].push_back({"<|im_end|>", "<|im_end|>"}); }),
               Catch::Contains("field 'model.merges[" + n + "]'") && Catch::Contains("merged token"));
    CHECK_THAT(variant([](json& j) { j["model"]["merges"][0] = "a  b"; }), Catch::Contains("field 'model.merges[0]'"));
    CHECK_THAT(variant([](json& j) { j["model"]["merges"][0] = json{"a"}; }), Catch::Contains("field 'model.merges[0]'"));
    CHECK_THAT(variant([](json& j) { j["model"].erase("merges"); }), Catch::Contains("field 'model.merges'"));
  }
  SECTION("normalizer, pre-tokenizer, decoder, post-processor") {
    CHECK_THAT(variant([](json& j) { j["normalizer"] = {{"type", "NFKC"}}; }),
               Catch::Contains("field 'normalizer.type'") && Catch::Contains("NFKC"));
    CHECK_THAT(variant([](json& j) { j["normalizer"] = {{"type", "Sequence"}, {"normalizers", {{{"type", "NFC"}}, {{"type", "Lowercase"}}}}}; }),
               Catch::Contains("field 'normalizer.normalizers[1].type'"));
    CHECK_THAT(variant([](json& j) { j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "\\w+|\\s+"; }),
               Catch::Contains("field 'pre_tokenizer.pretokenizers[0].pattern.Regex'") && Catch::Contains("\\w+|\\s+"));
    CHECK_THAT(variant([](json& j) { j["pre_tokenizer"]["pretokenizers"][0]["pattern"] = {{"String", " "}}; }),
               Catch::Contains("field 'pre_tokenizer.pretokenizers[0].pattern'"));
    CHECK_THAT(variant([](json& j) { j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Removed"; }),
               Catch::Contains("field 'pre_tokenizer.pretokenizers[0].behavior'"));
    CHECK_THAT(variant([](json& j) { j["pre_tokenizer"]["pretokenizers"][0]["invert"] = true; }),
               Catch::Contains("field 'pre_tokenizer.pretokenizers[0].invert'"));
    CHECK_THAT(variant([](json& j) { j["pre_tokenizer"]["pretokenizers"][1]["add_prefix_space"] = true; }),
               Catch::Contains("field 'pre_tokenizer.pretokenizers[1].add_prefix_space'"));
    CHECK_THAT(variant([](json& j) { j["pre_tokenizer"]["pretokenizers"][1]["use_regex"] = true; }),
               Catch::Contains("field 'pre_tokenizer.pretokenizers[1].use_regex'"));
    CHECK_THAT(variant([](json& j) { j["pre_tokenizer"]["pretokenizers"][0]["type"] = "Metaspace"; }),
               Catch::Contains("field 'pre_tokenizer.pretokenizers[0].type'"));
    CHECK_THAT(variant([](json& j) { j["pre_tokenizer"] = {{"type", "Whitespace"}}; }),
               Catch::Contains("field 'pre_tokenizer.type'"));
    CHECK_THAT(variant([](json& j) { j["pre_tokenizer"] = nullptr; }), Catch::Contains("field 'pre_tokenizer'"));
    CHECK_THAT(variant([](json& j) { j["decoder"] = {{"type", "WordPiece"}}; }), Catch::Contains("field 'decoder.type'"));
    CHECK_THAT(variant([](json& j) { j["post_processor"] = {{"type", "BertProcessing"}}; }),
               Catch::Contains("field 'post_processor.type'"));
  }
  SECTION("added tokens") {
    CHECK_THAT(variant([](json& j) { j["added_tokens"][1]["id"] = 0; }),
               Catch::Contains("field 'added_tokens[1].id'") && Catch::Contains("<|endoftext|>"));
    CHECK_THAT(variant([](json& j) { j["added_tokens"][1]["id"] = 3; }), Catch::Contains("field 'added_tokens[1].id'"));
    CHECK_THAT(variant([](json& j) {
                 j["added_tokens"].push_back(added(600, "<a>", true));
                 j["added_tokens"].push_back(added(600, "<b>", true));
               }),
               Catch::Contains("field 'added_tokens[4].id'") && Catch::Contains("<a>"));
    CHECK_THAT(variant([](json& j) { j["added_tokens"].push_back(added(700, "!", false)); }),
               Catch::Contains("field 'added_tokens[3].id'"));
    CHECK_THAT(variant([](json& j) { j["added_tokens"].push_back(added(-5, "<c>", true)); }),
               Catch::Contains("field 'added_tokens[3].id'"));
    CHECK_THAT(variant([](json& j) { j["added_tokens"].push_back(added(601, "", true)); }),
               Catch::Contains("field 'added_tokens[3].content'"));
    CHECK_THAT(variant([](json& j) {
                 j["added_tokens"].push_back(added(601, "<d>", true));
                 j["added_tokens"].push_back(added(602, "<d>", true));
               }),
               Catch::Contains("field 'added_tokens[4].content'"));
    CHECK_THAT(variant([](json& j) { j["added_tokens"][0]["special"] = "yes"; }),
               Catch::Contains("field 'added_tokens[0].special'"));
  }
}

TEST_CASE("ChatML formatting, and its markers are single special tokens", "[tokenizer][chat]") {
  const chat_message messages[] = {{"system", "You are terse."}, {"user", "Hi"}};
  CHECK(format_chatml(messages, false) == "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
  const std::string prompt = format_chatml(messages, true);
  CHECK(prompt == "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  CHECK(format_chatml({}, true) == "<|im_start|>assistant\n");

  const tokenizer& t = fixture();
  CHECK(t.encode("<|im_start|>") == std::vector<std::int32_t>{1});
  CHECK(t.encode("<|im_end|>") == std::vector<std::int32_t>{2});
  const auto ids = t.encode(prompt);
  CHECK(std::count(ids.begin(), ids.end(), 1) == 3);
  CHECK(std::count(ids.begin(), ids.end(), 2) == 2);
  CHECK(ids.front() == 1);
  CHECK(t.decode(ids) == prompt);
}
