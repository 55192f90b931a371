// `greenfound synth`: a folder of synthetic colour-fundus JPEGs + labels.csv (data/synth.hpp),
// the built-in data of the demo and the tests; `--preview` adds a labelled contact sheet.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>

#include "base/progress.hpp"
#include "data/synth.hpp"
#include "launcher/commands.hpp"
#include "launcher/shared_options.hpp"

namespace gf::launcher {
namespace {

struct SynthFlags {
  data::SynthOptions options;
  std::string out_dir;
  std::string size;
  bool preview = false;
  bool quiet = false;
};

cv::Size parse_size(const std::string& text) {
  int w = 0, h = 0;
  char tail = 0;
  if (std::sscanf(text.c_str(), "%dx%d%c", &w, &h, &tail) != 2 || w <= 0 || h <= 0)
    throw std::runtime_error("synth: --size: found \"" + text + "\", expected WIDTHxHEIGHT such as 600x500");
  return {w, h};
}

void run_synth(SynthFlags flags) {
  data::SynthOptions& o = flags.options;
  if (!flags.size.empty()) o.frame_size = parse_size(flags.size);
  base::Progress progress({"synth", "images", flags.quiet ? base::ProgressStyle::kSilent : base::ProgressStyle::kAuto},
                          o.count);
  const data::SynthResult r = data::write_synth_dataset(o, flags.out_dir, &progress);
  progress.finish();
  char rate[64];
  std::snprintf(rate, sizeof rate, "%.1f s (%.1f images/s)", r.seconds, static_cast<double>(r.labels.size()) / r.seconds);
  std::cout << "wrote " << r.labels.size() << " images and labels.csv to " << flags.out_dir << " in " << rate << "\n";
  if (flags.preview) {
    const std::string png = (std::filesystem::path(flags.out_dir) / "preview.png").string();
    data::write_synth_preview(o, png);
    std::cout << "contact sheet: " << png << "\n";
  }
}

}  // namespace

void setup_synth(CLI::App& sub) {
  auto flags = std::make_shared<SynthFlags>();
  data::SynthOptions& o = flags->options;
  sub.add_option("--out", flags->out_dir, "Folder to write <image_id>.jpg files and labels.csv into")->required();
  sub.add_option("--n", o.count, "Number of images (two eyes per patient)")->required()->check(CLI::PositiveNumber);
  add_seed_option(sub, o.seed, "the images and labels (byte-identical files, whatever --threads)");
  sub.add_option("--sites", o.sites, "Number of sites A, B, ... (own colour cast, exposure, camera frame)")
      ->capture_default_str()
      ->check(CLI::Range(1, 26));
  sub.add_option("--first-site", o.first_site,
                 "Index of the first site (0 = A, 2 = C): a set from sites another set does not have")
      ->capture_default_str()
      ->check(CLI::Range(0, 25));
  sub.add_option("--size", flags->size, "Camera frame WIDTHxHEIGHT for every site (default: each site's own)");
  add_threads_option(sub, o.threads);
  sub.add_option("--jpeg-quality", o.jpeg_quality, "JPEG quality")->capture_default_str()->check(CLI::Range(1, 100));
  sub.add_flag("--preview", flags->preview, "Also save a 4x4 labelled contact sheet to <out>/preview.png");
  sub.add_flag("--quiet", flags->quiet, "No progress bar or progress lines");
  sub.callback([flags] { run_synth(*flags); });
}

}  // namespace gf::launcher
