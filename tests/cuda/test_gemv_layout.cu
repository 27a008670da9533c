// Host test of the CUDA GEMV's data layout (needs no GPU): gemv_silu_mul's and gemv_qkv_rope's row orders against their epilogues' reading; the kernel's own repack (codes, scales and zero points in one block per tile) and pair_codes, with the mma.sync m16n8k16 fragments placed as the PTX ISA defines them and the magic-number conversions, reproduce gemm_ref for every format on ragged shapes.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>
#include "qmr/core/thread_pool.hpp"
#include "qmr/kernels/cuda/gemv.cuh"
#include "qmr/kernels/ref/matmul.hpp"
namespace quant = qmr::quant;
namespace qd = qmr::cuda::detail;
struct rng { std::uint64_t state; std::uint32_t next() { state = state * 6364136223846793005ull + 1442695040888963407ull; return (std::uint32_t)(state >> 32); }
  float uniform(float lo, float hi) { return lo + (hi - lo) * (float)(next() >> 8) * (1.0f / 16777216.0f); } };
int failures = 0;

// The kernel's arithmetic in double: per 128-column tile, quantization group
// and 16-row block, the A fragments each lane decodes (a_i of register i/2 at
// row gid + 8*((i/2) & 1), k = 2*t4 + (i & 1) + 8*(i/4)), the B fragments it
// loads (b_i at k = 2*t4 + (i & 1) + 8*(i/2), n = gid), D = A*B, and the
// scaled accumulation of D's c_i (row gid + 8*(i/2), n = 2*t4 + (i & 1)).
template <int Bits>
void emulate(const quant::qtensor_view& w, const std::vector<float>& x, int M, std::vector<double>& y) {
  const std::int64_t rows = w.rows(), cols = w.cols();
  const int tiles = (cols + 127) / 128, groups = (rows + 31) / 32;
  const std::vector<std::uint32_t> packed = qd::repack(w);
  const int GT = w.spec.group == quant::per_channel || w.spec.group >= 128 ? 1 : 128 / w.spec.group;
  const int BV = qmr::cuda::block_vectors(Bits, GT, !w.spec.symmetric);
  if ((std::int64_t)packed.size() * 4 != (std::int64_t)groups * tiles * (qmr::cuda::gemv_traits::tile_bytes(Bits) + 16 * qmr::cuda::meta_vectors(GT, !w.spec.symmetric)) ||
      BV * 16 != qmr::cuda::gemv_traits::tile_bytes(Bits) + 16 * qmr::cuda::meta_vectors(GT, !w.spec.symmetric)) { std::puts("size mismatch"); ++failures; }
  y.assign((size_t)M * rows, 0.0);
  for (int rg = 0; rg < groups; ++rg)
    for (int T = 0; T < tiles; ++T) {
      std::uint32_t words[32][4 * Bits];
      const std::uint32_t* block = packed.data() + (std::size_t)(rg * tiles + T) * BV * 4;
      for (int lane = 0; lane < 32; ++lane)
        for (int i = 0; i < 4 * Bits; ++i)
          words[lane][i] = block[((i / 4) * 32 + lane) * 4 + i % 4];
      // The tile's parameters as the kernel reads them: f16 scales [GT][32], then u8 zero points [GT][32].
      const std::uint16_t* msc = reinterpret_cast<const std::uint16_t*>(block + 128 * Bits);
      const std::uint8_t* mz = reinterpret_cast<const std::uint8_t*>(block + 128 * Bits + 16 * GT);
      for (int j = 0; j < GT; ++j) {
        for (int rb = 0; rb < 2; ++rb) {
          double D[16][16] = {};
          for (int s = j * (8 / GT); s < (j + 1) * (8 / GT); ++s) {
            double A[16][16], B[16][16];
            for (auto& r : A) for (auto& v : r) v = NAN;
            for (auto& r : B) for (auto& v : r) v = NAN;
            for (int lane = 0; lane < 32; ++lane) {
              const int gid = lane >> 2, t4 = lane & 3;
              for (int reg = 0; reg < 4; ++reg) {
                const std::uint32_t v = qd::pair_codes<Bits>(words[lane], 4 * (2 * s + rb) + reg);
                const int rr = gid + 8 * (reg & 1);
                const std::uint32_t z = w.spec.symmetric ? (1u << (Bits - 1)) : mz[j * 32 + rb * 16 + rr];
                for (int h = 0; h < 2; ++h) {
                  const std::uint32_t code = (v >> (16 * h)) & 0xffffu;
                  if (code >= (1u << Bits)) { std::puts("code out of range"); ++failures; }
                  A[rr][2 * t4 + (h) + 8 * (reg >> 1)] = (double)code - (double)z;  // PTX: a_i, i = 2*reg + h
                }
              }
              const int c = T * 128 + 16 * s + 4 * t4;
              for (int nb = 0; nb < 2; ++nb) {  // n-block nb: batch row min(gid + 8 nb, M - 1)
                const int n = std::min(gid + 8 * nb, M - 1);
                for (int h = 0; h < 2; ++h) {  // b0 = {x[c], x[c+1]}, b1 = {x[c+2], x[c+3]}
                  B[2 * t4 + h][gid + 8 * nb] = c < cols ? x[(size_t)n * cols + c + h] : 0.0;
                  B[2 * t4 + 8 + h][gid + 8 * nb] = c < cols ? x[(size_t)n * cols + c + 2 + h] : 0.0;
                }
              }
            }
            for (int r = 0; r < 16; ++r) for (int n = 0; n < 16; ++n) for (int k = 0; k < 16; ++k) D[r][n] += A[r][k] * B[k][n];
          }
          for (int lane = 0; lane < 32; ++lane)
            for (int i = 0; i < 8; ++i) {  // accumulators of n-blocks 0 and 1
              const int gid = lane >> 2, t4 = lane & 3;
              const int rr = gid + 8 * ((i & 3) >> 1), n = 8 * (i >> 2) + 2 * t4 + (i & 1);
              const std::int64_t row = rg * 32 + rb * 16 + rr;
              qmr::f16 h; h.bits = msc[j * 32 + rb * 16 + rr];
              const double sc = qmr::to_float(h);
              if (row < rows && n < M) y[(size_t)n * rows + row] += sc * D[rr][n];
            }
        }
      }
    }
}
int main() {
  // Magic-number conversions are exact.
  for (std::uint32_t q = 0; q < 256; ++q)
    for (std::uint32_t z = 0; z < 256; ++z) {
      qmr::f16 a, b; a.bits = (std::uint16_t)(0x6400 | q); b.bits = (std::uint16_t)(0x6400 | z);
      if (qmr::to_float(a) != 1024.0f + q || qmr::to_float(a) - qmr::to_float(b) != (float)q - (float)z) { std::puts("f16 magic"); ++failures; }
      if (q < 128 && z < 128) { qmr::bf16 c, d; c.bits = (std::uint16_t)(0x4300 | q); d.bits = (std::uint16_t)(0x4300 | z);
        if (qmr::to_float(c) != 128.0f + q) { std::puts("bf16 magic"); ++failures; }
        qmr::bf16 e = qmr::to_bf16(qmr::to_float(c) - qmr::to_float(d)); if (qmr::to_float(e) != (float)q - (float)z) { std::puts("bf16 diff"); ++failures; } }
      qmr::bf16 e = qmr::to_bf16((float)q - (float)z); if (qmr::to_float(e) != (float)q - (float)z) { std::puts("bf16 8-bit"); ++failures; }
    }
  qmr::thread_pool pool;
  rng r{20261201};
  const std::int64_t shapes[][2] = {{67, 896}, {203, 4864}, {130, 4096}, {45, 320}, {19, 200}, {37, 16384}, {1000, 896}};
  for (int bits : {2, 3, 4, 5, 6, 8})
    for (int group : {32, 64, 128, 256, quant::per_channel})
      for (bool sym : {true, false}) {
        const auto spec = quant::format_spec::quantized(bits, group, sym);
        double worst = 0; int before = failures;
        for (const auto& sh : shapes) {
          const std::int64_t rows = sh[0], cols = sh[1];
          if (group != quant::per_channel && cols % group) continue;
          if (rows * cols > 2000000 && !(bits == 4)) continue;  // keep the emulation short
          quant::qtensor q(spec, rows, cols);
          for (std::size_t i = 0; i < q.codes().size(); ++i) q.codes().data()[i] = (std::uint8_t)(r.next() >> 24);
          for (std::size_t i = 0; i < q.scales().size(); ++i) q.scales().data()[i] = qmr::to_f16(r.uniform(0.002f, 0.02f) * ((r.next() & 1u) ? -1.0f : 1.0f));
          for (std::size_t i = 0; i < q.zeros().size(); ++i) q.zeros().data()[i] = (std::uint8_t)(r.next() >> 24);
          const int M = (int)(1 + r.next() % 16);
          std::vector<float> x((size_t)M * cols);
          for (auto& v : x) v = qmr::to_float(qmr::to_f16(r.uniform(-1, 1)));
          std::vector<float> yref((size_t)M * rows);
          qmr::ref::gemm_ref(q.view(), qmr::matrix_view<const float>(x.data(), M, cols), qmr::matrix_view<float>(yref.data(), M, rows), &pool);
          std::vector<double> y;
          switch (bits) { case 2: emulate<2>(q.view(), x, M, y); break; case 3: emulate<3>(q.view(), x, M, y); break;
            case 4: emulate<4>(q.view(), x, M, y); break; case 5: emulate<5>(q.view(), x, M, y); break;
            case 6: emulate<6>(q.view(), x, M, y); break; case 8: emulate<8>(q.view(), x, M, y); break; }
          for (std::int64_t m = 0; m < M; ++m) for (std::int64_t row = 0; row < rows; ++row) {
            double asum = 0; for (std::int64_t c = 0; c < cols; ++c) asum += std::fabs(q.view().value(row, c) * x[m * cols + c]);
            const double tol = 8e-6 * asum + 1e-6, err = std::fabs(y[m * rows + row] - yref[m * rows + row]);
            if (!(err <= tol)) { if (++failures < 10) std::printf("%s [%lld,%lld] M=%d y[%lld,%lld]=%g ref %g\n", spec.str().c_str(), (long long)rows, (long long)cols, M, (long long)m, (long long)row, y[m*rows+row], yref[m*rows+row]); }
            worst = std::max(worst, err / tol);
          }
        }
        std::printf("%-8s %s worst %.3f\n", spec.str().c_str(), failures == before ? "ok" : "FAIL", worst);
      }
  // gemv_silu_mul's epilogue reads the lane's rows r = 32 group + 16 rb + gid and r + 8 as gate_j
  // and up_j, j = 8 (2 group + rb) + gid: silu_pairs_order (the upload's order) must say the same
  // and place every gate and up row exactly once.
  for (const std::int64_t inter : {8, 16, 200, 4864}) {
    std::vector<int> seen(static_cast<std::size_t>(2 * inter), 0);
    for (std::int64_t r = 0; r < 2 * inter; ++r) {
      const qmr::cuda::silu_pair_row p = qmr::cuda::silu_pairs_order(r);
      const std::int64_t group = r / 32, rb = (r % 32) / 16, hi = (r % 16) / 8, gid = r % 8;
      const std::int64_t j = 8 * (2 * group + rb) + gid;
      if (p.up != (hi == 1) || p.row != j || p.row < 0 || p.row >= inter) {
        if (++failures < 10) std::printf("silu_pairs_order(%lld) with %lld rows each: %s row %lld, the epilogue reads %s row %lld\n",
                                         (long long)r, (long long)inter, p.up ? "up" : "gate", (long long)p.row,
                                         hi ? "up" : "gate", (long long)j);
        continue;
      }
      ++seen[static_cast<std::size_t>((p.up ? inter : 0) + p.row)];
    }
    for (std::size_t i = 0; i < seen.size(); ++i)
      if (seen[i] != 1 && ++failures < 10) std::printf("silu_pairs_order, %lld rows each: row %zu placed %d times\n", (long long)inter, i, seen[i]);
  }
  std::printf("silu_pairs_order: checked against the epilogue's rows\n");
  // gemv_qkv_rope's epilogue reads rows 16 b + gid and 16 b + gid + 8 as dims f and f + d/2 of
  // one q or k head (f = 8 (b mod d/16) + gid), or two v dims: qkv_pairs_order must agree, and
  // place every row of [q | k | v] exactly once.
  struct qkv_shape {
    int heads, kv_heads, d;
  };
  for (const qkv_shape sh : {qkv_shape{2, 1, 16}, qkv_shape{14, 2, 64}, qkv_shape{3, 1, 48}, qkv_shape{16, 8, 128}}) {
    const std::int64_t q_dim = sh.heads * sh.d, kv_dim = sh.kv_heads * sh.d, rows = q_dim + 2 * kv_dim, half = sh.d / 2;
    std::vector<int> seen(static_cast<std::size_t>(rows), 0);
    for (std::int64_t b = 0; b < rows / 16; ++b)
      for (std::int64_t gid = 0; gid < 8; ++gid) {
        const std::int64_t lo = qmr::cuda::qkv_pairs_order(16 * b + gid, sh.heads, sh.kv_heads, sh.d);
        const std::int64_t hi = qmr::cuda::qkv_pairs_order(16 * b + gid + 8, sh.heads, sh.kv_heads, sh.d);
        bool ok = lo >= 0 && lo < rows && hi >= 0 && hi < rows;
        if (ok && lo < q_dim + kv_dim) {  // q or k: the same head, dims f and f + d/2
          const std::int64_t base = lo < q_dim ? 0 : q_dim, f = (lo - base) % sh.d;
          ok = hi == lo + half && f == 8 * (b % (half / 8)) + gid && (hi < q_dim) == (lo < q_dim);
        } else if (ok) {  // v: two of its dims, in the epilogue's order
          ok = lo == q_dim + kv_dim + 16 * (b - (q_dim + kv_dim) / 16) + gid && hi == lo + 8;
        }
        if (!ok) {
          if (++failures < 10)
            std::printf("qkv_pairs_order heads %d/%d d %d: block %lld lane %lld reads rows %lld and %lld\n", sh.heads, sh.kv_heads, sh.d,
                        (long long)b, (long long)gid, (long long)lo, (long long)hi);
          continue;
        }
        ++seen[static_cast<std::size_t>(lo)], ++seen[static_cast<std::size_t>(hi)];
      }
    for (std::size_t i = 0; i < seen.size(); ++i)
      if (seen[i] != 1 && ++failures < 10)
        std::printf("qkv_pairs_order heads %d/%d d %d: row %zu placed %d times\n", sh.heads, sh.kv_heads, sh.d, i, seen[i]);
  }
  std::printf("qkv_pairs_order: checked against the epilogue's rows\n");
  std::printf("%d failures\n", failures);
  return failures != 0;
}
