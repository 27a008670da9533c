// Quantizes every linear weight of a safetensors checkpoint (file or Hugging Face directory) and writes a qmr checkpoint beside it.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/thread_pool.hpp"
#include "../io/quantized.hpp"
#include "../io/safetensors.hpp"
#include "../io/text_file.hpp"
#include "distortion.hpp"
#include "rtn.hpp"

namespace qmr::quant {

struct checkpoint_options {
  format_spec spec = format_spec::quantized(4, 128, false);
  rtn_options rtn;
  // Weights whose name contains one of these stay in their original precision.
  // Embeddings and the output head are kept by default, as GPTQ and AWQ do:
  // they are a small share of a large model's bytes and the most sensitive.
  std::vector<std::string> skip = {"embed_tokens", "lm_head"};
};

struct checkpoint_report {
  struct tensor {
    std::string name;
    std::string format;  // what it was written as
    std::string reason;  // why it was kept as is, empty when quantized
    shape_t shape;
    std::uint64_t bytes_in = 0, bytes_out = 0;
    double rms_relative_error = 0;  // of the quantized weight, 0 when kept
  };
  std::vector<tensor> tensors;
  std::uint64_t bytes_in = 0, bytes_out = 0;
  double seconds = 0;
};

// Called after each tensor: (tensors done, tensors in all, name).
using progress_fn = std::function<void(std::size_t, std::size_t, const std::string&)>;

namespace detail {

// Files of a Hugging Face model directory that describe the model rather than hold weights.
inline const char* const companion_files[] = {
    "config.json",      "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
    "vocab.json",       "merges.txt",             "tokenizer.model", "added_tokens.json",     "chat_template.jinja",
    "chat_template.json", "README.md", "LICENSE"};

// Why tensor t is kept as is, or "" when it is to be quantized.
inline std::string keep_reason(const io::tensor_info& t, const checkpoint_options& o) {
  for (const std::string& s : o.skip)
    if (t.name.find(s) != std::string::npos) return "skipped (matches '" + s + "')";
  if (t.shape.rank != 2) return "not a matrix";
  if (t.name.size() < 7 || t.name.compare(t.name.size() - 7, 7, ".weight") != 0) return "not a .weight";
  if (!t.type || (*t.type != dtype::f32 && *t.type != dtype::f16 && *t.type != dtype::bf16))
    return "dtype " + t.dtype_name + " is not floating point";
  if (t.shape[1] % 8 != 0 || (o.spec.group != per_channel && t.shape[1] % o.spec.group != 0))
    return "columns (" + std::to_string(t.shape[1]) + ") not a multiple of the group";
  return "";
}

inline void quantize_file(const io::safetensors_file& in, const std::filesystem::path& out, const checkpoint_options& o,
                          thread_pool* pool, checkpoint_report& report, std::size_t& done, std::size_t total,
                          const progress_fn& progress) {
  if (!io::quantized_entries(in).empty())
    throw error("already quantized by qmr; quantize the original checkpoint instead", in_file(in.file()));
  io::safetensors_writer writer;
  for (const auto& [k, v] : in.metadata()) writer.set_metadata(k, v);
  writer.set_metadata("qmr.format_version", io::qmr_format_version);
  for (const io::tensor_info& t : in.tensors()) {
    checkpoint_report::tensor row;
    row.name = t.name;
    row.shape = t.shape;
    row.bytes_in = t.nbytes();
    row.reason = keep_reason(t, o);
    if (row.reason.empty()) {
      std::vector<float> w(static_cast<std::size_t>(t.shape.numel()));
      copy_to_f32(in.view(t), w.data());
      qtensor q;
      try {
        q = quantize_rtn({w.data(), t.shape[0], t.shape[1]}, o.spec, o.rtn, pool, t.name);
      } catch (const error& e) {
        throw error(e.message(), in_file(in.file(), t.name));
      }
      io::write_quantized(writer, t.name, q, o.rtn.clip_search ? "rtn+clip" : "rtn");
      row.format = o.spec.str();
      row.bytes_out = static_cast<std::uint64_t>(q.layout().total_bytes());
      row.rms_relative_error = measure_distortion({w.data(), t.shape[0], t.shape[1]}, q.view()).rms_relative();
    } else {
      writer.add(t.name, t.dtype_name, t.shape, in.raw(t));
      row.format = t.dtype_name;
      row.bytes_out = t.nbytes();
    }
    report.bytes_in += row.bytes_in;
    report.bytes_out += row.bytes_out;
    report.tensors.push_back(row);
    if (progress) progress(++done, total, t.name);
  }
  writer.write(out);
}

}  // namespace detail

// Quantizes `in` (a .safetensors file, or a model directory with one file or
// shards) into `out` (a file, or a directory with the same shard names, the index
// rewritten, the config and tokenizer files copied, and qmr_quantization.json).
// Each output file is written whole and then renamed into place.
inline checkpoint_report quantize_checkpoint(const std::filesystem::path& in, const std::filesystem::path& out,
                                             const checkpoint_options& options, thread_pool* pool = nullptr,
                                             const progress_fn& progress = {}) {
  namespace fs = std::filesystem;
  check(options.spec.is_quantized(), "quantize needs a quantized format, got " + options.spec.str());
  const auto start = std::chrono::steady_clock::now();
  const io::checkpoint c = io::checkpoint::open(in);
  std::size_t total = 0, done = 0;
  for (const auto& f : c.shards()) total += f.tensors().size();
  checkpoint_report report;

  if (c.directory().empty()) {
    detail::quantize_file(c.shards().front(), out, options, pool, report, done, total, progress);
  } else {
    check(fs::absolute(in) != fs::absolute(out), "output directory must differ from the input directory");
    fs::create_directories(out);
    nlohmann::json weight_map = nlohmann::json::object();
    for (const io::safetensors_file& f : c.shards()) {
      const fs::path name = fs::path(f.file()).filename();
      const std::size_t first = report.tensors.size();
      detail::quantize_file(f, out / name, options, pool, report, done, total, progress);
      for (std::size_t i = first; i < report.tensors.size(); ++i) {
        const auto& t = report.tensors[i];
        if (t.reason.empty()) {
          weight_map[t.name + ".qcodes"] = name.string();
          weight_map[t.name + ".qscales"] = name.string();
          if (!options.spec.symmetric) weight_map[t.name + ".qzeros"] = name.string();
        } else {
          weight_map[t.name] = name.string();
        }
      }
    }
    if (!c.index_file().empty()) {
      const nlohmann::json index = {{"metadata", {{"total_size", report.bytes_out}}}, {"weight_map", weight_map}};
      io::write_text_file(out / "model.safetensors.index.json", index.dump(2) + "\n");
    }
    for (const char* name : detail::companion_files)
      if (fs::exists(c.directory() / name))
        fs::copy_file(c.directory() / name, out / name, fs::copy_options::overwrite_existing);
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  if (!c.directory().empty()) {
    nlohmann::json summary = {{"qmr_version", QMR_VERSION_STRING},
                              {"format", options.spec.str()},
                              {"method", options.rtn.clip_search ? "rtn+clip" : "rtn"},
                              {"skip", options.skip},
                              {"bytes_in", report.bytes_in},
                              {"bytes_out", report.bytes_out},
                              {"seconds", report.seconds},
                              {"tensors", nlohmann::json::array()}};
    for (const auto& t : report.tensors)
      summary["tensors"].push_back({{"name", t.name},
                                    {"format", t.format},
                                    {"kept_because", t.reason},
                                    {"rms_relative_error", t.rms_relative_error}});
    io::write_text_file(out / "qmr_quantization.json", summary.dump(2) + "\n");
  }
  return report;
}

}  // namespace qmr::quant
