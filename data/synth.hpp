#pragma once
// Synthetic colour-fundus photographs with labelled findings: the built-in data of the demo
// and of the tests. Each image is drawn from its own RNG seeded by (seed, index) and each
// patient's latent disease from (seed, patient), so the output is byte-identical for a seed
// whatever the thread count.
#include <opencv2/core.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace gf::base {
class Progress;  // base/progress.hpp
}

namespace gf::data {

struct SynthOptions {
  int count = 200;
  std::uint64_t seed = 0;
  int sites = 3;                // sites "A", "B", ... (1 to 26), each its own colour cast, exposure, frame
  int first_site = 0;           // sites start at this letter (0 = "A"): a set from other sites than another's
  cv::Size frame_size{0, 0};    // every site's camera frame; {0, 0}: each site's own raw-camera size
  int threads = 0;              // 0 = automatic (base::resolve_threads)
  int jpeg_quality = 92;
};

// One row of labels.csv.
struct SynthLabels {
  std::string image_id;    // file name without extension: "<patient_id>_<eye>"
  std::string patient_id;  // "P00012": images 2p and 2p+1 are the left and right eye of patient p
  std::string eye;         // "L" or "R"
  std::string site;        // "A", "B", ...
  int dr_grade = 0;        // 0-4: microaneurysms, haemorrhages, exudates grow with the grade
  int macular_edema = 0;   // exudates clustered around the fovea
  int amd = 0;             // drusen around the macula
  int glaucoma = 0;        // cdr > kGlaucomaCdr
  double cdr = 0.0;        // vertical cup-to-disc ratio
  std::string quality;     // "Adequate" or "Inadequate" (blur and/or exposure problems)
  std::string diabetes;    // "yes" or "no"
};

inline constexpr double kGlaucomaCdr = 0.6;
inline constexpr const char* kSynthLabelColumns[] = {"image_id", "patient_id", "eye",      "site",
                                                    "dr_grade", "macular_edema", "amd",    "glaucoma",
                                                    "cdr",      "quality",       "diabetes"};

struct SynthSample {
  cv::Mat image;  // 8-bit BGR, the site's frame size
  SynthLabels labels;
};

// Image `index` of the set described by `options` (pure function of seed, index and sites).
SynthSample synth_sample(const SynthOptions& options, int index);

struct SynthResult {
  std::vector<SynthLabels> labels;  // in index order, as written to labels.csv
  double seconds = 0.0;             // wall time of drawing, encoding and writing
};

// Writes <out_dir>/<image_id>.jpg for every index and <out_dir>/labels.csv, creating out_dir.
// Images are written under temporary names, flushed together (syncfs) and renamed;
// labels.csv comes last (temporary name, fsync, rename), so its presence marks a complete set. Workers advance
// `progress` (base/progress.hpp) once per image when it is given.
SynthResult write_synth_dataset(const SynthOptions& options, const std::string& out_dir,
                                base::Progress* progress = nullptr);

// A contact sheet of the first `columns` x `rows` samples with their labels printed under
// each tile, written atomically as a PNG.
void write_synth_preview(const SynthOptions& options, const std::string& png_path, int columns = 4, int rows = 4);

}  // namespace gf::data
