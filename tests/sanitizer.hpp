// What the tests do differently under AddressSanitizer: whether the binary runs under it, and which cells of a format sweep run there.
#pragma once

namespace qmr::testing {

// Whether this binary runs under AddressSanitizer (GCC defines __SANITIZE_ADDRESS__,
// clang answers __has_feature).
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool under_asan = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool under_asan = true;
#else
inline constexpr bool under_asan = false;
#endif
#else
inline constexpr bool under_asan = false;
#endif

// Whether a bit-width x group-size sweep runs this cell. Unsanitized, every cell. Under
// the sanitizers (5-10x slower; CI's step there runs on 2 cores) one group size per bit
// width, rotating with the width, so that the sweep still meets every bit width and every
// group size, each with both symmetries: a memory check, while the unsanitized build keeps
// the full quality sweep. group_index counts from 0 among n_groups sizes.
inline bool sweep_runs(int bits, int group_index, int n_groups) {
  return !under_asan || group_index == bits % n_groups;
}

}  // namespace qmr::testing
