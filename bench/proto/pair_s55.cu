// Stop 55's second probe for issue 7's 16-token bar (W4 on 8192 x 8192 at least 3x cuBLAS f16 in a CUDA graph with
// PDL): the wide split kernel with its slice sums kept out of L2.
//
// Why: stop 55 (bench/results/cuda_gemv_split_wide_h100_20261207_s55.md) measured the wide kernel at 17.2-17.5 us, and
// at 14.9-15.1 without its tail (the workspace stores, the acquire-release counter and the last warp's reads of the 4
// slices: a chain of L2 round trips at the end of every call). The bar is 15.2-15.9. A tail through DSMEM needs the
// band's slices in one cluster; with one block an SM, 30 clusters of 4 are resident on 132 SMs and the grid has 32
// (call b: two waves, 32 us). Clusters of 2 fit (66). So here a block owns two of the 4 column quarters of a band of
// 128 rows: warps 0-7 the first quarter's 8 row tiles, warps 8-15 the second's (each warp the same work as in the wide
// kernel: 16 rows x 2048 columns, a ring of 4 loads). The block stages its 4096 columns of x (128 KB). The band's two
// blocks are a cluster of 2 along y. 64 bands x 2 = 128 blocks, 64 clusters, one an SM.
// Tails (TM):
//   0  the two quarters of the block added in shared memory, then the L2 workspace with 2 slices (split_finish);
//   1  timing only (wrong outputs): every warp's sums stored to shared memory, no adding: what x's 128 KB cost
//      against wide_s55's tail-less kernel (14.9-15.1 us in stop 55's call b);
//   2  every warp's sums in shared memory, a cluster barrier, block y adds row tiles 4y..4y+3 of all 4 quarters in
//      quarter order (the same additions as HEAD's 4 slices: bit-identical outputs) through DSMEM; no workspace,
//      counter or fence.
// XR: x staged by plain loads in 1 or 2 rounds (16 or 8 vectors a thread in registers at once).
//
// Build (sm_90):
//   nvcc -std=c++20 --expt-relaxed-constexpr -O3 -gencode=arch=compute_90,code=sm_90 -Xptxas -v
//        -DQMR_HAVE_CUBLAS -I include -I bench bench/proto/pair_s55.cu -lcublas -o pair
// Run: bash bench/proto/s56a_device.sh (pair [FORMAT (w4g128s)]). Not run in stop 55 (no device time left). Read the
// printed clusters resident first: the grid needs 64 clusters of 2 (66 fit on call b's H100); fewer means a second
// wave. TM 2 is bit-identical to HEAD only where HEAD's wide configuration has 4 slices of 2048 (128+ SMs); TM 0 adds
// (q0 + q1) + (q2 + q3), within the tolerance.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "probe_m16.cuh"
#include "ptx_sm90.cuh"

using namespace probe_m16;  // qc, qd, gpu, f16, calls, dim, NT
using namespace ptx90;      // clusters, DSMEM

namespace {

constexpr int W = 16;          // warps a block: 8 row tiles x 2 column quarters
constexpr int TILES = 8;       // row tiles a band (128 rows)
constexpr int R = 4;           // loads a warp's ring
constexpr int QCOLS = 2048;    // a quarter's columns (a warp's slice, as the wide kernel's)
constexpr int BCOLS = 2 * QCOLS;  // a block's staged columns of x

// Shared memory, bytes: x f16 [16][BCOLS + 8], the ring uint4 [W][R][32], the scale pairs u32 [W][quarter_groups][8],
// the partial sums f32 [W][32 lanes][8].
struct pair_smem {
  int ring = 0, scale = 0, red = 0, bytes = 0;
  static constexpr pair_smem of(int quarter_groups) {
    pair_smem m;
    m.ring = 16 * qd::split_x_stride(BCOLS) * 2;
    m.scale = m.ring + W * R * 512;
    m.red = m.scale + W * quarter_groups * 32;
    m.bytes = m.red + W * 32 * 8 * 4;
    return m;
  }
};


// a: the quarters' args (slice_cols 2048, slices 4: scales, loads, x); af: the halves' (slice_cols 4096, slices 2: the
// workspace and counters of TM 0).
template <int TM, int XR>
__global__ void __launch_bounds__(32 * W, 1) pair_kernel(const qd::split_args a, const qd::split_args af, const __half* __restrict__ x,
                                                         f16* __restrict__ y) {
  constexpr int Bits = 4, LC = qc::split_load_cols(Bits), TOK = 16;
  extern __shared__ uint4 pair_smem_raw[];
  const int tid = static_cast<int>(threadIdx.x), lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
  const int band = static_cast<int>(blockIdx.x), half = static_cast<int>(blockIdx.y);
  const int tl = warp & (TILES - 1), kh = warp / TILES;  // the warp's row tile in the band, quarter in the block
  const int tile = band * TILES + tl, quarter = 2 * half + kh;
  const bool active = tile < a.rows_pad / 16;
  const int c0 = quarter * QCOLS;
  const int slen = min(QCOLS, a.loads * LC - c0);
  const int n_loads = active && slen > 0 ? slen / LC : 0;
  const int l0 = c0 / LC;
  const int xstride = qd::split_x_stride(BCOLS);
  const pair_smem sm = pair_smem::of(a.slice_groups);
  unsigned char* sb = reinterpret_cast<unsigned char*>(pair_smem_raw);
  __half* xs = reinterpret_cast<__half*>(sb);  // [TOK][xstride]: the block's columns 4096 half .. + 4095
  const unsigned ring_q = qd::split_smem_u32(sb + sm.ring) + static_cast<unsigned>(warp * R * 512 + lane * 16);
  auto* sp = reinterpret_cast<std::uint32_t*>(sb + sm.scale) + warp * a.slice_groups * 8;

  const uint4* qp = a.q + (static_cast<std::size_t>(active ? tile : 0) * a.loads + l0) * 32 + lane;
  const auto issue = [&](int i, int slot) {
    if (i < n_loads) qd::split_cp_async16(ring_q + 512u * static_cast<unsigned>(slot), qp + static_cast<std::size_t>(i) * 32, 16u);
    qd::cp_async_commit();
  };
  qd::pdl_launch_dependents();
  if (active) qd::split_stage_tile_scales<false>(a, tile, c0, sp, nullptr, lane);  // the oldest group
  qd::cp_async_commit();
#pragma unroll
  for (int i = 0; i < R - 1; ++i) issue(i, i);
  qd::pdl_wait();
  {
    // x [TOK][BCOLS] from column 4096 half, 16-byte vectors, thread-strided, in XR rounds (a round's loads in flight
    // before its stores); zeros past M and past the columns.
    constexpr int vec_per_row = BCOLS / 8, n_vec = TOK * vec_per_row, per_thread = n_vec / (32 * W), per_round = per_thread / XR;
    static_assert(n_vec % (32 * W) == 0 && per_thread % XR == 0);
    const int b0 = half * BCOLS;
#pragma unroll
    for (int r = 0; r < XR; ++r)  // round r: token rows r 16 / XR onwards
      probe_m16::stage_x_loads<per_round>(a, x, xs, xstride, b0, vec_per_row, r * (TOK / XR), TOK / XR, tid, 32 * W);
  }
  qd::cp_async_wait<R - 1>();  // this thread's scale copies
  __syncthreads();
  float acc[NT][4];
  const unsigned xs_lane = qd::split_xs_lane<NT>(qd::split_smem_u32(xs), xstride, lane) + static_cast<unsigned>(kh * QCOLS * 2);
  const float unscale = static_cast<float>(1 << (Bits - 1));
  probe_m16::stream_w4<R>(a, n_loads, slen, ring_q, xs_lane, sp, g, t, acc, issue, [](int) {});
  qd::cp_async_wait<0>();
  // Every warp's sums in shared memory, fragment order: acc[n][k] at 4 n + k of the lane's 8.
  float* red = reinterpret_cast<float*>(sb + sm.red);  // [W][32][8]
  *reinterpret_cast<float4*>(red + (warp * 32 + lane) * 8) = make_float4(acc[0][0], acc[0][1], acc[0][2], acc[0][3]);
  *reinterpret_cast<float4*>(red + (warp * 32 + lane) * 8 + 4) = make_float4(acc[1][0], acc[1][1], acc[1][2], acc[1][3]);
  if constexpr (TM == 1) {
    return;
  } else if constexpr (TM == 0) {
    __syncthreads();
    if (kh == 1) return;
    // Warps 0-7: their quarter and the block's other quarter (warp + 8) added, then the workspace's 2 slices.
    const float* other = red + ((warp + TILES) * 32 + lane) * 8;
    float sum[NT][4];
#pragma unroll
    for (int n = 0; n < NT; ++n)
#pragma unroll
      for (int k = 0; k < 4; ++k) sum[n][k] = acc[n][k] + other[4 * n + k];
    qd::split_finish<NT>(af, sum, tile, g, t, lane, active, half, unscale, y);
  } else {
    cluster_barrier();
    // Block y adds row tiles 4y .. 4y + 3 of the band: 128 threads a tile, two consecutive floats of its 256 each
    // (lane e / 8, 4 n + k = e % 8), over quarters 0-3 in order: warps tl and tl + 8 of block 0, then of block 1.
    const unsigned cy = cluster_ctaid_y();
    const int ot = static_cast<int>(cy) * 4 + (tid >> 7), e = (tid & 127) * 2;
    float2 s = make_float2(0.0f, 0.0f);
#pragma unroll
    for (unsigned qq = 0; qq < 4; ++qq) {
      const int w = ot + TILES * static_cast<int>(qq & 1u);
      const float2 v = ld_dsmem_f2(qd::split_smem_u32(red + w * 256 + e), qq >> 1);
      s.x += v.x;
      s.y += v.y;
    }
    probe_m16::store_fragment_pair(a, y, band * TILES + ot, e, s, unscale);
    cluster_barrier();  // no block leaves while the other reads its sums
  }
}

template <int TM, int XR>
struct pair_variant {
  static std::string name() {
    return std::string("pair (2 quarters a block, 128 blocks) x in ") + std::to_string(XR) + (XR == 1 ? " round" : " rounds") +
           (TM == 2 ? ", cluster-2 DSMEM tail" : TM == 1 ? ", no tail (timing only)" : ", workspace tail (2 slices)");
  }
  static constexpr auto kernel = pair_kernel<TM, XR>;
  static cudaLaunchConfig_t config_of(const qd::split_args& a, int bands, int bytes, cudaStream_t stream, bool pdl,
                                      cudaLaunchAttribute (&attrs)[2]) {
    (void)a;
    return probe_m16::launch_config(dim3(static_cast<unsigned>(bands), 2u), 32 * W, bytes, stream, pdl, dim3(1u, TM == 2 ? 2u : 1u), attrs);
  }
};

}  // namespace

template <class V>
void run_variant(probe_m16::split_probe& p, cudaStream_t stream) {
  const std::vector<qc::device_split>& w = p.w;
  if (w[0].l.cols_pad != 4 * QCOLS) {  // the grid's 2 blocks a band and the shared memory hold exactly 4 quarters
    std::printf("%s: %lld padded columns, not %d; skipped\n", V::name().c_str(), static_cast<long long>(w[0].l.cols_pad), 4 * QCOLS);
    return;
  }
  const int bands = static_cast<int>((w[0].l.rows_pad / 16 + TILES - 1) / TILES);
  std::vector<qd::split_args> as, afs;
  for (const qc::device_split& m : w) {
    qd::split_args a = qd::split_make_args(m, QCOLS, 4), af = qd::split_make_args(m, BCOLS, 2);
    a.m = af.m = 16;
    as.push_back(a);
    afs.push_back(af);
  }
  int device = 0, per_sm = 0, per_block = 0;
  QMR_CUDA_CHECK(cudaGetDevice(&device));
  QMR_CUDA_CHECK(cudaDeviceGetAttribute(&per_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, device));
  QMR_CUDA_CHECK(cudaDeviceGetAttribute(&per_block, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  const int smem = std::max(pair_smem::of(as[0].slice_groups).bytes, per_sm / 2 + 1024);
  if (smem > per_block) {
    std::printf("%s: %d B of shared memory, over the %d a block allows; skipped\n", V::name().c_str(), smem, per_block);
    return;
  }
  QMR_CUDA_CHECK(cudaFuncSetAttribute(V::kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  int blocks_per_sm = 0, clusters = 0;
  QMR_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks_per_sm, V::kernel, 32 * W, static_cast<std::size_t>(smem)));
  {
    cudaLaunchAttribute attrs[2]{};
    cudaLaunchConfig_t config = V::config_of(as[0], bands, smem, nullptr, false, attrs);
    if (config.numAttrs > 0) QMR_CUDA_CHECK(cudaOccupancyMaxActiveClusters(&clusters, V::kernel, &config));
  }
  char note[96];
  std::snprintf(note, sizeof note, "smem %6d B, %d a SM, %d clusters resident (grid %d blocks)", smem, blocks_per_sm, clusters, 2 * bands);
  probe_m16::check_and_time(
      V::name(), 64, note,
      [&](int i, bool pdl) {
        cudaLaunchAttribute attrs[2]{};
        const cudaLaunchConfig_t config = V::config_of(as[static_cast<std::size_t>(i)], bands, smem, stream, pdl, attrs);
        QMR_CUDA_CHECK(cudaLaunchKernelEx(&config, V::kernel, as[static_cast<std::size_t>(i)], afs[static_cast<std::size_t>(i)],
                                          p.io.x.as<const __half>(), p.io.y.as<f16>()));
      },
      static_cast<int>(w.size()), p.ref, p.io, stream, p.base);
}

int main(int argc, char** argv) {
  return probe_m16::probe_main(argc, argv, "pair", [](probe_m16::split_probe& p, cudaStream_t stream) {
    run_variant<pair_variant<2, 2>>(p, stream);
    run_variant<pair_variant<2, 1>>(p, stream);
    run_variant<pair_variant<0, 2>>(p, stream);
    run_variant<pair_variant<0, 1>>(p, stream);
    run_variant<pair_variant<1, 2>>(p, stream);
    run_variant<pair_variant<2, 2>>(p, stream);
  });
}
