// Writes a random-weight Llama/Qwen2-shaped checkpoint directory (config.json + bf16 safetensors) to try qmr on without downloading a model.
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include <qmr/io/synthetic_checkpoint.hpp>

int main(int argc, char** argv) {
  CLI::App app{"Write a random-weight checkpoint with real tensor names and shapes"};
  std::string out;
  qmr::io::synthetic_config c;
  app.add_option("out", out, "output directory")->required();
  app.add_option("--hidden", c.hidden)->capture_default_str();
  app.add_option("--intermediate", c.intermediate)->capture_default_str();
  app.add_option("--layers", c.layers)->capture_default_str();
  app.add_option("--heads", c.heads)->capture_default_str();
  app.add_option("--kv-heads", c.kv_heads)->capture_default_str();
  app.add_option("--vocab", c.vocab)->capture_default_str();
  app.add_option("--shards", c.shards, "number of safetensors shards")->capture_default_str();
  app.add_option("--seed", c.seed)->capture_default_str();
  app.add_flag("--qkv-bias", c.qkv_bias, "Qwen2-style q/k/v biases");
  CLI11_PARSE(app, argc, argv);
  try {
    qmr::io::write_synthetic_checkpoint(out, c);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "random_checkpoint: %s\n", e.what());
    return 1;
  }
  std::printf("wrote %s (%d layers, hidden %d, vocab %d)\n", out.c_str(), c.layers, c.hidden, c.vocab);
  return 0;
}
