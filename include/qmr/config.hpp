// Version, the host/device function macro and the std / cuda::std alias shared by CPU and GPU code.
#pragma once

#define QMR_VERSION_MAJOR 0
#define QMR_VERSION_MINOR 1
#define QMR_VERSION_PATCH 0
#define QMR_VERSION_STRING "0.1.0"

// Code that must compile for both the CPU and a CUDA device (formats, packing,
// f16/bf16 conversion, the per-element dequantization) is marked QMR_HOST_DEVICE.
#if defined(__CUDACC__)
#define QMR_HOST_DEVICE __host__ __device__
#define QMR_DEVICE __device__
#else
#define QMR_HOST_DEVICE
#define QMR_DEVICE
#endif

// Under nvcc the shared code uses CCCL's cuda::std (usable in device code);
// on the host compilers it is plain std. Only headers that exist in both
// (<cstdint>, <type_traits>, <bit>, <span>, <array>) are reached through this alias.
#if defined(__CUDACC__)
#include <cuda/std/array>
#include <cuda/std/bit>
#include <cuda/std/cstdint>
#include <cuda/std/type_traits>
namespace qmr { namespace qstd = ::cuda::std; }
#else
#include <array>
#include <bit>
#include <cstdint>
#include <type_traits>
namespace qmr { namespace qstd = ::std; }
#endif

// Around AVX-512 kernels: GCC 12's intrinsics start from _mm512_undefined_*(), which it
// reports as (maybe-)uninitialized where they are inlined (GCC bug 105593, fixed in 13).
#if defined(__GNUC__) && !defined(__clang__)
#define QMR_INTRINSIC_WARNINGS_OFF                                     \
  _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wmaybe-uninitialized\"") \
      _Pragma("GCC diagnostic ignored \"-Wuninitialized\"")
#define QMR_INTRINSIC_WARNINGS_ON _Pragma("GCC diagnostic pop")
#else
#define QMR_INTRINSIC_WARNINGS_OFF
#define QMR_INTRINSIC_WARNINGS_ON
#endif
