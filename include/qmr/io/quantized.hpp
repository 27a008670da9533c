// How qmr stores quantized matrices in safetensors files, and how it reads them back (validated, zero-copy).
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/error.hpp"
#include "../quant/qtensor.hpp"
#include "safetensors.hpp"

namespace qmr::io {

// A weight W (say "model.layers.0.mlp.up_proj.weight") quantized by qmr is stored
// as up to three safetensors tensors named after it, holding the arrays of
// quant/format.hpp:
//   W.qcodes  U8  [rows, code_row_bytes]
//   W.qscales F16 [rows, n_groups]
//   W.qzeros  U8  [rows, zero_row_bytes]     (asymmetric formats only)
// and one __metadata__ entry "qmr:W" whose value is a JSON object
//   {"format": "w4g128", "shape": [rows, cols], "method": "rtn"}.
// "qmr.format_version" in __metadata__ is the version of this layout.
inline constexpr const char* qmr_format_version = "1";
inline constexpr const char* qmr_metadata_prefix = "qmr:";

struct quantized_entry {
  std::string name;  // the logical weight name, W above
  quant::format_spec spec;
  std::int64_t rows = 0, cols = 0;
  std::string method;
};

inline void write_quantized(safetensors_writer& out, const std::string& name, const quant::qtensor_view& q,
                            const std::string& method) {
  const quant::qtensor_layout& l = q.layout;
  out.add(name + ".qcodes", "U8", make_shape({l.rows, l.code_row_bytes}),
          std::as_bytes(std::span<const std::uint8_t>(q.codes, static_cast<std::size_t>(l.code_bytes()))));
  out.add(name + ".qscales", "F16", make_shape({l.rows, l.n_groups}),
          std::as_bytes(std::span<const f16>(q.scales, static_cast<std::size_t>(l.scale_count()))));
  if (!q.spec.symmetric)
    out.add(name + ".qzeros", "U8", make_shape({l.rows, l.zero_row_bytes}),
            std::as_bytes(std::span<const std::uint8_t>(q.zeros, static_cast<std::size_t>(l.zero_bytes()))));
  const nlohmann::json meta = {{"format", q.spec.str()}, {"shape", {l.rows, l.cols}}, {"method", method}};
  out.set_metadata(qmr_metadata_prefix + name, meta.dump());
  out.set_metadata("qmr.format_version", qmr_format_version);
}
inline void write_quantized(safetensors_writer& out, const std::string& name, const quant::qtensor& q,
                            const std::string& method) {
  write_quantized(out, name, q.view(), method);
}

// The quantized weights a file describes in its metadata (empty for plain checkpoints).
inline std::vector<quantized_entry> quantized_entries(const safetensors_file& f) {
  std::vector<quantized_entry> out;
  const std::string prefix = qmr_metadata_prefix;
  for (const auto& [key, value] : f.metadata()) {
    if (key.compare(0, prefix.size(), prefix) != 0) continue;
    quantized_entry e;
    e.name = key.substr(prefix.size());
    const auto ctx = in_file(f.file(), e.name, "__metadata__." + key);
    const auto version = f.metadata().find("qmr.format_version");
    if (version == f.metadata().end() || version->second != qmr_format_version)
      throw error(std::string("qmr.format_version is missing or not ") + qmr_format_version, ctx);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(value);
    } catch (const nlohmann::json::parse_error& err) {
      throw error(std::string("not valid JSON: ") + err.what(), ctx);
    }
    if (!j.is_object() || !j.contains("format") || !j["format"].is_string() || !j.contains("shape") ||
        !j["shape"].is_array() || j["shape"].size() != 2 || !j["shape"][0].is_number_unsigned() ||
        !j["shape"][1].is_number_unsigned())
      throw error("expected {\"format\": \"w..g..\", \"shape\": [rows, cols], ...}", ctx);
    try {
      e.spec = quant::parse_format(j["format"].get<std::string>());
    } catch (const error& err) {
      throw error(err.message(), ctx);
    }
    if (!e.spec.is_quantized()) throw error("format " + e.spec.str() + " is not a quantized format", ctx);
    e.rows = j["shape"][0].get<std::int64_t>();
    e.cols = j["shape"][1].get<std::int64_t>();
    e.method = j.contains("method") && j["method"].is_string() ? j["method"].get<std::string>() : "";
    out.push_back(std::move(e));
  }
  return out;
}

// A zero-copy view of quantized weight `e` of file `f`, after checking that its
// arrays exist with the dtypes and shapes the format implies and that every scale is finite.
inline quant::qtensor_view load_quantized(const safetensors_file& f, const quantized_entry& e) {
  quant::qtensor_layout l;
  try {
    l = quant::qtensor_layout::of(e.spec, e.rows, e.cols);
  } catch (const error& err) {
    throw error(err.message(), in_file(f.file(), e.name));
  }
  const auto part = [&](const std::string& suffix, const char* dtype_name, std::int64_t rows,
                        std::int64_t cols) -> const tensor_info& {
    const tensor_info* t = f.find(e.name + suffix);
    if (!t) throw error("missing tensor " + e.name + suffix + " of a " + e.spec.str() + " weight", in_file(f.file(), e.name));
    if (t->dtype_name != dtype_name || !(t->shape == make_shape({rows, cols})))
      throw error("is " + t->dtype_name + " " + t->shape.str() + ", but " + e.spec.str() + " [" + std::to_string(e.rows) +
                      ", " + std::to_string(e.cols) + "] needs " + dtype_name + " " + make_shape({rows, cols}).str(),
                  in_file(f.file(), t->name));
    return *t;
  };
  quant::qtensor_view v;
  v.spec = e.spec;
  v.layout = l;
  v.codes = f.view(part(".qcodes", "U8", l.rows, l.code_row_bytes)).as<std::uint8_t>();
  const tensor_info& scales = part(".qscales", "F16", l.rows, l.n_groups);
  v.scales = f.view(scales).as<f16>();
  for (std::int64_t i = 0; i < l.scale_count(); ++i)
    if (!std::isfinite(to_float(v.scales[i])))
      throw error("scale " + std::to_string(i) + " is not finite", in_file(f.file(), scales.name, {}, 8 + f.header_bytes() + scales.begin + 2 * static_cast<std::uint64_t>(i)));
  if (!e.spec.symmetric) v.zeros = f.view(part(".qzeros", "U8", l.rows, l.zero_row_bytes)).as<std::uint8_t>();
  return v;
}

}  // namespace qmr::io
