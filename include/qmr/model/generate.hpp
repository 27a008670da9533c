// Token generation over a session: greedy or seeded temperature / top-p sampling, stop tokens and strings, streaming.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <numeric>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "forward.hpp"

namespace qmr::model {

struct sampling_options {
  float temperature = 0.0f;  // 0: greedy (argmax, ties to the lowest id, as torch.argmax)
  float top_p = 1.0f;        // nucleus: sample among the most likely tokens whose mass reaches top_p
  std::uint64_t seed = 0;
  int max_tokens = 128;
  std::vector<std::int32_t> stop_tokens;  // generation ends after emitting one of these (it is kept)
};

// Picks the next token from logits[vocab].
class sampler {
 public:
  explicit sampler(const sampling_options& o) : o_(o), rng_(o.seed) {
    check(o.temperature >= 0 && std::isfinite(o.temperature), "temperature must be a finite number >= 0");
    check(o.top_p > 0 && o.top_p <= 1, "top_p must be in (0, 1]");
  }

  std::int32_t next(std::span<const float> logits) {
    check(!logits.empty(), "sampler: empty logits");
    const auto argmax = static_cast<std::int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    if (o_.temperature == 0.0f) return argmax;
    // Softmax at the temperature, relative to the largest logit for stability.
    const float top = logits[static_cast<std::size_t>(argmax)];
    probs_.resize(logits.size());
    order_.resize(logits.size());
    double sum = 0;
    for (std::size_t i = 0; i < logits.size(); ++i) {
      probs_[i] = std::exp(static_cast<double>(logits[i] - top) / o_.temperature);
      sum += probs_[i];
    }
    std::iota(order_.begin(), order_.end(), 0);
    std::size_t keep = order_.size();
    if (o_.top_p < 1.0f) {
      std::sort(order_.begin(), order_.end(), [&](std::int32_t a, std::int32_t b) {
        return probs_[static_cast<std::size_t>(a)] > probs_[static_cast<std::size_t>(b)] ||
               (probs_[static_cast<std::size_t>(a)] == probs_[static_cast<std::size_t>(b)] && a < b);
      });
      double mass = 0;
      keep = 0;
      while (keep < order_.size() && mass < o_.top_p * sum) mass += probs_[static_cast<std::size_t>(order_[keep++])];
      sum = mass;
    }
    std::uniform_real_distribution<double> u(0.0, sum);
    double r = u(rng_);
    for (std::size_t i = 0; i < keep; ++i) {
      r -= probs_[static_cast<std::size_t>(order_[i])];
      if (r <= 0) return order_[i];
    }
    return order_[keep - 1];
  }

 private:
  sampling_options o_;
  std::mt19937_64 rng_;
  std::vector<double> probs_;
  std::vector<std::int32_t> order_;
};

enum class stop_reason { max_tokens, stop_token, stop_string, callback, capacity };

struct generation {
  std::vector<std::int32_t> tokens;  // generated ids (the stop token included)
  stop_reason reason = stop_reason::max_tokens;
  double prefill_seconds = 0, decode_seconds = 0;
};

// Called with each new token; return false to stop.
using token_callback = std::function<bool(std::int32_t)>;
// Optional: the text of the tokens generated so far, to test stop strings against.
using detokenize_fn = std::function<std::string(std::span<const std::int32_t>)>;

namespace detail {

// The decode loop of every session kind: step(tokens) runs the session over tokens and
// returns the next token's id (the sampler over its logits, or a device argmax). The
// first call takes the whole prompt (timed as prefill), each later one the token before.
template <class Session, class Step>
generation generate_with(Session& s, std::span<const std::int32_t> prompt, const sampling_options& o, Step&& step,
                         const token_callback& on_token, const std::vector<std::string>& stop_strings,
                         const detokenize_fn& detokenize) {
  check(!prompt.empty(), "generate needs a non-empty prompt");
  // A negative count would return no tokens as if max_tokens had been reached: say so instead.
  check(o.max_tokens >= 0, "max_tokens must be >= 0, got " + std::to_string(o.max_tokens));
  check(stop_strings.empty() || detokenize, "stop strings need a detokenizer");
  generation g;
  const auto t0 = std::chrono::steady_clock::now();
  std::int32_t id = step(prompt);
  const auto t1 = std::chrono::steady_clock::now();
  g.prefill_seconds = std::chrono::duration<double>(t1 - t0).count();
  for (int i = 0; i < o.max_tokens; ++i) {
    g.tokens.push_back(id);
    if (on_token && !on_token(id)) {
      g.reason = stop_reason::callback;
      break;
    }
    if (std::find(o.stop_tokens.begin(), o.stop_tokens.end(), id) != o.stop_tokens.end()) {
      g.reason = stop_reason::stop_token;
      break;
    }
    if (!stop_strings.empty()) {
      const std::string text = detokenize(g.tokens);
      if (std::any_of(stop_strings.begin(), stop_strings.end(),
                      [&](const std::string& st) { return !st.empty() && text.find(st) != std::string::npos; })) {
        g.reason = stop_reason::stop_string;
        break;
      }
    }
    if (i + 1 == o.max_tokens) break;
    if (s.length() >= s.capacity()) {
      g.reason = stop_reason::capacity;
      break;
    }
    const std::int32_t one[] = {id};
    id = step(std::span<const std::int32_t>(one));
  }
  g.decode_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  return g;
}

}  // namespace detail

// Prefills `prompt` after whatever the session holds, then decodes up to max_tokens tokens.
inline generation generate(session& s, std::span<const std::int32_t> prompt, const sampling_options& o,
                           const token_callback& on_token = {}, const std::vector<std::string>& stop_strings = {},
                           const detokenize_fn& detokenize = {}) {
  sampler pick(o);
  const auto step = [&](std::span<const std::int32_t> tokens) {
    const matrix_view<const float> logits = s.forward(tokens);
    return pick.next({logits.row(0), static_cast<std::size_t>(logits.cols)});
  };
  return detail::generate_with(s, prompt, o, step, on_token, stop_strings, detokenize);
}

}  // namespace qmr::model
