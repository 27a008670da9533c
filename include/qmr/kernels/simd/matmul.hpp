// SIMD matmuls Y = X·Wᵀ (GEMV for M <= 8 rows of X, panel GEMM above) for dense f32/f16/bf16 weights and every quantized format, templated on the xsimd architecture, with f32 activations and f32 accumulation.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "../../core/aligned_buffer.hpp"
#include "../../core/error.hpp"
#include "../../core/half.hpp"
#include "../../core/tensor.hpp"
#include "../../core/thread_pool.hpp"
#include "../../quant/format.hpp"
#include "../../quant/pack.hpp"
#include "../../quant/qtensor.hpp"
#include "../ref/matmul.hpp"
#include "convert.hpp"
#include "prefetch.hpp"
#include "unpack.hpp"

// How the kernels work, and why they equal the reference up to summation order:
//
// * Every weight is turned into exactly the f32 the reference uses (dense: the
//   exact widening; quantized: to_float(scale) * float(code - zero), the integer
//   difference being exact) and multiplied by an f32 activation with one FMA into
//   an f32 accumulator. Only the order of the additions differs: each output sums
//   lane-wise partial sums and then reduces them; the GEMM sums each output in
//   column order within a kc-column slice and adds one such sum per slice.
// * GEMV (M <= 8): one pass over each weight row; a batch of weights is loaded (or
//   decoded) once and FMA'd into M accumulators, one per row of X. On AVX2 and
//   AVX-512, quantized codes are decoded in registers to float(code), the
//   products of a group summed unscaled and the group's scale applied once, and
//   the zero point folded out: sum (code - z) x = sum code x - z sum x, with the
//   activations' group sums taken once per call (a different rounding of the same
//   exact terms, well within the summation-order bound); other ISAs decode 256
//   columns at a time into an L1-resident f32 stack buffer. On AVX-512, 2-, 3- and
//   4-bit codes take the lane-major GEMV instead (gemv_quantized_lanes: a 64-byte
//   block loaded at byte offsets 0-3, shifted by 4 and looked up with vpermps in a
//   table (two for 2-bit codes, two codes a nibble); a 48-byte block of 3-bit codes
//   spread to 24 bits a lane by one dword and one byte permute, then shifted by 3c; the
//   table holds the group's dequantized values where a group spans whole blocks, the
//   activations are reordered once per call). In the
//   register GEMV on AVX-512, 5-bit codes are looked up the same way in 32 values
//   (vpermt2ps), and 6-bit codes become the float 1 + code / 64 by placing their bits
//   under the exponent of 1.0f (the scale and zero-point fold absorb the 64 and the 1).
// * GEMM (M > 8), BLIS-style and vectorized along N: nr weight rows × kc columns
//   are decoded a row at a time (the GEMV's decoders) and transposed into a
//   k-major f32 panel [kc, nr] on the stack; then, for every mr rows of X and each
//   column k, nr / lanes weight vectors meet mr broadcast activations (X packed
//   once per call into [kc, mr] runs: packed_x) in an mr × nr register tile,
//   stored (or added to Y) once per slice. Edges: a ragged last
//   panel is zero-padded and stored through a buffer, a ragged last block of X
//   repeats its last row and stores only the real ones, and K needs no multiple.
// * Threads split the output rows (GEMV: rows, GEMM: nr-row panels) through the
//   core pool. The GEMV allocates nothing, except the group sums of more than 4096
//   (M × groups) activations; the GEMM allocates its packed X once per call.
// * The GEMVs prefetch their weights ahead of the loads: the register and lane-major
//   GEMVs 4 KB (gemv_prefetch_bytes, lane_major_prefetch_bytes), the dense one 1 KB
//   (dense_prefetch_bytes).
//
// The packed layout is read as it is stored (format.hpp), with no repacking. (The
// table GEMV of lut_gemv.hpp, opt-in, runs one row of X over a load-time repack.)
// Everything that runs per ISA is a template on the Arch tag, so a translation
// unit compiled for one ISA never emits a symbol another one could pick up.

namespace qmr::simd {

static_assert(std::endian::native == std::endian::little,
              "the code unpacking reads the little-endian bitstream as machine words");

// Tile sizes of one architecture.
template <class Arch>
struct matmul_tiles {
  static constexpr std::int64_t lanes = fbatch<Arch>::size;
  // Up to this many rows of X take the streaming GEMV (each weight read once,
  // M accumulators); beyond it the register-tiled GEMM reuses each decoded weight
  // across mr rows per load and its panel across all of X.
  static constexpr int gemv_max_m = 8;
  // A quantized GEMV row is decoded this many columns at a time: a multiple of
  // every group size (so a chunk never splits a group) and 1 KB of f32, which
  // stays in L1 between its decode and its use.
  static constexpr std::int64_t decode_cols = 256;
  // GEMM register tile (BLIS-style, vectorized along N): mr rows of X × nr = nv
  // vectors of output columns. mr × nv accumulators + nv weight registers + 1
  // broadcast activation must fit the register file with room to spare: 8 × 3 +
  // 3 + 1 = 28 of 32 zmm (AVX-512: 8 broadcasts and 3 loads per 24 FMAs); 6 × 2 +
  // 2 + 1 = 15 of 16 (AVX2, NEON); SSE2 has no FMA, so mul + add needs one more
  // temporary: 4 × 2 + 2 + 1 + 1 = 12 of 16.
  static constexpr int vector_registers = lanes >= 16 ? 32 : 16;
  static constexpr int nv = lanes >= 16 ? 3 : 2;
  static constexpr bool has_fma = !std::is_base_of_v<xsimd::sse2, Arch> || lanes >= 8;
  static constexpr int mr = lanes >= 16 ? 8 : has_fma ? 6 : 4;
  static constexpr int nr = nv * static_cast<int>(lanes);
  // GEMM panel: kc columns × nr weight rows of f32, k-major, reused by every mr rows
  // of X: 128 × 48 × 4 = 24 KB on AVX-512, plus 8 KB of decoded rows before their
  // transposition, stays in the 48 KB L1 (Zen 5) beside the mr × kc slab of X it
  // meets; the Y tile is loaded and stored once per kc columns, 1 / kc of the FMAs.
  // Measured, AVX-512, 4096 × 4096, batch 256, 1 thread: 66-82% of the FMA peak.
  static constexpr std::int64_t kc = 128;

  static_assert(mr * nv + nv + (has_fma ? 1 : 2) <= vector_registers, "the register tile must fit the register file");
  static_assert(kc % 8 == 0, "quantized rows are decoded 8 codes at a time");
  static_assert(decode_cols % 256 == 0, "chunks must hold whole groups");
  static_assert(decode_cols % lanes == 0);
};

namespace detail {

// Row r, columns [c0, c1) of a quantized W as f32, into out[c1 - c0]; c0 and c1
// are multiples of 8. One instantiation per Arch × format.
template <class Arch, class Format>
void decode_quantized(const quant::qtensor_view& w, std::int64_t r, std::int64_t c0, std::int64_t c1, float* out) {
  const std::int64_t group = Format::group_size == quant::per_channel ? w.cols() : Format::group_size;
  const std::uint8_t* codes = w.codes + r * w.layout.code_row_bytes;        // [code_row_bytes]
  const f16* scales = w.scales + r * w.layout.n_groups;                      // [n_groups]
  const std::uint8_t* zeros = Format::symmetric ? nullptr : w.zeros + r * w.layout.zero_row_bytes;
  for (std::int64_t c = c0; c < c1;) {
    const std::int64_t g = c / group;
    const std::int64_t end = std::min(c1, (g + 1) * group);
    const int zero = Format::symmetric ? Format::symmetric_zero : static_cast<int>(quant::get_code(zeros, g, Format::bits));
    unpack_codes<Arch, Format::bits>(codes, w.layout.code_row_bytes, c, end, scale_f32<Arch>(scales[g], Arch{}), zero,
                                     out + (c - c0), Arch{});
    c = end;
  }
}

// A quantized W seen through its format's decoder.
struct quantized_source {
  const quant::qtensor_view* w;
  void (*decode)(const quant::qtensor_view&, std::int64_t, std::int64_t, std::int64_t, float*);
};

// acc[i][u] += W[c, c + lanes) · X_i[c, c + lanes) over [c0, c1) (a multiple of
// lanes long), U batches of columns in flight so that the FMA latency is hidden
// when M alone gives too few independent chains.
template <class Arch, int M, int U, class LoadW>
inline void accumulate(LoadW&& load_w, std::int64_t c0, std::int64_t c1, const float* x, std::int64_t x_stride,
                       fbatch<Arch> (&acc)[M][U]) {
  constexpr std::int64_t lanes = fbatch<Arch>::size;
  std::int64_t c = c0;
  for (; c + U * lanes <= c1; c += U * lanes)
    for (int u = 0; u < U; ++u) {
      const fbatch<Arch> wv = load_w(c + u * lanes);
      for (int i = 0; i < M; ++i)
        acc[i][u] = xsimd::fma(wv, fbatch<Arch>::load_unaligned(x + i * x_stride + c + u * lanes), acc[i][u]);
    }
  for (; c < c1; c += lanes) {
    const fbatch<Arch> wv = load_w(c);
    for (int i = 0; i < M; ++i) acc[i][0] = xsimd::fma(wv, fbatch<Arch>::load_unaligned(x + i * x_stride + c), acc[i][0]);
  }
}

// A lambda the compiler must inline (GCC and clang spelling): the register GEMV's
// checked-group body: GCC -O2 left such lambdas as calls with their sums in memory
// (w8g32 on AVX2 from L2: 6.5 GB/s against 11.8 inlined).
#define QMR_LAMBDA_INLINE __attribute__((always_inline))
// Full unrolling of a loop with a constant trip count (GCC and clang spellings; nvcc's
// front end, which compiles these host kernels only for the GPU programs' CPU
// reference, warns on both, so it gets none).
#if defined(__CUDACC__)
#define QMR_UNROLL_FULL
#elif defined(__clang__)
#define QMR_UNROLL_FULL _Pragma("clang loop unroll(full)")
#else
#define QMR_UNROLL_FULL _Pragma("GCC unroll 16")
#endif

// Independent accumulator chains per row of X: 4 cover the FMA latency at M = 1.
template <int M>
inline constexpr int gemv_unroll = M == 1 ? 4 : M == 2 ? 2 : 1;

template <class Arch, int M, int U>
inline void store_sums(fbatch<Arch> (&acc)[M][U], const float (&tail)[M], matrix_view<float> y, std::int64_t n) {
  for (int i = 0; i < M; ++i) {
    fbatch<Arch> s = acc[i][0];
    for (int u = 1; u < U; ++u) s += acc[i][u];
    y(i, n) = xsimd::hadd(s) + tail[i];
  }
}

// How far ahead the register GEMV (per group) prefetches the weights it streams, in
// bytes, into every cache level; until stop 37 the dense GEMV (per chunk of
// dense_chunk_cols columns) used it too, now dense_prefetch_bytes below. On the 2-vCPU Xeon VM (paired
// fractions of read bandwidth, 2-3 alternating rounds; the hardware prefetchers alone
// left the loads waiting): bf16 8192 x 8192 on 2 threads 64-73% -> 93-100% (80-91% with
// one prefetch per 64 bytes inside the FMA loop), on 1 thread 76-77% -> 96-98%,
// 151936 x 896 (Qwen2.5-0.5B's lm_head) on 2 threads 73-82% -> 97-98%; w8g128 8192 x
// 8192 on 2 threads 50-54% -> 68-76% (w6g128, bound by its decode, 31-34% either way).
// (An earlier Zen 5 run with prefetchnta had measured no gain for bf16.) On the
// Emerald Rapids VM, the reworked register GEMV at 8192 bytes (the a8 GEMV's distance then)
// lost 1-10 points on every w8/w6/w5 g128 shape of two alternating rounds, and
// prefetcht2 moved nothing beyond the noise. Past the row's end the address is only an
// integer: prefetches never fault.
inline constexpr std::uintptr_t gemv_prefetch_bytes = 4096;
// The dense GEMV's own distance (bf16/f16/f32 rows). On stop 37's 2-vCPU VM (AVX-512,
// 480 MiB L3 reported) 4096 bytes left bf16 at 70-74% of read bandwidth on 151936 x
// 896 (Qwen2.5-0.5B's lm_head) and 64-68% on 4096 x 14336 (2 threads, paired, 2-3
// alternating rounds); 1024 bytes: 86-94% and 84-91%, 14336 x 4096 86-89%, 8192 x
// 8192 75-83% (2048 bytes: 93-97% there, but 76-82% on the lm_head; 1536, and both
// 1024 and 2048 at once, no better overall). The register GEMV keeps 4096
// (gemv_prefetch_bytes): at 1024 its w8g128 8192 x 8192 fell from 87% to 76-77%.
// (The earlier VM's 93-100% above were at 4096; it was not there to remeasure 1024.)
// bench/results/cpu_gemv_dense_prefetch_20261205_s37.txt.
inline constexpr std::uintptr_t dense_prefetch_bytes = 1024;
inline constexpr std::int64_t dense_chunk_cols = 256;

// Y[0, M)[n0, n1) for a dense W[N, K] of T, read straight from memory.
template <class Arch, int M, class T>
void gemv_dense(matrix_view<const T> w, matrix_view<const float> x, matrix_view<float> y, std::int64_t n0,
                std::int64_t n1) {
  constexpr int U = gemv_unroll<M>;
  constexpr std::int64_t lanes = fbatch<Arch>::size;
  static_assert(dense_chunk_cols % (U * lanes) == 0, "a chunk must end where accumulate's unrolled loop does");
  const std::int64_t k = w.cols;
  const std::int64_t k_vec = k - k % lanes;
  for (std::int64_t n = n0; n < n1; ++n) {
    const T* row = w.row(n);  // [K]
    fbatch<Arch> acc[M][U];
    for (auto& a : acc)
      for (auto& b : a) b = fbatch<Arch>(0.0f);
    // Chunks of dense_chunk_cols columns (a multiple of U * lanes, so the chains run as
    // in one call), each first prefetching its cache lines dense_prefetch_bytes ahead.
    for (std::int64_t c0 = 0; c0 < k_vec; c0 += dense_chunk_cols) {
      const std::int64_t c1 = std::min(k_vec, c0 + dense_chunk_cols);
      const auto ahead = reinterpret_cast<std::uintptr_t>(row + c0) + dense_prefetch_bytes;
      for (std::int64_t b = 0; b < dense_chunk_cols * static_cast<std::int64_t>(sizeof(T)); b += 64)
        prefetch_address(ahead + static_cast<std::uintptr_t>(b));
      accumulate<Arch, M, U>([&](std::int64_t c) { return load_f32<Arch>(row + c); }, c0, c1, x.data, x.stride, acc);
    }
    float tail[M] = {};
    for (std::int64_t c = k_vec; c < k; ++c) {
      const float wc = to_float(row[c]);
      for (int i = 0; i < M; ++i) tail[i] += wc * x(i, c);
    }
    store_sums<Arch, M, U>(acc, tail, y, n);
  }
}

// Y[0, M)[n0, n1) for a quantized W, each row decoded decode_cols columns at a time.
template <class Arch, int M>
void gemv_quantized(const quantized_source& src, matrix_view<const float> x, matrix_view<float> y, std::int64_t n0,
                    std::int64_t n1) {
  constexpr int U = gemv_unroll<M>;
  constexpr std::int64_t lanes = fbatch<Arch>::size;
  constexpr std::int64_t chunk = matmul_tiles<Arch>::decode_cols;
  alignas(64) float wbuf[chunk];  // [chunk] f32 weights of the current chunk of row n
  const std::int64_t k = src.w->cols();
  for (std::int64_t n = n0; n < n1; ++n) {
    fbatch<Arch> acc[M][U];
    for (auto& a : acc)
      for (auto& b : a) b = fbatch<Arch>(0.0f);
    float tail[M] = {};
    for (std::int64_t c0 = 0; c0 < k; c0 += chunk) {
      const std::int64_t c1 = std::min(k, c0 + chunk);
      src.decode(*src.w, n, c0, c1, wbuf);
      // K is a multiple of 8, so only 16-lane ISAs can leave 8 columns over.
      const std::int64_t v1 = c1 - (c1 - c0) % lanes;
      accumulate<Arch, M, U>([&](std::int64_t c) { return fbatch<Arch>::load_aligned(wbuf + (c - c0)); }, c0, v1,
                             x.data, x.stride, acc);
      for (std::int64_t c = v1; c < c1; ++c)
        for (int i = 0; i < M; ++i) tail[i] += wbuf[c - c0] * x(i, c);
    }
    store_sums<Arch, M, U>(acc, tail, y, n);
  }
}

// Group sums of the activations, sum[i][g] = sum of X(i, c) over group g's columns
// (in column order, f32), for the zero-point fold of gemv_quantized_registers; each
// row padded with zeros to a multiple of 16 groups (row_groups), so that the fold
// reads them 16 at a time as whole vectors. Kept on the caller's stack up to
// stack_floats, else allocated once per call.
template <class Arch>
struct activation_group_sums {
  static constexpr std::int64_t stack_floats = 4096;  // 16 KB: M = 8 rows of K = 16384 at g32
  alignas(64) float stack[stack_floats];
  aligned_buffer<float> heap;
  const float* data = nullptr;  // [M, row_groups]
  std::int64_t row_groups = 0;

  activation_group_sums(matrix_view<const float> x, std::int64_t group, std::int64_t groups)
      : row_groups((groups + 15) / 16 * 16) {
    float* out = stack;
    if (x.rows * row_groups > stack_floats) {
      heap = aligned_buffer<float>(static_cast<std::size_t>(x.rows * row_groups));
      out = heap.data();
    }
    constexpr std::int64_t lanes = fbatch<Arch>::size;
    for (std::int64_t i = 0; i < x.rows; ++i) {
      for (std::int64_t g = 0; g < groups; ++g) {
        const float* xg = x.row(i) + g * group;  // [group]
        fbatch<Arch> v(0.0f);
        std::int64_t c = 0;
        for (; c + lanes <= group; c += lanes) v += fbatch<Arch>::load_unaligned(xg + c);
        float s = xsimd::hadd(v);
        for (; c < group; ++c) s += xg[c];
        out[i * row_groups + g] = s;
      }
      for (std::int64_t g = groups; g < row_groups; ++g) out[i * row_groups + g] = 0.0f;
    }
    data = out;
  }
  const float* row(std::int64_t i) const { return data + i * row_groups; }
};

// How a register decoder's value relates to the code: (code + offset) / scale, the
// plain code unless the decoder says otherwise.
template <class Decoder>
inline constexpr float decoded_code_scale = [] {
  if constexpr (requires { Decoder::code_scale; }) return Decoder::code_scale;
  else return 1.0f;
}();
template <class Decoder>
inline constexpr int decoded_code_offset = [] {
  if constexpr (requires { Decoder::code_offset; }) return Decoder::code_offset;
  else return 0;
}();

#if XSIMD_WITH_AVX512BW
template <class Format>
void lane_group_terms(const quant::qtensor_view& w, std::int64_t n, std::int64_t g0, int count, __m512& s, __m512& sz);
#endif

// Chains of FMAs per row of X within one group of the register GEMV, for a group of
// Steps decode steps: at M = 1, 4 cover the FMA latency behind the 8-bit decode (1.5
// cycles a step; with 2, w8g128 in L2 ran at half its port bound) and 2 behind the
// slower ones (2+ cycles a step; 4 only added reduction work per group: w6g64 from L2
// 10.6-11.7 GB/s with 4, 10.8-12.3 with 2); fewer where M rows give their own chains.
template <int M, int Steps, int Bits>
inline constexpr int register_chains = std::max(1, std::min(M == 1 ? (Bits == 8 ? 4 : 2) : M == 2 ? 2 : 1, Steps));

// Y[0, M)[n0, n1) for a quantized W of one Format, decoded in registers (ISAs with
// register_decode): each 8- or 16-code step becomes float(code) in one register and
// meets the M activations at once; the products of a group are summed unscaled, and
// the group's scale and zero point are applied once: acc += scale * sum_g(code x)
// and, folded out of the inner loop, corr += scale * zero * sum_g(x) from the
// per-call group sums. Codes are exact in f32, so this differs from the reference
// (sum of (scale * (code - zero)) * x) only in the rounding of the per-group
// products and of the two partial sums, far inside the summation-order bound.
//
// Per-group work is kept off the decode loop, which is what bounds it: the scales
// and scale * zero come 16 groups at a time into a stack buffer (the correction is
// then one vector FMA per 16 groups), and a group whose every load lies inside the
// row, with a compile-time group size, runs as a fixed-count loop of decode steps
// with no end-of-row checks and its prefetches issued up front. (With the checks,
// per-group scalar conversions and a per-group prefetch loop, w8g128 ran at 11.8
// GB/s from L2 on one Emerald Rapids core against ~24 for the bare decode loop.)
template <class Arch, class Format, int M>
void gemv_quantized_registers(const quant::qtensor_view& w, matrix_view<const float> x, matrix_view<float> y,
                              const activation_group_sums<Arch>& x_sums, std::int64_t n0, std::int64_t n1) {
  using batch = fbatch<Arch>;
  using reg = typename batch::register_type;
  constexpr int bits = Format::bits;
  constexpr std::int64_t lanes = batch::size;
  constexpr bool fixed_group = Format::group_size != quant::per_channel;
  constexpr std::int64_t steps = fixed_group ? Format::group_size / lanes : 0;  // decode steps per fixed group
  constexpr int U = register_chains<M, static_cast<int>(steps), bits>;
  constexpr int UV = register_chains<M, 2, bits>;  // chains of the per-channel and ragged groups
  constexpr std::int64_t group_bytes = fixed_group ? Format::group_size * bits / 8 : 0;
  static_assert(!fixed_group || (Format::group_size % lanes == 0 && steps % U == 0), "a fixed group is whole decode steps");
  const auto decode = make_decoder<bits>(Arch{});
  // A decoder may give (code + code_offset) / code_scale rather than the code (6 bits on
  // AVX-512): the scale is then scale * code_scale, and the fold scale * (zero + code_offset).
  constexpr float code_scale = decoded_code_scale<decltype(decode)>;
  constexpr int code_offset = decoded_code_offset<decltype(decode)>;
  const std::int64_t k = w.cols();
  const std::int64_t group = fixed_group ? Format::group_size : k;
  const std::int64_t n_groups = w.layout.n_groups;
  const std::int64_t row_bytes = w.layout.code_row_bytes;
  // The last column at which a step's load (16 bytes on AVX-512, 8 on AVX2) still ends
  // inside the row (steps start at multiples of 8 columns, Bits bytes each); -lanes when
  // none does. Fixed groups [0, fast_groups) end at or before it and run unchecked.
  const std::int64_t fast_cols = row_bytes >= 16 ? (row_bytes - 16) / bits * 8 : -lanes;
  const std::int64_t fast_groups = fixed_group ? std::max<std::int64_t>(0, std::min(k, fast_cols + lanes)) / group : 0;
  // The decoders subtract zv; a constant 0 lets the compiler drop the subtraction.
  const auto zv = xsimd::batch<std::int32_t, Arch>(0).data;
  // (Bands of rows sharing each chunk of X, to read a row of X longer than L1 from L2
  // once per band, measured no gain: 4096 x 14336 w8g128 on one core 76-79% of read
  // bandwidth with bands of 2 rows, 71% with 4, 76% without; 8192 x 8192 lost 6-20
  // points with bands of 8.)
  for (std::int64_t n = n0; n < n1; ++n) {
    const std::uint8_t* codes = w.codes + n * row_bytes;        // [code_row_bytes]
    const f16* scales = w.scales + n * n_groups;                 // [n_groups]
    const std::uint8_t* zeros = Format::symmetric ? nullptr : w.zeros + n * w.layout.zero_row_bytes;
    batch acc[M], corr[M];  // the row's scaled sums and zero-point folds
    for (int i = 0; i < M; ++i) acc[i] = corr[i] = batch(0.0f);
    // Groups 16 at a time: one chunk of scales and scale * zero each.
    for (std::int64_t g0 = 0; g0 < n_groups; g0 += 16) {
      const std::int64_t count = std::min<std::int64_t>(16, n_groups - g0);
      alignas(64) float s_buf[16];   // [16]: the chunk's scales (times code_scale)
      alignas(64) float sz_buf[16];  // [16]: scale * (zero + code_offset), zero past count (as the padded sums)
#if XSIMD_WITH_AVX512BW
      if constexpr (std::is_base_of_v<xsimd::avx512bw, Arch>) {
        // As vectors: one f16 load and one zero-point load per 16 groups.
        __m512 sv, szv;
        lane_group_terms<Format>(w, n, g0, static_cast<int>(count), sv, szv);
        _mm512_store_ps(s_buf, _mm512_mul_ps(sv, _mm512_set1_ps(code_scale)));
        _mm512_store_ps(sz_buf, _mm512_fmadd_ps(sv, _mm512_set1_ps(static_cast<float>(code_offset)), szv));
      } else
#endif
      {
        for (std::int64_t j = 0; j < 16; ++j) {
          const float s = j < count ? scale_f32<Arch>(scales[g0 + j], Arch{}) : 0.0f;
          const int zero = Format::symmetric ? Format::symmetric_zero
                           : j < count      ? static_cast<int>(quant::get_code(zeros, g0 + j, bits))
                                            : 0;
          s_buf[j] = s * code_scale;
          sz_buf[j] = s * static_cast<float>(zero + code_offset);
        }
      }
      for (int i = 0; i < M; ++i)
        for (std::int64_t q = 0; q < 16; q += lanes)
          corr[i] = xsimd::fma(batch::load_aligned(sz_buf + q), batch::load_unaligned(x_sums.row(i) + g0 + q), corr[i]);
      for (std::int64_t j = 0; j < count; ++j) {
        const std::int64_t g = g0 + j;
        const std::int64_t c0 = g * group, c1 = std::min(k, c0 + group);
        batch t[M];
        // A per-channel group, or one with loads near the row's end: UV chains, checked steps.
        const auto any_group = [&]() QMR_LAMBDA_INLINE {
          {  // the group's code lines, gemv_prefetch_bytes ahead
            const auto ahead = reinterpret_cast<std::uintptr_t>(codes + c0 * bits / 8) + gemv_prefetch_bytes;
            for (std::int64_t b = 0; b < (c1 - c0) * bits / 8; b += 64)
              prefetch_address(ahead + static_cast<std::uintptr_t>(b));
          }
          batch gacc[M][UV];
          for (auto& a : gacc)
            for (auto& b : a) b = batch(0.0f);
          std::int64_t c = c0;
          // Steps whose whole load lies inside the row skip the decoder's end-of-row branch.
          const std::int64_t c_safe = std::min(c1, fast_cols + lanes);
          for (; c + UV * lanes <= c_safe; c += UV * lanes)
            QMR_UNROLL_FULL
            for (int u = 0; u < UV; ++u) {
              const batch wv(static_cast<reg>(decode.unchecked(codes, c + u * lanes, zv)));
              for (int i = 0; i < M; ++i)
                gacc[i][u] = xsimd::fma(wv, batch::load_unaligned(x.row(i) + c + u * lanes), gacc[i][u]);
            }
          for (; c + lanes <= c1; c += lanes) {
            const batch wv(static_cast<reg>(decode(codes, row_bytes, c, zv)));
            for (int i = 0; i < M; ++i) gacc[i][0] = xsimd::fma(wv, batch::load_unaligned(x.row(i) + c), gacc[i][0]);
          }
          if constexpr (lanes == 16) {
            // K is a multiple of 8: a per-channel row may end with 8 codes; the
            // activations of the 8 lanes past it are zero.
            if (c < c1) {
              const batch wv(static_cast<reg>(decode(codes, row_bytes, c, zv)));
              for (int i = 0; i < M; ++i)
                gacc[i][0] = xsimd::fma(wv, batch(load_low_half(x.row(i) + c, Arch{})), gacc[i][0]);
            }
          }
          for (int i = 0; i < M; ++i) {
            t[i] = gacc[i][0];
            for (int u = 1; u < UV; ++u) t[i] += gacc[i][u];
          }
        };
        if constexpr (fixed_group) {
          if (g < fast_groups) {
            // A whole group, every load inside the row: the group's code lines prefetched
            // gemv_prefetch_bytes ahead (one per 64 bytes; a group of fewer bytes prefetches
            // the line of its last byte where that line starts inside the group, so each
            // line once), then Steps decodes into U chains.
            const std::uint8_t* gc = codes + c0 * bits / 8;  // [group_bytes]
            const auto ahead = reinterpret_cast<std::uintptr_t>(gc) + gemv_prefetch_bytes;
            if constexpr (group_bytes >= 64) {
              for (std::int64_t b = 0; b < group_bytes; b += 64)
                prefetch_address(ahead + static_cast<std::uintptr_t>(b));
            } else {
              const std::uintptr_t last = ahead + static_cast<std::uintptr_t>(group_bytes - 1);
              if ((last & 63) < static_cast<std::uintptr_t>(group_bytes)) prefetch_address(last);
            }
            batch ch[M][U];
            for (auto& a : ch)
              for (auto& b : a) b = batch(0.0f);
            for (std::int64_t st = 0; st < steps; st += U)
              QMR_UNROLL_FULL
              for (int u = 0; u < U; ++u) {
                const std::int64_t c = c0 + (st + u) * lanes;
                const batch wv(static_cast<reg>(decode.unchecked(codes, c, zv)));
                for (int i = 0; i < M; ++i) ch[i][u] = xsimd::fma(wv, batch::load_unaligned(x.row(i) + c), ch[i][u]);
              }
            for (int i = 0; i < M; ++i) {
              t[i] = ch[i][0];
              for (int u = 1; u < U; ++u) t[i] += ch[i][u];
            }
          } else {
            any_group();
          }
        } else {
          any_group();
        }
        const batch s(s_buf[j]);
        for (int i = 0; i < M; ++i) acc[i] = xsimd::fma(t[i], s, acc[i]);
      }
    }
    for (int i = 0; i < M; ++i) y(i, n) = xsimd::hadd(acc[i] - corr[i]);
  }
}

// The activations of the lane-major GEMV (gemv_quantized_lanes), each row of X
// reordered for the blocks of 16 dwords it meets: with per_lane = 32 / Bits codes
// per dword (8 for 3 bits) and B = 16 * per_lane columns per block, xl[b*B + 16*i + j] =
// X[b*B + j*per_lane + i] over the blocks [0, cols) of the row, cols = K rounded up
// to whole blocks, the columns past K zero (so whatever codes a ragged last block
// reads there add nothing). Built once per call, before the rows are split.
struct lane_major_activations {
  // 64 KB on the caller's stack: M = 1 up to K = 16384, M = 8 up to K = 2048 (every
  // decode shape of the 0.5B-1B models) without an allocation.
  static constexpr std::int64_t stack_floats = 16384;
  alignas(64) float stack[stack_floats];
  // The lanes' sums per block, for the zero points of blocks that hold several groups:
  // lane_sums(r)[b*16 + j] = sum over i of xl[b*B + 16*i + j] (cols / per_lane per row).
  alignas(64) float stack_sums[stack_floats / 8];
  aligned_buffer<float> heap;
  aligned_buffer<float> heap_sums;
  const float* data = nullptr;  // [M, cols]
  const float* sums = nullptr;  // [M, sum_cols]
  std::int64_t cols = 0;
  std::int64_t sum_cols = 0;

  // Codes per dword lane of a block: 32 / Bits, and 8 for 3-bit codes (24 of a dword's 32 bits).
  static constexpr std::int64_t per_lane_of(int bits) { return bits == 3 ? 8 : 32 / bits; }
  lane_major_activations(matrix_view<const float> x, int bits) {
    const std::int64_t per_lane = per_lane_of(bits), block = 16 * per_lane;
    cols = (x.cols + block - 1) / block * block;  // a ragged last block padded with zeros
    sum_cols = cols / per_lane;
    float* out = stack;
    float* out_sums = stack_sums;
    if (x.rows * cols > stack_floats) {
      heap = aligned_buffer<float>(static_cast<std::size_t>(x.rows * cols));
      heap_sums = aligned_buffer<float>(static_cast<std::size_t>(x.rows * sum_cols));
      out = heap.data();
      out_sums = heap_sums.data();
    }
    for (std::int64_t r = 0; r < x.rows; ++r) {
      const float* xr = x.row(r);           // [K]
      float* o = out + r * cols;            // [cols]
      float* os = out_sums + r * sum_cols;  // [sum_cols]
      for (std::int64_t b = 0; b < cols; b += block)
        for (std::int64_t j = 0; j < 16; ++j) {
          float sum = 0.0f;
          for (std::int64_t i = 0; i < per_lane; ++i) {
            const std::int64_t c = b + j * per_lane + i;
            const float v = c < x.cols ? xr[c] : 0.0f;
            o[b + 16 * i + j] = v;
            sum += v;
          }
          os[b / per_lane + j] = sum;
        }
    }
    data = out;
    sums = out_sums;
  }
  const float* row(std::int64_t i) const { return data + i * cols; }
  const float* lane_sums(std::int64_t i) const { return sums + i * sum_cols; }
};

#if XSIMD_WITH_AVX512BW
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
// Whether Arch runs gemv_quantized_lanes for Bits-bit codes.
template <class Arch, int Bits>
inline constexpr bool lane_major_gemv = std::is_base_of_v<xsimd::avx512bw, Arch> && (Bits == 2 || Bits == 3 || Bits == 4);

// How far ahead of its decode the lane-major GEMV prefetches the codes it streams,
// in bytes, one prefetch per 64-byte block: the distance the a8 GEMV measured best on the
// Zen 5 VM (matmul_a8.hpp; it now uses 16 KB on the Xeon VM, not remeasured here), as both
// stream rows of codes at a few cycles per cache line. Into
// every cache level (prefetcht0): on the 2-vCPU Xeon VM, 8192 x 8192, 2 threads, three
// alternating rounds, w4g128 streamed at 8.9-10.6 GB/s with it, 8.2-8.7 with no
// prefetch and 5.1-9.3 with prefetchnta (the a8 GEMV's hint, measured on Zen).
inline constexpr std::uintptr_t lane_major_prefetch_bytes = 4096;

// Zero points [g0, g0 + count) of a row (count <= 16, g0 a multiple of 16) of Bits-bit
// codes as f32, lanes past count zero: one masked load of the row's bytes,
// never past its end, and no trip through memory (a vector load of scalar stores
// would stall store forwarding once per row).
template <int Bits>
__m512 lane_zero_points(const std::uint8_t* zeros, std::int64_t zero_row_bytes, std::int64_t g0, int count) {
  const std::int64_t byte = g0 * Bits / 8;
  const std::int64_t n = std::min<std::int64_t>((count * Bits + 7) / 8, zero_row_bytes - byte);  // bytes to read
  const __m128i raw = _mm512_castsi512_si128(_mm512_maskz_loadu_epi8((__mmask64{1} << n) - 1, zeros + byte));
  __m512i z;
  if constexpr (Bits == 8) {
    z = _mm512_cvtepu8_epi32(raw);
  } else {  // each zero's two bytes into its lane, shifted and masked (as avx512_decoder)
    const __m512i v = _mm512_shuffle_epi8(_mm512_broadcast_i32x4(raw), _mm512_loadu_si512(unpack_tables<Bits>::shuffle.data()));
    z = _mm512_and_si512(_mm512_srlv_epi32(v, _mm512_loadu_si512(unpack_tables<Bits>::shift.data())),
                         _mm512_set1_epi32((1 << Bits) - 1));
  }
  return _mm512_maskz_cvtepi32_ps(static_cast<__mmask16>((1u << count) - 1u), z);
}

// Scales and scale * zero of groups [g0, g0 + count) of a row (count <= 16) as f32,
// one masked f16 load and one zero-point load (symmetric formats: their fixed zero).
template <class Format>
void lane_group_terms(const quant::qtensor_view& w, std::int64_t n, std::int64_t g0, int count, __m512& s, __m512& sz) {
  const f16* scales = w.scales + n * w.layout.n_groups;  // [n_groups]
  s = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_maskz_loadu_epi16(static_cast<__mmask32>((1u << count) - 1u), scales + g0)));
  if constexpr (Format::symmetric) {
    sz = _mm512_mul_ps(s, _mm512_set1_ps(static_cast<float>(Format::symmetric_zero)));
  } else {
    const std::uint8_t* zeros = w.zeros + n * w.layout.zero_row_bytes;  // [zero_row_bytes]
    sz = _mm512_mul_ps(s, lane_zero_points<Format::bits>(zeros, w.layout.zero_row_bytes, g0, count));
  }
}

// Calls body(g, table, table_hi) for groups [0, groups) of row n in order, table = the
// group's dequantized lookup table codes_table * s - s * z (table_hi the same of
// codes_table_hi, for 2-bit codes: lane_block), the terms taken 16 groups at a time
// (lane_group_terms) and each table built with two broadcast loads and one FMA.
template <class Format, class Body>
inline void for_each_group_table(const quant::qtensor_view& w, std::int64_t n, std::int64_t groups, __m512 codes_table,
                                 __m512 codes_table_hi, Body&& body) {
  alignas(64) float s_buf[16], sz_buf[16];  // [16]: a chunk's scales and scale * zero
  for (std::int64_t g0 = 0; g0 < groups; g0 += 16) {
    const int count = static_cast<int>(std::min<std::int64_t>(16, groups - g0));
    __m512 sv, szv;
    lane_group_terms<Format>(w, n, g0, count, sv, szv);
    _mm512_store_ps(s_buf, sv);
    _mm512_store_ps(sz_buf, szv);
    for (int j = 0; j < count; ++j) {
      const __m512 s = _mm512_set1_ps(s_buf[j]), sz = _mm512_set1_ps(sz_buf[j]);
      const __m512 table = _mm512_fmsub_ps(codes_table, s, sz);
      body(g0 + j, table, Format::bits == 2 ? _mm512_fmsub_ps(codes_table_hi, s, sz) : table);  // (table_hi: 2-bit only)
    }
  }
}

// The lookup tables of the lane-major GEMV: vpermps reads an index's low 4 bits, which
// hold one 4-bit code, one 3-bit code and a bit of the next, or two 2-bit codes (the
// lower in bits 0-1: table, the upper in bits 2-3: table_hi).
inline __m512 lane_codes_table(int bits) {
  return bits == 4   ? _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
         : bits == 3 ? _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7)  // bit 3: the next code's
                     : _mm512_setr_ps(0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3);
}
inline __m512 lane_codes_table_hi() { return _mm512_setr_ps(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3); }

// One block of the lane-major GEMV (64 bytes; 48 for 3-bit codes) into chain c % U of
// each row of X (c: the code's index in its lane), fully unrolled. Byte b of lane j is
// the low byte of lane j in the 64 bytes loaded b bytes later, so four loads (offsets
// 0-3, on the load ports) and one shift by 4 of each put every nibble of the block at
// the bottom of its lane, where vpermps reads its index: a 4-bit code, looked up in
// `table`, or two 2-bit codes, looked up in `table` (the lower) and `table_hi` (the
// upper). Per 16 codes that is half a shift (4 bits) or a quarter (2 bits), a permute
// and M FMAs, where shifting the block down by Bits * c for every code took a whole
// shift. Measured in L2 (1024 x 4096, one thread, stop 32's host): 2-bit 10-15% faster
// than that, 4-bit as fast (shifting one load by 8b then 4 instead: slower). A 3-bit
// block is 48 bytes read as 64 (its lanes use bytes 0-48, byte 48 only as the table's
// ignored bit). Unguarded, a block's loads read up to 67 bytes from its start: the
// next block, or the next row, and a row's ragged last block (K not a multiple of the
// block's columns) reads the next row's codes against zero activations
// (lane_major_activations). Guard: those reads may pass the end of the codes' buffer
// (the last row or rows), so the loads are masked to the row's `valid` bytes from the
// block on (a masked-off byte is never read).
template <int Bits, int M, int U, bool Guard = false>
inline void lane_block(const std::uint8_t* block, const lane_major_activations& xl, std::int64_t xc, __m512 table,
                       __m512 table_hi, std::int64_t valid, __m512 (&chain)[M][U]) {
  // Guard: bytes [0, valid - offset) of a load at `offset`, the rest zero and never read.
  const auto guarded = [&](int offset) {
    const std::int64_t n = std::max<std::int64_t>(0, valid - offset);
    return _mm512_maskz_loadu_epi8(n >= 64 ? ~__mmask64{0} : (__mmask64{1} << n) - 1, block + offset);
  };
  // Code c of every lane (weights wv) times its activations, into chain c % U of each row of X.
  const auto fma_code = [&](__m512 wv, int c) {
    for (int i = 0; i < M; ++i) chain[i][c % U] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(xl.row(i) + xc + std::int64_t{16} * c), chain[i][c % U]);
  };
  static_assert(Bits == 2 || Bits == 3 || Bits == 4);
  prefetch_ahead(block, lane_major_prefetch_bytes);
  if constexpr (Bits == 3) {
    // 48 bytes, 8 codes a lane: lane j's 24 bits start at byte 3j. vpermd gives 128-bit
    // lane L the dwords 3L..3L+3 (bytes 12L..12L+15) and a byte shuffle within each
    // lane the dword at byte 3j; then code c of every lane is a shift by 3c away.
    const __m512i raw = Guard ? guarded(0) : _mm512_loadu_si512(reinterpret_cast<const void*>(block));
    const __m512i dwords = _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 1, 2, 3, 3, 4, 5, 6, 6, 7, 8, 9, 9, 10, 11, 12), raw);
    const __m512i v = _mm512_shuffle_epi8(dwords, _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 2, 3, 3, 4, 5, 6, 6, 7, 8, 9, 9, 10, 11, 12)));
    QMR_UNROLL_FULL
    for (int c = 0; c < 8; ++c) fma_code(_mm512_permutexvar_ps(c == 0 ? v : _mm512_srli_epi32(v, 3 * c), table), c);
    return;
  }
  QMR_UNROLL_FULL
  for (int b = 0; b < 4; ++b) {
    const __m512i v = Guard ? guarded(b) : _mm512_loadu_si512(reinterpret_cast<const void*>(block + b));
    QMR_UNROLL_FULL
    for (int h = 0; h < 2; ++h) {
      const __m512i index = h == 0 ? v : _mm512_srli_epi32(v, 4);
      if constexpr (Bits == 4) {
        fma_code(_mm512_permutexvar_ps(index, table), 2 * b + h);
      } else {  // the nibble's lower and upper 2-bit codes
        fma_code(_mm512_permutexvar_ps(index, table), 4 * b + 2 * h);
        fma_code(_mm512_permutexvar_ps(index, table_hi), 4 * b + 2 * h + 1);
      }
    }
  }
}

// Y[0, M)[n0, n1) for 2-, 3- or 4-bit codes on AVX-512, with no repacking of codes: a
// 64-byte block of a row's 2- or 4-bit codes is 16 dwords, dword j holding the per_lane
// codes of columns j*per_lane + [0, per_lane); a 48-byte block of 3-bit codes is 16
// runs of 24 bits, run j holding columns 8j + [0, 8), spread to the 16 lanes. vpermps,
// which reads only the low 4 bits of each index, looks lane j's codes up in a 16-entry
// table once they are at the bottom of the lane (lane_block: loads at byte offsets 0-3
// and one shift by 4 reach every nibble, a 2-bit nibble holding two codes looked up in
// two tables; 3-bit codes a shift by 3c each). That is a half (4 bits), a quarter (2
// bits) or 7/8 (3 bits, plus 1/8 of two permutes) of a shift, one permute and M FMAs
// per 16 codes (the register decoders take 4-6 operations before their FMAs), against
// the activations in lane-major order (lane_major_activations). Two ways to apply scales and zero points:
// - a group spans whole blocks (group >= B, or one group per row): the table holds
//   the group's dequantized values s * (code - z), built with one FMA per group, and
//   the FMAs run on through the row with no per-group work;
// - a block holds several groups (lane j in group (j * per_lane) / group): the table
//   holds the codes (minus the fixed zero of a symmetric format); per block, its
//   chains' sum times the lanes' scales, less the lanes' scale * zero times their
//   activation sums (asymmetric).
// Scales and zero points come 16 groups at a time as vectors (lane_group_terms).
// A ragged last block (K % B columns) is read whole against zero activations.
template <class Arch, class Format, int M>
void gemv_quantized_lanes(const quant::qtensor_view& w, const lane_major_activations& xl, matrix_view<float> y,
                          std::int64_t n0, std::int64_t n1) {
  using batch = fbatch<Arch>;
  constexpr int bits = Format::bits;
  static_assert(bits == 2 || bits == 3 || bits == 4, "a code must fit a permute index (4 bits) after its shift");
  constexpr int per_lane = static_cast<int>(lane_major_activations::per_lane_of(bits));
  constexpr std::int64_t block_cols = std::int64_t{16} * per_lane;  // columns per block: 128 (3 and 4 bits), 256 (2 bits)
  constexpr std::int64_t block_bytes = block_cols * bits / 8;  // 64, or 48 for 3-bit codes
  // Independent chains of FMAs per row of X: 4 cover the FMA latency at M = 1.
  constexpr int U = M == 1 ? 4 : M == 2 ? 2 : 1;
  constexpr bool lane_scales = Format::group_size != quant::per_channel && Format::group_size < block_cols;
  const std::int64_t k = w.cols();
  const std::int64_t group = Format::group_size == quant::per_channel ? k : Format::group_size;
  const std::int64_t row_bytes = w.layout.code_row_bytes;
  const std::int64_t n_blocks = xl.cols / block_cols;  // the last one ragged where K is not a multiple of block_cols
  const __m512 codes_table = lane_codes_table(bits), codes_table_hi = lane_codes_table_hi();
  // A block's loads reach 67 bytes past its start (64 at offsets 0-3): rows whose last
  // block would read past the codes' buffer take lane_block's Guard (the last row or,
  // with rows shorter than a block, the last few).
  const std::int64_t safe_rows = (w.rows() * row_bytes - ((n_blocks - 1) * block_bytes + 67)) / row_bytes;  // rows [0, this) need none
  // One row, its blocks' loads guarded or not (a branch per block in the loop cost 13% at w4g128, in L2).
  const auto row = [&](std::int64_t n, auto guard) {
    const std::uint8_t* codes = w.codes + n * row_bytes;  // [code_row_bytes]
    const auto block = [&](std::int64_t bb, __m512 table, __m512 table_hi, __m512 (&chain)[M][U]) {
      lane_block<bits, M, U, decltype(guard)::value>(codes + bb * block_bytes, xl, bb * block_cols, table, table_hi,
                                                     row_bytes - bb * block_bytes, chain);
    };
    __m512 chain[M][U];
    for (auto& a : chain)
      for (auto& c : a) c = _mm512_setzero_ps();
    batch acc[M];
    if constexpr (!lane_scales) {
      // Blocks per group; per channel, all of them.
      const std::int64_t unit_blocks = Format::group_size == quant::per_channel ? std::max<std::int64_t>(n_blocks, 1)
                                                                                 : group / block_cols;
      const std::int64_t main_groups = (n_blocks + unit_blocks - 1) / unit_blocks;
      for_each_group_table<Format>(w, n, main_groups, codes_table, codes_table_hi, [&](std::int64_t g, __m512 table, __m512 table_hi) {
        const std::int64_t b = g * unit_blocks, b1 = std::min(n_blocks, b + unit_blocks);
        for (std::int64_t bb = b; bb < b1; ++bb) block(bb, table, table_hi, chain);
      });
      for (int i = 0; i < M; ++i) {
        __m512 t = chain[i][0];
        for (int u = 1; u < U; ++u) t = _mm512_add_ps(t, chain[i][u]);
        acc[i] = batch(t);
      }
    } else {
      // G = B / group groups per block (2..8), lane j in the block's group j / (16 / G);
      // 16 / G blocks per chunk of 16 groups, the chunk's vectors permuted per block.
      constexpr int G = static_cast<int>(block_cols / Format::group_size), blocks_per_chunk = 16 / G;
      const __m512 zero = _mm512_set1_ps(Format::symmetric ? static_cast<float>(Format::symmetric_zero) : 0.0f);
      const __m512 table = _mm512_sub_ps(codes_table, zero);
      const __m512 table_hi = bits == 2 ? _mm512_sub_ps(codes_table_hi, zero) : table;  // (2-bit only)
      // lane j's group within its block: j / (16 / G)
      const __m512i lane_group = _mm512_srli_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                                   std::countr_zero(static_cast<unsigned>(16 / G)));
      __m512 corr[M];  // asymmetric: sum over lanes and blocks of scale * zero * the lane's activation sum
      for (int i = 0; i < M; ++i) {
        acc[i] = batch(0.0f);
        corr[i] = _mm512_setzero_ps();
      }
      for (std::int64_t b0 = 0; b0 < n_blocks; b0 += blocks_per_chunk) {
        const std::int64_t b1 = std::min(n_blocks, b0 + blocks_per_chunk);
        __m512 sv, szv;  // (a ragged last block holds fewer groups)
        lane_group_terms<Format>(w, n, b0 * G, static_cast<int>(std::min<std::int64_t>((b1 - b0) * G, w.layout.n_groups - b0 * G)), sv, szv);
        for (std::int64_t bb = b0; bb < b1; ++bb) {
          block(bb, table, table_hi, chain);
          // lane j's group inside the chunk: (bb - b0) * G + j / (16 / G)
          const __m512i index = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>((bb - b0) * G)), lane_group);
          const __m512 s_lanes = _mm512_permutexvar_ps(index, sv);
          for (int i = 0; i < M; ++i) {
            __m512 t = chain[i][0];
            chain[i][0] = _mm512_setzero_ps();
            for (int u = 1; u < U; ++u) {
              t = _mm512_add_ps(t, chain[i][u]);
              chain[i][u] = _mm512_setzero_ps();
            }
            acc[i] = batch(_mm512_fmadd_ps(t, s_lanes, acc[i].data));
          }
          if constexpr (!Format::symmetric) {
            const __m512 sz_lanes = _mm512_permutexvar_ps(index, szv);
            for (int i = 0; i < M; ++i)
              corr[i] = _mm512_fmadd_ps(sz_lanes, _mm512_loadu_ps(xl.lane_sums(i) + bb * 16), corr[i]);
          }
        }
      }
      if constexpr (!Format::symmetric)
        for (int i = 0; i < M; ++i) acc[i] = batch(_mm512_sub_ps(acc[i].data, corr[i]));
    }
    for (int i = 0; i < M; ++i) y(i, n) = xsimd::hadd(acc[i]);
  };
  for (std::int64_t n = n0; n < n1; ++n) {
    if (n >= safe_rows) row(n, std::true_type{});
    else row(n, std::false_type{});
  }
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#else
template <class Arch, int Bits>
inline constexpr bool lane_major_gemv = false;
// Declared so that gemm() can name it (two-phase lookup); never called without AVX-512.
template <class Arch, class Format, int M>
void gemv_quantized_lanes(const quant::qtensor_view& w, const lane_major_activations& xl, matrix_view<float> y,
                          std::int64_t n0, std::int64_t n1);
#endif

// Row r, columns [c0, c1) of a dense W as f32, into out[c1 - c0].
template <class Arch, class T>
void decode_dense(matrix_view<const T> w, std::int64_t r, std::int64_t c0, std::int64_t c1, float* out) {
  constexpr std::int64_t lanes = fbatch<Arch>::size;
  const T* row = w.row(r);
  std::int64_t c = c0;
  for (; c + lanes <= c1; c += lanes) load_f32<Arch>(row + c).store_unaligned(out + (c - c0));
  for (; c < c1; ++c) out[c - c0] = to_float(row[c]);
}

// out[c * out_stride + r] = rows[r * row_stride + c] for a lanes × lanes block: the
// decoded weight rows into the k-major GEMM panel. Unpack/shuffle networks where
// the ISA has them (AVX-512: 64 shuffles per 256 floats, AVX2: 24 per 64, SSE2:
// 8 per 16), else element by element; the overload nearest to Arch in xsimd's
// chain is picked, as in convert.hpp.
template <class Arch>
inline void transpose_block(const float* rows, std::int64_t row_stride, float* out, std::int64_t out_stride,
                            xsimd::generic) {
  constexpr std::int64_t lanes = fbatch<Arch>::size;
  for (std::int64_t r = 0; r < lanes; ++r)
    for (std::int64_t c = 0; c < lanes; ++c) out[c * out_stride + r] = rows[r * row_stride + c];
}

#if XSIMD_WITH_SSE2
template <class Arch>
inline void transpose_block(const float* rows, std::int64_t row_stride, float* out, std::int64_t out_stride,
                            xsimd::sse2) {
  if constexpr (fbatch<Arch>::size == 4) {
    __m128 r0 = _mm_loadu_ps(rows), r1 = _mm_loadu_ps(rows + row_stride);
    __m128 r2 = _mm_loadu_ps(rows + 2 * row_stride), r3 = _mm_loadu_ps(rows + 3 * row_stride);
    _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
    _mm_storeu_ps(out, r0);
    _mm_storeu_ps(out + out_stride, r1);
    _mm_storeu_ps(out + 2 * out_stride, r2);
    _mm_storeu_ps(out + 3 * out_stride, r3);
  } else {  // AVX1
    transpose_block<Arch>(rows, row_stride, out, out_stride, xsimd::generic{});
  }
}
#endif

#if XSIMD_WITH_AVX2
template <class Arch>
inline void transpose_block(const float* rows, std::int64_t row_stride, float* out, std::int64_t out_stride,
                            xsimd::avx2) {
  __m256 r[8], t[8];  // rows, then the stages of the 8 × 8 network
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(rows + i * row_stride);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int i = 0; i < 4; ++i) {
    _mm256_storeu_ps(out + i * out_stride, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
    _mm256_storeu_ps(out + (i + 4) * out_stride, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
  }
}
#endif

#if XSIMD_WITH_AVX512F
// GCC 12 reports the _mm512_undefined_*() inside these intrinsics as maybe-
// uninitialized where they are inlined (GCC bug 105593, as in convert.hpp).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
template <class Arch>
inline void transpose_block(const float* rows, std::int64_t row_stride, float* out, std::int64_t out_stride,
                            xsimd::avx512f) {
  __m512 r[16], t[16];  // rows, then the stages of the 16 × 16 network
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(rows + i * row_stride);
  for (int i = 0; i < 16; i += 2) {  // pairs of rows interleaved within 128-bit lanes
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {  // 4 × 4 transposes within 128-bit lanes
    r[i] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int h = 0; h < 16; h += 8)  // then the 4 × 4 transpose of 128-bit lanes
    for (int i = 0; i < 4; ++i) {
      t[h + i] = _mm512_shuffle_f32x4(r[h + i], r[h + i + 4], 0x88);
      t[h + i + 4] = _mm512_shuffle_f32x4(r[h + i], r[h + i + 4], 0xdd);
    }
  for (int i = 0; i < 8; ++i) {
    _mm512_storeu_ps(out + i * out_stride, _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88));
    _mm512_storeu_ps(out + (i + 8) * out_stride, _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd));
  }
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

// X packed for the GEMM's register tile, once per call: for each kc-column slice s
// and each block b of mr rows, a [kc][mr] array (k-major) at (s * blocks + b) * kc *
// mr, holding X(b * mr + i, s * kc + k) at k * mr + i, rows past M repeating the last
// row. The tile's mr broadcasts of column k then read one contiguous 32-byte run
// (AVX-512), where X's own rows, K floats apart, put all mr of them in one L1 set
// whenever K * 4 bytes is a multiple of 4 KB (K = 4096: 8 lines of a 12-way set, beside
// the panel's). Allocated once per call (M x K floats, rounded up to whole blocks):
// the GEMM serves prefill (M > 8), whose call does M x N x K multiply-adds per float
// of it; the decode GEMV never packs.
template <class Arch>
struct packed_x {
  static constexpr int mr = matmul_tiles<Arch>::mr;
  static constexpr std::int64_t kc = matmul_tiles<Arch>::kc;
  std::int64_t blocks = 0, slices = 0;
  aligned_buffer<float> data;  // [slices][blocks][kc][mr]
  packed_x(matrix_view<const float> x, thread_pool* pool)
      : blocks((x.rows + mr - 1) / mr), slices((x.cols + kc - 1) / kc),
        data(static_cast<std::size_t>(blocks * slices * kc * mr)) {
    const auto pack = [&](std::int64_t b0, std::int64_t b1) {
      for (std::int64_t b = b0; b < b1; ++b) {
        const float* rows[mr];  // [mr] X rows of block b, the last real row repeated
        for (int i = 0; i < mr; ++i) rows[i] = x.row(std::min<std::int64_t>(b * mr + i, x.rows - 1));
        for (std::int64_t s = 0; s < slices; ++s) {
          float* out = slice(s, b);  // [kc][mr]
          const std::int64_t k0 = s * kc, kl = std::min(kc, x.cols - k0);
          for (std::int64_t k = 0; k < kl; ++k)
            for (int i = 0; i < mr; ++i) out[k * mr + i] = rows[i][k0 + k];
        }
      }
    };
    if (pool && pool->size() > 1) pool->parallel_for(0, blocks, 1, pack);
    else pack(0, blocks);
  }
  const float* slice(std::int64_t s, std::int64_t b) const { return data.data() + (s * blocks + b) * kc * mr; }
  float* slice(std::int64_t s, std::int64_t b) { return data.data() + (s * blocks + b) * kc * mr; }
};

// Y[m0, m0 + MR)[n0, n0 + NR) (+)= X[., kc0 + [0, kl)) · panel, the register tile:
// per column k, NR / lanes weight vectors from the k-major panel meet MR broadcast
// activations in MR × (NR / lanes) FMAs. xp: the block's packed activations [kl][MR]
// (packed_x; rows past M repeat the last row; only `m_rows` rows are stored). The
// panel's columns past `cols` are zero and are not stored; `first` says store or add.
template <class Arch>
void micro_tile(const float* panel, std::int64_t kl, const float* xp, matrix_view<float> y, std::int64_t m0,
                int m_rows, std::int64_t n0, int cols, bool first) {
  using tiles = matmul_tiles<Arch>;
  using batch = fbatch<Arch>;
  constexpr int MR = tiles::mr, NV = tiles::nv, NR = tiles::nr;
  constexpr std::ptrdiff_t lanes = tiles::lanes;
  batch acc[MR][NV];
  for (auto& a : acc)
    for (auto& b : a) b = batch(0.0f);
  for (std::int64_t k = 0; k < kl; ++k) {
    const float* wk = panel + k * NR;  // [NR] weights of column k
    const float* xk = xp + k * MR;     // [MR] activations of column k
    batch wv[NV];
    for (int v = 0; v < NV; ++v) wv[v] = batch::load_aligned(wk + v * lanes);
    for (int i = 0; i < MR; ++i) {
      const batch xv(xk[i]);
      for (int v = 0; v < NV; ++v) acc[i][v] = xsimd::fma(wv[v], xv, acc[i][v]);
    }
  }
  if (cols == NR) {
    for (int i = 0; i < m_rows; ++i) {
      float* out = &y(m0 + i, n0);  // [NR]
      for (int v = 0; v < NV; ++v) {
        const batch s = first ? acc[i][v] : acc[i][v] + batch::load_unaligned(out + v * lanes);
        s.store_unaligned(out + v * lanes);
      }
    }
    return;
  }
  // A ragged last panel: through an L1 buffer, its first `cols` columns.
  alignas(64) float tile[NR];  // [NR] one row of the tile
  for (int i = 0; i < m_rows; ++i) {
    for (int v = 0; v < NV; ++v) acc[i][v].store_aligned(tile + v * lanes);
    float* out = &y(m0 + i, n0);  // [cols]
    for (int j = 0; j < cols; ++j) out[j] = first ? tile[j] : out[j] + tile[j];
  }
}

// Y[:, n0 + [0, cols)) (+)= X[:, slice s) · panel for all M rows of X, MR rows at a
// time: one instantiation per Arch, whatever the weight format.
template <class Arch>
void panel_times_x(const float* panel, std::int64_t s, std::int64_t kl, const packed_x<Arch>& xp, std::int64_t m,
                   matrix_view<float> y, std::int64_t n0, int cols) {
  constexpr int MR = matmul_tiles<Arch>::mr;
  for (std::int64_t b = 0; b < xp.blocks; ++b) {
    const int m_rows = static_cast<int>(std::min<std::int64_t>(MR, m - b * MR));
    micro_tile<Arch>(panel, kl, xp.slice(s, b), y, b * MR, m_rows, n0, cols, s == 0);
  }
}

// Panels [p0, p1) of nr output columns: Y[:, panel] = X · W[panel]ᵀ, over kc-column
// slices. Each slice of nr weight rows is decoded a row at a time (the same decode
// hook as the GEMV's) and transposed into the k-major panel the register tile reads.
template <class Arch, class Decode>
void gemm_panels(Decode&& decode, std::int64_t n, matrix_view<const float> x, const packed_x<Arch>& xp,
                 matrix_view<float> y, std::int64_t p0, std::int64_t p1) {
  using tiles = matmul_tiles<Arch>;
  constexpr int NR = tiles::nr;
  constexpr std::int64_t KC = tiles::kc;
  constexpr std::int64_t L = tiles::lanes;
  alignas(64) float panel[KC * NR];  // [kc, nr] f32 weights, k-major: W[n0 + j, k0 + c] at c * nr + j
  alignas(64) float rows[L * KC];    // [lanes, kc] decoded weight rows, before their transposition
  const std::int64_t k = x.cols;
  for (std::int64_t p = p0; p < p1; ++p) {
    const std::int64_t n0 = p * NR;
    const int cols = static_cast<int>(std::min<std::int64_t>(NR, n - n0));
    for (std::int64_t k0 = 0; k0 < k; k0 += KC) {
      const std::int64_t kl = std::min(KC, k - k0);
      const std::int64_t kv = kl - kl % L;  // columns transposed a lanes × lanes block at a time
      for (int j0 = 0; j0 < NR; j0 += static_cast<int>(L)) {
        for (int j = 0; j < L; ++j) {
          if (j0 + j < cols) decode(n0 + j0 + j, k0, k0 + kl, rows + j * KC);
          else std::fill(rows + j * KC, rows + j * KC + kl, 0.0f);
        }
        for (std::int64_t c = 0; c < kv; c += L) transpose_block<Arch>(rows + c, KC, panel + c * NR + j0, NR, Arch{});
        for (std::int64_t c = kv; c < kl; ++c)
          for (int j = 0; j < L; ++j) panel[c * NR + j0 + j] = rows[j * KC + c];
      }
      panel_times_x<Arch>(panel, k0 / KC, kl, xp, x.rows, y, n0, cols);
    }
  }
}

// Calls f(integral_constant<int, M>) for the runtime row count 1 <= m <= gemv_max_m.
template <int M = 1, class F>
inline void with_rows(std::int64_t m, F&& f) {
  if constexpr (M < 8) {
    if (m == M) return f(std::integral_constant<int, M>{});
    return with_rows<M + 1>(m, std::forward<F>(f));
  } else {
    f(std::integral_constant<int, M>{});
  }
}

// Calls fn(lo, hi) over [0, count) on the pool. Four chunks per thread balance
// uneven progress, but no chunk has fewer than min_matmul_chunk_macs multiply-adds
// (see split_grain).
template <class F>
inline void split_rows(thread_pool* pool, std::int64_t count, std::int64_t macs_per_item, F&& fn) {
  if (!pool || pool->size() == 1) return fn(std::int64_t{0}, count);
  pool->parallel_for(0, count, split_grain(pool->size(), count, macs_per_item, min_matmul_chunk_macs, 4),
                     std::forward<F>(fn));
}

// Y = X · Wᵀ: GEMV row split for M <= gemv_max_m, else GEMM over nr-row panels.
template <class Arch, class Gemv, class Decode>
void run(std::int64_t n, matrix_view<const float> x, matrix_view<float> y, thread_pool* pool, Gemv&& gemv,
         Decode&& decode) {
  using tiles = matmul_tiles<Arch>;
  if (x.rows == 0 || n == 0) return;
  if (x.rows <= tiles::gemv_max_m) {
    with_rows(x.rows, [&](auto rows_c) {
      split_rows(pool, n, x.cols * x.rows, [&](std::int64_t n0, std::int64_t n1) { gemv(rows_c, n0, n1); });
    });
    return;
  }
  const std::int64_t panels = (n + tiles::nr - 1) / tiles::nr;
  const packed_x<Arch> xp(x, pool);
  split_rows(pool, panels, tiles::nr * x.cols * x.rows,
             [&](std::int64_t p0, std::int64_t p1) { gemm_panels<Arch>(decode, n, x, xp, y, p0, p1); });
}

}  // namespace detail

// Y[M, N] = X[M, K] · W[N, K]ᵀ for a quantized W on architecture Arch. Arch
// defaults to the one this translation unit is compiled for (xsimd::default_arch:
// -mavx2 -mfma gives fma3<avx2>, aarch64 gives neon64), with no runtime dispatch;
// being a template argument, it also keeps the symbols of different ISAs apart.
template <class Arch = xsimd::default_arch>
void gemm(const quant::qtensor_view& w, matrix_view<const float> x, matrix_view<float> y, thread_pool* pool = nullptr) {
  ref::detail::check_gemm_shapes(w.rows(), w.cols(), x, y);
  const detail::quantized_source src{&w, quant::with_format(w.spec, [](auto format) {
                                       return &detail::decode_quantized<Arch, decltype(format)>;
                                     })};
  // The register GEMV's zero-point fold needs the activations' group sums, once per call.
  struct no_sums {};
  using sums_t = std::conditional_t<detail::register_decode(Arch{}), detail::activation_group_sums<Arch>, no_sums>;
  std::optional<sums_t> x_sums;
  const bool gemv = x.rows <= matmul_tiles<Arch>::gemv_max_m && x.rows > 0;
  // The lane-major GEMV (2, 3 and 4 bits on AVX-512) needs its activations reordered instead.
  constexpr bool any_lanes = detail::lane_major_gemv<Arch, 2>;  // (the same ISAs run 2, 3 and 4 bits)
  static_assert(any_lanes == detail::lane_major_gemv<Arch, 3> && any_lanes == detail::lane_major_gemv<Arch, 4>);
  const bool lanes = any_lanes && gemv && w.spec.bits >= 2 && w.spec.bits <= 4;
  if constexpr (detail::register_decode(Arch{}))
    if (gemv && !lanes) x_sums.emplace(x, w.layout.group, w.layout.n_groups);
  using lanes_t = std::conditional_t<any_lanes, detail::lane_major_activations, no_sums>;
  std::optional<lanes_t> x_lanes;
  if constexpr (any_lanes)
    if (lanes) x_lanes.emplace(x, w.spec.bits);
  detail::run<Arch>(
      w.rows(), x, y, pool,
      [&](auto rows_c, std::int64_t n0, std::int64_t n1) {
        constexpr int m = decltype(rows_c)::value;
        if constexpr (detail::register_decode(Arch{})) {
          quant::with_format(w.spec, [&](auto format) {
            using F = decltype(format);
            if constexpr (detail::lane_major_gemv<Arch, F::bits>)
              detail::gemv_quantized_lanes<Arch, F, m>(w, *x_lanes, y, n0, n1);
            else
              detail::gemv_quantized_registers<Arch, F, m>(w, x, y, *x_sums, n0, n1);
          });
        } else {
          detail::gemv_quantized<Arch, m>(src, x, y, n0, n1);
        }
      },
      [&](std::int64_t r, std::int64_t c0, std::int64_t c1, float* out) { src.decode(w, r, c0, c1, out); });
}

// Y[M, N] = X[M, K] · W[N, K]ᵀ for a dense f32, f16 or bf16 W on architecture Arch.
template <class Arch = xsimd::default_arch>
void gemm(const tensor_view& w, matrix_view<const float> x, matrix_view<float> y, thread_pool* pool = nullptr) {
  check(w.shape.rank == 2, "matmul weight must be 2-D, got shape " + w.shape.str());
  ref::detail::check_gemm_shapes(w.shape[0], w.shape[1], x, y);
  const auto typed = [&](auto tag) {
    using T = decltype(tag);
    const matrix_view<const T> wm = as_matrix<T>(w);
    detail::run<Arch>(
        wm.rows, x, y, pool,
        [&](auto rows_c, std::int64_t n0, std::int64_t n1) {
          detail::gemv_dense<Arch, decltype(rows_c)::value>(wm, x, y, n0, n1);
        },
        [&](std::int64_t r, std::int64_t c0, std::int64_t c1, float* out) {
          detail::decode_dense<Arch>(wm, r, c0, c1, out);
        });
  };
  switch (w.type) {
    case dtype::f32: return typed(float{});
    case dtype::f16: return typed(f16{});
    case dtype::bf16: return typed(bf16{});
    default: throw error("dense matmul weight must be F32, F16 or BF16, got " + std::string(dtype_name(w.type)));
  }
}

// y[N] = W[N, K] · x[K].
template <class Arch = xsimd::default_arch, class W>
void gemv(const W& w, std::span<const float> x, std::span<float> y, thread_pool* pool = nullptr) {
  gemm<Arch>(w, {x.data(), 1, static_cast<std::int64_t>(x.size())}, {y.data(), 1, static_cast<std::int64_t>(y.size())},
       pool);
}

}  // namespace qmr::simd
