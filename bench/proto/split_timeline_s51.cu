// Stop 51's timeline of the split kernel (issue 7's 16-token bar): where each block of each
// call spends its time in a CUDA graph of 20 calls with PDL, at 1, 8 and 16 tokens.
// Needs the kernel built with bench/proto/split_timeline_s51.patch and -DQMR_SPLIT_TRACE,
// which record the global timer (and SM clock) per block at entry, after pdl_wait and with x
// staged, and per warp at its load n_loads / 2, at the end of its weight loop, at each step
// of split_finish and after it (split_trace_rec in the patch).
// Build (sm_90; the patched worktree's include/):
//   nvcc -std=c++20 --expt-relaxed-constexpr -O3 -gencode=arch=compute_90,code=sm_90 -DQMR_SPLIT_TRACE
//        -I WORKTREE/include -I WORKTREE/bench bench/proto/split_timeline_s51.cu -o split_timeline
// Run: split_timeline [FORMAT (w4g128s)] [RAW_DIR]: per M, the graph time (median of 30
// replays), then one traced replay summarized per call; RAW_DIR gets the records. Built
// without -DQMR_SPLIT_TRACE it prints the graph times only (the probe's own cost is then
// the difference). The patch's switches make stop 51's variants (each 0 or off by default):
// QMR_SPLIT_RING=R (the ring's depth, 4), QMR_SPLIT_BAND_MAJOR (blocks launched slice-fastest),
// QMR_SPLIT_POLL=1|2 (no counter, polling; a relaxed counter with checked slots),
// QMR_SPLIT_LATE_TRIGGER (PDL trigger after the loop), QMR_SPLIT_SKEW=Q (wider first slices),
// QMR_SPLIT_TAIL2 (the 16-token tail's loads in one batch), QMR_SPLIT_F16WS (f16 workspace,
// timing only). Results: bench/results/cuda_gemv_split_timeline_h100_20261207_s51.md.
// Stop 52 (bench/proto/split_timeline_s52.patch, on the header before split_workspace) adds
// QMR_SPLIT_RED (slice sums by L2 reductions) and QMR_SPLIT_SHARED_WS (every matrix on the
// first one's workspace, set below); since split_workspace landed, HEAD's clones share their
// workspace anyway. Results: bench/results/cuda_gemv_split_red_shared_ws_h100_20261207_s52.md.
#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "cuda_bench.cuh"

namespace qc = qmr::cuda;
namespace gpu = qmr::bench::gpu;
#ifdef QMR_SPLIT_TRACE
using rec = qc::detail::split_trace_rec;
#endif
using qmr::f16;

namespace {

constexpr int calls = 20;          // a graph's calls, as time_graph's back_to_back_calls
constexpr std::int64_t dim = 8192;  // the bar's shape, 8192 x 8192

[[maybe_unused]] double pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5)];
}

#ifdef QMR_SPLIT_TRACE
void summarize(const std::vector<rec>& rs, int m) {
  // Calls by weight pointer, in order of their first entry.
  std::map<unsigned long long, std::vector<const rec*>> by_q;
  for (const rec& r : rs) by_q[r.q].push_back(&r);
  std::vector<std::vector<const rec*>> launches;
  for (auto& [q, v] : by_q) launches.push_back(v);
  const auto first_entry = [](const std::vector<const rec*>& v) {
    unsigned long long t = ~0ull;
    for (const rec* r : v) t = std::min(t, r->gt[0]);
    return t;
  };
  std::sort(launches.begin(), launches.end(), [&](const auto& a, const auto& b) { return first_entry(a) < first_entry(b); });
  // The global timer's step: the smallest nonzero gap between sorted entry stamps.
  std::vector<unsigned long long> stamps;
  for (const rec& r : rs) stamps.push_back(r.gt[2]);
  std::sort(stamps.begin(), stamps.end());
  unsigned long long step = ~0ull;
  for (std::size_t i = 1; i < stamps.size(); ++i)
    if (stamps[i] != stamps[i - 1]) step = std::min(step, stamps[i] - stamps[i - 1]);
  // SM clock rate from the longest spans.
  std::vector<double> ghz;
  for (const rec& r : rs)
    for (int w = 0; w < 16; ++w)
      if (r.gt_fin[w] > r.gt[0] + 2000) ghz.push_back(static_cast<double>(r.ck_fin[w] - r.ck[0]) / static_cast<double>(r.gt_fin[w] - r.gt[0]));
  std::printf("M = %d: %zu records, %zu calls, %zu blocks a call; global timer step %llu ns; SM clock %.3f GHz\n", m, rs.size(),
              launches.size(), launches.empty() ? 0 : launches[0].size(), step, pct(ghz, 0.5));
  std::printf("  (ns; rel = from the call's pdl release, the first block's return from pdl_wait)\n");
  std::printf("  call | period | release - prev end | entries before release | stage med/max | loop end rel p10/p50/p90/max | "
              "fin end rel p50/max | tail (max fin - max loop) | first block end rel | blocks/SM max\n");
  unsigned long long prev_end = 0;
  std::vector<double> periods, gaps, stage_med, stage_max, loop50, loop90, loopmax, finmax, tails, first_ends, pre;
  for (std::size_t k = 0; k < launches.size(); ++k) {
    const auto& v = launches[k];
    unsigned long long release = ~0ull, end = 0, first_end = ~0ull;
    for (const rec* r : v) release = std::min(release, r->gt[1]);
    std::vector<double> stage, loop, fin;
    int before_release = 0;
    std::map<unsigned long long, int> per_sm;
    for (const rec* r : v) {
      if (r->gt[0] < release) ++before_release;
      ++per_sm[r->id >> 32];
      stage.push_back(static_cast<double>(r->gt[2] - r->gt[1]));
      unsigned long long bend = 0;
      for (int w = 0; w < 16; ++w) {
        loop.push_back(static_cast<double>(r->gt_loop[w] - release));
        fin.push_back(static_cast<double>(r->gt_fin[w] - release));
        bend = std::max(bend, r->gt_fin[w]);
      }
      end = std::max(end, bend);
      first_end = std::min(first_end, bend);
    }
    int sm_max = 0;
    for (auto& [sm, n] : per_sm) sm_max = std::max(sm_max, n);
    const double period = prev_end ? static_cast<double>(end - prev_end) : 0;
    const double gap = prev_end ? static_cast<double>(release) - static_cast<double>(prev_end) : 0;
    const double lmax = pct(loop, 1.0), fmax = pct(fin, 1.0);
    std::printf("  %4zu | %6.0f | %6.0f | %4d | %5.0f / %5.0f | %5.0f %5.0f %5.0f %5.0f | %5.0f %5.0f | %5.0f | %5.0f | %d\n", k, period, gap,
                before_release, pct(stage, 0.5), pct(stage, 1.0), pct(loop, 0.1), pct(loop, 0.5), pct(loop, 0.9), lmax, pct(fin, 0.5), fmax,
                fmax - lmax, static_cast<double>(first_end - release), sm_max);
    if (k >= 2 && k + 1 < launches.size()) {  // steady state: not the first two, not the last
      periods.push_back(period);
      gaps.push_back(gap);
      stage_med.push_back(pct(stage, 0.5));
      stage_max.push_back(pct(stage, 1.0));
      loop50.push_back(pct(loop, 0.5));
      loop90.push_back(pct(loop, 0.9));
      loopmax.push_back(lmax);
      finmax.push_back(fmax);
      tails.push_back(fmax - lmax);
      first_ends.push_back(static_cast<double>(first_end - release));
      pre.push_back(before_release);
    }
    prev_end = end;
  }
  std::printf("  steady (median over calls 2..%zu): period %.0f, release - prev end %.0f, blocks entered before release %.0f, "
              "stage med %.0f max %.0f, loop end rel p50 %.0f p90 %.0f max %.0f, fin end max %.0f, tail %.0f, first block end %.0f\n\n",
              launches.size() - 2, pct(periods, 0.5), pct(gaps, 0.5), pct(pre, 0.5), pct(stage_med, 0.5), pct(stage_max, 0.5), pct(loop50, 0.5),
              pct(loop90, 0.5), pct(loopmax, 0.5), pct(finmax, 0.5), pct(tails, 0.5), pct(first_ends, 0.5));
}
#endif

}  // namespace

int main(int argc, char** argv) {
  const std::string fmt = argc > 1 ? argv[1] : "w4g128s";
  const std::string raw_dir = argc > 2 ? argv[2] : "";
  cudaStream_t stream = nullptr;
  QMR_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  const qmr::quant::format_spec spec = qmr::quant::parse_format(fmt);
  gpu::gemv_operands io(16, dim, dim, stream);
  const qmr::quant::qtensor q = gpu::random_qtensor(spec, dim, dim);
  std::vector<qc::device_split> w;  // [calls]: 20 x 34.6 MB (w4g128s), far above the 50 MB L2
  w.push_back(qc::upload_split(q.view(), stream));
  for (int i = 1; i < calls; ++i) w.push_back(qc::clone(w[0], stream));
  QMR_CUDA_CHECK(cudaStreamSynchronize(stream));
#if QMR_SPLIT_SHARED_WS
  qc::detail::split_shared_ws = {w[0].work.as<float>(), w[0].counters.as<unsigned>()};  // stop 52: one workspace for all calls
#endif
#ifdef QMR_SPLIT_TRACE
  rec* buf = nullptr;
  unsigned* seq = nullptr;
  QMR_CUDA_CHECK(cudaGetSymbolAddress(reinterpret_cast<void**>(&buf), qc::detail::split_trace_buf));
  QMR_CUDA_CHECK(cudaGetSymbolAddress(reinterpret_cast<void**>(&seq), qc::detail::split_trace_seq));
#endif
  for (const int m : {1, 8, 16}) {
    cudaGraph_t g = nullptr;
    QMR_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    for (int i = 0; i < calls; ++i) qc::gemv_split(w[static_cast<std::size_t>(i)], io.x.as<const f16>(), io.y.as<f16>(), m, stream, true);
    QMR_CUDA_CHECK(cudaStreamEndCapture(stream, &g));
    cudaGraphExec_t exec = nullptr;
    QMR_CUDA_CHECK(cudaGraphInstantiate(&exec, g, 0));
    QMR_CUDA_CHECK(cudaGraphDestroy(g));
    // The graph's time per call, as time_graph measures it (one graph here: each replay
    // reads 692 MB, so the next replay's weights come from DRAM all the same).
    const double s = gpu::time_units(30, calls, stream, [&](int) { QMR_CUDA_CHECK(cudaGraphLaunch(exec, stream)); });
    std::printf("%s M = %d: graph %.2f us per call (median of 30 replays of %d calls)\n", fmt.c_str(), m, s * 1e6, calls);
#ifdef QMR_SPLIT_TRACE
    // One traced replay.
    QMR_CUDA_CHECK(cudaMemsetAsync(seq, 0, sizeof(unsigned), stream));
    QMR_CUDA_CHECK(cudaMemsetAsync(buf, 0, sizeof(rec) * qc::detail::split_trace_cap, stream));
    QMR_CUDA_CHECK(cudaGraphLaunch(exec, stream));
    QMR_CUDA_CHECK(cudaStreamSynchronize(stream));
    unsigned n = 0;
    QMR_CUDA_CHECK(cudaMemcpy(&n, seq, sizeof n, cudaMemcpyDeviceToHost));
    n = std::min<unsigned>(n, qc::detail::split_trace_cap);
    std::vector<rec> rs(n);
    QMR_CUDA_CHECK(cudaMemcpy(rs.data(), buf, sizeof(rec) * n, cudaMemcpyDeviceToHost));
    summarize(rs, m);
    if (!raw_dir.empty()) {
      const std::string path = raw_dir + "/trace_" + fmt + "_m" + std::to_string(m) + "_tail.bin";  // records with gt_half and the tail stamps (since stop 51, call k)
      if (FILE* f = std::fopen(path.c_str(), "wb")) {
        std::fwrite(rs.data(), sizeof(rec), rs.size(), f);
        std::fclose(f);
      }
    }
#else
    static_cast<void>(raw_dir);
#endif
    QMR_CUDA_CHECK(cudaGraphExecDestroy(exec));
  }
  QMR_CUDA_CHECK(cudaStreamDestroy(stream));
  return 0;
}
