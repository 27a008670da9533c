// RTN quantizers: the half-step bound, error trends across bits and group sizes, clip search, symmetric zero points.
#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <vector>

#include "../random.hpp"
#include "../sanitizer.hpp"
#include "qmr/quant/distortion.hpp"
#include "qmr/quant/rtn.hpp"

using namespace qmr::quant;
using qmr::matrix_view;

namespace {

constexpr std::int64_t rows = 64, cols = 1024;

double rms_relative_error(const std::vector<float>& w, const qtensor& q) {
  return measure_distortion({w.data(), q.rows(), q.cols()}, q.view()).rms_relative();
}

}  // namespace

TEST_CASE("RTN error is within half a quantization step for every element", "[rtn]") {
  qmr::thread_pool pool(2);
  for (auto dist : {0, 1}) {
    const auto w = dist == 0 ? qmr::testing::gaussian(rows * cols, 11) : qmr::testing::student_t(rows * cols, 12);
    for (int bits : supported_bits)
      for (int group : supported_groups)
        for (bool sym : {false, true}) {
          const auto spec = format_spec::quantized(bits, group, sym);
          INFO(spec.str() << (dist ? " student-t" : " gaussian"));
          const qtensor q = quantize_rtn({w.data(), rows, cols}, spec, {}, &pool);
          const auto v = q.view();
          const std::int64_t g_size = q.layout().group;
          for (std::int64_t r = 0; r < rows; ++r)
            for (std::int64_t c = 0; c < cols; ++c) {
              const float step = qmr::to_float(v.scale(r, c / g_size));
              const float x = w[static_cast<std::size_t>(r * cols + c)];
              // 1e-6 relative: the f32 product scale * (code - zero) rounds once.
              const float err = std::fabs(x - v.value(r, c));
              if (!(err <= 0.5f * step * (1 + 1e-6f) + 1e-6f * std::fabs(x))) {
                FAIL("element (" << r << ", " << c << ") = " << x << " error " << err << " step " << step);
              }
            }
        }
  }
}

TEST_CASE("RMS error falls as bits rise and as groups shrink", "[rtn]") {
  qmr::thread_pool pool(2);
  // Under the sanitizers (39 s there for 64 rows, CI's step on 2 cores) 16 rows: fixed
  // seeds, so the sanitized sweep is as deterministic as the full one.
  const std::int64_t n_rows = qmr::testing::under_asan ? 16 : rows;
  for (auto dist : {0, 1}) {
    const auto w = dist == 0 ? qmr::testing::gaussian(n_rows * cols, 21) : qmr::testing::student_t(n_rows * cols, 22);
    for (bool sym : {false, true})
      for (bool clip : {false, true}) {
        rtn_options opt;
        opt.clip_search = clip;
        std::map<std::pair<int, int>, double> err;
        for (int bits : supported_bits)
          for (int group : supported_groups)
            err[{bits, group}] = rms_relative_error(w, quantize_rtn({w.data(), n_rows, cols},
                                                                   format_spec::quantized(bits, group, sym), opt, &pool));
        INFO((dist ? "student-t" : "gaussian") << (sym ? " sym" : " asym") << (clip ? " clip" : ""));
        const int groups_fine_to_coarse[] = {32, 64, 128, 256, per_channel};
        for (int gi = 0; gi < 5; ++gi)
          for (int bi = 1; bi < 6; ++bi) {
            const int g = groups_fine_to_coarse[gi];
            INFO("group " << g << " bits " << supported_bits[bi]);
            REQUIRE(err[{supported_bits[bi], g}] < err[{supported_bits[bi - 1], g}]);
          }
        for (int bits : supported_bits)
          for (int gi = 1; gi < 5; ++gi) {
            INFO("bits " << bits << " group " << groups_fine_to_coarse[gi]);
            REQUIRE(err[{bits, groups_fine_to_coarse[gi - 1]}] < err[{bits, groups_fine_to_coarse[gi]}]);
          }
        // Each extra bit roughly halves the error of a uniform quantizer: 2 -> 8 bits is >= 2^5 better.
        REQUIRE(err[{2, 128}] / err[{8, 128}] > 32.0);
      }
  }
}

TEST_CASE("clip search never increases a group's squared error and helps heavy tails", "[rtn]") {
  const auto w = qmr::testing::student_t(rows * cols, 31);
  rtn_options clip;
  clip.clip_search = true;
  for (int bits : {2, 3, 4})
    for (bool sym : {false, true}) {
      const auto spec = format_spec::quantized(bits, per_channel, sym);
      const double plain = rms_relative_error(w, quantize_rtn({w.data(), rows, cols}, spec));
      const double searched = rms_relative_error(w, quantize_rtn({w.data(), rows, cols}, spec, clip));
      INFO(spec.str() << " plain " << plain << " clipped " << searched);
      REQUIRE(searched < plain * 0.95);  // per-channel ranges on t(3) data are outlier-dominated
    }
  const auto g = qmr::testing::gaussian(32, 5);
  for (int bits : supported_bits) {
    const group_params p0 = rtn_group_params(g.data(), 32, bits, false);
    const group_params p1 = rtn_group_params(g.data(), 32, bits, false, clip);
    const auto sq = [&](group_params p) {
      double e = 0;
      for (float x : g) {
        const float q = std::clamp(std::nearbyint(x / qmr::to_float(p.scale)) + static_cast<float>(p.zero), 0.0f,
                                   static_cast<float>((1 << bits) - 1));
        const double d = x - dequant_value(p.scale, static_cast<std::uint32_t>(q), p.zero);
        e += d * d;
      }
      return e;
    };
    REQUIRE(sq(p1) <= sq(p0));
  }
}

TEST_CASE("symmetric formats put zero at the middle code and reproduce zero exactly", "[rtn]") {
  std::vector<float> w = qmr::testing::gaussian(std::size_t{8} * 64, 3);
  for (std::size_t i = 0; i < w.size(); i += 5) w[i] = 0.0f;
  for (int bits : supported_bits) {
    const qtensor q = quantize_rtn({w.data(), 8, 64}, format_spec::quantized(bits, 32, true));
    REQUIRE(q.zeros().empty());
    const auto v = q.view();
    REQUIRE(v.zero(0, 0) == (1u << (bits - 1)));
    for (std::size_t i = 0; i < w.size(); i += 5) REQUIRE(v.value(static_cast<std::int64_t>(i / 64), static_cast<std::int64_t>(i % 64)) == 0.0f);
  }
}

TEST_CASE("an all-zero group and a constant group quantize exactly", "[rtn]") {
  std::vector<float> w(std::size_t{2} * 32, 0.0f);
  for (int i = 32; i < 64; ++i) w[static_cast<std::size_t>(i)] = 0.75f;
  for (bool sym : {false, true}) {
    const qtensor q = quantize_rtn({w.data(), 2, 32}, format_spec::quantized(4, 32, sym));
    for (int c = 0; c < 32; ++c) REQUIRE(q.view().value(0, c) == 0.0f);
    for (int c = 0; c < 32; ++c) REQUIRE(q.view().value(1, c) == Approx(0.75f).margin(0.06));
  }
}

TEST_CASE("non-finite weights and f16-overflowing ranges are clear errors", "[rtn]") {
  std::vector<float> w = qmr::testing::gaussian(std::size_t{4} * 64, 9);
  w[2 * 64 + 40] = NAN;
  REQUIRE_THROWS_WITH(quantize_rtn({w.data(), 4, 64}, parse_format("w4g32"), {}, nullptr, "blk.0.ffn"),
                      Catch::Contains("blk.0.ffn") && Catch::Contains("row 2, group 1") && Catch::Contains("non-finite"));
  w[2 * 64 + 40] = 3e9f;
  REQUIRE_THROWS_WITH(quantize_rtn({w.data(), 4, 64}, parse_format("w4g32")), Catch::Contains("overflows f16"));
}
