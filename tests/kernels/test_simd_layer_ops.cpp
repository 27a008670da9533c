// The forward pass's per-token SIMD kernels (decode attention over a KV cache, silu · up) equal their scalar references up to summation order and the exponential's last bits, for every ISA this CPU runs, ragged head sizes and key counts, and strided caches.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "../random.hpp"
#include "dispatched_isas.hpp"
#include "qmr/kernels/ref/attention.hpp"
#include "qmr/kernels/simd/layer_ops.hpp"
#include "qmr/kernels/simd/layer_ops_dispatch.hpp"

using namespace qmr;

namespace {

using qmr::testing::fresh_seed;

using attend_fn_ptr = void (*)(const float*, const float*, const float*, std::int64_t, int, int, float, float*, float*);
using silu_fn_ptr = void (*)(float*, const float*, std::int64_t);

struct layer_ops_isa_kernels {
  std::string name;
  attend_fn_ptr attend;
  silu_fn_ptr silu;
};

// The kernels of every ISA this binary carries and this CPU runs, the header-only
// default-arch kernels (no dispatch) and the dispatched entry points.
std::vector<layer_ops_isa_kernels> all_layer_ops_isas() {
  std::vector<layer_ops_isa_kernels> out;
  out.push_back({"default_arch", &simd::attend_head<xsimd::default_arch>, &simd::silu_mul<xsimd::default_arch>});
  out.push_back({"best", &simd::attend_head_best, &simd::silu_mul_best});
  testing::for_each_dispatched_isa([&](auto arch, const char* name) {
    using Arch = decltype(arch);
    out.push_back({name,
                   [](const float* q, const float* k, const float* v, std::int64_t stride, int d, int n, float scale,
                      float* p, float* o) { simd::attend_head_fn{}(Arch{}, q, k, v, stride, d, n, scale, p, o); },
                   [](float* g, const float* u, std::int64_t n) { simd::silu_mul_fn{}(Arch{}, g, u, n); }});
  });
  return out;
}

}  // namespace

TEST_CASE("decode attention of one head equals the reference, every ISA, ragged d and key counts", "[simd][attention]") {
  // Head sizes around the 4-, 8- and 16-float vectors (ragged ones leave scalar columns),
  // key counts around the 4-key score blocks and the vectors of the softmax.
  const int ds[] = {8, 20, 32, 64, 72, 128, 136};
  const int ns[] = {1, 2, 3, 4, 5, 15, 16, 17, 63, 200};
  for (const layer_ops_isa_kernels& isa : all_layer_ops_isas())
    for (int d : ds)
      for (int n : ns) {
        const std::uint32_t seed = fresh_seed();
        INFO(isa.name << " d " << d << " keys " << n << " seed " << seed);
        // The cache rows are wider than a head (several KV heads side by side): the kernel
        // reads d floats at an offset of each row and nothing else of it.
        const std::int64_t stride = 3 * d + 5, offset = d + 2;
        // Scores spread over several units (sigma 2 on q), so the softmax is neither flat nor one-hot.
        const auto q = testing::gaussian(static_cast<std::size_t>(d), seed, 2.0f);                   // [d]
        const auto kc = testing::gaussian(static_cast<std::size_t>(n * stride), seed + 1);          // [n, stride]
        const auto vc = testing::gaussian(static_cast<std::size_t>(n * stride), seed + 2);          // [n, stride]
        const float scale = 1.0f / std::sqrt(static_cast<float>(d));
        std::vector<float> p_ref(static_cast<std::size_t>(n)), o_ref(static_cast<std::size_t>(d));  // [n], [d]
        // Poisoned outputs: every element must be written. One element past each end must stay.
        std::vector<float> p(static_cast<std::size_t>(n) + 2, NAN), o(static_cast<std::size_t>(d) + 2, NAN);
        p.front() = p.back() = o.front() = o.back() = 12345.0f;
        ref::attend_head(q.data(), kc.data() + offset, vc.data() + offset, stride, d, n, scale, p_ref.data(), o_ref.data());
        isa.attend(q.data(), kc.data() + offset, vc.data() + offset, stride, d, n, scale, p.data() + 1, o.data() + 1);
        CHECK(p.front() == 12345.0f);
        CHECK(p.back() == 12345.0f);
        CHECK(o.front() == 12345.0f);
        CHECK(o.back() == 12345.0f);
        float p_sum = 0;
        for (int s = 0; s < n; ++s) {
          const float got = p[static_cast<std::size_t>(s) + 1], want = p_ref[static_cast<std::size_t>(s)];
          INFO("p[" << s << "] " << got << " vs " << want);
          // f32 dot products of d terms in another order, then exp: a few ulp of the score
          // (|score| up to ~10) in the exponent.
          CHECK(std::abs(got - want) <= 1e-6f + 2e-5f * want);
          p_sum += got;
        }
        CHECK(std::abs(p_sum - 1.0f) < 1e-5f);
        float o_scale = 0;
        for (float x : o_ref) o_scale = std::max(o_scale, std::abs(x));
        for (int i = 0; i < d; ++i) {
          const float got = o[static_cast<std::size_t>(i) + 1], want = o_ref[static_cast<std::size_t>(i)];
          INFO("out[" << i << "] " << got << " vs " << want);
          CHECK(std::abs(got - want) <= 3e-5f * (o_scale + 1.0f));
        }
      }
}

TEST_CASE("decode attention is exact where the softmax is: one key, equal scores", "[simd][attention]") {
  const int d = 40, n = 9;
  std::vector<float> q(d, 0.0f), k(static_cast<std::size_t>(n * d), 1.0f), v(static_cast<std::size_t>(n * d));
  for (int s = 0; s < n; ++s)
    for (int i = 0; i < d; ++i) v[static_cast<std::size_t>(s * d + i)] = static_cast<float>(s + 10 * i);
  for (const layer_ops_isa_kernels& isa : all_layer_ops_isas()) {
    INFO(isa.name);
    std::vector<float> p(n), o(d);
    // q = 0: every score is 0, so p = 1/9 each and out[i] = mean over s of (s + 10 i) = 4 + 10 i
    isa.attend(q.data(), k.data(), v.data(), d, d, n, 0.125f, p.data(), o.data());
    for (float x : p) CHECK(x == Approx(1.0f / 9).epsilon(1e-6));
    for (int i = 0; i < d; ++i) CHECK(o[static_cast<std::size_t>(i)] == Approx(4.0f + 10.0f * i).epsilon(1e-6));
    // One key: p = 1 exactly and out = v_0
    isa.attend(q.data(), k.data(), v.data(), d, d, 1, 0.125f, p.data(), o.data());
    CHECK(p[0] == 1.0f);
    for (int i = 0; i < d; ++i) CHECK(o[static_cast<std::size_t>(i)] == v[static_cast<std::size_t>(i)]);
  }
}

TEST_CASE("silu(gate) * up equals the reference, every ISA, ragged lengths and large |gate|", "[simd][silu]") {
  const std::int64_t ns[] = {1, 7, 16, 33, 4864, 4867};
  for (const layer_ops_isa_kernels& isa : all_layer_ops_isas())
    for (std::int64_t n : ns) {
      const std::uint32_t seed = fresh_seed();
      INFO(isa.name << " n " << n << " seed " << seed);
      auto gate = testing::gaussian(static_cast<std::size_t>(n), seed, 4.0f);  // [n]
      const auto up = testing::gaussian(static_cast<std::size_t>(n), seed + 1);
      // Saturated inputs: silu(-100) is -0 (exp(100) overflows to inf), silu(100) = 100.
      gate[0] = -100.0f;
      if (n > 1) gate[static_cast<std::size_t>(n - 1)] = 100.0f;
      auto want = gate;
      ref::silu_mul(want.data(), up.data(), n);
      isa.silu(gate.data(), up.data(), n);
      for (std::int64_t i = 0; i < n; ++i) {
        const float got = gate[static_cast<std::size_t>(i)], w = want[static_cast<std::size_t>(i)];
        INFO("i " << i << ": " << got << " vs " << w);
        CHECK(std::abs(got - w) <= 1e-6f * std::abs(w) + 1e-30f);
      }
    }
}
