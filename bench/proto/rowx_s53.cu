// Stop 53's probe for issue 7's 16-token bar: a row-owning tensor-core GEMV with x read
// straight from L2 (through L1) as mma fragments, never staged in shared memory.
//
// Why: stop 51 found the split kernel loses ~7 us a call at the call boundary (the slice
// sums' tail, the release, the next call's x staging), and stop 52 found row streaming's
// copies slow because x filled half of each stage. Here a block owns TPB row tiles (16 rows
// each) over all columns, cut into KP column parts, one warp per (tile, part), summed in
// shared memory at the end: no workspace, no counter, no GPU-scope fence. Shared memory
// holds each lane's cp.async ring of weight loads (and, x-ring, x). x comes one of two ways,
// both through L1 (the block's TPB warps of a part read the same lines): x-regs, coherent
// 16-byte loads (ld.global.ca) into registers D loads ahead; x-ring, cp.async.ca into the
// load's ring slot beside its codes. To make a lane's B
// fragments contiguous in x, the repack permutes columns: lane t of a load of LC columns
// holds columns 4 KT t .. 4 KT t + 4 KT - 1 (KT k-steps), so its fragments of one token row
// are KT / 2 16-byte vectors (the A fragments are permuted to match). Groups must be at
// least a load wide (64 columns at 4 bits), since a k-step then mixes 4 KT-column blocks.
//
// Timing and correctness of a prototype only (16 tokens, symmetric, cols % LC == 0): the
// output is checked against qmr::cuda::gemv_split's on the same matrix, and every variant is
// timed as a CUDA graph of 20 calls with PDL through >= 1 GB of copies, beside HEAD's split
// kernel, cuBLAS f16 and the read ceiling, in the same run.
// Build (sm_90):
//   nvcc -std=c++20 --expt-relaxed-constexpr -O3 -gencode=arch=compute_90,code=sm_90 -Xptxas -v
//        -DQMR_HAVE_CUBLAS -I include -I bench bench/proto/rowx_s53.cu -lcublas -o rowx
// Run: rowx [FORMAT (w4g128s)]. Every launch's shared memory is padded so that its one-wave
// grid has no spare occupancy (see launch). Results (calls a-c on an H100, a and b with earlier
// variant lists): bench/results/cuda_gemv_rowx_h100_20261207_s53.md. Best 19.9-20.4 us
// against HEAD's split kernel's 18.8-19.0 in the same runs: not landed.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "probe_m16.cuh"

using namespace probe_m16;  // qc, qd, gpu, f16, calls, dim, NT

namespace {

struct rowx_args {
  const uint4* q;          // [row_tiles][loads][32]
  const uint4* scales;     // u32 pairs [row_tiles][n_groups][8], as uint4 [..][2]
  int rows, cols, loads, n_groups, group_shift, row_tiles;
  int part_loads;          // loads a part (the last may have fewer)
  int part_groups;         // staged groups a warp: at most part_loads * LC / group + 2
};

// The split layout's buffer (split_layout offsets), columns permuted as the header says:
// split_repack's buffer (its scale pairs are this kernel's), the codes placed again.
std::vector<std::uint32_t> rowx_repack(const qmr::quant::qtensor_view& w, const qc::split_layout& l) {
  const int bits = w.spec.bits, uc = qc::lanes_unit_cols(bits), kt = qc::split_ksteps(bits), lc = qc::split_load_cols(bits);
  std::vector<std::uint32_t> out = qd::split_repack(w, l);
  std::fill(out.begin(), out.begin() + l.scale_offset / 4, 0u);  // the codes and (3-bit) their high planes
  std::uint32_t* hi = out.data() + l.hi_offset / 4;
  for (std::int64_t tile = 0; tile < l.row_tiles; ++tile)
    for (std::int64_t ld = 0; ld < l.loads; ++ld)
      for (int lane = 0; lane < 32; ++lane) {
        const std::int64_t v = (tile * l.loads + ld) * 32 + lane;
        const int g = lane >> 2, t = lane & 3;
        for (int c = 0; c < uc; ++c) {
          const int p = c / 2, h = c % 2, s = p / 4, f = p % 4;
          const std::int64_t row = tile * 16 + g + 8 * (f & 1);
          const std::int64_t col = ld * lc + 4 * kt * t + 4 * s + 2 * (f >> 1) + h;  // mma k = 2t + 8 (f >> 1) + h of step s
          if (row >= l.rows || col >= l.cols) continue;
          qd::lanes_place(out.data() + v * 4, hi + v * 2, c, qmr::quant::get_code(w.codes + row * w.layout.code_row_bytes, col, bits), bits);
        }
      }
  return out;
}

// Block: TPB tiles x KP parts, warp w = (part w / TPB, tile w % TPB). Shared memory: the
// ring uint4 [warps][R][32] (x-ring: [warps][R][1 + NT XV][32], a slot's codes then its x
// fragments), the scale pairs u32 [warps][part_groups][8], the parts' sums f32 [KP - 1][TPB][32][NT * 4].
template <int Bits, int TPB, int KP, int R, bool XS, int D = 2>
__global__ void __launch_bounds__(32 * TPB * KP, 2) rowx_kernel(const rowx_args a, const __half* x, __half* y) {
  constexpr int KT = qc::split_ksteps(Bits), LC = qc::split_load_cols(Bits), XV = KT / 2, W = TPB * KP;
  extern __shared__ uint4 rowx_smem[];
  const int tid = static_cast<int>(threadIdx.x), lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
  const int tw = warp % TPB, kp = warp / TPB;
  const int tile = static_cast<int>(blockIdx.x) * TPB + tw;
  const bool active = tile < a.row_tiles;
  const int l0 = kp * a.part_loads;
  const int n_loads = active ? max(0, min(a.part_loads, a.loads - l0)) : 0;
  unsigned char* sb = reinterpret_cast<unsigned char*>(rowx_smem);
  constexpr int SLOT = XS ? 512 * (1 + NT * XV) : 512;  // a ring slot: the load's codes (and x's fragments, uint4 [NT XV][32])
  const unsigned ring = qd::split_smem_u32(sb) + static_cast<unsigned>(warp * R * SLOT + lane * 16);
  auto* sp = reinterpret_cast<std::uint32_t*>(sb + W * R * SLOT) + warp * a.part_groups * 8;
  float* red = reinterpret_cast<float*>(sb + W * R * SLOT + W * a.part_groups * 32);
  const int gs = min(a.group_shift, 30);
  const int j0 = (l0 * LC) >> gs;

  const uint4* qp = a.q + (static_cast<std::size_t>(active ? tile : 0) * a.loads + l0) * 32 + lane;
  // x: lane (g, t) reads token rows g and 8 + g, columns L LC + 4 KT t .. + 4 KT - 1 of load L.
  const __half* xrow0 = x + static_cast<std::size_t>(g) * a.cols + 4 * KT * t;
  const __half* xrow1 = xrow0 + static_cast<std::size_t>(8) * a.cols;
  const auto copy_x = [&](int i, int slot) {  // XS: load i's x fragments into its slot, through L1 (.ca)
    if (i >= n_loads) return;
    const unsigned d = ring + static_cast<unsigned>(slot * SLOT + 512);
    const uint4* s0 = reinterpret_cast<const uint4*>(xrow0 + static_cast<std::size_t>(l0 + i) * LC);
    const uint4* s1 = reinterpret_cast<const uint4*>(xrow1 + static_cast<std::size_t>(l0 + i) * LC);
#pragma unroll
    for (int v = 0; v < XV; ++v) {
      asm volatile("cp.async.ca.shared.global [%0], [%1], 16;" ::"r"(d + 512u * v), "l"(s0 + v) : "memory");
      asm volatile("cp.async.ca.shared.global [%0], [%1], 16;" ::"r"(d + 512u * (XV + v)), "l"(s1 + v) : "memory");
    }
  };
  const auto issue = [&](int i, int slot) {
    if (i < n_loads) qd::split_cp_async16(ring + static_cast<unsigned>(SLOT * slot), qp + static_cast<std::size_t>(i) * 32, 16u);
    if constexpr (XS) copy_x(i, slot);
    qd::cp_async_commit();
  };
  qd::pdl_launch_dependents();
  if (n_loads > 0) {  // the part's scale pairs, committed with load 0
    const int j1 = ((l0 + n_loads) * LC - 1) >> gs;
    const uint4* src = a.scales + (static_cast<std::size_t>(tile) * a.n_groups + j0) * 2;
    const unsigned sd = qd::split_smem_u32(sp);
    for (int v = lane; v < 2 * (j1 - j0 + 1); v += 32) qd::split_cp_async16(sd + 16u * static_cast<unsigned>(v), src + v, 16u);
  }
#pragma unroll
  for (int i = 0; i < R - 1; ++i) {  // codes only: x may still be being written
    if (i < n_loads) qd::split_cp_async16(ring + static_cast<unsigned>(SLOT * i), qp + static_cast<std::size_t>(i) * 32, 16u);
    qd::cp_async_commit();
  }
  qd::pdl_wait();
  if constexpr (XS) {  // x of the first R - 1 loads, then all of it landed (later loads' groups carry their own x)
#pragma unroll
    for (int i = 0; i < R - 1; ++i) copy_x(i, i);
    qd::cp_async_commit();
    qd::cp_async_wait<0>();
  } else {
    qd::cp_async_wait<R - 2>();  // group 0: the scale pairs (and load 0)
  }
  // The scale pairs were copied by other lanes than read them: every lane's copies landed first.
  // (Calls a-c ran without this barrier; their outputs matched HEAD's all the same.)
  __syncwarp();
  const auto load_x = [&](int L, uint4 (&d)[NT][XV]) {  // x-regs: load L's fragments by coherent loads
#pragma unroll
    for (int v = 0; v < XV; ++v) {
      d[0][v] = qd::ld_produced(reinterpret_cast<const uint4*>(xrow0 + static_cast<std::size_t>(L) * LC) + v);
      d[1][v] = qd::ld_produced(reinterpret_cast<const uint4*>(xrow1 + static_cast<std::size_t>(L) * LC) + v);
    }
  };
  float acc[NT][4], part[NT][4];
#pragma unroll
  for (int n = 0; n < NT; ++n)
#pragma unroll
    for (int k = 0; k < 4; ++k) acc[n][k] = part[n][k] = 0.0f;
  const std::uint32_t hw[2] = {0u, 0u};
  // Load i: its codes from ring slot i % R (x-ring: its x too, into xc), mma with xc's fragments.
  const auto step = [&](int i, int slot, uint4 (&xc)[NT][XV]) {
    issue(i + R - 1, slot == 0 ? R - 1 : slot - 1);
    qd::cp_async_wait<R - 1>();
    std::uint32_t q[4];
    const unsigned sa = ring + static_cast<unsigned>(SLOT * slot);
    asm volatile("ld.shared.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(q[0]), "=r"(q[1]), "=r"(q[2]), "=r"(q[3]) : "r"(sa) : "memory");
    if constexpr (XS) {
#pragma unroll
      for (int n = 0; n < NT; ++n)
#pragma unroll
        for (int v = 0; v < XV; ++v)
          asm volatile("ld.shared.v4.u32 {%0,%1,%2,%3}, [%4];"
                       : "=r"(xc[n][v].x), "=r"(xc[n][v].y), "=r"(xc[n][v].z), "=r"(xc[n][v].w)
                       : "r"(sa + 512u * static_cast<unsigned>(1 + n * XV + v)) : "memory");
    }
#pragma unroll
    for (int s = 0; s < KT; ++s) {
      std::uint32_t af[4];
#pragma unroll
      for (int f = 0; f < 4; ++f) af[f] = qd::lanes_decode<Bits>(q, hw, 4 * s + f);
#pragma unroll
      for (int n = 0; n < NT; ++n) {
        const std::uint32_t* xw = reinterpret_cast<const std::uint32_t*>(&xc[n][0]);
        qd::split_mma(part[n], af, xw[2 * s], xw[2 * s + 1]);
      }
    }
    const int L = l0 + i;
    if ((((L + 1) * LC) & ((1 << gs) - 1)) == 0 || i + 1 == n_loads) {  // a group (or the part) ends: scale it in
      const float2 sc = qd::split_half2_float2(sp[8 * (((L * LC) >> gs) - j0) + g]);
#pragma unroll
      for (int n = 0; n < NT; ++n) {
        acc[n][0] = fmaf(sc.x, part[n][0], acc[n][0]);
        acc[n][1] = fmaf(sc.x, part[n][1], acc[n][1]);
        acc[n][2] = fmaf(sc.y, part[n][2], acc[n][2]);
        acc[n][3] = fmaf(sc.y, part[n][3], acc[n][3]);
#pragma unroll
        for (int k = 0; k < 4; ++k) part[n][k] = 0.0f;
      }
    }
  };
  if constexpr (XS) {
    uint4 xr[NT][XV];
    for (int i = 0, slot = 0; i < n_loads; ++i, slot = slot + 1 == R ? 0 : slot + 1) step(i, slot, xr);
  } else {  // x-regs: D buffers, load i's x loaded D loads ahead (after load i - D's mma freed its buffer)
    uint4 xb[D][NT][XV];
#pragma unroll
    for (int u = 0; u < D; ++u)
      if (u < n_loads) load_x(l0 + u, xb[u]);
    for (int i0 = 0; i0 < n_loads; i0 += D) {
#pragma unroll
      for (int u = 0; u < D; ++u) {
        const int i = i0 + u;
        if (i < n_loads) {
          step(i, i % R, xb[u]);
          if (i + D < n_loads) load_x(l0 + i + D, xb[u]);
        }
      }
    }
  }
  qd::cp_async_wait<0>();
  // The parts' sums: parts 1.. to shared memory, part 0 adds them in part order and stores.
  if (KP > 1) {
    if (kp > 0) {
      float* r = red + ((static_cast<std::size_t>(kp - 1) * TPB + tw) * 32 + lane) * (NT * 4);
#pragma unroll
      for (int n = 0; n < NT; ++n)
#pragma unroll
        for (int k = 0; k < 4; ++k) r[4 * n + k] = acc[n][k];
    }
    __syncthreads();
    if (kp > 0) return;
    for (int p = 1; p < KP; ++p) {
      const float* r = red + ((static_cast<std::size_t>(p - 1) * TPB + tw) * 32 + lane) * (NT * 4);
#pragma unroll
      for (int n = 0; n < NT; ++n)
#pragma unroll
        for (int k = 0; k < 4; ++k) acc[n][k] += r[4 * n + k];
    }
  }
  if (!active) return;
  const float unscale = static_cast<float>(1 << (Bits - 1));
#pragma unroll
  for (int n = 0; n < NT; ++n)
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const int row = 16 * tile + g + 8 * (k >> 1), tok = 8 * n + 2 * t + (k & 1);
      if (row < a.rows) y[static_cast<std::size_t>(tok) * a.rows + row] = __float2half_rn(acc[n][k] * unscale);
    }
}

struct rowx_matrix {
  qc::split_layout l;
  qc::device_buffer data;
};

template <int Bits, int TPB, int KP, int R, bool XS, int D = 2>
struct rowx_variant {
  static constexpr int slot = XS ? 512 * (1 + NT * qc::split_ksteps(Bits) / 2) : 512;
  static std::string name() {
    return std::string(XS ? "rowx x-ring" : "rowx x-regs") + " b" + std::to_string(Bits) + " tiles" + std::to_string(TPB) + " parts" + std::to_string(KP) + " ring" + std::to_string(R) + (XS ? std::string() : " xdist" + std::to_string(D));
  }
  static rowx_args args(const rowx_matrix& m, int group_shift) {
    rowx_args a{};
    a.q = m.data.as<const uint4>();
    a.scales = reinterpret_cast<const uint4*>(m.data.as<const unsigned char>() + m.l.scale_offset);
    a.rows = static_cast<int>(m.l.rows);
    a.cols = static_cast<int>(m.l.cols);
    a.loads = static_cast<int>(m.l.loads);
    a.n_groups = static_cast<int>(m.l.n_groups);
    a.group_shift = group_shift;
    a.row_tiles = static_cast<int>(m.l.row_tiles);
    a.part_loads = (a.loads + KP - 1) / KP;
    const int gs = std::min(group_shift, 30);
    a.part_groups = static_cast<int>(std::min<std::int64_t>(a.n_groups, (static_cast<std::int64_t>(a.part_loads) * qc::split_load_cols(Bits) >> gs) + 2));
    return a;
  }
  static int smem(const rowx_args& a) { return TPB * KP * (R * slot + a.part_groups * 32) + (KP - 1) * TPB * 32 * NT * 4 * 4; }
  static void launch(const rowx_args& a, const f16* x, f16* y, cudaStream_t stream, bool pdl) {
    const auto kernel = rowx_kernel<Bits, TPB, KP, R, XS, D>;
    // Shared memory padded so that an SM holds no more blocks than the grid gives it: 2 for 256 blocks, 1 for 128
    // (an H100 SXM's 132 SMs and 228 KiB an SM: 78 and 116 KiB; other cards need other numbers)
    // (spare occupancy, a third block an SM at 256 or a second at 128, was 1.5-1.8x slower in calls a and b).
    const int blocks = (a.row_tiles + TPB - 1) / TPB;
    const int bytes = std::max(smem(a), blocks > 132 ? 78 * 1024 : 116 * 1024);
    QMR_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
    qc::launch_kernel(pdl, kernel, dim3(static_cast<unsigned>((a.row_tiles + TPB - 1) / TPB)), dim3(32 * TPB * KP),
                      static_cast<std::size_t>(bytes), stream, a, reinterpret_cast<const __half*>(x), reinterpret_cast<__half*>(y));
  }
};

}  // namespace

template <class V>
void run_variant(const qmr::quant::qtensor& qt, int group_shift, const probe_m16::reference& ref, gpu::gemv_operands& io,
                 cudaStream_t stream, const probe_m16::baselines& base) {
  std::vector<rowx_matrix> w;
  rowx_matrix m0;
  m0.l = qc::split_layout::of(qt.spec().bits, dim, dim, qt.layout().n_groups, false, 132);
  const std::vector<std::uint32_t> packed = rowx_repack(qt.view(), m0.l);
  m0.data = qc::device_buffer(static_cast<std::size_t>(m0.l.bytes));
  QMR_CUDA_CHECK(cudaMemcpy(m0.data.data(), packed.data(), m0.data.size(), cudaMemcpyHostToDevice));
  const int copies = gpu::copies_for(static_cast<double>(m0.l.bytes), 1e9);
  w.push_back(std::move(m0));
  for (int i = 1; i < copies; ++i) {
    rowx_matrix m;
    m.l = w[0].l;
    m.data = qc::device_buffer(w[0].data.size());
    QMR_CUDA_CHECK(cudaMemcpyAsync(m.data.data(), w[0].data.data(), w[0].data.size(), cudaMemcpyDeviceToDevice, stream));
    w.push_back(std::move(m));
  }
  // Correctness (poisoned output, one call, against the split kernel's output), then the graph.
  std::vector<rowx_args> as;
  for (const rowx_matrix& m : w) as.push_back(V::args(m, group_shift));
  char note[64];
  std::snprintf(note, sizeof note, "smem %6d B (launched with >= 78/116 KB)", V::smem(as[0]));
  probe_m16::check_and_time(
      V::name(), 44, note, [&](int i, bool pdl) { V::launch(as[static_cast<std::size_t>(i)], io.x.as<const f16>(), io.y.as<f16>(), stream, pdl); },
      copies, ref, io, stream, base);
}

int main(int argc, char** argv) {
  const std::string fmt = argc > 1 ? argv[1] : "w4g128s";
  cudaStream_t stream = nullptr;
  QMR_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  const qmr::quant::format_spec spec = qmr::quant::parse_format(fmt);
  if (spec.bits != 4 || !spec.symmetric || (spec.group != 0 && spec.group < 64)) {
    std::fprintf(stderr, "rowx: this probe builds 4-bit symmetric formats with groups of 64+ (per channel too) only\n");
    return 2;
  }
  const int group_shift = spec.group == 0 ? 31 : static_cast<int>(std::log2(spec.group));
  gpu::gemv_operands io(16, dim, dim, stream);
  const qmr::quant::qtensor qt = gpu::random_qtensor(spec, dim, dim);
  // Baselines in the same run: cuBLAS f16, HEAD's split kernel (and its read ceiling).
  const probe_m16::baselines base = probe_m16::time_baselines(fmt, spec, io, stream);
  // The reference output: HEAD's split kernel on the same matrix.
  const probe_m16::reference ref = probe_m16::split_reference(qc::upload_split(qt.view(), stream), io, stream);

  run_variant<rowx_variant<4, 2, 4, 4, true>>(qt, group_shift, ref, io, stream, base);
  run_variant<rowx_variant<4, 2, 4, 8, false, 2>>(qt, group_shift, ref, io, stream, base);
  run_variant<rowx_variant<4, 2, 4, 8, false, 3>>(qt, group_shift, ref, io, stream, base);
  run_variant<rowx_variant<4, 2, 4, 8, false, 4>>(qt, group_shift, ref, io, stream, base);
  run_variant<rowx_variant<4, 2, 4, 12, false, 3>>(qt, group_shift, ref, io, stream, base);
  run_variant<rowx_variant<4, 2, 4, 16, false, 3>>(qt, group_shift, ref, io, stream, base);
  run_variant<rowx_variant<4, 2, 8, 8, false, 2>>(qt, group_shift, ref, io, stream, base);
  run_variant<rowx_variant<4, 4, 4, 8, false, 2>>(qt, group_shift, ref, io, stream, base);
  run_variant<rowx_variant<4, 4, 2, 4, true>>(qt, group_shift, ref, io, stream, base);
  run_variant<rowx_variant<4, 4, 2, 8, false, 3>>(qt, group_shift, ref, io, stream, base);
  run_variant<rowx_variant<4, 4, 2, 16, false, 3>>(qt, group_shift, ref, io, stream, base);
  run_variant<rowx_variant<4, 4, 4, 3, true>>(qt, group_shift, ref, io, stream, base);
  // Again the split kernel, to bound the drift over the run.
  probe_m16::time_split_again(spec, io, stream);
  QMR_CUDA_CHECK(cudaStreamDestroy(stream));
  return 0;
}
