// `greenfound pack`: an image folder (+ labels CSV) -> a packed HDF5 dataset (data/pack.hpp).
#include <iostream>
#include <memory>
#include <string>

#include "base/output_paths.hpp"
#include "data/pack.hpp"
#include "launcher/commands.hpp"
#include "launcher/shared_options.hpp"

namespace gf::launcher {
namespace {

struct PackFlags {
  data::PackOptions options;
  std::string encoding = "jpeg";
  std::string preprocess = "fundus";
  bool strict = false;
  bool quiet = false;
};

const FieldFlags kPackFlags = {{"images_dir", "--images"},     {"labels_csv", "--labels"},
                                {"resolution", "--resolution"},   {"shard_size", "--shard-size"},
                                {"test_fraction", "--test-fraction"}, {"jpeg_quality", "--jpeg-quality"},
                                {"bad_input", "--strict"},        {"id_column", "--id-column"},
                                {"split_by", "--split-by"},     {"out_dir", "--out"}};

void run_pack(PackFlags flags) {
  data::PackOptions& o = flags.options;
  // --overwrite replaces the --out folder whole: it may not hold an input.
  base::refuse_overwriting_input("pack", {"--out", o.out_dir}, base::OutputKind::kFolder,
                                 {{{"--images", o.images_dir}, base::Overlap::kOutHolding},
                                  {{"--labels", o.labels_csv}, base::Overlap::kOutHolding}});
  o.encoding = data::parse_encoding(flags.encoding);
  o.preprocessing = flags.preprocess == "none" ? data::PackPreprocessing::kNone : data::PackPreprocessing::kFundusCrop;
  o.bad_input = flags.strict ? data::BadInputPolicy::kStop : data::BadInputPolicy::kSkip;
  o.show_progress = !flags.quiet;
  const data::PackResult r = data::pack(o);
  std::cout << "packed " << r.packed << " of " << r.inputs << " images into " << r.manifest.shards.size() << " shard(s) at "
            << o.out_dir << " ("
            << (o.preprocessing == data::PackPreprocessing::kNone ? std::string("as read")
                                                                   : std::to_string(r.manifest.resolution) + " px")
            << ", " << data::to_string(r.manifest.encoding) << ")\n";
  if (!r.manifest.split.by.empty()) {
    std::cout << "split by " << r.manifest.split.by << ": train " << r.manifest.split.train_count << ", test "
              << r.manifest.split.test_count << "\n";
  }
  if (r.resumed_shards > 0) std::cout << "kept " << r.resumed_shards << " finished shard(s) from an earlier run\n";
  if (r.fallback_resized > 0) std::cout << r.fallback_resized << " image(s) had no detectable border: plain resize\n";
  if (!r.problems.empty()) {
    std::cout << r.problems.size() << " problem(s) with the input, listed in " << o.out_dir << "/pack-report.json\n";
  }
  if (r.images_per_second > 0) std::cout << "pack throughput: " << r.images_per_second << " images/s\n";
}

}  // namespace

void setup_pack(CLI::App& sub) {
  auto flags = std::make_shared<PackFlags>();
  data::PackOptions& o = flags->options;
  sub.add_option("--images", o.images_dir, "Folder of .jpg/.jpeg/.png images (searched recursively)")->required();
  sub.add_option("--labels", o.labels_csv, "Labels CSV: one row per image, keyed by --id-column");
  sub.add_option("--id-column", o.id_column, "CSV column holding the image id (file name without extension)")
      ->capture_default_str();
  sub.add_option("--out", o.out_dir, "Dataset folder to write")->required();
  sub.add_option("--resolution", o.resolution,
                 "Packed square size in pixels (published: 1024; 448 is a smaller, not equivalent, CPU-sized choice)")
      ->capture_default_str()
      ->check(CLI::Range(16, 8192));
  sub.add_option("--preprocess", flags->preprocess,
                 "fundus: the published border crop, pad and resize (training sets); none: each image as read, for an "
                 "evaluation set that `embed` resizes straight to its size as the published evaluation did")
      ->capture_default_str()
      ->check(CLI::IsMember({"fundus", "none"}));
  sub.add_option("--encoding", flags->encoding, "jpeg (quality 90, 4:4:4), png or raw")
      ->capture_default_str()
      ->check(CLI::IsMember({"jpeg", "png", "raw"}));
  sub.add_option("--jpeg-quality", o.jpeg_quality, "JPEG quality of the shards")->capture_default_str()->check(CLI::Range(1, 100));
  sub.add_option("--shard-size", o.shard_size, "Images per shard")->capture_default_str()->check(CLI::PositiveNumber);
  sub.add_option("--split-by", o.split_by, "CSV column grouping images (patient id) for a patient-level train/test split");
  sub.add_option("--test-fraction", o.test_fraction, "Fraction of the groups put in the test split")->capture_default_str();
  add_seed_option(sub, o.seed, "the train/test split");
  sub.add_option("--source", o.source, "Source name recorded per image (default: first folder level under --images)");
  add_threads_option(sub, o.threads);
  sub.add_flag("--overwrite", o.overwrite,
               "Replace what --out holds (a dataset of other inputs, other files): the new dataset is built beside it "
               "and swapped in only when complete");
  sub.add_flag("--strict", flags->strict, "Stop at the first bad input instead of skipping it with a warning");
  sub.add_flag("--quiet", flags->quiet, "No progress bar or progress lines");
  sub.callback([flags] { run_with_flag_names(kPackFlags, FieldSource::kFlagsOnly, [&] { run_pack(*flags); }); });
}

}  // namespace gf::launcher
