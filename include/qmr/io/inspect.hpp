// What a checkpoint or GGUF file holds, tensor by tensor: name, dtype or quantized format, logical shape, bytes, bits per weight.
#pragma once

#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "gguf.hpp"
#include "quantized.hpp"
#include "safetensors.hpp"

namespace qmr::io {

struct inspect_entry {
  std::string name;    // logical name: a qmr-quantized weight is one entry, not three
  std::string format;  // safetensors dtype ("BF16", "I64", ...) or qmr format ("w4g128")
  shape_t shape;       // logical shape ([rows, cols] for a quantized weight)
  std::uint64_t bytes = 0;
  double bits_per_weight = 0;
  std::string file;  // the shard holding it
  bool quantized = false;
};

// Lists every tensor of every shard, sorted by name; qmr-quantized weights are
// validated (arrays present, shapes consistent, scales finite) and shown as one entry.
inline std::vector<inspect_entry> inspect_checkpoint(const checkpoint& c) {
  std::vector<inspect_entry> out;
  for (const safetensors_file& f : c.shards()) {
    std::set<std::string> parts;
    for (const quantized_entry& e : quantized_entries(f)) {
      const quant::qtensor_view v = load_quantized(f, e);
      for (const char* suffix : {".qcodes", ".qscales", ".qzeros"})
        if (f.find(e.name + suffix)) parts.insert(e.name + suffix);
      inspect_entry row;
      row.name = e.name;
      row.format = e.spec.str();
      row.shape = make_shape({e.rows, e.cols});
      row.bytes = static_cast<std::uint64_t>(v.layout.total_bytes());
      row.bits_per_weight = 8.0 * static_cast<double>(row.bytes) / static_cast<double>(e.rows * e.cols);
      row.file = f.file();
      row.quantized = true;
      out.push_back(std::move(row));
    }
    for (const tensor_info& t : f.tensors()) {
      if (parts.count(t.name)) continue;
      inspect_entry row;
      row.name = t.name;
      row.format = t.dtype_name;
      row.shape = t.shape;
      row.bytes = t.nbytes();
      row.bits_per_weight = 8.0 * static_cast<double>(t.element_size);
      row.file = f.file();
      out.push_back(std::move(row));
    }
  }
  std::sort(out.begin(), out.end(), [](const inspect_entry& a, const inspect_entry& b) { return a.name < b.name; });
  return out;
}

// Lists a GGUF file's tensors in file order: ggml type name, row-major shape, bytes;
// `quantized` for the block types (more than one element per block).
inline std::vector<inspect_entry> inspect_gguf(const gguf_file& f) {
  std::vector<inspect_entry> out;
  for (const gguf_tensor& t : f.tensors()) {
    inspect_entry row;
    row.name = t.name;
    row.format = std::string(t.type->name);
    const std::vector<std::int64_t> dims = t.shape();
    row.shape.rank = static_cast<int>(dims.size());  // 1 to 4 (the reader's check), within max_rank
    std::copy(dims.begin(), dims.end(), row.shape.dims.begin());
    row.bytes = t.nbytes;
    row.bits_per_weight = 8.0 * static_cast<double>(t.nbytes) / static_cast<double>(t.numel());
    row.file = f.name();
    row.quantized = t.type->block_elems > 1;
    out.push_back(std::move(row));
  }
  return out;
}

}  // namespace qmr::io
