// qmr: the command-line tool (inspect and quantize checkpoints, generate synthetic math problems).
#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <climits>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cmd_bench.hpp"
#include "cmd_eval.hpp"
#include "cmd_quantize.hpp"
#include "cmd_report.hpp"
#include "cmd_sensitivity.hpp"
#include "cuda_backend.hpp"
#include "qmr/eval/synth.hpp"
#include "qmr/io/gguf.hpp"
#include "qmr/io/inspect.hpp"
#include "qmr/model/generate.hpp"
#include "qmr/quant/quantize_checkpoint.hpp"
#include "qmr/text/chat.hpp"
#include "qmr/text/tokenizer.hpp"

namespace {

std::string human_bytes(std::uint64_t b) {
  char buf[32];
  if (b >= (1ull << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(b) / (1ull << 30));
  else if (b >= (1ull << 20)) std::snprintf(buf, sizeof buf, "%.2f MiB", static_cast<double>(b) / (1ull << 20));
  else if (b >= 1024) std::snprintf(buf, sizeof buf, "%.2f KiB", static_cast<double>(b) / 1024);
  else std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(b));
  return buf;
}

// Bytes and parameters of an inspect listing.
std::pair<std::uint64_t, std::int64_t> inspect_totals(const std::vector<qmr::io::inspect_entry>& rows) {
  std::uint64_t bytes = 0;
  std::int64_t params = 0;
  for (const auto& r : rows) {
    bytes += r.bytes;
    params += r.shape.numel();
  }
  return {bytes, params};
}

// One tensor of an inspect listing as JSON: the fields both file kinds print.
nlohmann::json inspect_json(const qmr::io::inspect_entry& r) {
  const std::vector<std::int64_t> shape(r.shape.dims.begin(), r.shape.dims.begin() + r.shape.rank);
  return {{"name", r.name}, {"format", r.format}, {"shape", shape}, {"bytes", r.bytes}, {"bits_per_weight", r.bits_per_weight}};
}

// The listing as a table: name, format, shape, bytes, bits per weight.
void print_inspect_table(const std::vector<qmr::io::inspect_entry>& rows) {
  std::size_t width = 4;
  for (const auto& r : rows) width = std::max(width, r.name.size());
  std::printf("%-*s  %-8s  %-18s  %14s  %7s\n", static_cast<int>(width), "name", "format", "shape", "bytes", "bits/w");
  for (const auto& r : rows)
    std::printf("%-*s  %-8s  %-18s  %14llu  %7.3f\n", static_cast<int>(width), r.name.c_str(), r.format.c_str(),
                r.shape.str().c_str(), static_cast<unsigned long long>(r.bytes), r.bits_per_weight);
}

double bits_per_parameter(std::uint64_t bytes, std::int64_t params) {
  return params ? 8.0 * static_cast<double>(bytes) / static_cast<double>(params) : 0.0;
}

// A GGUF file (llama.cpp's format): its metadata (arrays summarized) and its tensor table.
int run_inspect_gguf(const std::string& path, bool as_json) {
  const qmr::io::gguf_file f = qmr::io::gguf_file::open(path);
  const auto rows = qmr::io::inspect_gguf(f);
  const auto [bytes, params] = inspect_totals(rows);
  const auto summary = [](const qmr::io::gguf_kv& kv) -> nlohmann::json {
    if (kv.type != qmr::io::gguf_type::array) return kv.value;
    return std::to_string(kv.value.size()) + " x " + std::string(qmr::io::gguf_type_name(static_cast<std::uint32_t>(kv.element_type)));
  };
  if (as_json) {
    nlohmann::json j = {{"path", path}, {"format", "gguf"}, {"version", f.version()}, {"alignment", f.alignment()},
                        {"metadata", nlohmann::json::object()}, {"tensors", nlohmann::json::array()}, {"bytes", bytes},
                        {"parameters", params}};
    for (const auto& kv : f.metadata()) j["metadata"][kv.key] = summary(kv);
    for (std::size_t i = 0; i < rows.size(); ++i) {
      nlohmann::json t = inspect_json(rows[i]);
      t["offset"] = f.data_offset() + f.tensors()[i].offset;
      j["tensors"].push_back(std::move(t));
    }
    std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return 0;
  }
  std::printf("GGUF version %u, alignment %u, %zu metadata entries\n", f.version(), f.alignment(), f.metadata().size());
  for (const auto& kv : f.metadata()) {
    std::string v = summary(kv).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (v.size() > 80) v = v.substr(0, 77) + "...";
    std::printf("  %s (%s) = %s\n", kv.key.c_str(), std::string(qmr::io::gguf_type_name(static_cast<std::uint32_t>(kv.type))).c_str(), v.c_str());
  }
  print_inspect_table(rows);
  std::printf("%zu tensors, %lld parameters, %s, %.3f bits per parameter\n", rows.size(), static_cast<long long>(params),
              human_bytes(bytes).c_str(), bits_per_parameter(bytes, params));
  return 0;
}

int run_inspect(const std::string& path, bool as_json) {
  if (std::filesystem::path(path).extension() == ".gguf") return run_inspect_gguf(path, as_json);
  const auto checkpoint = qmr::io::checkpoint::open(path);
  const auto rows = qmr::io::inspect_checkpoint(checkpoint);
  const auto [bytes, params] = inspect_totals(rows);
  std::int64_t quantized = 0;
  for (const auto& r : rows) quantized += r.quantized;
  if (as_json) {
    nlohmann::json j = {{"path", path}, {"tensors", nlohmann::json::array()}, {"bytes", bytes}, {"parameters", params}};
    for (const auto& r : rows) {
      nlohmann::json t = inspect_json(r);
      t["quantized"] = r.quantized;
      t["file"] = r.file;
      j["tensors"].push_back(std::move(t));
    }
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  print_inspect_table(rows);
  std::printf("%zu tensors (%lld quantized) in %zu file(s), %lld parameters, %s, %.3f bits per parameter\n", rows.size(),
              static_cast<long long>(quantized), checkpoint.shards().size(), static_cast<long long>(params),
              human_bytes(bytes).c_str(), bits_per_parameter(bytes, params));
  return 0;
}

int run_quantize(const std::string& in, const std::string& out, const std::string& spec_text,
                 const qmr::quant::checkpoint_options& options, unsigned threads, bool quiet) {
  qmr::quant::checkpoint_options o = options;
  o.spec = qmr::quant::parse_format(spec_text);
  qmr::thread_pool pool(threads);
  const bool tty = isatty(STDERR_FILENO);
  const auto progress = [&](std::size_t done, std::size_t total, const std::string& name) {
    if (quiet) return;
    std::fprintf(stderr, tty ? "\r\033[K[%zu/%zu] %s" : "[%zu/%zu] %s\n", done, total, name.c_str());
    if (tty && done == total) std::fputc('\n', stderr);
  };
  const auto report = qmr::quant::quantize_checkpoint(in, out, o, &pool, progress);
  std::size_t n_quantized = 0;
  double error_sum = 0;
  for (const auto& t : report.tensors)
    if (t.reason.empty()) {
      ++n_quantized;
      error_sum += t.rms_relative_error;
    }
  std::printf("%s: quantized %zu of %zu tensors to %s (%s); %s -> %s (%.2fx) in %.2f s; mean RMS relative error %.4f\n",
              out.c_str(), n_quantized, report.tensors.size(), o.spec.str().c_str(),
              o.rtn.clip_search ? "rtn+clip" : "rtn", human_bytes(report.bytes_in).c_str(),
              human_bytes(report.bytes_out).c_str(),
              report.bytes_out ? static_cast<double>(report.bytes_in) / static_cast<double>(report.bytes_out) : 0.0,
              report.seconds, n_quantized ? error_sum / static_cast<double>(n_quantized) : 0.0);
  return 0;
}

// Calibrated quantization allocates and frees buffers of tens to hundreds of MB per linear
// (Hessians and their factors, sampled activations, report products), the same sizes every
// layer. glibc serves each from a fresh mmap and unmaps it on free, so every layer faults all of
// them in again: in the VMs we time on, page faults and their zeroing were 7% of a GPTQ run.
// Serving them from the heap and never trimming it lets later layers reuse the pages.
void keep_freed_memory() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, INT_MAX);
#endif
}

// The model path of `qmr quantize`: a plan or a format by RTN, GPTQ, AWQ or SmoothQuant, calibrated
// layer by layer, written as a qmr checkpoint directory with the per-layer report.
int run_quantize_model(const std::string& in, const std::string& out, const std::string& method, const std::string& format,
                       const std::string& group, int bits, bool sym, const std::string& plan, const std::string& act,
                       const qmr_cli::calib_args& calib, const qmr::quant::rtn_options& rtn, bool propagate_quantized,
                       unsigned threads, bool quiet) {
  if (!plan.empty() && !format.empty()) throw qmr::error("give --plan or --quant/--format, not both");
  if (!std::filesystem::is_directory(in))
    throw qmr::error("--method, --plan and --act need a model directory (config.json beside the weights)", qmr::in_file(in));
  const std::string g = group == "c" || group == "channel" ? "c" : group;
  std::string target = !plan.empty() ? "@" + plan : !format.empty() ? format : "w" + std::to_string(bits) + "g" + g + (sym ? "s" : "");
  std::string recipe = method + ":" + target + (rtn.clip_search ? "+clip" : "");  // --clip: GPTQ's groups too
  if (!act.empty()) {
    if (act != "a8" && act != "a4") throw qmr::error("--act '" + act + "': expected a8 or a4");
    recipe += "+" + act;
  }
  const qmr_cli::quant_recipe r = qmr_cli::parse_recipe(recipe);
  if (r.needs_calibration()) keep_freed_memory();
  auto m = qmr::model::model::load(in);
  qmr::thread_pool pool(threads);
  qmr::quant::model_quant_options o;
  o.rtn = rtn;
  o.propagate_quantized = propagate_quantized;
  const auto report = qmr_cli::apply_recipe(m, r, calib, in, pool, quiet, o);
  qmr::quant::save_model(m, out, report);
  qmr_cli::print_quant_report(report);
  std::printf("wrote %s (%s, %s)\n", out.c_str(), recipe.c_str(), human_bytes(m.weight_bytes()).c_str());
  return 0;
}

// "1,2,3" -> {1, 2, 3}; anything else is an error naming the bad item.
std::vector<std::int32_t> parse_ids(const std::string& text) {
  std::vector<std::int32_t> ids;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t end = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, end - start);
    std::size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size() || v < 0 || v > INT32_MAX)
      throw qmr::error("token id '" + item + "' is not a non-negative integer (expected a list like 1,2,3)");
    ids.push_back(static_cast<std::int32_t>(v));
    start = end + 1;
  }
  return ids;
}

int run_logits(const std::string& dir, const std::string& ids_text, const std::string& out, unsigned threads) {
  const std::vector<std::int32_t> ids = parse_ids(ids_text);
  const auto m = qmr::model::model::load(dir);
  qmr::thread_pool pool(threads);
  qmr::model::session s(m, static_cast<int>(ids.size()), &pool);
  const auto logits = s.forward(ids, true);  // [n_ids, vocab]
  std::FILE* f = std::fopen(out.c_str(), "wb");
  if (!f) throw qmr::error("cannot create file", qmr::in_file(out));
  bool ok = true;
  for (std::int64_t r = 0; r < logits.rows; ++r)  // rows are contiguous; float is little-endian here
    ok = ok && std::fwrite(logits.row(r), sizeof(float), static_cast<std::size_t>(logits.cols), f) ==
                   static_cast<std::size_t>(logits.cols);
  if (std::fclose(f) != 0 || !ok) throw qmr::error("write failed", qmr::in_file(out));
  std::printf("%s: logits [%lld, %lld] float32\n", out.c_str(), static_cast<long long>(logits.rows),
              static_cast<long long>(logits.cols));
  return 0;
}

int run_tokenize(const std::string& dir, const std::string& text, const std::string& decode_ids, bool text_given) {
  const std::filesystem::path path =
      std::filesystem::is_directory(dir) ? std::filesystem::path(dir) / "tokenizer.json" : std::filesystem::path(dir);
  const auto tok = qmr::text::tokenizer::load(path);
  if (!decode_ids.empty()) {
    const auto ids = parse_ids(decode_ids);
    std::printf("%s\n", tok.decode(ids).c_str());
    return 0;
  }
  if (!text_given) throw qmr::error("tokenize needs --text or --decode");
  const auto ids = tok.encode(text);
  for (std::size_t i = 0; i < ids.size(); ++i) std::printf(i ? " %d" : "%d", ids[i]);
  std::printf("\n");
  return 0;
}

struct generate_args {
  std::string dir, prompt, system;
  int max_tokens = 128;
  bool chat = false, quiet = false, lut = false;
  qmr::model::sampling_options sampling;
  std::vector<std::string> stop;
  unsigned threads = 1;
  std::string device = "cpu";
  std::string load;  // --load (qmr_cli::load_mode_for: copy on cpu, map on cuda by default)
};

// Token ids generation should stop at: the config's eos, generation_config.json's, and <|im_end|> in chat mode.
std::vector<std::int32_t> stop_tokens(const qmr::model::model& m, const qmr::text::tokenizer& tok, bool chat) {
  std::vector<std::int32_t> ids = m.config().eos_token_ids;
  const auto gen_config = m.directory() / "generation_config.json";
  if (std::filesystem::exists(gen_config)) {
    std::ifstream in(gen_config);
    const auto j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded()) throw qmr::error("not valid JSON", qmr::in_file(gen_config.string()));
    if (j.contains("eos_token_id")) {
      const auto& e = j["eos_token_id"];
      if (e.is_number_integer()) ids.push_back(e.get<std::int32_t>());
      else if (e.is_array())
        for (const auto& x : e)
          if (x.is_number_integer()) ids.push_back(x.get<std::int32_t>());
    }
  }
  if (chat)
    if (const auto im_end = tok.token_to_id("<|im_end|>")) ids.push_back(*im_end);
  return ids;
}

int run_generate(const generate_args& a) {
  qmr_cli::require_device(a.device);
  auto m = qmr::model::model::load(a.dir, qmr_cli::load_mode_for(a.load, a.device, a.dir));
  const auto tok = qmr::text::tokenizer::load(std::filesystem::path(a.dir) / "tokenizer.json");
  std::string prompt = a.prompt;
  if (a.chat) {
    std::vector<qmr::text::chat_message> messages;
    if (!a.system.empty()) messages.push_back({"system", a.system});
    messages.push_back({"user", a.prompt});
    prompt = qmr::text::format_chatml(messages, true);
  }
  const std::vector<std::int32_t> ids = tok.encode(prompt);
  if (ids.empty()) throw qmr::error("the prompt encodes to no tokens");
  qmr::model::sampling_options o = a.sampling;
  o.max_tokens = a.max_tokens;
  o.stop_tokens = stop_tokens(m, tok, a.chat);
  // The session holds the prompt and the answer, but no more positions than the model has
  // (max_position_embeddings, where config.json gives it): generation past them stops as
  // "context full". ids.size() + --max-tokens overflowed an int near 2^31 and allocated the KV
  // cache of every position asked for (--max-tokens 100000000: std::bad_alloc).
  const int max_positions = m.config().max_positions > 0 ? m.config().max_positions : INT_MAX;
  if (ids.size() > static_cast<std::size_t>(max_positions))
    throw qmr::error("the prompt is " + std::to_string(ids.size()) + " tokens, more than the model's " +
                     std::to_string(max_positions) + " positions (max_position_embeddings)");
  const int capacity =
      static_cast<int>(std::min<std::int64_t>(static_cast<std::int64_t>(ids.size()) + a.max_tokens, max_positions));
  // Stream the text as it completes, exactly as decode() of the whole output reads: decode
  // everything so far and print what is new, holding back a trailing U+FFFD, which may be
  // the first bytes of a character whose other bytes come with the next token.
  std::vector<std::int32_t> shown;
  std::size_t printed = 0;
  const auto flush = [&](bool final) {
    const std::string text = tok.decode(shown, true);
    std::size_t end = text.size();
    while (!final && end >= 3 && text.compare(end - 3, 3, "\xEF\xBF\xBD") == 0) end -= 3;
    if (end > printed) {
      std::fwrite(text.data() + printed, 1, end - printed, stdout);
      std::fflush(stdout);
      printed = end;
    }
  };
  const auto on_token = [&](std::int32_t id) {
    if (std::find(o.stop_tokens.begin(), o.stop_tokens.end(), id) != o.stop_tokens.end()) return true;
    shown.push_back(id);
    flush(false);
    return true;
  };
  const auto detokenize = [&](std::span<const std::int32_t> t) { return tok.decode(t); };
  qmr::model::generation g;
  if (a.device == "cuda") {
    const auto s = qmr_cli::make_cuda_session(m, capacity);
    g = generate(*s, ids, o, on_token, a.stop, detokenize);
  } else {
    qmr::thread_pool pool(a.threads);
    const bool lut = a.lut && m.repack_lut(&pool) > 0;
    if (a.lut && !lut && !a.quiet)
      std::fprintf(stderr, "[--lut: nothing repacked (no 2-6-bit linears, or no AVX-512BW); the default kernels decode]\n");
    qmr::model::session s(m, capacity, &pool);
    if (lut) s.set_kernel(qmr::model::matmul_kernel::simd_lut);
    g = qmr::model::generate(s, ids, o, on_token, a.stop, detokenize);
  }
  flush(true);
  std::printf("\n");
  if (!a.quiet) {
    const char* reasons[] = {"max tokens", "stop token", "stop string", "callback", "context full"};
    std::fprintf(stderr, "[%zu prompt tokens, %.1f tok/s prefill; %zu generated, %.2f tok/s decode; stopped: %s]\n",
                 ids.size(), static_cast<double>(ids.size()) / g.prefill_seconds, g.tokens.size(),
                 g.tokens.size() > 1 ? static_cast<double>(g.tokens.size() - 1) / g.decode_seconds : 0.0,
                 reasons[static_cast<int>(g.reason)]);
  }
  return 0;
}

// Writes n synthetic problems as JSON Lines to out (through out.tmp, renamed when complete).
int run_synth(std::size_t n, const std::string& types, const std::string& levels, qmr::eval::synth_options o,
              const std::string& out) {
  if (!types.empty()) o.types = qmr::eval::parse_op_types(types);
  if (!levels.empty()) o.levels = qmr::eval::parse_levels(levels);
  const auto problems = qmr::eval::make_problems(n, o);
  const std::string tmp = out + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw qmr::error("cannot create file", qmr::in_file(tmp));
    for (const auto& p : problems) f << qmr::eval::to_json(p).dump() << '\n';
    f.close();
    if (!f) throw qmr::error("write failed", qmr::in_file(tmp));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, out, ec);
  if (ec) throw qmr::error("cannot rename to " + out + ": " + ec.message(), qmr::in_file(tmp));
  std::size_t by_level[6] = {};
  for (const auto& p : problems) ++by_level[p.level];
  std::string counts;
  for (int level = 1; level <= 5; ++level)
    if (by_level[level]) counts += (counts.empty() ? "" : ", ") + std::to_string(level) + ": " + std::to_string(by_level[level]);
  std::printf("%s: %zu problems (synth v%d, seed %llu, max operand %s); by level %s\n", out.c_str(), problems.size(),
              qmr::eval::synth_version, static_cast<unsigned long long>(o.seed),
              o.max_operand ? std::to_string(o.max_operand).c_str() : "per level", counts.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // --threads of every command (qmr_cli::max_threads; `qmr bench` checks its list the same way).
  const CLI::Range thread_count(1u, qmr_cli::max_threads);

  CLI::App app{"qmr " QMR_VERSION_STRING ": quantize language models and measure what it does to them"};
  app.require_subcommand(1);
  app.set_version_flag("--version", QMR_VERSION_STRING);

  std::string inspect_path;
  bool inspect_json = false;
  auto* inspect = app.add_subcommand("inspect", "List the tensors of a safetensors file, checkpoint directory or GGUF file");
  inspect->add_option("path", inspect_path, "a .safetensors file, a model directory or a .gguf file")->required();
  inspect->add_flag("--json", inspect_json, "print JSON instead of a table");

  std::string q_in, q_out, q_group = "128", q_format;
  int q_bits = 4;
  bool q_sym = false, q_all = false, q_quiet = false;
  unsigned q_threads = std::max(1u, std::thread::hardware_concurrency());
  qmr::quant::checkpoint_options q_options;
  std::vector<std::string> q_skip;
  auto* quantize = app.add_subcommand("quantize", "Quantize the linear weights of a checkpoint (round to nearest)");
  q_in = qmr_cli::default_model_dir();
  quantize->add_option("--model", q_in, "input .safetensors file or model directory (default: the bundled model)")
      ->capture_default_str();
  quantize->add_option("--out", q_out, "output file (for a file) or directory (for a directory)")->required();
  quantize->add_option("--bits", q_bits, "bits per weight: 2, 3, 4, 5, 6 or 8")->capture_default_str()->transform(qmr_cli::decimal_integer(true));
  quantize->add_option("--group", q_group, "group size: 32, 64, 128, 256, or c for per-channel")->capture_default_str();
  quantize->add_flag("--sym", q_sym, "symmetric (no zero points)");
  quantize->add_option("--format", q_format, "format spec instead of --bits/--group/--sym, e.g. w3g64s");
  quantize->add_flag("--clip", q_options.rtn.clip_search, "search a clipping range per group that minimizes MSE");
  quantize->add_option("--skip", q_skip, "keep weights whose name contains this (repeatable; default embed_tokens, lm_head)");
  quantize->add_flag("--all", q_all, "quantize embeddings and the output head too");
  quantize->add_option("--threads", q_threads, "worker threads")->capture_default_str()->transform(qmr_cli::decimal_integer(false))->check(thread_count);
  quantize->add_flag("--quiet", q_quiet, "no progress lines");
  std::string q_method = "rtn", q_plan, q_act;
  qmr_cli::calib_args q_calib;
  quantize->add_option("--quant", q_format, "the same as --format");
  quantize->add_option("--method", q_method, "rtn, gptq, awq or sq (SmoothQuant migration, then RTN)")->capture_default_str();
  quantize->add_option("--plan", q_plan, "a precision plan file (rules by component, layer and name; see quant/plan.hpp)");
  quantize->add_option("--calib", q_calib.source, "calibration data for gptq/awq/sq: synth, self (sampled from the model), random, a .jsonl file or a text file")
      ->capture_default_str();
  quantize->add_option("--calib-n", q_calib.n, "calibration samples")->capture_default_str()->transform(qmr_cli::decimal_integer(true))->check(CLI::PositiveNumber);
  quantize->add_option("--calib-len", q_calib.len, "tokens per calibration sample")->capture_default_str()->transform(qmr_cli::decimal_integer(true))->check(CLI::PositiveNumber);
  quantize->add_option("--calib-seed", q_calib.seed, "seed of the synthetic calibration problems")->capture_default_str()->transform(qmr_cli::decimal_integer(false));
  qmr_cli::add_method_options(quantize, q_calib);
  quantize->add_option("--act", q_act, "record activation quantization for inference: a8 or a4");
  bool q_float_propagate = false;
  quantize->add_flag("--float-propagate", q_float_propagate,
                     "calibrate each layer on the full-precision outputs of the layers before (one pass per layer "
                     "instead of two; default: on their quantized outputs, as GPTQ)");

  std::string l_dir, l_ids, l_out;
  unsigned l_threads = q_threads;
  auto* logits = app.add_subcommand("logits", "Write the logits of every position as raw float32 [n_ids, vocab]");
  l_dir = qmr_cli::default_model_dir();
  logits->add_option("--model", l_dir, "model directory (original or qmr-quantized)")->capture_default_str();
  logits->add_option("--ids", l_ids, "token ids, e.g. 1,2,3")->required();
  logits->add_option("--out", l_out, "output file")->required();
  logits->add_option("--threads", l_threads, "worker threads")->capture_default_str()->transform(qmr_cli::decimal_integer(false))->check(thread_count);

  std::string t_dir, t_text, t_decode;
  auto* tokenize = app.add_subcommand("tokenize", "Encode text to ids (space-separated) or decode ids to text");
  t_dir = qmr_cli::default_model_dir();
  tokenize->add_option("--model", t_dir, "model directory or tokenizer.json")->capture_default_str();
  auto* t_text_opt = tokenize->add_option("--text", t_text, "text to encode");
  tokenize->add_option("--decode", t_decode, "ids to decode, e.g. 1,2,3")->excludes(t_text_opt);

  generate_args g;
  g.threads = q_threads;
  auto* generate = app.add_subcommand("generate", "Generate text from a prompt");
  g.dir = qmr_cli::default_model_dir();
  generate->add_option("--model", g.dir, "model directory (original or qmr-quantized)")->capture_default_str();
  generate->add_option("--prompt", g.prompt, "prompt text")->required();
  generate->add_option("--max-tokens", g.max_tokens, "most tokens to generate (at most the model's max_position_embeddings with the prompt)")
      ->capture_default_str()
      ->transform(qmr_cli::decimal_integer(true))
      ->check(CLI::PositiveNumber);
  generate->add_flag("--chat", g.chat, "wrap the prompt in ChatML (<|im_start|>user ... <|im_start|>assistant)");
  generate->add_option("--system", g.system, "system message in --chat mode");
  qmr_cli::add_load_option(generate, g.load);
  generate->add_option("--temperature", g.sampling.temperature, "0 = greedy")->capture_default_str();
  generate->add_option("--top-p", g.sampling.top_p, "nucleus sampling mass")->capture_default_str();
  generate->add_option("--seed", g.sampling.seed, "sampling seed")->capture_default_str()->transform(qmr_cli::decimal_integer(false));
  generate->add_option("--stop", g.stop, "stop when the output contains this (repeatable)");
  generate->add_option("--threads", g.threads, "worker threads (cpu)")->capture_default_str()->transform(qmr_cli::decimal_integer(false))->check(thread_count);
  generate->add_option("--device", g.device, "cpu, or cuda: the GPU forward pass (model/cuda_forward.cuh)")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  generate->add_flag("--quiet", g.quiet, "no speed line on stderr");
  generate->add_flag("--lut", g.lut,
                     "cpu: decode the 2-6-bit linears through the table GEMV over a load-time repack (AVX-512; f32 "
                     "numerics in another summation order; a second copy of those weights in memory)");

  std::size_t s_n = 0;
  std::string s_types, s_levels, s_out;
  qmr::eval::synth_options s_options;
  auto* synth = app.add_subcommand("synth", "Generate synthetic math problems with checkable steps (GSM8K-style JSONL)");
  synth->add_option("--n", s_n, "number of problems (cycling through types x levels)")
      ->required()
      ->transform(qmr_cli::decimal_integer(false))
      ->check(CLI::PositiveNumber);
  synth->add_option("--seed", s_options.seed, "seed")->capture_default_str()->transform(qmr_cli::decimal_integer(false));
  synth->add_option("--types", s_types, "comma-separated types (default all): " + qmr::eval::op_type_list());
  synth->add_option("--levels", s_levels, "comma-separated levels 1-5 (default all)");
  synth->add_option("--max-operand", s_options.max_operand,
                    "largest number in a question, 10 to 10000 (0 = per level: 100, 100, 200, 500, 500)")
      ->capture_default_str()
      ->transform(qmr_cli::decimal_integer(true));
  synth->add_option("--out", s_out, "output .jsonl file")->required();

  qmr_cli::eval_args e;
  auto* eval = qmr_cli::add_eval_command(app, e);

  qmr_cli::bench_args b;
  auto* bench = qmr_cli::add_bench_command(app, b);

  qmr_cli::sensitivity_args sens;
  auto* sensitivity = qmr_cli::add_sensitivity_command(app, sens);

  qmr_cli::stats_args st;
  auto* stats = qmr_cli::add_stats_command(app, st);

  qmr_cli::report_args rep;
  auto* report = qmr_cli::add_report_command(app, rep);

  CLI11_PARSE(app, argc, argv);
  try {
    if (*inspect) return run_inspect(inspect_path, inspect_json);
    if (*logits) return run_logits(l_dir, l_ids, l_out, l_threads);
    if (*tokenize) return run_tokenize(t_dir, t_text, t_decode, t_text_opt->count() > 0);
    if (*generate) return run_generate(g);
    if (*eval) return qmr_cli::run_eval(e);
    if (*bench) return qmr_cli::run_bench(b);
    if (*sensitivity) return qmr_cli::run_sensitivity(sens);
    if (*stats) return qmr_cli::run_stats(st);
    if (*report) return qmr_cli::run_report(rep);
    if (*synth) return run_synth(s_n, s_types, s_levels, s_options, s_out);
    if (*quantize) {
      if (q_method != "rtn" || !q_plan.empty() || !q_act.empty())
        return run_quantize_model(q_in, q_out, q_method, q_format, q_group, q_bits, q_sym, q_plan, q_act, q_calib,
                                  q_options.rtn, !q_float_propagate, q_threads, q_quiet);
      if (!q_skip.empty()) q_options.skip = q_skip;
      if (q_all) q_options.skip.clear();
      const std::string group = q_group == "c" || q_group == "channel" ? "c" : q_group;
      const std::string spec = !q_format.empty() ? q_format : "w" + std::to_string(q_bits) + "g" + group + (q_sym ? "s" : "");
      return run_quantize(q_in, q_out, spec, q_options, q_threads, q_quiet);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qmr: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
