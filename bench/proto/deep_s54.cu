// Stop 54's probe for issue 7's 16-token bar (W4 on 8192 x 8192 at least 3x cuBLAS f16 in a CUDA graph with PDL):
// the split kernel with one block an SM and a deep ring, so that most of a call's weights are copied into shared
// memory before its griddepcontrol.wait, while the previous call is still in its tail.
//
// Why: stop 51's timeline put ~7 us of each 19 us call at the call boundary, where no weights move (the tile tail, the
// release, the next call's x staging). HEAD (2 blocks an SM, 8 slices of 1024 columns, a ring of 4 loads a warp) has
// only R - 1 = 3 of a warp's 16 loads (18% of the weights) in flight across the boundary, and deeper rings were
// slower there (stop 51: the prefetch competes with the resident previous call's tail). Here a block of 16 warps
// owns a band of 256 rows and one of S = 4 slices of 2048 columns (128 blocks, one an SM, 64 KB of staged x), and each
// warp's ring holds R loads of its 32 (R = 18: 53% of the weights before the wait). The next call's block can only
// become resident once this call's block on that SM has left, so its prefetch overlaps the other SMs' tails and the
// release, not this SM's streaming. Slice sums as HEAD: per row tile (split_finish), or per band (BAND_TAIL: the last
// of a band's S blocks adds all 16 tiles, so 3 of 4 blocks leave right after their stores and atomic).
//
// Timing and correctness of a prototype only (16 tokens, 4-bit symmetric, 8192 x 8192): the output is checked
// against qmr::cuda::gemv_split's on the same matrix (outputs poisoned first), and every variant is timed as a CUDA
// graph of 20 calls with PDL through >= 1 GB of copies, beside HEAD's split kernel, cuBLAS f16 and the read ceiling,
// in the same run.
// Build (sm_90):
//   nvcc -std=c++20 --expt-relaxed-constexpr -O3 -gencode=arch=compute_90,code=sm_90 -Xptxas -v
//        -DQMR_HAVE_CUBLAS -I include -I bench bench/proto/deep_s54.cu -lcublas -o deep
// Run: deep [FORMAT (w4g128s)]. Results (calls a and b on an H100): bench/results/cuda_gemv_split_wide_h100_20261207_s54.md.
// Deep rings lose (the deeper, the slower); ring 4 with 4 slices and x by plain loads beat HEAD by 8-10%
// (17.12-17.34 us against 18.78-18.95), built for the library as split_wide (landed in stop 55, commit "Land split_wide").
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "probe_m16.cuh"

using namespace probe_m16;  // qc, qd, gpu, f16, calls, dim, NT

namespace {

// Shared memory, bytes: x f16 [16][slice_cols + 8], the ring uint4 [W][R][32], the scale pairs u32 [W][slice_groups][8],
// the band flag (BAND_TAIL) u32.
struct deep_smem {
  int ring = 0, scale = 0, flag = 0, bytes = 0;
  static constexpr deep_smem of(int W, int r, int slice_cols, int slice_groups) {
    deep_smem m;
    m.ring = 16 * qd::split_x_stride(slice_cols) * 2;
    m.scale = m.ring + W * r * 512;
    m.flag = m.scale + W * slice_groups * 32;
    m.bytes = m.flag + 16;
    return m;
  }
};

// W warps a block = row tiles a band (16 W rows), R loads a warp's ring. XL: x staged by coherent 16-byte loads
// through registers, so that the loop waits only for its own load's cp.async group (else, as HEAD, x is one more
// cp.async group, and waiting for it waits for every load prefetched before it: up to R - 1 = 17 a warp here).
template <int W, int R, bool BAND_TAIL, bool XL, int MINB = 1, int P = R - 1>
__global__ void __launch_bounds__(32 * W, MINB) deep_kernel(const qd::split_args a, const __half* __restrict__ x, f16* __restrict__ y) {
  constexpr int Bits = 4, LC = qc::split_load_cols(Bits), TOK = 16;
  extern __shared__ uint4 deep_smem_raw[];
  const int tid = static_cast<int>(threadIdx.x), lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
  const int band = static_cast<int>(blockIdx.x), slice = static_cast<int>(blockIdx.y);
  const int tile = band * W + warp;
  const bool active = tile < a.rows_pad / 16;
  const int c0 = slice * a.slice_cols;
  const int slen = min(a.slice_cols, a.loads * LC - c0);
  const int n_loads = active ? slen / LC : 0;
  const int l0 = c0 / LC;
  const int xstride = qd::split_x_stride(a.slice_cols);
  const deep_smem sm = deep_smem::of(W, R, a.slice_cols, a.slice_groups);
  unsigned char* sb = reinterpret_cast<unsigned char*>(deep_smem_raw);
  __half* xs = reinterpret_cast<__half*>(sb);  // [TOK][xstride]
  const unsigned ring_q = qd::split_smem_u32(sb + sm.ring) + static_cast<unsigned>(warp * R * 512 + lane * 16);
  auto* sp = reinterpret_cast<std::uint32_t*>(sb + sm.scale) + warp * a.slice_groups * 8;
  auto* flag = reinterpret_cast<unsigned*>(sb + sm.flag);

  const uint4* qp = a.q + (static_cast<std::size_t>(active ? tile : 0) * a.loads + l0) * 32 + lane;
  const auto issue = [&](int i, int slot) {
    if (i < n_loads) qd::split_cp_async16(ring_q + 512u * static_cast<unsigned>(slot), qp + static_cast<std::size_t>(i) * 32, 16u);
    qd::cp_async_commit();
  };
  qd::pdl_launch_dependents();
  if constexpr (XL) {  // the scales as the oldest group: the first load's wait covers them
    if (active) qd::split_stage_tile_scales<false>(a, tile, c0, sp, nullptr, lane);
    qd::cp_async_commit();
  }
#pragma unroll
  for (int i = 0; i < P; ++i) issue(i, i);  // P loads before the wait (no kernel writes the weights)
  if (!XL && active) qd::split_stage_tile_scales<false>(a, tile, c0, sp, nullptr, lane);
  qd::pdl_wait();
#pragma unroll
  for (int i = P; i < R - 1; ++i) issue(i, i);  // the rest of the ring after it
  const int vec_per_row = a.slice_cols / 8;
  if constexpr (XL) {
    // x [TOK][slice_cols] as 16-byte vectors, thread-strided, all of a thread's loads in flight before its stores.
    constexpr int XPT = (TOK * 2048 / 8 + 32 * W - 1) / (32 * W);  // vectors a thread at most (slices of <= 2048 columns)
    probe_m16::stage_x_loads<XPT>(a, x, xs, xstride, c0, vec_per_row, 0, TOK, tid, 32 * W);
    qd::cp_async_wait<R - 1>();  // this thread's scale copies (the oldest group); the barrier below shows them to the warp
  } else {
    if (warp < TOK) {
      const int n = warp;  // warp n copies token row n
      const bool row_in = n < a.m;
      const __half* src = x + static_cast<std::size_t>(row_in ? n : 0) * a.cols;
      const unsigned dst = qd::split_smem_u32(xs + n * xstride);
      for (int v = lane; v < vec_per_row; v += 32) {
        const int col = c0 + 8 * v;
        const bool in = row_in && col < a.cols;
        qd::split_cp_async16(dst + 16u * static_cast<unsigned>(v), in ? src + col : x, in ? 16u : 0u);
      }
    }
    qd::cp_async_commit();
    qd::cp_async_wait<0>();
  }
  __syncthreads();
  float acc[NT][4];
  const unsigned xs_lane = qd::split_xs_lane<NT>(qd::split_smem_u32(xs), xstride, lane);
  const float unscale = static_cast<float>(1 << (Bits - 1));
  probe_m16::stream_w4<R>(a, n_loads, slen, ring_q, xs_lane, sp, g, t, acc, issue, [](int) {});
  qd::cp_async_wait<0>();
  if constexpr (!BAND_TAIL) {
    qd::split_finish<NT>(a, acc, tile, g, t, lane, active, slice, unscale, y);
  } else {
    // Every warp stores its tile's slice sums; the block's thread 0 counts the block in its band (one acquire-release
    // atomic after the block barrier, the grid-barrier pattern); the band's last block adds the S slices of each tile.
    float* wk = a.work + static_cast<std::size_t>(slice) * 16 * a.rows_pad;
    if (active) {
#pragma unroll
      for (int n = 0; n < NT; ++n)
#pragma unroll
        for (int k = 0; k < 4; ++k)
          __stcg(wk + static_cast<std::size_t>(8 * n + 2 * t + (k & 1)) * a.rows_pad + 16 * tile + g + 8 * (k >> 1), acc[n][k]);
    }
    __syncthreads();
    if (tid == 0) {
      unsigned before;
      asm volatile("atom.acq_rel.gpu.global.add.u32 %0, [%1], 1;" : "=r"(before) : "l"(a.counters + band) : "memory");
      *flag = before == static_cast<unsigned>(a.slices - 1) ? 1u : 0u;
      if (before == static_cast<unsigned>(a.slices - 1)) a.counters[band] = 0u;
    }
    __syncthreads();
    if (*flag == 0u || !active) return;
    qd::split_add_tile(a, tile, lane, unscale, y);
  }
}

template <int W_, int R, bool BAND_TAIL, bool XL, int MINB = 1, int P = R - 1>
struct deep_variant {
  static constexpr int W = W_;
  static std::string name(int slices) {
    return std::string("deep warps") + std::to_string(W) + " S" + std::to_string(slices) + " ring" + std::to_string(R) + " pre" + std::to_string(P) + (BAND_TAIL ? " band-tail" : " tile-tail") + (XL ? " x-loads" : " x-cpasync") + " minb" + std::to_string(MINB);
  }
  static int smem(const qd::split_args& a) { return deep_smem::of(W, R, a.slice_cols, a.slice_groups).bytes; }
  static void launch(const qd::split_args& a, int bands, const f16* x, f16* y, cudaStream_t stream, bool pdl) {
    const auto kernel = deep_kernel<W, R, BAND_TAIL, XL, MINB, P>;
    const int bytes = smem(a);
    QMR_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
    qc::launch_kernel(pdl, kernel, dim3(static_cast<unsigned>(bands), static_cast<unsigned>(a.slices)), dim3(32 * W),
                      static_cast<std::size_t>(bytes), stream, a, reinterpret_cast<const __half*>(x), y);
  }
};

}  // namespace

template <class V>
void run_variant(probe_m16::split_probe& p, int slices, cudaStream_t stream) {
  const std::vector<qc::device_split>& w = p.w;
  const int slice_cols = static_cast<int>(dim) / slices;
  const int bands = static_cast<int>(w[0].l.rows_pad / (16 * V::W));
  std::vector<qd::split_args> as;
  for (const qc::device_split& m : w) {
    qd::split_args a = qd::split_make_args(m, slice_cols, slices);
    a.m = 16;
    as.push_back(a);
  }
  const int smem = V::smem(as[0]);
  if (smem > 227 * 1024) {
    std::printf("%-36s smem %d B: too large, skipped\n", V::name(slices).c_str(), smem);
    return;
  }
  char note[32];
  std::snprintf(note, sizeof note, "smem %6d B", smem);
  probe_m16::check_and_time(
      V::name(slices), 36, note,
      [&](int i, bool pdl) { V::launch(as[static_cast<std::size_t>(i)], bands, p.io.x.as<const f16>(), p.io.y.as<f16>(), stream, pdl); },
      static_cast<int>(w.size()), p.ref, p.io, stream, p.base);
}

int main(int argc, char** argv) {
  return probe_m16::probe_main(argc, argv, "deep", [](probe_m16::split_probe& p, cudaStream_t stream) {
    // Call a (h100_s54/a_*): rings 4-18 at 16 warps x 4 slices and 11 at 32 warps x 8; ring 4 alone beat HEAD (17.23 us).
    // Call b: around that one.
    run_variant<deep_variant<16, 4, false, true>>(p, 4, stream);
    run_variant<deep_variant<16, 3, false, true>>(p, 4, stream);
    run_variant<deep_variant<16, 5, false, true>>(p, 4, stream);
    run_variant<deep_variant<16, 6, false, true>>(p, 4, stream);
    run_variant<deep_variant<16, 8, false, true>>(p, 4, stream);
    run_variant<deep_variant<16, 6, false, true, 1, 3>>(p, 4, stream);
    run_variant<deep_variant<16, 8, false, true, 1, 3>>(p, 4, stream);
    run_variant<deep_variant<16, 4, false, true, 1, 1>>(p, 4, stream);
    run_variant<deep_variant<16, 4, true, true>>(p, 4, stream);
    run_variant<deep_variant<16, 4, false, false>>(p, 4, stream);
    run_variant<deep_variant<16, 4, false, true, 2>>(p, 8, stream);
    run_variant<deep_variant<32, 4, false, true>>(p, 8, stream);
    run_variant<deep_variant<16, 4, false, true>>(p, 4, stream);
  });
}
