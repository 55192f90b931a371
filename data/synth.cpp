// Labels first, pixels second: each patient's latent disease comes from its own RNG stream,
// each eye's labels and capture from the image's streams, and the painter (synth_draw)
// turns them into pixels. Streams are keyed by (seed, purpose, index), so any image can be
// drawn alone, in any order, on any thread.
#include "data/synth.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "base/atomic_file.hpp"
#include "base/parallel_for.hpp"
#include "base/progress.hpp"
#include "data/synth_draw.hpp"

namespace gf::data {
namespace {

constexpr int kMaxSites = 26;

struct Site {
  cv::Size frame;
  float field_fraction;
  cv::Vec3f gain;  // B, G, R
  float exposure;
  float noise_sigma;
  float extra_inadequate;  // added to the probability of an inadequate image
};

// Raw-camera frames of common fundus cameras' aspect ratios (6:5, 4:3, 3:2, 9:8, 5:4).
const std::array<Site, 6> kSites{{
    {{600, 500}, 0.94f, {1.0f, 1.0f, 1.0f}, 1.0f, 2.5f, 0.0f},
    {{640, 480}, 1.04f, {1.18f, 1.08f, 0.92f}, 0.9f, 3.0f, 0.06f},
    {{720, 480}, 0.95f, {0.8f, 0.9f, 1.04f}, 1.06f, 2.0f, 0.0f},
    {{576, 512}, 0.92f, {1.02f, 1.1f, 0.95f}, 0.95f, 3.5f, 0.04f},
    {{768, 512}, 0.98f, {0.9f, 1.0f, 1.14f}, 0.84f, 2.5f, 0.02f},
    {{640, 512}, 0.9f, {1.16f, 0.95f, 1.0f}, 1.05f, 3.0f, 0.03f},
}};

enum class Stream : std::uint64_t { kPatient = 1, kEye = 2, kCapture = 3, kPixels = 4, kSite = 5 };

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

cv::RNG stream(std::uint64_t seed, Stream purpose, std::uint64_t index) {
  const std::uint64_t state = splitmix64(splitmix64(splitmix64(seed) ^ static_cast<std::uint64_t>(purpose)) ^ index);
  return cv::RNG(state == 0 ? 1 : state);
}

float uniform(cv::RNG& rng, float lo, float hi) { return rng.uniform(lo, hi); }
bool chance(cv::RNG& rng, float p) { return rng.uniform(0.0f, 1.0f) < p; }

// Sites beyond the table draw their cast and exposure from a fixed stream (seed-independent,
// so site "G" looks the same in every data set).
Site site_at(int k) {
  if (k < static_cast<int>(kSites.size())) return kSites[k];
  cv::RNG rng = stream(0, Stream::kSite, static_cast<std::uint64_t>(k));
  return {kSites[k % kSites.size()].frame,
          uniform(rng, 0.9f, 1.04f),
          {uniform(rng, 0.8f, 1.25f), uniform(rng, 0.85f, 1.2f), uniform(rng, 0.85f, 1.15f)},
          uniform(rng, 0.85f, 1.15f),
          uniform(rng, 2.0f, 4.0f),
          uniform(rng, 0.0f, 0.06f)};
}

struct Patient {
  int site = 0;
  float age = 60;
  bool diabetes = false;
  int severity = 0;  // DR grade both eyes scatter around
  float edema_propensity = 0;
  bool amd = false;
  float cdr = 0.4f;
  float pigment = 0.5f, tessellation = 0, tortuosity = 1;
};

Patient draw_patient(const SynthOptions& options, int patient) {
  cv::RNG rng = stream(options.seed, Stream::kPatient, static_cast<std::uint64_t>(patient));
  Patient p;
  p.site = options.first_site + rng.uniform(0, options.sites);
  p.age = uniform(rng, 35.0f, 85.0f);
  p.diabetes = chance(rng, 0.55f);
  constexpr std::array<float, 5> kSeverityCdf{0.2f, 0.4f, 0.65f, 0.85f, 1.0f};
  const float s = uniform(rng, 0.0f, 1.0f);
  p.severity = p.diabetes ? static_cast<int>(std::upper_bound(kSeverityCdf.begin(), kSeverityCdf.end() - 1, s) -
                                             kSeverityCdf.begin())
                          : 0;
  p.edema_propensity = uniform(rng, 0.0f, 1.0f);
  p.amd = chance(rng, 0.06f + 0.5f * (p.age - 35.0f) / 50.0f);
  p.cdr = uniform(rng, 0.2f, 0.85f);
  p.pigment = uniform(rng, 0.0f, 1.0f);
  p.tessellation = std::max(0.0f, uniform(rng, -1.0f, 1.0f));
  p.tortuosity = uniform(rng, 0.7f, 1.4f);
  return p;
}

std::string site_name(int k) { return std::string(1, static_cast<char>('A' + k)); }

SynthLabels draw_labels(const SynthOptions& options, int index, const Patient& p) {
  cv::RNG rng = stream(options.seed, Stream::kEye, static_cast<std::uint64_t>(index));
  SynthLabels l;
  char patient_id[16];
  std::snprintf(patient_id, sizeof patient_id, "P%05d", index / 2);
  l.patient_id = patient_id;
  l.eye = index % 2 == 0 ? "L" : "R";
  l.image_id = l.patient_id + "_" + l.eye;
  l.site = site_name(p.site);
  l.diabetes = p.diabetes ? "yes" : "no";
  if (p.diabetes) {  // the fellow eye is usually within one grade
    const float u = uniform(rng, 0.0f, 1.0f);
    l.dr_grade = std::clamp(p.severity + (u < 0.2f ? -1 : u > 0.85f ? 1 : 0), 0, 4);
  }
  constexpr std::array<float, 5> kEdemaRate{0.0f, 0.2f, 0.45f, 0.65f, 0.75f};
  l.macular_edema = 0.6f * p.edema_propensity + 0.4f * uniform(rng, 0.0f, 1.0f) < kEdemaRate[l.dr_grade] ? 1 : 0;
  l.amd = chance(rng, p.amd ? 0.85f : 0.03f) ? 1 : 0;
  l.cdr = std::round(std::clamp(p.cdr + static_cast<float>(rng.gaussian(0.035)), 0.1f, 0.9f) * 100.0) / 100.0;
  l.glaucoma = l.cdr > kGlaucomaCdr ? 1 : 0;
  const float inadequate = 0.13f + site_at(p.site).extra_inadequate + (p.age > 72.0f ? 0.08f : 0.0f);
  l.quality = chance(rng, inadequate) ? "Inadequate" : "Adequate";
  return l;
}

// Camera of the site, plus this capture's defects: an inadequate image is defocused,
// under- or over-exposed, hazy or shadowed, so that a grader would reject it.
synth_draw::Capture draw_capture(const SynthOptions& options, int index, const Site& site, bool inadequate) {
  cv::RNG rng = stream(options.seed, Stream::kCapture, static_cast<std::uint64_t>(index));
  synth_draw::Capture c;
  c.frame = options.frame_size.area() > 0 ? options.frame_size : site.frame;
  c.field_fraction = site.field_fraction;
  c.gain = site.gain;
  c.exposure = site.exposure * uniform(rng, 0.9f, 1.1f);
  c.noise_sigma = site.noise_sigma;
  c.blur_sigma = uniform(rng, 0.6f, 1.0f);
  c.haze = uniform(rng, 0.0f, 6.0f);
  if (!inadequate) return c;
  switch (rng.uniform(0, 5)) {
    case 0: c.blur_sigma = uniform(rng, 2.8f, 5.0f); break;
    case 1: c.exposure *= uniform(rng, 0.28f, 0.42f); c.noise_sigma *= 1.8f; break;
    case 2: c.exposure *= uniform(rng, 1.45f, 1.8f); c.haze = uniform(rng, 45.0f, 80.0f); break;
    case 3: c.shadow = uniform(rng, 0.75f, 0.95f); c.exposure *= uniform(rng, 0.5f, 0.7f); c.blur_sigma *= 2.0f; break;
    default: c.blur_sigma = uniform(rng, 2.2f, 3.5f); c.haze = uniform(rng, 30.0f, 60.0f); break;
  }
  return c;
}

void validate(const SynthOptions& o) {
  auto fail = [](const std::string& what) { throw std::runtime_error("synth: " + what); };
  if (o.count < 1) fail("count: found " + std::to_string(o.count) + ", expected at least 1");
  if (o.sites < 1 || o.sites > kMaxSites)
    fail("sites: found " + std::to_string(o.sites) + ", expected 1 to " + std::to_string(kMaxSites));
  if (o.first_site < 0 || o.first_site + o.sites > kMaxSites)
    fail("first site: found " + std::to_string(o.first_site) + " with " + std::to_string(o.sites) +
         " sites, expected 0 to " + std::to_string(kMaxSites - o.sites));
  const cv::Size f = o.frame_size;
  if (f.area() != 0 && (f.width < 64 || f.height < 64 || f.width > 8192 || f.height > 8192))
    fail("frame size: found " + std::to_string(f.width) + "x" + std::to_string(f.height) +
         ", expected 64x64 to 8192x8192");
  if (o.jpeg_quality < 1 || o.jpeg_quality > 100)
    fail("jpeg quality: found " + std::to_string(o.jpeg_quality) + ", expected 1 to 100");
}

std::string csv_row(const SynthLabels& l) {
  char cdr[16];
  std::snprintf(cdr, sizeof cdr, "%.2f", l.cdr);
  return l.image_id + "," + l.patient_id + "," + l.eye + "," + l.site + "," + std::to_string(l.dr_grade) + "," +
         std::to_string(l.macular_edema) + "," + std::to_string(l.amd) + "," + std::to_string(l.glaucoma) + "," +
         cdr + "," + l.quality + "," + l.diabetes + "\n";
}

std::string labels_csv(const std::vector<SynthLabels>& labels) {
  std::string out;
  for (const char* column : kSynthLabelColumns) out += std::string(out.empty() ? "" : ",") + column;
  out += "\n";
  for (const SynthLabels& l : labels) out += csv_row(l);
  return out;
}

void write_unsynced(const std::string& path, const std::vector<uchar>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) throw std::runtime_error(path + ": write failed (disk full or no permission?)");
}

void sync_filesystem_of(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) throw std::runtime_error(dir + ": cannot open the folder to sync it (" + std::strerror(errno) + ")");
  const int rc = ::syncfs(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) throw std::runtime_error(dir + ": syncfs failed (" + std::strerror(err) + ")");
}

}  // namespace

SynthSample synth_sample(const SynthOptions& options, int index) {
  validate(options);
  const Patient patient = draw_patient(options, index / 2);
  SynthSample sample;
  sample.labels = draw_labels(options, index, patient);
  const SynthLabels& l = sample.labels;
  cv::RNG rng = stream(options.seed, Stream::kPixels, static_cast<std::uint64_t>(index));
  synth_draw::EyeFindings eye;
  eye.right_eye = l.eye == "R";
  eye.dr_grade = l.dr_grade;
  eye.macular_edema = l.macular_edema != 0;
  eye.amd = l.amd != 0;
  eye.cdr = l.cdr;
  eye.pigment = std::clamp(patient.pigment + uniform(rng, -0.05f, 0.05f), 0.0f, 1.0f);
  eye.tessellation = patient.tessellation;
  eye.tortuosity = patient.tortuosity;
  const synth_draw::Capture capture = draw_capture(options, index, site_at(patient.site), l.quality == "Inadequate");
  sample.image = synth_draw::draw_fundus(eye, capture, rng);
  return sample;
}

SynthResult write_synth_dataset(const SynthOptions& options, const std::string& out_dir, base::Progress* progress) {
  validate(options);
  const auto start = std::chrono::steady_clock::now();
  std::filesystem::create_directories(out_dir);
  SynthResult result;
  result.labels.resize(static_cast<std::size_t>(options.count));
  const std::vector<int> jpeg_params{cv::IMWRITE_JPEG_QUALITY, options.jpeg_quality};
  base::parallel_for(options.count, base::resolve_threads(options.threads), [&](int64_t i) {
    SynthSample sample = synth_sample(options, static_cast<int>(i));
    std::vector<uchar> jpeg;
    if (!cv::imencode(".jpg", sample.image, jpeg, jpeg_params))
      throw std::runtime_error(out_dir + ": " + sample.labels.image_id + ".jpg: JPEG encoding failed");
    write_unsynced((std::filesystem::path(out_dir) / (sample.labels.image_id + ".jpg.tmp")).string(), jpeg);
    result.labels[static_cast<std::size_t>(i)] = std::move(sample.labels);
    if (progress != nullptr) progress->advance();
  });
  // One flush for the whole set: an fsync per image would cost more than drawing it.
  sync_filesystem_of(out_dir);
  for (const SynthLabels& l : result.labels) {
    const std::filesystem::path jpg = std::filesystem::path(out_dir) / (l.image_id + ".jpg");
    std::filesystem::rename(jpg.string() + ".tmp", jpg);
  }
  base::write_file_atomic((std::filesystem::path(out_dir) / "labels.csv").string(), labels_csv(result.labels));
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

void write_synth_preview(const SynthOptions& options, const std::string& png_path, int columns, int rows) {
  validate(options);
  if (columns < 1 || rows < 1)
    throw std::runtime_error(png_path + ": preview grid: found " + std::to_string(columns) + "x" +
                             std::to_string(rows) + ", expected at least 1x1");
  const cv::Size tile(300, 250);
  const int text_band = 40;
  const int shown = std::min(options.count, columns * rows);
  cv::Mat sheet(rows * (tile.height + text_band), columns * tile.width, CV_8UC3, cv::Scalar(32, 32, 32));
  for (int i = 0; i < shown; ++i) {
    const SynthSample s = synth_sample(options, i);
    const double scale = std::min(static_cast<double>(tile.width) / s.image.cols,
                                  static_cast<double>(tile.height) / s.image.rows);
    cv::Mat small;
    cv::resize(s.image, small, cv::Size(), scale, scale, cv::INTER_AREA);
    const cv::Point origin((i % columns) * tile.width, (i / columns) * (tile.height + text_band));
    small.copyTo(sheet(cv::Rect(origin.x + (tile.width - small.cols) / 2, origin.y + (tile.height - small.rows) / 2,
                                small.cols, small.rows)));
    const SynthLabels& l = s.labels;
    char line1[96], line2[96];
    std::snprintf(line1, sizeof line1, "%s site %s  DR %d  ME %d  AMD %d", l.image_id.c_str(), l.site.c_str(),
                  l.dr_grade, l.macular_edema, l.amd);
    std::snprintf(line2, sizeof line2, "cdr %.2f  glaucoma %d  %s  diab %s", l.cdr, l.glaucoma, l.quality.c_str(),
                  l.diabetes.c_str());
    const cv::Scalar ink(235, 235, 235);
    cv::putText(sheet, line1, origin + cv::Point(6, tile.height + 16), cv::FONT_HERSHEY_SIMPLEX, 0.4, ink, 1, cv::LINE_AA);
    cv::putText(sheet, line2, origin + cv::Point(6, tile.height + 33), cv::FONT_HERSHEY_SIMPLEX, 0.4, ink, 1, cv::LINE_AA);
  }
  std::vector<uchar> png;
  if (!cv::imencode(".png", sheet, png)) throw std::runtime_error(png_path + ": PNG encoding failed");
  base::write_file_atomic(png_path, std::string(png.begin(), png.end()));
}

}  // namespace gf::data
