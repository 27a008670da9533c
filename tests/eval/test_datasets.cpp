// Malformed input for the GSM8K, SVAMP and ARC readers: an error naming the file and line (or entry), or skipped and counted on request.
#include <catch2/catch.hpp>

#include <fstream>

#include "../temp_dir.hpp"
#include "qmr/eval/datasets.hpp"
#include "qmr/eval/multiple_choice.hpp"

using namespace qmr;

TEST_CASE("GSM8K: each kind of malformed line names its line, or is skipped and counted", "[datasets]") {
  testing::temp_dir dir;
  std::ofstream(dir / "g.jsonl") << R"({"question": "Ann has 3 boxes with 4 pens each. How many pens?", "answer": "3*4=<<3*4=12>>12\n#### 12"})" << "\n"
                                 << R"({"question": "q", "answer": "no final line"})" << "\n"
                                 << R"({"question": "q", "answer": 12})" << "\n"
                                 << "{\"question\": \"q\", \"answer\": \"#### 1\"\n"  // unterminated object
                                 << "  \r\n"                                          // blank (CRLF): ignored
                                 << R"("just a string")" << "\n"
                                 << "{\"question\": \"\xff\xfe\", \"answer\": \"#### 1\"}\n"  // not UTF-8
                                 << R"({"question": "A shop sold 1,200 cups. How many?", "answer": "#### 1,200"})" << "\r\n";
  const auto fails_at = [&](const std::string& where) {
    return Catch::Contains(where);
  };
  REQUIRE_THROWS_WITH(eval::read_gsm8k_jsonl(dir / "g.jsonl"), fails_at("g.jsonl:2") && Catch::Contains("####"));
  io::malformed_lines m;
  m.skip = true;
  const auto items = eval::read_gsm8k_jsonl(dir / "g.jsonl", &m);
  REQUIRE(items.size() == 2);
  CHECK(items[0].gold == "12");
  CHECK(items[1].gold == "1,200");
  REQUIRE(m.skipped == 5);
  const char* lines[] = {"g.jsonl:2:", "g.jsonl:3:", "g.jsonl:4:", "g.jsonl:6:", "g.jsonl:7:"};
  for (std::size_t i = 0; i < 5; ++i) CHECK_THAT(m.errors[i], Catch::Contains(lines[i]));
  CHECK_THAT(m.errors[1], Catch::Contains("field 'answer'"));
  CHECK_THAT(m.errors[2], Catch::Contains("not valid JSON"));
  // Only the first max_errors messages are kept; all are counted.
  io::malformed_lines few;
  few.skip = true;
  few.max_errors = 2;
  eval::read_gsm8k_jsonl(dir / "g.jsonl", &few);
  CHECK(few.skipped == 5);
  CHECK(few.errors.size() == 2);
  // Without skip, a malformed_lines still throws at the first bad line.
  io::malformed_lines strict;
  REQUIRE_THROWS_WITH(eval::read_gsm8k_jsonl(dir / "g.jsonl", &strict), fails_at("g.jsonl:2"));
  REQUIRE_THROWS_WITH(eval::read_gsm8k_jsonl(dir / "none.jsonl"), Catch::Contains("none.jsonl") && Catch::Contains("cannot open"));
}

TEST_CASE("SVAMP: a malformed entry names its index; a malformed file its line", "[datasets]") {
  testing::temp_dir dir;
  std::ofstream(dir / "s.json") << "[\n"
                                << R"( {"ID": "a", "Body": "Jack had 8 pens.", "Question": "How many?", "Answer": 8.0, "Type": "Addition"},)" << "\n"
                                << R"( {"ID": "b", "Body": "x", "Question": "y", "Answer": "5"},)" << "\n"
                                << R"( {"ID": "c", "Question": "y", "Answer": 5},)" << "\n"
                                << R"( 7,)" << "\n"
                                << R"( {"ID": "d", "Body": "A rope 7 m long is cut in half.", "Question": "How long is each piece?", "Answer": 3.5})" << "\n"
                                << "]\n";
  REQUIRE_THROWS_WITH(eval::read_svamp_json(dir / "s.json"), Catch::Contains("s.json[1]") && Catch::Contains("'Answer'"));
  io::malformed_lines m;
  m.skip = true;
  const auto items = eval::read_svamp_json(dir / "s.json", &m);
  REQUIRE(items.size() == 2);
  CHECK(items[0].gold == "8");
  CHECK(items[1].gold == "3.5");
  CHECK(items[1].id == "d");
  REQUIRE(m.skipped == 3);
  CHECK_THAT(m.errors[1], Catch::Contains("s.json[2]") && Catch::Contains("'Body'"));
  CHECK_THAT(m.errors[2], Catch::Contains("s.json[3]"));
  // Broken JSON cannot be skipped entry by entry: the error gives the line.
  std::ofstream(dir / "broken.json") << "[\n {\"Body\": \"b\",\n  \"Question\": \"q\" \"Answer\": 5}\n]\n";
  REQUIRE_THROWS_WITH(eval::read_svamp_json(dir / "broken.json", &m), Catch::Contains("broken.json") && Catch::Contains("line 3"));
  std::ofstream(dir / "object.json") << R"({"Body": "b"})";
  REQUIRE_THROWS_WITH(eval::read_svamp_json(dir / "object.json"), Catch::Contains("expected a JSON array"));
}

TEST_CASE("ARC: malformed lines name their line, or are skipped and counted", "[datasets]") {
  testing::temp_dir dir;
  std::ofstream(dir / "a.jsonl") << R"({"id": "1", "question": "q1", "choices": {"text": ["a", "b"], "label": ["A", "B"]}, "answerKey": "B"})" << "\n"
                                 << R"({"id": "2", "question": "q2", "choices": {"text": ["a"], "label": ["A"]}, "answerKey": "A"})" << "\n"
                                 << R"({"id": "3", "question": "q3", "choices": {"text": ["a", "b"], "label": ["A", "B"]}, "answerKey": "E"})" << "\n"
                                 << R"({"id": "4", "question": "q4", "choices": {"text": ["a", 2], "label": ["A", "B"]}, "answerKey": "A"})" << "\n"
                                 << R"({"id": "5", "question": "q5", "choices": ["a", "b"], "answerKey": "A"})" << "\n"
                                 << "not json at all\n"
                                 << R"({"id": "7", "question": "q7", "choices": {"text": ["a", "b", "c"], "label": ["1", "2", "3"]}, "answerKey": "3"})" << "\n";
  REQUIRE_THROWS_WITH(eval::read_arc_jsonl(dir / "a.jsonl"), Catch::Contains("a.jsonl:2") && Catch::Contains("'choices'"));
  io::malformed_lines m;
  m.skip = true;
  const auto items = eval::read_arc_jsonl(dir / "a.jsonl", &m);
  REQUIRE(items.size() == 2);
  CHECK(items[0].answer == 1);
  CHECK(items[1].answer == 2);
  CHECK(items[1].id == "7");
  REQUIRE(m.skipped == 5);
  CHECK_THAT(m.errors[1], Catch::Contains("a.jsonl:3") && Catch::Contains("'E'"));
  CHECK_THAT(m.errors[4], Catch::Contains("a.jsonl:6") && Catch::Contains("not valid JSON"));
}

TEST_CASE("an empty dataset, or one whose every line is skipped, is an error naming the file", "[datasets]") {
  // Before, the readers returned no items and an evaluation scored 0 of 0 as if it had run.
  testing::temp_dir dir;
  std::ofstream(dir / "empty.jsonl") << "\n  \r\n";
  std::ofstream(dir / "empty.json") << "[]";
  REQUIRE_THROWS_WITH(eval::read_gsm8k_jsonl(dir / "empty.jsonl"), Catch::Contains("empty.jsonl") && Catch::Contains("no items"));
  REQUIRE_THROWS_WITH(eval::read_arc_jsonl(dir / "empty.jsonl"), Catch::Contains("empty.jsonl") && Catch::Contains("no items"));
  REQUIRE_THROWS_WITH(eval::read_svamp_json(dir / "empty.json"), Catch::Contains("empty.json") && Catch::Contains("no items"));
  std::ofstream(dir / "bad.jsonl") << R"({"question": "q", "answer": "no final line"})" << "\n" << "not json\n";
  io::malformed_lines m;
  m.skip = true;
  REQUIRE_THROWS_WITH(eval::read_gsm8k_jsonl(dir / "bad.jsonl", &m),
                      Catch::Contains("bad.jsonl") && Catch::Contains("no valid items (2 malformed ones skipped)"));
}
