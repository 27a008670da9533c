// Quantize a matrix to 4 bits and multiply it by a vector, with the headers alone (the README's example).
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include <qmr/qmr.hpp>

int main() {
  const int rows = 256, cols = 1024;  // W is [out_features, in_features], like a PyTorch Linear
  std::mt19937 rng(0);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> w(std::size_t{rows} * cols), x(cols), y(rows);
  for (float& v : w) v = 0.02f * normal(rng);
  for (float& v : x) v = normal(rng);

  // Round-to-nearest into 4-bit codes, one f16 scale and zero point per 128 weights.
  const qmr::quant::qtensor q = qmr::quant::quantize_rtn({w.data(), rows, cols}, qmr::quant::parse_format("w4g128"));
  qmr::ref::gemv_ref(q.view(), x, y);  // y = W_q x, dequantizing on the fly, f32 accumulation

  double err = 0, ref = 0;  // compare with the f32 weights
  for (int r = 0; r < rows; ++r) {
    double exact = 0;
    for (int c = 0; c < cols; ++c) exact += double(w[r * cols + c]) * x[c];
    err += (y[r] - exact) * (y[r] - exact);
    ref += exact * exact;
  }
  const double rel = std::sqrt(err / ref);
  std::printf("%s: %.3f bits/weight, %.1f KiB instead of %.1f KiB, relative GEMV error %.3f\n", q.spec().str().c_str(),
              q.spec().bits_per_weight(cols), q.layout().total_bytes() / 1024.0, w.size() * 4 / 1024.0, rel);
  return rel < 0.15 ? 0 : 1;  // 4-bit RTN on Gaussian weights lands near 0.1
}
