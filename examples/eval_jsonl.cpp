// Evaluates a model, optionally quantized in memory, on a GSM8K-format JSONL file by greedy decoding and prints the accuracy.
//
//   eval_jsonl MODEL_DIR DATA.jsonl [--quant w4g128] [--limit N] [--max-tokens N] [--threads T]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <string>
#include <string_view>
#include <thread>

#include <qmr/eval/datasets.hpp>
#include <qmr/model/weights.hpp>

namespace {

struct args {
  std::string model, data, quant;
  std::size_t limit = 0;  // 0 = every problem
  int max_tokens = 256;
  unsigned threads = std::max(1u, std::thread::hardware_concurrency());
};

bool parse(int argc, char** argv, args& a) {
  int positional = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--quant" && has_value) a.quant = argv[++i];
    else if (arg == "--limit" && has_value) a.limit = std::strtoull(argv[++i], nullptr, 10);
    else if (arg == "--max-tokens" && has_value) a.max_tokens = std::atoi(argv[++i]);
    else if (arg == "--threads" && has_value) a.threads = static_cast<unsigned>(std::max(1, std::atoi(argv[++i])));
    else if (!arg.starts_with("--") && positional == 0) a.model = arg, ++positional;
    else if (!arg.starts_with("--") && positional == 1) a.data = arg, ++positional;
    else return false;
  }
  return positional == 2 && a.max_tokens > 0;
}

}  // namespace

int main(int argc, char** argv) {
  args a;
  if (!parse(argc, argv, a)) {
    std::fprintf(stderr, "usage: %s MODEL_DIR DATA.jsonl [--quant w4g128] [--limit N] [--max-tokens N] [--threads T]\n",
                 argv[0]);
    return 2;
  }
  try {
    auto model = qmr::model::model::load(a.model);
    if (!a.quant.empty()) model.quantize(qmr::quant::parse_format(a.quant));  // round to nearest, in memory
    const auto tok = qmr::text::tokenizer::load(std::filesystem::path(a.model) / "tokenizer.json");

    // Zero-shot "Question: ...\nAnswer:" prompts; the gold answer is the number after "####".
    auto problems = qmr::eval::read_gsm8k_jsonl(a.data);
    if (a.limit && problems.size() > a.limit) problems.resize(a.limit);
    const auto items = qmr::eval::to_items(problems, {}, qmr::eval::prompt_style::question_answer);

    qmr::eval::gen_options options;
    options.max_tokens = a.max_tokens;
    options.threads = a.threads;
    const auto r = qmr::eval::run_generative(model, tok, items, options, [](std::size_t done, std::size_t total) {
      std::fprintf(stderr, "\r%zu/%zu", done, total);
    });
    std::fprintf(stderr, "\n");

    const auto [lo, hi] = r.overall.ci95();
    std::printf("%s %s on %s: accuracy %.4f (%zu/%zu), 95%% CI [%.4f, %.4f], %.1f s, %.1f output tokens/s\n",
                a.model.c_str(), a.quant.empty() ? "as stored" : a.quant.c_str(), a.data.c_str(), r.overall.accuracy(),
                r.overall.correct, r.overall.n, lo, hi, r.seconds,
                r.seconds > 0 ? static_cast<double>(r.output_tokens) / r.seconds : 0.0);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "eval_jsonl: %s\n", e.what());
    return 1;
  }
}
