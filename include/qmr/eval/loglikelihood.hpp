// Log-likelihood scoring as lm-evaluation-harness does it: continuation log-probabilities (multiple choice) and rolling-window perplexity.
#pragma once

#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "../model/forward.hpp"
#include "../text/tokenizer.hpp"

namespace qmr::eval {

struct continuation_score {
  double logprob = 0;     // sum of log p(continuation token | everything before)
  bool greedy = true;     // every continuation token was the argmax
  int tokens = 0;
};

namespace detail {

// log softmax(logits)[id], computed in double for a stable sum over a large vocabulary.
inline double log_softmax_at(const float* logits, std::int64_t vocab, std::int32_t id, bool* is_argmax) {
  float top = logits[0];
  std::int64_t arg = 0;
  for (std::int64_t i = 1; i < vocab; ++i)
    if (logits[i] > top) top = logits[i], arg = i;
  double sum = 0;
  for (std::int64_t i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(logits[i]) - top);
  if (is_argmax) *is_argmax = arg == id;
  return static_cast<double>(logits[id]) - top - std::log(sum);
}

}  // namespace detail

// Scores `continuation` after `context` (token ids; both non-empty, as lm-eval requires).
// Session: model::session, or any session with its reset() and forward(tokens, all_logits)
// (e.g. a GPU session).
template <class Session>
continuation_score score_continuation(Session& s, std::span<const std::int32_t> context,
                                             std::span<const std::int32_t> continuation) {
  check(!context.empty(), "loglikelihood needs a non-empty context");
  check(!continuation.empty(), "loglikelihood needs a non-empty continuation");
  std::vector<std::int32_t> input(context.begin(), context.end());
  input.insert(input.end(), continuation.begin(), continuation.end() - 1);
  s.reset();
  const auto logits = s.forward(input, true);  // [input, vocab]
  continuation_score r;
  r.tokens = static_cast<int>(continuation.size());
  const std::int64_t first = static_cast<std::int64_t>(context.size()) - 1;
  for (std::size_t i = 0; i < continuation.size(); ++i) {
    bool is_argmax = false;
    r.logprob += detail::log_softmax_at(logits.row(first + static_cast<std::int64_t>(i)), logits.cols, continuation[i], &is_argmax);
    r.greedy = r.greedy && is_argmax;
  }
  return r;
}

// lm-eval's _encode_pair: trailing spaces of the context move to the continuation, the pair
// is encoded whole, and the continuation is what follows the context's own encoding.
inline std::pair<std::vector<std::int32_t>, std::vector<std::int32_t>> encode_pair(const text::tokenizer& tok,
                                                                                   std::string context,
                                                                                   std::string continuation) {
  const std::size_t kept = context.find_last_not_of(' ') + 1;
  if (kept < context.size()) {
    continuation = context.substr(kept) + continuation;
    context.erase(kept);
  }
  const std::vector<std::int32_t> whole = tok.encode(context + continuation);
  std::vector<std::int32_t> ctx = tok.encode(context);
  check(ctx.size() < whole.size(), "the continuation encodes to no tokens");
  return {ctx, std::vector<std::int32_t>(whole.begin() + static_cast<std::ptrdiff_t>(ctx.size()), whole.end())};
}

struct rolling_score {
  double logprob = 0;  // natural log, summed over every token of the document
  std::int64_t tokens = 0, words = 0, bytes = 0;
  double token_perplexity() const { return std::exp(-logprob / static_cast<double>(tokens)); }
  double word_perplexity() const { return std::exp(-logprob / static_cast<double>(words)); }
  double byte_perplexity() const { return std::exp(-logprob / static_cast<double>(bytes)); }
  double bits_per_byte() const { return -logprob / (static_cast<double>(bytes) * std::log(2.0)); }
};

// lm-eval's loglikelihood_rolling: every token of `text` is predicted once, in disjoint windows
// of max_length predictions; the first window starts from `prefix_token` (the end-of-text
// token), each later window sees the max_length tokens before its first prediction. Session as
// for score_continuation, with capacity() too.
template <class Session>
rolling_score score_rolling(Session& s, const text::tokenizer& tok, std::string_view text,
                                   std::int32_t prefix_token, int max_length) {
  check(max_length > 0 && max_length <= s.capacity(), "rolling window larger than the session");
  const std::vector<std::int32_t> ids = tok.encode(text);
  rolling_score r;
  r.tokens = static_cast<std::int64_t>(ids.size());
  r.bytes = static_cast<std::int64_t>(text.size());
  // Words as len(re.split(r"\s+", doc)) counts them: one more than the whitespace runs.
  bool in_space = false;
  std::int64_t pieces = 1;
  for (char c : text) {
    const bool space = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
    if (space && !in_space) ++pieces;
    in_space = space;
  }
  r.words = pieces;
  const std::int64_t n = static_cast<std::int64_t>(ids.size());
  for (std::int64_t start = 0; start < n; start += max_length) {
    const std::int64_t end = std::min(n, start + max_length);  // predict ids[start, end)
    // Input: the max_length tokens before `end` (prefix token standing in before the text).
    std::vector<std::int32_t> input;
    const std::int64_t from = std::max<std::int64_t>(-1, end - 1 - max_length);
    for (std::int64_t i = from; i < end - 1; ++i) input.push_back(i < 0 ? prefix_token : ids[static_cast<std::size_t>(i)]);
    s.reset();
    const auto logits = s.forward(input, true);
    const std::int64_t offset = static_cast<std::int64_t>(input.size()) - (end - start);
    for (std::int64_t t = start; t < end; ++t)
      r.logprob += detail::log_softmax_at(logits.row(offset + (t - start)), logits.cols, ids[static_cast<std::size_t>(t)], nullptr);
  }
  return r;
}

}  // namespace qmr::eval
