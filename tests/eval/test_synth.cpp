// Synthetic math problems: determinism, every type x level and every template valid, annotations equal to the steps, number ranges, balance, JSON and name parsing.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>
#include <limits>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "qmr/eval/synth.hpp"

using namespace qmr::eval;

namespace {

// The documented steps per level, written out again rather than read from the header.
constexpr int min_steps_of[6] = {0, 1, 2, 3, 5, 5};
constexpr int max_steps_of[6] = {0, 1, 2, 4, 6, 7};

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (true) {
    const std::size_t end = text.find('\n', start);
    lines.push_back(text.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) return lines;
    start = end + 1;
  }
}

// Checks a problem independently of check_problem(): arithmetic, ranges, the annotation of
// every line against the steps in order, the "#### N" line and the numbers in the question.
void validate(const problem& p, std::int64_t max_operand) {
  INFO(op_type_name(p.type) << " level " << p.level << "\n" << p.question << "\n" << p.answer);
  REQUIRE(p.level >= 1);
  REQUIRE(p.level <= 5);
  const auto n = static_cast<int>(p.steps.size());
  REQUIRE(n >= min_steps_of[p.level]);
  REQUIRE(n <= max_steps_of[p.level]);

  for (const step& s : p.steps) {
    INFO(s.a << s.op << s.b << "=" << s.result);
    REQUIRE(s.a >= 0);
    REQUIRE(s.b >= 0);
    REQUIRE(s.result >= 0);  // no type promises negative values
    REQUIRE(s.a < 1'000'000);
    REQUIRE(s.b < 1'000'000);
    REQUIRE(s.result < 1'000'000);
    switch (s.op) {
      case '+': REQUIRE(s.a + s.b == s.result); break;
      case '-': REQUIRE(s.a - s.b == s.result); break;
      case '*': REQUIRE(s.a * s.b == s.result); break;
      case '/':
        REQUIRE(s.b != 0);
        REQUIRE(s.a % s.b == 0);  // exact division
        REQUIRE(s.a / s.b == s.result);
        break;
      default: FAIL("unknown op " << s.op);
    }
  }
  REQUIRE(p.final_answer == p.steps.back().result);

  const auto lines = lines_of(p.answer);
  REQUIRE(lines.size() == p.steps.size() + 1);
  REQUIRE(lines.back() == "#### " + std::to_string(p.final_answer));
  static const std::regex annotation(R"((\d+)([-+*/])(\d+)=<<(\d+)([-+*/])(\d+)=(\d+)>>(\d+))");
  for (std::size_t i = 0; i < p.steps.size(); ++i) {
    const std::string& line = lines[i];
    INFO("line " << i + 1 << ": " << line);
    REQUIRE(line.find("<<") == line.rfind("<<"));  // exactly one annotation
    std::smatch m;
    REQUIRE(std::regex_search(line, m, annotation));
    const step& s = p.steps[i];
    REQUIRE(std::stoll(m[1]) == s.a);
    REQUIRE(m[2].str()[0] == s.op);
    REQUIRE(std::stoll(m[3]) == s.b);
    REQUIRE(std::stoll(m[4]) == s.a);
    REQUIRE(m[5].str()[0] == s.op);
    REQUIRE(std::stoll(m[6]) == s.b);
    REQUIRE(std::stoll(m[7]) == s.result);
    REQUIRE(std::stoll(m[8]) == s.result);  // the text after >> repeats the result
    const std::size_t after = static_cast<std::size_t>(m.position(0) + m.length(0));
    REQUIRE((after == line.size() || !std::isdigit(static_cast<unsigned char>(line[after]))));
    REQUIRE((m.position(0) == 0 || !std::isdigit(static_cast<unsigned char>(line[static_cast<std::size_t>(m.position(0)) - 1]))));
  }

  // Every number written in the question is at most max_operand.
  static const std::regex number(R"(\d+)");
  for (auto it = std::sregex_iterator(p.question.begin(), p.question.end(), number); it != std::sregex_iterator(); ++it)
    REQUIRE(std::stoll(it->str()) <= max_operand);
  // No template syntax leaks into the text.
  for (const std::string* text : {&p.question, &p.answer})
    for (const char c : {'{', '}', '[', ']', '|', '@', '#'})
      if (c != '#' || text == &p.question) REQUIRE(text->find(c) == std::string::npos);
  REQUIRE((p.question.back() == '?' || p.question.back() == '.'));
  REQUIRE(p.question.find("  ") == std::string::npos);

  REQUIRE_NOTHROW(check_problem(p));
}

}  // namespace

TEST_CASE("every type and level gives valid problems", "[synth]") {
  for (op_type type : all_op_types)
    for (int level = 1; level <= 5; ++level) {
      std::set<std::string> questions;
      for (std::uint64_t seed = 0; seed < 200; ++seed) {
        std::mt19937_64 rng(problem_seed(seed, 0, type, level));
        const problem p = make_problem(type, level, rng, 0);
        REQUIRE(p.type == type);
        REQUIRE(p.level == level);
        validate(p, default_max_operand(level));
        questions.insert(p.question);
      }
      INFO(op_type_name(type) << " level " << level);
      REQUIRE(questions.size() >= 170);  // varied: few repeats in 200 draws (level 1 has the fewest forms)
    }
}

TEST_CASE("max_operand bounds every number in the question, from the smallest to the largest allowed", "[synth]") {
  for (std::int64_t m : {synth_min_operand, std::int64_t{25}, std::int64_t{1000}, synth_max_operand})
    for (op_type type : all_op_types)
      for (int level = 1; level <= 5; ++level)
        for (std::uint64_t seed = 0; seed < 40; ++seed) {
          std::mt19937_64 rng(problem_seed(seed, 7, type, level));
          validate(make_problem(type, level, rng, m), m);
        }
}

TEST_CASE("every template instantiates, with the documented number of steps for its level", "[synth]") {
  for (const detail::problem_template& t : detail::templates) {
    INFO(op_type_name(t.type) << " level " << t.level << ": " << t.question);
    const std::int64_t m = default_max_operand(t.level);
    std::mt19937_64 rng(12345);
    int made = 0;
    for (int draw = 0; draw < 20000 && made < 50; ++draw) {
      try {
        const problem p = detail::instantiate(t, t.type, t.level, rng, m);
        validate(p, m);
        ++made;
      } catch (const detail::rejected&) {
      }
    }
    REQUIRE(made == 50);
  }
}

TEST_CASE("if-then templates take every branch", "[synth]") {
  for (const detail::problem_template& t : detail::templates) {
    const auto n_lines = static_cast<std::size_t>(std::count(t.answer.begin(), t.answer.end(), '\n') + 1);
    std::set<std::size_t> used;
    std::mt19937_64 rng(99);
    for (int draw = 0; draw < 20000 && used.size() < n_lines; ++draw) {
      try {
        std::vector<std::size_t> kept;
        detail::instantiate(t, t.type, t.level, rng, default_max_operand(t.level), &kept);
        used.insert(kept.begin(), kept.end());
      } catch (const detail::rejected&) {
      }
    }
    INFO(t.question);
    REQUIRE(used.size() == n_lines);
  }
}

TEST_CASE("generation is deterministic by seed and independent of n", "[synth]") {
  synth_options o;
  o.seed = 7;
  const auto a = make_problems(300, o);
  const auto b = make_problems(300, o);
  REQUIRE(a == b);
  const auto prefix = make_problems(40, o);
  REQUIRE(std::equal(prefix.begin(), prefix.end(), a.begin()));

  o.seed = 8;
  const auto c = make_problems(300, o);
  int same = 0;
  for (std::size_t i = 0; i < a.size(); ++i) same += a[i].question == c[i].question;
  REQUIRE(same < 10);

  // Running one level alone does not replay the names and numbers of another level.
  synth_options l1, l2;
  l1.levels = {1};
  l2.levels = {2};
  const auto p1 = make_problems(55, l1), p2 = make_problems(55, l2);
  int shared_start = 0;
  for (std::size_t i = 0; i < p1.size(); ++i) shared_start += p1[i].question.substr(0, 12) == p2[i].question.substr(0, 12);
  REQUIRE(shared_start < 15);
}

TEST_CASE("the random draws are the same with every standard library", "[synth]") {
  // The standard fixes mt19937_64's output: its 10000th value from the default seed.
  std::mt19937_64 standard;
  standard.discard(9999);
  REQUIRE(standard() == 9981545732273789042ull);

  // uniform_int is ours (not std::uniform_int_distribution), so this sequence is fixed too.
  std::mt19937_64 rng(42);
  std::vector<std::int64_t> draws;
  for (int i = 0; i < 12; ++i) draws.push_back(detail::uniform_int(rng, 1, 6));
  REQUIRE(draws == std::vector<std::int64_t>{1, 3, 5, 1, 6, 3, 5, 1, 5, 2, 2, 1});
  REQUIRE(detail::uniform_int(rng, -5, -5) == -5);
  for (int i = 0; i < 1000; ++i) {
    const auto v = detail::uniform_int(rng, -3, 1000);
    REQUIRE(v >= -3);
    REQUIRE(v <= 1000);
  }
}

TEST_CASE("a fixed seed gives fixed problems (bump synth_version when this changes)", "[synth]") {
  REQUIRE(synth_version == 1);
  synth_options o;
  o.seed = 2024;
  const auto ps = make_problems(55, o);
  std::vector<std::int64_t> finals;
  for (const problem& p : ps) finals.push_back(p.final_answer);
  REQUIRE(ps[0].question ==
          "Aisha collected 73 eggs in the morning and 39 eggs in the afternoon. How many eggs did she collect altogether?");
  REQUIRE(finals == std::vector<std::int64_t>{
                        112, 157, 546, 2424, 1870, 54, 16, 84, 65, 281, 136, 70, 427, 288,
                        32768, 19, 6, 480, 426, 5945, 9, 21, 442, 705, 66, 77, 7, 19,
                        41, 12, 970, 10, 80, 17, 55, 4, 324, 32, 1242, 165680, 560, 94,
                        8049, 384, 49, 12, 19, 57, 1440, 111, 46, 200, 766, 100, 3391});
}

TEST_CASE("make_problems cycles through types and levels evenly", "[synth]") {
  synth_options o;
  o.seed = 3;
  const auto all = make_problems(55 * 7, o);
  std::map<std::pair<op_type, int>, int> count;
  for (const problem& p : all) ++count[{p.type, p.level}];
  REQUIRE(count.size() == 55);
  for (const auto& [key, c] : count) REQUIRE(c == 7);
  // Deterministic order: type-major, each type's levels in turn.
  REQUIRE(all[0].type == op_type::addition);
  REQUIRE(all[0].level == 1);
  REQUIRE(all[6].type == op_type::subtraction);
  REQUIRE(all[6].level == 2);

  o.types = {op_type::geometry, op_type::addition};
  o.levels = {5, 2};
  const auto some = make_problems(41, o);
  std::map<std::pair<op_type, int>, int> c2;
  for (const problem& p : some) ++c2[{p.type, p.level}];
  REQUIRE(c2.size() == 4);
  REQUIRE(c2[{op_type::geometry, 5}] == 11);
  REQUIRE(c2[{op_type::geometry, 2}] == 10);
  REQUIRE(c2[{op_type::addition, 5}] == 10);
  REQUIRE(c2[{op_type::addition, 2}] == 10);
  REQUIRE(some[0].type == op_type::geometry);
  REQUIRE(some[0].level == 5);
}

TEST_CASE("levels 3-5 use their whole step ranges, and about 30% of arithmetic problems are bare", "[synth]") {
  synth_options o;
  o.seed = 11;
  o.types = {op_type::addition, op_type::subtraction, op_type::multiplication, op_type::division, op_type::mixed};
  o.levels = {1, 2, 3, 4};
  const auto ps = make_problems(4000, o);
  std::map<int, std::set<std::size_t>> steps_seen;
  int bare = 0;
  static const std::regex bare_form(R"(^(What is|Calculate|Compute|Evaluate|Find the value of) [0-9 ()+*/-]+[.?]$)");
  for (const problem& p : ps) {
    steps_seen[p.level].insert(p.steps.size());
    bare += std::regex_match(p.question, bare_form);
  }
  REQUIRE(steps_seen[3] == std::set<std::size_t>{3, 4});
  REQUIRE(steps_seen[4] == std::set<std::size_t>{5, 6});
  const double share = bare / 4000.0;
  REQUIRE(share > 0.26);  // binomial(4000, 0.3): sigma 0.007
  REQUIRE(share < 0.34);

  synth_options all5;
  all5.levels = {5};
  std::set<std::size_t> l5;
  for (const problem& p : make_problems(1100, all5)) l5.insert(p.steps.size());
  REQUIRE(l5 == std::set<std::size_t>{5, 6, 7});
}

TEST_CASE("JSON round trip with GSM8K field names", "[synth]") {
  synth_options o;
  o.seed = 5;
  for (const problem& p : make_problems(110, o)) {
    const nlohmann::json j = to_json(p);
    REQUIRE(j["question"] == p.question);
    REQUIRE(j["answer"] == p.answer);
    REQUIRE(j["type"] == std::string(op_type_name(p.type)));
    REQUIRE(j["level"] == p.level);
    REQUIRE(j["final"] == p.final_answer);
    REQUIRE(j["steps"].size() == p.steps.size());
    REQUIRE(j["steps"][0]["op"] == std::string(1, p.steps[0].op));
    REQUIRE(j["steps"][0]["result"] == p.steps[0].result);
    REQUIRE(from_json(nlohmann::json::parse(j.dump())) == p);
  }
}

TEST_CASE("from_json and check_problem reject inconsistent problems, naming the field", "[synth]") {
  std::mt19937_64 rng(1);
  const problem p = make_problem(op_type::multiplication, 2, rng, 0);
  const nlohmann::json good = to_json(p);
  const auto rejects = [](const nlohmann::json& j, const std::string& field) {
    INFO(j.dump());
    try {
      from_json(j);
      FAIL("accepted");
    } catch (const qmr::error& e) {
      INFO(e.what());
      REQUIRE(e.context().field == field);
    }
  };
  for (const char* f : {"question", "answer", "type", "level", "steps", "final"}) {
    nlohmann::json j = good;
    j.erase(f);
    rejects(j, f);
  }
  nlohmann::json j = good;
  j["type"] = "algebra";
  rejects(j, "type");
  j = good;
  j["level"] = 9;
  rejects(j, "level");
  j["level"] = 4294967298LL;  // 2^32 + 2: its low 32 bits are level 2, which this problem is
  rejects(j, "level");
  j = good;
  j["level"] = 4;  // two steps are not level 4
  rejects(j, "steps");
  j = good;
  j["steps"][0]["result"] = j["steps"][0]["result"].get<std::int64_t>() + 1;
  rejects(j, "steps");
  j = good;
  j["steps"][0]["op"] = "^";
  rejects(j, "steps");
  j = good;
  j["steps"][0]["a"] = INT64_MAX;  // out of range, and no overflow while checking it
  j["steps"][0]["op"] = "*";
  rejects(j, "steps");
  j = good;
  j["steps"] = nlohmann::json::array();
  rejects(j, "steps");
  j = good;
  j["final"] = p.final_answer + 1;
  rejects(j, "final");
  j = good;
  std::swap(j["steps"][0], j["steps"][1]);  // arithmetic right, order wrong
  rejects(j, "final");
  j["final"] = j["steps"][1]["result"];
  j["answer"] = p.answer.substr(0, p.answer.rfind('\n')) + "\n#### " + j["final"].dump();
  rejects(j, "answer");
  j = good;
  j["answer"] = p.answer.substr(0, p.answer.rfind('\n')) + "\n#### 7";
  rejects(j, "answer");
  j = good;
  j["answer"] = "#### " + std::to_string(p.final_answer);
  rejects(j, "answer");
  j = good;
  std::string answer = p.answer;
  answer.replace(answer.find("<<"), 2, "<<1");  // annotation no longer equals the step
  j["answer"] = answer;
  rejects(j, "answer");
  REQUIRE_THROWS_AS(from_json(nlohmann::json::array()), qmr::error);
}

TEST_CASE("type names parse and print; unknown names are errors naming them", "[synth]") {
  for (op_type t : all_op_types) REQUIRE(parse_op_type(op_type_name(t)) == t);
  REQUIRE(op_type_name(op_type::linear_equation) == "equation");
  REQUIRE(op_type_name(op_type::percent_ratio) == "percent");
  REQUIRE(parse_op_types("addition,percent") == std::vector<op_type>{op_type::addition, op_type::percent_ratio});
  REQUIRE(parse_op_types("all").size() == 11);
  for (const char* bad : {"algebra", "", "addition,", "addition,,geometry", "Addition", "addition,addition", " addition"}) {
    INFO(bad);
    REQUIRE_THROWS_AS(parse_op_types(bad), qmr::error);
  }
  try {
    parse_op_types("addition,algebra");
    FAIL("accepted");
  } catch (const qmr::error& e) {
    REQUIRE(std::string(e.what()).find("'algebra'") != std::string::npos);
    REQUIRE(std::string(e.what()).find("comparison") != std::string::npos);  // lists the valid names
  }
  REQUIRE(parse_levels("1,3") == std::vector<int>{1, 3});
  for (const char* bad : {"0", "6", "1,1", "", "a", "1,", "12"}) {
    INFO(bad);
    REQUIRE_THROWS_AS(parse_levels(bad), qmr::error);
  }
}

TEST_CASE("make_problem rejects bad levels and max_operand", "[synth]") {
  std::mt19937_64 rng(0);
  REQUIRE_THROWS_AS(make_problem(op_type::addition, 0, rng, 0), qmr::error);
  REQUIRE_THROWS_AS(make_problem(op_type::addition, 6, rng, 0), qmr::error);
  REQUIRE_THROWS_AS(make_problem(op_type::addition, 1, rng, 9), qmr::error);
  REQUIRE_THROWS_AS(make_problem(op_type::addition, 1, rng, 10001), qmr::error);
  REQUIRE_THROWS_AS(make_problem(static_cast<op_type>(42), 1, rng, 0), qmr::error);
  synth_options o;
  o.levels = {7};
  REQUIRE_THROWS_AS(make_problems(3, o), qmr::error);
  // A count past memory was std::length_error "vector::reserve" (qmr eval --n -1 read as 2^64-1).
  REQUIRE_THROWS_WITH(make_problems(std::numeric_limits<std::size_t>::max(), synth_options{}),
                      Catch::Contains("problems: at most"));
}
