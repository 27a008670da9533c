// Software prefetch of the SIMD kernels, at addresses computed as integers.
#pragma once

#include <cstdint>

namespace qmr::simd {

// Prefetches, for reading, the cache line at `address` into the levels Locality names
// (__builtin_prefetch's: 3 = every level, prefetcht0 on x86; 2 = L2 and below,
// prefetcht1). The kernels prefetch a fixed distance ahead of their streams, which near
// the end of an array lies past it: there a pointer would be undefined behaviour
// (beyond one past the end), while an integer address is merely one that no load
// follows, and a prefetch never faults. This is the SIMD kernels' one integer-to-pointer
// cast. Always inlined: as an ordinary inline function it changed GCC 12's inlining of
// the GEMVs that prefetch (gemv_quantized_registers was no longer a function of its own,
// the GEMM's format lambdas grew by half), where the builtin alone changes nothing.
template <int Locality = 3>
[[gnu::always_inline]] inline void prefetch_address(std::uintptr_t address) {
  // NOLINTNEXTLINE(performance-no-int-to-ptr): an integer address on purpose (above)
  __builtin_prefetch(reinterpret_cast<const void*>(address), 0, Locality);
}

// The cache line `ahead` bytes past p (which may lie past p's array).
template <int Locality = 3>
[[gnu::always_inline]] inline void prefetch_ahead(const void* p, std::uintptr_t ahead) {
  prefetch_address<Locality>(reinterpret_cast<std::uintptr_t>(p) + ahead);
}

}  // namespace qmr::simd
