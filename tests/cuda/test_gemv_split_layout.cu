// Host test of the split GEMV's data layout (needs no GPU): split_repack and lanes_pair_word with the PTX lop3/prmt semantics put in every lane's vector exactly the mma A fragments the kernel assumes (pair p = 4s + f of lane 4g + t holds row 16 tile + g + 8 (f & 1), columns 16 s + 2t + 8 (f >> 1) + {0, 1} of its load), decoding to (code - z0) / z0, padding to code 0; scales and zero factors (z0 - z) / z0 sit in each tile's f16x2 row pairs (rows g, g + 8), exactly; and split_layout's slices cover the columns in multiples of 256 of at most 2048 (and every layout's block fits sm_90's shared memory), for random 2/3/4/8-bit tensors, symmetric and asymmetric, of ragged shapes.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "qmr/kernels/cuda/gemv_split.cuh"
#include "gemv_reference.hpp"
#include "gpu_check.hpp"

namespace quant = qmr::quant;
namespace qc = qmr::cuda;
namespace qd = qmr::cuda::detail;

namespace {

using qmr::testing::gpu::failures;
using qmr::testing::gpu::fma_f16;
using qmr::testing::gpu::half_value;
using qmr::testing::gpu::rng;


template <int Bits>
void check_format(const quant::format_spec& spec, std::int64_t rows, std::int64_t cols, rng& r) {
  const quant::qtensor q = qmr::testing::gpu::random_qtensor(spec, rows, cols, r);
  const quant::qtensor_view w = q.view();
  const qc::split_layout l = qc::split_layout::of(Bits, rows, cols, w.layout.n_groups, !spec.symmetric, 132);
  const std::vector<std::uint32_t> packed = qd::split_repack(w, l);
  const std::string spec_name = spec.str();
  const char* name = spec_name.c_str();
  CHECK(static_cast<std::int64_t>(packed.size()) * 4 >= l.bytes, "%s [%lld, %lld]: buffer smaller than the layout", name,
        static_cast<long long>(rows), static_cast<long long>(cols));
  // Slicing: whole 128-column quanta, slices of 256-multiples (or the whole row), at most 2048, covering the row.
  CHECK(l.cols_pad % 128 == 0 && l.cols_pad >= cols && l.cols_pad < cols + 128, "%s: cols_pad %lld", name,
        static_cast<long long>(l.cols_pad));
  CHECK((l.slice_cols % 256 == 0 || l.slice_cols == l.cols_pad) && l.slice_cols <= 2048 && l.slice_cols > 0, "%s: slice of %d columns",
        name, l.slice_cols);
  CHECK(static_cast<std::int64_t>(l.slices - 1) * l.slice_cols < l.cols_pad && static_cast<std::int64_t>(l.slices) * l.slice_cols >= l.cols_pad,
        "%s: %d slices of %d do not cover %lld columns", name, l.slices, l.slice_cols, static_cast<long long>(l.cols_pad));
  constexpr int UC = qc::lanes_unit_cols(Bits), LC = qc::split_load_cols(Bits);
  const double z = static_cast<double>(1 << (Bits - 1));
  int bad = 0;
  for (std::int64_t tile = 0; tile < l.row_tiles; ++tile)
    for (std::int64_t ld = 0; ld < l.loads; ++ld)
      for (int lane = 0; lane < 32; ++lane) {
        const std::size_t v = static_cast<std::size_t>((tile * l.loads + ld) * 32 + lane);
        std::uint32_t qw[4], hw[2] = {0u, 0u};
        for (int j = 0; j < 4; ++j) qw[j] = packed[v * 4 + static_cast<std::size_t>(j)];
        if (Bits == 3)
          for (int j = 0; j < 2; ++j) hw[j] = packed[static_cast<std::size_t>(l.hi_offset / 4) + v * 2 + static_cast<std::size_t>(j)];
        const int g = lane >> 2, t = lane & 3;
        for (int p = 0; p < UC / 2; ++p) {
          const std::uint32_t word = qd::lanes_pair_word<Bits, qd::lanes_host_ops>(qw, hw, p);
          const int e = qd::lanes_pair_exponent<Bits>(p);
          const double s = half_value(qd::lanes_scale_bits(e), 0), sub = half_value(qd::lanes_sub_bits(e), 0);
          const int ks = p / 4, f = p % 4;
          for (int h = 0; h < 2; ++h) {
            const std::int64_t row = tile * 16 + g + 8 * (f & 1), col = ld * LC + 16 * ks + 2 * t + 8 * (f >> 1) + h;
            const double code = row < rows && col < cols ? static_cast<double>(w.code(row, col)) : 0.0;
            const double got = fma_f16(half_value(word, h), s, sub);
            if (got != (code - z) / z && ++bad <= 5)
              CHECK(false, "%s [%lld, %lld]: tile %lld load %lld lane %d pair %d half %d (row %lld, col %lld) decodes to %g, want %g",
                    name, static_cast<long long>(rows), static_cast<long long>(cols), static_cast<long long>(tile),
                    static_cast<long long>(ld), lane, p, h, static_cast<long long>(row), static_cast<long long>(col), got,
                    (code - z) / z);
          }
        }
      }
  // Scale pairs and zero-factor pairs: word (tile, group, g) = f16x2 {row 16 tile + g, row 16 tile + g + 8}, 0 for padded rows.
  const auto* sc = reinterpret_cast<const std::uint16_t*>(reinterpret_cast<const unsigned char*>(packed.data()) + l.scale_offset);
  const auto* zf = reinterpret_cast<const std::uint16_t*>(reinterpret_cast<const unsigned char*>(packed.data()) + l.zero_offset);
  const double z0 = static_cast<double>(1 << (spec.bits - 1));
  for (std::int64_t row = 0; row < l.rows_pad; ++row)
    for (std::int64_t gi = 0; gi < l.n_groups; ++gi) {
      const std::size_t i = static_cast<std::size_t>(((row / 16) * l.n_groups + gi) * 16 + (row % 8) * 2 + (row % 16) / 8);
      const std::uint16_t want = row < rows ? w.scales[static_cast<std::size_t>(row * l.n_groups + gi)].bits : 0;
      if (sc[i] != want && ++bad <= 5) CHECK(false, "%s: scale of row %lld group %lld", name, static_cast<long long>(row), static_cast<long long>(gi));
      if (spec.symmetric) continue;
      const double want_zf = row < rows ? (z0 - w.zero(row, gi)) / z0 : 0.0;
      if (qmr::to_float(qmr::f16{zf[i]}) != want_zf && ++bad <= 5)
        CHECK(false, "%s: zero factor of row %lld group %lld is %g, want %g", name, static_cast<long long>(row),
              static_cast<long long>(gi), static_cast<double>(qmr::to_float(qmr::f16{zf[i]})), want_zf);
    }
  CHECK(bad == 0, "%s [%lld, %lld]: %d mismatches", name, static_cast<long long>(rows), static_cast<long long>(cols), bad);
}

// An H100 SXM's shared memory: 228 KB an SM (cudaDevAttrMaxSharedMemoryPerMultiprocessor), 227 KB a block (opt-in).
constexpr int h100_smem_sm = 233472, h100_smem_block = 232448;

// split_wide_of's configuration of layout l on `sms` SMs of an H100's shared memory: where it applies, one wave (slices x
// bands blocks at most one an SM), slices of 256-multiples (or the whole row) of at most 2048 columns covering the row,
// no more slices than the layout's workspace holds, and shared memory that fits a block, holds the kernel's, and is over
// half an SM's; where it does not, a reason.
// split_pair_of, for a layout with a wide configuration c: it applies exactly to symmetric codes with 2 wide slices
// (or 4, where split_pair_max_clusters allows clusters of 2); then bands of 8 row tiles cover the rows, clusters are half the slices, blocks fit one wave, and its shared
// memory holds the kernel's (x of two slices and the warps' sums) and is at least the wide kernel's, within a block.
void check_pair(const qc::split_layout& l, const quant::format_spec& spec, const qd::split_wide_config& c, int sms, const std::string& what,
                int (&n_pair)[3]) {
  const qd::split_pair_config p = qd::split_pair_of(l, spec, c, sms, h100_smem_block);
  const int need = qd::split_smem::of(spec.bits, 2, c.slice_cols, qc::split_slice_groups(qc::group_shift_of(spec), c.slice_cols), false, 2).bytes;
  const bool takes = spec.symmetric && (c.slices == 2 || c.slices == 4) && c.slices / 2 <= qd::split_pair_max_clusters && need <= h100_smem_block;
  CHECK((p.bands > 0) == takes, "%s pair: %d bands, expected %s (%d wide slices)", what.c_str(), p.bands, takes ? "some" : "none", c.slices);
  if (p.bands == 0) return;
  ++n_pair[p.clusters];
  CHECK(p.clusters == c.slices / 2 && static_cast<std::int64_t>(p.bands) * 8 * 16 >= l.rows_pad &&
            static_cast<std::int64_t>(p.bands - 1) * 8 * 16 < l.rows_pad && p.bands * p.clusters <= sms,
        "%s pair: %d bands of 128 rows in clusters of %d on %d SMs (%lld padded rows)", what.c_str(), p.bands, p.clusters, sms,
        static_cast<long long>(l.rows_pad));
  CHECK(p.smem >= need && p.smem >= c.smem && p.smem <= h100_smem_block, "%s pair: %d B of shared memory (the kernel's %d, wide %d)",
        what.c_str(), p.smem, need, c.smem);
}

void check_wide(const qc::split_layout& l, const quant::format_spec& spec, int sms, const std::string& what, int& n_wide, int (&n_pair)[3]) {
  const qd::split_wide_config c = qd::split_wide_of(l, spec, sms, h100_smem_sm, h100_smem_block);
  const std::int64_t fewest = (l.cols_pad + qc::gemv_split_traits::max_slice_cols - 1) / qc::gemv_split_traits::max_slice_cols;
  if (c.slices == 0) {
    CHECK(l.bands > sms || fewest * l.bands > sms || fewest > l.slices, "%s: no wide configuration, though %lld slices of %d bands fit %d SMs",
          what.c_str(), static_cast<long long>(fewest), l.bands, sms);
    return;
  }
  ++n_wide;
  CHECK(static_cast<std::int64_t>(c.slices) * l.bands <= sms && c.slices <= l.slices, "%s wide: %d slices x %d bands on %d SMs (workspace %d)",
        what.c_str(), c.slices, l.bands, sms, l.slices);
  CHECK((c.slice_cols % 256 == 0 || c.slice_cols == l.cols_pad) && c.slice_cols > 0 && c.slice_cols <= qc::gemv_split_traits::max_slice_cols,
        "%s wide: slice of %d", what.c_str(), c.slice_cols);
  CHECK(static_cast<std::int64_t>(c.slices - 1) * c.slice_cols < l.cols_pad && static_cast<std::int64_t>(c.slices) * c.slice_cols >= l.cols_pad,
        "%s wide: %d slices of %d do not cover %lld columns", what.c_str(), c.slices, c.slice_cols, static_cast<long long>(l.cols_pad));
  const int need = qd::split_smem::of(spec.bits, 2, c.slice_cols, qc::split_slice_groups(qc::group_shift_of(spec), c.slice_cols), !spec.symmetric).bytes;
  CHECK(c.smem >= need && c.smem > h100_smem_sm / 2 && c.smem <= h100_smem_block, "%s wide: %d B of shared memory (the kernel's %d)",
        what.c_str(), c.smem, need);
  check_pair(l, spec, c, sms, what, n_pair);
}

}  // namespace

int main() {
  rng r{20261204};
  const std::int64_t shapes[][2] = {{1, 192}, {3, 320}, {17, 896}, {2, 4864}, {1, 16384}, {7, 64}, {20, 160}, {3, 48}, {5, 16}};
  int n = 0;
  for (int bits : {2, 3, 4, 8})
    for (int group : {32, 64, 128, 256, quant::per_channel})
      for (bool symmetric : {true, false}) {
        const quant::format_spec spec = quant::format_spec::quantized(bits, group, symmetric);
        CHECK(qc::split_supported(spec), "%s has no split layout", spec.str().c_str());
        for (const auto& sh : shapes) {
          if (group != quant::per_channel && sh[1] % group != 0) continue;
          ++n;
          switch (bits) {
            case 2: check_format<2>(spec, sh[0], sh[1], r); break;
            case 3: check_format<3>(spec, sh[0], sh[1], r); break;
            case 4: check_format<4>(spec, sh[0], sh[1], r); break;
            case 8: check_format<8>(spec, sh[0], sh[1], r); break;
          }
        }
      }
  CHECK(!qc::split_supported(quant::format_spec::quantized(6, 64, false)), "w6g64 has a split layout");
  CHECK(!qc::split_supported(quant::format_spec::quantized(5, 128, true)), "w5g128s has a split layout");
  // Slicing of the issue's shapes on a 132-SM device: 8192 x 8192 fills the GPU (2 blocks an SM) with 32 bands x 8 slices of 1024.
  const qc::split_layout big = qc::split_layout::of(4, 8192, 8192, 64, false, 132);
  CHECK(big.bands == 32 && big.slices == 8 && big.slice_cols == 1024, "8192 x 8192: %d bands x %d slices of %d", big.bands,
        big.slices, big.slice_cols);
  // split_wide's 16-token configuration of the same matrices on an H100 SXM (132 SMs, 228 KB of shared memory an SM,
  // 227 KB a block): 8192 x 8192 one block an SM in 32 bands x 4 slices of 2048; 4096 x 14336 16 bands x 8 slices of
  // 1792; the output head (594 bands) none.
  const quant::format_spec w4 = quant::format_spec::quantized(4, 128, true);
  const qd::split_wide_config wide_big = qd::split_wide_of(big, w4, 132, h100_smem_sm, h100_smem_block);
  CHECK(wide_big.slices == 4 && wide_big.slice_cols == 2048 && wide_big.smem > h100_smem_sm / 2 && wide_big.smem <= h100_smem_block,
        "8192 x 8192 wide: %d slices of %d, %d B", wide_big.slices, wide_big.slice_cols, wide_big.smem);
  const qd::split_wide_config wide_long = qd::split_wide_of(qc::split_layout::of(4, 4096, 14336, 112, false, 132), w4, 132, h100_smem_sm, h100_smem_block);
  CHECK(wide_long.slices == 8 && wide_long.slice_cols == 1792, "4096 x 14336 wide: %d slices of %d", wide_long.slices, wide_long.slice_cols);
  CHECK(qd::split_wide_of(qc::split_layout::of(4, 151936, 896, 7, false, 132), w4, 132, h100_smem_sm, h100_smem_block).slices == 0,
        "151936 x 896: a wide configuration of 594 bands on 132 SMs");
  // split_pair's configuration of them: 8192 x 8192 (4 wide slices) in 64 bands of 128 rows, clusters of 2 (128
  // blocks) if split_pair_max_clusters allows them, else none; 14336 x 4096 (2 wide slices of 2048) in 112 bands,
  // clusters of 1; 4096 x 14336 (8 slices) and the asymmetric w4g128 none.
  const qd::split_pair_config pair_big = qd::split_pair_of(big, w4, wide_big, 132, h100_smem_block);
  if (qd::split_pair_max_clusters >= 2)
    CHECK(pair_big.bands == 64 && pair_big.clusters == 2 && pair_big.smem > wide_big.smem, "8192 x 8192 pair: %d bands, clusters of %d, %d B",
          pair_big.bands, pair_big.clusters, pair_big.smem);
  else
    CHECK(pair_big.bands == 0, "8192 x 8192: a pair configuration in clusters of %d, over split_pair_max_clusters", pair_big.clusters);
  const qc::split_layout tall = qc::split_layout::of(4, 14336, 4096, 32, false, 132);
  const qd::split_wide_config wide_tall = qd::split_wide_of(tall, w4, 132, h100_smem_sm, h100_smem_block);
  const qd::split_pair_config pair_tall = qd::split_pair_of(tall, w4, wide_tall, 132, h100_smem_block);
  CHECK(wide_tall.slices == 2 && pair_tall.bands == 112 && pair_tall.clusters == 1, "14336 x 4096 pair: %d wide slices, %d bands, clusters of %d",
        wide_tall.slices, pair_tall.bands, pair_tall.clusters);
  CHECK(qd::split_pair_of(qc::split_layout::of(4, 4096, 14336, 112, false, 132), w4, wide_long, 132, h100_smem_block).bands == 0,
        "4096 x 14336: a pair configuration of 8 slices");
  const quant::format_spec w4a = quant::format_spec::quantized(4, 128, false);
  const qc::split_layout big_a = qc::split_layout::of(4, 8192, 8192, 64, true, 132);
  CHECK(qd::split_pair_of(big_a, w4a, qd::split_wide_of(big_a, w4a, 132, h100_smem_sm, h100_smem_block), 132, h100_smem_block).bands == 0,
        "8192 x 8192 w4g128 (zero points): a pair configuration");
  // The GPU test's shapes of both cluster sizes (tests/cuda/test_gemv_split.cu counts on them): 67 x 512 (2 slices of
  // 256) and 67 x 896 (4 slices of 256, the last 128), one band.
  for (const auto& [cols, clusters] : {std::pair<std::int64_t, int>{512, 1}, std::pair<std::int64_t, int>{896, 2}}) {
    const qc::split_layout small = qc::split_layout::of(4, 67, cols, cols / 128, false, 132);
    const qd::split_pair_config ps = qd::split_pair_of(small, w4, qd::split_wide_of(small, w4, 132, h100_smem_sm, h100_smem_block), 132, h100_smem_block);
    const bool allowed = clusters <= qd::split_pair_max_clusters;
    CHECK(ps.bands == (allowed ? 1 : 0) && (!allowed || ps.clusters == clusters), "67 x %lld pair: %d bands, clusters of %d (expected %s)",
          static_cast<long long>(cols), ps.bands, ps.clusters, allowed ? "1 band" : "none");
  }
  // A Jetson Orin's 16 SMs (164 KB an SM, 163 KB a block): 8192 x 8192 has 32 bands, more than SMs: none.
  CHECK(qd::split_wide_of(qc::split_layout::of(4, 8192, 8192, 64, false, 16), w4, 16, 167936, 166912).slices == 0,
        "8192 x 8192 on 16 SMs: a wide configuration over one wave");
  // No shared memory to spare for it (48 KB a block): none.
  CHECK(qd::split_wide_of(big, w4, 132, h100_smem_sm, 48 * 1024).slices == 0, "8192 x 8192 wide within 48 KB a block");
  const qc::split_layout head = qc::split_layout::of(4, 151936, 896, 7, false, 132);
  CHECK(head.slices == 1 && head.slice_cols == 896, "151936 x 896: %d slices of %d (one expected)", head.slices, head.slice_cols);
  // Every layout of the issue's and Qwen's shapes (and ragged ones) on H100 PCIe (114 SMs) and
  // H100 SXM / H200 (132): slices cover the columns in 256-multiples and a block's shared memory fits sm_90's.
  int n_layouts = 0, n_wide = 0, n_pair[3] = {0, 0, 0};
  for (int sms : {114, 132})
    for (int bits : {2, 3, 4, 8})
      for (int group : {32, 128, 256, quant::per_channel})
        for (bool asym : {false, true})
          for (std::int64_t rows : {1, 67, 203, 896, 4864, 8192, 9000, 14336, 151936})
            for (std::int64_t cols : {16, 48, 160, 896, 1792, 2048, 4864, 8192, 14336, 16384, 65536}) {
              if (group != quant::per_channel && cols % group != 0) continue;
              const std::int64_t n_groups = group == quant::per_channel ? 1 : cols / group;
              const int shift = group == quant::per_channel ? 31 : std::countr_zero(static_cast<unsigned>(group));
              const qc::split_layout l = qc::split_layout::of(bits, rows, cols, n_groups, asym, sms);
              ++n_layouts;
              const std::string what = "split layout w" + std::to_string(bits) + " g" + std::to_string(group) + (asym ? "" : "s") +
                                       " [" + std::to_string(rows) + ", " + std::to_string(cols) + "] on " + std::to_string(sms) + " SMs";
              CHECK((l.slice_cols % 256 == 0 || l.slice_cols == l.cols_pad) && l.slice_cols > 0 &&
                        l.slice_cols <= qc::gemv_split_traits::max_slice_cols,
                    "%s: slice of %d", what.c_str(), l.slice_cols);
              CHECK(static_cast<std::int64_t>(l.slices - 1) * l.slice_cols < l.cols_pad &&
                        static_cast<std::int64_t>(l.slices) * l.slice_cols >= l.cols_pad,
                    "%s: %d slices of %d do not cover %lld columns", what.c_str(), l.slices, l.slice_cols, static_cast<long long>(l.cols_pad));
              CHECK(static_cast<std::int64_t>(l.bands) * qc::gemv_split_traits::band_rows >= l.rows_pad, "%s: %d bands", what.c_str(), l.bands);
              const int sg = qc::split_slice_groups(shift, l.slice_cols);
              CHECK(qd::split_smem::of(bits, 2, l.slice_cols, sg, asym).bytes <= 227 * 1024,
                    "%s: %d bytes of shared memory a block", what.c_str(), qd::split_smem::of(bits, 2, l.slice_cols, sg, asym).bytes);
              check_wide(l, quant::format_spec::quantized(bits, group, !asym), sms, what, n_wide, n_pair);
            }
  // gemv()'s rule (split_takes): once it takes the split kernel at M tokens it takes it
  // at every larger M up to 16 (more tokens only favour the split kernel in the
  // measurements behind it), never past 16 or below 1, never for fewer bits less
  // often than for 8; and on the measured shapes it names the kernel that was faster.
  int n_rules = 0;
  for (int bits : {2, 3, 4, 8})
    for (std::int64_t rows : {1, 67, 896, 2048, 4096, 4864, 8192, 8960, 14336, 151936})
      for (std::int64_t cols : {16, 896, 1536, 2048, 4096, 4864, 8192, 8960, 14336}) {
        ++n_rules;
        CHECK(!qc::split_takes(bits, rows, cols, 0) && !qc::split_takes(bits, rows, cols, 17), "split_takes outside 1..16 tokens");
        for (int m = 1; m < 16; ++m)
          CHECK(!qc::split_takes(bits, rows, cols, m) || qc::split_takes(bits, rows, cols, m + 1),
                "split_takes w%d [%lld, %lld]: M=%d but not M=%d", bits, static_cast<long long>(rows), static_cast<long long>(cols), m, m + 1);
        for (int m = 1; m <= 16; ++m)
          CHECK(!qc::split_takes(8, rows, cols, m) || qc::split_takes(bits, rows, cols, m),
                "split_takes [%lld, %lld] M=%d: 8-bit but not %d-bit", static_cast<long long>(rows), static_cast<long long>(cols), m, bits);
      }
  // The H100's choices (graph time with PDL, bench/results/cuda_gemv_split_dispatch_h100_20261206_s42.md).
  CHECK(qc::split_takes(4, 8192, 8192, 2) && qc::split_takes(2, 14336, 4096, 1) && qc::split_takes(3, 8960, 1536, 1) &&
            qc::split_takes(8, 8192, 8192, 16) && qc::split_takes(4, 896, 4864, 12) && qc::split_takes(4, 896, 4864, 9) && qc::split_takes(3, 896, 4864, 2),
        "split_takes leaves a shape where the split kernel was faster");
  CHECK(qc::split_takes(8, 1536, 8960, 2) && qc::split_takes(8, 8960, 1536, 2) && qc::split_takes(8, 4096, 4096, 8) &&
            qc::split_takes(8, 14336, 4096, 8) && qc::split_takes(8, 4096, 14336, 2),
        "split_takes leaves an 8-bit shape where the split kernel was faster");
  CHECK(!qc::split_takes(8, 8192, 8192, 4) && !qc::split_takes(4, 2048, 2048, 8) && !qc::split_takes(4, 2048, 2048, 16) &&
            !qc::split_takes(4, 4864, 896, 16) && !qc::split_takes(4, 896, 4864, 8) && !qc::split_takes(8, 4096, 4096, 4) &&
            !qc::split_takes(8, 14336, 4096, 4),
        "split_takes takes a shape where the tiled kernel was faster");
  std::printf("split_takes: %d shapes x 4 bit widths checked\n", n_rules / 4);
  CHECK(n_pair[1] > 0 && (n_pair[2] > 0) == (qd::split_pair_max_clusters >= 2), "pair configurations: %d in clusters of 1, %d of 2", n_pair[1],
        n_pair[2]);
  std::printf("%s: %d shapes, %d layouts (%d with a wide configuration, %d + %d pairs in clusters of 1 + 2), %d failures\n",
              failures ? "FAIL" : "ok", n, n_layouts, n_wide, n_pair[1], n_pair[2], failures);
  return failures ? 1 : 0;
}
