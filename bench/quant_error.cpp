// Prints the RMS relative error of RTN quantization by bits x group size (asymmetric and symmetric, with and without clip search) on Gaussian and Student-t matrices.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "qmr/quant/distortion.hpp"
#include "qmr/quant/rtn.hpp"

namespace {

struct distribution {
  const char* name;
  std::vector<float> values;
};

std::vector<float> sample(std::int64_t n, std::uint32_t seed, bool heavy) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  // t(3): finite variance and tails like the outlier channels of LLM weights.
  std::student_t_distribution<float> t(3.0f);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (float& x : v) x = heavy ? t(rng) : normal(rng);
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"RTN quantization error by bits x group size"};
  std::int64_t rows = 512, cols = 4096;
  unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  std::string csv_path;
  app.add_option("--rows", rows, "matrix rows")->capture_default_str();
  app.add_option("--cols", cols, "matrix columns (a multiple of 256)")->capture_default_str();
  app.add_option("--threads", threads, "worker threads")->capture_default_str();
  app.add_option("--csv", csv_path, "also write every figure to this CSV file");
  CLI11_PARSE(app, argc, argv);

  using namespace qmr::quant;
  qmr::thread_pool pool(threads);
  const distribution dists[] = {{"Gaussian N(0,1)", sample(rows * cols, 1, false)},
                                {"Student-t (3 dof)", sample(rows * cols, 2, true)}};
  std::FILE* csv = csv_path.empty() ? nullptr : std::fopen(csv_path.c_str(), "w");
  if (!csv_path.empty() && !csv) {
    std::fprintf(stderr, "cannot write %s\n", csv_path.c_str());
    return 1;
  }
  if (csv) std::fprintf(csv, "distribution,format,method,bits,group,symmetric,clip,bits_per_weight,rms_relative_error\n");
  const auto start = std::chrono::steady_clock::now();
  std::printf("RMS relative error ||W - Q(W)||_F / ||W||_F of RTN on a %lld x %lld matrix (f16 scales, integer zero points)\n",
              static_cast<long long>(rows), static_cast<long long>(cols));
  for (const distribution& d : dists) {
    std::printf("\n### %s\n\n| bits | method | g32 | g64 | g128 | g256 | per-channel |\n|---|---|---|---|---|---|---|\n", d.name);
    for (int bits : supported_bits)
      for (bool sym : {false, true})
        for (bool clip : {false, true}) {
          rtn_options opt;
          opt.clip_search = clip;
          const std::string method = std::string(sym ? "sym" : "asym") + (clip ? " + clip" : "");
          std::printf("| %d | %s |", bits, method.c_str());
          for (int group : supported_groups) {
            const format_spec spec = format_spec::quantized(bits, group, sym);
            const qtensor q = quantize_rtn({d.values.data(), rows, cols}, spec, opt, &pool);
            const double err = measure_distortion({d.values.data(), rows, cols}, q.view()).rms_relative();
            std::printf(" %.4f |", err);
            if (csv)
              std::fprintf(csv, "%s,%s,%s,%d,%d,%d,%d,%.5f,%.6f\n", d.name, spec.str().c_str(), clip ? "rtn+clip" : "rtn",
                           bits, group, sym, clip, spec.bits_per_weight(cols), err);
          }
          std::printf("\n");
          std::fflush(stdout);
        }
  }
  if (csv) std::fclose(csv);
  std::printf("\n%.1f s\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return 0;
}
