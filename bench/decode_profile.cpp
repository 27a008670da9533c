// Where a decode step's time goes: the forward pass's activation hooks timestamp each point of a layer, and the intervals between consecutive points (q/k/v matmuls, attention, o, gate/up, silu, down, the output head) are summed over tokens and printed largest first.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "qmr/model/forward.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Per-step time of greedy decoding, split at the forward pass's hook points"};
  std::string model_dir, kernel = "simd";
  int tokens = 64, prompt_len = 16;
  unsigned threads = 2;
  app.add_option("--model", model_dir, "checkpoint directory (e.g. the random Qwen2.5-0.5B that qmr bench --kernel decode writes under /tmp/qmr-bench-qwen2.5-0.5b)")->required();
  app.add_option("--tokens", tokens, "decoded tokens, each timed")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--prompt", prompt_len, "random prompt tokens before them (the attention's context)")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--threads", threads, "thread pool size")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--kernels", kernel, "simd (f32 activations), simd_a8 (int8 activations) or simd_lut (f32, the table GEMV over the 2-6-bit linears repacked)")->capture_default_str()->check(CLI::IsMember({"simd", "simd_a8", "simd_lut"}));
  CLI11_PARSE(app, argc, argv);
  try {
    using clock = std::chrono::steady_clock;
    auto m = qmr::model::model::load(model_dir);
    qmr::thread_pool pool(threads);
    if (kernel == "simd_lut") std::printf("%d linears repacked for the table GEMV\n", m.repack_lut(&pool));
    qmr::model::session s(m, prompt_len + tokens, &pool);
    if (kernel == "simd_a8") s.set_kernel(qmr::model::matmul_kernel::simd_a8);
    if (kernel == "simd_lut") s.set_kernel(qmr::model::matmul_kernel::simd_lut);
    std::mt19937 rng(7);
    std::uniform_int_distribution<std::int32_t> id(0, static_cast<std::int32_t>(m.config().vocab) - 1);
    std::vector<std::int32_t> prompt(static_cast<std::size_t>(prompt_len));
    for (auto& t : prompt) t = id(rng);
    s.forward(prompt);

    std::map<std::string, double> seconds;  // "from -> to" interval: seconds summed over tokens
    std::string prev;
    clock::time_point last;
    s.set_hook([&](const qmr::model::activation& a) {
      const auto now = clock::now();
      const std::string cur = qmr::model::component_name(a.what);
      seconds[prev + " -> " + cur] += std::chrono::duration<double>(now - last).count();
      prev = cur;
      last = now;
    });
    double total = 0;
    for (int i = 0; i < tokens; ++i) {
      const std::int32_t one[] = {id(rng)};
      prev = "start";
      last = clock::now();
      const auto t0 = last;
      s.forward(one);
      const auto t1 = clock::now();
      seconds[prev + " -> end"] += std::chrono::duration<double>(t1 - last).count();
      total += std::chrono::duration<double>(t1 - t0).count();
    }
    std::vector<std::pair<double, std::string>> rows;
    for (const auto& [k, v] : seconds) rows.emplace_back(v, k);
    std::sort(rows.rbegin(), rows.rend());
    std::printf("%s, %s kernels, %u threads: %d tokens after a %d-token prompt, %.3f ms/token (hooks included)\n\n",
                model_dir.c_str(), kernel.c_str(), threads, tokens, prompt_len, total / tokens * 1e3);
    std::printf("| interval | ms/token | share |\n|---|---|---|\n");
    for (const auto& [v, k] : rows)
      std::printf("| %s | %.3f | %.1f%% |\n", k.c_str(), v / tokens * 1e3, 100.0 * v / total);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "decode_profile: %s\n", e.what());
    return 1;
  }
  return 0;
}
