// The one exception type of qmr: a message plus where it happened (file, tensor, byte offset, field).
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

namespace qmr {

// Where an error was found. Every part is optional; what() prints the parts that are set,
// e.g. "model.safetensors: tensor 'lm_head.weight': field 'data_offsets': byte 4096: ...".
struct error_context {
  std::string file;
  std::string tensor;
  std::string field;
  std::optional<std::uint64_t> offset;
};

// Shorthand for the common case of an error found in a file.
inline error_context in_file(std::string file, std::string tensor = {}, std::string field = {},
                             std::optional<std::uint64_t> offset = std::nullopt) {
  return {std::move(file), std::move(tensor), std::move(field), offset};
}

class error : public std::runtime_error {
 public:
  explicit error(std::string message, error_context context = {})
      : std::runtime_error(format(message, context)), message_(std::move(message)), context_(std::move(context)) {}

  const std::string& message() const noexcept { return message_; }
  const error_context& context() const noexcept { return context_; }

 private:
  static std::string format(const std::string& message, const error_context& c) {
    std::string out;
    if (!c.file.empty()) out += c.file + ": ";
    if (!c.tensor.empty()) out += "tensor '" + c.tensor + "': ";
    if (!c.field.empty()) out += "field '" + c.field + "': ";
    if (c.offset) out += "byte " + std::to_string(*c.offset) + ": ";
    return out + message;
  }

  std::string message_;
  error_context context_;
};

// Throws qmr::error when a precondition of the caller's input does not hold.
inline void check(bool condition, const std::string& message, const error_context& context = {}) {
  if (!condition) throw error(message, context);
}

}  // namespace qmr
