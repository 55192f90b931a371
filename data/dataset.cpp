#include "data/dataset.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <stdexcept>

#include "base/parallel_for.hpp"
#include "base/sha256.hpp"
#include "data/augment.hpp"
#include "data/image_codec.hpp"
#include "data/shard_file.hpp"

namespace gf::data {

struct Dataset::Shard {
  ShardInfo info;
  std::unique_ptr<ShardReader> reader;
};

namespace {

// Checks one shard file against the manifest; returns an error sentence or "".
std::string verify_shard(const std::string& path, const ShardInfo& info, Verify verify) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return path + ": found no file, expected the shard listed in manifest.json";
  const auto bytes = static_cast<int64_t>(std::filesystem::file_size(path, ec));
  if (info.bytes >= 0 && bytes != info.bytes) {
    return path + ": size: found " + std::to_string(bytes) + " bytes, expected " + std::to_string(info.bytes) +
           " (truncated or modified shard; re-run greenfound pack)";
  }
  if (verify == Verify::kChecksums) {
    const std::string sha = base::sha256_file(path);
    if (sha != info.sha256) {
      return path + ": sha256: found " + sha.substr(0, 12) + ".., expected " + info.sha256.substr(0, 12) +
             ".. (corrupt or modified shard; re-run greenfound pack)";
    }
  }
  return "";
}

std::string categories_text(const std::vector<std::string>& categories) {
  std::string text;
  for (const auto& c : categories) text += (text.empty() ? "" : ", ") + c;
  return "[" + text + "]";
}

// The shard's labels/<name> attributes against the manifest's column (a swapped category
// list would otherwise reinterpret every label). Shards without the attributes pass.
void check_label_schema(const LabelColumn& found, const LabelColumn& expected, const std::string& path) {
  if (found.name.empty()) return;
  if (found.type != expected.type || found.categories != expected.categories) {
    throw std::runtime_error(path + ": labels/" + expected.name + ": found type " + to_string(found.type) +
                             (found.categories.empty() ? "" : " " + categories_text(found.categories)) + ", expected " +
                             to_string(expected.type) + (expected.categories.empty() ? "" : " " + categories_text(expected.categories)) +
                             " (manifest.json)");
  }
}

}  // namespace

std::shared_ptr<Dataset> Dataset::open(const std::string& dir, Verify verify) {
  std::shared_ptr<Dataset> ds(new Dataset());
  ds->dir_ = dir;
  ds->manifest_ = read_manifest(dir);
  const Manifest& m = ds->manifest_;

  // Checksums first, in parallel over shards (sha256 is CPU-bound; the files are independent).
  std::vector<std::string> paths;
  for (const auto& s : m.shards) paths.push_back((std::filesystem::path(dir) / s.file).string());
  std::vector<std::string> errors(paths.size());
  base::parallel_for(static_cast<int64_t>(paths.size()), std::min(8, base::resolve_threads(0)), [&](int64_t s) {
    errors[static_cast<size_t>(s)] = verify_shard(paths[static_cast<size_t>(s)], m.shards[static_cast<size_t>(s)], verify);
  });
  for (const auto& error : errors)
    if (!error.empty()) throw std::runtime_error(error);

  // Nothing is sized from the manifest's counts: each shard's count is checked against the
  // elements its file really stores (ShardReader) before its data is read.
  const bool has_split = !m.split.by.empty();
  for (size_t s = 0; s < m.shards.size(); ++s) {
    auto shard = std::make_unique<Shard>();
    shard->info = m.shards[s];
    shard->reader = std::make_unique<ShardReader>(paths[s]);
    const ShardReader& r = *shard->reader;
    if (r.count() != shard->info.count) {
      throw std::runtime_error(paths[s] + ": images: found " + std::to_string(r.count()) + " elements, expected " +
                               std::to_string(shard->info.count) + " (manifest.json)");
    }
    if (r.raw() && (r.raw_height() != m.resolution || r.raw_width() != m.resolution)) {
      throw std::runtime_error(paths[s] + ": images: found raw " + std::to_string(r.raw_height()) + "x" +
                               std::to_string(r.raw_width()) + ", expected " + std::to_string(m.resolution) + "x" +
                               std::to_string(m.resolution));
    }
    if (r.raw() != (m.encoding == Encoding::kRaw)) {
      throw std::runtime_error(paths[s] + ": images: found a " + std::string(r.raw() ? "raw" : "encoded") +
                               " dataset, expected encoding " + to_string(m.encoding) + " (manifest.json)");
    }
    auto append = [&](auto& into, const auto& values, const std::string& name) {
      if (static_cast<int64_t>(values.size()) != r.count()) {
        throw std::runtime_error(paths[s] + ": " + name + ": found " + std::to_string(values.size()) + " elements, expected " +
                                 std::to_string(r.count()));
      }
      into.insert(into.end(), values.begin(), values.end());
    };
    append(ds->ids_, r.read_strings("ids"), "ids");
    if (r.has("sources")) {
      append(ds->sources_, r.read_strings("sources"), "sources");
    } else {
      ds->sources_.resize(ds->sources_.size() + static_cast<size_t>(r.count()));
    }
    if (has_split) append(ds->split_, r.read_uint8("split"), "split");
    for (const auto& column : m.labels) {
      const std::string name = "labels/" + column.name;
      check_label_schema(r.read_label_schema(column.name), column, paths[s]);
      if (column.type == LabelType::kFloat) {
        append(ds->float_labels_[column.name], r.read_double(name), name);
      } else {
        append(ds->int_labels_[column.name], r.read_int64(name), name);
      }
    }
    ds->shards_.push_back(std::move(shard));
  }
  if (has_split) {
    const auto test = static_cast<int64_t>(std::count(ds->split_.begin(), ds->split_.end(), 1));
    const int64_t train = static_cast<int64_t>(ds->split_.size()) - test;
    if (train != m.split.train_count || test != m.split.test_count) {
      throw std::runtime_error(dir + "/manifest.json: split: found train " + std::to_string(m.split.train_count) + ", test " +
                               std::to_string(m.split.test_count) + ", expected the shards' train " + std::to_string(train) +
                               ", test " + std::to_string(test));
    }
  }
  return ds;
}

Dataset::~Dataset() = default;

std::vector<int64_t> Dataset::split_indices(const std::string& split) const {
  std::vector<int64_t> out;
  if (split == "all" || (split == "train" && split_.empty())) {
    out.resize(static_cast<size_t>(size()));
    for (int64_t i = 0; i < size(); ++i) out[static_cast<size_t>(i)] = i;
    return out;
  }
  if (split != "train" && split != "test") throw std::runtime_error("split: found '" + split + "', expected train, test or all");
  if (split_.empty()) {
    throw std::runtime_error(dir_ + ": split 'test': found a dataset without a split, expected one packed with a split_by column");
  }
  const uint8_t wanted = split == "test" ? 1 : 0;
  for (size_t i = 0; i < split_.size(); ++i) {
    if (split_[i] == wanted) out.push_back(static_cast<int64_t>(i));
  }
  return out;
}

std::vector<int64_t> Dataset::patient_subset(const std::vector<int64_t>& indices, double fraction, uint64_t seed) const {
  if (!(fraction > 0.0 && fraction <= 1.0))
    throw std::runtime_error(dir_ + ": data.fraction: found " + std::to_string(fraction) + ", expected 0 < fraction <= 1");
  if (fraction == 1.0) return indices;
  const std::string& by = manifest_.split.by;
  const bool grouped = std::any_of(manifest_.labels.begin(), manifest_.labels.end(),
                                   [&](const LabelColumn& column) { return column.name == by; });
  const std::vector<double> patient = grouped ? float_labels(by) : std::vector<double>{};
  // A group key per index: {true, the patient's value}, or {false, the image's index}.
  using Key = std::pair<bool, double>;
  std::vector<Key> keys;
  keys.reserve(indices.size());
  for (int64_t i : indices) {
    const double value = grouped ? patient[static_cast<size_t>(i)] : std::nan("");
    keys.push_back(std::isnan(value) ? Key{false, static_cast<double>(i)} : Key{true, value});
  }
  std::vector<Key> groups(keys);
  std::sort(groups.begin(), groups.end());
  groups.erase(std::unique(groups.begin(), groups.end()), groups.end());
  SampleRng rng(seed, 0, -3);  // the subset's own stream (the split's is -2)
  for (int64_t g = static_cast<int64_t>(groups.size()) - 1; g > 0; --g)
    std::swap(groups[static_cast<size_t>(g)], groups[static_cast<size_t>(rng.below(g + 1))]);
  const auto kept = std::min(groups.size(), static_cast<size_t>(std::ceil(fraction * static_cast<double>(groups.size()))));
  std::sort(groups.begin(), groups.begin() + static_cast<std::ptrdiff_t>(kept));
  std::vector<int64_t> out;
  for (size_t k = 0; k < keys.size(); ++k)
    if (std::binary_search(groups.begin(), groups.begin() + static_cast<std::ptrdiff_t>(kept), keys[k])) out.push_back(indices[k]);
  return out;
}

const LabelColumn& Dataset::label_column(const std::string& task) const {
  for (const auto& column : manifest_.labels) {
    if (column.name == task) return column;
  }
  std::string names;
  for (const auto& column : manifest_.labels) names += (names.empty() ? "" : ", ") + column.name;
  throw std::runtime_error(dir_ + ": labels: found no column '" + task + "', expected one of: " + names);
}

const std::vector<int64_t>& Dataset::int_labels(const std::string& task) const {
  const LabelColumn& column = label_column(task);
  if (column.type == LabelType::kFloat) {
    throw std::runtime_error(dir_ + ": labels/" + task + ": found a float column, expected integer classes");
  }
  return int_labels_.at(task);
}

std::vector<double> Dataset::float_labels(const std::string& task) const {
  const LabelColumn& column = label_column(task);
  if (column.type == LabelType::kFloat) return float_labels_.at(task);
  const auto& ints = int_labels_.at(task);
  std::vector<double> out(ints.size());
  for (size_t i = 0; i < ints.size(); ++i) {
    out[i] = ints[i] < 0 ? std::numeric_limits<double>::quiet_NaN() : static_cast<double>(ints[i]);
  }
  return out;
}

const Dataset::Shard& Dataset::shard_of(int64_t i, int64_t* local) const {
  if (i < 0 || i >= size()) {
    throw std::runtime_error(dir_ + ": found dataset index " + std::to_string(i) + ", expected 0.." + std::to_string(size() - 1));
  }
  const auto it = std::upper_bound(shards_.begin(), shards_.end(), i,
                                   [](int64_t index, const std::unique_ptr<Shard>& s) { return index < s->info.first_index; });
  const Shard& shard = **(it - 1);
  *local = i - shard.info.first_index;
  return shard;
}

std::vector<uint8_t> Dataset::read_encoded(int64_t i) const {
  int64_t local = 0;
  const Shard& shard = shard_of(i, &local);
  std::lock_guard<std::mutex> lock(read_mutex_);
  return shard.reader->read_image(local);
}

cv::Mat Dataset::decode_bytes(const std::vector<uint8_t>& bytes) const {
  if (manifest_.encoding == Encoding::kRaw) {
    const int r = manifest_.resolution;
    if (bytes.size() != static_cast<size_t>(r) * r * 3) {
      throw std::runtime_error(dir_ + ": raw image: found " + std::to_string(bytes.size()) + " bytes, expected " +
                               std::to_string(static_cast<size_t>(r) * r * 3));
    }
    return cv::Mat(r, r, CV_8UC3, const_cast<uint8_t*>(bytes.data())).clone();
  }
  return decode_image(bytes, dir_ + " image");
}

cv::Mat Dataset::decode(int64_t i) const {
  const std::vector<uint8_t> bytes = read_encoded(i);
  try {
    return decode_bytes(bytes);
  } catch (const std::exception& e) {
    throw std::runtime_error(dir_ + ": image " + std::to_string(i) + " (id " + ids_[static_cast<size_t>(i)] +
                             "): found bytes that do not decode, expected a " + to_string(manifest_.encoding) +
                             " image (" + e.what() + ")");
  }
}

}  // namespace gf::data
