// Labelled findings. DR grades follow the international scale's visible signs: grade 1
// microaneurysms only; 2 adds blot and flame haemorrhages and a few exudates; 3 many
// haemorrhages, cotton-wool spots, venous beading (drawn with the vessels); 4 new vessels,
// pre-retinal haemorrhage, laser scars. Counts grow with the grade so a probe can learn it.
#include <opencv2/imgproc.hpp>

#include <array>
#include <vector>

#include "data/synth_scene.hpp"

namespace gf::data::synth_draw {
namespace {

struct Range {
  int lo, hi;  // inclusive
  int draw(cv::RNG& rng) const { return lo + rng.uniform(0, hi - lo + 1); }
};

constexpr std::array<Range, 5> kMicroaneurysms{{{0, 0}, {3, 8}, {8, 18}, {15, 30}, {18, 34}}};
constexpr std::array<Range, 5> kHaemorrhages{{{0, 0}, {0, 0}, {3, 8}, {12, 24}, {14, 28}}};
constexpr std::array<Range, 5> kExudateClusters{{{0, 0}, {0, 0}, {0, 3}, {2, 5}, {2, 6}}};
constexpr std::array<Range, 5> kCottonWool{{{0, 0}, {0, 0}, {0, 1}, {2, 5}, {1, 4}}};

cv::Point2f posterior_pole(const Geometry& g) { return (g.fovea * 0.6f + g.disc * 0.4f); }

// Blood coverage of a red lesion: thick, a little variable.
cv::Scalar blood_density(cv::RNG& rng) { return cv::Scalar(uniform(rng, 215.0f, 255.0f)); }

cv::Vec3f yellow(cv::RNG& rng) {
  return cv::Vec3f(uniform(rng, 60, 105), uniform(rng, 195, 225), uniform(rng, 228, 250));
}

void fill_ellipse(cv::Mat& img, cv::Point2f at, cv::Size2f radii, float angle_deg, const cv::Scalar& colour) {
  cv::ellipse(img, cv::RotatedRect(at, radii * 2.0f, angle_deg), colour, cv::FILLED, cv::LINE_AA);
}

void fill_circle(cv::Mat& img, cv::Point2f at, float radius, const cv::Scalar& colour) {
  cv::circle(img, fixed(at), fixed(radius), colour, cv::FILLED, cv::LINE_AA, kShift);
}

void exudate_cluster(cv::Mat& img, const Geometry& g, cv::Point2f at, int specks, float spread, cv::RNG& rng) {
  const bool ring = rng.uniform(0.0f, 1.0f) < 0.35f;  // circinate ring around a leaking spot
  const float ring_radius = uniform(rng, 8.0f, 18.0f) * g.unit;
  for (int k = 0; k < specks; ++k) {
    cv::Point2f p = ring ? at + direction(uniform(rng, 0.0f, 2 * kPi)) * (ring_radius + gaussian(rng, 1.5f * g.unit))
                         : at + cv::Point2f(gaussian(rng, spread), gaussian(rng, spread));
    const float r = uniform(rng, 0.7f, 1.9f) * g.unit * (rng.uniform(0.0f, 1.0f) < 0.15f ? 1.8f : 1.0f);
    fill_circle(img, p, r, bgr(yellow(rng)));
  }
}

void microaneurysms(cv::Mat& blood, const Geometry& g, int count, cv::RNG& rng) {
  for (int k = 0; k < count; ++k) {
    fill_circle(blood, sample_near(g, posterior_pole(g), 0.62f, rng), uniform(rng, 1.0f, 1.8f) * g.unit,
                blood_density(rng));
  }
}

void haemorrhages(cv::Mat& blood, const Geometry& g, int count, int grade, cv::RNG& rng) {
  for (int k = 0; k < count; ++k) {
    const cv::Point2f at = sample_near(g, posterior_pole(g), 0.75f, rng);
    const cv::Scalar colour = blood_density(rng);
    if (rng.uniform(0.0f, 1.0f) < 0.3f) {  // flame: along the nerve fibres, radial from the disc
      const float along = angle_of(at - g.disc) * 180.0f / kPi;
      fill_ellipse(blood, at, cv::Size2f(uniform(rng, 5.0f, 10.0f), uniform(rng, 1.4f, 2.4f)) * g.unit, along, colour);
      continue;
    }
    const float size = uniform(rng, 2.4f, grade >= 4 ? 8.0f : 6.0f) * g.unit;
    const int lobes = rng.uniform(1, 4);
    for (int l = 0; l < lobes; ++l) {
      const cv::Point2f lobe = at + cv::Point2f(gaussian(rng, 0.5f * size), gaussian(rng, 0.5f * size));
      fill_ellipse(blood, lobe, cv::Size2f(size * uniform(rng, 0.6f, 1.0f), size * uniform(rng, 0.5f, 0.9f)),
                   uniform(rng, 0.0f, 180.0f), colour);
    }
  }
}

// Fine tortuous loops on the disc (NVD) or along an arcade (NVE).
void new_vessels(cv::Mat& arterial, const Geometry& g, cv::RNG& rng) {
  const bool on_disc = rng.uniform(0.0f, 1.0f) < 0.5f;
  const cv::Point2f at = on_disc ? g.disc : sample_near(g, posterior_pole(g), 0.6f, rng);
  const int loops = rng.uniform(8, 16);
  for (int k = 0; k < loops; ++k) {
    cv::Point2f p = at + cv::Point2f(gaussian(rng, 9.0f * g.unit), gaussian(rng, 9.0f * g.unit));
    float heading = uniform(rng, 0.0f, 2 * kPi);
    std::vector<cv::Point> line{fixed(p)};
    for (int s = 0; s < 8; ++s) {
      heading += gaussian(rng, 0.9f);
      p += direction(heading) * (3.0f * g.unit);
      line.push_back(fixed(p));
    }
    cv::polylines(arterial, line, false, cv::Scalar(200), 1, cv::LINE_AA, kShift);
  }
}

// Boat-shaped: blood settles under gravity, leaving a flat top.
void preretinal_haemorrhage(cv::Mat& blood, const Geometry& g, cv::RNG& rng) {
  const cv::Point2f at = sample_near(g, posterior_pole(g), 0.5f, rng);
  const cv::Size axes(cvRound(uniform(rng, 14.0f, 24.0f) * g.unit), cvRound(uniform(rng, 9.0f, 15.0f) * g.unit));
  cv::ellipse(blood, cv::Point(cvRound(at.x), cvRound(at.y)), axes, 0, 0, 180, blood_density(rng), cv::FILLED,
              cv::LINE_AA);
}

// Pan-retinal photocoagulation: rows of pigmented burns in the mid-periphery, sparing the macula.
void laser_scars(cv::Mat& img, const Geometry& g, cv::RNG& rng) {
  const int burns = rng.uniform(40, 90);
  const cv::Vec3f pigment(25, 38, 70), scar(150, 185, 205);
  for (int k = 0; k < burns; ++k) {
    const cv::Point2f p = g.centre + direction(uniform(rng, 0.0f, 2 * kPi)) * (g.radius * uniform(rng, 0.55f, 0.95f));
    if (length(p - g.fovea) < 0.45f * g.radius || length(p - g.disc) < 2.0f * g.disc_ry) continue;
    const float r = uniform(rng, 3.0f, 5.0f) * g.unit;
    fill_circle(img, p, r, bgr(mix(g.background, pigment, 0.8f)));
    fill_circle(img, p, 0.6f * r, bgr(mix(g.background, scar, 0.7f)));
  }
}

void macular_exudates(cv::Mat& img, const Geometry& g, cv::RNG& rng) {
  const int clusters = rng.uniform(1, 4);
  for (int c = 0; c < clusters; ++c) {
    const cv::Point2f at = g.fovea + direction(uniform(rng, 0.0f, 2 * kPi)) * (g.radius * uniform(rng, 0.03f, 0.16f));
    exudate_cluster(img, g, at, rng.uniform(12, 26), 7.0f * g.unit, rng);
  }
}

void hard_drusen_and_pigment(cv::Mat& img, const Geometry& g, cv::RNG& rng) {
  const int drusen = rng.uniform(6, 20);
  for (int k = 0; k < drusen; ++k) {
    const cv::Point2f p = g.fovea + cv::Point2f(gaussian(rng, 0.13f * g.radius), gaussian(rng, 0.11f * g.radius));
    fill_circle(img, p, uniform(rng, 0.8f, 1.6f) * g.unit, bgr(mix(g.background, cv::Vec3f(110, 200, 235), 0.6f)));
  }
  const int clumps = rng.uniform(0, 7);
  for (int k = 0; k < clumps; ++k) {
    const cv::Point2f p = g.fovea + cv::Point2f(gaussian(rng, 0.08f * g.radius), gaussian(rng, 0.08f * g.radius));
    fill_circle(img, p, uniform(rng, 1.0f, 2.5f) * g.unit, bgr(mix(g.background, cv::Vec3f(25, 40, 75), 0.6f)));
  }
}

}  // namespace

void draw_soft_findings(cv::Mat& albedo, const Geometry& g, const EyeFindings& eye, cv::RNG& rng,
                        std::vector<cv::Rect>& touched) {
  auto box = [](cv::Point2f at, float half) {
    return cv::Rect(cvFloor(at.x - half), cvFloor(at.y - half), cvCeil(2 * half) + 1, cvCeil(2 * half) + 1);
  };
  const int spots = kCottonWool[eye.dr_grade].draw(rng);
  for (int k = 0; k < spots; ++k) {
    const cv::Point2f at = sample_near(g, posterior_pole(g), 0.55f, rng);
    const float across = angle_of(at - g.disc) * 180.0f / kPi + 90.0f;
    const cv::Size2f radii = cv::Size2f(uniform(rng, 5.0f, 9.0f), uniform(rng, 3.5f, 6.0f)) * g.unit;
    fill_ellipse(albedo, at, radii * 1.4f, across, bgr(mix(g.background, cv::Vec3f(205, 222, 238), 0.45f)));
    fill_ellipse(albedo, at, radii, across, bgr(mix(g.background, cv::Vec3f(215, 230, 242), 0.85f)));
    touched.push_back(box(at, 1.4f * radii.width));
  }
  if (eye.amd) {
    const int drusen = rng.uniform(15, 45);
    for (int k = 0; k < drusen; ++k) {
      const cv::Point2f p = g.fovea + cv::Point2f(gaussian(rng, 0.12f * g.radius), gaussian(rng, 0.1f * g.radius));
      const float r = uniform(rng, 1.8f, 4.8f) * g.unit;
      fill_circle(albedo, p, r, bgr(mix(g.background, cv::Vec3f(120, 205, 240), uniform(rng, 0.5f, 0.75f))));
      touched.push_back(box(p, r));
    }
  }
  const int dust = rng.uniform(0.0f, 1.0f) < 0.3f ? rng.uniform(1, 3) : 0;  // camera dust, unrelated to disease
  for (int k = 0; k < dust; ++k) {
    const cv::Point2f p = sample_near(g, g.centre, 0.85f, rng);
    const float r = uniform(rng, 5.0f, 9.0f) * g.unit;
    fill_circle(albedo, p, r, bgr(g.background * 0.88f));
    touched.push_back(box(p, r));
  }
}

void draw_sharp_findings(cv::Mat& albedo, BloodLayers& blood, const Geometry& g, const EyeFindings& eye,
                         cv::RNG& rng) {
  const int grade = eye.dr_grade;
  const int clusters = kExudateClusters[grade].draw(rng);
  for (int c = 0; c < clusters; ++c) {
    exudate_cluster(albedo, g, sample_near(g, posterior_pole(g), 0.65f, rng), rng.uniform(3, 11), 6.0f * g.unit, rng);
  }
  if (eye.macular_edema) macular_exudates(albedo, g, rng);
  haemorrhages(blood.venous, g, kHaemorrhages[grade].draw(rng), grade, rng);
  microaneurysms(blood.venous, g, kMicroaneurysms[grade].draw(rng), rng);
  if (grade == 4) {
    const int patches = rng.uniform(1, 4);
    for (int k = 0; k < patches; ++k) new_vessels(blood.arterial, g, rng);
    if (rng.uniform(0.0f, 1.0f) < 0.35f) preretinal_haemorrhage(blood.venous, g, rng);
    if (rng.uniform(0.0f, 1.0f) < 0.5f) laser_scars(albedo, g, rng);
  }
  if (eye.amd) hard_drusen_and_pigment(albedo, g, rng);
}

}  // namespace gf::data::synth_draw
