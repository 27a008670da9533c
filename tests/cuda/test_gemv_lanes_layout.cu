// Host test of the lane-layout GEMV's data layout (needs no GPU): lanes_repack and lanes_pair_word with the PTX lop3/prmt semantics decode every column of every unit to exactly code * 2^(shift - 24) as an f16 subnormal (the lane kernel) and, with the magic number, to (code - z0) / z0 (the split kernel), and the lane kernel's arithmetic emulated per lane (x rescaled by 2^(t - shift) per unit, f16x2 partial sums of code * x rounded as fma.rn.f16x2 rounds, the zero-point term z Σx from unit sums of x, f32 scaling) stays within the f16 bound of the float64 reference, for activations of mixed magnitudes, on random 2/3/4/8-bit tensors, symmetric and asymmetric, of ragged shapes.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "qmr/kernels/cuda/gemv.cuh"
#include "gemv_reference.hpp"
#include "gpu_check.hpp"

namespace quant = qmr::quant;
namespace qc = qmr::cuda;
namespace qd = qmr::cuda::detail;

namespace {

using qmr::testing::gpu::failures;
using qmr::testing::gpu::fma_f16;
using qmr::testing::gpu::half_value;
using qmr::testing::gpu::rng;


template <int Bits>
void check_format(const quant::format_spec& spec, std::int64_t rows, std::int64_t cols, rng& r) {
  quant::qtensor q(spec, rows, cols);
  for (std::size_t i = 0; i < q.codes().size(); ++i) q.codes().data()[i] = static_cast<std::uint8_t>(r.next() >> 24);
  for (std::size_t i = 0; i < q.scales().size(); ++i)
    q.scales().data()[i] = qmr::to_f16(r.uniform(0.002f, 0.02f) * ((r.next() & 1u) ? -1.0f : 1.0f));
  for (std::size_t i = 0; i < q.zeros().size(); ++i) q.zeros().data()[i] = static_cast<std::uint8_t>(r.next() >> 24);
  const quant::qtensor_view w = q.view();
  const std::vector<std::uint32_t> packed = qd::lanes_repack(w);
  const qc::lanes_layout l = qc::lanes_layout::of(Bits, rows, cols, w.layout.n_groups, !spec.symmetric);
  CHECK(static_cast<std::int64_t>(packed.size()) * 4 >= l.bytes && l.units * qc::lanes_unit_cols(Bits) == cols,
        "%s [%lld, %lld]: layout sizes", spec.str().c_str(), static_cast<long long>(rows), static_cast<long long>(cols));
  constexpr int UC = qc::lanes_unit_cols(Bits);
  const double z = static_cast<double>(1 << (Bits - 1));
  const std::uint16_t* sc = reinterpret_cast<const std::uint16_t*>(packed.data() + l.scale_offset / 4);
  const std::uint8_t* zp = reinterpret_cast<const std::uint8_t*>(packed.data()) + l.zero_offset;
  const int gshift = spec.group == quant::per_channel ? 31 : __builtin_ctz(static_cast<unsigned>(spec.group));
  // x of mixed magnitudes (2^-20 .. 2^6 per 16 columns, subnormal f16 included), so that
  // the per-unit power-of-two rescaling is exercised
  std::vector<float> x(static_cast<std::size_t>(cols));
  float block = 1.0f;
  for (std::size_t c = 0; c < x.size(); ++c) {
    if (c % 16 == 0) block = std::ldexp(1.0f, static_cast<int>(r.next() % 27u) - 20);
    x[c] = qmr::to_float(qmr::to_f16(r.uniform(-1.0f, 1.0f) * block));
  }
  int bad_decodes = 0;
  double worst = 0.0;
  for (std::int64_t row = 0; row < rows; ++row) {
    double acc = 0.0, ref = 0.0, err_scale = 0.0;
    for (std::int64_t u = 0; u < l.units; ++u) {
      std::uint32_t qw[4], hw[2] = {0u, 0u};
      for (int j = 0; j < 4; ++j) qw[j] = packed[static_cast<std::size_t>((row * l.units + u) * 4 + j)];
      if (Bits == 3)
        for (int j = 0; j < 2; ++j) hw[j] = packed[static_cast<std::size_t>(l.hi_offset / 4 + (row * l.units + u) * 2 + j)];
      const std::int64_t g = row * w.layout.n_groups + ((u * UC) >> gshift);
      const double scale = qmr::to_float(qmr::f16{sc[g]});
      // the kernel's staging: Σx and max|x| over the unit, then x * 2^(ex - shift) per column
      float xsum = 0.0f, amax = 0.0f;
      for (int p = 0; p < UC / 2; ++p) {
        const float x0 = x[static_cast<std::size_t>(u * UC + 2 * p)], x1 = x[static_cast<std::size_t>(u * UC + 2 * p + 1)];
        xsum += x0 + x1;
        amax = std::fmax(amax, std::fmax(std::fabs(x0), std::fabs(x1)));
      }
      const int ex = amax > 0.0f ? 14 - std::ilogb(amax) : 0;
      const float zk = spec.symmetric ? static_cast<float>(1 << (Bits - 1)) : static_cast<float>(zp[g]);
      if (!spec.symmetric && zp[g] != w.zero(row, g - row * w.layout.n_groups))
        CHECK(false, "%s: row %lld group %lld: zero point %u repacked as %u", spec.str().c_str(), static_cast<long long>(row),
              static_cast<long long>(g - row * w.layout.n_groups), w.zero(row, g - row * w.layout.n_groups), zp[g]);
      double part[2] = {0.0, 0.0};  // the lane's f16x2 partial sum
      for (int p = 0; p < UC / 2; ++p) {
        // the lane kernel's decode: the fields alone, exact f16 subnormals code * 2^(shift - 24)
        const std::uint32_t v = qd::lanes_pair_fields<Bits, qd::lanes_host_ops>(qw, hw, p, 0u);
        const int shift = qd::lanes_pair_shift<Bits>(p);
        // the split kernel's decode of the same word (lanes_pair_word): (code - z0) / z0 after one HFMA2
        const std::uint32_t vm = qd::lanes_pair_word<Bits, qd::lanes_host_ops>(qw, hw, p);
        const int e = qd::lanes_pair_exponent<Bits>(p);
        const double s = half_value(qd::lanes_scale_bits(e), 0), sub = half_value(qd::lanes_sub_bits(e), 0);
        for (int h = 0; h < 2; ++h) {
          const std::int64_t c = u * UC + 2 * p + h;
          const std::uint32_t code = w.code(row, c);
          const std::uint32_t field = (v >> (16 * h)) & 0xffffu;
          const double magic = fma_f16(half_value(vm, h), s, sub);
          const double want = (static_cast<double>(code) - z) / z;
          if ((field != code << shift || magic != want) && ++bad_decodes <= 5)
            CHECK(false, "%s [%lld, %lld]: row %lld col %lld: code %u decodes to field 0x%04x (want 0x%04x), magic word to %g (want %g)",
                  spec.str().c_str(), static_cast<long long>(rows), static_cast<long long>(cols), static_cast<long long>(row),
                  static_cast<long long>(c), code, field, code << shift, magic, want);
          const float xs = qmr::to_float(qmr::to_f16(x[static_cast<std::size_t>(c)] * std::ldexp(1.0f, ex - shift)));
          part[h] = fma_f16(half_value(v, h), xs, part[h]);
          ref += static_cast<double>(w.value(row, c)) * x[static_cast<std::size_t>(c)];
          err_scale += std::fabs(scale) * (static_cast<double>(code) + zk) * std::fabs(x[static_cast<std::size_t>(c)]);
        }
      }
      const float t = std::fmaf(std::ldexp(1.0f, 24 - ex), static_cast<float>(part[0] + part[1]), -zk * xsum);
      acc = static_cast<double>(std::fmaf(static_cast<float>(scale), t, static_cast<float>(acc)));
    }
    const double got = acc;
    const double bound = ((UC / 2) * std::ldexp(1.0, -11) + 1e-5) * err_scale + 1e-6;
    const double err = std::fabs(got - ref);
    if (err / bound > worst) worst = err / bound;
    CHECK(err <= bound, "%s [%lld, %lld]: row %lld emulated %.8g, reference %.8g (bound %.3g)", spec.str().c_str(),
          static_cast<long long>(rows), static_cast<long long>(cols), static_cast<long long>(row), got, ref, bound);
  }
  CHECK(bad_decodes == 0, "%s: %d columns decoded wrong", spec.str().c_str(), bad_decodes);
  std::printf("%-8s [%5lld, %5lld]: decode exact, emulated worst error %.3f of the f16 bound\n", spec.str().c_str(),
              static_cast<long long>(rows), static_cast<long long>(cols), worst);
}

}  // namespace

int main() {
  rng r{20261203};
  const std::int64_t shapes[][2] = {{1, 192}, {3, 320}, {5, 896}, {2, 4864}, {1, 16384}, {7, 64}, {4, 160}, {3, 48}};
  for (int bits : {2, 3, 4, 8})
    for (int group : {32, 64, 128, 256, quant::per_channel})
      for (bool symmetric : {true, false}) {
      const quant::format_spec spec = quant::format_spec::quantized(bits, group, symmetric);
      for (const auto& sh : shapes) {
        if (group != quant::per_channel && sh[1] % group != 0) continue;
        if (!qc::lanes_supported(spec, sh[1])) continue;
        switch (bits) {
          case 2: check_format<2>(spec, sh[0], sh[1], r); break;
          case 3: check_format<3>(spec, sh[0], sh[1], r); break;
          case 4: check_format<4>(spec, sh[0], sh[1], r); break;
          case 8: check_format<8>(spec, sh[0], sh[1], r); break;
        }
      }
    }
  // Formats without a lane layout.
  CHECK(qc::lanes_supported(quant::format_spec::quantized(4, 128, false), 128), "asymmetric w4g128 has no lane layout");
  CHECK(!qc::lanes_supported(quant::format_spec::quantized(6, 64, false), 128), "w6g64 has a lane layout");
  CHECK(!qc::lanes_supported(quant::format_spec::quantized(5, 128, true), 128), "w5g128s has a lane layout");
  CHECK(!qc::lanes_supported(quant::format_spec::quantized(2, 32, true), 128), "w2g32s has a lane layout (units straddle groups)");
  CHECK(!qc::lanes_supported(quant::format_spec::quantized(4, 32, true), 48), "w4 with 48 columns (not whole units) has a lane layout");
  std::printf("%s: %d failures\n", failures ? "FAIL" : "ok", failures);
  return failures ? 1 : 0;
}
