// Streamed split-K tensor-core GEMV for batches of 1-16 tokens on sm_90 (experimental, not chosen by gemv()): the split kernel's layout, decode and mma (gemv_split.cuh), with the weights brought into shared memory by the bulk copy engine (cp.async.bulk + mbarrier) through a 4-stage ring per warp, one block per SM.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "gemv_split.cuh"

namespace qmr::cuda {

// ---------------------------------------------------------------------------
// Why. The split kernel (gemv_split.cuh) streams each warp's loads into registers,
// two 16-byte loads a lane ahead. A warp's whole stream is short (8192 x 8192 w4:
// 16 loads), so its time is a chain of memory round trips rather than bytes over
// bandwidth: 14 us at M = 1 against a read ceiling of 9 (H200). Here one lane per
// warp asks the bulk copy engine for the warp's next loads (2 loads, 1 KB, per
// stage, 4 stages ahead), the x slice arrives the same way while the first stages
// are in flight, and the warp reads its stage from shared memory (one 16-byte
// ld.shared a lane per load, conflict-free) and decodes it exactly as the split
// kernel does.
//
// Measured (H200, bench/results/cuda_gemv_stream_20261204_s29.md): it matches the
// reference on every format and shape of test_cuda_gemv_split, but it is slower than
// the split kernel at M = 1 (8192 x 8192 w4g128s 22.6 us against 14.4, graph) and
// beats it at M = 16 only for 3-bit (w3g128s 26.2 against 33.3 us). The time grows
// by ~0.9 us per stage a warp streams (w8, 32 stages: 36 us): about one stage in
// flight, not four. Suspected: the proxy fence before each refill waits for the
// warp's copies in flight; the next measurement refills after the stage's decode
// without it.
//
// Blocks. 16 warps own a band of 256 rows (a 16-row tile each) and one column slice;
// one block per SM (the ring, x and the scales take up to ~220 KB of shared memory);
// the grid is bands x slices with slices = SMs / bands (one wave), slices of whole
// 256-column quanta, as long as x, the ring and the scales fit. Slices are summed as
// in the split kernel (a workspace and a counter per band; the band's last block
// adds them), using the device_split's workspace, which is never smaller.
//
// Shared memory, in bytes from 0: mbarriers u64 [16 warps x 4 stages + 1 (x)],
// padded to 128; x f16 [8 NT][slice_cols + 8]; the ring u32x4 [16][4][2 loads][32 lanes]
// (3-bit: then the high planes u32x2 [16][4][2][32]); scales f16 [256][slice_groups];
// zero points u8 [256][slice_groups]; Σx f32 [8 NT][slice_groups] (asymmetric).
// ---------------------------------------------------------------------------
struct gemv_stream_traits {
  static constexpr int block_warps = 16;
  static constexpr int block_threads = 32 * block_warps;
  static constexpr int band_rows = 16 * block_warps;
  // Ring: 4 stages of 2 loads (1 KB a warp, 16 KB a block per stage): 3 stages (48 KB a
  // block) in flight while one is decoded; with ~1 us of DRAM latency under load an SM
  // needs ~33 KB in flight to draw its share of 4.3 TB/s.
  static constexpr int stages = 4;
  static constexpr int loads_per_stage = 2;
  static constexpr int slice_quantum = 256;  // as the split layout: every group starts in its slice
  // Dynamic shared memory of one block: below sm_90's 227 KB opt-in limit (the static `last` flag takes a few bytes).
  static constexpr int max_smem = 226 * 1024;
};

// The stream kernel's grid and shared memory for one matrix: computed at each call
// from the split layout and the SM count (a few integer operations).
struct stream_plan {
  int bands = 0, slices = 1, slice_cols = 0, slice_groups = 1;
  int smem = 0;  // bytes, for NT = 2 (16 tokens); NT = 1 takes less
  static QMR_HOST_DEVICE constexpr int smem_bytes(int bits, int nt, int slice_cols, int slice_groups, bool asym) {
    using T = gemv_stream_traits;
    const int bars = ((T::block_warps * T::stages + 1) * 8 + 127) / 128 * 128;
    const int x = 8 * nt * (slice_cols + 8) * 2;
    const int ring = T::block_warps * T::stages * T::loads_per_stage * (512 + (bits == 3 ? 256 : 0));
    const int scales = (T::band_rows * slice_groups * 2 + 15) / 16 * 16;
    const int zeros = asym ? (T::band_rows * slice_groups + 15) / 16 * 16 : 0;
    const int xsum = asym ? 8 * nt * slice_groups * 4 : 0;
    return bars + x + ring + scales + zeros + xsum;
  }
  static stream_plan of(const split_layout& l, int bits, int group_shift, bool asym, int sm_count) {
    using T = gemv_stream_traits;
    stream_plan p;
    p.bands = static_cast<int>((l.rows_pad + T::band_rows - 1) / T::band_rows);
    const std::int64_t quanta = (l.cols_pad + T::slice_quantum - 1) / T::slice_quantum;
    std::int64_t want = std::max<std::int64_t>(1, std::max(sm_count, 1) / p.bands);
    for (;; ++want) {
      const std::int64_t slices = std::min(want, quanta);
      const std::int64_t per = (quanta + slices - 1) / slices;
      p.slice_cols = static_cast<int>(std::min<std::int64_t>(per * T::slice_quantum, l.cols_pad));
      p.slices = static_cast<int>((l.cols_pad + p.slice_cols - 1) / p.slice_cols);
      p.slice_groups = split_slice_groups(group_shift, p.slice_cols);
      p.smem = smem_bytes(bits, 2, p.slice_cols, p.slice_groups, asym);
      if (p.smem <= T::max_smem || slices >= quanta) break;
    }
    return p;
  }
};

namespace detail {

#ifdef __CUDACC__
QMR_DEVICE __forceinline__ unsigned smem_u32(const void* p) { return static_cast<unsigned>(__cvta_generic_to_shared(p)); }
// The mbarrier and bulk-copy primitives (PTX ISA 8.0, sm_90).
QMR_DEVICE __forceinline__ void mbar_init(qstd::uint64_t* bar, unsigned count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_u32(bar)), "r"(count) : "memory");
}
// One arrival that also expects `bytes` of bulk-copy transactions before the phase completes.
QMR_DEVICE __forceinline__ void mbar_arrive_expect(qstd::uint64_t* bar, unsigned bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_u32(bar)), "r"(bytes) : "memory");
}
QMR_DEVICE __forceinline__ void mbar_wait(qstd::uint64_t* bar, unsigned parity) {
  asm volatile(
      "{\n .reg .pred done;\n"
      "stream_wait_%=:\n"
      " mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      " @!done bra stream_wait_%=;\n}" ::"r"(smem_u32(bar)),
      "r"(parity)
      : "memory");
}
// global -> shared, `bytes` a multiple of 16, both addresses 16-byte aligned; completes on `bar`.
QMR_DEVICE __forceinline__ void bulk_copy(void* dst, const void* src, unsigned bytes, qstd::uint64_t* bar) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(smem_u32(dst)),
               "l"(src), "r"(bytes), "r"(smem_u32(bar))
               : "memory");
}

template <int Bits, int NT, bool Asym, class TY>
__global__ void __launch_bounds__(gemv_stream_traits::block_threads, 1)
    gemv_stream_kernel(const split_args a, const __half* __restrict__ x, TY* __restrict__ y) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  using TR = gemv_stream_traits;
  constexpr int T = TR::block_threads, S = TR::stages, LPS = TR::loads_per_stage;
  constexpr int LC = split_load_cols(Bits), TOK = 8 * NT;
  constexpr unsigned stage_q = LPS * 512, stage_h = Bits == 3 ? LPS * 256 : 0;  // bytes of one warp's stage
  extern __shared__ uint4 gemv_stream_smem[];
  const int tid = static_cast<int>(threadIdx.x), lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
  const int band = static_cast<int>(blockIdx.x), slice = static_cast<int>(blockIdx.y);
  const int tile = band * TR::block_warps + warp;
  const bool active = tile < a.rows_pad / 16;
  const int c0 = slice * a.slice_cols;                   // the slice's first column (of cols_pad)
  const int slen = min(a.slice_cols, a.loads * LC - c0);  // its columns
  const int n_loads = active ? slen / LC : 0;
  const int n_stages = (n_loads + LPS - 1) / LPS;
  const int l0 = c0 / LC;

  // Shared memory (see the layout above).
  unsigned char* base = reinterpret_cast<unsigned char*>(gemv_stream_smem);
  qstd::uint64_t* bars = reinterpret_cast<qstd::uint64_t*>(base);  // [warp][stage], then x's
  qstd::uint64_t* bar_x = bars + TR::block_warps * S;
  const int off_x = ((TR::block_warps * S + 1) * 8 + 127) / 128 * 128;
  const int xstride = split_x_stride(a.slice_cols);  // f16 per staged token row
  __half* xs = reinterpret_cast<__half*>(base + off_x);
  const int off_ring = off_x + TOK * xstride * 2;
  unsigned char* ring_q = base + off_ring + warp * S * stage_q;                               // [S][LPS][32] uint4
  unsigned char* ring_h = base + off_ring + TR::block_warps * S * stage_q + warp * S * stage_h;  // [S][LPS][32] uint2
  const int off_scale = off_ring + TR::block_warps * S * (stage_q + stage_h);
  __half* ss = reinterpret_cast<__half*>(base + off_scale);  // [256][slice_groups]
  const int off_zero = off_scale + (TR::band_rows * a.slice_groups * 2 + 15) / 16 * 16;
  qstd::uint8_t* zs = base + off_zero;  // [256][slice_groups]
  float* xsum = reinterpret_cast<float*>(base + off_zero + (Asym ? (TR::band_rows * a.slice_groups + 15) / 16 * 16 : 0));

  qstd::uint64_t* my_bars = bars + warp * S;
  if (lane == 0)
    for (int s = 0; s < S; ++s) mbar_init(my_bars + s, 1);
  if (tid == 0) mbar_init(bar_x, 1);
  asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  __syncthreads();

  // The warp's stages: loads [st * LPS, min(n_loads, st * LPS + LPS)) of its tile's slice,
  // contiguous in the layout ([tile][load][lane]).
  const unsigned char* q_src = reinterpret_cast<const unsigned char*>(a.q) + (static_cast<std::size_t>(active ? tile : 0) * a.loads + l0) * 512;
  const unsigned char* h_src = Bits == 3 ? reinterpret_cast<const unsigned char*>(a.hq) + (static_cast<std::size_t>(active ? tile : 0) * a.loads + l0) * 256 : nullptr;
  const auto issue = [&](int st) {  // lane 0 only
    const int nl = min(LPS, n_loads - st * LPS);
    const int slot = st % S;
    mbar_arrive_expect(my_bars + slot, static_cast<unsigned>(nl) * (512u + (Bits == 3 ? 256u : 0u)));
    bulk_copy(ring_q + slot * stage_q, q_src + static_cast<std::size_t>(st) * stage_q, static_cast<unsigned>(nl) * 512u, my_bars + slot);
    if constexpr (Bits == 3)
      bulk_copy(ring_h + slot * stage_h, h_src + static_cast<std::size_t>(st) * stage_h, static_cast<unsigned>(nl) * 256u, my_bars + slot);
  };
  if (lane == 0)
    for (int st = 0; st < min(S, n_stages); ++st) issue(st);  // weights: no kernel writes them, so before pdl_wait
  pdl_launch_dependents();

  // The band's scales (and zero points) of the slice's groups.
  split_stage_scales<Asym>(a, band * TR::band_rows, TR::band_rows, c0, ss, zs, tid, T);

  pdl_wait();  // x is the previous kernel's output
  // x's slice: the batch's rows by bulk copies (columns [c0, min(c0 + slen, cols))), zeros
  // elsewhere by the threads (disjoint bytes, so the two kinds of writes never meet).
  const int xcols = min(slen, a.cols - c0);  // > 0: a slice starts inside the columns
  if (tid == 0) {
    mbar_arrive_expect(bar_x, static_cast<unsigned>(a.m * xcols * 2));
    for (int n = 0; n < a.m; ++n)
      bulk_copy(xs + n * xstride, x + static_cast<std::size_t>(n) * a.cols + c0, static_cast<unsigned>(xcols * 2), bar_x);
  }
  {
    const int vec_per_row = slen / 8;  // 16-byte vectors of a staged row
    for (int i = tid; i < TOK * vec_per_row; i += T) {
      const int n = i / vec_per_row, col = 8 * (i - n * vec_per_row);
      if (n >= a.m || col >= xcols) *reinterpret_cast<uint4*>(xs + n * xstride + col) = make_uint4(0u, 0u, 0u, 0u);
    }
  }
  __syncthreads();  // scales and zero fills written
  mbar_wait(bar_x, 0u);
  if constexpr (Asym) {  // Σx per token and group of the slice: a warp per (token, group)
    const int group_cols = a.group_shift >= 30 ? slen : min(1 << a.group_shift, slen);
    for (int i = warp; i < TOK * a.slice_groups; i += TR::block_warps) {
      const int n = i / a.slice_groups, j = i - n * a.slice_groups;
      float sum = 0.0f;
      for (int c = 2 * lane; c < group_cols; c += 64) {
        const float2 f = __half22float2(*reinterpret_cast<const __half2*>(xs + n * xstride + j * group_cols + c));
        sum += f.x + f.y;
      }
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
      if (lane == 0) xsum[i] = sum;
    }
    __syncthreads();
  }

  float acc[NT][4], part[NT][4];
#pragma unroll
  for (int n = 0; n < NT; ++n)
#pragma unroll
    for (int i = 0; i < 4; ++i) acc[n][i] = part[n][i] = 0.0f;
  const unsigned xs_lane = split_xs_lane<NT>(smem_u32(xs), xstride, lane);
  int flush_mask = 0;
  const unsigned flush_in_load = split_flush_in_load<Bits>(a.group_shift, flush_mask);
  const float unscale = static_cast<float>(1 << (Bits - 1));
  const int r_lo = warp * 16 + g;  // the lane's two rows in the band: r_lo, r_lo + 8

  for (int st = 0; st < n_stages; ++st) {
    const int slot = st % S;
    mbar_wait(my_bars + slot, static_cast<unsigned>((st / S) & 1));
    uint4 qv[LPS];
    uint2 hv[LPS];
#pragma unroll
    for (int u = 0; u < LPS; ++u) {
      qv[u] = reinterpret_cast<const uint4*>(ring_q + slot * stage_q)[u * 32 + lane];
      if constexpr (Bits == 3) hv[u] = reinterpret_cast<const uint2*>(ring_h + slot * stage_h)[u * 32 + lane];
      else hv[u] = make_uint2(0u, 0u);
    }
    __syncwarp();
    if (lane == 0 && st + S < n_stages) {
      // The stage's reads (generic proxy) are ordered before the bulk copy (async proxy) that
      // refills it. (Measured so; not yet measured: refilling after the stage's decode, when its
      // values are consumed, without this fence, which may wait for the copies in flight.)
      asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
      issue(st + S);
    }
#pragma unroll
    for (int u = 0; u < LPS; ++u) {
      const int li = st * LPS + u;
      if (li < n_loads) {
        const qstd::uint32_t q[4] = {qv[u].x, qv[u].y, qv[u].z, qv[u].w};
        const qstd::uint32_t hw[2] = {hv[u].x, hv[u].y};
        split_load_mma<Bits, NT, Asym>(q, hw, li * LC, slen, flush_in_load, flush_mask, xs_lane, ss, zs, xsum, a, r_lo, t, part, acc);
      }
    }
  }

  split_finish<NT>(a, acc, band, TR::band_rows, T, r_lo, t, active, slice, tid, unscale, y);
#else
  __trap();  // launched only on sm_90+ (gemv_stream checks)
#endif
}

template <int Bits, int NT, bool Asym, class TY>
void stream_launch(const split_args& a, const __half* x, TY* y, int bands, cudaStream_t stream, bool pdl) {
  const int smem = stream_plan::smem_bytes(Bits, NT, a.slice_cols, a.slice_groups, Asym);
  const auto kernel = gemv_stream_kernel<Bits, NT, Asym, TY>;
  QMR_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  launch_kernel(pdl, kernel, dim3(static_cast<unsigned>(bands), static_cast<unsigned>(a.slices)),
                dim3(gemv_stream_traits::block_threads), static_cast<std::size_t>(smem), stream, a, x, y);
}

#endif  // __CUDACC__

}  // namespace detail

// Whether this device runs the stream kernel (bulk copies and mbarrier transactions: sm_90+).
inline bool stream_available() {
  int device = 0, major = 0;
  QMR_CUDA_CHECK(cudaGetDevice(&device));
  QMR_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  return major >= 9;
}

#ifdef __CUDACC__
// y[M, rows] = x[M, cols] · Wᵀ on `stream` with the stream kernel, over a matrix
// uploaded by upload_split: x f16, 16-byte aligned; y f16 or f32; any M >= 1 (chunks
// of 16 tokens). Same numerics as gemv_split (exact decode, f16 x f16 products summed
// in f32, f32 group scaling and slice sums). sm_90+ only (stream_available()).
template <class TY>
void gemv_stream(const device_split& w, const f16* x, TY* y, int M, cudaStream_t stream, bool pdl = false) {
  static_assert(qstd::is_same_v<TY, f16> || qstd::is_same_v<TY, float>, "gemv_stream: the output is f16 or float");
  detail::split_check_call(w, x, y, M, "gemv_stream");
  const split_layout& l = w.l;
  const stream_plan p = stream_plan::of(l, w.spec.bits, group_shift_of(w.spec), !w.spec.symmetric, w.sm_count);
  check(p.smem <= gemv_stream_traits::max_smem,
        "gemv_stream: a " + std::to_string(l.rows) + " x " + std::to_string(l.cols) + " " + w.spec.str() + " slice needs " +
            std::to_string(p.smem) + " bytes of shared memory");
  // Its slice sums use the split kernel's workspace: [slices][16][rows_pad] f32 and a counter per band.
  check(p.slices == 1 || (p.slices <= l.slices && l.slices > 1 && p.bands <= l.bands),
        "gemv_stream: the split workspace of " + w.spec.str() + " is too small for " + std::to_string(p.slices) + " slices");
  detail::split_run_chunks(detail::split_make_args(w, p.slice_cols, p.slices), x, y, M, w.spec.bits, "gemv_stream",
                           [&]<int Bits, int NT, bool Asym>(const detail::split_args& a, const __half* xc, TY* yc) {
                             detail::stream_launch<Bits, NT, Asym>(a, xc, yc, p.bands, stream, pdl);
                           });
}
#endif  // __CUDACC__

}  // namespace qmr::cuda
