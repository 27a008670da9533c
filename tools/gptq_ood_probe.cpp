// Diagnostic for GPTQ on out-of-distribution calibration: token coverage, Hessian statistics, qmr's GPTQ against the
// float64 reference on real Hessians, and the per-linear, end-to-end and answer-token error on math inputs of RTN and
// GPTQ variants (calibration set, damp, act order, tokens). Results: bench/results/qmr-math_gptq_ood_calibration.txt.
// Not built by meson (a one-off study; ~4 min to compile here): from the repository root, with a release build in BUILD,
//   c++ -Iinclude -DNDEBUG -std=c++20 -O2 -DQMR_SIMD_DISPATCH -pthread -o /tmp/gptq_probe tools/gptq_ood_probe.cpp
//       BUILD/tools/dispatch/libqmr_simd_{sse2,avx2,avx512bw,avx512vnni}.a   (one command line)
//   /tmp/gptq_probe MODEL_DIR TEXT_FILE PARTS [CAL:DAMP,...]
// PARTS: letters t (tokens), h (Hessians, ~5 min), q (quantize variants, ~2.5 min each), r (float64 reference).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>
#include <string>
#include <vector>

#include "qmr/io/text_file.hpp"
#include "qmr/quant/calibrate.hpp"
#include "qmr/quant/gptq_reference.hpp"

using namespace qmr;
using namespace qmr::quant;

namespace {

const char* input_names[4] = {"attn_in", "o_in", "mlp_in", "down_in"};

int input_index(model::component c) {
  switch (c) {
    case model::component::attn_norm: return 0;
    case model::component::attn_out: return 1;
    case model::component::mlp_norm: return 2;
    case model::component::mlp_act: return 3;
    default: return -1;
  }
}

// Eigenvalues of a symmetric n x n matrix (row-major), ascending: Householder tridiagonalization then implicit QL.
std::vector<double> eigenvalues(std::vector<double> a, int n) {
  std::vector<double> d(n), e(n);
  auto A = [&](int i, int j) -> double& { return a[static_cast<std::size_t>(i) * n + j]; };
  for (int i = n - 1; i > 0; --i) {
    int l = i - 1;
    double h = 0, scale = 0;
    if (l > 0) {
      for (int k = 0; k <= l; ++k) scale += std::fabs(A(i, k));
      if (scale == 0.0) {
        e[i] = A(i, l);
      } else {
        for (int k = 0; k <= l; ++k) {
          A(i, k) /= scale;
          h += A(i, k) * A(i, k);
        }
        double f = A(i, l);
        double g = f >= 0 ? -std::sqrt(h) : std::sqrt(h);
        e[i] = scale * g;
        h -= f * g;
        A(i, l) = f - g;
        f = 0;
        for (int j = 0; j <= l; ++j) {
          g = 0;
          for (int k = 0; k <= j; ++k) g += A(j, k) * A(i, k);
          for (int k = j + 1; k <= l; ++k) g += A(k, j) * A(i, k);
          e[j] = g / h;
          f += e[j] * A(i, j);
        }
        double hh = f / (h + h);
        for (int j = 0; j <= l; ++j) {
          f = A(i, j);
          e[j] = g = e[j] - hh * f;
          for (int k = 0; k <= j; ++k) A(j, k) -= (f * e[k] + g * A(i, k));
        }
      }
    } else {
      e[i] = A(i, l);
    }
    d[i] = h;
  }
  for (int i = 0; i < n; ++i) d[i] = A(i, i);
  for (int i = 1; i < n; ++i) e[i - 1] = e[i];
  e[n - 1] = 0;
  for (int l = 0; l < n; ++l) {
    int iter = 0, m;
    do {
      for (m = l; m < n - 1; ++m) {
        double dd = std::fabs(d[m]) + std::fabs(d[m + 1]);
        if (std::fabs(e[m]) <= 1e-15 * dd) break;
      }
      if (m != l) {
        if (iter++ == 60) break;
        double g = (d[l + 1] - d[l]) / (2.0 * e[l]);
        double r = std::hypot(g, 1.0);
        g = d[m] - d[l] + e[l] / (g + (g >= 0 ? std::fabs(r) : -std::fabs(r)));
        double s = 1, c = 1, p = 0;
        int i;
        for (i = m - 1; i >= l; --i) {
          double f = s * e[i], b = c * e[i];
          e[i + 1] = (r = std::hypot(f, g));
          if (r == 0.0) {
            d[i + 1] -= p;
            e[m] = 0;
            break;
          }
          s = f / r;
          c = g / r;
          g = d[i + 1] - p;
          r = (d[i] - g) * s + 2.0 * c * b;
          d[i + 1] = g + (p = s * r);
          g = c * r - b;
        }
        if (r == 0.0 && i >= l) continue;
        d[l] -= p;
        e[l] = g;
        e[m] = 0;
      }
    } while (m != l);
  }
  std::sort(d.begin(), d.end());
  return d;
}

// Lower Cholesky in place; false if not positive definite.
bool cholesky(std::vector<double>& a, int n) {
  for (int j = 0; j < n; ++j) {
    double s = a[static_cast<std::size_t>(j) * n + j];
    for (int k = 0; k < j; ++k) s -= a[static_cast<std::size_t>(j) * n + k] * a[static_cast<std::size_t>(j) * n + k];
    if (!(s > 0)) return false;
    const double d = std::sqrt(s);
    a[static_cast<std::size_t>(j) * n + j] = d;
    for (int i = j + 1; i < n; ++i) {
      double t = a[static_cast<std::size_t>(i) * n + j];
      for (int k = 0; k < j; ++k) t -= a[static_cast<std::size_t>(i) * n + k] * a[static_cast<std::size_t>(j) * n + k];
      a[static_cast<std::size_t>(i) * n + j] = t / d;
    }
  }
  return true;
}

// tr(B (A + λI)⁻¹) with λ = damp · mean diag A.
double trace_solve(const std::vector<double>& a, const std::vector<double>& b, int n, double damp) {
  std::vector<double> l = a;
  double mean = 0;
  for (int i = 0; i < n; ++i) mean += a[static_cast<std::size_t>(i) * n + i];
  mean /= n;
  for (int i = 0; i < n; ++i) l[static_cast<std::size_t>(i) * n + i] += damp * mean;
  if (!cholesky(l, n)) return NAN;
  // tr(B A⁻¹) = Σ_j (A⁻¹ B)_jj: solve for each column of B.
  double tr = 0;
  std::vector<double> y(n);
  for (int j = 0; j < n; ++j) {
    for (int i = 0; i < n; ++i) y[i] = b[static_cast<std::size_t>(i) * n + j];
    for (int i = 0; i < n; ++i) {
      double s = y[i];
      for (int k = 0; k < i; ++k) s -= l[static_cast<std::size_t>(i) * n + k] * y[k];
      y[i] = s / l[static_cast<std::size_t>(i) * n + i];
    }
    for (int i = n - 1; i >= 0; --i) {
      double s = y[i];
      for (int k = i + 1; k < n; ++k) s -= l[static_cast<std::size_t>(k) * n + i] * y[k];
      y[i] = s / l[static_cast<std::size_t>(i) * n + i];
    }
    tr += y[j];
  }
  return tr;
}

// Per layer, per linear input: the float model's activations over a calibration set.
struct captured {
  std::vector<std::vector<hessian_accumulator>> h;    // [layer][4]
  std::vector<std::vector<std::vector<float>>> x;     // [layer][4] rows kept (math only)
  std::vector<std::vector<double>> max_abs, sum_sq;   // [layer][4]
  std::vector<std::vector<std::int64_t>> count;       // [layer][4] tokens
};

captured capture(const model::model& m, const calibration_set& cal, bool keep_rows, thread_pool* pool) {
  const auto& c = m.config();
  captured out;
  out.h.resize(c.layers);
  out.x.resize(c.layers, std::vector<std::vector<float>>(4));
  out.max_abs.assign(c.layers, std::vector<double>(4, 0.0));
  out.sum_sq.assign(c.layers, std::vector<double>(4, 0.0));
  out.count.assign(c.layers, std::vector<std::int64_t>(4, 0));
  for (int l = 0; l < c.layers; ++l)
    for (std::int64_t cols : {std::int64_t{c.hidden}, std::int64_t{c.q_dim()}, std::int64_t{c.hidden}, std::int64_t{c.intermediate}})
      out.h[l].emplace_back(cols);
  int len = 0;
  for (const auto& s : cal.samples) len = std::max(len, static_cast<int>(s.size()));
  model::session s(m, len, pool);
  s.set_activation_bits(0);
  s.set_hook([&](const model::activation& a) {
    if (a.layer < 0) return;
    const int k = input_index(a.what);
    if (k < 0) return;
    out.h[a.layer][k].add(a.data, pool);
    for (std::int64_t t = 0; t < a.data.rows; ++t)
      for (std::int64_t j = 0; j < a.data.cols; ++j) {
        const double v = a.data(t, j);
        out.max_abs[a.layer][k] = std::max(out.max_abs[a.layer][k], std::fabs(v));
        out.sum_sq[a.layer][k] += v * v;
      }
    out.count[a.layer][k] += a.data.rows;
    if (keep_rows)
      for (std::int64_t t = 0; t < a.data.rows; ++t) out.x[a.layer][k].insert(out.x[a.layer][k].end(), a.data.row(t), a.data.row(t) + a.data.cols);
  });
  for (const auto& ids : cal.samples) {
    s.reset();
    s.forward(ids, false);
  }
  return out;
}

// Mean next-token NLL over every position of every sample, and the relative logits error against `ref` (if given).
struct e2e {
  double nll = 0, logit_err = 0, kl = 0, agree = 0;
};
e2e end_to_end(const model::model& m, const calibration_set& cal, const std::vector<std::vector<float>>* ref,
               std::vector<std::vector<float>>* keep, thread_pool* pool) {
  int len = 0;
  for (const auto& s : cal.samples) len = std::max(len, static_cast<int>(s.size()));
  model::session s(m, len, pool);
  double nll = 0, d = 0, nrm = 0, kl = 0, agree = 0;
  std::int64_t n = 0, npos = 0;
  for (std::size_t i = 0; i < cal.samples.size(); ++i) {
    const auto& ids = cal.samples[i];
    s.reset();
    const auto lg = s.forward(ids, true);
    for (std::int64_t t = 0; t + 1 < lg.rows; ++t) {
      const float* r = lg.row(t);
      double mx = -1e30;
      for (std::int64_t v = 0; v < lg.cols; ++v) mx = std::max(mx, static_cast<double>(r[v]));
      double z = 0;
      for (std::int64_t v = 0; v < lg.cols; ++v) z += std::exp(r[v] - mx);
      nll += std::log(z) + mx - r[ids[static_cast<std::size_t>(t + 1)]];
      ++n;
    }
    if (ref) {
      const auto& rr = (*ref)[i];
      for (std::int64_t k = 0; k < lg.rows * lg.cols; ++k) {
        const double a = rr[static_cast<std::size_t>(k)], b = lg.data[k];
        d += (a - b) * (a - b);
        nrm += a * a;
      }
      for (std::int64_t t = 0; t < lg.rows; ++t) {
        const float* p = rr.data() + t * lg.cols;
        const float* q = lg.row(t);
        const auto lse = [&](const float* x) {
          double mx = -1e30, z = 0;
          for (std::int64_t v = 0; v < lg.cols; ++v) mx = std::max(mx, static_cast<double>(x[v]));
          for (std::int64_t v = 0; v < lg.cols; ++v) z += std::exp(x[v] - mx);
          return mx + std::log(z);
        };
        const double lp = lse(p), lq = lse(q);
        double klt = 0;
        for (std::int64_t v = 0; v < lg.cols; ++v) klt += std::exp(p[v] - lp) * ((p[v] - lp) - (q[v] - lq));
        kl += klt;
        agree += std::max_element(p, p + lg.cols) - p == std::max_element(q, q + lg.cols) - q;
        ++npos;
      }
    }
    if (keep) keep->emplace_back(lg.data, lg.data + lg.rows * lg.cols);
  }
  return {nll / static_cast<double>(n), ref ? std::sqrt(d / nrm) : 0.0, npos ? kl / npos : 0.0, npos ? agree / npos : 0.0};
}

std::size_t idx(std::int64_t r, std::int64_t c, std::int64_t cols) { return static_cast<std::size_t>(r * cols + c); }

// Teacher-forced answers of eval-style problems: "Question: q\nAnswer:" then " " + answer + EOS (id 0).
// Per answer token, whether the model's argmax is the reference token; a problem whose every answer
// token is argmax-correct is exactly one that greedy decoding reproduces verbatim.
struct answer_set {
  std::vector<std::vector<std::int32_t>> ids;
  std::vector<std::size_t> prompt_len;
  std::vector<int> level;
};
answer_set make_answers(const text::tokenizer& tok, std::size_t n, std::uint64_t seed) {
  eval::synth_options o;
  o.seed = seed;
  answer_set a;
  for (const auto& p : eval::make_problems(n, o)) {
    const std::string prompt = "Question: " + p.question + "\nAnswer:";
    auto ids = tok.encode(prompt + " " + p.answer);
    ids.push_back(0);
    a.prompt_len.push_back(tok.encode(prompt).size());
    a.ids.push_back(std::move(ids));
    a.level.push_back(p.level);
  }
  return a;
}
struct answer_score {
  double token_acc = 0, exact = 0;
  double exact_by_level[6] = {0, 0, 0, 0, 0, 0};
};
answer_score score_answers(const model::model& m, const answer_set& a, thread_pool* pool) {
  answer_score r;
  std::int64_t tokens = 0, right = 0;
  int count_level[6] = {0, 0, 0, 0, 0, 0};
  for (std::size_t i = 0; i < a.ids.size(); ++i) {
    const auto& ids = a.ids[i];
    model::session s(m, static_cast<int>(ids.size()), pool);
    const auto lg = s.forward(ids, true);
    bool all = true;
    for (std::size_t t = a.prompt_len[i] - 1; t + 1 < ids.size(); ++t) {
      const float* row = lg.row(static_cast<std::int64_t>(t));
      const bool ok = std::max_element(row, row + lg.cols) - row == ids[t + 1];
      right += ok;
      ++tokens;
      all = all && ok;
    }
    r.exact += all;
    r.exact_by_level[a.level[i]] += all;
    ++count_level[a.level[i]];
  }
  r.token_acc = static_cast<double>(right) / static_cast<double>(tokens);
  r.exact /= static_cast<double>(a.ids.size());
  for (int l = 1; l <= 5; ++l) r.exact_by_level[l] = count_level[l] ? r.exact_by_level[l] / count_level[l] : 0;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s MODEL_DIR TEXT_FILE [parts]\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1], text_file = argv[2], parts = argc > 3 ? argv[3] : "thqr";
  thread_pool pool(2);
  const auto tok = text::tokenizer::load(std::filesystem::path(dir) / "tokenizer.json");
  const std::string text = io::read_text_file(text_file);
  const calibration_set text_cal = calibration_from_text(tok, text, 48, 256, "text");
  const calibration_set synth_cal = calibration_from_synth(tok, 48, 256, 5);
  const calibration_set math = calibration_from_synth(tok, 8, 256, 2000);  // held out: not 1-5, not 1000
  auto m0 = model::model::load(dir);
  const auto& c = m0.config();

  if (parts.find('t') != std::string::npos) {
    const std::vector<std::int32_t> text_ids = tok.encode(text);
    const calibration_set big = calibration_from_synth(tok, 400, 256, 7);
    std::vector<std::int64_t> freq(static_cast<std::size_t>(c.vocab), 0);
    for (const auto& s : big.samples)
      for (auto id : s) ++freq[static_cast<std::size_t>(id)];
    std::int64_t unseen = 0, rare = 0;
    std::map<std::int32_t, std::int64_t> unseen_ids;
    for (auto id : text_ids) {
      unseen += freq[static_cast<std::size_t>(id)] == 0;
      rare += freq[static_cast<std::size_t>(id)] < 10;
      if (freq[static_cast<std::size_t>(id)] == 0) ++unseen_ids[id];
    }
    std::int64_t vocab_unseen = 0;
    for (auto f : freq) vocab_unseen += f == 0;
    const auto emb = m0.linear_f32(m0.weights().embed);  // [vocab, hidden]
    const auto norm = [&](std::int32_t id) {
      double s = 0;
      for (int j = 0; j < c.hidden; ++j) s += emb[static_cast<std::size_t>(id) * c.hidden + j] * emb[static_cast<std::size_t>(id) * c.hidden + j];
      return std::sqrt(s);
    };
    double seen_norm = 0, unseen_norm = 0;
    std::int64_t ns = 0, nu = 0;
    for (std::int32_t id = 0; id < c.vocab; ++id) {
      if (freq[static_cast<std::size_t>(id)] > 0) seen_norm += norm(id), ++ns;
      else unseen_norm += norm(id), ++nu;
    }
    double text_norm = 0;
    for (auto id : text_ids) text_norm += norm(id);
    std::printf("tokens: text file %zu tokens (%.2f bytes/token); math stream %lld tokens\n", text_ids.size(),
                static_cast<double>(text.size()) / text_ids.size(), static_cast<long long>(big.tokens()));
    std::printf("tokens: vocab %d, ids never seen in 102400 math tokens: %lld (mean embedding norm %.3f vs %.3f seen)\n", c.vocab,
                static_cast<long long>(vocab_unseen), nu ? unseen_norm / nu : 0.0, ns ? seen_norm / ns : 0.0);
    std::printf("tokens: text tokens whose id never occurs in math: %.1f%%, occurs < 10 times: %.1f%%; mean embedding norm of text tokens %.3f\n",
                100.0 * unseen / text_ids.size(), 100.0 * rare / text_ids.size(), text_norm / text_ids.size());
    std::printf("tokens: most common unseen ids in text:");
    std::vector<std::pair<std::int64_t, std::int32_t>> top;
    for (auto [id, k] : unseen_ids) top.push_back({k, id});
    std::sort(top.rbegin(), top.rend());
    for (std::size_t i = 0; i < std::min<std::size_t>(12, top.size()); ++i)
      std::printf(" '%s'x%lld", tok.decode_token(top[i].second).c_str(), static_cast<long long>(top[i].first));
    std::printf("\n");
    std::fflush(stdout);
  }

  if (parts.find('h') != std::string::npos) {
    std::printf("\nHessian H = 2/n XᵀX of each linear input, float model (no propagation), %lld text / %lld synth / %lld math tokens\n",
                static_cast<long long>(text_cal.tokens()), static_cast<long long>(synth_cal.tokens()), static_cast<long long>(math.tokens()));
    std::printf("%-3s %-8s %5s | %10s %10s %10s | %8s %8s | %9s %9s | %9s %9s %9s | %9s %9s\n", "L", "input", "cols", "rms_text", "rms_synth", "rms_math",
                "max_txt", "max_math", "rank_txt", "rank_syn", "eig<1%txt", "eig<1%syn", "cond_txt", "Mtxt(.01)", "Msyn(.01)");
    const captured ct = capture(m0, text_cal, false, &pool);
    const captured cs = capture(m0, synth_cal, false, &pool);
    const captured cm = capture(m0, math, false, &pool);
    for (int l = 0; l < c.layers; ++l)
      for (int k = 0; k < 4; ++k) {
        const int n = static_cast<int>(ct.h[l][k].cols());
        const auto ht = ct.h[l][k].hessian(), hs = cs.h[l][k].hessian(), hm = cm.h[l][k].hessian();
        const auto et = eigenvalues(ht, n), es = eigenvalues(hs, n);
        double mt = 0, ms = 0;
        for (int i = 0; i < n; ++i) mt += ht[static_cast<std::size_t>(i) * n + i], ms += hs[static_cast<std::size_t>(i) * n + i];
        mt /= n, ms /= n;
        int rt = 0, rs = 0, wt = 0, ws = 0;
        for (double v : et) rt += v > 1e-9 * et.back(), wt += v < 0.01 * mt;
        for (double v : es) rs += v > 1e-9 * es.back(), ws += v < 0.01 * ms;
        // M = tr(H_math (H_cal + λI)⁻¹) / tr(H_cal (H_cal + λI)⁻¹): how large math inputs are in the metric GPTQ
        // uses (1 = as large as the calibration inputs themselves).
        const double mtxt = trace_solve(ht, hm, n, 0.01) / trace_solve(ht, ht, n, 0.01);
        const double msyn = trace_solve(hs, hm, n, 0.01) / trace_solve(hs, hs, n, 0.01);
        const auto rms = [&](const captured& cc) { return std::sqrt(cc.sum_sq[l][k] / (static_cast<double>(cc.count[l][k]) * n)); };
        std::printf("%-3d %-8s %5d | %10.4f %10.4f %10.4f | %8.2f %8.2f | %9d %9d | %9d %9d %9.2e | %9.2f %9.2f\n", l, input_names[k], n, rms(ct), rms(cs), rms(cm),
                    ct.max_abs[l][k], cm.max_abs[l][k], rt, rs, wt, ws, et.back() / std::max(et.front(), 1e-300), mtxt, msyn);
        std::fflush(stdout);
      }
  }

  if (parts.find('q') != std::string::npos) {
    const precision_plan plan = precision_plan::uniform(parse_format("w2g64"));
    const captured cm = capture(m0, math, true, &pool);
    std::vector<std::vector<float>> ref_logits;
    const e2e f_math = end_to_end(m0, math, nullptr, &ref_logits, &pool);
    calibration_set text_eval;  // text windows for the NLL on text
    text_eval.samples.assign(text_cal.samples.begin(), text_cal.samples.begin() + 8);
    std::vector<std::vector<float>> ref_text;
    const e2e f_text = end_to_end(m0, text_eval, nullptr, &ref_text, &pool);
    const answer_set answers = make_answers(tok, 220, 1000);
    const answer_score fa = score_answers(m0, answers, &pool);
    std::printf("\nfloat model: math NLL %.4f, text NLL %.4f (all positions); answers (220 problems of seed 1000, teacher-forced): token acc %.4f, greedy-verbatim %.3f\n", f_math.nll, f_text.nll, fa.token_acc, fa.exact);
    const calibration_set text12 = calibration_from_text(tok, text, 12, 256, "text 12x256");
    struct variant {
      std::string name;
      method how;
      const calibration_set* cal;
      double damp;
      bool act_order, propagate;
    };
    const std::vector<variant> variants = {
        {"rtn", method::rtn, nullptr, 0.01, true, true},
        {"gptq text 48x256 d.01", method::gptq, &text_cal, 0.01, true, true},
        {"gptq synth 48x256 d.01", method::gptq, &synth_cal, 0.01, true, true},
        {"gptq text 48x256 d.1", method::gptq, &text_cal, 0.1, true, true},
        {"gptq text 48x256 d1", method::gptq, &text_cal, 1.0, true, true},
        {"gptq text 48x256 noact", method::gptq, &text_cal, 0.01, false, true},
        {"gptq text 12x256 d.01", method::gptq, &text12, 0.01, true, true},
        {"gptq synth 48x256 d.1", method::gptq, &synth_cal, 0.1, true, true},
        {"gptq text 48x256 floatprop", method::gptq, &text_cal, 0.01, true, false},
        {"gptq text 48x256 d10", method::gptq, &text_cal, 10.0, true, true},
    };
    // argv[4]: instead of the list above, comma-separated CAL:DAMP items (CAL text or synth, 48x256, act order).
    std::vector<variant> chosen = variants;
    if (argc > 4) {
      chosen.clear();
      std::string list = argv[4];
      for (std::size_t a = 0; a < list.size();) {
        std::size_t b = list.find(',', a);
        if (b == std::string::npos) b = list.size();
        const std::string item = list.substr(a, b - a);
        const std::size_t colon = item.find(':');
        const std::string cal = item.substr(0, colon);
        const double damp = std::stod(item.substr(colon + 1));
        chosen.push_back({"gptq " + cal + " 48x256 d" + item.substr(colon + 1), method::gptq, cal == "text" ? &text_cal : &synth_cal, damp, true, true});
        a = b + 1;
      }
    }
    for (const variant& v : chosen) {
      auto m = model::model::load(dir);
      model_quant_options o;
      o.how = v.how;
      o.gptq.damp = v.damp;
      o.gptq.act_order = v.act_order;
      o.propagate_quantized = v.propagate;
      model_quant_report rep;
      try {
        rep = quantize_model(m, plan, o, v.cal, &pool);
      } catch (const error& e) {
        std::printf("%s: %s\n", v.name.c_str(), e.what());
        continue;
      }
      // Per-linear relative output error on the float model's math activations.
      std::vector<double> per_layer(c.layers, 0.0);
      double sum = 0, cal_sum = 0, cal_rtn = 0;
      int cnt = 0;
      std::string detail;
      for (int l = 0; l < c.layers; ++l) {
        model::layer_weights& lw = m.layer(l);
        const model::linear_weight* ws[7] = {&lw.q, &lw.k, &lw.v, &lw.o, &lw.gate, &lw.up, &lw.down};
        const int in_of[7] = {0, 0, 0, 1, 2, 2, 3};
        auto m_orig = model::model::load(dir);
        model::layer_weights& ow = m_orig.layer(l);
        const model::linear_weight* os[7] = {&ow.q, &ow.k, &ow.v, &ow.o, &ow.gate, &ow.up, &ow.down};
        double lsum = 0;
        for (int i = 0; i < 7; ++i) {
          const auto& x = cm.x[l][in_of[i]];
          const std::int64_t cols = ws[i]->cols, rows = ws[i]->rows, tokens = static_cast<std::int64_t>(x.size()) / cols;
          const auto q = m.linear_f32(*ws[i]);
          const auto w = m_orig.linear_f32(*os[i]);
          const matrix_view<const float> xv(x.data(), tokens, cols);
          const auto yq = detail::dense_product(xv, q, rows, cols, &pool);
          const auto yw = detail::dense_product(xv, w, rows, cols, &pool);
          const auto [d, nn] = detail::diff_norms(yw, yq);
          const double err = std::sqrt(d / nn);
          lsum += err;
          sum += err;
          ++cnt;
        }
        per_layer[l] = lsum / 7;
      }
      for (const auto& t : rep.tensors)
        if (t.output_error >= 0) cal_sum += t.output_error, cal_rtn += t.rtn_output_error;
      const e2e em = end_to_end(m, math, &ref_logits, nullptr, &pool);
      const answer_score as = score_answers(m, answers, &pool);
      std::printf("%-28s answers: token acc %.4f (errors %.2f%%) greedy-verbatim %.3f by level %.2f %.2f %.2f %.2f %.2f\n", v.name.c_str(), as.token_acc,
                  100 * (1 - as.token_acc), as.exact, as.exact_by_level[1], as.exact_by_level[2], as.exact_by_level[3], as.exact_by_level[4], as.exact_by_level[5]);
      const e2e et = end_to_end(m, text_eval, &ref_text, nullptr, &pool);
      std::printf("%-28s math: out_err %.4f KL %.4f top1 %.4f logit_err %.3f | text: out_err(calib) %.4f KL %.4f top1 %.4f | per layer on math:",
                  v.name.c_str(), sum / cnt, em.kl, em.agree, em.logit_err, v.cal ? cal_sum / cnt : NAN, et.kl, et.agree);
      for (double e : per_layer) std::printf(" %.3f", e);
      std::printf("\n");
      std::fflush(stdout);
    }
  }
  if (parts.find('r') != std::string::npos) {
    // The float64 reference (tests/quant/test_gptq.cpp) on real text-calibrated Hessians.
    const captured ct = capture(m0, text_cal, false, &pool);
    const format_spec spec = parse_format("w2g64");
    for (int l : {0, 5, 9})
      for (int i : {0, 6}) {
        model::layer_weights& lw = m0.layer(l);
        const model::linear_weight& wt = i == 0 ? lw.q : lw.down;
        const int k = i == 0 ? 0 : 3;
        const auto h = ct.h[l][k].hessian();
        const auto w = m0.linear_f32(wt);
        for (double damp : {0.01, 0.1}) {
          gptq_options opt;
          opt.damp = damp;
          gptq_report rep;
          const qtensor q = quantize_gptq({w.data(), wt.rows, wt.cols}, h, spec, opt, &pool, wt.name, &rep);
          const auto ref = qmr::quant::ref::gptq_reference(w, wt.rows, wt.cols, h, spec, true, damp);
          std::int64_t codes = 0, vals = 0;
          double worst = 0;
          for (std::int64_t r = 0; r < wt.rows; ++r)
            for (std::int64_t cc = 0; cc < wt.cols; ++cc) {
              const double diff = std::fabs(static_cast<double>(q.view().value(r, cc)) - ref.values[idx(r, cc, wt.cols)]);
              codes += q.view().code(r, cc) != ref.codes[idx(r, cc, wt.cols)];
              vals += diff > 1e-4 * std::max(1.0, std::fabs(static_cast<double>(w[idx(r, cc, wt.cols)])));
              worst = std::max(worst, diff);
            }
          std::printf("reference L%d %s damp %.2f: damp_used %.4f dead %lld, codes differing %lld, values beyond 1e-4 %lld of %lld, worst %.2e; proxy loss %.4g vs RTN %.4g\n",
                      l, wt.name.c_str(), damp, rep.damp_used, static_cast<long long>(rep.dead_columns), static_cast<long long>(codes),
                      static_cast<long long>(vals), static_cast<long long>(wt.rows * wt.cols), worst, rep.proxy_loss, rep.rtn_proxy_loss);
          std::fflush(stdout);
        }
      }
  }
  return 0;
}
