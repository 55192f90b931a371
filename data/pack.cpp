#include "data/pack.hpp"

#include <nlohmann/json.hpp>

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

#include "base/atomic_file.hpp"
#include "base/error.hpp"
#include "base/parallel_for.hpp"
#include "base/progress.hpp"
#include "base/sha256.hpp"
#include "data/image_codec.hpp"
#include "data/labels_csv.hpp"
#include "data/pack_state.hpp"
#include "data/preprocess.hpp"
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
  if (policy == BadInputPolicy::kStop)
    throw base::FieldError("pack", "bad_input", problem.detail + " (stopped at the first bad input)");
  std::cerr << "warning: " << problem.detail << " (skipped)\n";
  problems->push_back(std::move(problem));
}

using ImageFiles = std::vector<std::pair<std::string, std::string>>;  // relative, absolute; sorted

// Where `overwrite` builds the new dataset before it replaces `out`: a sibling, so the final
// rename stays on one file system; an interrupted overwrite resumes there.
fs::path staging_folder(const fs::path& out) { return out.parent_path() / ("." + out.filename().string() + ".pack-new"); }

// Every image under `root` (recursive), the output folder (and its staging folder) left out.
ImageFiles list_image_files(const PackOptions& o, const fs::path& root) {
  if (!fs::is_directory(root))
    base::throw_found_expected("pack", "images_dir", base::shown(o.images_dir) + ", no folder", "a folder of images");
  const fs::path out = fs::weakly_canonical(fs::absolute(o.out_dir));
  const fs::path staged = staging_folder(out);
  ImageFiles files;
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied);
       it != fs::recursive_directory_iterator(); ++it) {
    if (it->is_directory() && (fs::weakly_canonical(it->path()) == out || fs::weakly_canonical(it->path()) == staged)) {
      it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file()) continue;
    if (!is_image_extension(it->path().extension().string())) continue;
    files.emplace_back(fs::relative(it->path(), root).generic_string(), it->path().string());
  }
  std::sort(files.begin(), files.end());
  if (files.empty())
    base::throw_found_expected("pack", "images_dir", base::shown(o.images_dir) + " with no .jpg/.jpeg/.png files",
                               "images to pack");
  return files;
}

// The plan's identity: options that shape the output plus every input's name, size and time.
std::string plan_sha256(const PackOptions& o, const ImageFiles& files) {
  json identity = {{"format_version", kFormatVersion}, {"resolution", o.resolution},     {"encoding", to_string(o.encoding)},
                   {"jpeg_quality", o.jpeg_quality},  {"shard_size", o.shard_size},     {"split_by", o.split_by},
                   {"test_fraction", o.test_fraction}, {"seed", o.seed},                {"source", o.source},
                   {"id_column", o.id_column},         {"labels_sha256", o.labels_csv.empty() ? "" : base::sha256_file(o.labels_csv)},
                   {"preprocessing", o.preprocessing == PackPreprocessing::kNone ? "none" : "fundus_crop"}};
  std::ostringstream inputs;
  for (const auto& [relative, absolute] : files) {
    std::error_code ec;
    const auto size = fs::file_size(absolute, ec);
    const auto time = fs::last_write_time(absolute, ec).time_since_epoch().count();
    inputs << relative << '\t' << size << '\t' << time << '\n';
  }
  identity["inputs_sha256"] = base::sha256_hex(inputs.str());
  return base::sha256_hex(identity.dump());
}

Plan make_plan(const PackOptions& o) {
  Plan plan;
  const fs::path root = fs::absolute(o.images_dir);
  const ImageFiles files = list_image_files(o, root);
  plan.inputs = static_cast<int64_t>(files.size());

  std::vector<PackProblem> csv_problems;
  std::unique_ptr<LabelTable> table;
  if (!o.labels_csv.empty()) {
    table = std::make_unique<LabelTable>(read_label_table(o.labels_csv, o.id_column, &csv_problems));
    plan.columns = table->columns;
    plan.id_column = o.id_column;
  } else if (!o.split_by.empty()) {
    base::throw_found_expected("pack", "labels_csv", "none with split_by " + base::shown(o.split_by),
                               "a labels CSV holding that column");
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
  plan.sha256 = plan_sha256(o, files);
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

void check_options(const PackOptions& o) {
  if (o.resolution < 16) base::throw_found_expected("pack", "resolution", std::to_string(o.resolution), ">= 16");
  if (o.shard_size < 1) base::throw_found_expected("pack", "shard_size", std::to_string(o.shard_size), ">= 1");
  if (!o.split_by.empty() && !(o.test_fraction > 0.0 && o.test_fraction < 1.0))
    base::throw_found_expected("pack", "test_fraction", base::shown(o.test_fraction), "a value in (0, 1)");
  if (o.jpeg_quality < 1 || o.jpeg_quality > 100)
    base::throw_found_expected("pack", "jpeg_quality", std::to_string(o.jpeg_quality), "1..100");
  if (o.preprocessing == PackPreprocessing::kNone && o.encoding == Encoding::kRaw)
    base::throw_found_expected("pack", "encoding", "raw with preprocessing none",
                               "jpeg or png (raw shards hold one size, unprocessed images keep their own)");
}

// The dataset in `out` when it was packed from the same inputs and options and verifies.
bool already_packed(const fs::path& out, const Plan& plan, PackResult& result) {
  if (!is_dataset_dir(out.string())) return false;
  try {
    Manifest existing = read_manifest(out.string());
    if (existing.plan_sha256 != plan.sha256 || !read_pack_report(out.string(), &result)) return false;
    Dataset::open(out.string(), Verify::kChecksums);
    result.manifest = existing;
    result.packed = existing.count;
    result.resumed_shards = static_cast<int64_t>(existing.shards.size());
    return true;
  } catch (const std::exception& e) {
    std::cerr << "pack: " << out.string() << ": the existing dataset does not verify (" << e.what() << "); repacking\n";
    return false;
  }
}

// What `out` holds that packing `plan` there would lose, "" when nothing: a new or empty
// folder, the temporaries of a pack killed before its first shard, or this plan's own
// dataset, finished (nothing to do) or not (resumed).
std::string work_replaced(const fs::path& out, const Plan& plan) {
  std::error_code ec;
  if (!fs::exists(out, ec)) return "";
  if (!fs::is_directory(out, ec)) return "a file, not a folder";
  std::vector<std::string> foreign;
  bool manifest = false, state = false;
  for (const auto& e : fs::directory_iterator(out)) {
    const std::string name = e.path().filename().string();
    if (!is_pack_file(name)) foreign.push_back(name);
    manifest = manifest || name == "manifest.json";
    state = state || name == kPackStateFile;
  }
  if (!foreign.empty())
    return std::to_string(foreign.size()) + " file(s) pack did not write (" + foreign.front() +
           (foreign.size() > 1 ? ", ..." : "") + ")";
  if (manifest) {
    std::string packed_plan;
    try {
      packed_plan = read_manifest(out.string()).plan_sha256;
    } catch (const std::exception&) {
    }
    if (packed_plan != plan.sha256) return "a dataset packed from other inputs or options (manifest.json)";
  }
  if (state && pack_state_plan(out.string()) != plan.sha256)
    return "an unfinished pack of other inputs or options (" + std::string(kPackStateFile) + ")";
  return "";
}

// The finished shards of an interrupted run of this plan; everything else in `out` removed.
std::vector<DoneShard> prepare_output(const fs::path& out, const Plan& plan) {
  std::vector<DoneShard> done = resumable_shards(out.string(), plan.sha256);
  if (done.empty()) {
    remove_pack_outputs(out.string());
    return done;
  }
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
  return done;
}

// Receives processed entries in order and writes them into shards of o.shard_size images:
// each shard under a temporary name until complete, then renamed, checksummed and recorded
// in the pack state (so an interrupted pack resumes after it).
class ShardSink {
 public:
  ShardSink(const PackOptions& o, const fs::path& out, const Plan& plan, ShardLayout layout, std::vector<DoneShard>& done)
      : o_(o), out_(out), plan_(plan), layout_(std::move(layout)), done_(done) {}
  ~ShardSink() { abandon(); }

  void consume(int64_t i, Processed r) {
    const PlanEntry& entry = plan_.entries[static_cast<size_t>(i)];
    if (!writer_) open_shard();
    if (!r.ok) {
      add_problem(&current_.problems, r.problem, o_.bad_input);
    } else {
      writer_->append(entry.id, entry.source, std::move(r.encoded), entry.split, entry.labels);
      ++current_.info.count;
      ++current_.sources[entry.source];
      (entry.split ? current_.test : current_.train) += 1;
      current_.fallback += r.fallback ? 1 : 0;
    }
    if (current_.info.count == o_.shard_size) finish_shard(i + 1);
  }

  // After the last entry: the last shard, or (only bad images since the last shard) its problems.
  void finish(int64_t input_end, std::vector<PackProblem>& problems) {
    if (writer_ && current_.info.count > 0) return finish_shard(input_end);
    if (!writer_) return;
    abandon();
    problems.insert(problems.end(), current_.problems.begin(), current_.problems.end());
  }

 private:
  void open_shard() {
    current_ = DoneShard();
    current_.info.file = shard_name(done_.size());
    current_.info.first_index = done_.empty() ? 0 : done_.back().info.first_index + done_.back().info.count;
    tmp_path_ = (out_ / (current_.info.file + ".tmp")).string();
    layout_.first_index = current_.info.first_index;
    writer_ = std::make_unique<ShardWriter>(tmp_path_, layout_);
  }

  void finish_shard(int64_t input_end) {
    writer_->close();
    writer_.reset();
    const std::string final_path = (out_ / current_.info.file).string();
    base::rename_durable(tmp_path_, final_path);
    tmp_path_.clear();
    current_.info.bytes = static_cast<int64_t>(fs::file_size(final_path));
    current_.info.sha256 = base::sha256_file(final_path);
    current_.input_end = input_end;
    done_.push_back(current_);
    write_pack_state(out_.string(), plan_.sha256, done_);
  }

  // A shard never stays under its temporary name.
  void abandon() {
    writer_.reset();
    std::error_code ec;
    if (!tmp_path_.empty()) fs::remove(tmp_path_, ec);
    tmp_path_.clear();
  }

  const PackOptions& o_;
  const fs::path out_;
  const Plan& plan_;
  ShardLayout layout_;
  std::vector<DoneShard>& done_;
  std::unique_ptr<ShardWriter> writer_;
  DoneShard current_;
  std::string tmp_path_;
};

// The manifest of the finished shards, and the result's counts and problems.
void summarize_shards(const PackOptions& o, const Plan& plan, const ShardLayout& layout,
                      const std::vector<DoneShard>& done, PackResult& result) {
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
  if (m.count == 0)
    throw std::runtime_error(o.images_dir + ": found no usable image, expected at least one (see the warnings above)");
  result.packed = m.count;
}

// Packs `plan` into `out`, which holds nothing work_replaced() would name.
void pack_into(const PackOptions& o, const fs::path& out, Plan& plan, PackResult& result,
               std::chrono::steady_clock::time_point started) {
  fs::create_directories(out);
  std::error_code ec;
  if (already_packed(out, plan, result)) {  // same inputs and options: nothing to do
    fs::remove(out / kPackStateFile, ec);   // but what a pack killed right after its manifest left
    return;
  }
  std::vector<DoneShard> done = prepare_output(out, plan);
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
  base::Progress progress({"pack", "images", o.show_progress ? base::ProgressStyle::kAuto : base::ProgressStyle::kSilent},
                          end - begin);
  {
    ShardSink sink(o, out, plan, layout, done);
    process_in_order(plan, begin, end, o, pre, base::resolve_threads(o.threads), [&](int64_t i, Processed r) {
      progress.advance();
      sink.consume(i, std::move(r));
    });
    sink.finish(end, plan.problems);
  }
  progress.finish();

  summarize_shards(o, plan, layout, done, result);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  result.images_per_second = result.seconds > 0 ? static_cast<double>(end - begin) / result.seconds : 0.0;
  write_pack_report(out.string(), result);
  write_manifest(result.manifest, out.string());  // last: the dataset is complete from here on
  fs::remove(out / kPackStateFile, ec);
}

}  // namespace

PackResult pack(const PackOptions& o) {
  const auto started = std::chrono::steady_clock::now();
  check_options(o);
  const fs::path out = fs::weakly_canonical(fs::absolute(o.out_dir));
  PackResult result;
  Plan plan = make_plan(o);
  result.inputs = plan.inputs;
  const std::string replaced = work_replaced(out, plan);
  if (replaced.empty()) {
    pack_into(o, out, plan, result, started);
    // An overwrite killed after its exchange left the replaced folder where it was staged.
    if (o.overwrite) fs::remove_all(staging_folder(out));
    return result;
  }
  if (!o.overwrite)
    throw base::FieldError("pack", "out_dir",
                           "found " + o.out_dir + " holding " + replaced +
                               ", expected an empty or new folder, or overwrite to replace it");
  const fs::path staged = staging_folder(out);
  if (!work_replaced(staged, plan).empty()) fs::remove_all(staged);  // an earlier overwrite's leftovers
  pack_into(o, staged, plan, result, started);
  base::exchange_folder_durable(staged.string(), out.string());
  fs::remove_all(staged);  // now the replaced folder
  return result;
}

}  // namespace gf::data
