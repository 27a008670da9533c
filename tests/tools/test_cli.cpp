// End-to-end tests of the qmr binary: inspect (safetensors and GGUF), quantize, logits, tokenize, generate, and their errors.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "../temp_dir.hpp"
#include "qmr/io/synthetic_checkpoint.hpp"
#include "qmr/kernels/simd/dispatch.hpp"  // lut_gemv_fast

namespace {

struct result {
  int status;
  std::string output;  // stdout and stderr together
};

result run(const std::string& args) {
  const char* exe = std::getenv("QMR_EXE");
  REQUIRE(exe != nullptr);
  const std::string cmd = std::string(exe) + " " + args + " 2>&1";
  std::FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

}  // namespace

TEST_CASE("qmr inspect, quantize and inspect again", "[cli]") {
  qmr::testing::temp_dir dir;
  qmr::io::synthetic_config cfg;
  cfg.shards = 2;
  qmr::io::write_synthetic_checkpoint(dir / "model", cfg);

  const result before = run("inspect " + (dir / "model").string());
  INFO(before.output);
  REQUIRE(before.status == 0);
  REQUIRE(before.output.find("model.layers.1.mlp.down_proj.weight") != std::string::npos);
  REQUIRE(before.output.find("[256, 704]") != std::string::npos);
  REQUIRE(before.output.find("21 tensors (0 quantized) in 2 file(s)") != std::string::npos);

  const result q = run("quantize --model " + (dir / "model").string() + " --out " + (dir / "q").string() +
                       " --bits 4 --group 64 --sym --clip --quiet");
  INFO(q.output);
  REQUIRE(q.status == 0);
  REQUIRE(q.output.find("quantized 14 of 21 tensors to w4g64s (rtn+clip)") != std::string::npos);

  const result after = run("inspect --json " + (dir / "q").string());
  REQUIRE(after.status == 0);
  const auto j = nlohmann::json::parse(after.output);
  int quantized = 0;
  for (const auto& t : j["tensors"]) {
    if (t["quantized"].get<bool>()) {
      ++quantized;
      REQUIRE(t["format"] == "w4g64s");
      REQUIRE(t["bits_per_weight"].get<double>() == Approx(4.25));
    }
  }
  REQUIRE(quantized == 14);
  REQUIRE(j["tensors"].size() == 21);
}

TEST_CASE("qmr reports bad input clearly and exits non-zero", "[cli]") {
  qmr::testing::temp_dir dir;
  qmr::io::write_synthetic_checkpoint(dir / "model", {});

  const result bad_format = run("quantize --model " + (dir / "model").string() + " --out " + (dir / "q").string() +
                                " --bits 7");
  REQUIRE(bad_format.status == 1);
  REQUIRE(bad_format.output.find("format 'w7g128': 7-bit codes are not supported") != std::string::npos);

  const std::string broken_bytes("\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":1}", 15);
  std::ofstream(dir / "broken.safetensors", std::ios::binary) << broken_bytes;
  const result broken = run("inspect " + (dir / "broken.safetensors").string());
  REQUIRE(broken.status == 1);
  REQUIRE(broken.output.find("broken.safetensors") != std::string::npos);
  REQUIRE(broken.output.find("header length 16 runs past the end of the file") != std::string::npos);

  const result missing = run("inspect " + (dir / "nope").string());
  REQUIRE(missing.status == 1);
  REQUIRE(missing.output.find("no such file or directory") != std::string::npos);

  const result usage = run("quantize --model x");
  REQUIRE(usage.status != 0);
  REQUIRE(usage.output.find("--out is required") != std::string::npos);
}

namespace {

std::filesystem::path data_dir() {
  const char* root = std::getenv("QMR_TEST_DATA");
  REQUIRE(root != nullptr);
  return std::filesystem::path(root) / "hf";
}

std::string join_ids(const std::vector<std::int32_t>& ids) {
  std::string s;
  for (std::size_t i = 0; i < ids.size(); ++i) s += (i ? "," : "") + std::to_string(ids[i]);
  return s;
}

}  // namespace

TEST_CASE("qmr logits writes transformers' logits", "[cli]") {
  qmr::testing::temp_dir dir;
  const auto model = data_dir() / "qwen2-gqa7-bias";
  nlohmann::json ref;
  std::ifstream(model / "reference.json") >> ref;
  const auto ids = ref["ids"].get<std::vector<std::int32_t>>();
  const result r = run("logits --model " + model.string() + " --ids " + join_ids(ids) + " --out " + (dir / "l.f32").string());
  INFO(r.output);
  REQUIRE(r.status == 0);
  const auto n = static_cast<std::size_t>(ids.size() * ref["vocab"].get<std::size_t>());
  std::vector<float> got(n), want(n);
  REQUIRE(std::filesystem::file_size(dir / "l.f32") == n * 4);
  std::ifstream(dir / "l.f32", std::ios::binary).read(reinterpret_cast<char*>(got.data()), static_cast<std::streamsize>(n * 4));
  std::ifstream(model / "reference_logits.f32", std::ios::binary).read(reinterpret_cast<char*>(want.data()), static_cast<std::streamsize>(n * 4));
  float diff = 0;
  for (std::size_t i = 0; i < n; ++i) diff = std::max(diff, std::fabs(got[i] - want[i]));
  REQUIRE(diff < 1e-3f);

  REQUIRE(run("logits --model " + model.string() + " --ids 1,x,3 --out " + (dir / "l.f32").string()).output.find(
              "token id 'x' is not a non-negative integer") != std::string::npos);
  REQUIRE(run("logits --model " + model.string() + " --ids 1,99999 --out " + (dir / "l.f32").string()).output.find(
              "outside the vocabulary") != std::string::npos);
}

TEST_CASE("qmr tokenize encodes and decodes like HF tokenizers", "[cli]") {
  nlohmann::json cases;
  std::ifstream(data_dir() / "tokenizer" / "cases.json") >> cases;
  const std::string model = (data_dir() / "llama-gqa2").string();
  int checked = 0;
  for (const auto& c : cases) {
    const std::string text = c["text"].get<std::string>();
    // Texts safe to pass through a shell in single quotes.
    if (text.empty() || text.find_first_of("'\n\r\t\\") != std::string::npos || text.find('\0') != std::string::npos) continue;
    const auto ids = c["ids"].get<std::vector<std::int32_t>>();
    std::string expected;
    for (std::size_t i = 0; i < ids.size(); ++i) expected += (i ? " " : "") + std::to_string(ids[i]);
    const result enc = run("tokenize --model " + model + " --text '" + text + "'");
    INFO(text);
    REQUIRE(enc.status == 0);
    REQUIRE(enc.output == expected + "\n");
    const result dec = run("tokenize --model " + model + " --decode " + join_ids(ids));
    REQUIRE(dec.output == c["decoded"].get<std::string>() + "\n");
    ++checked;
  }
  REQUIRE(checked > 30);
}

TEST_CASE("qmr generate runs a checkpoint and its quantized copy", "[cli]") {
  qmr::testing::temp_dir dir;
  const auto model = data_dir() / "llama-gqa2";
  nlohmann::json ref;
  std::ifstream(model / "reference.json") >> ref;
  // The second reference prompt is "The answer is"; greedy decoding must print the decoded continuation.
  const auto greedy = ref["continuations"][1]["greedy"].get<std::vector<std::int32_t>>();
  const result expected = run("tokenize --model " + model.string() + " --decode " + join_ids(greedy));
  const result g = run("generate --model " + model.string() + " --prompt 'The answer is' --max-tokens 8 --quiet");
  INFO(g.output);
  REQUIRE(g.status == 0);
  REQUIRE(g.output == expected.output);

  REQUIRE(run("quantize --model " + model.string() + " --out " + (dir / "q").string() + " --format w4g32 --quiet").status == 0);
  const result q = run("generate --model " + (dir / "q").string() + " --prompt 'The answer is' --max-tokens 8");
  INFO(q.output);
  REQUIRE(q.status == 0);
  REQUIRE(q.output.find("tok/s decode") != std::string::npos);
  // Mapped instead of read into memory (the default): the same greedy text.
  const result mapped = run("generate --model " + model.string() + " --prompt 'The answer is' --max-tokens 8 --quiet --load map");
  CHECK(mapped.output == expected.output);
  const result bad_load = run("generate --model " + model.string() + " --prompt hi --load mmap");
  CHECK(bad_load.status != 0);
  CHECK(bad_load.output.find("--load") != std::string::npos);
  const result gemv_load = run("bench --kernel gemv --quant w4g128 --shape 64x64 --load copy");
  CHECK(gemv_load.status != 0);
  CHECK(gemv_load.output.find("--load applies to --kernel decode") != std::string::npos);
  const result chat = run("generate --model " + (dir / "q").string() + " --prompt hi --chat --max-tokens 4 --temperature 0.8 --seed 3 --quiet");
  REQUIRE(chat.status == 0);
  // --lut decodes through the table GEMV (AVX-512; elsewhere the default kernels): f32 numerics,
  // so the fixture's 8 greedy tokens come out the same.
  const std::string greedy_q = "generate --model " + (dir / "q").string() + " --prompt 'The answer is' --max-tokens 8 --quiet";
  const result plain = run(greedy_q);
  const result lut = run(greedy_q + " --lut");
  INFO(lut.output);
  REQUIRE(plain.status == 0);
  REQUIRE(lut.status == 0);
  REQUIRE(lut.output == plain.output);
}

namespace {

nlohmann::json read_json(const std::filesystem::path& p) {
  std::ifstream in(p);
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}

// The records of a JSON-lines file (qmr bench --json), one per line.
std::vector<nlohmann::json> read_json_lines(const std::filesystem::path& p) {
  std::ifstream in(p);
  REQUIRE(in.good());
  std::vector<nlohmann::json> records;
  for (std::string line; std::getline(in, line);) records.push_back(nlohmann::json::parse(line));
  return records;
}

std::string models_dir() {
  const char* root = std::getenv("QMR_MODELS_DIR");
  REQUIRE(root != nullptr);
  return std::string(root) + "/qmr-math";
}

}  // namespace

TEST_CASE("qmr eval on the bundled model: a sweep, identical on 1 and 2 threads, resumed from its journal", "[cli][eval]") {
  qmr::testing::temp_dir dir;
  // Level-1/2 answers are under 60 tokens; --max-tokens bounds the 2-bit model's rambling.
  const std::string common =
      "eval --model " + models_dir() + " --task synthetic --levels 1,2 --n 22 --seed 77 --max-tokens 96 --quiet";
  const result one = run(common + " --quant stored,w2g32 --threads 1 --out " + (dir / "one.json").string());
  INFO(one.output);
  REQUIRE(one.status == 0);
  REQUIRE(one.output.find("| weights | n | accuracy | L1 | L2 |") != std::string::npos);
  const result two = run(common + " --quant stored,w2g32 --threads 2 --out " + (dir / "two.json").string());
  REQUIRE(two.status == 0);
  const auto a = read_json(dir / "one.json"), b = read_json(dir / "two.json");
  REQUIRE(a["task"] == "synthetic");
  REQUIRE(a["runs"].size() == 2);
  for (int r = 0; r < 2; ++r) {
    const auto& ra = a["runs"][r];
    const auto& rb = b["runs"][r];
    REQUIRE(ra["n"] == 22);
    REQUIRE(ra["items"].size() == 22);
    for (const char* key : {"accuracy", "by_level", "by_type", "errors"}) REQUIRE(ra[key] == rb[key]);
    for (std::size_t i = 0; i < 22; ++i) REQUIRE(ra["items"][i]["output"] == rb["items"][i]["output"]);
    std::size_t wrong = 0, classified = 0;
    for (const auto& item : ra["items"]) {
      wrong += !item["correct"].get<bool>();
      classified += item["error_kind"] != "none";
      REQUIRE((item["error_kind"] == "none") == item["correct"].get<bool>());
    }
    REQUIRE(wrong == classified);
  }
  // The bundled model answers level-1/2 problems in bf16; 2-bit RTN must cost accuracy.
  REQUIRE(a["runs"][0]["weights"] == "stored");
  REQUIRE(a["runs"][0]["accuracy"].get<double>() >= 0.9);
  REQUIRE(a["runs"][1]["accuracy"].get<double>() < a["runs"][0]["accuracy"].get<double>());

  // Resume: keep the first 30 journal lines (all of "stored", part of "w2g32") and a torn last line.
  const auto journal = dir / "one.json.items.jsonl";
  std::vector<std::string> lines;
  {
    std::ifstream in(journal);
    for (std::string l; std::getline(in, l);) lines.push_back(l);
  }
  REQUIRE(lines.size() == 44);
  {
    std::ofstream out(journal, std::ios::trunc);
    for (int i = 0; i < 30; ++i) out << lines[static_cast<std::size_t>(i)] << '\n';
    out << lines[30].substr(0, lines[30].size() / 2);
  }
  const result resumed = run(common + " --quant stored,w2g32 --threads 2 --out " + (dir / "one.json").string());
  INFO(resumed.output);
  REQUIRE(resumed.status == 0);
  const auto c = read_json(dir / "one.json");
  for (int r = 0; r < 2; ++r)
    for (std::size_t i = 0; i < 22; ++i) REQUIRE(c["runs"][r]["items"][i]["output"] == a["runs"][r]["items"][i]["output"]);
  std::ifstream csv(dir / "one.json.csv");
  std::string header, row1;
  std::getline(csv, header);
  std::getline(csv, row1);
  REQUIRE(header.rfind("task,weights,n,metric,value", 0) == 0);
  REQUIRE(row1.rfind("synthetic,stored,22,accuracy,", 0) == 0);

  // --lut: the same precision decoded through the table GEMV where the CPU has AVX-512
  // (the run records which kernel decoded); f32 numerics, so 2-bit RTN still costs accuracy.
  const result lut = run(common + " --quant w2g32 --threads 2 --lut --out " + (dir / "lut.json").string());
  INFO(lut.output);
  REQUIRE(lut.status == 0);
  const auto l = read_json(dir / "lut.json");
  REQUIRE(l["n"] == 22);
  REQUIRE(l["efficiency"]["decode_kernel"] == (qmr::simd::lut_gemv_fast() ? "lut" : "simd"));
  REQUIRE(l["accuracy"].get<double>() < a["runs"][0]["accuracy"].get<double>());

  // A journal from other arguments is refused, naming the file.
  const result other = run("eval --model " + models_dir() + " --levels 1 --n 11 --seed 78 --quiet --out " + (dir / "one.json").string());
  REQUIRE(other.status != 0);
  REQUIRE(other.output.find("one.json.items.jsonl") != std::string::npos);
}

TEST_CASE("qmr eval prompts in the chain-of-thought style and as ChatML turns", "[cli][eval]") {
  qmr::testing::temp_dir dir;
  const result r = run("eval --model " + models_dir() + " --levels 1 --n 3 --style cot --chat --max-tokens 24 --quiet --out " +
                       (dir / "c.json").string());
  INFO(r.output);
  REQUIRE(r.status == 0);
  const auto j = read_json(dir / "c.json");
  REQUIRE(j["items"].size() == 3);
  const std::string prompt = j["items"][0]["prompt"];
  REQUIRE(prompt.rfind("<|im_start|>user\nQ: ", 0) == 0);
  REQUIRE(prompt.size() > 40);
  REQUIRE(prompt.substr(prompt.size() - 40).find("\n\nA:<|im_end|>\n<|im_start|>assistant\n") != std::string::npos);
}

TEST_CASE("qmr eval rejects bad arguments clearly", "[cli][eval]") {
  const result task = run("eval --model " + models_dir() + " --task nope");
  REQUIRE(task.status != 0);
  REQUIRE(task.output.find("'nope' is not one of") != std::string::npos);
  const result quant = run("eval --model " + models_dir() + " --quant stored,w7g128");
  REQUIRE(quant.status != 0);
  REQUIRE(quant.output.find("w7g128") != std::string::npos);
  for (const char* bad : {"stored+clip", "w3g128+clip+clip", "w3g128+a8+clip", "w3g128+clop"}) {
    const result r = run("eval --model " + models_dir() + " --quant " + bad);
    INFO(bad << ": " << r.output);
    REQUIRE(r.status != 0);
    REQUIRE(r.output.find(std::string("'") + bad + "'") != std::string::npos);
  }
  const result level = run("eval --model " + models_dir() + " --levels 1,9");
  REQUIRE(level.status != 0);
  REQUIRE(level.output.find("9") != std::string::npos);
  const result style = run("eval --model " + models_dir() + " --style nope");
  REQUIRE(style.status != 0);
  const result data = run("eval --model " + models_dir() + " --task gsm8k");
  REQUIRE(data.status != 0);
  REQUIRE(data.output.find("--data") != std::string::npos);
}

TEST_CASE("qmr reads integer options as decimal, in range, and names the option it rejects", "[cli]") {
  qmr::testing::temp_dir dir;
  const std::string out = " --out " + (dir / "p.jsonl").string();
  // CLI11 read integers in base 0 (010 was 8) and saturated or wrapped unsigned ones silently.
  const result octal = run("synth --n 2 --seed 010" + out);
  INFO(octal.output);
  REQUIRE(octal.status == 0);
  REQUIRE(octal.output.find("seed 10,") != std::string::npos);
  for (const char* bad : {"--seed 99999999999999999999999", "--seed -5", "--seed 0x10", "--n -1", "--max-operand 1e3"}) {
    const result r = run(std::string("synth --n 2 ") + bad + out);
    INFO(bad << ": " << r.output);
    REQUIRE(r.status != 0);
    REQUIRE(r.output.find(std::string(bad).substr(0, std::string(bad).find(' '))) != std::string::npos);
  }
  // Counts that were silently 1 or 0%, an int overflow, std::bad_alloc, or a hang of spinning threads.
  const auto model = data_dir() / "llama-gqa2";
  const std::string gen = "generate --model " + model.string() + " --prompt 'The answer is' --quiet";
  for (const char* bad : {"--threads 0", "--threads 100000", "--max-tokens 0", "--max-tokens -3"}) {
    const result r = run(gen + " " + bad);
    INFO(bad << ": " << r.output);
    REQUIRE(r.status != 0);
    REQUIRE(r.output.find(std::string(bad).substr(0, std::string(bad).find(' '))) != std::string::npos);
  }
  for (const char* bad : {"--max-tokens 0", "--max-tokens -5", "--n 0", "--threads 0", "--shots -1", "--max-tokens 2147483647"}) {
    const result r = run("eval --model " + models_dir() + " " + bad);
    INFO(bad << ": " << r.output);
    REQUIRE(r.status != 0);
    REQUIRE(r.output.find(std::string(bad).substr(0, std::string(bad).find(' '))) != std::string::npos);
  }
  const result window = run("eval --model " + models_dir() + " --task perplexity --data x.txt --window 0");
  REQUIRE(window.status != 0);
  REQUIRE(window.output.find("--window") != std::string::npos);
  // The session stops at the model's positions (the fixture's 512) instead of allocating 2^31 of them...
  const result huge = run("generate --model " + model.string() + " --prompt 'The answer is' --max-tokens 2147483647");
  INFO(huge.output);
  REQUIRE(huge.status == 0);
  REQUIRE(huge.output.find("stopped: ") != std::string::npos);
  // ... and a prompt longer than them is an error naming both.
  std::string long_prompt;
  for (int i = 0; i < 600; ++i) long_prompt += " the answer";
  const result too_long = run("generate --model " + model.string() + " --prompt '" + long_prompt + "' --max-tokens 4");
  INFO(too_long.output);
  REQUIRE(too_long.status == 1);
  REQUIRE(too_long.output.find("max_position_embeddings") != std::string::npos);
  // qmr bench's counts too, refused before anything is measured.
  for (const char* bad : {"--rounds 0x10", "--tokens -2", "--runs 1e3"}) {
    const result r = run(std::string("bench --kernel gemv --quant w4g128 ") + bad);
    INFO(bad << ": " << r.output);
    REQUIRE(r.status != 0);
    REQUIRE(r.output.find(std::string(bad).substr(0, std::string(bad).find(' '))) != std::string::npos);
    REQUIRE(r.output.find("read GB/s") == std::string::npos);
  }
  // No bandwidth measurement for nothing to time.
  const result none = run("bench --quant ''");
  REQUIRE(none.status == 1);
  REQUIRE(none.output.find("--quant: no weight format given") != std::string::npos);
  REQUIRE(none.output.find("read GB/s") == std::string::npos);
}

TEST_CASE("qmr --device cuda fails clearly without CUDA or a GPU, and --device takes only cpu or cuda", "[cli][device]") {
  // Without nvcc at configure time, or without a GPU (or driver) at run time, each command must
  // end in an error that says which, with exit status 1 (not a crash); with both, it runs.
  const std::string model = models_dir();
  const std::vector<std::string> gpu_commands = {
      "generate --model " + model + " --prompt 'Question: 1+1?' --max-tokens 2 --quiet --device cuda",
      "eval --model " + model + " --n 2 --max-tokens 8 --quiet --device cuda",
      "bench --device cuda --kernel gemv --quant w4g128 --shape 256x256 --batch 1,2 --runs 2 --rotate-mb 1",
      "bench --device cuda --kernel gemv --lanes --quant w4g128s --shape 256x256 --batch 1 --runs 2 --rotate-mb 1",
      "bench --device cuda --kernel gemv --split --quant w4g128s --shape 256x512 --batch 1,16 --runs 2 --rotate-mb 1"};
  for (const std::string& cmd : gpu_commands) {
    const result r = run(cmd);
    INFO(cmd << "\n" << r.output);
    if (r.status == 0) continue;  // a CUDA build on a GPU machine
    REQUIRE(r.status == 1);
    const bool no_cuda = r.output.find("--device cuda: this qmr was built without CUDA (nvcc not found at configure time)") !=
                         std::string::npos;
    const bool no_gpu = r.output.find("--device cuda: no usable CUDA device") != std::string::npos ||
                        r.output.find("--device cuda: no CUDA device found") != std::string::npos;
    REQUIRE((no_cuda || no_gpu));
  }
  // Activation quantization is CPU-only: rejected before any device or model is touched.
  const result a8 = run("eval --model " + model + " --n 2 --quant w8g128+a8 --device cuda");
  INFO(a8.output);
  REQUIRE(a8.status == 1);
  REQUIRE(a8.output.find("'w8g128+a8': activation quantization (+a8/+a4) runs only on the CPU") != std::string::npos);
  // Argument errors of the GPU benchmark, refused before any device is touched: no GPU GEMM; the
  // lane-layout kernel is a GPU GEMV of 1-8 rows, the split-K kernel a GPU GEMV, and one run
  // times one kernel.
  const std::pair<std::string, std::string> refused[] = {
      {"bench --device cuda --kernel gemm --shape 64x256", "--kernel gemm has no GPU benchmark"},
      {"bench --lanes --kernel gemv --shape 64x256", "--lanes: the lane-layout kernel is a GPU GEMV"},
      {"bench --device cuda --lanes --kernel gemv --shape 64x256 --batch 16", "with --lanes takes 1-8 rows of X"},
      {"bench --split --kernel gemv --shape 64x256", "--split: the split-K kernel is a GPU GEMV"},
      {"bench --device cuda --split --lanes --kernel gemv --shape 64x256 --batch 1", "--split and --lanes: two kernels"}};
  for (const auto& [cmd, message] : refused) {
    const result r = run(cmd);
    INFO(cmd << "\n" << r.output);
    REQUIRE(r.status == 1);
    REQUIRE(r.output.find(message) != std::string::npos);
  }
  // decode's --prompt (the context before the timed tokens) takes 1 or more tokens: refused before any model is written.
  const result no_prompt = run("bench --kernel decode --quant w4g128 --prompt 0");
  INFO(no_prompt.output);
  REQUIRE(no_prompt.status != 0);
  REQUIRE(no_prompt.status != -1);
  REQUIRE(no_prompt.output.find("--prompt") != std::string::npos);
  const std::vector<std::string> bogus_commands = {"generate --model " + model + " --prompt hi --device bogus",
                                                   "eval --model " + model + " --device bogus",
                                                   "bench --device bogus --shape 64x256"};
  for (const std::string& cmd : bogus_commands) {
    const result r = run(cmd);
    INFO(cmd << "\n" << r.output);
    REQUIRE(r.status != 0);
    REQUIRE(r.status != -1);  // exited, not killed
    REQUIRE(r.output.find("--device") != std::string::npos);
    REQUIRE(r.output.find("bogus") != std::string::npos);
  }
}

TEST_CASE("qmr eval runs GSM8K, ARC and LAMBADA files and perplexity on text", "[cli][eval]") {
  const char* data = std::getenv("QMR_TEST_DATA");
  REQUIRE(data != nullptr);
  qmr::testing::temp_dir dir;
  const std::string gsm = std::string(data) + "/tasks/gsm8k_sample.jsonl";
  const result g = run("eval --model " + models_dir() + " --task gsm8k --data " + gsm +
                       " --shots 1 --limit 1 --max-tokens 40 --quiet --out " + (dir / "g.json").string());
  INFO(g.output);
  REQUIRE(g.status == 0);
  const auto j = read_json(dir / "g.json");
  REQUIRE(j["n"] == 1);
  REQUIRE(j["items"][0]["prompt"].get<std::string>().find("Question: ") == 0);
  REQUIRE(j["items"][0]["prompt"].get<std::string>().find("\n\nQuestion: ") != std::string::npos);

  std::ofstream(dir / "text.txt") << "Tom buys 3*4=<<3*4=12>>12 apples.\n#### 12\n";
  const result p = run("eval --model " + models_dir() + " --task perplexity --data " + (dir / "text.txt").string() +
                       " --quant stored,w3g32,w3g32+clip --window 8 --quiet --out " + (dir / "p.json").string());
  INFO(p.output);
  REQUIRE(p.status == 0);
  const auto pj = read_json(dir / "p.json");
  const double stored = pj["runs"][0]["token_perplexity"], w3 = pj["runs"][1]["token_perplexity"];
  REQUIRE(stored > 1.0);
  REQUIRE(stored < 10.0);  // the model was trained on exactly this kind of text
  REQUIRE(w3 != stored);
  // +clip: group scales by the MSE clip search, so other 3-bit weights than min-max RTN's.
  REQUIRE(pj["runs"][2]["weights"] == "w3g32+clip");
  REQUIRE(pj["runs"][2]["token_perplexity"].get<double>() != w3);

  const result arc = run("eval --model " + models_dir() + " --task arc --data " + std::string(data) +
                         "/tasks/arc_sample.jsonl --quant stored,w4g32 --quiet --out " + (dir / "a.json").string());
  INFO(arc.output);
  REQUIRE(arc.status == 0);
  REQUIRE(arc.output.find("| weights | n | acc | acc_norm |") != std::string::npos);
  const auto aj = read_json(dir / "a.json");
  REQUIRE(aj["runs"][0]["n"].get<int>() > 0);
  REQUIRE(aj["runs"][0]["items"][0]["logprobs"].size() >= 2);

  const result lam = run("eval --model " + models_dir() + " --task lambada --data " + std::string(data) +
                         "/tasks/lambada_sample.jsonl --limit 4 --quiet --out " + (dir / "l.json").string());
  INFO(lam.output);
  REQUIRE(lam.status == 0);
  const auto lj = read_json(dir / "l.json");
  REQUIRE(lj["weights"] == "stored");
  REQUIRE(lj["perplexity"].get<double>() > 1.0);
}

TEST_CASE("qmr bench prints a table and writes one JSON record per measurement", "[cli][bench]") {
  qmr::testing::temp_dir dir;
  const std::string json = (dir / "gemv.jsonl").string();
  const result gemv = run("bench --kernel gemv --quant w4g32,bf16 --shape 64x256,40x512 --act f32,a8 --threads 1 "
                          "--rotate-mb 1 --seconds 0.01 --json " + json);
  INFO(gemv.output);
  REQUIRE(gemv.status == 0);
  REQUIRE(gemv.output.find("| gemv | w4g32 | a8 | 40x512 | 1 | 1 |") != std::string::npos);
  const std::vector<nlohmann::json> records = read_json_lines(json);
  REQUIRE(records.size() == 6);  // 2 shapes x (w4g32 f32 and a8, bf16 f32)
  for (const auto& r : records) {
    for (const char* key : {"kernel", "quant", "act", "m", "k", "batch", "threads", "seconds", "gbps", "bound_gbps", "fraction"})
      REQUIRE(r.contains(key));
    REQUIRE(r["kernel"] == "gemv");
    REQUIRE(r["gbps"].get<double>() > 0);
    REQUIRE(r["fraction"].get<double>() == Approx(r["gbps"].get<double>() / r["bound_gbps"].get<double>()));
  }
  REQUIRE(records[0]["m"] == 64);
  REQUIRE(records[0]["k"] == 256);

  const std::string gemm_json = (dir / "gemm.jsonl").string();
  const result gemm = run("bench --kernel gemm --quant w4g32 --shape 64x256 --batch 16 --act a8 --threads 1 "
                          "--seconds 0.01 --json " + gemm_json);
  INFO(gemm.output);
  REQUIRE(gemm.status == 0);
  std::ifstream gin(gemm_json);
  std::string line;
  REQUIRE(std::getline(gin, line));
  const auto g = nlohmann::json::parse(line);
  REQUIRE(g["batch"] == 16);
  REQUIRE(g["gflops"].get<double>() > 0);
  REQUIRE(g["fraction"].get<double>() == Approx(g["gflops"].get<double>() / g["peak_gflops"].get<double>()));

  const result bad_act = run("bench --act a4 --shape 64x256");
  REQUIRE(bad_act.status == 1);
  REQUIRE(bad_act.output.find("--act 'a4': expected f32, a8 or lut") != std::string::npos);
  // lut: the table GEMV (batch 1) and lut_gemm (batch 3) over the repacked copies, where the CPU has AVX-512BW;
  // elsewhere (and for 8-bit or dense weights) a row that says so, and no record.
  const std::string lut_json = (dir / "lut.jsonl").string();
  const result lut = run("bench --kernel gemv --quant w3g32,w8g32 --shape 64x256 --batch 1,3 --act lut --threads 1 "
                         "--rotate-mb 1 --seconds 0.01 --json " + lut_json);
  INFO(lut.output);
  REQUIRE(lut.status == 0);
  REQUIRE(lut.output.find("| gemv | w8g32 | lut | 64x256 | - | (not 2-6-bit, or no AVX-512BW") != std::string::npos);
  const std::vector<nlohmann::json> lut_records = read_json_lines(lut_json);
  if (qmr::simd::lut_gemv_fast()) {
    REQUIRE(lut_records.size() == 2);  // w3g32 at batch 1 and 3
    for (const auto& r : lut_records) {
      REQUIRE(r["act"] == "lut");
      REQUIRE(r["quant"] == "w3g32");
      REQUIRE(r["gbps"].get<double>() > 0);
    }
    REQUIRE(lut_records[1]["batch"] == 3);
  } else {
    REQUIRE(lut_records.empty());
    REQUIRE(lut.output.find("| gemv | w3g32 | lut | 64x256 | - |") != std::string::npos);
  }
  const result bad_shape = run("bench --shape 64");
  REQUIRE(bad_shape.status == 1);
  REQUIRE(bad_shape.output.find("shape '64': expected NxK") != std::string::npos);
  const result bad_batch = run("bench --kernel gemv --batch 9 --shape 64x256");
  REQUIRE(bad_batch.status == 1);
  REQUIRE(bad_batch.output.find("gemv batch is 1-8") != std::string::npos);
}

TEST_CASE("qmr quantize warns when the model predicts its calibration set worse than a uniform guess, and takes --damp", "[cli]") {
  const char* root = std::getenv("QMR_MODELS_DIR");
  REQUIRE(root != nullptr);
  const std::filesystem::path model = std::filesystem::path(root) / "qmr-math";
  const std::filesystem::path text = std::filesystem::path(root).parent_path() / "data" / "calibration" / "generic_text.txt";
  qmr::testing::temp_dir dir;
  const std::string common = "quantize --model " + model.string() + " --method gptq --format w2g64 --calib-n 2 --calib-len 128 --quiet";

  const result on_text = run(common + " --calib " + text.string() + " --damp 0.1 --out " + (dir / "text").string());
  INFO(on_text.output);
  REQUIRE(on_text.status == 0);
  CHECK(on_text.output.find("damp 0.1") != std::string::npos);
  CHECK(on_text.output.find("calibration: the unquantized model's NLL on") != std::string::npos);
  CHECK(on_text.output.find("warning: the model predicts its calibration set worse than a uniform guess") != std::string::npos);
  std::ifstream in(dir / "text" / "qmr_quantization.json");
  const auto j = nlohmann::json::parse(in);
  CHECK(j["gptq_damp"].get<double>() == 0.1);
  CHECK(j["calibration_nll"].get<double>() > j["calibration_uniform_nll"].get<double>());

  const result on_math = run(common + " --calib synth --out " + (dir / "synth").string());
  INFO(on_math.output);
  REQUIRE(on_math.status == 0);
  CHECK(on_math.output.find("damp 0.01") != std::string::npos);
  CHECK(on_math.output.find("calibration: the unquantized model's NLL on") != std::string::npos);
  CHECK(on_math.output.find("warning:") == std::string::npos);

  const result negative = run(common + " --damp -1 --out " + (dir / "neg").string());
  CHECK(negative.status != 0);
  CHECK(negative.output.find("--damp") != std::string::npos);
}

TEST_CASE("qmr quantize --method awq takes --awq-pairs and --awq-clip, records them, and names a bad pair", "[cli]") {
  const char* root = std::getenv("QMR_MODELS_DIR");
  REQUIRE(root != nullptr);
  const std::filesystem::path model = std::filesystem::path(root) / "qmr-math";
  qmr::testing::temp_dir dir;
  const std::string common = "quantize --model " + model.string() + " --method awq --format w2g64 --calib synth --calib-n 2 --calib-len 64 --quiet";
  const result norm = run(common + " --awq-pairs norm --awq-clip false --out " + (dir / "norm").string());
  INFO(norm.output);
  REQUIRE(norm.status == 0);
  CHECK(norm.output.find("scale pairs qkv,gate_up, clip search off") != std::string::npos);
  std::ifstream in(dir / "norm" / "qmr_quantization.json");
  const auto j = nlohmann::json::parse(in);
  CHECK(j["scale_pairs"].get<std::string>() == "qkv,gate_up");
  CHECK(j["awq_clip"].get<bool>() == false);
  // Every down_proj stays plain RTN (no scales, no clip) and its report line says so; gate_proj is scaled.
  int down_lines = 0, gate_awq = 0;
  std::size_t start = 0;
  while (start < norm.output.size()) {
    const std::size_t end = std::min(norm.output.find('\n', start), norm.output.size());
    const std::string line = norm.output.substr(start, end - start);
    if (line.find("down_proj.weight ") != std::string::npos) {
      ++down_lines;
      CHECK(line.find(" w2g64     rtn ") != std::string::npos);
    }
    if (line.find("gate_proj.weight ") != std::string::npos && line.find(" awq ") != std::string::npos) ++gate_awq;
    start = end + 1;
  }
  CHECK(down_lines == 10);  // the bundled model's layers
  CHECK(gate_awq == 10);

  const result bad = run(common + " --awq-pairs qkv,up --out " + (dir / "bad").string());
  CHECK(bad.status != 0);
  CHECK(bad.output.find("'up' is not one of qkv, o, gate_up, down") != std::string::npos);

  // qmr eval records each calibrated run's settings in its results, defaults included; RTN's run has none.
  const result ev = run("eval --model " + model.string() + " --task synthetic --n 3 --seed 1000 --threads 1 --quant "
                        "w2g64,awq:w2g64 --calib synth --calib-n 2 --calib-len 64 --awq-pairs norm --out " +
                        (dir / "eval.json").string());
  INFO(ev.output);
  REQUIRE(ev.status == 0);
  std::ifstream ein(dir / "eval.json");
  const auto e = nlohmann::json::parse(ein);
  REQUIRE(e["runs"].size() == 2);
  CHECK_FALSE(e["runs"][0].contains("calibration"));
  const auto& cal = e["runs"][1]["calibration"];
  CHECK(cal["source"].get<std::string>() == "synth");
  CHECK(cal["n"].get<int>() == 2);
  CHECK(cal["awq_pairs"].get<std::string>() == "qkv,gate_up");
  CHECK(cal["awq_clip"].get<bool>() == true);
  CHECK(cal["damp"].get<double>() == 0.01);
}

TEST_CASE("qmr inspect lists a GGUF file's metadata and tensors, and names a broken one", "[cli]") {
  qmr::testing::temp_dir dir;
  // GGUF v3: one metadata entry (general.architecture = "llama"), one Q8_0 tensor "w" of
  // ggml dims {32, 2} (row-major [2, 32], two 34-byte blocks) at offset 0 of the data section.
  std::string b;
  const auto put = [&b](auto v) { b.append(reinterpret_cast<const char*>(&v), sizeof v); };
  const auto str = [&](const std::string& s) {
    put(static_cast<std::uint64_t>(s.size()));
    b += s;
  };
  put(0x46554747u);
  put(3u);
  put(static_cast<std::uint64_t>(1));
  put(static_cast<std::uint64_t>(1));
  str("general.architecture");
  put(8u);
  str("llama");
  str("w");
  put(2u);
  put(static_cast<std::uint64_t>(32));
  put(static_cast<std::uint64_t>(2));
  put(8u);
  put(static_cast<std::uint64_t>(0));
  b.resize((b.size() + 31) / 32 * 32, '\0');
  const std::size_t data_at = b.size();
  b.append(68, '\x01');
  std::ofstream(dir / "m.gguf", std::ios::binary) << b;
  const result ok = run("inspect " + (dir / "m.gguf").string());
  INFO(ok.output);
  REQUIRE(ok.status == 0);
  CHECK(ok.output.find("GGUF version 3, alignment 32, 1 metadata entries") != std::string::npos);
  CHECK(ok.output.find("general.architecture (string) = \"llama\"") != std::string::npos);
  CHECK(ok.output.find("Q8_0") != std::string::npos);
  CHECK(ok.output.find("[2, 32]") != std::string::npos);
  CHECK(ok.output.find("1 tensors, 64 parameters") != std::string::npos);
  const result js = run("inspect --json " + (dir / "m.gguf").string());
  REQUIRE(js.status == 0);
  const nlohmann::json j = nlohmann::json::parse(js.output);
  CHECK(j["tensors"][0]["bytes"] == 68);
  CHECK(j["tensors"][0]["offset"] == data_at);
  CHECK(j["metadata"]["general.architecture"] == "llama");

  b.resize(data_at + 40);  // the tensor's second block cut short
  std::ofstream(dir / "cut.gguf", std::ios::binary) << b;
  const result cut = run("inspect " + (dir / "cut.gguf").string());
  REQUIRE(cut.status == 1);
  CHECK(cut.output.find("cut.gguf") != std::string::npos);
  CHECK(cut.output.find("tensor \"w\": bytes [0, 68)") != std::string::npos);
}

TEST_CASE("qmr sensitivity measures the bundled model unit by unit, writes JSON, CSV and SVG, resumes, and names bad options", "[cli]") {
  qmr::testing::temp_dir dir;
  const std::string out = (dir / "sens.json").string();
  const std::string args = "sensitivity --n 4 --units layers,components,all --quant w2g64 --threads 2 --out " + out;
  const result r = run(args);
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(r.output.find("[18/18] w2g64 all") != std::string::npos);
  CHECK(r.output.find("w2g64, by layer:") != std::string::npos);
  nlohmann::json j;
  std::ifstream(out) >> j;
  REQUIRE(j["units"].size() == 10 + 7 + 1);
  CHECK(j["settings"]["n"] == 4);
  CHECK(j["reference"]["kl"] == 0.0);
  double worst_layer = 0;
  for (const auto& u : j["units"]) {
    CHECK(u["format"] == "w2g64");
    CHECK(u["kl"].get<double>() > 0.0);
    if (u["kind"] == "layer") worst_layer = std::max(worst_layer, u["kl"].get<double>());
  }
  CHECK(j["units"].back()["unit"] == "all");
  CHECK(j["units"].back()["kl"].get<double>() > worst_layer);  // every layer at once hurts more than any one
  CHECK(std::filesystem::exists(dir / "sens.csv"));
  CHECK(!std::filesystem::exists(dir / "sens_w2g64.svg"));  // heatmaps are of single linears

  // The same settings again: every unit is taken from the file, none measured.
  const result again = run(args);
  INFO(again.output);
  REQUIRE(again.status == 0);
  CHECK(again.output.find("[1/18]") == std::string::npos);
  nlohmann::json j2;
  std::ifstream(out) >> j2;
  CHECK(j2["units"] == j["units"]);

  const result lin = run("sensitivity --n 2 --units linears --quant w3g128 --out " + (dir / "lin.json").string());
  INFO(lin.output);
  REQUIRE(lin.status == 0);
  CHECK(lin.output.find("[70/70] w3g128 layer 9 down") != std::string::npos);
  CHECK(std::filesystem::exists(dir / "lin_w3g128.svg"));

  // A plan: the linears that gain most per bit at w4g128, the rest w2g64, within 2.75 bits; qmr eval runs it.
  const std::string plan = (dir / "p.plan").string();
  const result pl = run("sensitivity --n 2 --units linears --quant w2g64,w4g128 --plan-bits 2.75 --plan-out " + plan + " --quiet");
  INFO(pl.output);
  REQUIRE(pl.status == 0);
  CHECK(pl.output.find("bits per weight (budget 2.7500)") != std::string::npos);
  const result ev = run("eval --task synthetic --n 3 --quant @" + plan);
  INFO(ev.output);
  CHECK(ev.status == 0);
  const result one = run("sensitivity --n 2 --units linears --quant w2g64 --plan-bits 2.75 --plan-out " + plan);
  CHECK(one.status != 0);
  CHECK(one.output.find("--plan-out needs two --quant formats") != std::string::npos);

  // --raise: all layer linears at w2g64, each raised to w4g128 alone; the plan from those gains; resumable.
  const std::string raise_json = (dir / "raise.json").string(), raise_plan = (dir / "r.plan").string();
  const std::string raise_args = "sensitivity --n 1 --units linears,all --quant w2g64,w4g128 --raise --plan-bits 2.5 --plan-out " + raise_plan +
                                 " --out " + raise_json;
  const result ra = run(raise_args);
  INFO(ra.output);
  REQUIRE(ra.status == 0);
  CHECK(ra.output.find("[raise 71/71] w4g128 in w2g64: layer 9 down") != std::string::npos);
  CHECK(ra.output.find("each linear raised to w4g128 alone") != std::string::npos);
  nlohmann::json rj;
  std::ifstream(raise_json) >> rj;
  REQUIRE(rj["units"].size() == 142 + 71);
  double background = -1;
  for (const auto& u : rj["units"])
    if (u.value("unit", "") == "background") background = u["kl"].get<double>();
  for (const auto& u : rj["units"])
    if (u["kind"] == "all" && u["format"] == "w2g64" && !u.contains("context"))
      CHECK(u["kl"].get<double>() == background);  // the 'all' unit at w2g64 is the background
  CHECK(background > 0.0);
  std::ifstream plan_in(raise_plan);
  const std::string plan_text((std::istreambuf_iterator<char>(plan_in)), {});
  CHECK(plan_text.find("--raise") != std::string::npos);
  CHECK(plan_text.find("w4g128") != std::string::npos);
  const result ra2 = run(raise_args);
  CHECK(ra2.status == 0);
  CHECK(ra2.output.find("[raise 1/71]") == std::string::npos);  // resumed, nothing measured
  // --rounds 2: round 1 is the run above (resumed); its raises join the background of round 2,
  // which measures every other linear again, and the plan keeps round 1's raises.
  const std::string rounds_plan = (dir / "r2.plan").string();
  const result rr = run("sensitivity --n 1 --units linears,all --quant w2g64,w4g128 --raise --rounds 2 --plan-bits 2.5 --plan-out " +
                        rounds_plan + " --out " + raise_json);
  INFO(rr.output);
  REQUIRE(rr.status == 0);
  CHECK(rr.output.find("in w2g64 round 1:") == std::string::npos);  // round 1 resumed
  const auto at = rr.output.find("round 1 of 2: ");
  REQUIRE(at != std::string::npos);
  const int k1 = std::stoi(rr.output.substr(at + 14));
  CHECK(k1 > 0);
  CHECK(rr.output.find("[raise " + std::to_string(71 - k1) + "/" + std::to_string(71 - k1) + "] w4g128 in w2g64 round 2:") != std::string::npos);
  CHECK(rr.output.find("[raise " + std::to_string(72 - k1) + "/") == std::string::npos);
  nlohmann::json rj2;
  std::ifstream(raise_json) >> rj2;
  int round2 = 0;
  for (const auto& u : rj2["units"])
    if (u.value("context", "").rfind("w2g64 + ", 0) == 0) ++round2;
  CHECK(round2 == 71 - k1);
  std::ifstream rounds_in(rounds_plan);
  const std::string rounds_text((std::istreambuf_iterator<char>(rounds_in)), {});
  CHECK(rounds_text.find("--rounds 2") != std::string::npos);
  CHECK(run("sensitivity --n 1 --units linears --quant w2g64,w4g128 --rounds 2").output.find("--rounds needs --raise and --plan-out") !=
        std::string::npos);
  CHECK(run("sensitivity --n 1 --units layers --quant w2g64,w4g128 --raise").output.find("--raise needs two --quant formats and --units with linears") !=
        std::string::npos);

  const result bad_units = run("sensitivity --n 2 --units rows");
  CHECK(bad_units.status != 0);
  CHECK(bad_units.output.find("'rows' is not linears, layers, components or all") != std::string::npos);
  const result bad_quant = run("sensitivity --n 2 --quant bf16");
  CHECK(bad_quant.status != 0);
  CHECK(bad_quant.output.find("bf16 is not a quantized format") != std::string::npos);
  const result bad_n = run("sensitivity --n 0");
  CHECK(bad_n.status != 0);
}

TEST_CASE("qmr stats prints and writes activation and attention statistics per layer", "[cli]") {
  qmr::testing::temp_dir dir;
  const std::string out = (dir / "stats.json").string();
  const result r = run("stats --n 3 --threads 2 --out " + out);
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(r.output.find("| 9 | down input |") != std::string::npos);
  CHECK(r.output.find("attention entropy") != std::string::npos);
  nlohmann::json j;
  std::ifstream(out) >> j;
  REQUIRE(j["points"].size() == 10 * 5);
  REQUIRE(j["attention"].size() == 10);
  for (const auto& p : j["points"]) {
    CHECK(p["rms"].get<double>() > 0.0);
    CHECK(p["a4_error"].get<double>() > p["a8_error"].get<double>());
  }
  const result bad = run("stats --n 0");
  CHECK(bad.status != 0);
}

TEST_CASE("qmr report turns a folder of eval and stats results into Markdown, HTML and charts, and names a broken file", "[cli]") {
  qmr::testing::temp_dir dir;
  const result ev = run("eval --task synthetic --n 22 --seed 1000 --threads 2 --quant stored,w2g64 --out " + (dir / "sweep.json").string());
  INFO(ev.output);
  REQUIRE(ev.status == 0);
  const result st = run("stats --n 2 --threads 2 --out " + (dir / "stats.json").string());
  REQUIRE(st.status == 0);
  {
    nlohmann::json sweep;
    std::ifstream(dir / "sweep.json") >> sweep;
    // qmr eval records the bits per weight of the layer linears for the report's axis.
    CHECK(sweep["runs"][0]["efficiency"]["layer_bits_per_weight"].get<double>() == Approx(16.0));
    CHECK(sweep["runs"][1]["efficiency"]["layer_bits_per_weight"].get<double>() == Approx(2.28125));
  }
  std::ofstream(dir / "notes.json") << "{\"hello\": 1}";  // not a results file: skipped, said so
  std::ofstream(dir / "ppl.json") << "{\"task\": \"perplexity\", \"runs\": [{\"weights\": \"stored\"}]}";  // no per-problem records
  const result r = run("report --dir " + dir.path().string());
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(r.output.find("notes.json is not a results file") != std::string::npos);
  CHECK(r.output.find("skipping " + (dir / "ppl.json").string()) != std::string::npos);
  CHECK(r.output.find("- Set 1: ") != std::string::npos);
  CHECK(r.output.find("activation outlier") != std::string::npos);
  std::ifstream md_in(dir / "report.md"), html_in(dir / "report.html");
  const std::string md((std::istreambuf_iterator<char>(md_in)), {}), html((std::istreambuf_iterator<char>(html_in)), {});
  CHECK(md.find("## Findings") != std::string::npos);
  CHECK(md.find("| w2g64 | 2.28 |") != std::string::npos);
  std::size_t figures = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir / "charts")) figures += e.path().extension() == ".svg";
  CHECK(figures == 5);  // accuracy/bits, levels, types; two activation charts
  CHECK(html.find("<figure>\n<svg") != std::string::npos);

  // A broken eval file: the error names it and the field.
  nlohmann::json bad;
  std::ifstream(dir / "sweep.json") >> bad;
  bad["runs"][1]["items"][3]["correct"] = "maybe";
  std::ofstream(dir / "bad.json") << bad.dump();
  const result b = run("report --eval " + (dir / "bad.json").string() + " --out " + (dir / "o").string());
  CHECK(b.status != 0);
  CHECK(b.output.find("bad.json") != std::string::npos);
  CHECK(b.output.find("runs[1].items[3].correct") != std::string::npos);
  CHECK(run("report").status != 0);
  CHECK(run("report --dir " + (dir / "missing").string()).status != 0);
}

TEST_CASE("qmr eval and quantize calibrate on the model's own samples with --calib self", "[cli]") {
  const result r = run("eval --task synthetic --n 5 --threads 2 --quant awq:w3g128 --calib self --calib-n 2 --calib-len 32");
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(r.output.find("calibrating on 2 x 32 tokens from self") != std::string::npos);
  CHECK(r.output.find("NLL on self-generated (seed 5, from token 0)") != std::string::npos);
  qmr::testing::temp_dir dir;
  const result q = run("quantize --method gptq --quant w4g128 --calib self --calib-n 2 --calib-len 32 --quiet --out " + (dir / "q").string());
  INFO(q.output);
  CHECK(q.status == 0);
  CHECK(std::filesystem::exists(dir / "q" / "qmr_quantization.json"));
}
