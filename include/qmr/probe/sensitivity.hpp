// Which layers and components break first: each unit of a model's linears (one linear, one layer's seven, one component in every layer, or all) quantized alone by round to nearest, and the model's next-token distributions on teacher-forced reference answers compared with the unquantized model's (KL divergence, agreement of the top token, answers a greedy decoder would reproduce verbatim, by level).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/thread_pool.hpp"
#include "../eval/loglikelihood.hpp"
#include "../eval/synth.hpp"
#include "../model/forward.hpp"
#include "../quant/plan.hpp"
#include "../quant/rtn.hpp"
#include "../text/tokenizer.hpp"

namespace qmr::probe {

// One teacher-forced item: the prompt and the reference continuation whose tokens are scored.
struct forced_item {
  std::vector<std::int32_t> context;       // prompt ids (non-empty)
  std::vector<std::int32_t> continuation;  // reference answer ids (non-empty), scored one by one
  int level = 0;                           // 1-5 for synthetic problems; 0 when unknown
};

// The highest level an item may carry: synthetic problems' 1-5.
inline constexpr int max_level = 5;

// Synthetic problems (all types, levels 1-5, eval::make_problems with `seed`) as the
// bundled model is prompted: context "Question: {q}\nAnswer:", continuation " {answer}"
// split as lm-eval does (eval::encode_pair), then `eos` when it is a token id (>= 0), so that
// stopping where the reference stops is scored too.
inline std::vector<forced_item> synthetic_items(const text::tokenizer& tok, std::size_t n, std::uint64_t seed, std::int32_t eos) {
  check(n > 0, "sensitivity needs at least one problem");
  eval::synth_options o;
  o.seed = seed;
  std::vector<forced_item> items;
  for (const eval::problem& p : eval::make_problems(n, o)) {
    auto [ctx, cont] = eval::encode_pair(tok, "Question: " + p.question + "\nAnswer:", " " + p.answer);
    if (eos >= 0) cont.push_back(eos);
    items.push_back({std::move(ctx), std::move(cont), p.level});
  }
  return items;
}

// Checks items against a model's config (`who` starts the messages): at least one item, each
// with a non-empty context and continuation, a level in 0..max_level and token ids inside the
// vocabulary, none longer than max_position_embeddings (when config.json gives it). Returns the
// longest item's tokens: the session capacity the items need.
inline int check_items(const std::vector<forced_item>& items, const model::model_config& c, const std::string& who) {
  check(!items.empty(), who + " needs at least one item");
  int capacity = 0;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const forced_item& it = items[i];
    const std::string where = who + " item " + std::to_string(i);
    check(!it.context.empty() && !it.continuation.empty(), where + ": the context and the continuation must be non-empty");
    check(it.level >= 0 && it.level <= max_level,
          where + ": level " + std::to_string(it.level) + " is outside 0.." + std::to_string(max_level));
    for (const auto* ids : {&it.context, &it.continuation})
      for (const std::int32_t id : *ids)
        check(id >= 0 && id < c.vocab, where + ": token id " + std::to_string(id) + " is outside the vocabulary of " + std::to_string(c.vocab));
    capacity = std::max(capacity, static_cast<int>(it.context.size() + it.continuation.size()));
  }
  // max_position_embeddings is optional in config.json (0: not given, no limit known)
  check(c.max_positions == 0 || capacity <= c.max_positions,
        "a " + who + " item of " + std::to_string(capacity) + " tokens is longer than the model's " + std::to_string(c.max_positions) +
            " positions");
  return capacity;
}

// What a unit quantizes: kind linear (one tensor), layer (the seven linears of a layer),
// component (one of q, k, v, o, gate, up, down in every layer) or all (every layer linear;
// the embedding and the output head stay as stored in every unit).
enum class unit_kind : std::uint8_t { linear, layer, component, all };

inline const char* unit_kind_name(unit_kind k) {
  switch (k) {
    case unit_kind::linear: return "linear";
    case unit_kind::layer: return "layer";
    case unit_kind::component: return "component";
    case unit_kind::all: return "all";
  }
  return "?";
}

struct unit {
  unit_kind kind = unit_kind::linear;
  int layer = -1;                  // linear, layer: the layer; else -1
  std::string component;           // linear, component: q .. down; else ""
  std::string name;                // "layer 3 down", "layer 3", "down", "all"
  std::vector<std::string> tensors;  // the linears it quantizes
};

// The units of m's layer linears, by kind: linears (one per layer and component), layers,
// components, and the whole model, in that order.
inline std::vector<unit> sensitivity_units(const model::model& m, bool linears, bool layers, bool components, bool all) {
  std::vector<quant::plan_target> targets = m.linear_targets();
  std::erase_if(targets, [](const quant::plan_target& t) { return t.layer < 0; });  // embedding, output head
  const int n_layers = m.config().layers;
  std::vector<std::string> comps;
  for (const auto& t : targets)
    if (std::find(comps.begin(), comps.end(), quant::plan_component_name(t.component)) == comps.end())
      comps.emplace_back(quant::plan_component_name(t.component));
  std::vector<unit> out;
  if (linears)
    for (const auto& t : targets) {
      const std::string c = quant::plan_component_name(t.component);
      out.push_back({unit_kind::linear, t.layer, c, "layer " + std::to_string(t.layer) + " " + c, {t.name}});
    }
  if (layers)
    for (int l = 0; l < n_layers; ++l) {
      unit u{unit_kind::layer, l, "", "layer " + std::to_string(l), {}};
      for (const auto& t : targets)
        if (t.layer == l) u.tensors.push_back(t.name);
      out.push_back(std::move(u));
    }
  if (components)
    for (const std::string& c : comps) {
      unit u{unit_kind::component, -1, c, c, {}};
      for (const auto& t : targets)
        if (c == quant::plan_component_name(t.component)) u.tensors.push_back(t.name);
      out.push_back(std::move(u));
    }
  if (all) {
    unit u{unit_kind::all, -1, "", "all", {}};
    for (const auto& t : targets) u.tensors.push_back(t.name);
    out.push_back(std::move(u));
  }
  return out;
}

// How the model did on the items with one unit quantized (or none: the reference itself).
struct unit_result {
  std::string name;
  unit_kind kind = unit_kind::all;
  int layer = -1;
  std::string component;
  double kl = 0;        // mean over scored positions of KL(p_reference || p_unit), nats
  double kl_max = 0;    // the largest KL of one position
  double nll = 0;       // mean -log p(reference token), nats
  double top1 = 1;      // fraction of scored positions whose argmax is the reference model's argmax
  double verbatim = 0;  // fraction of items whose every continuation token is the argmax
  std::vector<double> verbatim_by_level;  // [max_level + 1]: index = level (0: items without one); -1 where no item
  double seconds = 0;
};

// The reference model's log-probabilities at every scored position, kept to compare each unit
// with; then measure(unit) quantizes the unit's linears in m, scores the items and puts the
// linears back as they were (also when it throws). Not thread-safe: one measure at a time per model.
class sensitivity_probe {
 public:
  // The most reference log-probabilities kept (scored positions x vocabulary): 1 GiB of f32.
  static constexpr std::int64_t max_reference_floats = std::int64_t{1} << 28;

  sensitivity_probe(model::model& m, std::vector<forced_item> items, thread_pool* pool = nullptr)
      : m_(&m), items_(std::move(items)), pool_(pool) {
    capacity_ = check_items(items_, m.config(), "sensitivity");
    vocab_ = m.config().vocab;
    for (const forced_item& it : items_) positions_ += static_cast<std::int64_t>(it.continuation.size());
    check(positions_ * vocab_ <= max_reference_floats,
          std::to_string(positions_) + " scored positions x " + std::to_string(vocab_) +
              " tokens of vocabulary exceed the reference's limit of 2^28 log-probabilities (score fewer items)");
    ref_logp_.resize(static_cast<std::size_t>(positions_ * vocab_));
    ref_arg_.resize(static_cast<std::size_t>(positions_));
    reference_ = score_(nullptr, "reference", unit_kind::all);
  }

  sensitivity_probe(const sensitivity_probe&) = delete;  // it changes the model's weights and puts them back
  sensitivity_probe& operator=(const sensitivity_probe&) = delete;
  ~sensitivity_probe() { clear_background(); }

  // Quantizes `tensors` by round to nearest to `spec` and keeps them so until clear_background()
  // (or the probe's end): measure() then scores a unit against this background instead of the
  // stored weights, quantizing the unit's tensors from their stored values. With every layer linear
  // at a low format and a unit measured at a higher one, a measurement is what raising that unit
  // alone saves in a model that is otherwise quantized, interactions included. Any earlier
  // background is cleared first.
  void set_background(const std::vector<std::string>& tensors, const quant::format_spec& spec, const quant::rtn_options& rtn = {}) {
    std::vector<std::pair<std::string, quant::format_spec>> each;
    each.reserve(tensors.size());
    for (const std::string& name : tensors) each.emplace_back(name, spec);
    set_background(each, rtn);
  }
  // The same with a format per tensor (a plan in progress: some linears already raised).
  void set_background(const std::vector<std::pair<std::string, quant::format_spec>>& tensors, const quant::rtn_options& rtn = {}) {
    for (const auto& [name, spec] : tensors)
      check(spec.is_quantized(), "sensitivity background: " + spec.str() + " (for " + name + ") is not a quantized format");
    clear_background();
    try {
      for (const auto& [name, spec] : tensors) {
        model::linear_weight& w = m_->linear(name);
        swap_in_(w, w, name, spec, rtn, "sensitivity background: ", bg_held_, bg_saved_);
        bg_names_.push_back(name);
      }
    } catch (...) {
      clear_background();
      throw;
    }
  }
  // Puts the background's tensors back as stored.
  void clear_background() {
    restore_(bg_saved_);
    bg_names_.clear();
    bg_held_.clear();
  }
  // The background alone, scored (KL of the background model to the stored one).
  unit_result measure_background(const std::string& name) { return score_(&ref_logp_, name, unit_kind::all); }

  const std::vector<forced_item>& items() const { return items_; }
  std::int64_t positions() const { return positions_; }
  // The unquantized model's own scores (kl 0, top1 1).
  const unit_result& reference() const { return reference_; }

  // The items scored with u's linears quantized by round to nearest to `spec`.
  unit_result measure(const unit& u, const quant::format_spec& spec, const quant::rtn_options& rtn = {}) {
    check(spec.is_quantized(), "sensitivity: " + spec.str() + " is not a quantized format");
    check(!u.tensors.empty(), "sensitivity: unit '" + u.name + "' quantizes no tensor");
    struct restore {  // puts every changed linear back, in reverse order, on every exit
      saved_linears saved;
      ~restore() { restore_(saved); }
    } guard;
    std::vector<std::unique_ptr<quant::qtensor>> held;  // the quantized copies, alive while scored
    for (const std::string& name : u.tensors) {
      model::linear_weight& w = m_->linear(name);
      // In a background, the unit is quantized from its stored weights.
      const auto bg = std::find(bg_names_.begin(), bg_names_.end(), name);
      const model::linear_weight& stored = bg == bg_names_.end() ? w : bg_saved_[static_cast<std::size_t>(bg - bg_names_.begin())].second;
      swap_in_(w, stored, name, spec, rtn, "sensitivity: ", held, guard.saved);
    }
    return score_(&ref_logp_, u.name, u.kind, u.layer, u.component);
  }

 private:
  // Linears changed in the model, with what they held before, in the order they were changed.
  using saved_linears = std::vector<std::pair<model::linear_weight*, model::linear_weight>>;

  // Puts `saved` back in reverse order and empties it.
  static void restore_(saved_linears& saved) {
    for (auto it = saved.rbegin(); it != saved.rend(); ++it) *it->first = std::move(it->second);
    saved.clear();
  }

  // Quantizes `stored` (a dense linear: w itself, or w's weights as stored under a background)
  // by round to nearest to `spec` into `held`, records w in `saved` and points w at the copy.
  // `who` starts the error messages.
  void swap_in_(model::linear_weight& w, const model::linear_weight& stored, const std::string& name, const quant::format_spec& spec,
                const quant::rtn_options& rtn, const std::string& who, std::vector<std::unique_ptr<quant::qtensor>>& held,
                saved_linears& saved) {
    check(!stored.spec.is_quantized(), who + name + " is already quantized (" + stored.spec.str() + "); probe a dense model");
    check(model::fits_format(w, spec), who + name + " has " + std::to_string(w.cols) + " columns, which " + spec.str() + " cannot group");
    const std::vector<float> f32 = m_->linear_f32(stored);  // [rows, cols]
    held.push_back(std::make_unique<quant::qtensor>(quant::quantize_rtn({f32.data(), w.rows, w.cols}, spec, rtn, pool_, name)));
    saved.emplace_back(&w, w);
    w.spec = held.back()->spec();
    w.quantized = held.back()->view();
    w.dense = {};
    w.lut.reset();
  }

  // Scores every item. ref == nullptr: the reference pass, which stores its log-probabilities
  // and argmaxes; else the comparison against them.
  unit_result score_(const std::vector<float>* ref, const std::string& name, unit_kind kind, int layer = -1,
                     const std::string& component = "") {
    const auto t0 = std::chrono::steady_clock::now();
    unit_result r;
    r.name = name;
    r.kind = kind;
    r.layer = layer;
    r.component = component;
    std::vector<double> lp(static_cast<std::size_t>(vocab_));  // [vocab] this position's log-probabilities
    std::vector<int> level_items(max_level + 1, 0), level_verbatim(max_level + 1, 0);
    double kl = 0, nll = 0;
    std::int64_t agree = 0, verbatim = 0, pos = 0;
    model::session s(*m_, capacity_, pool_);
    std::vector<std::int32_t> input;
    for (const forced_item& it : items_) {
      input.assign(it.context.begin(), it.context.end());
      input.insert(input.end(), it.continuation.begin(), it.continuation.end() - 1);
      s.reset();
      const matrix_view<const float> logits = s.forward(input, true);  // [input, vocab]
      const std::int64_t first = static_cast<std::int64_t>(it.context.size()) - 1;
      bool all_argmax = true;
      for (std::size_t i = 0; i < it.continuation.size(); ++i, ++pos) {
        const float* z = logits.row(first + static_cast<std::int64_t>(i));
        // log-softmax in double: a stable sum over the vocabulary
        std::int64_t arg = 0;
        for (std::int64_t v = 1; v < vocab_; ++v)
          if (z[v] > z[arg]) arg = v;
        double sum = 0;
        for (std::int64_t v = 0; v < vocab_; ++v) sum += std::exp(static_cast<double>(z[v]) - z[arg]);
        const double log_sum = std::log(sum) + z[arg];
        for (std::int64_t v = 0; v < vocab_; ++v) lp[static_cast<std::size_t>(v)] = static_cast<double>(z[v]) - log_sum;
        const std::int32_t want = it.continuation[i];
        nll -= lp[static_cast<std::size_t>(want)];
        all_argmax = all_argmax && arg == want;
        float* keep = ref_logp_.data() + pos * vocab_;
        if (ref == nullptr) {
          for (std::int64_t v = 0; v < vocab_; ++v) keep[v] = static_cast<float>(lp[static_cast<std::size_t>(v)]);
          ref_arg_[static_cast<std::size_t>(pos)] = static_cast<std::int32_t>(arg);
          ++agree;
        } else {
          double d = 0;  // KL(p_ref || p_unit) = Σ p_ref (log p_ref - log p_unit)
          for (std::int64_t v = 0; v < vocab_; ++v)
            d += std::exp(static_cast<double>(keep[v])) * (static_cast<double>(keep[v]) - lp[static_cast<std::size_t>(v)]);
          d = std::max(d, 0.0);  // rounding of the stored f32 log-probabilities
          kl += d;
          r.kl_max = std::max(r.kl_max, d);
          agree += ref_arg_[static_cast<std::size_t>(pos)] == arg;
        }
      }
      verbatim += all_argmax;
      ++level_items[static_cast<std::size_t>(it.level)];
      level_verbatim[static_cast<std::size_t>(it.level)] += all_argmax;
    }
    const double n_pos = static_cast<double>(positions_);
    r.kl = kl / n_pos;
    r.nll = nll / n_pos;
    r.top1 = static_cast<double>(agree) / n_pos;
    r.verbatim = static_cast<double>(verbatim) / static_cast<double>(items_.size());
    r.verbatim_by_level.assign(max_level + 1, -1.0);
    for (int l = 0; l <= max_level; ++l)
      if (level_items[static_cast<std::size_t>(l)] > 0)
        r.verbatim_by_level[static_cast<std::size_t>(l)] =
            static_cast<double>(level_verbatim[static_cast<std::size_t>(l)]) / level_items[static_cast<std::size_t>(l)];
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
  }

  model::model* m_;
  std::vector<forced_item> items_;
  thread_pool* pool_;
  std::int64_t vocab_ = 0, positions_ = 0;
  int capacity_ = 0;
  std::vector<float> ref_logp_;         // [positions, vocab] the reference model's log-probabilities
  std::vector<std::int32_t> ref_arg_;   // [positions] its argmax
  unit_result reference_;
  // The background (set_background): each tensor's stored weight, by name, and its quantized copy.
  saved_linears bg_saved_;
  std::vector<std::string> bg_names_;
  std::vector<std::unique_ptr<quant::qtensor>> bg_held_;
};

// ---------------------------------------------------------------------------
// Bit allocation from sensitivities: which linears get the higher of two formats under a
// budget of bits per weight. Every linear starts at `low`; each gains (KL at low - KL at
// high) for its extra bits (its weights x the formats' bits-per-weight difference), and the
// linears with the most KL saved per extra bit are raised to `high`, best first, while the
// average over all the linears stays within the budget (a greedy knapsack on measured,
// one-at-a-time sensitivities: it ranks by how much each linear alone hurts; errors of
// several quantized linears add up to more than their sum, so the KL it predicts is a lower
// bound and accuracy has to be measured, e.g. with qmr eval --quant @PLAN).

struct allocation_item {
  std::string tensor;                 // the linear's name
  int layer = -1;
  std::string component;
  std::int64_t weights = 0;           // rows x cols
  std::int64_t cols = 0;
  double kl_low = 0, kl_high = 0;     // its one-at-a-time KL at the two formats
};

struct allocation {
  std::vector<bool> high;             // per item: raised to the higher format
  double bits_per_weight = 0;         // the average over the items' weights
  double kl_sum = 0;                  // Σ of the chosen formats' one-at-a-time KL
};

// The items' weights, and their storage bits with every item in `spec` (its bits per weight at
// the item's column count): `per_weight()` is the average a budget is measured in.
struct weight_bits {
  double weights = 0, bits = 0;
  double per_weight() const { return bits / weights; }
};
inline weight_bits uniform_bits(const std::vector<allocation_item>& items, const quant::format_spec& spec) {
  weight_bits r;
  for (const auto& it : items) {
    const double w = static_cast<double>(it.weights);
    r.weights += w;
    r.bits += w * spec.bits_per_weight(it.cols);
  }
  return r;
}

// `fixed` (empty, or one flag per item): linears raised already, whatever their gain (a plan
// built in rounds); their bits count against the budget first.
inline allocation allocate_bits(const std::vector<allocation_item>& items, const quant::format_spec& low,
                                const quant::format_spec& high, double budget_bits, const std::vector<bool>& fixed = {}) {
  check(low.is_quantized() && high.is_quantized(), "bit allocation needs two quantized formats, got " + low.str() + " and " + high.str());
  check(!items.empty(), "bit allocation needs at least one linear");
  check(fixed.empty() || fixed.size() == items.size(),
        "bit allocation: " + std::to_string(fixed.size()) + " fixed flags for " + std::to_string(items.size()) + " linears");
  std::vector<double> extra(items.size());  // bits the raise costs
  for (std::size_t i = 0; i < items.size(); ++i) {
    const auto& it = items[i];
    check(it.weights > 0 && it.cols > 0, "bit allocation: " + it.tensor + " has no weights");
    extra[i] = static_cast<double>(it.weights) * (high.bits_per_weight(it.cols) - low.bits_per_weight(it.cols));
    check(extra[i] > 0, "bit allocation: " + high.str() + " takes no more bits than " + low.str() + " for " + it.tensor);
  }
  const weight_bits at_low = uniform_bits(items, low);
  const double total_w = at_low.weights, floor_bits = at_low.per_weight();
  double bits = at_low.bits;
  check(budget_bits >= floor_bits, "a budget of " + std::to_string(budget_bits) + " bits per weight is below " + low.str() + "'s " +
                                       std::to_string(floor_bits) + " for these linears");
  std::vector<std::size_t> order(items.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  const auto gain = [&](std::size_t i) { return (items[i].kl_low - items[i].kl_high) / extra[i]; };
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return gain(a) > gain(b); });
  allocation r;
  r.high.assign(items.size(), false);
  for (std::size_t i = 0; i < fixed.size(); ++i)
    if (fixed[i]) {
      bits += extra[i];
      r.high[i] = true;
    }
  check(bits / total_w <= budget_bits * (1 + 1e-12), "bit allocation: the linears raised already take " + std::to_string(bits / total_w) +
                                                         " bits per weight, over the budget of " + std::to_string(budget_bits));
  for (const std::size_t i : order) {
    if (r.high[i]) continue;  // raised already
    if (gain(i) <= 0) break;  // raising it saves nothing measurable
    if ((bits + extra[i]) / total_w > budget_bits) continue;  // a smaller linear may still fit
    bits += extra[i];
    r.high[i] = true;
  }
  r.bits_per_weight = bits / total_w;
  for (std::size_t i = 0; i < items.size(); ++i) r.kl_sum += r.high[i] ? items[i].kl_high : items[i].kl_low;
  return r;
}

// The allocation as a precision plan (quant/plan.hpp's text form): one rule per raised linear,
// `low` by default, the embedding and output head kept as stored (as uniform formats keep them).
inline std::string allocation_plan(const std::vector<allocation_item>& items, const allocation& a, const quant::format_spec& low,
                                   const quant::format_spec& high, bool tied_head, const std::string& note) {
  std::string s = "# " + note + "\n# " + std::to_string(std::count(a.high.begin(), a.high.end(), true)) + " of " +
                  std::to_string(items.size()) + " linears at " + high.str() + ", the rest " + low.str() + ": " +
                  std::to_string(a.bits_per_weight) + " bits per weight over the layer linears\n";
  for (std::size_t i = 0; i < items.size(); ++i)
    if (a.high[i]) {
      char kl[96];
      std::snprintf(kl, sizeof kl, "   # KL %.3g -> %.3g", items[i].kl_low, items[i].kl_high);
      s += "layers " + std::to_string(items[i].layer) + " " + items[i].component + " " + high.str() + kl + "\n";
    }
  s += "embed keep\n";
  if (!tied_head) s += "lm_head keep\n";
  s += "default " + low.str() + "\n";
  return s;
}

}  // namespace qmr::probe
