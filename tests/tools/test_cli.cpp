// End-to-end tests of the qmr binary: inspect, quantize, inspect again, and its errors.
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "../temp_dir.hpp"
#include "qmr/io/synthetic_checkpoint.hpp"

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
