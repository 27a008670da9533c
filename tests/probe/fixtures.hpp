// The probe tests' small model and random teacher-forced items.
#pragma once

#include <cstdint>
#include <filesystem>
#include <random>
#include <vector>

#include "qmr/io/synthetic_checkpoint.hpp"
#include "qmr/probe/sensitivity.hpp"

namespace qmr::testing {

// A small random Llama-shaped checkpoint: hidden 64, intermediate 128, 2 layers, 4 heads (2 KV), vocabulary 96.
inline void write_probe_model(const std::filesystem::path& dir) {
  io::synthetic_config c;
  c.hidden = 64;
  c.intermediate = 128;
  c.layers = 2;
  c.heads = 4;
  c.kv_heads = 2;
  c.vocab = 96;
  c.seed = 7;
  io::write_synthetic_checkpoint(dir, c);
}

// n items of random ids below `vocab`: contexts of 3-9 tokens, continuations of 2-7, levels 1-5 in turn.
inline std::vector<probe::forced_item> random_items(int n, std::int32_t vocab, std::uint32_t seed) {
  std::mt19937 g(seed);
  std::uniform_int_distribution<std::int32_t> id(0, vocab - 1);
  std::vector<probe::forced_item> items;
  for (int i = 0; i < n; ++i) {
    probe::forced_item it;
    it.context.resize(static_cast<std::size_t>(3 + i % 7));
    it.continuation.resize(static_cast<std::size_t>(2 + i % 6));
    for (auto& t : it.context) t = id(g);
    for (auto& t : it.continuation) t = id(g);
    it.level = 1 + i % 5;
    items.push_back(it);
  }
  return items;
}

}  // namespace qmr::testing
