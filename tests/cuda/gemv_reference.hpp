// Shared pieces of the CUDA GEMV tests: activation conversion and type names, the float64 reference y = x · Wᵀ with Σ|w·x| per output (the scale of the error bounds), a poisoned output's untouched check, and the f16 arithmetic the host layout tests emulate.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "qmr/core/half.hpp"
#include "qmr/core/thread_pool.hpp"
#include "qmr/quant/qtensor.hpp"
#include "gpu_check.hpp"

namespace qmr::testing::gpu {

// An activation of type T (f16 or bf16) from a float, rounded to nearest even.
template <class T>
T to_act(float v) {
  if constexpr (std::is_same_v<T, f16>) return to_f16(v);
  else return to_bf16(v);
}
// The name of an activation or output type in failure messages.
template <class T>
const char* type_name() {
  if constexpr (std::is_same_v<T, f16>) return "f16";
  else if constexpr (std::is_same_v<T, bf16>) return "bf16";
  else return "f32";
}
// Relative rounding of the output type (twice its half-ulp; 0 for f32).
template <class T>
float out_rel() {
  if constexpr (std::is_same_v<T, f16>) return 1.0e-3f;
  else if constexpr (std::is_same_v<T, bf16>) return 8.0e-3f;
  else return 0.0f;
}

// y_ref[m * rows + n] = Σ_c w(n, c) x[m * cols + c] in float64, and abs_sum the same sum of
// |w x|, for the m_rows rows of x (f32 values of the f16 activations).
inline void reference_gemv(const quant::qtensor_view& w, const std::vector<float>& x, std::int64_t m_rows, thread_pool& pool,
                           std::vector<double>& y_ref, std::vector<double>& abs_sum) {
  const std::int64_t rows = w.rows(), cols = w.cols();
  y_ref.assign(static_cast<std::size_t>(m_rows * rows), 0.0);
  abs_sum.assign(y_ref.size(), 0.0);
  parallel_for(&pool, rows, [&](std::int64_t r0, std::int64_t r1) {
    std::vector<double> row(static_cast<std::size_t>(cols));
    for (std::int64_t n = r0; n < r1; ++n) {
      for (std::int64_t c = 0; c < cols; ++c) row[static_cast<std::size_t>(c)] = static_cast<double>(w.value(n, c));
      for (std::int64_t m = 0; m < m_rows; ++m) {
        double s = 0.0, a = 0.0;
        for (std::int64_t c = 0; c < cols; ++c) {
          const double p = row[static_cast<std::size_t>(c)] * x[static_cast<std::size_t>(m * cols + c)];
          s += p;
          a += std::fabs(p);
        }
        y_ref[static_cast<std::size_t>(m * rows + n)] = s;
        abs_sum[static_cast<std::size_t>(m * rows + n)] = a;
      }
    }
  });
}

// Whether an output element still holds the 0xff poison written before the run.
template <class T>
bool untouched(const T& v) {
  std::uint8_t bytes[sizeof(T)];
  std::memcpy(bytes, &v, sizeof(T));
  for (std::uint8_t b : bytes)
    if (b != 0xff) return false;
  return true;
}

// Checks the outputs y [max_m][rows] of one run at batch M against the reference: rows of
// y past M must still hold the poison; the others must be finite and within
// sum_rel * Σ|w x| + out_rel * |ref| + 1e-6 of it. `what` names the run in failure
// messages. Raises worst to the largest error / tolerance; returns the typical error
// ||y - ref|| / ||Σ|w x|||.
template <class TY>
double compare_outputs(const std::vector<TY>& y, int M, std::int64_t max_m, std::int64_t rows, const std::vector<double>& y_ref,
                       const std::vector<double>& abs_sum, double sum_rel, double out_rel, const std::string& what,
                       double& worst) {
  double num = 0.0, den = 0.0;
  for (std::int64_t m = 0; m < max_m; ++m)
    for (std::int64_t r = 0; r < rows; ++r) {
      const std::size_t i = static_cast<std::size_t>(m * rows + r);
      if (m >= M) {
        CHECK(untouched(y[i]), "%s: row %lld of y was written past M", what.c_str(), static_cast<long long>(m));
        continue;
      }
      const double got = static_cast<double>(to_float(y[i]));
      const double tol = sum_rel * abs_sum[i] + out_rel * std::fabs(y_ref[i]) + 1.0e-6;
      const double err = std::fabs(got - y_ref[i]);
      if (std::isfinite(err) && err / tol > worst) worst = err / tol;
      num += err * err;
      den += abs_sum[i] * abs_sum[i];
      CHECK(std::isfinite(got) && err <= tol, "%s: y[%lld, %lld] = %.8g, reference %.8g (tolerance %.3g)", what.c_str(),
            static_cast<long long>(m), static_cast<long long>(r), got, y_ref[i], tol);
    }
  return den > 0.0 ? std::sqrt(num / den) : 0.0;
}

// Half h (0 low, 1 high) of an f16x2 word, as a double.
inline double half_value(std::uint32_t word, int h) { return to_float(f16{static_cast<std::uint16_t>(word >> (16 * h))}); }
// fma.rn.f16x2 on one half: the exact a * b + c rounded once to f16 (exact in float for the
// decode's and the lane kernel's operands, whose products keep within 24 bits).
inline double fma_f16(double a, double b, double c) { return to_float(to_f16(static_cast<float>(a * b + c))); }

}  // namespace qmr::testing::gpu
