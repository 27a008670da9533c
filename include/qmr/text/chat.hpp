// ChatML prompt formatting (the chat format of Qwen2/Qwen2.5/Qwen3), built in rather than run from a Jinja template.
#pragma once

#include <span>
#include <string>

namespace qmr::text {

struct chat_message {
  std::string role;     // "system", "user", "assistant", ...
  std::string content;
};

// Each message as "<|im_start|>{role}\n{content}<|im_end|>\n", then "<|im_start|>assistant\n"
// when add_generation_prompt is set, so that the model writes the assistant's turn.
// Contents are copied verbatim: a content that itself contains "<|im_end|>" will be encoded as
// that special token. Model-specific template extras (Qwen's default system prompt, Qwen3's
// <think> handling, tool calls) are not added.
inline std::string format_chatml(std::span<const chat_message> messages, bool add_generation_prompt) {
  std::string out;
  for (const chat_message& m : messages) {
    out += "<|im_start|>";
    out += m.role;
    out += '\n';
    out += m.content;
    out += "<|im_end|>\n";
  }
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

}  // namespace qmr::text
