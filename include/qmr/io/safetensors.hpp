// Safetensors: a validating reader over a mapped (zero-copy) or copied file (single files and sharded checkpoints) and a writer.
#pragma once

#include <algorithm>
#include <cstring>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/dtype.hpp"
#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "json_file.hpp"
#include "mapped_file.hpp"

namespace qmr::io {

// File layout (https://huggingface.co/docs/safetensors):
//   u64 little-endian N | N bytes of UTF-8 JSON header | data buffer
// The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]}
// (offsets relative to the data buffer) plus an optional "__metadata__" string map.
// Like the reference implementation, qmr accepts a file only if the tensors tile
// the data buffer exactly: no overlap, no hole, nothing after the last tensor.

// Every dtype the safetensors format defines, with its element size; qmr computes
// with the ones dtype_from_name() knows and lists or copies the others.
inline std::optional<std::size_t> safetensors_dtype_size(std::string_view name) {
  static constexpr std::pair<std::string_view, std::size_t> table[] = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"I16", 2}, {"U16", 2}, {"F16", 2},
      {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4},     {"F64", 8},     {"I64", 8}, {"U64", 8}};
  for (const auto& [n, size] : table)
    if (n == name) return size;
  return std::nullopt;
}

// A header's cap, as in the reference implementation: it guards against a header
// length that would make us parse (or allocate for) gigabytes of JSON.
inline constexpr std::uint64_t max_header_bytes = 100u << 20;

struct tensor_info {
  std::string name;
  std::string dtype_name;         // as written in the file, e.g. "BF16"
  std::optional<dtype> type;      // nullopt for dtypes qmr does not compute with (F64, I64, ...)
  std::size_t element_size = 0;   // bytes
  shape_t shape;
  std::uint64_t begin = 0, end = 0;  // byte range within the data buffer

  std::uint64_t nbytes() const { return end - begin; }
};

class safetensors_file {
 public:
  // Validates `bytes` (a whole file) and indexes its tensors; views point into `bytes`,
  // which must outlive this object. `file` names the source in error messages.
  static safetensors_file parse(std::span<const std::byte> bytes, std::string file) {
    safetensors_file f;
    f.file_ = std::move(file);
    f.parse_(bytes);
    return f;
  }

  // Maps (or, with load_mode::copy, reads) and validates the file at `path`; views stay
  // valid while this object lives.
  static safetensors_file open(const std::string& path, load_mode mode = load_mode::map) {
    auto map = std::make_shared<mapped_file>(path, mode);
    safetensors_file f = parse(map->bytes(), path);
    f.map_ = std::move(map);
    return f;
  }

  const std::string& file() const { return file_; }
  // Whether open() read the file into a private copy (load_mode::copy) rather than mapping it.
  bool copied() const { return map_ && map_->copied(); }
  const std::vector<tensor_info>& tensors() const { return tensors_; }  // in data-offset order
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  std::uint64_t header_bytes() const { return header_bytes_; }

  const tensor_info* find(std::string_view name) const {
    const auto it = index_.find(std::string(name));
    return it == index_.end() ? nullptr : &tensors_[it->second];
  }
  const tensor_info& at(std::string_view name) const {
    const tensor_info* t = find(name);
    if (!t) throw error("no such tensor", in_file(file_, std::string(name)));
    return *t;
  }

  std::span<const std::byte> raw(const tensor_info& t) const {
    return data_.subspan(static_cast<std::size_t>(t.begin), static_cast<std::size_t>(t.nbytes()));
  }

  // A zero-copy view of a tensor whose dtype qmr computes with.
  tensor_view view(const tensor_info& t) const {
    if (!t.type) throw error("dtype " + t.dtype_name + " is not supported by qmr kernels", in_file(file_, t.name, "dtype"));
    return tensor_view::contiguous(raw(t).data(), *t.type, t.shape);
  }
  tensor_view view(std::string_view name) const { return view(at(name)); }

 private:
  void parse_(std::span<const std::byte> bytes) {
    if (bytes.size() < 8)
      throw error("file is " + std::to_string(bytes.size()) + " bytes, shorter than the 8-byte header length",
                  in_file(file_, {}, {}, 0));
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<std::uint8_t>(bytes[static_cast<std::size_t>(i)]);
    if (n > bytes.size() - 8)
      throw error("header length " + std::to_string(n) + " runs past the end of the file (" +
                      std::to_string(bytes.size()) + " bytes)",
                  in_file(file_, {}, "header length", 0));
    if (n > max_header_bytes)
      throw error("header length " + std::to_string(n) + " exceeds the 100 MiB limit", in_file(file_, {}, "header length", 0));
    header_bytes_ = n;
    const auto* text = reinterpret_cast<const char*>(bytes.data() + 8);
    data_ = bytes.subspan(static_cast<std::size_t>(8 + n));

    // nlohmann stops at a NUL as if the input ended there; the format allows none.
    if (const void* nul = std::memchr(text, 0, static_cast<std::size_t>(n)))
      throw error("header contains a NUL byte", in_file(file_, {}, "header", 8 + static_cast<std::uint64_t>(static_cast<const char*>(nul) - text)));
    nlohmann::json header;
    try {
      header = nlohmann::json::parse(text, text + n);
    } catch (const nlohmann::json::parse_error& e) {
      throw error(std::string("header is not valid JSON: ") + e.what(), in_file(file_, {}, "header", 8 + e.byte - 1));
    } catch (const nlohmann::json::exception& e) {  // e.g. a number beyond double's range
      throw error(std::string("header is not valid JSON: ") + e.what(), in_file(file_, {}, "header", 8));
    }
    if (!header.is_object()) throw error("header is not a JSON object", in_file(file_, {}, "header", 8));

    for (const auto& [key, value] : header.items()) {
      if (key == "__metadata__") {
        parse_metadata_(value);
        continue;
      }
      tensors_.push_back(parse_tensor_(key, value));
    }
    std::sort(tensors_.begin(), tensors_.end(), [](const tensor_info& a, const tensor_info& b) {
      return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    std::uint64_t expected = 0;
    const tensor_info* previous = nullptr;
    for (const tensor_info& t : tensors_) {
      if (t.begin < expected)
        throw error("data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) + ") overlap tensor '" +
                        previous->name + "' [" + std::to_string(previous->begin) + ", " + std::to_string(previous->end) + ")",
                    in_file(file_, t.name, "data_offsets", 8 + n + t.begin));
      if (t.begin > expected)
        throw error("data_offsets leave a hole of " + std::to_string(t.begin - expected) + " bytes before this tensor",
                    in_file(file_, t.name, "data_offsets", 8 + n + expected));
      expected = t.end;
      previous = &t;
    }
    if (expected != data_.size())
      throw error("tensors cover " + std::to_string(expected) + " bytes of a " + std::to_string(data_.size()) +
                      "-byte data buffer",
                  in_file(file_, {}, "data_offsets", 8 + n + expected));
    for (std::size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
  }

  void parse_metadata_(const nlohmann::json& value) {
    if (!value.is_object()) throw error("__metadata__ is not an object", in_file(file_, {}, "__metadata__"));
    for (const auto& [k, v] : value.items()) {
      if (!v.is_string()) throw error("value of '" + k + "' is not a string", in_file(file_, {}, "__metadata__"));
      metadata_[k] = v.get<std::string>();
    }
  }

  tensor_info parse_tensor_(const std::string& name, const nlohmann::json& value) {
    const auto ctx = [&](const char* field) { return in_file(file_, name, field); };
    if (!value.is_object()) throw error("entry is not an object", ctx(""));
    tensor_info t;
    t.name = name;

    const auto dt = value.find("dtype");
    if (dt == value.end() || !dt->is_string()) throw error("missing or not a string", ctx("dtype"));
    t.dtype_name = dt->get<std::string>();
    const auto size = safetensors_dtype_size(t.dtype_name);
    if (!size) throw error("unknown dtype '" + t.dtype_name + "'", ctx("dtype"));
    t.element_size = *size;
    t.type = dtype_from_name(t.dtype_name);

    const auto sh = value.find("shape");
    if (sh == value.end() || !sh->is_array()) throw error("missing or not an array", ctx("shape"));
    if (sh->size() > static_cast<std::size_t>(max_rank))
      throw error("rank " + std::to_string(sh->size()) + " is above qmr's maximum of " + std::to_string(max_rank), ctx("shape"));
    // Products are checked against 2^62 so that no byte count overflows 64 bits.
    constexpr std::uint64_t limit = std::uint64_t{1} << 62;
    // The product of the non-zero dimensions is bounded too: strides of an empty
    // tensor are still computed from them.
    std::uint64_t numel = 1, nonzero = 1;
    for (const auto& d : *sh) {
      if (!d.is_number_unsigned()) {
        // Scalars are quoted (cut to 40 characters); containers only named: dumping a
        // deeply nested value would recurse without bound.
        const std::string what = d.is_primitive() ? d.dump().substr(0, 40) : std::string("of type ") + d.type_name();
        throw error("dimension " + what + " is not a non-negative integer", ctx("shape"));
      }
      const std::uint64_t v = d.get<std::uint64_t>();
      if (v > limit || (v != 0 && nonzero > limit / v)) throw error("element count overflows", ctx("shape"));
      numel *= v;
      if (v != 0) nonzero *= v;
      t.shape.dims[static_cast<std::size_t>(t.shape.rank++)] = static_cast<std::int64_t>(v);
    }

    const auto off = value.find("data_offsets");
    if (off == value.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
        !(*off)[1].is_number_unsigned())
      throw error("must be an array of two non-negative integers", ctx("data_offsets"));
    t.begin = (*off)[0].get<std::uint64_t>();
    t.end = (*off)[1].get<std::uint64_t>();
    if (t.begin > t.end)
      throw error("begin " + std::to_string(t.begin) + " is after end " + std::to_string(t.end), ctx("data_offsets"));
    if (t.end > data_.size())
      throw error("end " + std::to_string(t.end) + " is past the " + std::to_string(data_.size()) + "-byte data buffer",
                  in_file(file_, name, "data_offsets", 8 + header_bytes_ + t.begin));
    if (numel > limit / t.element_size || numel * t.element_size != t.end - t.begin)
      throw error("shape " + t.shape.str() + " of " + t.dtype_name + " needs " +
                      std::to_string(numel) + " elements of " + std::to_string(t.element_size) + " bytes, but data_offsets span " +
                      std::to_string(t.end - t.begin) + " bytes",
                  ctx("data_offsets"));
    return t;
  }

  std::string file_;
  std::shared_ptr<const mapped_file> map_;  // null when parsed from caller-owned bytes
  std::span<const std::byte> data_;
  std::uint64_t header_bytes_ = 0;
  std::vector<tensor_info> tensors_;
  std::map<std::string, std::size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// A Hugging Face checkpoint: one safetensors file, a directory with
// model.safetensors, or shards listed in model.safetensors.index.json.
class checkpoint {
 public:
  static checkpoint open(const std::filesystem::path& path, load_mode mode = load_mode::map) {
    namespace fs = std::filesystem;
    checkpoint c;
    c.mode_ = mode;
    // All shards are checked against the memory before the first is read (each is again as it is).
    if (mode == load_mode::copy) check_fits_in_memory(file_bytes(path), available_memory_bytes(), path.string());
    std::error_code ec;
    const auto status = fs::status(path, ec);
    if (ec || !fs::exists(status)) throw error("no such file or directory", in_file(path.string()));
    if (!fs::is_directory(status)) {
      c.add_shard_(path);
      return c;
    }
    c.dir_ = path;
    const fs::path index = path / "model.safetensors.index.json";
    if (fs::exists(index, ec)) {
      c.index_file_ = index;
      c.load_index_(index);
      return c;
    }
    if (fs::exists(path / "model.safetensors", ec)) {
      c.add_shard_(path / "model.safetensors");
      return c;
    }
    std::vector<fs::path> files;
    for (fs::directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec))
      if (it->is_regular_file(ec) && it->path().extension() == ".safetensors") files.push_back(it->path());
    if (ec) throw error("cannot list directory: " + ec.message(), in_file(path.string()));
    if (files.empty()) throw error("directory holds no .safetensors file", in_file(path.string()));
    std::sort(files.begin(), files.end());
    for (const auto& f : files) c.add_shard_(f);
    return c;
  }

  // Bytes of the safetensors files open() would read from `path`: the file, or every
  // .safetensors file of the directory (a superset of the indexed shards); 0 where unreadable.
  static std::uint64_t file_bytes(const std::filesystem::path& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::is_directory(path, ec)) {
      const auto n = fs::file_size(path, ec);
      return ec ? 0 : static_cast<std::uint64_t>(n);
    }
    std::uint64_t total = 0;
    for (fs::directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec))
      if (it->is_regular_file(ec) && it->path().extension() == ".safetensors") {
        const auto n = it->file_size(ec);
        if (!ec) total += static_cast<std::uint64_t>(n);
      }
    return total;
  }

  const std::vector<safetensors_file>& shards() const { return shards_; }
  // The directory given to open(), empty when a single file was given.
  const std::filesystem::path& directory() const { return dir_; }
  const std::filesystem::path& index_file() const { return index_file_; }

  // Every tensor name, sorted.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    out.reserve(where_.size());
    for (const auto& [name, shard] : where_) out.push_back(name);
    return out;
  }
  const tensor_info* find(std::string_view name) const {
    const auto it = where_.find(std::string(name));
    return it == where_.end() ? nullptr : shards_[it->second].find(name);
  }
  const safetensors_file& shard_of(std::string_view name) const {
    const auto it = where_.find(std::string(name));
    if (it == where_.end()) throw error("no such tensor in the checkpoint", in_file(describe_(), std::string(name)));
    return shards_[it->second];
  }
  tensor_view view(std::string_view name) const { return shard_of(name).view(name); }

 private:
  std::string describe_() const { return dir_.empty() ? shards_.front().file() : dir_.string(); }

  std::size_t add_shard_(const std::filesystem::path& file) {
    shards_.push_back(safetensors_file::open(file.string(), mode_));
    const std::size_t shard = shards_.size() - 1;
    for (const tensor_info& t : shards_.back().tensors()) {
      const auto [it, inserted] = where_.emplace(t.name, shard);
      if (!inserted)
        throw error("tensor also appears in " + shards_[it->second].file(), in_file(file.string(), t.name));
    }
    return shard;
  }

  void load_index_(const std::filesystem::path& index) {
    const nlohmann::json j = read_json_file(index);
    const auto wm = j.is_object() ? j.find("weight_map") : j.end();
    if (wm == j.end() || !wm->is_object()) throw error("missing or not an object", in_file(index.string(), {}, "weight_map"));
    if (wm->empty()) throw error("lists no tensor", in_file(index.string(), {}, "weight_map"));
    std::map<std::string, std::size_t> shard_of_file;
    std::vector<std::pair<std::string, std::string>> expected;  // tensor -> file
    for (const auto& [name, file] : wm->items()) {
      if (!file.is_string()) throw error("shard name is not a string", in_file(index.string(), name, "weight_map"));
      const std::string f = file.get<std::string>();
      if (f.find('/') != std::string::npos || f == "." || f == "..")
        throw error("shard '" + f + "' is not a file name in the checkpoint directory", in_file(index.string(), name, "weight_map"));
      if (!shard_of_file.count(f)) shard_of_file[f] = add_shard_(index.parent_path() / f);
      expected.emplace_back(name, f);
    }
    for (const auto& [name, f] : expected) {
      const auto it = where_.find(name);
      if (it == where_.end() || it->second != shard_of_file[f])
        throw error("listed in shard '" + f + "' but not found there", in_file(index.string(), name, "weight_map"));
    }
  }

  std::filesystem::path dir_, index_file_;
  std::vector<safetensors_file> shards_;
  load_mode mode_ = load_mode::map;  // how add_shard_ opens files
  std::map<std::string, std::size_t> where_;  // tensor name -> shard
};

// Collects tensors, then writes one safetensors file. Tensors are laid out by
// decreasing element size (then name), so every tensor is aligned to its element
// size when the header is padded to 8 bytes, as the reference writer does.
class safetensors_writer {
 public:
  void add(std::string name, std::string dtype_name, shape_t shape, std::span<const std::byte> data) {
    const auto size = safetensors_dtype_size(dtype_name);
    if (!size) throw error("unknown dtype '" + dtype_name + "'", in_file({}, name, "dtype"));
    if (static_cast<std::uint64_t>(shape.numel()) * *size != data.size())
      throw error("shape " + shape.str() + " of " + dtype_name + " needs " +
                      std::to_string(static_cast<std::uint64_t>(shape.numel()) * *size) + " bytes, got " +
                      std::to_string(data.size()),
                  in_file({}, name));
    if (name == "__metadata__" || names_.count(name)) throw error("duplicate or reserved tensor name", in_file({}, name));
    names_.insert({name, entries_.size()});
    entries_.push_back({std::move(name), std::move(dtype_name), *size, shape, {data.begin(), data.end()}});
  }
  template <class T>
  void add(std::string name, shape_t shape, std::span<const T> data) {
    add(std::move(name), std::string(dtype_name(dtype_of<T>())), shape, std::as_bytes(data));
  }
  void set_metadata(std::string key, std::string value) { metadata_[std::move(key)] = std::move(value); }

  // Writes to `path` + ".tmp" and renames, so a crash never leaves a half-written file behind.
  void write(const std::filesystem::path& path) const {
    std::vector<const entry*> order;
    for (const entry& e : entries_) order.push_back(&e);
    std::sort(order.begin(), order.end(), [](const entry* a, const entry* b) {
      return a->element_size != b->element_size ? a->element_size > b->element_size : a->name < b->name;
    });
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!metadata_.empty()) header["__metadata__"] = metadata_;
    std::uint64_t offset = 0;
    for (const entry* e : order) {
      nlohmann::ordered_json shape = nlohmann::ordered_json::array();
      for (int i = 0; i < e->shape.rank; ++i) shape.push_back(e->shape[i]);
      header[e->name] = {{"dtype", e->dtype_name}, {"shape", shape}, {"data_offsets", {offset, offset + e->data.size()}}};
      offset += e->data.size();
    }
    std::string text = header.dump();
    text.append((8 - text.size() % 8) % 8, ' ');  // pad with spaces so the data buffer starts 8-aligned

    const std::filesystem::path tmp = path.string() + ".tmp";
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) throw error("cannot create file", in_file(tmp.string()));
    std::uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<std::uint8_t>(static_cast<std::uint64_t>(text.size()) >> (8 * i));
    bool ok = std::fwrite(len, 1, 8, f) == 8 && std::fwrite(text.data(), 1, text.size(), f) == text.size();
    for (const entry* e : order)
      ok = ok && (e->data.empty() || std::fwrite(e->data.data(), 1, e->data.size(), f) == e->data.size());
    ok = (std::fclose(f) == 0) && ok;
    if (!ok) {
      std::filesystem::remove(tmp);
      throw error("write failed (disk full?)", in_file(tmp.string()));
    }
    std::filesystem::rename(tmp, path);
  }

  std::size_t size() const { return entries_.size(); }

 private:
  struct entry {
    std::string name, dtype_name;
    std::size_t element_size;
    shape_t shape;
    std::vector<std::byte> data;
  };
  std::vector<entry> entries_;
  std::map<std::string, std::size_t> names_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace qmr::io
