// Stop 55's probe for issue 7's 16-token bar (W4 on 8192 x 8192 at least 3x cuBLAS f16 in a CUDA graph with PDL):
// how x reaches shared memory in stop 54's "wide" configuration of the split kernel (one block of 16 warps an SM,
// 4 slices of 2048 columns, a ring of 4 loads a warp; split_wide in gemv_split.cuh), and what its slice sums cost.
//
// Why: in the wide configuration every block stages 16 x 2048 f16 of x (64 KB) after griddepcontrol.wait, and no warp
// starts its loop until all of it has arrived; 128 blocks read 8.4 MB from L2 at once. Stop 54 staged it by plain
// loads (17.1-17.3 us against HEAD's 18.8-19.0). The modes here (XM):
//   0  plain 16-byte loads through registers (stop 54's configuration, the baseline);
//   1  one cp.async.bulk a token row (4 KB) issued by one thread, completing on an mbarrier;
//   2  as 1 in two column halves on two mbarriers: a warp starts on the first half and waits for the second at its
//      load 16 of 32;
//   3  as 1 in thread-block clusters of 2 bands: each block copies half the token rows, multicast to both
//      (half the L2 reads of x);
//   4  as 3 in two column halves;
//   5  timing only (wrong outputs): plain loads of half the token rows (the L2 reads of 3 without clusters).
// The tails (TM): 0 the library's (split_finish: workspace, counter, the last warp of a tile adds its slices); 1 timing
// only: every warp stores its partial sums to the workspace and leaves (no counter, no adding): what the tail costs;
// 2 the band's 4 slices as a cluster of 4 blocks along y, the sums added through DSMEM (no workspace, counter or fence).
//
// Build (sm_90):
//   nvcc -std=c++20 --expt-relaxed-constexpr -O3 -gencode=arch=compute_90,code=sm_90 -Xptxas -v
//        -DQMR_HAVE_CUBLAS -I include -I bench bench/proto/wide_s55.cu -lcublas -o wide
// Run: bash bench/proto/s55a_device.sh (wide [FORMAT (w4g128s)]).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "probe_m16.cuh"
#include "ptx_sm90.cuh"

using namespace probe_m16;  // qc, qd, gpu, f16, calls, dim, NT
using namespace ptx90;      // mbarriers, bulk copies, clusters, DSMEM

namespace {

constexpr int R = 4;   // loads a warp's ring (stop 54: 4 fastest of 3-18)

// Shared memory, bytes: x f16 [16][slice_cols + 8], the ring uint4 [W][R][32], the scale pairs u32 [W][slice_groups][8],
// two mbarriers (u64), the partial sums f32 [W][32 lanes][8] (TM 2).
template <int W>  // warps a block: W row tiles, a band of 16 W rows
struct wide_smem {
  int ring = 0, scale = 0, bars = 0, red = 0, bytes = 0;
  static constexpr wide_smem of(int slice_cols, int slice_groups) {
    wide_smem m;
    m.ring = 16 * qd::split_x_stride(slice_cols) * 2;
    m.scale = m.ring + W * R * 512;
    m.bars = m.scale + W * slice_groups * 32;
    m.red = m.bars + 16;
    m.bytes = m.red + W * 32 * 8 * 4;
    return m;
  }
};


template <int XM, int TM, int W = 16>
__global__ void __launch_bounds__(32 * W, 1) wide_kernel(const qd::split_args a, const __half* __restrict__ x, f16* __restrict__ y) {
  constexpr int Bits = 4, LC = qc::split_load_cols(Bits), TOK = 16;
  constexpr bool bulk = XM >= 1 && XM <= 4, halves = XM == 2 || XM == 4, cluster = XM == 3 || XM == 4;
  constexpr unsigned cx = cluster ? 2u : 1u;  // cluster blocks along the bands (x multicast)
  extern __shared__ uint4 wide_smem_raw[];
  const int tid = static_cast<int>(threadIdx.x), lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
  const int band = static_cast<int>(blockIdx.x), slice = static_cast<int>(blockIdx.y);
  const int tile = band * W + warp;
  const bool active = tile < a.rows_pad / 16;
  const int c0 = slice * a.slice_cols;
  const int slen = min(a.slice_cols, a.loads * LC - c0);
  const int n_loads = active ? slen / LC : 0;
  const int l0 = c0 / LC;
  const int xstride = qd::split_x_stride(a.slice_cols);
  const wide_smem<W> sm = wide_smem<W>::of(a.slice_cols, a.slice_groups);
  unsigned char* sb = reinterpret_cast<unsigned char*>(wide_smem_raw);
  __half* xs = reinterpret_cast<__half*>(sb);  // [TOK][xstride]
  const unsigned ring_q = qd::split_smem_u32(sb + sm.ring) + static_cast<unsigned>(warp * R * 512 + lane * 16);
  auto* sp = reinterpret_cast<std::uint32_t*>(sb + sm.scale) + warp * a.slice_groups * 8;
  const unsigned bar0 = qd::split_smem_u32(sb + sm.bars);  // bar0, bar0 + 8: x's halves (bulk modes; bar0 alone unless halves)

  const uint4* qp = a.q + (static_cast<std::size_t>(active ? tile : 0) * a.loads + l0) * 32 + lane;
  const auto issue = [&](int i, int slot) {
    if (i < n_loads) qd::split_cp_async16(ring_q + 512u * static_cast<unsigned>(slot), qp + static_cast<std::size_t>(i) * 32, 16u);
    qd::cp_async_commit();
  };
  qd::pdl_launch_dependents();
  if constexpr (bulk) {
    if (tid == 0) {
      mbar_init(bar0, 1);
      mbar_init(bar0 + 8u, 1);
      asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    // Rows of x past the tokens as zeros (plain stores, shown to the loop by the barrier below).
    for (int e = tid; e < (TOK - a.m) * (a.slice_cols / 8); e += 32 * W)
      *reinterpret_cast<uint4*>(xs + (a.m + e / (a.slice_cols / 8)) * xstride + 8 * (e % (a.slice_cols / 8))) = make_uint4(0u, 0u, 0u, 0u);
    if constexpr (cluster) asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;" ::: "memory");
    else __syncthreads();
  }
  // The scales as the oldest cp.async group: the first load's wait covers them.
  if (active) qd::split_stage_tile_scales<false>(a, tile, c0, sp, nullptr, lane);
  qd::cp_async_commit();
#pragma unroll
  for (int i = 0; i < R - 1; ++i) issue(i, i);  // the ring before the wait (no kernel writes the weights)
  qd::pdl_wait();
  const int vec_per_row = a.slice_cols / 8;
  if constexpr (bulk) {
    if (tid == 0) {
      // Every block expects all 16 rows' bytes on each barrier; in a cluster, rank r copies the rows n = r (mod 2) to both.
      const unsigned parts = halves ? 2u : 1u, part_bytes = static_cast<unsigned>(slen) * 2u / parts;
      const unsigned rank = cluster ? cluster_ctaid_x() : 0u, step = cluster ? 2u : 1u;
      const unsigned short mask = static_cast<unsigned short>(3u << (2u * (TM == 2 ? cluster_ctaid_y() : 0u)));
      for (unsigned p = 0; p < parts; ++p) {
        const unsigned bar = bar0 + 8u * p;
        mbar_expect_tx(bar, static_cast<unsigned>(a.m) * part_bytes);
        for (unsigned n = rank; n < static_cast<unsigned>(a.m); n += step) {
          const __half* src = x + static_cast<std::size_t>(n) * a.cols + c0 + p * (part_bytes / 2u);
          const unsigned dst = qd::split_smem_u32(xs + n * xstride + p * (part_bytes / 2u));
          if constexpr (cluster) bulk_g2s_multicast(dst, src, part_bytes, bar, mask);
          else bulk_g2s(dst, src, part_bytes, bar);
        }
      }
    }
    qd::cp_async_wait<R - 1>();  // this thread's scale copies
    __syncthreads();
    mbar_wait(bar0, 0u);
  } else {
    // x [TOK][slice_cols] as 16-byte vectors, thread-strided, all of a thread's loads in flight before its stores
    // (XM 5: rows 0-7 only, timing).
    constexpr int rows = XM == 5 ? TOK / 2 : TOK;
    constexpr int XPT = (rows * 2048 / 8 + 32 * W - 1) / (32 * W);  // vectors a thread at most (slices of <= 2048 columns)
    probe_m16::stage_x_loads<XPT>(a, x, xs, xstride, c0, vec_per_row, 0, rows, tid, 32 * W);
    qd::cp_async_wait<R - 1>();  // this thread's scale copies (the oldest group); the barrier below shows them to the warp
    __syncthreads();
  }
  if constexpr (cluster) asm volatile("barrier.cluster.arrive.relaxed.aligned;" ::: "memory");  // x arrived here; the peer may leave
  float acc[NT][4];
  const unsigned xs_lane = qd::split_xs_lane<NT>(qd::split_smem_u32(xs), xstride, lane);
  const float unscale = static_cast<float>(1 << (Bits - 1));
  const int half_load = halves ? n_loads / 2 : n_loads;
  probe_m16::stream_w4<R>(a, n_loads, slen, ring_q, xs_lane, sp, g, t, acc, issue, [&](int i) {
    if constexpr (halves)
      if (i == half_load) mbar_wait(bar0 + 8u, 0u);  // the second half of x
  });
  if constexpr (halves)
    if (n_loads == 0) mbar_wait(bar0 + 8u, 0u);  // inactive warps: the barrier's phase completes before the block leaves
  qd::cp_async_wait<0>();
  if constexpr (cluster) asm volatile("barrier.cluster.wait.acquire.aligned;" ::: "memory");  // both blocks' x copies are done
  if constexpr (TM == 0) {
    qd::split_finish<NT>(a, acc, tile, g, t, lane, active, slice, unscale, y);
  } else if constexpr (TM == 1) {
    if (!active) return;
    probe_m16::store_slice_sums(a, acc, tile, slice, g, t);
  } else {
    // The band's 4 slices are the cluster's 4 blocks along y (ranks x + cx y): each block leaves its warps' sums in its
    // shared memory in mma fragment order, and block y adds the 4 slices of warps y, y + 4, y + 8, y + 12 (a quarter
    // of the band's tiles) through DSMEM. No workspace, counter or fence.
    float* red = reinterpret_cast<float*>(sb + sm.red) + (warp * 32 + lane) * 8;  // [W][32][8]: acc[n][k] at 4 n + k
    *reinterpret_cast<float4*>(red) = make_float4(acc[0][0], acc[0][1], acc[0][2], acc[0][3]);
    *reinterpret_cast<float4*>(red + 4) = make_float4(acc[1][0], acc[1][1], acc[1][2], acc[1][3]);
    cluster_barrier();
    const unsigned cy = cluster_ctaid_y(), cxi = cluster ? cluster_ctaid_x() : 0u;
    // Block y adds for warps (row tiles) y, y + 4, ...: 128 threads a tile, two consecutive floats of its 256 each
    // (lane e / 8, 4 n + k = e % 8).
    for (int q = tid; q < (W + 3) / 4 * 128; q += 32 * W) {
      const int w = (q >> 7) * 4 + static_cast<int>(cy), e = (q & 127) * 2;
      if (w >= W) continue;
      const unsigned addr = qd::split_smem_u32(sb + sm.red) + static_cast<unsigned>((w * 256 + e) * 4);
      float2 sum = make_float2(0.0f, 0.0f);
#pragma unroll
      for (unsigned j = 0; j < 4; ++j) {
        const float2 v = ld_dsmem_f2(addr, cxi + cx * j);
        sum.x += v.x;
        sum.y += v.y;
      }
      probe_m16::store_fragment_pair(a, y, band * W + w, e, sum, unscale);
    }
    cluster_barrier();  // no block leaves while another reads its sums
  }
}

template <int XM, int TM, int W_ = 16>
struct wide_variant {
  static constexpr int W = W_;
  static std::string name() {
    static const char* const modes[] = {"x loads", "x bulk", "x bulk halves", "x multicast c2", "x multicast c2 halves", "x half rows (timing)"};
    static const char* const tails[] = {"", ", no tail (timing)", ", cluster-4 DSMEM tail"};
    return std::string("wide W") + std::to_string(W) + " S4 " + modes[XM] + tails[TM];
  }
  static constexpr unsigned cx = XM == 3 || XM == 4 ? 2u : 1u, cy = TM == 2 ? 4u : 1u;
  static constexpr bool cluster = cx * cy > 1;
  static int smem(const qd::split_args& a) { return wide_smem<W>::of(a.slice_cols, a.slice_groups).bytes; }
  static void prepare(int bytes) {
    QMR_CUDA_CHECK(cudaFuncSetAttribute(wide_kernel<XM, TM, W>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  }
  static cudaLaunchConfig_t config_of(const qd::split_args& a, int bands, int bytes, cudaStream_t stream, bool pdl, cudaLaunchAttribute (&attrs)[2]) {
    return probe_m16::launch_config(dim3(static_cast<unsigned>(bands), static_cast<unsigned>(a.slices)), 32 * W, bytes, stream, pdl, dim3(cx, cy), attrs);
  }
  static void launch(const qd::split_args& a, int bands, int bytes, const f16* x, f16* y, cudaStream_t stream, bool pdl) {
    cudaLaunchAttribute attrs[2]{};
    const cudaLaunchConfig_t config = config_of(a, bands, bytes, stream, pdl, attrs);
    QMR_CUDA_CHECK(cudaLaunchKernelEx(&config, wide_kernel<XM, TM, W>, a, reinterpret_cast<const __half*>(x), y));
  }
  // Clusters that can be resident at once (the grid needs bands * slices / (cx cy) for one wave).
  static int max_clusters(const qd::split_args& a, int bands, int bytes) {
    cudaLaunchAttribute attrs[2]{};
    const cudaLaunchConfig_t config = config_of(a, bands, bytes, nullptr, false, attrs);
    int clusters = 0;
    QMR_CUDA_CHECK(cudaOccupancyMaxActiveClusters(&clusters, wide_kernel<XM, TM, W>, &config));
    return clusters;
  }
};

}  // namespace

template <class V>
struct kernel_of;
template <int XM, int TM, int W>
struct kernel_of<wide_variant<XM, TM, W>> {
  static constexpr auto kernel = wide_kernel<XM, TM, W>;
};
template <class V>
constexpr auto wide_kernel_of() {
  return kernel_of<V>::kernel;
}

template <class V>
void run_variant(probe_m16::split_probe& p, cudaStream_t stream) {
  const std::vector<qc::device_split>& w = p.w;
  constexpr int slices = 4;
  const int slice_cols = static_cast<int>(dim) / slices;
  const int bands = static_cast<int>((w[0].l.rows_pad / 16 + V::W - 1) / V::W);
  std::vector<qd::split_args> as;
  for (const qc::device_split& m : w) {
    qd::split_args a = qd::split_make_args(m, slice_cols, slices);
    a.m = 16;
    as.push_back(a);
  }
  // Shared memory over half an SM's (as split_wide pads it), so that whatever the registers no SM holds two blocks of
  // this one-wave grid (call a left the 56-62-register variants unpadded, two an SM, at 27-29 us).
  int device = 0, per_sm = 0;
  QMR_CUDA_CHECK(cudaGetDevice(&device));
  QMR_CUDA_CHECK(cudaDeviceGetAttribute(&per_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, device));
  const int smem = std::max(V::smem(as[0]), per_sm / 2 + 1024);
  V::prepare(smem);
  int blocks_per_sm = 0;
  QMR_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks_per_sm, wide_kernel_of<V>(), 32 * V::W, static_cast<std::size_t>(smem)));
  char note[96];
  if (V::cluster)
    std::snprintf(note, sizeof note, "smem %6d B, %d a SM, %d of %d clusters resident", smem, blocks_per_sm, V::max_clusters(as[0], bands, smem),
                  bands * slices / static_cast<int>(V::cx * V::cy));
  else
    std::snprintf(note, sizeof note, "smem %6d B, %d a SM", smem, blocks_per_sm);
  probe_m16::check_and_time(
      V::name(), 52, note,
      [&](int i, bool pdl) { V::launch(as[static_cast<std::size_t>(i)], bands, smem, p.io.x.as<const f16>(), p.io.y.as<f16>(), stream, pdl); },
      static_cast<int>(w.size()), p.ref, p.io, stream, p.base);
}

int main(int argc, char** argv) {
  return probe_m16::probe_main(argc, argv, "wide", [](probe_m16::split_probe& p, cudaStream_t stream) {
    // Call a: variants 0-5 with the 56-62-register ones two an SM (unpadded); the tail worth 2.1-2.4 us. Call b: padded;
    // bulk copies and multicast slower than plain loads; the cluster-4 tail in two waves (30 of 32 clusters resident).
    // Call c: 18-warp blocks, 29 bands (116 blocks, 29 clusters of 4): the cluster tail in one wave.
    run_variant<wide_variant<0, 0>>(p, stream);
    run_variant<wide_variant<0, 0, 18>>(p, stream);
    run_variant<wide_variant<0, 2, 18>>(p, stream);
    run_variant<wide_variant<0, 1, 18>>(p, stream);
    run_variant<wide_variant<0, 2, 20>>(p, stream);
    run_variant<wide_variant<0, 0, 20>>(p, stream);
    run_variant<wide_variant<0, 0>>(p, stream);
  });
}
