// The token ids generation stops at by default: config.json's eos_token_id and generation_config.json's.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <vector>

#include "../io/json_file.hpp"
#include "weights.hpp"

namespace qmr::model {

inline std::vector<std::int32_t> default_stop_tokens(const model& m) {
  std::vector<std::int32_t> ids = m.config().eos_token_ids;
  const auto path = m.directory() / "generation_config.json";
  if (std::filesystem::exists(path)) {
    const nlohmann::json j = io::read_json_file(path);
    const auto add = [&](const nlohmann::json& e) {
      if (!e.is_number_integer()) throw error("must be an integer or a list of integers", in_file(path.string(), {}, "eos_token_id"));
      ids.push_back(detail::token_id(e, path.string(), "eos_token_id"));  // range-checked, not wrapped
    };
    if (j.is_object() && j.contains("eos_token_id") && !j["eos_token_id"].is_null()) {
      if (j["eos_token_id"].is_array())
        for (const auto& e : j["eos_token_id"]) add(e);
      else add(j["eos_token_id"]);
    }
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

}  // namespace qmr::model
