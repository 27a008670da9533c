// Access to the transformers-made model fixtures under tests/data/hf (see tools/make_hf_fixtures.py).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace qmr::testing {

inline const char* const fixture_models[] = {"llama-gqa2",         "llama-gqa1-tied-rope-llama3", "qwen2-gqa7-bias",
                                             "qwen3-qknorm-linear-rope", "qwen2-bf16-sharded",   "qwen3-f16-tied"};

inline std::filesystem::path fixture_dir(const std::string& name) {
  const char* root = std::getenv("QMR_TEST_DATA");
  if (!root) throw std::runtime_error("QMR_TEST_DATA is not set");
  return std::filesystem::path(root) / "hf" / name;
}

struct reference {
  std::vector<std::int32_t> ids;
  std::int64_t vocab = 0;
  std::vector<float> logits;  // [ids, vocab]
  struct continuation {
    std::vector<std::int32_t> prompt, greedy;
  };
  std::vector<continuation> continuations;
  std::string stored_dtype;
};

inline reference load_reference_at(const std::filesystem::path& dir) {
  nlohmann::json j;
  std::ifstream(dir / "reference.json") >> j;
  reference r;
  r.ids = j["ids"].get<std::vector<std::int32_t>>();
  r.vocab = j["vocab"].get<std::int64_t>();
  r.stored_dtype = j["stored_dtype"].get<std::string>();
  for (const auto& c : j["continuations"])
    r.continuations.push_back({c["prompt"].get<std::vector<std::int32_t>>(), c["greedy"].get<std::vector<std::int32_t>>()});
  r.logits.resize(r.ids.size() * static_cast<std::size_t>(r.vocab));
  std::ifstream f(dir / "reference_logits.f32", std::ios::binary);
  f.read(reinterpret_cast<char*>(r.logits.data()), static_cast<std::streamsize>(r.logits.size() * sizeof(float)));
  if (!f) throw std::runtime_error("short reference_logits.f32 in " + dir.string());
  return r;
}

inline reference load_reference(const std::string& name) { return load_reference_at(fixture_dir(name)); }

// The bundled default model, models/qmr-math (QMR_MODELS_DIR points at models/).
inline std::filesystem::path default_model_dir() {
  const char* root = std::getenv("QMR_MODELS_DIR");
  if (!root) throw std::runtime_error("QMR_MODELS_DIR is not set");
  return std::filesystem::path(root) / "qmr-math";
}

}  // namespace qmr::testing
