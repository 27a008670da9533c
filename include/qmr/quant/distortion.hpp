// How far a quantized matrix is from the original: RMS relative error, max error, SNR.
#pragma once

#include <cmath>
#include <cstdint>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "qtensor.hpp"

namespace qmr::quant {

struct distortion_stats {
  double sum_sq_error = 0;  // sum (w - w_hat)^2
  double sum_sq_ref = 0;    // sum w^2
  double max_abs_error = 0;
  std::int64_t count = 0;

  // ||W - Ŵ||_F / ||W||_F, the figure the RTN tables quote.
  double rms_relative() const { return sum_sq_ref > 0 ? std::sqrt(sum_sq_error / sum_sq_ref) : std::sqrt(sum_sq_error); }
  double snr_db() const { return 10.0 * std::log10(sum_sq_ref / sum_sq_error); }
};

inline distortion_stats measure_distortion(matrix_view<const float> w, const qtensor_view& q) {
  check(w.rows == q.rows() && w.cols == q.cols(), "measure_distortion: shapes differ");
  distortion_stats s;
  for (std::int64_t r = 0; r < w.rows; ++r)
    for (std::int64_t c = 0; c < w.cols; ++c) {
      const double x = w(r, c);
      const double d = x - q.value(r, c);
      s.sum_sq_error += d * d;
      s.sum_sq_ref += x * x;
      s.max_abs_error = std::max(s.max_abs_error, std::fabs(d));
    }
  s.count = w.rows * w.cols;
  return s;
}

}  // namespace qmr::quant
