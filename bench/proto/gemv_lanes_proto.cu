// Prototype: CUDA-core dequantizing GEMV y[M, rows] = x[M, cols] . W^T for small M on DRAM-resident
// weights, with a lane-unit layout (one 16-byte load per lane gives 16/32/64 codes, decoded with
// lop3/prmt magic-number tricks into f16x2), x staged in XOR-swizzled shared memory, half2 partial
// dot products per unit flushed to f32 with the group scale. Standalone: random data, CPU float64
// reference, timing with events per call queued behind a hold kernel (like bench/cuda_bench.cuh).
//
// nvcc -O3 -std=c++17 -gencode=arch=compute_90,code=sm_90 -o gemv_proto gemv_proto.cu
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#define CK(call)                                                                                 \
  do {                                                                                           \
    cudaError_t e_ = (call);                                                                     \
    if (e_ != cudaSuccess) {                                                                     \
      std::fprintf(stderr, "%s: %s at %s:%d\n", #call, cudaGetErrorString(e_), __FILE__, __LINE__); \
      std::exit(2);                                                                              \
    }                                                                                            \
  } while (0)

// ---------------------------------------------------------------------------------------------
// Format constants. A "unit" is what one lane decodes from one 16-byte load of the primary plane:
// w2/w3: 64 columns (w3 adds an 8-byte plane of high bits), w4: 32 columns, w8: 16 columns.
// Inside a unit, word j (32 bits) holds n = 32/pb fields of pb bits (pb = primary plane bits);
// column n*j + 2i + h (i < n/2, h < 2) is field i + (n/2)*h: so a mask of field pairs (i, i+n/2)
// lands the two codes of columns (2i, 2i+1) in the two f16 halves.
// ---------------------------------------------------------------------------------------------
__host__ __device__ constexpr int prim_bits(int bits) { return bits == 3 ? 2 : bits; }
__host__ __device__ constexpr int unit_cols(int bits) { return 128 / prim_bits(bits); }

__device__ __forceinline__ uint32_t lop3_and_or(uint32_t a, uint32_t m, uint32_t c) {
  uint32_t d;
  asm("lop3.b32 %0, %1, %2, %3, 0xea;" : "=r"(d) : "r"(a), "r"(m), "r"(c));
  return d;
}
__device__ __forceinline__ uint32_t hfma2u(uint32_t a, uint32_t b, uint32_t c) {
  uint32_t d;
  asm("fma.rn.f16x2 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
  return d;
}
__device__ __forceinline__ uint32_t h2const(float v) {
  const __half h = __float2half_rn(v);
  const uint32_t b = __half_as_ushort(h);
  return b | (b << 16);
}

// Decoded pair p (0..UC/2-1) of a unit: f16x2 {(c0 - z)/2^(b-1), (c1 - z)/2^(b-1)} exact.
// Called with constant p. q: 4 primary words; hw: 2 high-bit words (w3 only).
template <int Bits>
__device__ __forceinline__ uint32_t decode_pair(const uint32_t (&q)[4], const uint32_t (&hw)[2], int p) {
  constexpr uint32_t magic = 0x64006400u;  // f16 1024
  if constexpr (Bits == 8) {
    // word j = p/2 holds bytes: pair 2j -> bytes 0,2; pair 2j+1 -> bytes 1,3
    const uint32_t w = q[p / 2];
    const uint32_t v = __byte_perm(w, magic, (p & 1) ? 0x7371 : 0x7270);  // {b, 0x64}: 1024 + c
    // (1024 + c)/128 - 9 = (c - 128)/128
    return hfma2u(v, 0x20002000u /*1/128*/, 0xc880c880u /*-9*/);
  } else {
    constexpr int pb = prim_bits(Bits);
    constexpr int n = 32 / pb;            // fields per word
    constexpr int per_pass = 8 / pb;      // pairs per 8-bit pass
    const int j = p / (n / 2), i = p % (n / 2);
    const int pass = i / per_pass, k = i % per_pass;
    const uint32_t w = pass ? (q[j] >> (8 * pass)) : q[j];
    uint32_t v = lop3_and_or(w, (((1u << pb) - 1u) * 0x10001u) << (pb * k), magic);
    int vbits = pb;  // value = 1024 + 2^(pb*k) * code
    if constexpr (Bits == 3) {
      // high bit of pass P = 2j + pass in hw[P/4] at a translate of {2k+2, 2k+18}
      const int P = 2 * j + pass, s = P % 4;
      const uint32_t h = hw[P / 4];
      const uint32_t t = s == 0 ? h << 2 : s == 1 ? h >> 6 : s == 2 ? h << 1 : h >> 7;
      v = lop3_and_or(t, 0x00040004u << (2 * k), v);
      vbits = 3;
    }
    // (1024 + 2^(pb k) c) * 2^-(pb k + vbits - 1) - (1024 * 2^-(pb k + vbits - 1) + 1)
    // f16 bits: 2^-e = (15 - e) << 10; -(2^(10-e) + 1) = sign | (25 - e) << 10 | 1 << e (e <= 8)
    const int e = pb * k + vbits - 1;
    const uint32_t sc = static_cast<uint32_t>((15 - e) << 10) * 0x10001u;
    const uint32_t zo = (static_cast<uint32_t>(((25 - e) << 10) | (1 << e)) * 0x10001u) | 0x80008000u;
    return hfma2u(v, sc, zo);
  }
}

// ---------------------------------------------------------------------------------------------
// Kernel. Block of T threads = T/32 warps; each warp handles R rows (lanes split the units of
// a row, L = 32 lanes per row), walking units u = lane, lane + 32, ... in batches of U units per
// row, prefetching the next batch while decoding the current. x (M x cols f16) is staged in
// shared memory as 16-byte slots, slot s stored at s ^ ((s >> 3) & 7) so that the 8 lanes of an
// LDS.128 phase (consecutive units) hit distinct bank groups.
// ---------------------------------------------------------------------------------------------
struct args {
  const uint4* q;        // [rows][nu] primary plane
  const uint2* hq;       // [rows][nu] high-bit plane (w3)
  const __half* scales;  // [rows][ngroups]
  const __half* x;       // [M][cols]
  float* y;              // [M][rows]
  int rows, cols, nu, ngroups, group, gshift;
};

__device__ __forceinline__ uint4 ld_stream(const uint4* p) {
  uint4 r;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
               : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
               : "l"(p));
  return r;
}
__device__ __forceinline__ uint2 ld_stream2(const uint2* p) {
  uint2 r;
  asm volatile("ld.global.nc.L1::no_allocate.v2.u32 {%0,%1}, [%2];" : "=r"(r.x), "=r"(r.y) : "l"(p));
  return r;
}

template <int Bits, int M, int R, int U, int T>
__global__ void __launch_bounds__(T) gemv_lane_kernel(const args a) {
  constexpr int UC = unit_cols(Bits);
  constexpr int P = UC / 8;  // 16-byte x slots per unit
  constexpr int NP = UC / 2; // pairs per unit
  extern __shared__ uint4 xs[];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int row0 = (blockIdx.x * (T / 32) + warp) * R;

  // Prefetch the first batch of weights before staging x.
  uint4 qa[R][U], qb[R][U];
  uint2 ha[R][U], hb[R][U];
  __half sa[R][U], sb[R][U];
  const int nbatch = (a.nu + 32 * U - 1) / (32 * U);
  auto load = [&](uint4 (&q)[R][U], uint2 (&h)[R][U], __half (&s)[R][U], int b) {
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int i = 0; i < U; ++i) {
        const int u = (b * U + i) * 32 + lane;
        const int row = min(row0 + r, a.rows - 1);
        if (u < a.nu) {
          q[r][i] = ld_stream(a.q + (size_t)row * a.nu + u);
          if constexpr (Bits == 3) h[r][i] = ld_stream2(a.hq + (size_t)row * a.nu + u);
          s[r][i] = a.scales[(size_t)row * a.ngroups + (u * UC) / a.group];
        } else {
          q[r][i] = make_uint4(0, 0, 0, 0);
          h[r][i] = make_uint2(0, 0);
          s[r][i] = __float2half(0.0f);
        }
      }
  };
  load(qa, ha, sa, 0);
  {
    const int nslots = M * a.cols / 8;  // per batch row: cols/8 slots; rows of x are separate slot ranges
    const uint4* xv = reinterpret_cast<const uint4*>(a.x);
    for (int s = threadIdx.x; s < nslots; s += T) xs[s ^ ((s >> 3) & 7)] = xv[s];
  }
  __syncthreads();

  float acc[R][M];
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int m = 0; m < M; ++m) acc[r][m] = 0.0f;

  const int slots_per_row = a.cols / 8;
  for (int b = 0; b < nbatch; ++b) {
    if (b + 1 < nbatch) load(qb, hb, sb, b + 1);
#pragma unroll
    for (int i = 0; i < U; ++i) {
      const int u = (b * U + i) * 32 + lane;
      if (u >= a.nu) break;  // uniform per (i) only within full batches; harmless
      uint32_t part[R][M];
#pragma unroll
      for (int r = 0; r < R; ++r)
#pragma unroll
        for (int m = 0; m < M; ++m) part[r][m] = 0u;
#pragma unroll
      for (int sl = 0; sl < P; ++sl) {
        uint4 xv[M];
#pragma unroll
        for (int m = 0; m < M; ++m) {
          const int s = m * slots_per_row + u * P + sl;
          xv[m] = xs[s ^ ((s >> 3) & 7)];
        }
#pragma unroll
        for (int r = 0; r < R; ++r) {
          const uint32_t q[4] = {qa[r][i].x, qa[r][i].y, qa[r][i].z, qa[r][i].w};
          const uint32_t hw[2] = {ha[r][i].x, ha[r][i].y};
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const uint32_t w = decode_pair<Bits>(q, hw, sl * 4 + e);
#pragma unroll
            for (int m = 0; m < M; ++m) {
              const uint32_t xx = e == 0 ? xv[m].x : e == 1 ? xv[m].y : e == 2 ? xv[m].z : xv[m].w;
              part[r][m] = hfma2u(w, xx, part[r][m]);
            }
          }
        }
      }
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const float sc = __half2float(sa[r][i]);
#pragma unroll
        for (int m = 0; m < M; ++m) {
          const __half2 h = *reinterpret_cast<const __half2*>(&part[r][m]);
          const float2 f = __half22float2(h);
          acc[r][m] = fmaf(sc, f.x + f.y, acc[r][m]);
        }
      }
    }
    if (b + 1 < nbatch) {
#pragma unroll
      for (int r = 0; r < R; ++r)
#pragma unroll
        for (int i = 0; i < U; ++i) {
          qa[r][i] = qb[r][i];
          ha[r][i] = hb[r][i];
          sa[r][i] = sb[r][i];
        }
    }
  }
  constexpr float unscale = float(1 << ((Bits == 3 ? 3 : Bits) - 1));
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int m = 0; m < M; ++m) {
      float v = acc[r][m];
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
      if (lane == 0 && row0 + r < a.rows) a.y[(size_t)m * a.rows + row0 + r] = v * unscale;
    }
}


// v2: persistent grid (blocks = SMs x resident blocks), x staged once per block; each warp walks a
// flat sequence of items (its row sets x the batches of a row set), prefetching item it+1 while
// decoding item it, across row-set boundaries; XS = false reads x through L1 instead of shared.
template <int Bits, int M, int R, int U, int T, bool XS, int OCC = 32, bool XT = false>
__global__ void __launch_bounds__(T, OCC * 32 / T) gemv_flat_kernel(const args a) {
  constexpr int UC = unit_cols(Bits);
  constexpr int P = UC / 8;
  extern __shared__ uint4 xs[];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int gw = blockIdx.x * (T / 32) + warp, W = gridDim.x * (T / 32);
  const int n_rs = (a.rows + R - 1) / R;
  const int my_rs = gw < n_rs ? (n_rs - gw + W - 1) / W : 0;
  const int nbatch = (a.nu + 32 * U - 1) / (32 * U);
  const int n_items = my_rs * nbatch;

  uint4 qa[R][U], qb[R][U];
  uint2 ha[R][U], hb[R][U];
  __half sa[R][U], sb[R][U];
  // Loads of item (rs, b): the unit index is clamped (ragged last batch re-reads the row's last
  // unit) and its scale zeroed instead of branching; group = 2^gshift columns.
  auto load = [&](uint4 (&q)[R][U], uint2 (&h)[R][U], __half (&s)[R][U], int rs, int b) {
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const int row = min(rs * R + r, a.rows - 1);
      const uint4* qrow = a.q + (size_t)row * a.nu;
      const uint2* hrow = a.hq + (size_t)row * a.nu;
      const __half* srow = a.scales + (size_t)row * a.ngroups;
#pragma unroll
      for (int i = 0; i < U; ++i) {
        const int u = (b * U + i) * 32 + lane;
        const int uc = min(u, a.nu - 1);
        q[r][i] = ld_stream(qrow + uc);
        if constexpr (Bits == 3) h[r][i] = ld_stream2(hrow + uc);
        const __half sv = srow[(uc * UC) >> a.gshift];
        if constexpr (XT) s[r][i] = sv;  // padded x is zero past nu
        else s[r][i] = u < a.nu ? sv : __ushort_as_half(0);
      }
    }
  };
  int rs = gw, b = 0;
  if (n_items > 0) load(qa, ha, sa, rs, 0);
  // XT: x slot (unit u, piece sl) of batch row m at m*PS + ((u/32)*P + sl)*32 + u%32, zero past nu:
  // a warp's reads of one piece are 32 consecutive slots, addressed base + constant.
  const int PS = (a.nu + 31) / 32 * 32 * P;
  if constexpr (XS && XT) {
    const uint4* xv = reinterpret_cast<const uint4*>(a.x);
    for (int s = threadIdx.x; s < M * PS; s += T) {
      const int m = s / PS, t = s - m * PS;
      const int j = t >> 5, ln = t & 31;
      const int u = (j / P) * 32 + ln, sl = j % P;
      xs[s] = u < a.nu ? xv[m * (a.cols / 8) + u * P + sl] : make_uint4(0, 0, 0, 0);
    }
    __syncthreads();
  } else if constexpr (XS) {
    const int nslots = M * a.cols / 8;
    const uint4* xv = reinterpret_cast<const uint4*>(a.x);
    for (int s = threadIdx.x; s < nslots; s += T) xs[s ^ ((s >> 3) & 7)] = xv[s];
    __syncthreads();
  }
  const uint4* xg = reinterpret_cast<const uint4*>(a.x);
  float acc[R][M];
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int m = 0; m < M; ++m) acc[r][m] = 0.0f;
  const int slots_per_row = a.cols / 8;
  for (int it = 0; it < n_items; ++it) {
    const int nb = b + 1 == nbatch ? 0 : b + 1;
    const int nrs = nb == 0 ? rs + W : rs;
    if (it + 1 < n_items) load(qb, hb, sb, nrs, nb);
#pragma unroll
    for (int i = 0; i < U; ++i) {
      const int u = min((b * U + i) * 32 + lane, a.nu - 1);  // clamped: a zero scale drops the re-read
      {
        uint32_t part[R][M];
#pragma unroll
        for (int r = 0; r < R; ++r)
#pragma unroll
          for (int m = 0; m < M; ++m) part[r][m] = 0u;
#pragma unroll
        for (int sl = 0; sl < P; ++sl) {
          uint4 xv[M];
#pragma unroll
          for (int m = 0; m < M; ++m) {
            const int s = m * slots_per_row + u * P + sl;
            if constexpr (XT) xv[m] = xs[m * PS + ((b * U + i) * P + sl) * 32 + lane];
            else if constexpr (XS) xv[m] = xs[s ^ ((s >> 3) & 7)];
            else xv[m] = __ldg(xg + s);
          }
#pragma unroll
          for (int r = 0; r < R; ++r) {
            const uint32_t q[4] = {qa[r][i].x, qa[r][i].y, qa[r][i].z, qa[r][i].w};
            const uint32_t hw[2] = {ha[r][i].x, ha[r][i].y};
#pragma unroll
            for (int e = 0; e < 4; ++e) {
              const uint32_t w = decode_pair<Bits>(q, hw, sl * 4 + e);
#pragma unroll
              for (int m = 0; m < M; ++m) {
                const uint32_t xx = e == 0 ? xv[m].x : e == 1 ? xv[m].y : e == 2 ? xv[m].z : xv[m].w;
                part[r][m] = hfma2u(w, xx, part[r][m]);
              }
            }
          }
        }
#pragma unroll
        for (int r = 0; r < R; ++r) {
          const float sc = __half2float(sa[r][i]);
#pragma unroll
          for (int m = 0; m < M; ++m) {
            const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&part[r][m]));
            acc[r][m] = fmaf(sc, f.x + f.y, acc[r][m]);
          }
        }
      }
    }
    if (nb == 0) {  // row set done: reduce over the warp, store, reset
      constexpr float unscale = float(1 << ((Bits == 3 ? 3 : Bits) - 1));
#pragma unroll
      for (int r = 0; r < R; ++r)
#pragma unroll
        for (int m = 0; m < M; ++m) {
          float v = acc[r][m];
#pragma unroll
          for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
          if (lane == 0 && rs * R + r < a.rows) a.y[(size_t)m * a.rows + rs * R + r] = v * unscale;
          acc[r][m] = 0.0f;
        }
    }
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int i = 0; i < U; ++i) {
        qa[r][i] = qb[r][i];
        ha[r][i] = hb[r][i];
        sa[r][i] = sb[r][i];
      }
    b = nb;
    rs = nrs;
  }
}

// ---------------------------------------------------------------------------------------------
// Host: packing (codes[row][col] in 0..2^b-1) into the unit layout.
// ---------------------------------------------------------------------------------------------
struct packed {
  std::vector<uint32_t> q;  // rows * nu * 4
  std::vector<uint32_t> h;  // rows * nu * 2 (w3)
};

packed pack(const std::vector<uint8_t>& codes, int rows, int cols, int bits) {
  const int pb = prim_bits(bits), UC = unit_cols(bits), nu = cols / UC, n = 32 / pb;
  packed out;
  out.q.assign((size_t)rows * nu * 4, 0u);
  if (bits == 3) out.h.assign((size_t)rows * nu * 2, 0u);
  for (int r = 0; r < rows; ++r)
    for (int u = 0; u < nu; ++u)
      for (int c = 0; c < UC; ++c) {
        const uint32_t code = codes[(size_t)r * cols + u * UC + c];
        const int j = c / n, cc = c % n, i = cc / 2, hh = cc % 2;
        const int field = i + (n / 2) * hh;
        out.q[((size_t)r * nu + u) * 4 + j] |= (code & ((1u << pb) - 1u)) << (pb * field);
        if (bits == 3) {
          const int per_pass = 8 / pb;  // 4
          const int pass = i / per_pass, k = i % per_pass;
          const int Pp = 2 * j + pass, s = Pp % 4;
          const int d = s == 0 ? -2 : s == 1 ? 6 : s == 2 ? -1 : 7;  // decoder shifts by -d
          const int pos = 2 * k + 2 + 16 * hh + d;
          out.h[((size_t)r * nu + u) * 2 + Pp / 4] |= ((code >> 2) & 1u) << pos;
        }
      }
  return out;
}

template <class T>
__global__ void hold_stream(T ns) {
  long long start = 0, now = 0;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
  do {
    __nanosleep(1000);
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
  } while (now - start < ns);
}

template <class F>
double time_median(int copies, int runs, cudaStream_t st, F&& call) {
  for (int i = 0; i < copies; ++i) call(i);
  std::vector<cudaEvent_t> ev(2 * runs);
  for (auto& e : ev) CK(cudaEventCreate(&e));
  hold_stream<<<1, 1, 0, st>>>(20000ll * runs + 1000000ll);
  for (int i = 0; i < runs; ++i) {
    CK(cudaEventRecord(ev[2 * i], st));
    call(i % copies);
    CK(cudaEventRecord(ev[2 * i + 1], st));
  }
  CK(cudaStreamSynchronize(st));
  CK(cudaGetLastError());
  std::vector<double> s(runs);
  for (int i = 0; i < runs; ++i) {
    float ms = 0;
    CK(cudaEventElapsedTime(&ms, ev[2 * i], ev[2 * i + 1]));
    s[i] = 1e-3 * ms;
  }
  for (auto& e : ev) CK(cudaEventDestroy(e));
  std::sort(s.begin(), s.end());
  return s[runs / 2];
}

// Graph of K back-to-back calls (rotating copies), time per call = replay time / K, median of reps.
template <class F>
double time_graph(int copies, int K, int reps, cudaStream_t st, F&& call) {
  cudaGraph_t g;
  cudaGraphExec_t ge;
  CK(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal));
  for (int i = 0; i < K; ++i) call(i % copies);
  CK(cudaStreamEndCapture(st, &g));
  CK(cudaGraphInstantiate(&ge, g, 0));
  CK(cudaGraphLaunch(ge, st));
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  std::vector<double> s(reps);
  for (int r = 0; r < reps; ++r) {
    CK(cudaEventRecord(e0, st));
    CK(cudaGraphLaunch(ge, st));
    CK(cudaEventRecord(e1, st));
    CK(cudaEventSynchronize(e1));
    float ms = 0;
    CK(cudaEventElapsedTime(&ms, e0, e1));
    s[r] = 1e-3 * ms / K;
  }
  CK(cudaGraphExecDestroy(ge));
  CK(cudaGraphDestroy(g));
  CK(cudaEventDestroy(e0));
  CK(cudaEventDestroy(e1));
  std::sort(s.begin(), s.end());
  return s[reps / 2];
}

static double g_copy_bw = 0;
static bool g_prof = false;
static int g_copies = 0;
static cudaStream_t g_st;

struct problem {
  int rows, cols, bits, group;
};

// Runs one (format, shape) for several kernel configs and M.
template <int Bits, int M, int R, int U, int T, int Kind = 0, int OCC = 32>
void run_config(const problem& pr, const std::vector<const uint4*>& qs, const std::vector<const uint2*>& hs,
                const std::vector<const __half*>& ss, const __half* dx, float* dy, double bytes, int copies,
                const std::vector<double>& ref, const char* name) {
  args a{};
  a.rows = pr.rows;
  a.cols = pr.cols;
  a.nu = pr.cols / unit_cols(Bits);
  a.ngroups = pr.cols / pr.group;
  a.group = pr.group;
  a.gshift = __builtin_ctz(pr.group);
  a.x = dx;
  a.y = dy;
  const int rows_per_block = (T / 32) * R;
  int blocks = (pr.rows + rows_per_block - 1) / rows_per_block;
  const int nu = pr.cols / unit_cols(Bits);
  const int smem = Kind == 2 ? 0 : Kind == 3 ? M * ((nu + 31) / 32 * 32) * unit_cols(Bits) * 2 : M * pr.cols * 2;
  auto k = Kind == 0 ? gemv_lane_kernel<Bits, M, R, U, T> : Kind == 1 ? gemv_flat_kernel<Bits, M, R, U, T, true, OCC> : Kind == 3 ? gemv_flat_kernel<Bits, M, R, U, T, true, OCC, true> : gemv_flat_kernel<Bits, M, R, U, T, false, OCC>;
  CK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  if (Kind != 0) {
    int occ0 = 0, sms = 0;
    CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ0, k, T, smem));
    CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    blocks = std::min(blocks, occ0 * sms);
  }
  auto call = [&](int i) {
    args b = a;
    b.q = qs[i];
    b.hq = hs[i];
    b.scales = ss[i];
    k<<<blocks, T, smem, g_st>>>(b);
  };
  // correctness: poison, run on copy 0, compare
  CK(cudaMemsetAsync(dy, 0xff, (size_t)M * pr.rows * 4, g_st));
  call(0);
  CK(cudaGetLastError());
  std::vector<float> y((size_t)M * pr.rows);
  CK(cudaMemcpyAsync(y.data(), dy, y.size() * 4, cudaMemcpyDeviceToHost, g_st));
  CK(cudaStreamSynchronize(g_st));
  double num = 0, den = 0;
  bool finite = true;
  for (size_t i = 0; i < y.size(); ++i) {
    if (!std::isfinite(y[i])) finite = false;
    num += (y[i] - ref[i]) * (y[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  const double rel = finite ? std::sqrt(num / den) : INFINITY;
  if (g_prof) {
    for (int i = 1; i < 5; ++i) call(i % copies);
    CK(cudaStreamSynchronize(g_st));
    std::printf("prof %s rel %.2e\n", name, rel);
    return;
  }
  const double s = time_median(copies, 200, g_st, call);
  const double sg = time_graph(copies, std::min(copies, 100), 20, g_st, call);
  int regs = 0;
  cudaFuncAttributes fa;
  CK(cudaFuncGetAttributes(&fa, k));
  regs = fa.numRegs;
  int occ = 0;
  CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, k, T, smem));
  std::printf("| %dx%d | w%dg%d | %d | %-14s | %3d regs %2d warps/SM | %8.2f | %7.0f | %5.1f%% | %8.2f | %5.1f%% | %.2e %s |\n",
              pr.rows, pr.cols, pr.bits, pr.group, M, name, regs, occ * T / 32, s * 1e6, bytes / s / 1e9,
              100.0 * bytes / s / g_copy_bw, sg * 1e6, 100.0 * bytes / sg / g_copy_bw, rel,
              rel < 1e-2 ? "ok" : "FAIL");
  std::fflush(stdout);
}

template <int Bits, int M>
void run_problem(const problem& pr, bool many_configs) {
  std::mt19937_64 rng(1234 + pr.rows * 7 + pr.cols + Bits * 1000 + M);
  const int rows = pr.rows, cols = pr.cols;
  std::vector<uint8_t> codes((size_t)rows * cols);
  for (auto& c : codes) c = static_cast<uint8_t>(rng() & ((1u << Bits) - 1u));
  const int ng = cols / pr.group;
  std::vector<__half> sc((size_t)rows * ng);
  std::uniform_real_distribution<float> us(0.002f, 0.02f);
  for (auto& s : sc) s = __float2half(us(rng));
  std::vector<__half> x((size_t)M * cols);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (auto& v : x) v = __float2half(nd(rng));
  // reference
  std::vector<double> ref((size_t)M * rows, 0.0);
  for (int m = 0; m < M; ++m)
    for (int r = 0; r < rows; ++r) {
      double s = 0;
      for (int c = 0; c < cols; ++c)
        s += double(__half2float(sc[(size_t)r * ng + c / pr.group])) *
             (double(codes[(size_t)r * cols + c]) - double(1 << (Bits - 1))) * double(__half2float(x[(size_t)m * cols + c]));
      ref[(size_t)m * rows + r] = s;
    }
  const packed pk = pack(codes, rows, cols, Bits);
  const double bytes = double(rows) * cols * Bits / 8.0 + double(rows) * ng * 2.0;
  const int copies = g_copies > 0 ? g_copies : std::max(2, std::min(1000, int(1.1e9 / bytes + 0.999)));
  std::vector<const uint4*> qs(copies);
  std::vector<const uint2*> hs(copies, nullptr);
  std::vector<const __half*> ss(copies);
  std::vector<void*> allocs;
  for (int i = 0; i < copies; ++i) {
    void *q, *s, *h = nullptr;
    CK(cudaMalloc(&q, pk.q.size() * 4));
    CK(cudaMalloc(&s, sc.size() * 2));
    CK(cudaMemcpy(q, pk.q.data(), pk.q.size() * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(s, sc.data(), sc.size() * 2, cudaMemcpyHostToDevice));
    if (Bits == 3) {
      CK(cudaMalloc(&h, pk.h.size() * 4));
      CK(cudaMemcpy(h, pk.h.data(), pk.h.size() * 4, cudaMemcpyHostToDevice));
      allocs.push_back(h);
    }
    qs[i] = (const uint4*)q;
    ss[i] = (const __half*)s;
    hs[i] = (const uint2*)h;
    allocs.push_back(q);
    allocs.push_back(s);
  }
  __half* dx;
  float* dy;
  CK(cudaMalloc(&dx, x.size() * 2));
  CK(cudaMalloc(&dy, (size_t)M * rows * 4));
  CK(cudaMemcpy(dx, x.data(), x.size() * 2, cudaMemcpyHostToDevice));
  if (many_configs) {
    run_config<Bits, M, 2, 1, 512, 1>(pr, qs, hs, ss, dx, dy, bytes, copies, ref, "flat R2U1T512");
    run_config<Bits, M, 2, 1, 512, 3>(pr, qs, hs, ss, dx, dy, bytes, copies, ref, "XT R2U1T512");
    run_config<Bits, M, 2, 2, 512, 3>(pr, qs, hs, ss, dx, dy, bytes, copies, ref, "XT R2U2T512");
    run_config<Bits, M, 4, 1, 512, 3>(pr, qs, hs, ss, dx, dy, bytes, copies, ref, "XT R4U1T512");
    run_config<Bits, M, 2, 1, 512, 3, 48>(pr, qs, hs, ss, dx, dy, bytes, copies, ref, "XT R2U1T512o48");
  } else {
    if (!g_prof) run_config<Bits, M, 2, 1, 512, 1>(pr, qs, hs, ss, dx, dy, bytes, copies, ref, "flat R2U1T512");
    run_config<Bits, M, 2, 1, 512, 3>(pr, qs, hs, ss, dx, dy, bytes, copies, ref, "XT R2U1T512");
    if (!g_prof) run_config<Bits, M, 4, 1, 512, 3>(pr, qs, hs, ss, dx, dy, bytes, copies, ref, "XT R4U1T512");
  }
  for (void* p : allocs) CK(cudaFree(p));
  CK(cudaFree(dx));
  CK(cudaFree(dy));
}

int main(int argc, char** argv) {
  const std::string which = argc > 1 ? argv[1] : "all";
  CK(cudaStreamCreateWithFlags(&g_st, cudaStreamNonBlocking));
  {
    const size_t n = size_t(1) << 30;
    void *a, *b;
    CK(cudaMalloc(&a, n));
    CK(cudaMalloc(&b, n));
    CK(cudaMemset(a, 1, n));
    const double s = time_median(1, 20, g_st, [&](int) { CK(cudaMemcpyAsync(b, a, n, cudaMemcpyDeviceToDevice, g_st)); });
    g_copy_bw = 2.0 * n / s;
    CK(cudaFree(a));
    CK(cudaFree(b));
  }
  cudaDeviceProp p;
  CK(cudaGetDeviceProperties(&p, 0));
  std::printf("%s, %d SMs, copy bandwidth %.0f GB/s (D2D memcpy, read+write, 1 GiB, median of 20)\n", p.name,
              p.multiProcessorCount, g_copy_bw / 1e9);
  std::printf("| shape | fmt | M | config | resources | us/call | GB/s | %%copy | us graph | %%copy | rel err |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
  const bool all = which == "all";
  if (which == "prof_w2" || which == "prof_w4") {
    g_prof = true;
    if (which == "prof_w2") run_problem<2, 1>({8192, 8192, 2, 128}, false);
    else run_problem<4, 1>({8192, 8192, 4, 128}, false);
    return 0;
  }
  if (which == "l2") {
    for (int c : {1, 2, 4, 64}) {
      g_copies = c;
      std::printf("copies %d\n", c);
      run_problem<2, 1>({8192, 8192, 2, 128}, false);
    }
    return 0;
  }
  if (all || which == "w4") {
    run_problem<4, 1>({8192, 8192, 4, 128}, true);
  }
  if (all || which == "w8") run_problem<8, 1>({8192, 8192, 8, 128}, true);
  if (all || which == "w2") {
    run_problem<2, 1>({8192, 8192, 2, 64}, true);
    run_problem<2, 1>({8192, 8192, 2, 128}, false);
  }
  if (all || which == "w3") run_problem<3, 1>({8192, 8192, 3, 128}, true);
  if (all || which == "m") {
    run_problem<4, 4>({8192, 8192, 4, 128}, false);
    run_problem<4, 8>({8192, 8192, 4, 128}, false);
  }
  if (all || which == "small") {
    for (problem pr : {problem{896, 896, 4, 128}, problem{4864, 896, 4, 128}, problem{896, 4864, 4, 128},
                       problem{151936, 896, 4, 128}})
      run_problem<4, 1>(pr, false);
  }
  return 0;
}
