// The int8-activation (a8) kernels compiled for AVX-512 with VNNI and VBMI (Ice Lake, Zen 4 and later); gemm_a8_dispatched picks them after its own CPUID check.
#include "qmr/kernels/simd/dispatch_impl.hpp"

QMR_SIMD_INSTANTIATE_A8(qmr::simd::avx512vnni);
