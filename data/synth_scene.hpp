#pragma once
// Internal to the synthetic fundus painter (synth_draw.cpp, synth_vessels.cpp,
// synth_lesions.cpp): the geometry of one eye in frame pixels and the painting steps.
#include <opencv2/core.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include "data/synth_draw.hpp"

namespace gf::data::synth_draw {

inline constexpr float kPi = 3.14159265358979f;
inline constexpr int kShift = 4;  // fixed-point bits of sub-pixel coordinates given to OpenCV drawing
inline constexpr float kFixed = 16.0f;

struct Geometry {
  cv::Point2f centre;   // of the circular field
  float radius = 0;     // of the field
  float unit = 1;       // radius / 250: every size below is in units of a 250 px field radius
  cv::Point2f fovea, disc;
  float disc_rx = 0, disc_ry = 0;
  cv::Point2f nasal;     // unit vector fovea -> disc
  cv::Point2f superior;  // unit vector perpendicular to nasal, pointing up in the image
  cv::Vec3f background;  // albedo of the posterior pole, BGR
};

inline cv::Point fixed(cv::Point2f p) { return {cvRound(p.x * kFixed), cvRound(p.y * kFixed)}; }
inline int fixed(float length) { return std::max(1, cvRound(length * kFixed)); }
inline float uniform(cv::RNG& rng, float lo, float hi) { return rng.uniform(lo, hi); }
inline float gaussian(cv::RNG& rng, float sigma) { return static_cast<float>(rng.gaussian(sigma)); }
inline float length(cv::Point2f v) { return std::sqrt(v.dot(v)); }
inline cv::Point2f direction(float angle) { return {std::cos(angle), std::sin(angle)}; }
inline float angle_of(cv::Point2f v) { return std::atan2(v.y, v.x); }
inline float wrap_angle(float a) { return std::remainder(a, 2.0f * kPi); }
inline float smoothstep(float edge0, float edge1, float x) {
  const float t = std::clamp((x - edge0) / (edge1 - edge0), 0.0f, 1.0f);
  return t * t * (3.0f - 2.0f * t);
}
inline cv::Scalar bgr(cv::Vec3f c) { return {c[0], c[1], c[2]}; }
inline cv::Vec3f mix(cv::Vec3f a, cv::Vec3f b, float t) { return a + (b - a) * t; }

// A point of the posterior pole within `spread` field radii of `around`, inside the field and
// off the optic disc.
cv::Point2f sample_near(const Geometry& g, cv::Point2f around, float spread, cv::RNG& rng);

// Blood is painted as coverage (0-255) into two masks that later darken whatever albedo lies
// beneath (apply_blood), so vessels and haemorrhages stay darker than a dark macula.
struct BloodLayers {
  cv::Mat venous;    // veins, haemorrhages, microaneurysms
  cv::Mat arterial;  // arteries, new vessels
};

// Arteries and veins radiating from the disc: temporal arcades around the macula, nasal
// trunks, papillomacular twigs, recursive branching, tapering. `beading` modulates vein calibre.
void draw_vessels(BloodLayers& blood, const Geometry& g, const EyeFindings& eye, bool beading, cv::RNG& rng);

// Findings with soft edges, painted before the soft-focus blur: cotton-wool spots, soft
// drusen, camera dust. Appends the boxes it painted to `touched`.
void draw_soft_findings(cv::Mat& albedo, const Geometry& g, const EyeFindings& eye, cv::RNG& rng,
                        std::vector<cv::Rect>& touched);

// Findings with sharp edges, painted after the vessels: microaneurysms, haemorrhages, hard
// exudates (scattered by DR grade, clustered at the fovea for edema), hard drusen and
// pigment, new vessels, laser scars.
void draw_sharp_findings(cv::Mat& albedo, BloodLayers& blood, const Geometry& g, const EyeFindings& eye,
                         cv::RNG& rng);

}  // namespace gf::data::synth_draw
