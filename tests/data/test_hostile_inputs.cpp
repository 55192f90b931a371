// Hostile inputs to data/'s readers (labels CSV, images, manifest.json, HDF5 shards) and to
// the embeddings and probe tasks readers: each case builds its bad file itself and asserts one clear line
// naming the file and what was wrong, no crash, a bounded peak memory, and that every file
// that existed before is byte-identical after, with nothing new (no `.tmp` shard) left behind.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <sys/resource.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "base/sha256.hpp"
#include "data/dataset.hpp"
#include "data/image_codec.hpp"
#include "data/labels_csv.hpp"
#include "data/pack.hpp"
#include "eval/embeddings_file.hpp"
#include "eval/tasks.hpp"
#include "tests/data/data_test_util.hpp"

namespace gf::data {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A case's peak resident memory stays far below what the hostile files declare (5-10 GB).
constexpr long kMaxRssKb = 2L * 1024 * 1024;
constexpr hsize_t kTwoTo40 = hsize_t{1} << 40;

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Every file's bytes, and every folder (its path ending in '/', as "").
std::map<std::string, std::string> snapshot(const std::string& dir) {
  std::map<std::string, std::string> entries;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    entries[e.path().string() + (e.is_directory() ? "/" : "")] = e.is_regular_file() ? read_bytes(e.path().string()) : "";
  return entries;
}

// ---------------------------------------------------------------- builders

std::string csv_with_header(const std::string& header, const std::string& rows = "P1,1\n") {
  return header + "\n" + rows;
}

std::string wide_header(size_t columns) {
  std::string header = "id";
  for (size_t c = 1; c < columns; ++c) header += ",c" + std::to_string(c);
  return header;
}

// A PNG signature and IHDR declaring width x height, then junk: enough for any header reader.
std::string png_declaring(uint32_t width, uint32_t height) {
  std::string bytes("\x89PNG\r\n\x1a\n", 8);
  bytes += std::string("\0\0\0\x0d", 4) + "IHDR";
  for (uint32_t v : {width, height}) {
    for (int shift = 24; shift >= 0; shift -= 8) bytes += static_cast<char>((v >> shift) & 0xFF);
  }
  bytes += std::string("\x08\x02\0\0\0", 5) + std::string(4, '\0') + std::string(64, 'x');
  return bytes;
}

// A real 16x16 JPEG whose SOF0 is patched to declare width x height.
std::string jpeg_declaring(uint16_t width, uint16_t height) {
  const std::vector<uint8_t> encoded = encode_jpeg(cv::Mat(16, 16, CV_8UC3, cv::Scalar(90, 30, 20)), 90);
  std::string bytes(encoded.begin(), encoded.end());
  const size_t sof = bytes.find("\xFF\xC0");
  bytes[sof + 5] = static_cast<char>(height >> 8);
  bytes[sof + 6] = static_cast<char>(height & 0xFF);
  bytes[sof + 7] = static_cast<char>(width >> 8);
  bytes[sof + 8] = static_cast<char>(width & 0xFF);
  return bytes;
}

// HDF5 files written through the C API, the way a forger (or h5py's create_dataset with only
// a shape) would: datasets declared with a shape and never written.
class H5File {
 public:
  explicit H5File(const std::string& path) : id_(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT)) {}
  ~H5File() { H5Fclose(id_); }
  hid_t id() const { return id_; }

  void declare(const std::string& name, hid_t type, const std::vector<hsize_t>& dims, const std::vector<hsize_t>& chunk = {},
               bool deflate = false) const {
    const hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
    const hid_t plist = H5Pcreate(H5P_DATASET_CREATE);
    if (!chunk.empty()) H5Pset_chunk(plist, static_cast<int>(chunk.size()), chunk.data());
    if (deflate) H5Pset_deflate(plist, 9);
    const hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    const hid_t dataset = H5Dcreate2(id_, name.c_str(), type, space, lcpl, plist, H5P_DEFAULT);
    EXPECT_GE(dataset, 0) << "declaring " << name;
    H5Dclose(dataset);
    H5Pclose(lcpl);
    H5Pclose(plist);
    H5Sclose(space);
  }

  void strings(const std::string& name, const std::vector<std::string>& values) const {
    const hid_t type = vlen_string();
    const hsize_t n = values.size();
    declare(name, type, {n});
    std::vector<const char*> pointers;
    for (const auto& v : values) pointers.push_back(v.c_str());
    const hid_t dataset = H5Dopen2(id_, name.c_str(), H5P_DEFAULT);
    H5Dwrite(dataset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, pointers.data());
    H5Dclose(dataset);
    H5Tclose(type);
  }

  void floats(const std::string& name, const std::vector<float>& values, const std::vector<hsize_t>& dims) const {
    declare(name, H5T_IEEE_F32LE, dims);
    const hid_t dataset = H5Dopen2(id_, name.c_str(), H5P_DEFAULT);
    H5Dwrite(dataset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data());
    H5Dclose(dataset);
  }

  void int64s(const std::string& name, const std::vector<int64_t>& values) const {
    declare(name, H5T_STD_I64LE, {values.size()});
    const hid_t dataset = H5Dopen2(id_, name.c_str(), H5P_DEFAULT);
    H5Dwrite(dataset, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data());
    H5Dclose(dataset);
  }

  // `images` as pack writes it: vlen uint8 [n], each element a few bytes.
  void images(size_t n) const {
    const hid_t type = H5Tvlen_create(H5T_NATIVE_UINT8);
    declare("images", type, {n});
    std::vector<uint8_t> bytes(8, 1);
    std::vector<hvl_t> vl(n, hvl_t{bytes.size(), bytes.data()});
    const hid_t dataset = H5Dopen2(id_, "images", H5P_DEFAULT);
    H5Dwrite(dataset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, vl.data());
    H5Dclose(dataset);
    H5Tclose(type);
  }

  static hid_t vlen_string() {
    const hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    H5Tset_cset(type, H5T_CSET_UTF8);
    return type;
  }

 private:
  hid_t id_;
};

std::vector<std::string> ids(size_t n) {
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) out.push_back("P" + std::to_string(i));
  return out;
}

// A dataset folder around one shard built by `forge`, with a manifest whose checksums are
// right (write_manifest): what is hostile is the shard's content.
std::function<void()> open_forged_shard(const std::string& dir, int64_t count, const std::function<void(const H5File&)>& forge,
                                        std::vector<LabelColumn> labels = {}) {
  const std::string shard = dir + "/shard-00000.h5";
  {
    H5File file(shard);
    forge(file);
  }
  Manifest m;
  m.count = count;
  m.resolution = 32;
  m.labels = std::move(labels);
  m.shards.push_back({"shard-00000.h5", count, 0, static_cast<int64_t>(fs::file_size(shard)), base::sha256_file(shard)});
  write_manifest(m, dir);
  return [dir] { Dataset::open(dir); };
}

// ---------------------------------------------------------------- packed datasets

// A real 6-image dataset (two shards, a split, int/yesno/category/float labels).
std::string packed_dataset(const std::string& dir) {
  const auto folder = test::write_image_folder(dir + "/in", 6);
  PackOptions o;
  o.images_dir = folder.images_dir;
  o.labels_csv = folder.labels_csv;
  o.id_column = "image_id";
  o.out_dir = dir + "/ds";
  o.resolution = 32;
  o.shard_size = 3;
  o.threads = 1;
  o.split_by = "patient_id";
  o.test_fraction = 0.34;
  o.show_progress = false;
  pack(o);
  return o.out_dir;
}

// Edits the dataset's manifest.json; `keep_checksum` false drops it (a manifest from an
// older pack, so the edit reaches the checks against the shards).
std::function<void()> open_edited(const std::string& dir, bool keep_checksum, const std::function<void(json&)>& edit) {
  const std::string ds = packed_dataset(dir);
  json j = json::parse(read_bytes(ds + "/manifest.json"));
  edit(j);
  if (!keep_checksum) j.erase("manifest_sha256");
  write_file(ds + "/manifest.json", j.dump(2));
  return [ds] { Dataset::open(ds); };
}

// A pack of a 4-image folder whose CSV is `csv` (ids img_000..), stopping at bad input.
std::function<void()> pack_with_csv(const std::string& dir, const std::string& csv) {
  const auto folder = test::write_image_folder(dir + "/in", 4);
  write_file(folder.labels_csv, csv);
  PackOptions o;
  o.images_dir = folder.images_dir;
  o.labels_csv = folder.labels_csv;
  o.id_column = "image_id";
  o.out_dir = dir + "/ds";
  o.resolution = 32;
  o.threads = 1;
  o.bad_input = BadInputPolicy::kStop;
  o.show_progress = false;
  return [o] { pack(o); };
}

std::function<void()> read_csv(const std::string& dir, const std::string& csv) {
  const std::string path = dir + "/labels.csv";
  write_file(path, csv);
  return [path] {
    std::vector<PackProblem> problems;
    read_label_table(path, "id", &problems);
  };
}

std::function<void()> decode_file(const std::string& dir, const std::string& name, const std::string& bytes) {
  const std::string path = dir + "/" + name;
  write_file(path, bytes);
  return [path] { read_image_file(path); };
}

// An embeddings file with 40 ids and what `forge` adds.
std::function<void()> read_forged_embeddings(const std::string& dir, const std::function<void(const H5File&)>& forge,
                                             bool with_ids = true) {
  const std::string path = dir + "/embeddings.h5";
  {
    H5File file(path);
    if (with_ids) file.strings("ids", ids(40));
    forge(file);
  }
  return [path] { eval::read_embeddings(path); };
}

// ---------------------------------------------------------------- the table

struct HostileCase {
  std::string name;
  // Builds the case's files in the folder it gets; returns the call that must refuse them.
  std::function<std::function<void()>(const std::string& dir)> make;
  std::vector<std::string> expected;  // substrings of the one-line error (a file name first)
  std::string output_dir;             // a folder the call may create (and leave empty)
};

std::vector<HostileCase> cases() {
  return {
      // Labels CSV: column count, row length.
      {"CsvMillionColumns", [](auto d) { return read_csv(d, csv_with_header(wide_header(1000001))); },
       {"labels.csv:1", "more than 4096 columns"}},
      {"Csv4097Columns", [](auto d) { return read_csv(d, csv_with_header(wide_header(4097))); },
       {"labels.csv:1", "more than 4096 columns"}},
      {"CsvRowWithTooManyFields", [](auto d) { return read_csv(d, "id,a\n" + wide_header(5000) + "\n"); },
       {"labels.csv:2", "more than 4096 columns"}},
      {"CsvRowOverOneMebibyte", [](auto d) { return read_csv(d, "id,a\nP1," + std::string(2 << 20, '7') + "\n"); },
       {"labels.csv:2", "longer than 1048576 bytes"}},
      {"CsvUnterminatedQuoteOverLimit", [](auto d) { return read_csv(d, "id,a\nP1,\"" + std::string(3 << 20, 'q')); },
       {"labels.csv:2", "longer than"}},
      {"CsvUnterminatedQuote", [](auto d) { return read_csv(d, "id,a\nP1,\"open\n"); },
       {"labels.csv:2", "unterminated quoted field"}},
      // Labels CSV: header names.
      {"CsvEmptyColumnName", [](auto d) { return read_csv(d, csv_with_header("id,,grade", "P1,1,2\n")); },
       {"labels.csv:1: column 2", "an empty name"}},
      {"CsvTrailingComma", [](auto d) { return read_csv(d, csv_with_header("id,grade,", "P1,1,\n")); },
       {"labels.csv:1: column 3", "an empty name"}},
      {"CsvDuplicateColumn", [](auto d) { return read_csv(d, csv_with_header("id,grade,grade", "P1,1,2\n")); },
       {"labels.csv:1: column 3", "'grade' again"}},
      {"CsvDuplicateIdColumn", [](auto d) { return read_csv(d, csv_with_header("id,id")); }, {"labels.csv:1: column 2", "'id' again"}},
      {"CsvSlashInColumnName", [](auto d) { return read_csv(d, csv_with_header("id,a/b")); }, {"labels.csv:1: column 2", "holding '/'"}},
      {"CsvQuotedSlashInColumnName", [](auto d) { return read_csv(d, csv_with_header("id,\"x/y\"")); }, {"labels.csv:1", "'x/y'"}},
      {"CsvDotColumnName", [](auto d) { return read_csv(d, csv_with_header("id,.")); }, {"labels.csv:1: column 2", "'.'"}},
      {"CsvDotDotColumnName", [](auto d) { return read_csv(d, csv_with_header("id,..")); }, {"labels.csv:1: column 2", "'..'"}},
      {"CsvControlCharacterInName", [](auto d) { return read_csv(d, csv_with_header("id,a\x01z")); },
       {"labels.csv:1: column 2", "control character"}},
      {"CsvWithoutIdColumn", [](auto d) { return read_csv(d, csv_with_header("name,grade")); }, {"labels.csv", "expected an id column"}},
      {"CsvEmptyFile", [](auto d) { return read_csv(d, ""); }, {"labels.csv", "empty file"}},
      // Labels CSV: ids naming folders.
      {"CsvIdWithParentFolders", [](auto d) { return read_csv(d, "id,a\n../../x/P1,1\n"); }, {"labels.csv:2", "'../../x/P1'", "without folders"}},
      {"CsvIdWithSubfolder", [](auto d) { return read_csv(d, "id,a\nP0,1\nsub/P1,1\n"); }, {"labels.csv:3", "'sub/P1'"}},
      {"CsvIdWithBackslash", [](auto d) { return read_csv(d, "id,a\nx\\P1,1\n"); }, {"labels.csv:2", "without folders"}},
      {"CsvIdDotDot", [](auto d) { return read_csv(d, "id,a\n..,1\n"); }, {"labels.csv:2", "'..'"}},
      {"CsvIdAbsolutePath", [](auto d) { return read_csv(d, "id,a\n/etc/P1,1\n"); }, {"labels.csv:2", "'/etc/P1'"}},
      // Labels CSV: integers a double cannot hold.
      {"CsvLabelTwoTo53PlusOne", [](auto d) { return read_csv(d, "id,a\nP1,9007199254740993\nP2,1\n"); },
       {"labels.csv:2: a: found 9007199254740993", "within +-2^53"}},
      {"CsvLabelMinusTwoTo53MinusOne", [](auto d) { return read_csv(d, "id,a\nP1,1\nP2,-9007199254740993\n"); },
       {"labels.csv:3: a", "-9007199254740993"}},
      {"CsvLabelBeyondInt64", [](auto d) { return read_csv(d, "id,a\nP1,1.5\nP2,123456789012345678901234\n"); },
       {"labels.csv:3: a", "within +-2^53"}},
      // Pack: the CSV is refused before the output folder (or any shard) exists.
      {"PackMillionColumns", [](auto d) { return pack_with_csv(d, csv_with_header(wide_header(1000001))); },
       {"labels.csv:1", "more than 4096 columns"}},
      {"PackEmptyColumnName", [](auto d) { return pack_with_csv(d, "image_id,,grade\nimg_000,1,2\n"); }, {"labels.csv:1", "empty name"}},
      {"PackDuplicateColumn", [](auto d) { return pack_with_csv(d, "image_id,g,g\nimg_000,1,2\n"); }, {"labels.csv:1", "'g' again"}},
      {"PackSlashColumn", [](auto d) { return pack_with_csv(d, "image_id,a/b\nimg_000,1\n"); }, {"labels.csv:1", "holding '/'"}},
      {"PackIdWithParentFolders", [](auto d) { return pack_with_csv(d, "image_id,a\n../../x/img_000,1\n"); },
       {"labels.csv:2", "'../../x/img_000'"}},
      {"PackLabelTwoTo53PlusOne", [](auto d) { return pack_with_csv(d, "image_id,a\nimg_000,9007199254740993\n"); },
       {"labels.csv:2", "9007199254740993"}},
      {"PackDecompressionBombPng",
       [](auto d) {
         auto call = pack_with_csv(d, "image_id,a\nimg_000,1\nimg_001,1\nimg_002,1\nimg_003,1\nimg_004,1\n");
         write_file(d + "/in/images/img_004.png", png_declaring(30000, 30000));
         return call;
       },
       {"img_004.png", "30000x30000", "178956970"},
       "ds/"},
      // Images: pixel counts from the header, before decoding.
      {"PngThirtyThousandSquare", [](auto d) { return decode_file(d, "bomb.png", png_declaring(30000, 30000)); },
       {"bomb.png", "PNG declaring 30000x30000 (900000000 pixels)", "at most 178956970"}},
      {"PngWideStrip", [](auto d) { return decode_file(d, "strip.png", png_declaring(200000000, 1)); }, {"strip.png", "200000000x1"}},
      {"PngMaximalDimensions", [](auto d) { return decode_file(d, "max.png", png_declaring(0xFFFFFFFFu, 0xFFFFFFFFu)); },
       {"max.png", "4294967295x4294967295", "decompression-bomb"}},
      {"PngJustOverLimit", [](auto d) { return decode_file(d, "over.png", png_declaring(178956971, 1)); }, {"over.png", "178956971 pixels"}},
      {"JpegThirtyThousandSquare", [](auto d) { return decode_file(d, "bomb.jpg", jpeg_declaring(30000, 30000)); },
       {"bomb.jpg", "JPEG declaring 30000x30000", "178956970"}},
      {"JpegLibjpegMaximum", [](auto d) { return decode_file(d, "max.jpg", jpeg_declaring(65500, 65500)); },
       {"max.jpg", "65500x65500"}},
      {"JpegBeyondLibjpegMaximum", [](auto d) { return decode_file(d, "over.jpg", jpeg_declaring(65535, 65535)); },
       {"over.jpg", "Maximum supported image dimension"}},
      {"PngWithoutIhdr", [](auto d) { return decode_file(d, "cut.png", std::string("\x89PNG\r\n\x1a\n\0\0", 10)); },
       {"cut.png", "without its IHDR"}},
      {"BmpNamedPng", [](auto d) { return decode_file(d, "bmp.png", "BM" + std::string(60, '\0')); }, {"bmp.png", "neither JPEG nor PNG"}},
      // manifest.json: its own checksum, then counts and schema against the shards.
      {"ManifestEditedCount", [](auto d) { return open_edited(d, true, [](json& j) { j["count"] = 7; }); },
       {"manifest.json.manifest_sha256", "edited or corrupted"}},
      {"ManifestSwappedCategories",
       [](auto d) {
         return open_edited(d, true, [](json& j) {
           for (auto& c : j["labels"])
             if (c["name"] == "site") c["categories"] = std::vector<std::string>{"C", "B", "A"};
         });
       },
       {"manifest.json.manifest_sha256", "found"}},
      // Numbers an integer field cannot hold (casting them was undefined; the fuzzer found it).
      {"ManifestShardBytesBeyondInt64NoChecksum",
       [](auto d) { return open_edited(d, false, [](json& j) { j["shards"][0]["bytes"] = 1.8469353e88; }); },
       {"manifest.json.shards[0].bytes: found 1.8469353e+88, expected an integer"}},
      {"ManifestFractionalSourceCountNoChecksum",
       [](auto d) { return open_edited(d, false, [](json& j) { j["sources"] = json::parse(R"({"images": 0.5})"); }); },
       {"manifest.json.sources.images: found 0.5, expected an integer"}},
      {"ManifestCountTwoTo40NoChecksum",
       [](auto d) {
         return open_edited(d, false, [](json& j) {
           j["count"] = int64_t{1} << 41;
           j["shards"][0]["count"] = int64_t{1} << 40;
           j["shards"][1]["count"] = int64_t{1} << 40;
           j["shards"][1]["first_index"] = int64_t{1} << 40;
           j["split"]["train"] = (int64_t{1} << 41) - int64_t(j["split"]["test"]);
         });
       },
       {"shard-00000.h5: images: found 3 elements, expected 1099511627776"}},
      {"ManifestSwappedCategoriesNoChecksum",
       [](auto d) {
         return open_edited(d, false, [](json& j) {
           for (auto& c : j["labels"])
             if (c["name"] == "site") c["categories"] = std::vector<std::string>{"C", "B", "A"};
         });
       },
       {"shard-00000.h5: labels/site: found type category [A, B, C], expected category [C, B, A]"}},
      {"ManifestRetypedColumnNoChecksum",
       [](auto d) {
         return open_edited(d, false, [](json& j) {
           for (auto& c : j["labels"])
             if (c["name"] == "grade") c["type"] = "float";
         });
       },
       {"labels/grade: found type int, expected float"}},
      {"ManifestSplitCountsNoChecksum",
       [](auto d) {
         return open_edited(d, false, [](json& j) {
           const int64_t train = j["split"]["train"], test = j["split"]["test"];
           j["split"]["train"] = test;
           j["split"]["test"] = train;
         });
       },
       {"manifest.json: split: found train", "expected the shards'"}},
      {"ManifestNegativeCount", [](auto d) { return open_edited(d, false, [](json& j) { j["count"] = -1; }); },
       {"manifest.json.count: found -1"}},
      {"ManifestShardCountOverflow",
       [](auto d) {
         return open_edited(d, false, [](json& j) {
           j["shards"][0]["count"] = INT64_MAX;
           j["shards"][1]["first_index"] = INT64_MAX;
         });
       },
       {"manifest.json.shards[1].count: found 3, expected 0..0"}},
      {"ManifestShardPathTraversal", [](auto d) { return open_edited(d, false, [](json& j) { j["shards"][0]["file"] = "../in/labels.csv"; }); },
       {"manifest.json.shards[0].file: found '../in/labels.csv'"}},
      {"ManifestResolutionZero", [](auto d) { return open_edited(d, false, [](json& j) { j["resolution"] = 0; }); },
       {"manifest.json.resolution: found 0"}},
      {"ManifestSlashLabelName",
       [](auto d) { return open_edited(d, false, [](json& j) { j["labels"][0]["name"] = "a/b"; }); },
       {"manifest.json.labels[0].name", "holding '/'"}},
      {"ManifestDuplicateLabelName",
       [](auto d) { return open_edited(d, false, [](json& j) { j["labels"][1]["name"] = j["labels"][0]["name"]; }); },
       {"manifest.json.labels[1].name", "again"}},
      {"ManifestSplitSumWrong",
       [](auto d) { return open_edited(d, false, [](json& j) { j["split"]["train"] = int64_t(j["split"]["train"]) + 1; }); },
       {"manifest.json.split: found train 3, test 4, expected counts >= 0 adding up to 6"}},
      {"InspectSwappedSplitCountsNoChecksum",
       [](auto d) {
         open_edited(d, false, [](json& j) {
           const int64_t train = j["split"]["train"], test = j["split"]["test"];
           j["split"]["train"] = test;
           j["split"]["test"] = train;
         });
         const std::string ds = d + "/ds";
         return std::function<void()>([ds] {
           std::ostringstream out;
           print_dataset_summary(ds, out);
         });
       },
       {"manifest.json: split: found train 4, test 2, expected the shards' train 2, test 4"}},
      // HDF5 shards: shapes against what the file stores.
      {"ShardImagesTwoTo40",
       [](auto d) {
         return open_forged_shard(d, 3, [](const H5File& f) {
           const hid_t type = H5Tvlen_create(H5T_NATIVE_UINT8);
           f.declare("images", type, {kTwoTo40}, {256});
           H5Tclose(type);
           f.strings("ids", ids(3));
         });
       },
       {"shard-00000.h5: images: found shape [1099511627776]", "stored bytes"}},
      {"ShardIdsTwoTo40",
       [](auto d) {
         return open_forged_shard(d, 3, [](const H5File& f) {
           f.images(3);
           const hid_t type = H5File::vlen_string();
           f.declare("ids", type, {kTwoTo40}, {1024});
           H5Tclose(type);
         });
       },
       {"shard-00000.h5: ids: found shape [1099511627776]"}},
      {"ShardLabelTwoTo40",
       [](auto d) {
         return open_forged_shard(
             d, 3,
             [](const H5File& f) {
               f.images(3);
               f.strings("ids", ids(3));
               f.declare("labels/grade", H5T_STD_I64LE, {kTwoTo40}, {4096}, true);
             },
             {LabelColumn{"grade", LabelType::kInteger, {}}});
       },
       {"shard-00000.h5: labels/grade: found shape [1099511627776]", "1032x"}},
      {"ShardLabelRankTwo",
       [](auto d) {
         return open_forged_shard(
             d, 3,
             [](const H5File& f) {
               f.images(3);
               f.strings("ids", ids(3));
               f.declare("labels/grade", H5T_STD_I64LE, {3, 2});
             },
             {LabelColumn{"grade", LabelType::kInteger, {}}});
       },
       {"shard-00000.h5: labels/grade: found shape [3, 2] (rank 2), expected rank 1"}},
      {"ShardRawImagesHugeFrames",
       [](auto d) {
         return open_forged_shard(d, 3, [](const H5File& f) {
           f.declare("images", H5T_STD_U8LE, {3, 1 << 20, 1 << 20, 3}, {1, 1024, 1024, 3});
           f.strings("ids", ids(3));
         });
       },
       {"shard-00000.h5: images: found shape [3, 1048576, 1048576, 3]"}},
      {"ShardNotHdf5",
       [](auto d) {
         write_file(d + "/shard-00000.h5", "not an HDF5 file");
         Manifest m;
         m.count = 1;
         m.resolution = 32;
         m.shards.push_back({"shard-00000.h5", 1, 0, 16, base::sha256_file(d + "/shard-00000.h5")});
         write_manifest(m, d);
         return std::function<void()>([d] { Dataset::open(d); });
       },
       {"shard-00000.h5: opening as HDF5"}},
      // The embeddings file `probe` reads.
      {"EmbeddingsFortyByTwoTo25",
       [](auto d) { return read_forged_embeddings(d, [](const H5File& f) { f.declare("embeddings", H5T_IEEE_F32LE, {40, 1 << 25}); }); },
       {"embeddings.h5: embeddings: found shape [40, 33554432] declaring 5368709120 bytes in 0 stored bytes"}},
      {"EmbeddingsCompressedUnwritten",
       [](auto d) {
         return read_forged_embeddings(d, [](const H5File& f) { f.declare("embeddings", H5T_IEEE_F32LE, {40, 1 << 25}, {1, 1 << 20}, true); });
       },
       {"embeddings.h5: embeddings: found shape [40, 33554432]", "1032x"}},
      {"EmbeddingsTwoTo40Rows",
       [](auto d) {
         return read_forged_embeddings(d, [](const H5File& f) { f.declare("embeddings", H5T_IEEE_F32LE, {kTwoTo40, 384}, {16, 384}); });
       },
       {"embeddings.h5: embeddings: found shape [1099511627776, 384]"}},
      {"EmbeddingsShapeOverflow",
       [](auto d) {
         return read_forged_embeddings(
             d, [](const H5File& f) { f.declare("embeddings", H5T_IEEE_F32LE, {hsize_t{1} << 40, hsize_t{1} << 30}, {1, 1 << 20}); });
       },
       {"embeddings.h5: embeddings: found shape [1099511627776, 1073741824] whose byte size overflows"}},
      {"EmbeddingsIdsTwoTo40",
       [](auto d) {
         return read_forged_embeddings(
             d,
             [](const H5File& f) {
               const hid_t type = H5File::vlen_string();
               f.declare("ids", type, {kTwoTo40}, {1024});
               H5Tclose(type);
             },
             false);
       },
       {"embeddings.h5: ids: found shape [1099511627776]"}},
      {"EmbeddingsRankThree",
       [](auto d) { return read_forged_embeddings(d, [](const H5File& f) { f.floats("embeddings", std::vector<float>(40 * 4), {40, 2, 2}); }); },
       {"embeddings.h5: embeddings: found shape [40, 2, 2] (rank 3), expected rank 2"}},
      {"EmbeddingsLabelTwoTo40",
       [](auto d) {
         return read_forged_embeddings(d, [](const H5File& f) {
           f.floats("embeddings", std::vector<float>(40 * 4), {40, 4});
           f.declare("labels/grade", H5T_STD_I64LE, {kTwoTo40}, {4096});
         });
       },
       {"embeddings.h5: labels/grade: found shape [1099511627776]"}},
      // Probe tasks file: a label that sent std::regex (one recursion per character) past the stack.
      {"TasksLabel300000Bytes",
       [](auto d) {
         const std::string path = d + "/tasks.json";
         write_file(path, json{{"tasks", {{{"label", std::string(300000, 'a') + " > 1"}}}}}.dump());
         return std::function<void()>([path] { eval::load_tasks(path); });
       },
       {"tasks.json: tasks[0].label: found a label of 300004 bytes, expected at most 1024"}},
  };
}

void PrintTo(const HostileCase& c, std::ostream* out) { *out << c.name; }

class Hostile : public testing::TestWithParam<HostileCase> {};

TEST_P(Hostile, RefusedWithOneLineAndNothingChanged) {
  const HostileCase& c = GetParam();
  const std::string dir = test::scratch_dir("hostile_" + c.name);
  const std::function<void()> call = c.make(dir);
  const auto before = snapshot(dir);
  std::string message;
  try {
    testing::internal::CaptureStderr();
    call();
    testing::internal::GetCapturedStderr();
    ADD_FAILURE() << c.name << ": expected an error, the call returned";
  } catch (const std::exception& e) {
    const std::string stderr_text = testing::internal::GetCapturedStderr();
    message = e.what();
    EXPECT_EQ(stderr_text.find("HDF5-DIAG"), std::string::npos) << stderr_text;
  }
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  for (const auto& phrase : c.expected) EXPECT_NE(message.find(phrase), std::string::npos) << "'" << phrase << "' not in: " << message;
  const auto after = snapshot(dir);
  for (const auto& [path, bytes] : before) {
    ASSERT_TRUE(after.count(path)) << path << " was removed";
    EXPECT_TRUE(after.at(path) == bytes) << path << " was changed";
  }
  for (const auto& [path, bytes] : after) {
    const bool allowed = !c.output_dir.empty() && path == dir + "/" + c.output_dir;  // the output folder, empty
    EXPECT_TRUE(before.count(path) || allowed) << path << " was left behind";
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  EXPECT_LT(usage.ru_maxrss, kMaxRssKb) << "peak resident memory in KB";
}

INSTANTIATE_TEST_SUITE_P(Cases, Hostile, testing::ValuesIn(cases()),
                         [](const testing::TestParamInfo<HostileCase>& info) { return info.param.name; });

// The limits are limits, not refusals of ordinary input.
TEST(HostileLimits, OrdinaryInputAtTheLimitsIsAccepted) {
  const std::string dir = test::scratch_dir("hostile_limits");
  write_file(dir + "/labels.csv", csv_with_header(wide_header(4096), "P1" + std::string(4095, ',') + "\nP2.png" + std::string(4095, ',') + "\n"));
  std::vector<PackProblem> problems;
  EXPECT_EQ(read_label_table(dir + "/labels.csv", "id", &problems).header.size(), 4096u);
  write_file(dir + "/exact.csv", "id,a\nP1,9007199254740992\nP2,-9007199254740992\n");
  const LabelTable table = read_label_table(dir + "/exact.csv", "id", &problems);
  EXPECT_EQ(table.values[0][0], 9007199254740992.0);
  EXPECT_EQ(table.ids[1], "P2");
}

// A manifest from a pack before the checksum opens, with one warning line.
TEST(HostileLimits, ManifestWithoutChecksumOpensWithAWarning) {
  const std::string dir = test::scratch_dir("hostile_old_manifest");
  const std::string ds = packed_dataset(dir);
  json j = json::parse(read_bytes(ds + "/manifest.json"));
  ASSERT_TRUE(j.contains("manifest_sha256"));
  j.erase("manifest_sha256");
  write_file(ds + "/manifest.json", j.dump(2));
  testing::internal::CaptureStderr();
  const auto opened = Dataset::open(ds);
  const std::string warning = testing::internal::GetCapturedStderr();
  EXPECT_EQ(opened->size(), 6);
  EXPECT_NE(warning.find("manifest.json: found no manifest_sha256"), std::string::npos) << warning;
  std::ostringstream summary;
  print_dataset_summary(ds, summary);
  EXPECT_NE(summary.str().find("images: 6 (32x32, jpeg)"), std::string::npos) << summary.str();
}

// kSkip: a decompression bomb among the inputs is listed and skipped, the rest packed.
TEST(HostileLimits, PackSkipsADecompressionBomb) {
  const std::string dir = test::scratch_dir("hostile_skip_bomb");
  const auto folder = test::write_image_folder(dir + "/in", 4);
  write_file(folder.images_dir + "/bomb.png", png_declaring(30000, 30000));
  PackOptions o;
  o.images_dir = folder.images_dir;
  o.out_dir = dir + "/ds";
  o.resolution = 32;
  o.threads = 1;
  o.show_progress = false;
  testing::internal::CaptureStderr();
  const PackResult r = pack(o);
  testing::internal::GetCapturedStderr();
  EXPECT_EQ(r.packed, 4);
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_EQ(r.problems[0].kind, "too_large");
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  EXPECT_LT(usage.ru_maxrss, kMaxRssKb);
}

}  // namespace
}  // namespace gf::data
