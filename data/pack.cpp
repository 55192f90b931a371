#include "data/pack.hpp"

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "data/atomic_file.hpp"
#include "data/image_codec.hpp"
#include "data/labels_csv.hpp"
#include "data/pack_state.hpp"
#include "data/preprocess.hpp"
#include "data/progress.hpp"
#include "data/shard_file.hpp"

namespace gf::data {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// One input image that passed the listing checks, in dataset order.
struct PlanEntry {
  std::string path;      // absolute
  std::string relative;  // to images_dir, '/' separated
  std::string id, source;
  int split = 0;
  std::vector<double> labels;
};

struct Plan {
  std::vector<PlanEntry> entries;
  std::vector<LabelColumn> columns;
  std::string id_column;
  std::vector<PackProblem> problems;  // found while listing (duplicates, unmatched rows/images)
  int64_t inputs = 0;
  std::string sha256;                 // identity of inputs and options
};

std::string sha256_text(const std::string& text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha256(), nullptr);
  std::ostringstream hex;
  for (unsigned int i = 0; i < length; ++i) hex << std::hex << std::setw(2) << std::setfill('0') << static_cast<int>(digest[i]);
  return hex.str();
}

std::string shard_name(size_t index) {
  std::ostringstream name;
  name << "shard-" << std::setw(5) << std::setfill('0') << index << ".h5";
  return name.str();
}

std::string preprocessing_json(const PackOptions& o, const PreprocessOptions& p) {
  json j = o.preprocessing == PackPreprocessing::kNone
               ? json{{"method", "none: each image as read, at its own size"}}
               : json{{"method", "retfound-green border crop, pad to square, resize"},
                      {"threshold", p.threshold},
                      {"quantile", p.quantile},
                      {"buffer_fraction", p.buffer_fraction},
                      {"resize", "lanczos3 antialiased (PIL Image.LANCZOS)"},
                      {"fallback", "plain lanczos resize when no row/column passes the threshold"},
                      {"resolution", o.resolution}};
  j["encoding"] = to_string(o.encoding);
  if (o.encoding == Encoding::kJpeg) {
    j["jpeg_quality"] = o.jpeg_quality;
    j["jpeg_chroma"] = "4:4:4";
  }
  return j.dump();
}

void add_problem(std::vector<PackProblem>* problems, PackProblem problem, BadInputPolicy policy) {
  if (policy == BadInputPolicy::kStop) throw std::runtime_error(problem.detail + " (--strict stops at the first bad input)");
  std::cerr << "warning: " << problem.detail << " (skipped)\n";
  problems->push_back(std::move(problem));
}

Plan make_plan(const PackOptions& o) {
  Plan plan;
  const fs::path root = fs::absolute(o.images_dir);
  if (!fs::is_directory(root)) throw std::runtime_error(o.images_dir + ": found no folder, expected a folder of images (--images)");
  const fs::path out = fs::weakly_canonical(fs::absolute(o.out_dir));
  std::vector<std::pair<std::string, std::string>> files;  // relative, absolute
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied);
       it != fs::recursive_directory_iterator(); ++it) {
    if (it->is_directory() && fs::weakly_canonical(it->path()) == out) {
      it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file()) continue;
    if (!is_image_extension(it->path().extension().string())) continue;
    files.emplace_back(fs::relative(it->path(), root).generic_string(), it->path().string());
  }
  std::sort(files.begin(), files.end());
  plan.inputs = static_cast<int64_t>(files.size());
  if (files.empty()) throw std::runtime_error(o.images_dir + ": found no .jpg/.jpeg/.png files, expected images to pack");

  std::vector<PackProblem> csv_problems;
  std::unique_ptr<LabelTable> table;
  if (!o.labels_csv.empty()) {
    table = std::make_unique<LabelTable>(read_label_table(o.labels_csv, o.id_column, &csv_problems));
    plan.columns = table->columns;
    plan.id_column = o.id_column;
  } else if (!o.split_by.empty()) {
    throw std::runtime_error("--split-by " + o.split_by + ": found no --labels CSV, expected one holding that column");
  }
  for (auto& p : csv_problems) add_problem(&plan.problems, p, o.bad_input);

  std::map<std::string, std::string> first_path_of_id;
  std::vector<size_t> rows;
  std::set<size_t> used_rows;
  for (const auto& [relative, absolute] : files) {
    PlanEntry entry;
    entry.path = absolute;
    entry.relative = relative;
    entry.id = fs::path(relative).stem().string();
    const size_t slash = relative.find('/');
    entry.source = !o.source.empty() ? o.source : slash != std::string::npos ? relative.substr(0, slash) : root.filename().string();
    if (first_path_of_id.count(entry.id)) {
      add_problem(&plan.problems,
                  {"duplicate_id", absolute,
                   absolute + ": found id '" + entry.id + "' again (first " + first_path_of_id[entry.id] + "), expected unique file names"},
                  o.bad_input);
      continue;
    }
    first_path_of_id[entry.id] = absolute;
    if (table) {
      const auto row = table->row_of_id.find(entry.id);
      if (row == table->row_of_id.end()) {
        add_problem(&plan.problems,
                    {"image_without_row", absolute,
                     absolute + ": found no row with " + o.id_column + " '" + entry.id + "' in " + o.labels_csv + ", expected one"},
                    o.bad_input);
        continue;
      }
      entry.labels = table->values[row->second];
      rows.push_back(row->second);
      used_rows.insert(row->second);
    }
    plan.entries.push_back(std::move(entry));
  }
  if (table) {
    for (size_t r = 0; r < table->ids.size(); ++r) {
      if (used_rows.count(r)) continue;
      const std::string where = o.labels_csv + ":" + std::to_string(table->lines[r]);
      add_problem(&plan.problems,
                  {"row_without_image", where, where + ": found id '" + table->ids[r] + "' with no image file, expected one"},
                  o.bad_input);
    }
    if (!o.split_by.empty()) {
      const std::vector<uint8_t> split = assign_split(*table, rows, o.split_by, o.test_fraction, o.seed);
      for (size_t i = 0; i < plan.entries.size(); ++i) plan.entries[i].split = split[i];
    }
  }

  // The plan's identity: options that shape the output plus every input's name, size and time.
  json identity = {{"format_version", kFormatVersion}, {"resolution", o.resolution},     {"encoding", to_string(o.encoding)},
                   {"jpeg_quality", o.jpeg_quality},  {"shard_size", o.shard_size},     {"split_by", o.split_by},
                   {"test_fraction", o.test_fraction}, {"seed", o.seed},                {"source", o.source},
                   {"id_column", o.id_column},         {"labels_sha256", o.labels_csv.empty() ? "" : sha256_file(o.labels_csv)},
                   {"preprocessing", o.preprocessing == PackPreprocessing::kNone ? "none" : "fundus_crop"}};
  std::ostringstream inputs;
  for (const auto& [relative, absolute] : files) {
    std::error_code ec;
    const auto size = fs::file_size(absolute, ec);
    const auto time = fs::last_write_time(absolute, ec).time_since_epoch().count();
    inputs << relative << '\t' << size << '\t' << time << '\n';
  }
  identity["inputs_sha256"] = sha256_text(inputs.str());
  plan.sha256 = sha256_text(identity.dump());
  return plan;
}

// Decode + preprocess + encode of one plan entry, on a pool thread.
struct Processed {
  std::vector<uint8_t> encoded;
  bool fallback = false;
  bool ok = false;
  PackProblem problem;
};

Processed process_entry(const PlanEntry& entry, const PackOptions& o, const PreprocessOptions& p) {
  Processed r;
  try {
    if (o.preprocessing == PackPreprocessing::kNone) {
      r.encoded = encode_for_shard(read_image_file(entry.path), o.encoding, o.jpeg_quality);
    } else {
      const Preprocessed pre = preprocess_fundus(read_image_file(entry.path), p);
      r.encoded = encode_for_shard(pre.rgb, o.encoding, o.jpeg_quality);
      r.fallback = pre.fallback;
    }
    r.ok = true;
  } catch (const ImageError& e) {
    r.problem = {e.kind(), entry.path, e.what()};
  } catch (const std::exception& e) {
    r.problem = {"unreadable_image", entry.path, entry.path + ": " + e.what()};
  }
  return r;
}

// Runs process_entry over entries [begin, end) on `threads` threads and hands the results to
// `consume` in order on the calling thread, keeping at most `window` results buffered.
template <typename Consume>
void process_in_order(const Plan& plan, int64_t begin, int64_t end, const PackOptions& o, const PreprocessOptions& p,
                      int threads, Consume consume) {
  const int64_t window = 4 * static_cast<int64_t>(threads);
  std::mutex mutex;
  std::condition_variable produced, consumed;
  std::map<int64_t, Processed> results;
  int64_t next_input = begin, next_output = begin;
  bool stop = false;
  auto worker = [&] {
    for (;;) {
      int64_t i = 0;
      {
        std::unique_lock<std::mutex> lock(mutex);
        consumed.wait(lock, [&] { return stop || next_input >= end || next_input < next_output + window; });
        if (stop || next_input >= end) return;
        i = next_input++;
      }
      Processed r = process_entry(plan.entries[static_cast<size_t>(i)], o, p);
      {
        std::lock_guard<std::mutex> lock(mutex);
        results.emplace(i, std::move(r));
      }
      produced.notify_all();
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(worker);
  auto shutdown = [&] {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stop = true;
    }
    consumed.notify_all();
    for (auto& t : pool) t.join();
  };
  try {
    for (int64_t i = begin; i < end; ++i) {
      Processed r;
      {
        std::unique_lock<std::mutex> lock(mutex);
        produced.wait(lock, [&] { return results.count(i) > 0; });
        r = std::move(results[i]);
        results.erase(i);
        next_output = i + 1;
      }
      consumed.notify_all();
      consume(i, std::move(r));
    }
  } catch (...) {
    shutdown();
    throw;
  }
  shutdown();
}

}  // namespace

PackResult pack(const PackOptions& o) {
  const auto started = std::chrono::steady_clock::now();
  if (o.resolution < 16) throw std::runtime_error("--resolution: found " + std::to_string(o.resolution) + ", expected >= 16");
  if (o.shard_size < 1) throw std::runtime_error("--shard-size: found " + std::to_string(o.shard_size) + ", expected >= 1");
  if (!o.split_by.empty() && !(o.test_fraction > 0.0 && o.test_fraction < 1.0)) {
    throw std::runtime_error("--test-fraction: found " + std::to_string(o.test_fraction) + ", expected a value in (0, 1)");
  }
  if (o.preprocessing == PackPreprocessing::kNone && o.encoding == Encoding::kRaw)
    throw std::runtime_error("--encoding: found raw with --preprocess none, expected jpeg or png (raw shards hold one "
                             "size, unprocessed images keep their own)");
  if (o.jpeg_quality < 1 || o.jpeg_quality > 100) {
    throw std::runtime_error("--jpeg-quality: found " + std::to_string(o.jpeg_quality) + ", expected 1..100");
  }
  const fs::path out = fs::absolute(o.out_dir);
  fs::create_directories(out);

  PackResult result;
  Plan plan = make_plan(o);
  result.inputs = plan.inputs;

  // Already packed from the same inputs and options: nothing to do.
  if (is_dataset_dir(out.string())) {
    try {
      Manifest existing = read_manifest(out.string());
      if (existing.plan_sha256 == plan.sha256 && read_pack_report(out.string(), &result)) {
        Dataset::open(out.string(), Verify::kChecksums);
        result.manifest = existing;
        result.packed = existing.count;
        result.resumed_shards = static_cast<int64_t>(existing.shards.size());
        return result;
      }
    } catch (const std::exception& e) {
      std::cerr << "pack: " << out.string() << ": the existing dataset does not verify (" << e.what() << "); repacking\n";
    }
  }

  std::vector<DoneShard> done = resumable_shards(out.string(), plan.sha256);
  if (done.empty()) {
    remove_pack_outputs(out.string());
  } else {
    std::error_code ec;
    fs::remove(out / "manifest.json", ec);
    // Shards beyond the last intact one belong to the interrupted run: drop them.
    std::set<std::string> keep;
    for (const auto& d : done) keep.insert(d.info.file);
    for (const auto& e : fs::directory_iterator(out)) {
      const std::string name = e.path().filename().string();
      if (name.rfind("shard-", 0) == 0 && !keep.count(name)) fs::remove(e.path(), ec);
    }
    std::cerr << "pack: resuming after " << done.size() << " finished shard(s)\n";
  }
  result.resumed_shards = static_cast<int64_t>(done.size());

  PreprocessOptions pre;
  pre.resolution = o.resolution;
  ShardLayout layout;
  layout.resolution = o.resolution;
  layout.encoding = o.encoding;
  layout.preprocessing_json = preprocessing_json(o, pre);
  layout.labels = plan.columns;
  layout.has_split = !o.split_by.empty();

  const int64_t begin = done.empty() ? 0 : done.back().input_end;
  const int64_t end = static_cast<int64_t>(plan.entries.size());
  const int threads = o.threads > 0 ? o.threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));

  std::unique_ptr<ShardWriter> writer;
  DoneShard current;
  std::string tmp_path;
  auto first_index = [&] { return done.empty() ? int64_t{0} : done.back().info.first_index + done.back().info.count; };
  auto finish_shard = [&](int64_t input_end) {
    writer->close();
    writer.reset();
    const std::string final_path = (out / current.info.file).string();
    rename_durable(tmp_path, final_path);
    current.info.bytes = static_cast<int64_t>(fs::file_size(final_path));
    current.info.sha256 = sha256_file(final_path);
    current.input_end = input_end;
    done.push_back(current);
    write_pack_state(out.string(), plan.sha256, done);
  };

  Progress progress({"pack", "images", o.show_progress ? ProgressStyle::kAuto : ProgressStyle::kSilent}, end - begin);
  int64_t processed = 0;
  auto consume = [&](int64_t i, Processed r) {
    const PlanEntry& entry = plan.entries[static_cast<size_t>(i)];
    progress.advance();
    ++processed;
    if (!writer) {
      current = DoneShard();
      current.info.file = shard_name(done.size());
      current.info.first_index = first_index();
      tmp_path = (out / (current.info.file + ".tmp")).string();
      layout.first_index = current.info.first_index;
      writer = std::make_unique<ShardWriter>(tmp_path, layout);
    }
    if (!r.ok) {
      add_problem(&current.problems, r.problem, o.bad_input);
    } else {
      writer->append(entry.id, entry.source, std::move(r.encoded), entry.split, entry.labels);
      ++current.info.count;
      ++current.sources[entry.source];
      (entry.split ? current.test : current.train) += 1;
      current.fallback += r.fallback ? 1 : 0;
    }
    if (current.info.count == o.shard_size) finish_shard(i + 1);
  };
  try {
    process_in_order(plan, begin, end, o, pre, threads, consume);
  } catch (...) {
    writer.reset();  // a shard never left under its temporary name
    std::error_code ec;
    if (!tmp_path.empty()) fs::remove(tmp_path, ec);
    throw;
  }
  if (writer && current.info.count > 0) {
    finish_shard(end);
  } else if (writer) {
    writer.reset();  // only bad images since the last shard
    std::error_code ec;
    fs::remove(tmp_path, ec);
    plan.problems.insert(plan.problems.end(), current.problems.begin(), current.problems.end());
  }
  progress.finish();

  Manifest& m = result.manifest;
  m.resolution = o.resolution;
  m.encoding = o.encoding;
  m.labels = plan.columns;
  m.id_column = plan.id_column;
  m.preprocessing_json = layout.preprocessing_json;
  m.plan_sha256 = plan.sha256;
  if (!o.split_by.empty()) m.split = SplitInfo{o.split_by, o.test_fraction, o.seed, 0, 0};
  result.problems = plan.problems;
  for (const auto& d : done) {
    m.shards.push_back(d.info);
    m.count += d.info.count;
    for (const auto& [name, n] : d.sources) m.sources[name] += n;
    if (!o.split_by.empty()) {
      m.split.train_count += d.train;
      m.split.test_count += d.test;
    }
    result.fallback_resized += d.fallback;
    result.problems.insert(result.problems.end(), d.problems.begin(), d.problems.end());
  }
  if (m.count == 0) throw std::runtime_error(o.images_dir + ": found no usable image, expected at least one (see the warnings above)");
  result.packed = m.count;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  result.images_per_second = result.seconds > 0 ? static_cast<double>(processed) / result.seconds : 0.0;
  write_pack_report(out.string(), result);
  write_manifest(m, out.string());  // last: the dataset is complete from here on
  std::error_code ec;
  fs::remove(out / kPackStateFile, ec);
  return result;
}

}  // namespace gf::data
