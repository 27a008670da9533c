// Lane-unit GEMV on CUDA cores for small batches: y[M, rows] = x[M, cols] · Wᵀ with f16 activations and 2/3/4/8-bit weights (symmetric or with zero points), each lane decoding the codes of one 16-byte load into f16x2 pairs (one LOP3/PRMT a pair: the codes as exact f16 subnormals, against x staged with a power-of-two scale per unit), f16x2 dot products per unit scaled into f32.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "../../config.hpp"
#include "../../core/error.hpp"
#include "../../core/half.hpp"
#include "../../quant/format.hpp"
#include "../../quant/pack.hpp"
#include "../../quant/qtensor.hpp"
#include "launch.cuh"

namespace qmr::cuda {

// ---------------------------------------------------------------------------
// The "lane layout". A unit is what one lane decodes from one 16-byte load of
// the primary plane: 64 columns for 2- and 3-bit codes (3-bit adds an 8-byte
// plane of high bits), 32 for 4-bit, 16 for 8-bit. Row r's units are contiguous
// ([rows][units] uint4), so a warp's 32 lanes read 512 contiguous bytes. Inside
// a unit, word j (32 bits) holds n = 32 / pb fields of pb bits (pb = primary
// plane bits: 2 for 3-bit codes): column n*j + 2i + h (i < n/2, h < 2) is field
// i + (n/2)*h, so masking the field pair (i, i + n/2) puts the codes of columns
// 2i and 2i+1 in the two f16 halves (at bit pb*k of each, k = i % (8/pb), after
// one 8-bit shift per pass of 8/pb pairs): as they are, exact f16 subnormals
// code * 2^(pb*k - 24) (the lane kernel's decode); ORing 1024 (0x6400) instead
// gives exact f16 values 1024 + 2^(pb*k) * code that one HFMA2 turns into
// (code - 2^(Bits-1)) / 2^(Bits-1) (the split kernel's, gemv_split.cuh).
// Scales stay [rows][groups] f16 (2-byte loads, 4..8 lanes share one) and, for
// asymmetric formats, zero points [rows][groups] u8, whose term s * z * Σx over
// the unit uses unit sums of x computed once per block (as does the symmetric
// z = 2^(Bits-1)). Bytes: codes Bits/8 per weight, nothing padded, plus scales
// and zeros.
// ---------------------------------------------------------------------------
struct gemv_lanes_traits {
  // Measured on an H200 (8192 x 8192, M = 1, bench_runs/cuda_proto): two rows
  // per warp share the activation loads (R = 2 beat R = 1 by 5-10%); one unit
  // per row per step with the next step's loads issued before decoding (U = 1,
  // 53-55 registers, 32 warps/SM) beat U = 2 and 48 warps/SM at 40 registers
  // (which spilled for 3-bit); 512-thread blocks, two per SM, x staged once per block.
  static constexpr int rows_per_warp = 2;
  static constexpr int block_threads = 512;
  static constexpr int block_warps = block_threads / 32;
  static constexpr int blocks_per_sm = 2;
  static constexpr int max_batch = 8;
  // Activations staged in shared memory (M x cols f16) must leave two blocks per SM.
  static constexpr int max_x_bytes = 96 * 1024;
};

QMR_HOST_DEVICE constexpr int lanes_prim_bits(int bits) { return bits == 3 ? 2 : bits; }
QMR_HOST_DEVICE constexpr int lanes_unit_cols(int bits) { return 128 / lanes_prim_bits(bits); }
static_assert(lanes_unit_cols(2) == 64 && lanes_unit_cols(3) == 64 && lanes_unit_cols(4) == 32 && lanes_unit_cols(8) == 16);

// Whether a format and column count have a lane layout: 2, 3, 4 or 8 bits,
// whole units per row, and units that never straddle a quantization group.
inline bool lanes_supported(const quant::format_spec& spec, std::int64_t cols) {
  if (!spec.is_quantized()) return false;
  if (spec.bits != 2 && spec.bits != 3 && spec.bits != 4 && spec.bits != 8) return false;
  const int uc = lanes_unit_cols(spec.bits);
  if (cols % uc != 0) return false;
  if (spec.group == quant::per_channel) return true;
  return spec.group >= uc && spec.group % uc == 0 && (spec.group & (spec.group - 1)) == 0;
}

// Dynamic shared memory of one lane-kernel block (gemv_lanes_kernel): x of mb batch
// rows in whole 128-byte swizzle blocks, then each unit's float2 {2^(24 - t), Σx}.
inline std::int64_t lanes_smem_bytes(int mb, std::int64_t cols, std::int64_t units) {
  return (mb * cols * 2 + 127) / 128 * 128 + mb * units * 8;
}

// Byte offsets of the three arrays inside one lane-layout buffer.
struct lanes_layout {
  std::int64_t units = 0;        // per row
  std::int64_t hi_offset = 0;    // uint2 [rows][units] high-bit plane (3-bit only)
  std::int64_t scale_offset = 0; // f16 [rows][n_groups]
  std::int64_t zero_offset = 0;  // u8 [rows][n_groups], asymmetric only
  std::int64_t bytes = 0;
  static lanes_layout of(int bits, std::int64_t rows, std::int64_t cols, std::int64_t n_groups, bool asym) {
    lanes_layout l;
    l.units = cols / lanes_unit_cols(bits);
    l.hi_offset = rows * l.units * 16;
    l.scale_offset = l.hi_offset + (bits == 3 ? rows * l.units * 8 : 0);
    l.zero_offset = l.scale_offset + rows * n_groups * 2;
    l.bytes = l.zero_offset + (asym ? rows * n_groups : 0);
    return l;
  }
};

namespace detail {

// The shift of 3-bit pass P's high bits (see lanes_decode): the four passes of a
// high-bit word sit at translates -2, +6, -1, +7 of the bit set {2, 4, 6, 8, 18,
// 20, 22, 24}, which tile the 32 bits.
QMR_HOST_DEVICE constexpr int lanes_hi_translate(int s) { return s == 0 ? -2 : s == 1 ? 6 : s == 2 ? -1 : 7; }

// Places `code` as column c (0 .. lanes_unit_cols(bits) - 1) of one unit: its 4
// primary words `unit` and, for 3-bit codes, its 2 high-bit words `hi`. Pair p
// (lanes_pair_word) decodes columns 2p and 2p + 1. Shared by the lane layout and
// the split layout (gemv_split.cuh), which differ only in which weight a column holds.
inline void lanes_place(qstd::uint32_t* unit, qstd::uint32_t* hi, int c, qstd::uint32_t code, int bits) {
  const int pb = lanes_prim_bits(bits), n = 32 / pb;
  const int j = c / n, cc = c % n, i = cc / 2, h = cc % 2;
  unit[j] |= (code & ((1u << pb) - 1u)) << (pb * (i + (n / 2) * h));
  if (bits == 3) {
    const int pass = i / 4, k = i % 4, p = 2 * j + pass;  // 8 passes of 4 pairs per unit
    const int pos = 2 * k + 2 + 16 * h + lanes_hi_translate(p % 4);
    hi[p / 4] |= ((code >> 2) & 1u) << pos;
  }
}

// Repacks a qtensor into the lane layout: 32-bit words, codes at word 0, the
// high-bit plane at hi_offset / 4, the scales (f16 bits, two per word) at
// scale_offset / 4, the zero points (bytes) at zero_offset / 4.
inline std::vector<qstd::uint32_t> lanes_repack(const quant::qtensor_view& w) {
  const int bits = w.spec.bits, uc = lanes_unit_cols(bits);
  const std::int64_t rows = w.rows(), cols = w.cols();
  const lanes_layout l = lanes_layout::of(bits, rows, cols, w.layout.n_groups, !w.spec.symmetric);
  std::vector<qstd::uint32_t> out(static_cast<std::size_t>(l.bytes + 3) / 4, 0u);
  qstd::uint32_t* hi = out.data() + l.hi_offset / 4;
  for (std::int64_t r = 0; r < rows; ++r) {
    const qstd::uint8_t* row = w.codes + r * w.layout.code_row_bytes;
    for (std::int64_t u = 0; u < l.units; ++u)
      for (int c = 0; c < uc; ++c)
        lanes_place(out.data() + (r * l.units + u) * 4, hi + (r * l.units + u) * 2, c, quant::get_code(row, u * uc + c, bits), bits);
  }
  auto* sc = reinterpret_cast<qstd::uint16_t*>(out.data() + l.scale_offset / 4);
  for (std::int64_t i = 0; i < rows * w.layout.n_groups; ++i) sc[i] = w.scales[i].bits;
  if (!w.spec.symmetric) {
    auto* zp = reinterpret_cast<qstd::uint8_t*>(out.data()) + l.zero_offset;
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t g = 0; g < w.layout.n_groups; ++g)
        zp[r * w.layout.n_groups + g] = static_cast<qstd::uint8_t>(quant::get_code(w.zeros + r * w.layout.zero_row_bytes, g, bits));
  }
  return out;
}

// Kernel arguments (by value).
struct lanes_args {
  const uint4* q;         // [rows][units]
  const uint2* hq;        // [rows][units], 3-bit only
  const __half* scales;   // [rows][n_groups]
  const qstd::uint8_t* zeros;  // [rows][n_groups], asymmetric only
  int rows, cols, units, n_groups;
  int group_shift;        // log2(group); 31 for per-channel (one group)
  int m;                  // batch, 1..MB
};

// The two primitive bit operations of the decode, as PTX on the device
// (lanes_device_ops) and in plain C++ for host tests of the layout
// (lanes_host_ops); everything else in lanes_pair_word is shared.
struct lanes_host_ops {
  static constexpr qstd::uint32_t and_or(qstd::uint32_t a, qstd::uint32_t m, qstd::uint32_t c) { return (a & m) | c; }
  // PTX prmt (default mode): byte i of the result is byte (s >> 4i) & 7 of {b, a}.
  static constexpr qstd::uint32_t byte_perm(qstd::uint32_t a, qstd::uint32_t b, qstd::uint32_t s) {
    const qstd::uint64_t ab = (static_cast<qstd::uint64_t>(b) << 32) | a;
    qstd::uint32_t r = 0;
    for (int i = 0; i < 4; ++i) r |= static_cast<qstd::uint32_t>((ab >> (8 * ((s >> (4 * i)) & 7u))) & 0xffu) << (8 * i);
    return r;
  }
};
#ifdef __CUDACC__
struct lanes_device_ops {
  static QMR_DEVICE __forceinline__ qstd::uint32_t and_or(qstd::uint32_t a, qstd::uint32_t m, qstd::uint32_t c) {
    qstd::uint32_t d;
    asm("lop3.b32 %0, %1, %2, %3, 0xea;" : "=r"(d) : "r"(a), "r"(m), "r"(c));  // (a & m) | c
    return d;
  }
  static QMR_DEVICE __forceinline__ qstd::uint32_t byte_perm(qstd::uint32_t a, qstd::uint32_t b, qstd::uint32_t s) {
    return __byte_perm(a, b, s);
  }
};
#endif

// The bit position of pair p's codes inside each f16 half of its word (see
// lanes_pair_fields): 0 for 8-bit codes, pb * (p's field within its 8-bit pass) below.
template <int Bits>
QMR_HOST_DEVICE constexpr int lanes_pair_shift(int p) {
  if constexpr (Bits == 8) {
    return 0;
  } else {
    constexpr int pb = lanes_prim_bits(Bits), n = 32 / pb, per_pass = 8 / pb;
    return pb * ((p % (n / 2)) % per_pass);
  }
}
// The exponent e of pair p's magic-number word: its halves hold f16 1024 +
// 2^(e - Bits + 1) * code, so v * 2^-e - (2^(10-e) + 1) = (code - z) / z with
// z = 2^(Bits-1), exactly (e <= 8): the code's shift plus its width less one.
template <int Bits>
QMR_HOST_DEVICE constexpr int lanes_pair_exponent(int p) {
  return lanes_pair_shift<Bits>(p) + Bits - 1;
}
// f16x2 bit patterns of the decode's FMA operands for exponent e: 2^-e and -(2^(10-e) + 1).
QMR_HOST_DEVICE constexpr qstd::uint32_t lanes_scale_bits(int e) { return static_cast<qstd::uint32_t>((15 - e) << 10) * 0x10001u; }
QMR_HOST_DEVICE constexpr qstd::uint32_t lanes_sub_bits(int e) {
  return (static_cast<qstd::uint32_t>(((25 - e) << 10) | (1 << e)) * 0x10001u) | 0x80008000u;
}
static_assert(lanes_scale_bits(7) == 0x20002000u && lanes_sub_bits(7) == 0xc880c880u, "2^-7 and -9 in f16");
static_assert(lanes_sub_bits(3) == 0xd808d808u, "-129 in f16");

// Pair p (0 .. unit_cols/2 - 1, constant in the kernel) of a unit: columns 2p and
// 2p + 1, each half holding its code at bit lanes_pair_shift(p) ORed with `base`
// (the same 16 bits in both halves). base 0x6400 (f16 1024) gives the magic-number
// word of lanes_pair_exponent (lanes_pair_word); base 0 gives f16 subnormals
// code * 2^(shift - 24), exact, with no conversion at all (the lane kernel's decode).
// q: the unit's 4 primary words; hw: its 2 high-bit words (3-bit only).
template <int Bits, class Ops>
QMR_HOST_DEVICE __forceinline__ qstd::uint32_t lanes_pair_fields(const qstd::uint32_t (&q)[4], const qstd::uint32_t (&hw)[2], int p,
                                                                 qstd::uint32_t base) {
  if constexpr (Bits == 8) {
    // word p/2: pair 2j from bytes 0 and 2, pair 2j+1 from bytes 1 and 3, each under base's high byte
    return Ops::byte_perm(q[p / 2], base, (p & 1) ? 0x7371u : 0x7270u);
  } else {
    constexpr int pb = lanes_prim_bits(Bits), n = 32 / pb, per_pass = 8 / pb;
    const int j = p / (n / 2), i = p % (n / 2);
    const int pass = i / per_pass, k = i % per_pass;  // one 8-bit shift per pass
    const qstd::uint32_t w = pass ? (q[j] >> (8 * pass)) : q[j];
    qstd::uint32_t v = Ops::and_or(w, (((1u << pb) - 1u) * 0x10001u) << (pb * k), base);
    if constexpr (Bits == 3) {
      const int P = 2 * j + pass, t = lanes_hi_translate(P % 4);
      const qstd::uint32_t h = hw[P / 4];
      v = Ops::and_or(t < 0 ? h << -t : h >> t, 0x00040004u << (2 * k), v);
    }
    return v;
  }
}
// Pair p as the magic-number word of lanes_pair_exponent: f16 1024 + 2^(e - Bits + 1) * code per half.
template <int Bits, class Ops>
QMR_HOST_DEVICE __forceinline__ qstd::uint32_t lanes_pair_word(const qstd::uint32_t (&q)[4], const qstd::uint32_t (&hw)[2], int p) {
  return lanes_pair_fields<Bits, Ops>(q, hw, p, 0x64006400u);  // f16 1024, twice
}
// The top code bit lands on the magic word's bit e: pairs 3 (2-bit), 3 (3-bit), 1 (4-bit) and 0 (8-bit) at bits 7 and 8.
static_assert(lanes_pair_exponent<2>(3) == 7 && lanes_pair_exponent<2>(4) == 1 && lanes_pair_exponent<3>(3) == 8 &&
              lanes_pair_exponent<4>(1) == 7 && lanes_pair_exponent<8>(1) == 7, "magic-number exponents");

#ifdef __CUDACC__
QMR_DEVICE __forceinline__ qstd::uint32_t lanes_hfma2(qstd::uint32_t a, qstd::uint32_t b, qstd::uint32_t c) {
  qstd::uint32_t d;
  asm("fma.rn.f16x2 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
  return d;
}
// 16-byte weight loads: read once, so they skip L1.
QMR_DEVICE __forceinline__ uint4 lanes_ld16(const uint4* p) {
  uint4 r;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
               : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
               : "l"(p));
  return r;
}
QMR_DEVICE __forceinline__ uint2 lanes_ld8(const uint2* p) {
  uint2 r;
  asm volatile("ld.global.nc.L1::no_allocate.v2.u32 {%0,%1}, [%2];" : "=r"(r.x), "=r"(r.y) : "l"(p));
  return r;
}

// Pair p of a unit as f16x2 {(c0 - z) / z, (c1 - z) / z}, z = 2^(Bits-1), exact:
// one HFMA2 of the magic-number word (f16 bit patterns built from e, no conversion).
template <int Bits>
QMR_DEVICE __forceinline__ qstd::uint32_t lanes_decode(const qstd::uint32_t (&q)[4], const qstd::uint32_t (&hw)[2], int p) {
  const int e = lanes_pair_exponent<Bits>(p);
  return lanes_hfma2(lanes_pair_word<Bits, lanes_device_ops>(q, hw, p), lanes_scale_bits(e), lanes_sub_bits(e));
}

QMR_DEVICE __forceinline__ void lanes_store(float* y, float v) { *y = v; }
QMR_DEVICE __forceinline__ void lanes_store(f16* y, float v) { y->bits = __half_as_ushort(__float2half_rn(v)); }

// The per-unit rescaling of x both lane kernels share (see the staged kernel's comment):
// a unit's words of x summed into `sum` and their largest |x| into `amax`...
QMR_DEVICE __forceinline__ void lanes_sum_amax(qstd::uint32_t w, float& sum, float& amax) {
  const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&w));
  sum += f.x + f.y;
  amax = fmaxf(amax, fmaxf(fabsf(f.x), fabsf(f.y)));
}
// ...its exponent ex, which puts the largest |x| * 2^ex in [2^14, 2^15) (amax is a finite f16,
// at most 65504, so ex >= -1; or 0, where any exponent serves)...
QMR_DEVICE __forceinline__ int lanes_unit_exponent(float amax) { return amax > 0.0f ? 14 - ilogbf(amax) : 0; }
// ...pair p's word times 2^(ex - shift(p)), rounded to f16 (2^(ex - shift) as an f32 bit
// pattern: ex - shift lies in [-9, 38], a normal exponent)...
template <int Bits>
QMR_DEVICE __forceinline__ qstd::uint32_t lanes_rescale_pair(qstd::uint32_t w, int ex, int p) {
  const float k = __int_as_float((127 + ex - lanes_pair_shift<Bits>(p)) << 23);
  const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&w));
  const __half2 h = __floats2half2_rn(f.x * k, f.y * k);
  return *reinterpret_cast<const qstd::uint32_t*>(&h);
}
// ...and 2^(24 - ex), which turns the unit's f16x2 sums of code * x * 2^(ex - 24) back into x's units.
QMR_DEVICE __forceinline__ float lanes_unit_unscale(int ex) { return __int_as_float((127 + 24 - ex) << 23); }

// A persistent grid (at most blocks_per_sm blocks per SM); warp gw handles row
// pairs gw, gw + W, ... (W warps in all). Its work is a flat sequence of items
// (row pair, step): step s covers units 32 s .. 32 s + 31 of both rows, one per
// lane; the loads of item it + 1 are issued before item it is decoded, across
// row-pair boundaries. Lanes past a row's last unit re-read that unit (clamped)
// with a zero scale.
//
// The decode is one LOP3 (PRMT for 8-bit; two LOP3 for 3-bit) per pair of codes:
// the codes' bits masked into f16 halves with a zero exponent are the exact
// subnormals code * 2^(s - 24), s = lanes_pair_shift(p), so the HFMA2 that turns
// magic-number words into (code - z) / z is gone. Instead x is staged scaled:
// once per block, x (m rows, zero rows up to MB) is copied into shared memory as
// 16-byte slots (slot s at s ^ ((s >> 3) & 7), so that the 8 lanes of an LDS.128
// phase, consecutive units, hit distinct banks), then each unit's columns are
// multiplied by 2^(t - s) with t = 14 - floor(log2 max|x| over the unit) (exact
// powers of two, the largest |x| * 2^t in [2^14, 2^15)), and the unit keeps
// {2^(24 - t), Σx} as f32. Each product code * x * 2^(t - 24) then sits in the
// f16 range the old decode's products had (the largest at most 2^(Bits+1) x 2^-9,
// 32 of them per half), and per unit and row the f16x2 sum P gives
// Σ (code - z) x = 2^(24 - t) P - z Σx in f32, scaled by the group's scale
// (z = 2^(Bits-1), or the zero point).
template <int Bits, int MB, bool Asym, class TY>
__global__ void __launch_bounds__(gemv_lanes_traits::block_threads, MB <= 2 ? gemv_lanes_traits::blocks_per_sm : 1)
    gemv_lanes_kernel(const lanes_args a, const __half* __restrict__ x, TY* __restrict__ y) {
  constexpr int R = gemv_lanes_traits::rows_per_warp, T = gemv_lanes_traits::block_threads;
  constexpr int UC = lanes_unit_cols(Bits), P = UC / 8;  // 16-byte x slots per unit
  extern __shared__ uint4 gemv_lanes_smem[];
  const int lane = static_cast<int>(threadIdx.x) & 31, warp = static_cast<int>(threadIdx.x) >> 5;
  const int gw = static_cast<int>(blockIdx.x) * (T / 32) + warp, W = static_cast<int>(gridDim.x) * (T / 32);
  const int n_rs = (a.rows + R - 1) / R;
  const int my_rs = gw < n_rs ? (n_rs - gw + W - 1) / W : 0;
  const int steps = (a.units + 31) / 32;
  const int n_items = my_rs * steps;

  uint4 qa[R], qb[R];
  uint2 ha[R], hb[R];
  __half sa[R], sb[R];
  qstd::uint32_t za[R], zb[R];  // zero points (asymmetric)
  // Row pointers of the row pair being loaded, set once per row pair (set_rows), so that
  // a load adds only the step's unit and group offsets: the per-load row arithmetic (64-bit
  // products and clamps, ~25 of the ~190 instructions per item at 4 bits) is gone.
  const uint4* q_row[R];
  const uint2* h_row[R];
  const __half* s_row[R];
  const qstd::uint8_t* z_row[R];
  const auto set_rows = [&](int rs) {
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const std::size_t row = static_cast<std::size_t>(min(rs * R + r, a.rows - 1));  // a ragged last pair re-reads the last row
      q_row[r] = a.q + row * a.units;
      h_row[r] = Bits == 3 ? a.hq + row * a.units : nullptr;
      s_row[r] = a.scales + row * a.n_groups;
      z_row[r] = Asym ? a.zeros + row * a.n_groups : nullptr;
    }
  };
  const auto load = [&](uint4 (&q)[R], uint2 (&h)[R], __half (&s)[R], qstd::uint32_t (&z)[R], int step) {
    const int u = step * 32 + lane, uc = min(u, a.units - 1);
    const int g = (uc * UC) >> a.group_shift;
#pragma unroll
    for (int r = 0; r < R; ++r) {
      q[r] = lanes_ld16(q_row[r] + uc);
      if constexpr (Bits == 3) h[r] = lanes_ld8(h_row[r] + uc);
      else h[r] = make_uint2(0u, 0u);
      const __half sv = s_row[r][g];
      s[r] = u < a.units ? sv : __ushort_as_half(0);
      if constexpr (Asym) z[r] = z_row[r][g];
      else z[r] = 0u;
    }
  };
  int rs = gw, step = 0;
  pdl_launch_dependents();
  if (n_items > 0) {
    set_rows(rs);
    load(qa, ha, sa, za, 0);  // in flight while x is staged
  }
  // Launched with PDL, the first weights stream in while the previous kernel (which
  // may write x, or read the y written below) drains; nothing else is touched before.
  pdl_wait();
  const int row_slots = a.cols / 8;
  {
    const int nslots = MB * row_slots;
    // x by a coherent load (ld_produced), not the read-only path that const __restrict__ would give:
    // under PDL the kernel that writes x runs during this kernel's lifetime.
    const uint4* xv = reinterpret_cast<const uint4*>(x);
    for (int s = static_cast<int>(threadIdx.x); s < nslots; s += T)
      gemv_lanes_smem[s ^ ((s >> 3) & 7)] = s < a.m * row_slots ? ld_produced(xv + s) : make_uint4(0u, 0u, 0u, 0u);
  }
  __syncthreads();
  // Per unit of each batch row: the columns rescaled in place by 2^(t - shift), and
  // {2^(24 - t), Σx} as float2 [MB][units] after the staged x (whole 8-slot blocks).
  float2* unit_f = reinterpret_cast<float2*>(gemv_lanes_smem + (MB * row_slots + 7) / 8 * 8);
  for (int t = static_cast<int>(threadIdx.x); t < MB * a.units; t += T) {
    const int m = t / a.units, u = t - m * a.units;
    float sum = 0.0f, amax = 0.0f;
#pragma unroll
    for (int sl = 0; sl < P; ++sl) {
      const int s = m * row_slots + u * P + sl;
      const uint4 v = gemv_lanes_smem[s ^ ((s >> 3) & 7)];
      const qstd::uint32_t w4[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
      for (int e = 0; e < 4; ++e) lanes_sum_amax(w4[e], sum, amax);
    }
    const int ex = lanes_unit_exponent(amax);
#pragma unroll
    for (int sl = 0; sl < P; ++sl) {  // a second pass over the slots: holding them would spill
      const int s = m * row_slots + u * P + sl;
      const uint4 v = gemv_lanes_smem[s ^ ((s >> 3) & 7)];
      qstd::uint32_t w4[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
      for (int e = 0; e < 4; ++e) w4[e] = lanes_rescale_pair<Bits>(w4[e], ex, sl * 4 + e);
      gemv_lanes_smem[s ^ ((s >> 3) & 7)] = make_uint4(w4[0], w4[1], w4[2], w4[3]);
    }
    unit_f[t] = make_float2(lanes_unit_unscale(ex), sum);
  }
  __syncthreads();

  float acc[R][MB];
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int m = 0; m < MB; ++m) acc[r][m] = 0.0f;
  for (int it = 0; it < n_items; ++it) {
    const int nstep = step + 1 == steps ? 0 : step + 1;
    const int nrs = nstep == 0 ? rs + W : rs;
    if (it + 1 < n_items) {
      if (nstep == 0) set_rows(nrs);
      load(qb, hb, sb, zb, nstep);
    }
    const int u = min(step * 32 + lane, a.units - 1);
    qstd::uint32_t part[R][MB];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int m = 0; m < MB; ++m) part[r][m] = 0u;
#pragma unroll
    for (int sl = 0; sl < P; ++sl) {
      uint4 xv[MB];
#pragma unroll
      for (int m = 0; m < MB; ++m) {
        const int s = m * row_slots + u * P + sl;
        xv[m] = gemv_lanes_smem[s ^ ((s >> 3) & 7)];
      }
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const qstd::uint32_t q[4] = {qa[r].x, qa[r].y, qa[r].z, qa[r].w};
        const qstd::uint32_t hw[2] = {ha[r].x, ha[r].y};
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const qstd::uint32_t wp = lanes_pair_fields<Bits, lanes_device_ops>(q, hw, sl * 4 + e, 0u);
#pragma unroll
          for (int m = 0; m < MB; ++m) {
            const qstd::uint32_t xx = e == 0 ? xv[m].x : e == 1 ? xv[m].y : e == 2 ? xv[m].z : xv[m].w;
            part[r][m] = lanes_hfma2(wp, xx, part[r][m]);
          }
        }
      }
    }
    float2 uf[MB];  // {2^(24 - t), Σx} of the unit
#pragma unroll
    for (int m = 0; m < MB; ++m) uf[m] = unit_f[m * a.units + u];
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const float sc = __half2float(sa[r]);
      const float z = Asym ? static_cast<float>(za[r]) : static_cast<float>(1 << (Bits - 1));
#pragma unroll
      for (int m = 0; m < MB; ++m) {
        const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&part[r][m]));
        acc[r][m] = fmaf(sc, fmaf(uf[m].x, f.x + f.y, -z * uf[m].y), acc[r][m]);
      }
    }
    if (nstep == 0) {  // the row pair is done: sum over the warp, store, reset
#pragma unroll
      for (int r = 0; r < R; ++r)
#pragma unroll
        for (int m = 0; m < MB; ++m) {
          float v = acc[r][m];
#pragma unroll
          for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
          const int row = rs * R + r;
          if (lane == 0 && row < a.rows && m < a.m) lanes_store(y + static_cast<std::size_t>(m) * a.rows + row, v);
          acc[r][m] = 0.0f;
        }
    }
#pragma unroll
    for (int r = 0; r < R; ++r) {
      qa[r] = qb[r];
      ha[r] = hb[r];
      sa[r] = sb[r];
      za[r] = zb[r];
    }
    step = nstep;
    rs = nrs;
  }
}

// M = 1 with x in registers (gemv_lanes_x1_kernel). A lane holds the rescaled x of
// 64 columns (32 f16x2 registers: one unit at 2 and 3 bits, two at 4, four at 8)
// for the whole kernel, so the loop reads no shared memory and the block stages
// nothing: a warp owns a slice of 2048 columns (lane l: units l, l + 32, ... of
// the slice, so each 16-byte load instruction is 512 contiguous bytes) and a
// share of its block's rows; the slices' sums of a row meet in shared memory.
struct gemv_lanes_x1_traits {
  static constexpr int chunk_cols = 64;                // a lane's columns (32 registers of x)
  static constexpr int slice_cols = 32 * chunk_cols;   // a warp's columns
  static constexpr int block_warps = 16;               // slices x warps per slice <= 16
  static constexpr int max_slices = block_warps;       // so at most 32768 columns
  // Units a lane decodes per step (rows x its units per row): rows a step = max(1, this / units a row).
  // 4 measured 2-11% faster than 2 on an H100 at every shape and bit width it takes
  // (bench/results/cuda_gemv_h100_x1_20261205_s34.md, "u4" against "x1").
  static constexpr int units_per_step = 4;
  static_assert(units_per_step == 1 || units_per_step == 2 || units_per_step == 4 || units_per_step == 8);
  template <int Bits>
  static constexpr int rows_per_step() {
    constexpr int per_row = chunk_cols / lanes_unit_cols(Bits);
    return units_per_step / per_row > 1 ? units_per_step / per_row : 1;
  }
};
// Whether the x1 kernel takes an M = 1 call of a rows x cols matrix of Bits-bit codes: no
// more slices than a block has warps, at least 3/4 of the lanes busy (a lane past the last
// unit idles: 896 columns would leave 18 of 32 lanes idle, where the staged kernel has none),
// and where it measured faster than the staged kernel on an H100 (stop 34, graph us per call):
// rows at least 3x as long as the matrix is tall (4096 x 14336: 1.18-1.48x; 896 x 4864:
// 1.6-2.1x), or 8-bit codes (8192 x 8192: 24.7 -> 23.6 us). On square and tall 2-4-bit
// matrices it lost 1-6% (8192 x 8192 w2g64s 9.63 -> 10.20 us).
QMR_HOST_DEVICE constexpr bool lanes_x1_takes(int bits, int rows, int cols) {
  using T = gemv_lanes_x1_traits;
  const int slices = (cols + T::slice_cols - 1) / T::slice_cols;
  const bool fits = cols > 0 && slices <= T::max_slices && 4 * cols >= 3 * slices * T::slice_cols;
  return fits && (bits == 8 || cols >= 3 * static_cast<long long>(rows));
}

// Rows are cut into one contiguous range per block (rows_per_block, the shared
// sums f32 [rows_per_block]); warp w of a block takes slice w % slices and rows
// r0 + w / slices + wps * i, R at a time (R = 2 where a lane loads one unit a row,
// else 1), the next R rows' loads issued before these are decoded. Per unit the
// arithmetic is the staged kernel's: f16x2 sums P of code * x * 2^(t - 24), then
// Σ (code - z) x = 2^(24 - t) P - z Σx in f32, times the group's scale.
template <int Bits, bool Asym, class TY>
__global__ void __launch_bounds__(32 * gemv_lanes_x1_traits::block_warps, 1)
    gemv_lanes_x1_kernel(const lanes_args a, int slices, int wps, int rows_per_block, const __half* __restrict__ x,
                         TY* __restrict__ y) {
  constexpr int UC = lanes_unit_cols(Bits), L = gemv_lanes_x1_traits::chunk_cols / UC, NP = UC / 2;
  constexpr int R = gemv_lanes_x1_traits::rows_per_step<Bits>();
  // [rows_per_block][slices]: each (row, slice) sum written once by the lane that ends
  // with it, then added in slice order, so the result does not depend on warp timing
  // (float atomics in shared memory did: the PDL test's chains differed in their bits).
  extern __shared__ float gemv_lanes_x1_sums[];
  const int tid = static_cast<int>(threadIdx.x), lane = tid & 31, warp = tid >> 5;
  const int slice = warp % slices, sub = warp / slices;
  const int r0 = static_cast<int>(blockIdx.x) * rows_per_block, r1 = min(a.rows, r0 + rows_per_block);
  const int mine = r1 - r0 > sub ? (r1 - r0 - sub + wps - 1) / wps : 0;  // rows of this warp
  const int n_it = (mine + R - 1) / R;

  int unit[L], grp[L];
  bool live[L];
#pragma unroll
  for (int j = 0; j < L; ++j) {
    unit[j] = slice * 32 * L + 32 * j + lane;
    live[j] = unit[j] < a.units;
    grp[j] = live[j] ? (unit[j] * UC) >> a.group_shift : 0;
  }
  uint4 qa[R][L], qb[R][L];
  uint2 ha[R][L], hb[R][L];
  __half sa[R][L], sb[R][L];
  qstd::uint32_t za[R][L], zb[R][L];
  // The rows of iteration i: r0 + sub + wps * (R i + r); past r1 nothing is loaded.
  const auto load = [&](uint4 (&q)[R][L], uint2 (&h)[R][L], __half (&s)[R][L], qstd::uint32_t (&z)[R][L], int i) {
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const int row = r0 + sub + wps * (R * i + r);
      const bool ok = row < r1;
      const std::size_t rq = static_cast<std::size_t>(ok ? row : r0) * a.units;
      const std::size_t rg = static_cast<std::size_t>(ok ? row : r0) * a.n_groups;
#pragma unroll
      for (int j = 0; j < L; ++j) {
        const bool on = ok && live[j];
        q[r][j] = on ? lanes_ld16(a.q + rq + unit[j]) : make_uint4(0u, 0u, 0u, 0u);
        if constexpr (Bits == 3) h[r][j] = on ? lanes_ld8(a.hq + rq + unit[j]) : make_uint2(0u, 0u);
        else h[r][j] = make_uint2(0u, 0u);
        s[r][j] = on ? a.scales[rg + grp[j]] : __ushort_as_half(0);
        if constexpr (Asym) z[r][j] = on ? a.zeros[rg + grp[j]] : 0u;
        else z[r][j] = 0u;
      }
    }
  };
  pdl_launch_dependents();
  for (int i = tid; i < rows_per_block * slices; i += static_cast<int>(blockDim.x)) gemv_lanes_x1_sums[i] = 0.0f;
  if (n_it > 0) load(qa, ha, sa, za, 0);  // weights: in flight before the wait for x
  __syncthreads();                        // the sums are zero before any warp adds to them
  pdl_wait();

  // The lane's x: per unit, columns rescaled by 2^(t - shift) and {2^(24 - t), Σx}.
  qstd::uint32_t xr[L][NP];
  float uk[L], usum[L];
  {
    const uint4* xv = reinterpret_cast<const uint4*>(x);
#pragma unroll
    for (int j = 0; j < L; ++j)
#pragma unroll
      for (int sl = 0; sl < UC / 8; ++sl) {
        const uint4 v = live[j] ? ld_produced(xv + unit[j] * (UC / 8) + sl) : make_uint4(0u, 0u, 0u, 0u);  // see ld_produced
        xr[j][4 * sl] = v.x;
        xr[j][4 * sl + 1] = v.y;
        xr[j][4 * sl + 2] = v.z;
        xr[j][4 * sl + 3] = v.w;
      }
#pragma unroll
    for (int j = 0; j < L; ++j) {
      float sum = 0.0f, amax = 0.0f;
#pragma unroll
      for (int p = 0; p < NP; ++p) lanes_sum_amax(xr[j][p], sum, amax);
      const int ex = lanes_unit_exponent(amax);
#pragma unroll
      for (int p = 0; p < NP; ++p) xr[j][p] = lanes_rescale_pair<Bits>(xr[j][p], ex, p);
      uk[j] = lanes_unit_unscale(ex);
      usum[j] = sum;
    }
  }

  for (int i = 0; i < n_it; ++i) {
    if (i + 1 < n_it) load(qb, hb, sb, zb, i + 1);
    float v[R];
#pragma unroll
    for (int r = 0; r < R; ++r) {
      v[r] = 0.0f;
#pragma unroll
      for (int j = 0; j < L; ++j) {
        const qstd::uint32_t q[4] = {qa[r][j].x, qa[r][j].y, qa[r][j].z, qa[r][j].w};
        const qstd::uint32_t hw[2] = {ha[r][j].x, ha[r][j].y};
        qstd::uint32_t part = 0u;
#pragma unroll
        for (int p = 0; p < NP; ++p) part = lanes_hfma2(lanes_pair_fields<Bits, lanes_device_ops>(q, hw, p, 0u), xr[j][p], part);
        const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&part));
        const float z = Asym ? static_cast<float>(za[r][j]) : static_cast<float>(1 << (Bits - 1));
        v[r] = fmaf(__half2float(sa[r][j]), fmaf(uk[j], f.x + f.y, -z * usum[j]), v[r]);
      }
    }
    // The warp's sums of its R rows: each exchange halves the rows a lane holds (lanes
    // with bit w set keep the upper half), so that lane l ends with row l / (32 / R)
    // over its aligned run of 32 / R lanes, which then reduce together.
#pragma unroll
    for (int w = 16, n = R; n > 1; w >>= 1, n >>= 1) {
      const bool hi = (lane & w) != 0;
#pragma unroll
      for (int k = 0; k < n / 2; ++k)
        v[k] = (hi ? v[k + n / 2] : v[k]) + __shfl_xor_sync(0xffffffffu, hi ? v[k] : v[k + n / 2], w);
    }
#pragma unroll
    for (int o = 16 / R; o > 0; o >>= 1) v[0] += __shfl_xor_sync(0xffffffffu, v[0], o);
    if (lane % (32 / R) == 0) {
      const int row = r0 + sub + wps * (R * i + lane / (32 / R));
      if (row < r1) gemv_lanes_x1_sums[(row - r0) * slices + slice] = v[0];
    }
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int j = 0; j < L; ++j) {
        qa[r][j] = qb[r][j];
        ha[r][j] = hb[r][j];
        sa[r][j] = sb[r][j];
        za[r][j] = zb[r][j];
      }
  }
  __syncthreads();
  for (int i = tid; i < r1 - r0; i += static_cast<int>(blockDim.x)) {
    float sum = 0.0f;
    for (int sl = 0; sl < slices; ++sl) sum += gemv_lanes_x1_sums[i * slices + sl];
    lanes_store(y + r0 + i, sum);
  }
}

// The x1 kernel's launch: slices of 2048 columns, 16 / slices warps each, one block per SM.
template <int Bits, bool Asym, class TY>
void lanes_x1_launch(const lanes_args& a, const __half* x, TY* y, int sm_count, cudaStream_t stream, bool pdl) {
  using T = gemv_lanes_x1_traits;
  const int slices = (a.cols + T::slice_cols - 1) / T::slice_cols;
  const int wps = T::block_warps / slices;
  constexpr int R = T::rows_per_step<Bits>();
  // One block per SM, or fewer where the rows are few (every warp at least R rows).
  const int want = (a.rows + wps * R - 1) / (wps * R);
  const int blocks = std::max(1, std::min(sm_count > 0 ? sm_count : 1, want));
  const int rows_per_block = (a.rows + blocks - 1) / blocks;
  const int grid = (a.rows + rows_per_block - 1) / rows_per_block;
  launch_kernel(pdl, gemv_lanes_x1_kernel<Bits, Asym, TY>, dim3(static_cast<unsigned>(grid)),
                dim3(static_cast<unsigned>(32 * slices * wps)), static_cast<std::size_t>(rows_per_block) * slices * sizeof(float), stream, a,
                slices, wps, rows_per_block, x, y);
}

// One launch: a grid of at most blocks_per_sm blocks per SM (sm_count), x staged in MB x cols f16.
template <int Bits, int MB, bool Asym, class TY>
void lanes_launch(const lanes_args& a, const __half* x, TY* y, int sm_count, cudaStream_t stream, bool pdl) {
  if constexpr (MB == 1) {
    if (lanes_x1_takes(Bits, a.rows, a.cols)) return lanes_x1_launch<Bits, Asym, TY>(a, x, y, sm_count, stream, pdl);
  }
  constexpr int R = gemv_lanes_traits::rows_per_warp, WPB = gemv_lanes_traits::block_warps;
  const int n_rs = (a.rows + R - 1) / R;
  const int want = (n_rs + WPB - 1) / WPB;
  const int cap = (MB <= 2 ? gemv_lanes_traits::blocks_per_sm : 1) * (sm_count > 0 ? sm_count : 1);
  const unsigned blocks = static_cast<unsigned>(want < cap ? want : cap);
  const int smem = static_cast<int>(lanes_smem_bytes(MB, a.cols, a.units));
  const auto kernel = gemv_lanes_kernel<Bits, MB, Asym, TY>;
  if (smem > 48 * 1024) {
    const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    if (e != cudaSuccess) throw error(std::string("gemv_lanes: cudaFuncSetAttribute: ") + cudaGetErrorString(e));
  }
  launch_kernel(pdl, kernel, dim3(blocks), dim3(gemv_lanes_traits::block_threads), static_cast<std::size_t>(smem), stream,
                a, x, y);
}

// Every lanes_launch that gemv_lanes() can call: M(Bits, MB, Asym, TY) at one output type.
#define QMR_CUDA_GEMV_LANES_AS(M, B, MB, TY) M(B, MB, false, TY) M(B, MB, true, TY)
#define QMR_CUDA_GEMV_LANES_MB(M, B, TY) \
  QMR_CUDA_GEMV_LANES_AS(M, B, 1, TY) QMR_CUDA_GEMV_LANES_AS(M, B, 2, TY) QMR_CUDA_GEMV_LANES_AS(M, B, 4, TY) QMR_CUDA_GEMV_LANES_AS(M, B, 8, TY)
#define QMR_CUDA_GEMV_LANES_INSTANCES(M, TY) \
  QMR_CUDA_GEMV_LANES_MB(M, 2, TY) QMR_CUDA_GEMV_LANES_MB(M, 3, TY) QMR_CUDA_GEMV_LANES_MB(M, 4, TY) QMR_CUDA_GEMV_LANES_MB(M, 8, TY)

#ifdef QMR_CUDA_GEMV_EXTERN
#define QMR_CUDA_GEMV_LANES_DECLARE(B, MB, AS, TY) \
  extern template void lanes_launch<B, MB, AS, TY>(const lanes_args&, const __half*, TY*, int, cudaStream_t, bool);
QMR_CUDA_GEMV_LANES_INSTANCES(QMR_CUDA_GEMV_LANES_DECLARE, f16)
QMR_CUDA_GEMV_LANES_INSTANCES(QMR_CUDA_GEMV_LANES_DECLARE, float)
#undef QMR_CUDA_GEMV_LANES_DECLARE
#endif

template <int Bits, bool Asym, class TY>
void lanes_dispatch_mb(const lanes_args& a, const __half* x, TY* y, int sm_count, cudaStream_t stream, bool pdl) {
  if (a.m <= 1) lanes_launch<Bits, 1, Asym, TY>(a, x, y, sm_count, stream, pdl);
  else if (a.m <= 2) lanes_launch<Bits, 2, Asym, TY>(a, x, y, sm_count, stream, pdl);
  else if (a.m <= 4) lanes_launch<Bits, 4, Asym, TY>(a, x, y, sm_count, stream, pdl);
  else lanes_launch<Bits, 8, Asym, TY>(a, x, y, sm_count, stream, pdl);
}
template <int Bits, class TY>
void lanes_dispatch(const lanes_args& a, const __half* x, TY* y, int sm_count, cudaStream_t stream, bool pdl) {
  if (a.zeros != nullptr) lanes_dispatch_mb<Bits, true>(a, x, y, sm_count, stream, pdl);
  else lanes_dispatch_mb<Bits, false>(a, x, y, sm_count, stream, pdl);
}
#endif  // __CUDACC__

}  // namespace detail
}  // namespace qmr::cuda
