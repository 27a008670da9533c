// Seconds per layer of GPTQ's phases: accumulating the calibration Hessian over N tokens, the factorization of H alone, and quantize_gptq (which includes it).
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "bandwidth.hpp"
#include "qmr/core/error.hpp"
#include "qmr/quant/gptq.hpp"
#include "qmr/quant/hessian.hpp"

namespace {

using namespace qmr;

// "896x4864" -> {896, 4864}: output rows × input columns, as a Linear weight.
std::pair<std::int64_t, std::int64_t> parse_shape(const std::string& s) {
  const auto x = s.find('x');
  if (x == std::string::npos) throw error("shape '" + s + "': expected ROWSxCOLS");
  return {std::stoll(s.substr(0, x)), std::stoll(s.substr(x + 1))};
}

// Wall seconds and process CPU seconds (all threads) of a phase: on a shared machine
// the CPU time shows what the phase costs when wall time is inflated by other load.
struct stopwatch {
  std::chrono::steady_clock::time_point wall0 = std::chrono::steady_clock::now();
  std::clock_t cpu0 = std::clock();
  std::string str() const {
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
    const double cpu = static_cast<double>(std::clock() - cpu0) / CLOCKS_PER_SEC;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.2f (cpu %.2f)", wall, cpu);
    return buf;
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"GPTQ time per layer: Hessian accumulation and quantize_gptq"};
  std::string shapes = "896x896,4864x896,896x4864";
  std::string format = "w4g128";
  unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  std::int64_t tokens = 65536, batch = 2048;
  bool act_order = true;
  app.add_option("--shapes", shapes, "weight shapes ROWSxCOLS (out x in features)")->capture_default_str();
  app.add_option("--format", format, "qmr format spec")->capture_default_str();
  app.add_option("--threads", threads, "threads")->capture_default_str();
  app.add_option("--tokens", tokens, "calibration tokens")->capture_default_str();
  app.add_option("--batch", batch, "tokens per hessian_accumulator::add call")->capture_default_str();
  app.add_option("--act-order", act_order, "GPTQ act-order (static groups)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  try {
    const quant::format_spec spec = quant::parse_format(format);
    thread_pool pool(threads);
    std::printf("GPTQ %s, %lld tokens in batches of %lld, %u threads, act_order %d\n", spec.str().c_str(),
                static_cast<long long>(tokens), static_cast<long long>(batch), pool.size(), act_order ? 1 : 0);
    std::printf("seconds per layer: wall (process CPU time, all threads)\n");
    std::printf("| shape | hessian s | factor s | gptq s | gptq + report s | GPTQ/RTN proxy loss |\n|---|---|---|---|---|---|\n");
    for (const std::string& s : bench::split(shapes)) {
      const auto [rows, cols] = parse_shape(s);
      std::mt19937 rng(1);
      std::normal_distribution<float> normal;
      // One batch of inputs with a shared component (correlated channels), added
      // tokens / batch times: the accumulation's cost does not depend on the values.
      std::vector<float> x(static_cast<std::size_t>(batch * cols));  // [batch, cols]
      for (std::int64_t t = 0; t < batch; ++t) {
        const float common = normal(rng);
        for (std::int64_t c = 0; c < cols; ++c) x[static_cast<std::size_t>(t * cols + c)] = common + normal(rng);
      }
      stopwatch hessian_time;
      quant::hessian_accumulator acc(cols);
      for (std::int64_t done = 0; done < tokens; done += batch)
        acc.add({x.data(), std::min(batch, tokens - done), cols}, &pool);
      const std::vector<double> h = acc.hessian();
      const std::string hessian_s = hessian_time.str();

      std::vector<float> w(static_cast<std::size_t>(rows * cols));  // [rows, cols]
      for (float& v : w) v = 0.02f * normal(rng);
      quant::gptq_options opt;
      opt.act_order = act_order;
      // The factorization alone (Cholesky, triangular inverse), as quantize_gptq runs it:
      // columns by decreasing diag(H), none dead (random inputs).
      std::vector<std::int64_t> perm(static_cast<std::size_t>(cols));  // [cols] position -> column
      std::iota(perm.begin(), perm.end(), std::int64_t{0});
      if (act_order)
        std::stable_sort(perm.begin(), perm.end(), [&](std::int64_t a, std::int64_t b) {
          return h[static_cast<std::size_t>(a * cols + a)] > h[static_cast<std::size_t>(b * cols + b)];
        });
      const std::vector<char> dead(static_cast<std::size_t>(cols), 0);
      stopwatch factor_time;
      quant::detail::gptq_inverse_factor(h, cols, perm, dead, opt.damp, &pool, s);
      const std::string factor_s = factor_time.str();
      stopwatch gptq_time;
      quant::quantize_gptq({w.data(), rows, cols}, h, spec, opt, &pool, s);
      const std::string gptq_s = gptq_time.str();
      quant::gptq_report report;
      stopwatch report_time;
      quant::quantize_gptq({w.data(), rows, cols}, h, spec, opt, &pool, s, &report);
      const std::string report_s = report_time.str();
      std::printf("| %s | %s | %s | %s | %s | %.3f |\n", s.c_str(), hessian_s.c_str(), factor_s.c_str(), gptq_s.c_str(),
                  report_s.c_str(), report.proxy_loss / report.rtn_proxy_loss);
      std::fflush(stdout);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gptq_time: %s\n", e.what());
    return 1;
  }
  return 0;
}
