// Error taxonomy: calculations found and checked in tricky outputs, format/rounding/reasoning rules, divergence from synthetic reference steps.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "qmr/eval/taxonomy.hpp"

using namespace qmr;
using eval::error_kind;

namespace {

// The verdicts of find_calculations on `text`, as "text:ok" / "text:WRONG".
std::vector<std::string> verdicts(std::string_view text) {
  std::vector<std::string> out;
  for (const auto& c : eval::find_calculations(text)) out.push_back(c.text + (c.correct ? ":ok" : ":WRONG"));
  return out;
}

using strings = std::vector<std::string>;

}  // namespace

TEST_CASE("calculations: annotations and inline equations are found and checked", "[taxonomy]") {
  // GSM8K style: the inline "10*76=" before the annotation is not a second equation.
  CHECK(verdicts("He buys 10*76=<<10*76=760>>760 cards.") == strings{"10*76=760:ok"});
  CHECK(verdicts("He buys 10*76=<<10*76=750>>750 cards.") == strings{"10*76=750:WRONG"});
  CHECK(verdicts("<<5*3+2=17>> and <<(10+5)*2=30>> and <<48/2 = 25>>") ==
        strings{"5*3+2=17:ok", "(10+5)*2=30:ok", "48/2 = 25:WRONG"});
  // Operators: x, ×, ÷, the Unicode minus; x only before a number.
  CHECK(verdicts("So 3 x 4 = 12 and 6 × 7 = 42, 6 ÷ 4 = 1.5, 9 − 10 = −1.") ==
        strings{"3 x 4 = 12:ok", "6 × 7 = 42:ok", "6 ÷ 4 = 1.5:ok", "9 − 10 = −1:ok"});
  CHECK(verdicts("3x4=13") == strings{"3x4=13:WRONG"});
  // Thousands commas and dollars; a comma that is not one ("3,4") ends the number.
  CHECK(verdicts("She pays $1,200 - $300 = $900. Then 2,000 + 1,000 = 3,500.") ==
        strings{"$1,200 - $300 = $900:ok", "2,000 + 1,000 = 3,500:WRONG"});
  CHECK(verdicts("the pairs 3,4 and 5 + 1 = 6").size() == 1);
  // Decimals: rounded or truncated to the claimed precision; integers exactly.
  CHECK(verdicts("1/3 = 0.33, 2/3 = 0.67, 2/3 = 0.6, 2/3 = 0.5, 7/2 = 3, 3 + 4 = 8") ==
        strings{"1/3 = 0.33:ok", "2/3 = 0.67:ok", "2/3 = 0.6:ok", "2/3 = 0.5:WRONG", "7/2 = 3:ok", "3 + 4 = 8:WRONG"});
  CHECK(verdicts("0.5 * .4 = .2 and 2.5*4=10.0") == strings{"0.5 * .4 = .2:ok", "2.5*4=10.0:ok"});
  // Negative results and percents (a percent may also be read as a plain number).
  CHECK(verdicts("3 - 5 = -2; 3 - 5 = 2") == strings{"3 - 5 = -2:ok", "3 - 5 = 2:WRONG"});
  CHECK(verdicts("5/20 = 25%, 5/20*100 = 25%, 20% * 50 = 10, 20% * 50 = 12") ==
        strings{"5/20 = 25%:ok", "5/20*100 = 25%:ok", "20% * 50 = 10:ok", "20% * 50 = 12:WRONG"});
  // Running totals and identities; precedence.
  CHECK(verdicts("3+4=7+2=9") == strings{"3+4=7:ok", "7+2=9:ok"});
  CHECK(verdicts("3 + 4 = 2 + 5") == strings{"3 + 4 = 2 + 5:ok"});
  CHECK(verdicts("9 * 122 = 9*122=<<9*122=1098>>1098") == strings{"9 * 122 = 9*122:ok", "9*122=1098:ok"});
  CHECK(verdicts("2 + 3 * 4 = 14, 2 + 3 * 4 = 20") == strings{"2 + 3 * 4 = 14:ok", "2 + 3 * 4 = 20:WRONG"});
  // Algebra and text are not arithmetic: variables, exponents, words between numbers.
  CHECK(verdicts("Solve 3x + 5 = 26. Then x - 5 + 2 = -3, (x+3)*2 = 10, 2^3 = 8, y = 5, 12 apples - 5 = 7").empty());
  CHECK(verdicts("3/4 of 20 = 15 and 1/2 * 10 = 5") == strings{"1/2 * 10 = 5:ok"});
  // Markdown bold around an equation; equations never span lines; division by zero is skipped.
  CHECK(verdicts("**5 + 3 = 9**") == strings{"5 + 3 = 9:WRONG"});
  CHECK(verdicts("5 + 3\n= 9\n4 / 0 = 0").empty());
  // An annotation that is not arithmetic is ignored, and an unclosed one does not swallow the rest.
  CHECK(verdicts("<<x=5>> and <<2^3=8>> and << 4*2 = 9").size() == 1);
  const auto c = eval::find_calculations("so 12 / 4 = 3 apples");
  REQUIRE(c.size() == 1);
  CHECK(c[0].op == '/');
  CHECK(c[0].a == 12);
  CHECK(c[0].b == 4);
  CHECK(c[0].claimed == 3);
  CHECK(c[0].offset == 3);
  CHECK(!c[0].annotation);
}

TEST_CASE("repetition loops are found; ordinary answers are not loops", "[taxonomy]") {
  const std::string line = "He has 5 apples left.\n";
  const auto r = eval::find_repetition("Start. " + line + line + line + "#### 5");
  REQUIRE(r);
  CHECK(r->period == line.size());
  CHECK(r->offset == 7);
  CHECK(r->length >= 3 * line.size() - 1);
  CHECK(eval::find_repetition("the the the the the the the the the the the the the the")->period == 4);
  CHECK(eval::find_repetition(std::string(60, '!'))->period == 1);
  CHECK(!eval::find_repetition("He buys 10*76=<<10*76=760>>760 cards.\nHe sells 10*70=<<10*70=700>>700.\n#### 60"));
  CHECK(!eval::find_repetition("a" + std::string(80, ' ') + "b\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\nc"));
  CHECK(!eval::find_repetition("1/3 = 0.3333333333333333 and so on"));
}

TEST_CASE("off_by_rounding", "[taxonomy]") {
  CHECK(eval::off_by_rounding("3.5", "4"));
  CHECK(eval::off_by_rounding("4", "3.5"));
  CHECK(eval::off_by_rounding("6.99", "7"));
  CHECK(eval::off_by_rounding("3.3", "3.33"));
  CHECK(eval::off_by_rounding("3.34", "3.33") == false);
  CHECK(eval::off_by_rounding("$1,199.5", "1,200"));
  CHECK(eval::off_by_rounding("-2.5", "-3"));
  CHECK_FALSE(eval::off_by_rounding("4", "5"));        // both integers
  CHECK_FALSE(eval::off_by_rounding("0.25", "0.5"));   // a different fraction
  CHECK_FALSE(eval::off_by_rounding("2.5", "4"));      // more than 1 away
  CHECK_FALSE(eval::off_by_rounding("4", "4.0"));      // equal
  CHECK_FALSE(eval::off_by_rounding("four", "4"));
}

TEST_CASE("classify: none, format, calculation, rounding, reasoning", "[taxonomy]") {
  const auto cls = [](std::string_view out, std::string_view gold, bool truncated = false) {
    return eval::classify(out, eval::extract_strict(out).value_or(""), gold, truncated);
  };
  // Correct, with commas, dollars and a trailing period normalized away.
  CHECK(cls("He buys 10*76=<<10*76=760>>760 cards.\n#### 760", "760").kind == error_kind::none);
  CHECK(cls("It costs 1,000+200=<<1000+200=1200>>1200.\n#### 1,200.", "1200").kind == error_kind::none);
  CHECK(cls("It costs 1,000+200=<<1000+200=1200>>1200.\n#### $1,200", "1200").kind == error_kind::format);  // strict: no "$"
  // Several "####": the first is the answer, as lm-eval's strict match takes it.
  CHECK(cls("#### 12\n#### 13", "12").kind == error_kind::none);
  CHECK(cls("#### 13\n#### 12", "12").kind == error_kind::reasoning);
  // Format: no answer line, truncation, a loop, a value written differently.
  auto a = cls("He buys 10*76=<<10*76=760>>760 cards. The answer is 760", "760");
  CHECK(a.kind == error_kind::format);
  CHECK(a.detail == "no extractable answer");
  a = cls("He buys 10*76=<<10*76=760>>760 cards.\n#### 700", "760", true);
  CHECK(a.kind == error_kind::format);
  CHECK(a.detail == "truncated at the token limit");
  // Truncated: a wrong calculation before the cut still counts, one the cut may have shortened does not.
  a = cls("x = 662*338=<<662*338=224756>>224756.\n#### 224756", "223756", true);
  CHECK(a.kind == error_kind::calculation);
  a = cls("#### 7\nso 662*338 = 2237", "223756", true);
  CHECK(a.kind == error_kind::format);
  CHECK(a.calculations == 1);
  CHECK(cls("#### 7\nso 662*338 = 2237", "223756", false).kind == error_kind::calculation);
  CHECK(cls("He buys 10*76=<<10*76=760>>760 cards and", "760", true).detail == "no answer: truncated at the token limit");
  a = cls("He buys 10 cards.\nHe buys 10 cards.\nHe buys 10 cards.\nHe buys 10 cards.\n#### 10", "760");
  CHECK(a.kind == error_kind::format);
  CHECK_THAT(a.detail, Catch::StartsWith("repetition loop") && Catch::Contains("He buys 10 cards."));
  a = cls("7*5=<<7*5=35>>35\n#### 35.0", "35");
  CHECK(a.kind == error_kind::format);
  CHECK_THAT(a.detail, Catch::Contains("in value"));
  // Calculation: the first wrong calculation is reported, annotation or inline.
  a = cls("He buys 10*76=<<10*76=750>>750 cards.\nHe sells 2*5 = 11.\n#### 739", "760");
  CHECK(a.kind == error_kind::calculation);
  CHECK(a.wrong_calculation == "10*76=750");
  CHECK(a.calculations == 2);
  CHECK_THAT(a.detail, Catch::Contains("760"));
  a = cls("Each costs 1,500 / 4 = 375.\nChange: -2 - 3 = -6\n#### -6", "-5");
  CHECK(a.kind == error_kind::calculation);
  CHECK(a.wrong_calculation == "-2 - 3 = -6");
  // Rounding: the arithmetic is right and the answer is gold rounded differently.
  a = cls("7/2=<<7/2=3.5>>3.5 pizzas each.\n#### 3.5", "4");
  CHECK(a.kind == error_kind::rounding);
  a = cls("10/3=<<10/3=3.33>>3.33\n#### 3.33", "3.3");
  CHECK(a.kind == error_kind::rounding);
  // Reasoning: right arithmetic, wrong answer; no steps given, so no divergence index.
  a = cls("He buys 10*70=<<10*70=700>>700 cards.\n#### 700", "760");
  CHECK(a.kind == error_kind::reasoning);
  CHECK(a.first_divergent_step == -1);
  CHECK(cls("#### 0.25", "0.5").kind == error_kind::reasoning);
  CHECK(cls("#### -5", "5").kind == error_kind::reasoning);
}

TEST_CASE("classify: the first step that leaves a synthetic reference solution", "[taxonomy]") {
  const std::vector<eval::step> steps = {{'*', 3, 4, 12}, {'+', 12, 12, 24}, {'-', 24, 5, 19}};
  const auto cls = [&](std::string_view out) {
    return eval::classify(out, eval::extract_strict(out).value_or(""), "19", false, steps);
  };
  CHECK(cls("He buys 3*4=<<3*4=12>>12.\nNow 12+12=<<12+12=24>>24.\nThen 24-5=<<24-5=19>>19.\n#### 19").kind ==
        error_kind::none);
  // Commuted operands are the same step; the second step has a wrong operand.
  auto a = cls("He buys 4*3=<<4*3=12>>12.\nNow 12+10=<<12+10=22>>22.\nThen 22-5=<<22-5=17>>17.\n#### 17");
  CHECK(a.kind == error_kind::reasoning);
  CHECK(a.first_divergent_step == 1);
  CHECK_THAT(a.detail, Catch::Contains("12+12=24") && Catch::Contains("12+10=22"));
  // A wrong first operation.
  CHECK(cls("He buys 3+4=<<3+4=7>>7.\n#### 7").first_divergent_step == 0);
  // Steps left out: the first missing one.
  a = cls("He buys 3*4=<<3*4=12>>12.\nNow 12+12 = 24 and 12+12=<<12+12=24>>24.\n#### 24");
  CHECK(a.kind == error_kind::reasoning);
  CHECK(a.first_divergent_step == 2);
  CHECK_THAT(a.detail, Catch::Contains("never carried out"));
  // Every step done, then a different number written as the answer.
  a = cls("3*4=<<3*4=12>>12\n12+12=<<12+12=24>>24\n24-5=<<24-5=19>>19\n#### 91");
  CHECK(a.kind == error_kind::reasoning);
  CHECK(a.first_divergent_step == -1);
  // A wrong calculation is a calculation error even when a step diverges later.
  CHECK(cls("3*4=<<3*4=13>>13\n13+12=<<13+12=25>>25\n#### 20").kind == error_kind::calculation);
}

TEST_CASE("every generated synthetic answer is read back as its own steps", "[taxonomy]") {
  eval::synth_options o;
  o.seed = 7;
  const auto problems = eval::make_problems(220, o);
  for (const auto& p : problems) {
    INFO(p.answer);
    const auto calcs = eval::find_calculations(p.answer);
    std::size_t annotations = 0;
    for (const auto& c : calcs) {
      REQUIRE(c.correct);
      annotations += c.annotation;
    }
    REQUIRE(annotations == p.steps.size());
    const std::string gold = std::to_string(p.final_answer);
    const auto ok = eval::classify(p.answer, gold, gold, false, p.steps);
    REQUIRE(ok.kind == error_kind::none);
    // A wrong answer with every step right: reasoning, no divergence.
    const auto off = eval::classify(p.answer, std::to_string(p.final_answer + 2), gold, false, p.steps);
    REQUIRE(off.kind == error_kind::reasoning);
    REQUIRE(off.first_divergent_step == -1);
    // Corrupt the last annotation's result: a calculation error naming it.
    const std::size_t open = p.answer.rfind("<<"), eq = p.answer.find('=', open);
    const std::string bad = p.answer.substr(0, eq + 1) + "1" + p.answer.substr(eq + 1);
    const auto wrong = eval::classify(bad, std::to_string(p.final_answer + 1), gold, false, p.steps);
    REQUIRE(wrong.kind == error_kind::calculation);
    REQUIRE(wrong.wrong_calculation.find('1') != std::string::npos);
  }
}

TEST_CASE("error kinds: names and JSON", "[taxonomy]") {
  for (error_kind k : eval::all_error_kinds) REQUIRE(eval::parse_error_kind(eval::error_kind_name(k)) == k);
  REQUIRE_THROWS_WITH(eval::parse_error_kind("arithmetic"), Catch::Contains("unknown error kind 'arithmetic'"));
  eval::error_counts counts;
  counts.add(error_kind::none);
  counts.add(error_kind::format);
  counts.add(error_kind::format);
  CHECK(counts.wrong() == 2);
  CHECK(eval::to_json(counts).dump() == R"({"calculation":0,"format":2,"none":1,"reasoning":0,"rounding":0})");
  const auto a = eval::classify("3*4=<<3*4=13>>13\n#### 13", "13", "12", false);
  const auto j = eval::to_json(a);
  CHECK(j["kind"] == "calculation");
  CHECK(j["wrong_calculation"] == "3*4=13");
  CHECK(j["calculations"] == 1);
  CHECK(!j.contains("first_divergent_step"));
}
