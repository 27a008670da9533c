// Calibrated quantization of a whole model: a precision plan applied by RTN, GPTQ, AWQ or SmoothQuant+RTN, layer by layer,
// each layer calibrated on the outputs of the already-quantized layers before it; and the calibration sets it reads.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../core/thread_pool.hpp"
#include "../eval/loglikelihood.hpp"
#include "../eval/synth.hpp"
#include "../io/json_file.hpp"
#include "../io/text_file.hpp"
#include "../kernels/simd/dispatch.hpp"
#include "../model/forward.hpp"
#include "../model/generate.hpp"
#include "../text/tokenizer.hpp"
#include "act_quant.hpp"
#include "awq.hpp"
#include "gptq.hpp"
#include "hessian.hpp"
#include "plan.hpp"
#include "quantize_checkpoint.hpp"
#include "rtn.hpp"

// How a model is quantized (quantize_model):
//
//   X_0 = embeddings of the calibration samples              [samples][len, hidden]
//   for each layer l:
//     run layer l (as the plan left it so far: still in its stored precision) over X_l, and
//       accumulate per input of its linears (attn_norm -> q,k,v; attn_out -> o; mlp_norm ->
//       gate,up; mlp_act -> down): GPTQ's Hessian 2XᵀX/n, mean|x| and max|x| per channel, and
//       an evenly strided sample of at most `sample_tokens` rows (AWQ's search, error report);
//     AWQ / SmoothQuant: per-channel scales s for each scaling pair, folded so that the
//       layer computes the same function (norm /= s and W[:, j] *= s; up rows /= s and
//       down[:, j] *= s; v rows /= s and o[:, j] *= s when v and o have matching widths);
//     quantize each linear to its planned format (GPTQ with its Hessian, AWQ's clip search
//       then RTN, or RTN) and measure its output error on the sample;
//     X_{l+1} = layer l, now quantized, over X_l.
//
// Memory: the residual stream of the calibration set (samples × len × hidden floats, 235 MB
// for 128 × 512 tokens of a 896-wide model), one Hessian per distinct linear input of the
// current layer ([cols, cols] doubles) and the samples — never every activation of every
// layer. Within a layer all four inputs are captured in one pass of the unquantized layer
// (not GPTQ's "true sequential" order, which would rerun the layer after q/k/v are quantized):
// a layer's inputs come from quantized earlier layers, its internal ones from itself in full
// precision. The embedding and the output head are quantized by RTN when the plan asks.

namespace qmr::quant {

enum class method { rtn, gptq, awq, smoothquant };

inline const char* method_name(method m) {
  switch (m) {
    case method::rtn: return "rtn";
    case method::gptq: return "gptq";
    case method::awq: return "awq";
    case method::smoothquant: return "sq";
  }
  return "?";
}

// "rtn", "gptq", "awq", "sq" (SmoothQuant migration, then RTN); anything else is an error.
inline method parse_method(std::string_view text) {
  if (text == "rtn") return method::rtn;
  if (text == "gptq") return method::gptq;
  if (text == "awq") return method::awq;
  if (text == "sq" || text == "smoothquant") return method::smoothquant;
  throw error("method '" + std::string(text) + "': expected rtn, gptq, awq or sq");
}

inline bool needs_calibration(method m) { return m != method::rtn; }

// The producer -> consumer pairs that AWQ and SmoothQuant migrate scales across
// (consumer columns times s, producer divided by s): input norm -> q/k/v ("qkv"),
// v -> o ("o", only without GQA sharing), post-attention norm -> gate/up ("gate_up"),
// up -> down ("down"). All four by default, as AWQ's reference code does. The
// norm-fed pairs see the residual stream, whose outlier channels are a property of
// the model; o's and down's inputs are computed per token from the attention and
// the MLP, so scales fitted on unlike calibration data transfer worst there (on the
// bundled model, generic-text AWQ at w2g64 with down's pair alone: 34.9% against
// RTN's 55.6%; bench/results/qmr-math_awq_pairs_text_calibration_s39.txt).
struct scale_pairs {
  bool qkv = true, o = true, gate_up = true, down = true;

  bool any() const { return qkv || o || gate_up || down; }
  // "all", "norm" (qkv,gate_up), "none", or a comma-separated list of qkv, o, gate_up, down.
  static scale_pairs parse(std::string_view text) {
    if (text == "all") return {};
    if (text == "none") return {false, false, false, false};
    if (text == "norm") return {true, false, true, false};
    scale_pairs p{false, false, false, false};
    for (const std::string& item : detail::split_on(text, ',')) {
      bool* slot = item == "qkv" ? &p.qkv : item == "o" ? &p.o : item == "gate_up" ? &p.gate_up : item == "down" ? &p.down : nullptr;
      if (!slot)
        throw error("scale pairs '" + std::string(text) + "': '" + item + "' is not one of qkv, o, gate_up, down (or all, norm, none)");
      if (*slot) throw error("scale pairs '" + std::string(text) + "': '" + item + "' given twice");
      *slot = true;
    }
    return p;
  }
  std::string str() const {
    if (qkv && o && gate_up && down) return "all";
    if (!any()) return "none";
    std::string s;
    for (const auto& [on, name] : {std::pair{qkv, "qkv"}, std::pair{o, "o"}, std::pair{gate_up, "gate_up"}, std::pair{down, "down"}})
      if (on) s += (s.empty() ? "" : ",") + std::string(name);
    return s;
  }
};

// ---------------------------------------------------------------------------------------------
// Calibration sets: token sequences of equal length.

struct calibration_set {
  std::vector<std::vector<std::int32_t>> samples;  // [n][len]
  std::string source;                               // what they were made from, for reports

  std::int64_t tokens() const {
    std::int64_t t = 0;
    for (const auto& s : samples) t += static_cast<std::int64_t>(s.size());
    return t;
  }
};

namespace detail {

// The most calibration tokens (n * len) qmr builds a set of: 1 GiB of token ids, and far more than
// any quantizer can use (the residual stream it runs is n * len * hidden floats: 64 GiB at hidden 64).
// Without the bound, --calib-n 1048576 --calib-len 1048576 made the synthetic and random sets
// allocate until std::bad_alloc (or the OOM killer) ended the run.
inline constexpr std::int64_t max_calibration_tokens = std::int64_t{1} << 28;

inline void check_calibration_size(int n, int len) {
  check(n > 0 && len > 0, "calibration needs a positive sample count and length, got --calib-n " + std::to_string(n) +
                              " and --calib-len " + std::to_string(len));
  const std::int64_t tokens = static_cast<std::int64_t>(n) * len;
  check(tokens <= max_calibration_tokens, std::to_string(n) + " calibration samples of " + std::to_string(len) +
                                              " tokens are " + std::to_string(tokens) + " tokens, above qmr's limit of " +
                                              std::to_string(max_calibration_tokens) + " (lower --calib-n or --calib-len)");
}

// n windows of len tokens from one token stream, evenly spread over it (consecutive when the
// stream holds exactly n*len); an error when the stream is shorter than n*len.
inline calibration_set windows_of(const std::vector<std::int32_t>& stream, int n, int len, const std::string& source) {
  check_calibration_size(n, len);
  const std::int64_t need = static_cast<std::int64_t>(n) * len;
  if (static_cast<std::int64_t>(stream.size()) < need)
    throw error(source + ": " + std::to_string(stream.size()) + " tokens, but " + std::to_string(n) + " samples of " +
                std::to_string(len) + " need " + std::to_string(need) + " (lower --calib-n or --calib-len)");
  calibration_set c;
  c.source = source;
  // Start offsets spread evenly so the set covers the whole text, not just its beginning.
  const std::int64_t slack = static_cast<std::int64_t>(stream.size()) - need;
  for (int i = 0; i < n; ++i) {
    const std::int64_t start = static_cast<std::int64_t>(i) * len + (n > 1 ? slack * i / (n - 1) : 0);
    c.samples.emplace_back(stream.begin() + start, stream.begin() + start + len);
  }
  return c;
}

}  // namespace detail

// From a text file: the whole file tokenized, cut into n windows of len tokens.
inline calibration_set calibration_from_text(const text::tokenizer& tok, const std::string& text, int n, int len,
                                             const std::string& source) {
  return detail::windows_of(tok.encode(text), n, len, source);
}

// From a JSONL file: each line's "text" field, or "question" and "answer" in the bundled model's
// prompt format, joined by newlines, then windowed like a text file. A bad line is an error
// naming file:line.
inline calibration_set calibration_from_jsonl(const text::tokenizer& tok, const std::string& content, int n, int len,
                                              const std::string& source) {
  std::string joined;
  std::size_t start = 0;
  int line_no = 0;
  while (start < content.size()) {
    std::size_t end = content.find('\n', start);
    if (end == std::string::npos) end = content.size();
    const std::string_view line(content.data() + start, end - start);
    start = end + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    // io::parse_json: nlohmann alone would stop at a NUL byte and silently drop the rest of the line.
    const nlohmann::json j = io::parse_json(line, source + ":" + std::to_string(line_no));
    if (j.is_object() && j.contains("text") && j["text"].is_string()) {
      joined += j["text"].get<std::string>();
    } else if (j.is_object() && j.contains("question") && j["question"].is_string() && j.contains("answer") &&
               j["answer"].is_string()) {
      joined += "Question: " + j["question"].get<std::string>() + "\nAnswer: " + j["answer"].get<std::string>();
    } else {
      throw error(source + ":" + std::to_string(line_no) +
                  ": expected an object with a string \"text\", or \"question\" and \"answer\"");
    }
    joined += "\n";
  }
  return detail::windows_of(tok.encode(joined), n, len, source);
}

// From the synthetic generator (all types and levels), in the bundled model's prompt format,
// problems joined until n*len tokens exist. The seed must differ from evaluation seeds.
inline calibration_set calibration_from_synth(const text::tokenizer& tok, int n, int len, std::uint64_t seed) {
  detail::check_calibration_size(n, len);  // before generating problems until n * len tokens exist
  eval::synth_options o;
  o.seed = seed;
  std::vector<std::int32_t> stream;
  const std::int64_t need = static_cast<std::int64_t>(n) * len;
  // Problems are ~60-150 tokens; draw in batches until the stream is long enough.
  std::size_t batch = static_cast<std::size_t>(std::max<std::int64_t>(64, need / 60));
  std::size_t taken = 0;
  while (static_cast<std::int64_t>(stream.size()) < need) {
    const auto problems = eval::make_problems(taken + batch, o);  // deterministic by seed, independent of n
    for (std::size_t i = taken; i < problems.size(); ++i) {
      const auto ids = tok.encode("Question: " + problems[i].question + "\nAnswer: " + problems[i].answer + "\n");
      stream.insert(stream.end(), ids.begin(), ids.end());
    }
    taken = problems.size();
    batch *= 2;
  }
  return detail::windows_of(stream, n, len, "synthetic (seed " + std::to_string(seed) + ")");
}

// Uniformly random token ids: for random-weight models (timing, tests), which have no text to read.
inline calibration_set calibration_random(std::int32_t vocab, int n, int len, std::uint64_t seed) {
  check(vocab > 0, "calibration needs a positive vocabulary size");
  detail::check_calibration_size(n, len);
  std::uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1;  // splitmix64: the same ids on every platform
  const auto next = [&state] {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
  calibration_set c;
  c.source = "random ids (seed " + std::to_string(seed) + ")";
  for (int i = 0; i < n; ++i) {
    c.samples.emplace_back(static_cast<std::size_t>(len));
    for (auto& t : c.samples.back()) t = static_cast<std::int32_t>(next() % static_cast<std::uint64_t>(vocab));
  }
  return c;
}

// Self-generated ("data-free") calibration: n sequences of len tokens sampled from the model
// itself at temperature 1 (top-p 1, so from its whole distribution), each started from its
// document token (BOS, or else its first end-of-text token, the separator it saw between
// documents) and continued past any end of text, so that the set follows what the model
// itself expects to read and needs no data. Sample i is seeded by (seed, i): the same set on
// every run and thread count. `start`: the document token; `pool` runs each sample's matmuls.
inline calibration_set calibration_self(const model::model& m, std::int32_t start, int n, int len, std::uint64_t seed,
                                        thread_pool* pool = nullptr) {
  detail::check_calibration_size(n, len);
  check(len >= 2, "self-generated calibration needs samples of 2 tokens or more, got " + std::to_string(len));
  check(start >= 0 && start < m.config().vocab,
        "self-generated calibration: start token " + std::to_string(start) + " is outside the vocabulary of " + std::to_string(m.config().vocab));
  check(m.config().max_positions == 0 || len <= m.config().max_positions,
        "self-generated calibration: samples of " + std::to_string(len) + " tokens exceed the model's " +
            std::to_string(m.config().max_positions) + " positions");
  calibration_set c;
  c.source = "self-generated (seed " + std::to_string(seed) + ", from token " + std::to_string(start) + ")";
  for (int i = 0; i < n; ++i) {
    model::session s(m, len, pool);
    model::sampling_options o;
    o.temperature = 1.0f;
    o.seed = seed * 1000003ull + static_cast<std::uint64_t>(i);  // distinct streams per sample, fixed by (seed, i)
    o.max_tokens = len - 1;
    const std::int32_t prompt[] = {start};
    const model::generation g = model::generate(s, prompt, o);
    std::vector<std::int32_t> sample = {start};
    sample.insert(sample.end(), g.tokens.begin(), g.tokens.end());
    check(static_cast<int>(sample.size()) == len, "self-generated calibration: sample " + std::to_string(i) + " stopped at " +
                                                      std::to_string(sample.size()) + " of " + std::to_string(len) + " tokens");
    c.samples.push_back(std::move(sample));
  }
  return c;
}

// ---------------------------------------------------------------------------------------------

struct model_quant_options {
  method how = method::rtn;
  rtn_options rtn;
  gptq_options gptq;
  awq_options awq;
  float smooth_alpha = 0.5f;           // SmoothQuant migration strength (method sq)
  scale_pairs pairs;                   // where AWQ and SmoothQuant migrate scales (see scale_pairs)
  std::int64_t sample_tokens = 4096;   // rows kept per linear input for AWQ's search and the error report
  // true (GPTQ's way): layer l+1 is calibrated on the outputs of layer l as quantized, which
  // costs a second pass of each layer; false: on layer l's full-precision outputs, captured in
  // the same pass (AWQ's reference code does this), half the forward work.
  bool propagate_quantized = true;
};

struct tensor_quant_report {
  std::string name;
  int layer = -1;
  std::string format;  // what it is now ("w4g128", "bf16", ...)
  std::string method;  // "gptq", "awq", "rtn", "sq", "keep", "convert"
  // Relative output error ||X Wᵀ − X' Qᵀ||_F / ||X Wᵀ||_F on the calibration sample (X' the input
  // the quantized layer sees after scale folding); -1 without calibration.
  double output_error = -1;
  double rtn_output_error = -1;  // the same for plain RTN of the original weight, for comparison
  double weight_error = 0;       // ||W − Q_eff||_F / ||W||_F of the effective weight
  double seconds = 0;
};

// How well the unquantized model predicts its own calibration tokens: the mean next-token NLL over
// the first positions of the set, beside ln(vocab), the NLL of a uniform guess. GPTQ and AWQ fit
// every layer to the activations of these tokens (GPTQ moves each column's rounding error into the
// input directions they leave quiet), so on a set far from what the model was trained on the layers
// can come out worse than RTN on the model's own inputs. A model that predicts its calibration set
// worse than a uniform guess is such a case. Measured on the bundled math model (vocab 1024, ln =
// 6.93) over the first 512 positions: synthetic math 4.0 nats/token, data/calibration/generic_text.txt
// 12.0. GPTQ w2g64 calibrated on that text scores 11.3% on 550 synthetic problems, RTN 55.6%, GPTQ
// on synthetic math 87.6% (bench/results/qmr-math_gptq_ood_calibration.txt has the analysis).
struct calibration_fit {
  double nll = 0;              // mean next-token negative log-likelihood, nats per token
  double uniform_nll = 0;      // ln(vocab)
  std::int64_t positions = 0;  // predictions averaged (0: not measured)

  bool measured() const { return positions > 0; }
  // Worse than a uniform guess: the set is far from the model's training distribution.
  bool far_from_model() const { return measured() && nll > uniform_nll; }
};

// calibration_fit of `m` (as it is now: measure before quantizing) over the first max_positions + 1
// tokens of `c`, sample by sample; logits are computed 64 positions at a time ([64, vocab] floats).
inline calibration_fit measure_calibration_fit(const model::model& m, const calibration_set& c,
                                               std::int64_t max_positions = 512, thread_pool* pool = nullptr) {
  calibration_fit fit;
  const std::int32_t vocab = m.config().vocab;
  fit.uniform_nll = std::log(static_cast<double>(vocab));
  double sum = 0;
  constexpr std::int64_t chunk = 64;
  for (const auto& ids : c.samples) {
    if (fit.positions >= max_positions) break;
    const std::int64_t n = std::min<std::int64_t>(static_cast<std::int64_t>(ids.size()), max_positions - fit.positions + 1);
    if (n < 2) continue;
    model::session s(m, static_cast<int>(n), pool);
    s.set_activation_bits(0);
    for (std::int64_t t0 = 0; t0 + 1 < n; t0 += chunk) {
      const std::int64_t t1 = std::min(n - 1, t0 + chunk);  // positions [t0, t1) predict tokens t0 + 1 .. t1
      const auto logits = s.forward(std::span<const std::int32_t>(ids.data() + t0, static_cast<std::size_t>(t1 - t0)), true);
      for (std::int64_t t = 0; t < logits.rows; ++t) {
        const std::int32_t next = ids[static_cast<std::size_t>(t0 + t + 1)];
        check(next >= 0 && next < vocab, "calibration token id " + std::to_string(next) + " is outside the vocabulary of " +
                                             std::to_string(vocab));
        sum -= eval::detail::log_softmax_at(logits.row(t), vocab, next, nullptr);
      }
      fit.positions += logits.rows;
    }
  }
  fit.nll = fit.positions > 0 ? sum / static_cast<double>(fit.positions) : 0;
  return fit;
}

struct model_quant_report {
  std::vector<tensor_quant_report> tensors;
  std::string method, plan, calibration;
  std::int64_t calibration_tokens = 0;
  calibration_fit fit;  // of the calibration set, measured for the calibrated methods (gptq, awq, sq)
  double gptq_damp = 0;  // gptq_options::damp asked for (gptq only)
  std::string scale_pairs;  // scale_pairs::str() of the migrated pairs (awq and sq only)
  bool awq_clip = false;    // awq_options::clip_search (awq only)
  int activation_bits = 0;  // what inference should quantize linear inputs to (recorded, not applied here)
  double seconds = 0;
};

// Called as each layer moves through its stages ("capture", "quantize", "propagate"), and once
// more with layer == layers when the layers are done.
using layer_progress_fn = std::function<void(int layer, int layers, const std::string& stage)>;

namespace detail {

// Statistics of one linear input over the calibration tokens.
struct input_stats {
  std::int64_t cols = 0;
  std::optional<hessian_accumulator> hessian;  // GPTQ only
  bool channel_stats = true;                   // abs_sum and abs_max kept (AWQ, SmoothQuant)
  std::vector<double> abs_sum;                 // [cols] Σ|x|, zero without channel_stats
  std::vector<float> abs_max;                  // [cols] max|x|, zero without channel_stats
  std::int64_t tokens = 0;
  std::int64_t stride = 1, max_rows = 0;
  std::vector<float> sample;  // [rows, cols], every stride-th token
  // GPTQ: H [cols, cols] and its factor, made for the first linear quantized on this input
  // and reused by the others that read it (q/k/v, gate/up); released after the layer's linears.
  std::vector<double> h;
  std::optional<gptq_factor> factor;

  input_stats(std::int64_t c, bool with_hessian, bool with_channel_stats, std::int64_t total_tokens,
              std::int64_t sample_rows)
      : cols(c), channel_stats(with_channel_stats), abs_sum(static_cast<std::size_t>(c), 0.0),
        abs_max(static_cast<std::size_t>(c), 0.0f) {
    if (with_hessian) hessian.emplace(c);
    max_rows = std::max<std::int64_t>(1, std::min(sample_rows, total_tokens));
    stride = std::max<std::int64_t>(1, total_tokens / max_rows);
    sample.reserve(static_cast<std::size_t>(max_rows * c));
  }

  std::int64_t sample_rows() const { return static_cast<std::int64_t>(sample.size()) / cols; }
  matrix_view<const float> sample_view() const { return {sample.data(), sample_rows(), cols}; }
  std::vector<float> abs_mean() const {
    std::vector<float> m(static_cast<std::size_t>(cols));  // [cols]
    for (std::size_t j = 0; j < m.size(); ++j) m[j] = static_cast<float>(abs_sum[j] / static_cast<double>(std::max<std::int64_t>(1, tokens)));
    return m;
  }

  void add(matrix_view<const float> x, thread_pool* pool) {
    check(x.cols == cols, "calibration input has " + std::to_string(x.cols) + " columns, expected " + std::to_string(cols));
    if (hessian) hessian->add(x, pool);
    // Per-channel sums and maxima, channels split over the pool (each thread reads its
    // slice of every row); the same additions in the same order as serially.
    // 64 channels per task: 256 B of each accumulator, whole cache lines, so no two
    // threads write the same line.
    constexpr std::int64_t channels_per_task = 64;
    if (channel_stats) {
      parallel_for(pool, (cols + channels_per_task - 1) / channels_per_task, [&](std::int64_t b0, std::int64_t b1) {
        const std::int64_t j0 = b0 * channels_per_task, j1 = std::min(cols, b1 * channels_per_task);
        for (std::int64_t t = 0; t < x.rows; ++t) {
          const float* r = x.row(t);
          for (std::int64_t j = j0; j < j1; ++j) {
            const float a = std::fabs(r[j]);
            abs_sum[static_cast<std::size_t>(j)] += a;
            abs_max[static_cast<std::size_t>(j)] = std::max(abs_max[static_cast<std::size_t>(j)], a);
          }
        }
      });
    }
    for (std::int64_t t = 0; t < x.rows; ++t)
      if ((tokens + t) % stride == 0 && sample_rows() < max_rows) sample.insert(sample.end(), x.row(t), x.row(t) + cols);
    tokens += x.rows;
  }

  // The inputs the layer sees after x[:, j] /= s[j] was folded into the op before it.
  void divide_columns(std::span<const float> s) {
    for (std::int64_t r = 0; r < sample_rows(); ++r)
      for (std::int64_t j = 0; j < cols; ++j) sample[static_cast<std::size_t>(r * cols + j)] /= s[static_cast<std::size_t>(j)];
    for (std::int64_t j = 0; j < cols; ++j) {
      abs_sum[static_cast<std::size_t>(j)] /= s[static_cast<std::size_t>(j)];
      abs_max[static_cast<std::size_t>(j)] /= s[static_cast<std::size_t>(j)];
    }
  }
};

// A linear being quantized: its original weights and the transform of its input.
struct pending_linear {
  model::linear_weight* w = nullptr;
  plan_format format;
  std::vector<float> original;  // [rows, cols] f32, as stored
  std::vector<float> current;   // [rows, cols] with the folded scales applied
  std::vector<float> in_scale;  // [cols] the input is divided by this (1 = none)
  input_stats* stats = nullptr;
};

inline matrix_view<const float> as_matrix(const std::vector<float>& v, std::int64_t rows, std::int64_t cols) {
  return {v.data(), rows, cols};
}

// ||A − B||_F² and ||A||_F² over two [rows, cols] results.
inline std::pair<double, double> diff_norms(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0, n = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double x = a[i], y = b[i];
    d += (x - y) * (x - y);
    n += x * x;
  }
  return {d, n};
}

// Rows of x per GEMM call in the error report: the sample has 4096 rows, and one call over
// all of them streams x (80 MB at 4864 columns) from memory for every panel of W; 512 rows
// (10 MB at most) is what the forward pass multiplies, and stays in the last-level cache.
// Measured under load on the 2-vCPU EPYC VM: the report's 4096-row products ran ~3x slower
// per multiply-add than the propagate pass's 512-row ones. Each row of y is the same either way.
inline constexpr std::int64_t report_rows_per_call = 512;

// y = x · Wᵀ by calls of report_rows_per_call rows.
template <class W>
void product_by_rows(const W& w, matrix_view<const float> x, matrix_view<float> y, thread_pool* pool) {
  for (std::int64_t r0 = 0; r0 < x.rows; r0 += report_rows_per_call) {
    const std::int64_t m = std::min(report_rows_per_call, x.rows - r0);
    simd::gemm_best(w, matrix_view<const float>(x.row(r0), m, x.cols, x.stride), matrix_view<float>(y.row(r0), m, y.cols, y.stride),
                    pool);
  }
}

// Y [rows of x, w.rows] = x · Wᵀ for an f32 weight buffer.
inline std::vector<float> dense_product(matrix_view<const float> x, const std::vector<float>& w, std::int64_t rows,
                                        std::int64_t cols, thread_pool* pool) {
  std::vector<float> y(static_cast<std::size_t>(x.rows * rows));  // [x.rows, rows]
  const tensor_view wv = tensor_view::contiguous(reinterpret_cast<const std::byte*>(w.data()), dtype::f32, make_shape({rows, cols}));
  product_by_rows(wv, x, matrix_view<float>(y.data(), x.rows, rows), pool);
  return y;
}

inline std::vector<float> quantized_product(matrix_view<const float> x, const qtensor_view& q, thread_pool* pool) {
  std::vector<float> y(static_cast<std::size_t>(x.rows * q.rows()));  // [x.rows, rows]
  product_by_rows(q, x, matrix_view<float>(y.data(), x.rows, q.rows()), pool);
  return y;
}

}  // namespace detail

// Quantizes `m` in memory by `plan` and `options.how`. Methods other than rtn need `calib`;
// with it, rtn also reports calibrated output errors. The model computes the same function
// afterwards up to quantization (scales are folded into norms and neighbouring weights).
inline model_quant_report quantize_model(model::model& m, const precision_plan& plan, const model_quant_options& options,
                                         const calibration_set* calib, thread_pool* pool = nullptr,
                                         const layer_progress_fn& progress = {}) {
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  const model::model_config& c = m.config();
  if (needs_calibration(options.how) && (!calib || calib->samples.empty()))
    throw error(std::string("method ") + method_name(options.how) + " needs a calibration set");
  for (const auto& t : m.linear_targets())
    if (m.linear(t.name).spec.is_quantized())
      throw error("already quantized (" + m.linear(t.name).spec.str() + "); quantize the original checkpoint instead",
                  in_file(m.directory().string(), t.name));
  const std::vector<plan_assignment> assignments = plan.resolve(m.linear_targets());
  model_quant_report report;
  report.method = method_name(options.how);
  report.plan = plan.source();
  if (calib) {
    report.calibration = calib->source;
    report.calibration_tokens = calib->tokens();
    if (needs_calibration(options.how)) report.fit = measure_calibration_fit(m, *calib, 512, pool);
  }
  if (options.how == method::gptq) report.gptq_damp = options.gptq.damp;
  if (options.how == method::awq || options.how == method::smoothquant) report.scale_pairs = options.pairs.str();
  if (options.how == method::awq) report.awq_clip = options.awq.clip_search;
  const auto format_of = [&](const std::string& name) -> const plan_format& {
    for (const auto& a : assignments)
      if (a.target.name == name) return a.format;
    throw error("internal: " + name + " has no plan assignment");
  };

  // Weight-only quantization of one linear by RTN (or a dense conversion / keep).
  const auto apply_plain = [&](model::linear_weight& w, const plan_format& f, int layer) {
    tensor_quant_report r;
    r.name = w.name;
    r.layer = layer;
    const auto t0 = clock::now();
    if (f.keep || (!f.spec.is_quantized() && f.spec.dense == w.spec.dense)) {
      r.format = w.spec.str();
      r.method = "keep";
      r.weight_error = 0;
    } else {
      const std::vector<float> orig = m.linear_f32(w);
      if (!f.spec.is_quantized()) {
        m.set_dense(w, orig, f.spec.dense);
        r.method = "convert";
      } else {
        m.set_quantized(w, quantize_rtn({orig.data(), w.rows, w.cols}, f.spec, options.rtn, pool, w.name));
        r.method = "rtn";
      }
      r.format = w.spec.str();
      const std::vector<float> now = m.linear_f32(w);
      const auto [d, n] = detail::diff_norms(orig, now);
      r.weight_error = n > 0 ? std::sqrt(d / n) : 0;
    }
    r.seconds = std::chrono::duration<double>(clock::now() - t0).count();
    report.tensors.push_back(r);
  };

  const std::string embed_name = m.weights().embed.name, head_name = m.weights().lm_head.name;
  apply_plain(m.linear(embed_name), format_of(embed_name), -1);

  if (!calib) {
    for (int l = 0; l < c.layers; ++l) {
      if (progress) progress(l, c.layers, "quantize");
      model::layer_weights& lw = m.layer(l);
      for (model::linear_weight* w : {&lw.q, &lw.k, &lw.v, &lw.o, &lw.gate, &lw.up, &lw.down}) apply_plain(*w, format_of(w->name), l);
    }
  } else {
    const std::int64_t total = calib->tokens();
    int len = 0;
    for (const auto& s : calib->samples) len = std::max(len, static_cast<int>(s.size()));
    model::session s(m, len, pool);
    s.set_activation_bits(0);  // calibrate on exact activations; activation quantization is applied at inference
    std::vector<std::vector<float>> stream;  // [samples][len_i, hidden], the residual stream entering layer l
    for (const auto& ids : calib->samples) {
      stream.emplace_back(ids.size() * static_cast<std::size_t>(c.hidden));
      s.embed(ids, matrix_view<float>(stream.back().data(), static_cast<std::int64_t>(ids.size()), c.hidden));
    }
    const bool gptq = options.how == method::gptq;
    // mean|x| and max|x| per channel feed the scale migration only.
    const bool channel_stats = options.how == method::awq || options.how == method::smoothquant;
    for (int l = 0; l < c.layers; ++l) {
      model::layer_weights& lw = m.layer(l);
      if (progress) progress(l, c.layers, "capture");
      detail::input_stats attn_in(c.hidden, gptq, channel_stats, total, options.sample_tokens);
      detail::input_stats o_in(c.q_dim(), gptq, channel_stats, total, options.sample_tokens);
      detail::input_stats mlp_in(c.hidden, gptq, channel_stats, total, options.sample_tokens);
      detail::input_stats down_in(c.intermediate, gptq, channel_stats, total, options.sample_tokens);
      s.set_hook([&](const model::activation& a) {
        if (a.layer != l) return;
        switch (a.what) {
          case model::component::attn_norm: attn_in.add(a.data, pool); break;
          case model::component::attn_out: o_in.add(a.data, pool); break;
          case model::component::mlp_norm: mlp_in.add(a.data, pool); break;
          case model::component::mlp_act: down_in.add(a.data, pool); break;
          default: break;
        }
      });
      std::vector<float> scratch;  // [len, hidden] one sample's stream, run for its activations only
      for (std::size_t i = 0; i < stream.size(); ++i) {
        float* x = stream[i].data();  // without quantized propagation this pass also advances the stream
        // With quantized propagation this pass only collects inputs: it stops at down_proj's
        // input (mlp_act) and skips down_proj itself, a third of the layer's MLP work.
        model::component last = model::component::layer_output;
        if (options.propagate_quantized) {
          scratch = stream[i];
          x = scratch.data();
          last = model::component::mlp_act;
        }
        s.run_layer(l, matrix_view<float>(x, static_cast<std::int64_t>(calib->samples[i].size()), c.hidden), last);
      }
      s.set_hook({});

      if (progress) progress(l, c.layers, "quantize");
      const auto pending = [&](model::linear_weight& w, detail::input_stats& st) {
        detail::pending_linear p;
        p.w = &w;
        p.format = format_of(w.name);
        p.original = m.linear_f32(w);
        p.current = p.original;
        p.in_scale.assign(static_cast<std::size_t>(w.cols), 1.0f);
        p.stats = &st;
        return p;
      };
      std::vector<detail::pending_linear> lin;
      lin.reserve(7);
      for (model::linear_weight* w : {&lw.q, &lw.k, &lw.v}) lin.push_back(pending(*w, attn_in));
      lin.push_back(pending(lw.o, o_in));
      for (model::linear_weight* w : {&lw.gate, &lw.up}) lin.push_back(pending(*w, mlp_in));
      lin.push_back(pending(lw.down, down_in));
      detail::pending_linear &pq = lin[0], &pk = lin[1], &pv = lin[2], &po = lin[3], &pg = lin[4], &pu = lin[5], &pd = lin[6];

      // Scale migration (AWQ's search or SmoothQuant's formula) for the pairs whose consumers
      // are quantized: the consumers' columns are multiplied by s, the producer divides by s.
      const bool migrate = options.how == method::awq || options.how == method::smoothquant;
      const auto scale_pair = [&](const std::vector<detail::pending_linear*>& consumers, detail::input_stats& st,
                                  const std::function<void(std::span<const float>)>& fold_into_producer) {
        const plan_format* f = nullptr;
        for (auto* p : consumers)
          if (!p->format.keep && p->format.spec.is_quantized()) {
            f = &p->format;
            break;
          }
        if (!f) return;
        std::vector<float> scales;  // [cols]
        if (options.how == method::awq) {
          std::vector<matrix_view<const float>> ws;
          ws.reserve(consumers.size());
          for (auto* p : consumers) ws.push_back(detail::as_matrix(p->current, p->w->rows, p->w->cols));
          const std::vector<float> mean = st.abs_mean();
          scales = awq_search_scales(ws, st.sample_view(), mean, f->spec, options.awq, pool).scales;
        } else {
          std::vector<float> w_absmax(static_cast<std::size_t>(st.cols), 0.0f);  // [cols] over all consumers' rows
          for (auto* p : consumers)
            for (std::int64_t r = 0; r < p->w->rows; ++r)
              for (std::int64_t j = 0; j < st.cols; ++j)
                w_absmax[static_cast<std::size_t>(j)] = std::max(w_absmax[static_cast<std::size_t>(j)],
                                                                 std::fabs(p->current[static_cast<std::size_t>(r * st.cols + j)]));
          scales = smoothquant_scales(st.abs_max, w_absmax, options.smooth_alpha);
        }
        for (auto* p : consumers) {
          for (std::int64_t r = 0; r < p->w->rows; ++r)
            for (std::int64_t j = 0; j < st.cols; ++j) p->current[static_cast<std::size_t>(r * st.cols + j)] *= scales[static_cast<std::size_t>(j)];
          for (std::int64_t j = 0; j < st.cols; ++j) p->in_scale[static_cast<std::size_t>(j)] *= scales[static_cast<std::size_t>(j)];
        }
        fold_into_producer(scales);
        st.divide_columns(scales);
      };
      if (migrate) {
        if (options.pairs.qkv)
          scale_pair({&pq, &pk, &pv}, attn_in, [&](std::span<const float> sc) {
            std::vector<float>& norm = m.norm_for_update(l, "input_layernorm");
            for (std::size_t j = 0; j < norm.size(); ++j) norm[j] /= sc[j];
          });
        if (options.pairs.o && c.kv_heads == c.heads)  // v -> o only when each o input column is one v output (no GQA sharing)
          scale_pair({&po}, o_in, [&](std::span<const float> sc) {
            for (std::int64_t r = 0; r < pv.w->rows; ++r)
              for (std::int64_t j = 0; j < pv.w->cols; ++j) pv.current[static_cast<std::size_t>(r * pv.w->cols + j)] /= sc[static_cast<std::size_t>(r)];
            for (std::size_t r = 0; r < lw.v_bias.size(); ++r) lw.v_bias[r] /= sc[r];
          });
        if (options.pairs.gate_up)
          scale_pair({&pg, &pu}, mlp_in, [&](std::span<const float> sc) {
            std::vector<float>& norm = m.norm_for_update(l, "post_attention_layernorm");
            for (std::size_t j = 0; j < norm.size(); ++j) norm[j] /= sc[j];
          });
        if (options.pairs.down)
          scale_pair({&pd}, down_in, [&](std::span<const float> sc) {
            for (std::int64_t r = 0; r < pu.w->rows; ++r)
              for (std::int64_t j = 0; j < pu.w->cols; ++j) pu.current[static_cast<std::size_t>(r * pu.w->cols + j)] /= sc[static_cast<std::size_t>(r)];
          });
      }

      for (detail::pending_linear& p : lin) {
        const auto t0 = clock::now();
        model::linear_weight& w = *p.w;
        tensor_quant_report r;
        r.name = w.name;
        r.layer = l;
        const matrix_view<const float> x = p.stats->sample_view();  // inputs as the layer now sees them
        const bool changed = p.current != p.original;
        if (p.format.keep || !p.format.spec.is_quantized()) {
          if (!p.format.keep && p.format.spec.dense != w.spec.dense) {
            m.set_dense(w, p.current, p.format.spec.dense);
            r.method = "convert";
          } else if (changed) {
            m.set_dense(w, p.current, w.spec.dense);  // scales folded in, stored precision kept
            r.method = "keep";
          } else {
            r.method = "keep";
          }
        } else {
          const format_spec& spec = p.format.spec;
          qtensor q;
          if (options.how == method::gptq) {
            detail::input_stats& st = *p.stats;
            if (!st.factor) {
              st.h = st.hessian->hessian();
              st.factor = gptq_prepare(st.h, w.cols, options.gptq, pool, w.name);
            }
            q = quantize_gptq(detail::as_matrix(p.current, w.rows, w.cols), st.h, *st.factor, spec, options.gptq, pool,
                              w.name);
          } else {
            if (options.how == method::awq && options.awq.clip_search) {
              matrix_view<float> cur(p.current.data(), w.rows, w.cols);
              awq_clip(cur, x, spec, options.awq, pool);
            }
            q = quantize_rtn(detail::as_matrix(p.current, w.rows, w.cols), spec, options.rtn, pool, w.name);
          }
          m.set_quantized(w, std::move(q));
          r.method = method_name(options.how);
          if (options.how == method::awq && !changed && !options.awq.clip_search) r.method = "rtn";
        }
        r.format = w.spec.str();
        // Errors: the effective weight is the stored one with the input scale divided back out.
        std::vector<float> eff = m.linear_f32(w);  // [rows, cols]
        for (std::int64_t rr = 0; rr < w.rows; ++rr)
          for (std::int64_t j = 0; j < w.cols; ++j) eff[static_cast<std::size_t>(rr * w.cols + j)] /= p.in_scale[static_cast<std::size_t>(j)];
        const auto [dw, nw] = detail::diff_norms(p.original, eff);
        r.weight_error = nw > 0 ? std::sqrt(dw / nw) : 0;
        if (x.rows > 0 && w.spec.is_quantized()) {
          // The reference: the original weight on the original inputs (x · in_scale; x itself
          // when no scale was folded, as always for GPTQ and RTN).
          const bool scaled = std::any_of(p.in_scale.begin(), p.in_scale.end(), [](float v) { return v != 1.0f; });
          std::vector<float> x_orig;  // [rows, cols] when scaled
          if (scaled) {
            x_orig.assign(x.data, x.data + x.rows * x.cols);
            for (std::int64_t t = 0; t < x.rows; ++t)
              for (std::int64_t j = 0; j < x.cols; ++j) x_orig[static_cast<std::size_t>(t * x.cols + j)] *= p.in_scale[static_cast<std::size_t>(j)];
          }
          const matrix_view<const float> xo = scaled ? matrix_view<const float>(x_orig.data(), x.rows, x.cols) : x;
          const std::vector<float> y_ref = detail::dense_product(xo, p.original, w.rows, w.cols, pool);
          const std::vector<float> y_q = detail::quantized_product(x, w.quantized, pool);
          const auto [d, n] = detail::diff_norms(y_ref, y_q);
          r.output_error = n > 0 ? std::sqrt(d / n) : 0;
          const qtensor rtn = quantize_rtn(detail::as_matrix(p.original, w.rows, w.cols), w.spec, options.rtn, pool, w.name);
          const std::vector<float> y_rtn = detail::quantized_product(xo, rtn.view(), pool);
          const auto [d2, n2] = detail::diff_norms(y_ref, y_rtn);
          r.rtn_output_error = n2 > 0 ? std::sqrt(d2 / n2) : 0;
        }
        r.seconds = std::chrono::duration<double>(clock::now() - t0).count();
        report.tensors.push_back(r);
      }

      for (detail::input_stats* st : {&attn_in, &o_in, &mlp_in, &down_in}) {
        st->factor.reset();
        st->h = {};
      }

      if (!options.propagate_quantized) continue;
      if (progress) progress(l, c.layers, "propagate");
      for (std::size_t i = 0; i < stream.size(); ++i)
        s.run_layer(l, matrix_view<float>(stream[i].data(), static_cast<std::int64_t>(calib->samples[i].size()), c.hidden));
    }
  }
  if (!c.tie_word_embeddings) apply_plain(m.linear(head_name), format_of(head_name), -1);
  if (progress) progress(c.layers, c.layers, "done");
  report.seconds = std::chrono::duration<double>(clock::now() - start).count();
  return report;
}

inline nlohmann::json report_json(const model_quant_report& r) {
  nlohmann::json j = {{"qmr_version", QMR_VERSION_STRING}, {"method", r.method},      {"plan", r.plan},
                      {"calibration", r.calibration},      {"calibration_tokens", r.calibration_tokens},
                      {"calibration_nll", r.fit.measured() ? nlohmann::json(r.fit.nll) : nlohmann::json()},
                      {"calibration_uniform_nll", r.fit.measured() ? nlohmann::json(r.fit.uniform_nll) : nlohmann::json()},
                      {"gptq_damp", r.method == "gptq" ? nlohmann::json(r.gptq_damp) : nlohmann::json()},
                      {"scale_pairs", r.scale_pairs.empty() ? nlohmann::json() : nlohmann::json(r.scale_pairs)},
                      {"awq_clip", r.method == "awq" ? nlohmann::json(r.awq_clip) : nlohmann::json()},
                      {"activation_bits", r.activation_bits}, {"seconds", r.seconds},              {"tensors", nlohmann::json::array()}};
  for (const auto& t : r.tensors)
    j["tensors"].push_back({{"name", t.name},
                            {"layer", t.layer},
                            {"format", t.format},
                            {"method", t.method},
                            {"output_error", t.output_error},
                            {"rtn_output_error", t.rtn_output_error},
                            {"weight_error", t.weight_error},
                            {"seconds", t.seconds}});
  return j;
}

// Writes `m` as it now is into the directory `out`: each shard of the checkpoint it was loaded
// from, under the same name, with its linear weights in their current storage (qmr-quantized or
// dense), norms that scale folding changed as F32, and every other tensor as stored; the index
// rewritten, config and tokenizer files copied, and qmr_quantization.json holding the report.
inline void save_model(const model::model& m, const std::filesystem::path& out, const model_quant_report& report) {
  namespace fs = std::filesystem;
  const io::checkpoint& c = m.checkpoint();
  check(!c.directory().empty(), "save_model needs a model loaded from a directory");
  check(fs::absolute(c.directory()) != fs::absolute(out), "output directory must differ from the input directory");
  std::map<std::string, const model::linear_weight*> linears;
  const model::model_weights& w = m.weights();
  linears[w.embed.name] = &w.embed;
  if (!m.config().tie_word_embeddings) linears[w.lm_head.name] = &w.lm_head;
  for (const auto& l : w.layers)
    for (const model::linear_weight* lw : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) linears[lw->name] = lw;
  std::map<std::string, std::string> methods;
  for (const auto& t : report.tensors) methods[t.name] = t.method;

  fs::create_directories(out);
  nlohmann::json weight_map = nlohmann::json::object();
  std::uint64_t total = 0;
  for (const io::safetensors_file& f : c.shards()) {
    const std::string file = fs::path(f.file()).filename().string();
    io::safetensors_writer writer;
    for (const auto& [k, v] : f.metadata())
      if (k.rfind(io::qmr_metadata_prefix, 0) != 0) writer.set_metadata(k, v);
    writer.set_metadata("qmr.format_version", io::qmr_format_version);
    for (const io::tensor_info& t : f.tensors()) {
      if (const auto it = linears.find(t.name); it != linears.end()) {
        const model::linear_weight& lw = *it->second;
        if (lw.spec.is_quantized()) {
          io::write_quantized(writer, t.name, lw.quantized, methods.count(t.name) ? methods[t.name] : "rtn");
          for (const char* suffix : {".qcodes", ".qscales"}) weight_map[t.name + suffix] = file;
          if (!lw.spec.symmetric) weight_map[t.name + ".qzeros"] = file;
          total += static_cast<std::uint64_t>(lw.quantized.layout.total_bytes());
        } else {
          writer.add(t.name, std::string(dtype_name(lw.dense.type)), lw.dense.shape,
                     std::span<const std::byte>(lw.dense.data, lw.dense.nbytes()));
          weight_map[t.name] = file;
          total += lw.dense.nbytes();
        }
      } else if (const std::vector<float>* v = m.changed_vector(t.name)) {
        writer.add(t.name, t.shape, std::span<const float>(*v));
        weight_map[t.name] = file;
        total += v->size() * sizeof(float);
      } else {
        writer.add(t.name, t.dtype_name, t.shape, f.raw(t));
        weight_map[t.name] = file;
        total += t.nbytes();
      }
    }
    writer.write(out / file);
  }
  if (!c.index_file().empty()) {
    const nlohmann::json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
    io::write_text_file(out / "model.safetensors.index.json", index.dump(2) + "\n");
  }
  for (const char* name : detail::companion_files)
    if (fs::exists(c.directory() / name)) fs::copy_file(c.directory() / name, out / name, fs::copy_options::overwrite_existing);
  io::write_text_file(out / "qmr_quantization.json", report_json(report).dump(2) + "\n");
}

}  // namespace qmr::quant
