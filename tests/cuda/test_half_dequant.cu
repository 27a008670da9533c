// GPU test: the host/device f16/bf16 conversions and per-element dequantization give bit-identical results on the device. Exits 77 (skip) without a GPU.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "qmr/core/half.hpp"
#include "qmr/quant/format.hpp"
#include "qmr/quant/pack.hpp"
#include "gpu_check.hpp"

namespace {

#define CUDA_CHECK(call)                                                                   \
  do {                                                                                     \
    const cudaError_t err_ = (call);                                                       \
    if (err_ != cudaSuccess) {                                                             \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(err_)); \
      std::exit(1);                                                                        \
    }                                                                                      \
  } while (0)

// out[i] = bits of to_f16 / to_bf16 of in[i], and to_float of every 16-bit pattern.
// native_* are CUDA's own conversions (__float2half_rn, __float2bfloat16_rn): an independent oracle.
__global__ void convert(const float* in, int n, unsigned short* f16_out, unsigned short* bf16_out,
                        unsigned short* native_f16, unsigned short* native_bf16, float* from_f16, float* from_bf16) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    f16_out[i] = qmr::to_f16(in[i]).bits;
    bf16_out[i] = qmr::to_bf16(in[i]).bits;
    native_f16[i] = __half_as_ushort(__float2half_rn(in[i]));
    native_bf16[i] = __bfloat16_as_ushort(__float2bfloat16_rn(in[i]));
  }
  if (i < 65536) {
    from_f16[i] = qmr::to_float(qmr::f16{static_cast<unsigned short>(i)});
    from_bf16[i] = qmr::to_float(qmr::bf16{static_cast<unsigned short>(i)});
  }
}

// y[i] = dequantized value of code i of a packed row of `bits`-bit codes, one group of 32.
__global__ void dequant(const unsigned char* packed, int n, int bits, qmr::f16 scale, unsigned zero, float* y) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = qmr::quant::dequant_value(scale, qmr::quant::get_code(packed, i, bits), zero);
}

template <class T>
bool same_bits(const T& a, const T& b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

}  // namespace

int main() {
  if (!qmr::testing::gpu::device_present()) return 77;
  // Random bit patterns (NaNs excluded: their payloads may differ) plus edge cases.
  const int n = 1 << 20;
  std::vector<float> in(n);
  unsigned state = 12345;
  for (int i = 0; i < n; ++i) {
    state = state * 1664525u + 1013904223u;
    unsigned bits = state;
    if ((bits & 0x7f800000u) == 0x7f800000u) bits &= ~0x00400000u & 0xff800000u;  // make NaNs infinities
    std::memcpy(&in[static_cast<std::size_t>(i)], &bits, 4);
  }
  const float edges[] = {0.0f, -0.0f, 65504.0f, 65520.0f, 65519.99f, 5.9604645e-08f, 2.9802322e-08f, 1.0f, -3.14159f};
  for (int i = 0; i < 9; ++i) in[static_cast<std::size_t>(i)] = edges[i];

  float *d_in, *d_from_f16, *d_from_bf16, *d_y;
  unsigned short *d_f16, *d_bf16, *d_native_f16, *d_native_bf16;
  unsigned char* d_packed;
  CUDA_CHECK(cudaMalloc(&d_in, n * sizeof(float)));
  CUDA_CHECK(cudaMalloc(&d_f16, n * sizeof(unsigned short)));
  CUDA_CHECK(cudaMalloc(&d_bf16, n * sizeof(unsigned short)));
  CUDA_CHECK(cudaMalloc(&d_native_f16, n * sizeof(unsigned short)));
  CUDA_CHECK(cudaMalloc(&d_native_bf16, n * sizeof(unsigned short)));
  CUDA_CHECK(cudaMalloc(&d_from_f16, 65536 * sizeof(float)));
  CUDA_CHECK(cudaMalloc(&d_from_bf16, 65536 * sizeof(float)));
  CUDA_CHECK(cudaMemcpy(d_in, in.data(), n * sizeof(float), cudaMemcpyHostToDevice));
  convert<<<(n + 255) / 256, 256>>>(d_in, n, d_f16, d_bf16, d_native_f16, d_native_bf16, d_from_f16, d_from_bf16);
  CUDA_CHECK(cudaGetLastError());
  std::vector<unsigned short> f16_out(n), bf16_out(n), native_f16(n), native_bf16(n);
  CUDA_CHECK(cudaMemcpy(native_f16.data(), d_native_f16, n * 2, cudaMemcpyDeviceToHost));
  CUDA_CHECK(cudaMemcpy(native_bf16.data(), d_native_bf16, n * 2, cudaMemcpyDeviceToHost));
  std::vector<float> from_f16(65536), from_bf16(65536);
  CUDA_CHECK(cudaMemcpy(f16_out.data(), d_f16, n * 2, cudaMemcpyDeviceToHost));
  CUDA_CHECK(cudaMemcpy(bf16_out.data(), d_bf16, n * 2, cudaMemcpyDeviceToHost));
  CUDA_CHECK(cudaMemcpy(from_f16.data(), d_from_f16, 65536 * 4, cudaMemcpyDeviceToHost));
  CUDA_CHECK(cudaMemcpy(from_bf16.data(), d_from_bf16, 65536 * 4, cudaMemcpyDeviceToHost));

  int failures = 0;
  for (int i = 0; i < n && failures < 10; ++i) {
    const float x = in[static_cast<std::size_t>(i)];
    const std::size_t k = static_cast<std::size_t>(i);
    const unsigned short h = qmr::to_f16(x).bits, b = qmr::to_bf16(x).bits;
    if (f16_out[k] != h || bf16_out[k] != b || native_f16[k] != h || native_bf16[k] != b) {
      std::fprintf(stderr, "conversion of %a differs: qmr device f16 %04x bf16 %04x, CUDA f16 %04x bf16 %04x, host %04x %04x\n",
                   x, f16_out[k], bf16_out[k], native_f16[k], native_bf16[k], h, b);
      ++failures;
    }
  }
  for (int b = 0; b < 65536 && failures < 20; ++b) {
    const float host16 = qmr::to_float(qmr::f16{static_cast<unsigned short>(b)});
    const float hostb16 = qmr::to_float(qmr::bf16{static_cast<unsigned short>(b)});
    if (!same_bits(host16, from_f16[static_cast<std::size_t>(b)]) || !same_bits(hostb16, from_bf16[static_cast<std::size_t>(b)])) {
      std::fprintf(stderr, "to_float of %04x differs between host and device\n", b);
      ++failures;
    }
  }

  // Dequantization of random packed codes at every bit-width.
  CUDA_CHECK(cudaMalloc(&d_packed, 4096));
  CUDA_CHECK(cudaMalloc(&d_y, 4096 * sizeof(float)));
  for (int bits : qmr::quant::supported_bits) {
    const int count = 1024;
    std::vector<unsigned char> packed(static_cast<std::size_t>(qmr::quant::packed_bytes(count, bits)));
    for (auto& byte : packed) {
      state = state * 1664525u + 1013904223u;
      byte = static_cast<unsigned char>(state >> 24);
    }
    const qmr::f16 scale = qmr::to_f16(0.0123f);
    const unsigned zero = 1u << (bits - 1);
    CUDA_CHECK(cudaMemcpy(d_packed, packed.data(), packed.size(), cudaMemcpyHostToDevice));
    dequant<<<(count + 255) / 256, 256>>>(d_packed, count, bits, scale, zero, d_y);
    CUDA_CHECK(cudaGetLastError());
    std::vector<float> y(count);
    CUDA_CHECK(cudaMemcpy(y.data(), d_y, count * sizeof(float), cudaMemcpyDeviceToHost));
    for (int i = 0; i < count && failures < 30; ++i) {
      const float expect = qmr::quant::dequant_value(scale, qmr::quant::get_code(packed.data(), i, bits), zero);
      if (!same_bits(expect, y[static_cast<std::size_t>(i)])) {
        std::fprintf(stderr, "w%d code %d: device %g host %g\n", bits, i, y[static_cast<std::size_t>(i)], expect);
        ++failures;
      }
    }
  }
  CUDA_CHECK(cudaFree(d_in));
  CUDA_CHECK(cudaFree(d_f16));
  CUDA_CHECK(cudaFree(d_bf16));
  CUDA_CHECK(cudaFree(d_native_f16));
  CUDA_CHECK(cudaFree(d_native_bf16));
  CUDA_CHECK(cudaFree(d_from_f16));
  CUDA_CHECK(cudaFree(d_from_bf16));
  CUDA_CHECK(cudaFree(d_packed));
  CUDA_CHECK(cudaFree(d_y));
  std::printf("%s: %d conversions, 65536 decodes x2, 6 bit-widths of dequantization\n", failures ? "FAIL" : "ok", n);
  return failures ? 1 : 0;
}
