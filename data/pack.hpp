#pragma once
// `greenfound pack`: an image folder (+ labels CSV) -> a packed dataset folder.
//
// Images: every .jpg/.jpeg/.png under images_dir (recursive, sorted by relative path), 8-bit
// RGB or grey; id = file name without extension. Each goes through the published
// preprocessing (data/preprocess.hpp; or none, for an evaluation set) on a thread pool and
// is written, in order, by one thread into shards of shard_size images.
// Labels: every CSV column but the id column becomes labels/<column>, typed (integer
// classes, yes/no -> 1/0, text categories -> 0..K-1 recorded in the manifest, other numbers
// -> float; missing -> -1 / NaN). split_by: patient-level split, ceil(test_fraction x
// patients) patients to test, chosen by a seeded shuffle; a row with no patient is its own.
// Bad input (listed in <out>/pack-report.json): unreadable, truncated, empty, 16-bit or
// over-179-Mpx images (data/image_codec.hpp), a duplicate id, an image with no CSV row, a CSV row with no image. kSkip drops
// the bad images with a warning; kStop throws at the first problem. A CSV without the id
// column is always an error.
// Atomicity and resume: shards are written under a temporary name, fsynced and renamed;
// pack-state.json records finished shards; manifest.json comes last. A re-run with the same
// inputs and options resumes after the last finished shard (or does nothing when complete).
// Nothing finished is replaced unasked: an out_dir holding anything else (a dataset or an
// unfinished pack of other inputs or options, files pack did not write) is refused unless
// `overwrite`, which packs into a sibling staging folder (".<name>.pack-new", where an
// interrupted overwrite resumes) and exchanges it with out_dir only once complete.
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.hpp"

namespace gf::data {

enum class BadInputPolicy { kSkip, kStop };

enum class PackPreprocessing {
  kFundusCrop,  // the published border crop, pad to square, Lanczos resize to `resolution`
  // The image as read (RGB, its own size): what the published evaluation embedded, a raw
  // image resized straight to 392x392 by `embed` (eval/embed.hpp). jpeg or png only.
  kNone,
};

struct PackOptions {
  std::string images_dir;
  std::string labels_csv;         // "" = no labels
  std::string id_column = "id";
  std::string out_dir;
  // The published 1024. A smaller size is not equivalent for training at 392: the crop
  // branches (RandomResizedCrop of 70-100% of the area, Resize(509) + CenterCrop(392)) then
  // upsample instead of downsampling, and JPEG's 8x8 blocks are shrunk less. 448 saves ~5x
  // storage and decode time (CPU-sized runs).
  int resolution = 1024;
  PackPreprocessing preprocessing = PackPreprocessing::kFundusCrop;
  Encoding encoding = Encoding::kJpeg;
  int jpeg_quality = 90;          // published: quality 90, 4:4:4 (no chroma subsampling)
  int64_t shard_size = 4096;
  std::string split_by;           // "" = no split
  double test_fraction = 0.2;
  uint64_t seed = 0;
  std::string source;             // "" = first folder level under images_dir (or its name)
  int threads = 0;                // 0 = automatic (base::resolve_threads)
  BadInputPolicy bad_input = BadInputPolicy::kSkip;
  bool overwrite = false;         // replace what out_dir holds (see above)
  bool show_progress = true;
};

struct PackProblem {
  std::string kind;    // "unreadable_image" | "truncated_image" | "empty_file" | "not_8bit" | "too_large" |
                       // "duplicate_id" | "image_without_row" | "row_without_image" | "malformed_row"
  std::string path;    // image file or "labels.csv:<line>"
  std::string detail;  // one sentence
};

struct PackResult {
  Manifest manifest;
  std::vector<PackProblem> problems;
  int64_t inputs = 0;              // image files found
  int64_t packed = 0;              // images in the dataset
  int64_t fallback_resized = 0;    // images where the border crop failed (plain resize)
  int64_t resumed_shards = 0;      // shards kept from an interrupted run
  double seconds = 0;              // wall time of this run
  double images_per_second = 0;    // images processed by this run / seconds
};

PackResult pack(const PackOptions& options);

}  // namespace gf::data
