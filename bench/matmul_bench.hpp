// What the matmul benchmarks (bench/gemv_simd, qmr bench) share: random weight matrices in any format, the calls that time them over rotating copies, and NxK shapes.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "bandwidth.hpp"
#include "fma_peak.hpp"
#include "median.hpp"
#include "qmr/core/aligned_buffer.hpp"
#include "qmr/core/error.hpp"
#include "qmr/core/tensor.hpp"
#include "qmr/core/thread_pool.hpp"
#include "qmr/kernels/simd/dispatch.hpp"
#include "qmr/quant/format.hpp"
#include "qmr/quant/qtensor.hpp"

namespace qmr::bench {

// "4096x14336" -> {4096, 14336}: output rows N × input columns K.
inline std::pair<std::int64_t, std::int64_t> parse_shape(const std::string& s) {
  const auto x = s.find('x');
  std::size_t used_n = 0, used_k = 0;
  std::int64_t n = 0, k = 0;
  try {
    if (x != std::string::npos) {
      n = std::stoll(s.substr(0, x), &used_n);
      k = std::stoll(s.substr(x + 1), &used_k);
    }
  } catch (const std::exception&) {
    used_n = 0;
  }
  if (x == std::string::npos || used_n != x || used_k != s.size() - x - 1 || n <= 0 || k <= 0)
    throw error("shape '" + s + "': expected NxK with positive N (output rows) and K (input columns)");
  return {n, k};
}

// The ISA the f32 kernels dispatch to on this CPU.
inline const char* dispatched_isa() {
  const auto isa = xsimd::available_architectures();
#if defined(__aarch64__)
  return isa.neon64 ? "neon64" : "none";
#else
  return isa.avx512bw ? "avx512bw" : isa.fma3_avx2 ? "avx2+fma" : "sse2";
#endif
}

// One weight matrix in a format, filled with random bytes (every bit pattern is a
// valid code; scales are kept finite), and the views the kernels read.
struct matrix_copy {
  quant::qtensor q;            // quantized storage
  aligned_buffer<bf16> dense;  // [N, K] when the format is dense (bf16 only here)
  quant::format_spec spec;
  std::int64_t n = 0, k = 0;

  matrix_copy(const quant::format_spec& s, std::int64_t rows, std::int64_t cols, std::mt19937_64& rng)
      : spec(s), n(rows), k(cols) {
    const auto fill = [&](auto& buf) {
      auto* bytes = reinterpret_cast<std::uint8_t*>(buf.data());
      const std::size_t size = buf.size() * sizeof(buf[0]);
      for (std::size_t i = 0; i + 8 <= size; i += 8) {
        const std::uint64_t r = rng();
        std::memcpy(bytes + i, &r, 8);
      }
    };
    if (spec.is_quantized()) {
      q = quant::qtensor(spec, rows, cols);
      fill(q.codes());
      fill(q.zeros());
      for (auto& v : q.scales()) v = to_f16(0.01f);
    } else {
      check(spec.dense == dtype::bf16, "the benchmarks' dense format is bf16");
      dense = aligned_buffer<bf16>(static_cast<std::size_t>(rows * cols));
      // Small bf16 values: the low byte random, the high byte 0x3c (about 0.01).
      for (std::size_t i = 0; i < dense.size(); ++i) dense[i] = bf16{static_cast<std::uint16_t>(0x3c00u | (rng() & 0xffu))};
    }
  }

  std::uint64_t bytes() const {
    return spec.is_quantized() ? static_cast<std::uint64_t>(q.layout().total_bytes())
                               : static_cast<std::uint64_t>(n * k) * 2u;
  }

  // Y = X · Wᵀ on the dispatched kernels; a8: the int8-activation mode (quantized W
  // only: dense weights have f32 activations in every mode).
  void matmul(matrix_view<const float> x, matrix_view<float> y, thread_pool& pool, bool a8 = false) const {
    if (spec.is_quantized()) {
      if (a8) simd::gemm_a8_dispatched(q.view(), x, y, &pool);
      else simd::gemm_dispatched(q.view(), x, y, &pool);
    } else {
      const auto view = tensor_view::contiguous(reinterpret_cast<const std::byte*>(dense.data()), dtype::bf16,
                                                make_shape({n, k}));
      simd::gemm_dispatched(view, x, y, &pool);
    }
  }
};

// Copies of an N×K matrix in `spec` totalling at least min_bytes (at least one), so
// that a GEMV rotating through them reads its weights from DRAM.
inline std::vector<matrix_copy> make_copies(const quant::format_spec& spec, std::int64_t n, std::int64_t k,
                                            std::uint64_t min_bytes, std::mt19937_64& rng) {
  std::vector<matrix_copy> copies;
  std::uint64_t total = 0;
  do {
    copies.emplace_back(spec, n, k, rng);
    total += copies.back().bytes();
  } while (total < min_bytes);
  return copies;
}

// Seconds per call of fn(i) over rotating copies, at least `min_seconds` in total.
template <class F>
double time_calls(std::size_t copies, double min_seconds, F&& fn) {
  for (std::size_t i = 0; i < copies; ++i) fn(i);  // warm-up: page faults, the pool's threads
  std::size_t calls = 0;
  const auto t0 = std::chrono::steady_clock::now();
  double elapsed = 0;
  do {
    fn(calls % copies);
    ++calls;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  } while (elapsed < min_seconds || calls < copies);
  return elapsed / static_cast<double>(calls);
}

// The GEMV's bandwidth probe, one sum over it before each paired pass: 512 MB, as
// read_bandwidth's default (the 2-vCPU Xeon VM's L3 is 105 MB; a probe near that size
// would be partly served from it).
inline constexpr std::size_t gemv_probe_bytes = std::size_t{512} << 20;

// A fraction of a measured limit, paired: `rounds` times, probe() measures the limit
// (bytes/s or FLOP/s) and right after it work() returns the seconds of one call; the
// round's fraction = amount_per_call / seconds / limit; medians over the rounds. On a
// shared host the limits drift within a run (the 2-vCPU Xeon VM: 10-20 GB/s on 2
// threads, and a 1-thread FMA peak of 85-143 GFLOP/s, minutes apart), so a limit taken
// once at the start misstates a later kernel's fraction by as much; a probe taken
// within a second of the call shares its phase. A round that a descheduled vCPU
// stalls moves a median little.
struct paired_result {
  double fraction;  // median over rounds of the call's rate over its probe's
  double limit;     // median probe (bytes/s or FLOP/s)
  double seconds;   // median seconds per call
};
template <class Probe, class Work>
paired_result time_paired(int rounds, double amount_per_call, Probe&& probe, Work&& work) {
  std::vector<double> fractions, limits, times;  // [rounds] each
  for (int r = 0; r < rounds; ++r) {
    const double limit = probe();
    const double t = work();
    fractions.push_back(amount_per_call / t / limit);
    limits.push_back(limit);
    times.push_back(t);
  }
  return {median(fractions), median(limits), median(times)};
}

// A GEMV over rotated copies against the read bandwidth: probes of one sum over `probe`
// (gemv_probe_bytes), each followed by one pass of fn(i) over every copy.
template <class F>
paired_result time_paired_gemv(thread_pool& pool, const aligned_buffer<float>& probe, std::size_t copies,
                               double bytes_per_call, int rounds, F&& fn) {
  for (std::size_t i = 0; i < copies; ++i) fn(i);  // warm-up: page faults, the pool's threads
  return time_paired(rounds, bytes_per_call, [&] { return read_bandwidth(pool, probe, 1); }, [&] {
    const auto t0 = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < copies; ++i) fn(i);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / static_cast<double>(copies);
  });
}

// A GEMM call against the f32 FMA peak: probes of fma_peak_fn over `probe_seconds`, each
// followed by one call of fn().
template <class F>
paired_result time_paired_gemm(thread_pool& pool, double flops_per_call, int rounds, double probe_seconds, F&& fn) {
  fn();  // warm-up: the pool's threads, the output's pages
  return time_paired(
      rounds, flops_per_call, [&] { return xsimd::dispatch<simd::dispatch_archs>(fma_peak_fn{})(pool, probe_seconds); },
      [&] {
        const auto t0 = std::chrono::steady_clock::now();
        fn();
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      });
}

}  // namespace qmr::bench
