// Painting order: a smooth albedo (pigment, macula, choroid) computed at 1/4 resolution and
// upscaled; the optic disc and soft findings, softened; vessels and sharp findings; the
// optics blur; then the capture (vignetting, colour cast, exposure, haze, noise) and the
// black surround. Smooth layers live at low resolution so an image costs a few ms.
#include "data/synth_draw.hpp"

#include <opencv2/imgproc.hpp>

#include <array>
#include <cstdint>
#include <vector>

#include "data/synth_scene.hpp"

namespace gf::data::synth_draw {
namespace {

constexpr int kLowResFactor = 4;
constexpr float kIlluminationMax = 2.0f;  // illumination is stored as 8-bit: 255 = this gain

Geometry make_geometry(const EyeFindings& eye, const Capture& capture, cv::RNG& rng) {
  Geometry g;
  const float w = static_cast<float>(capture.frame.width);
  const float h = static_cast<float>(capture.frame.height);
  g.radius = std::min(0.5f * h * capture.field_fraction * uniform(rng, 0.98f, 1.02f), 0.47f * w);
  g.centre = {0.5f * w + uniform(rng, -0.015f, 0.015f) * w, 0.5f * h + uniform(rng, -0.012f, 0.012f) * h};
  g.unit = g.radius / 250.0f;
  const float side = eye.right_eye ? 1.0f : -1.0f;
  const float tilt = uniform(rng, -0.12f, 0.12f);
  g.nasal = {side * std::cos(tilt), std::sin(tilt)};
  g.superior = {g.nasal.y, -g.nasal.x};
  if (g.superior.y > 0) g.superior = -g.superior;
  const float r = g.radius;
  g.fovea = g.centre - g.nasal * (0.30f * r * uniform(rng, 0.8f, 1.2f)) - g.superior * (0.03f * r) +
            cv::Point2f(gaussian(rng, 0.02f * r), gaussian(rng, 0.02f * r));
  g.disc = g.fovea + g.nasal * (0.74f * r * uniform(rng, 0.93f, 1.07f)) + g.superior * (0.05f * r * uniform(rng, 0.3f, 1.6f));
  const float disc_radius = 0.14f * r * uniform(rng, 0.9f, 1.1f);
  g.disc_rx = disc_radius * uniform(rng, 0.88f, 0.97f);
  g.disc_ry = disc_radius * uniform(rng, 1.0f, 1.08f);
  const cv::Vec3f blond(50, 102, 200), dark(22, 46, 128);
  g.background = mix(blond, dark, eye.pigment) + cv::Vec3f(gaussian(rng, 4), gaussian(rng, 5), gaussian(rng, 6));
  return g;
}

// Smooth zero-mean noise: a coarse Gaussian grid upscaled with bicubic interpolation.
cv::Mat smooth_noise(cv::Size size, cv::Size grid, int channels, cv::RNG& rng) {
  cv::Mat coarse(std::max(grid.height, 2), std::max(grid.width, 2), CV_32FC(channels));
  rng.fill(coarse, cv::RNG::NORMAL, 0.0, 1.0);
  cv::Mat fine;
  cv::resize(coarse, fine, size, 0, 0, cv::INTER_CUBIC);
  return fine;
}

cv::Point2f full_res(int x, int y) {
  return {(x + 0.5f) * kLowResFactor - 0.5f, (y + 0.5f) * kLowResFactor - 0.5f};
}

// Retinal pigment, macular pigment, peripapillary glow, choroidal tessellation, mottling.
cv::Mat albedo_low_res(const Geometry& g, const EyeFindings& eye, cv::Size low, cv::RNG& rng) {
  const cv::Mat blotch = smooth_noise(low, {6, 5}, 3, rng);
  const cv::Mat mottle = smooth_noise(low, {low.width / 4, low.height / 4}, 1, rng);
  const cv::Mat choroid = smooth_noise(low, {low.width / 7, low.height / 7}, 1, rng);
  const float macula_depth = 0.22f + 0.22f * eye.pigment;
  const float macula_size = 0.14f * uniform(rng, 0.85f, 1.2f);
  cv::Mat out(low, CV_8UC3);
  for (int y = 0; y < low.height; ++y) {
    for (int x = 0; x < low.width; ++x) {
      const cv::Point2f p = full_res(x, y);
      const float r = length(p - g.centre) / g.radius;
      const float df = length(p - g.fovea) / g.radius;
      const float dd = length(p - g.disc) / g.radius;
      cv::Vec3f c = g.background;
      c[1] *= 1.0f + 0.14f * (1.0f - std::min(r, 1.0f));  // posterior pole more orange than the red periphery
      const float macula = std::exp(-df * df / (2 * macula_size * macula_size));
      const float perifovea = std::exp(-df * df / (2 * 0.3f * 0.3f));
      c *= 1.0f - macula_depth * macula - 0.08f * perifovea;
      c[0] *= 1.0f - 0.25f * macula;  // macular pigment absorbs blue
      c += cv::Vec3f(5, 12, 10) * std::exp(-dd * dd / (2 * 0.17f * 0.17f));
      const float t = eye.tessellation * (0.35f + 0.65f * smoothstep(0.2f, 0.85f, r));
      const float n = choroid.at<float>(y, x) / 0.7f;
      const float vessel = std::exp(-n * n);  // broad orange bands where the noise crosses zero
      c *= 1.0f - 0.14f * t * (1.0f - vessel);
      const cv::Vec3f& b = blotch.at<cv::Vec3f>(y, x);
      const float m = 1.0f + 0.035f * mottle.at<float>(y, x);
      for (int k = 0; k < 3; ++k) c[k] *= m * (1.0f + 0.045f * b[k]);
      out.at<cv::Vec3b>(y, x) = cv::Vec3b(cv::saturate_cast<uchar>(c[0]), cv::saturate_cast<uchar>(c[1]),
                                          cv::saturate_cast<uchar>(c[2]));
    }
  }
  return out;
}

// Gain per pixel and channel: vignetting, a dark rim at the field stop, an exposure
// gradient, the optional shadow crescent, colour cast and exposure.
cv::Mat illumination_low_res(const Geometry& g, const Capture& capture, cv::Size low, cv::RNG& rng) {
  const float vignette = uniform(rng, 0.42f, 0.6f);
  const cv::Point2f gradient(gaussian(rng, 0.07f), gaussian(rng, 0.07f));
  const cv::Point2f shadow_dir = direction(uniform(rng, 0.0f, 2 * kPi));
  const float shadow_at = uniform(rng, -0.1f, 0.3f);
  cv::Mat out(low, CV_8UC3);
  for (int y = 0; y < low.height; ++y) {
    for (int x = 0; x < low.width; ++x) {
      const cv::Point2f d = (full_res(x, y) - g.centre) / g.radius;
      const float r = length(d);
      const float rc = std::min(r, 1.0f);
      float v = 1.0f - vignette * rc * rc * std::sqrt(rc);
      v *= 0.12f + 0.88f * smoothstep(1.0f, 0.93f, r);
      v *= 1.0f + gradient.dot(d);
      v *= 1.0f - capture.shadow * smoothstep(shadow_at, shadow_at + 0.6f, d.dot(shadow_dir));
      v *= capture.exposure / kIlluminationMax * 255.0f;
      out.at<cv::Vec3b>(y, x) = cv::Vec3b(cv::saturate_cast<uchar>(v * capture.gain[0]),
                                          cv::saturate_cast<uchar>(v * capture.gain[1]),
                                          cv::saturate_cast<uchar>(v * capture.gain[2]));
    }
  }
  return out;
}

// A veil brightest at the centre (cataract) or toward one side (flare).
cv::Mat haze_low_res(const Geometry& g, const Capture& capture, cv::Size low, cv::RNG& rng) {
  const cv::Point2f hot = g.centre + direction(uniform(rng, 0.0f, 2 * kPi)) * (g.radius * uniform(rng, 0.0f, 0.6f));
  const cv::Vec3f tint(uniform(rng, 0.7f, 0.9f), uniform(rng, 0.85f, 1.0f), 1.0f);
  cv::Mat out(low, CV_8UC3);
  for (int y = 0; y < low.height; ++y) {
    for (int x = 0; x < low.width; ++x) {
      const cv::Point2f p = full_res(x, y);
      const float r = length(p - g.centre) / g.radius;
      const float dh = length(p - hot) / g.radius;
      const float v = capture.haze * (0.45f + 0.55f * std::exp(-dh * dh / 0.5f)) * smoothstep(1.0f, 0.95f, r);
      out.at<cv::Vec3b>(y, x) = cv::Vec3b(cv::saturate_cast<uchar>(v * tint[0]), cv::saturate_cast<uchar>(v * tint[1]),
                                          cv::saturate_cast<uchar>(v * tint[2]));
    }
  }
  return out;
}

// Disc with a pink-orange neuroretinal rim, a pale cup of vertical size cdr, and sometimes a
// pale crescent of peripapillary atrophy on the temporal side. Returns the painted box.
cv::Rect draw_disc(cv::Mat& albedo, const Geometry& g, const EyeFindings& eye, cv::RNG& rng) {
  const float tilt = uniform(rng, -12.0f, 12.0f);
  const cv::Size2f disc_axes(g.disc_rx, g.disc_ry);
  float extent = 1.0f;
  if (rng.uniform(0.0f, 1.0f) < 0.25f + 0.3f * static_cast<float>(eye.cdr)) {
    const cv::Point2f at = g.disc - g.nasal * (g.disc_rx * uniform(rng, 0.15f, 0.3f));
    const cv::Vec3f atrophy = mix(g.background, cv::Vec3f(150, 190, 225), 0.6f);
    extent = uniform(rng, 1.12f, 1.3f);
    cv::ellipse(albedo, cv::RotatedRect(at, disc_axes * (2.0f * extent), tilt), bgr(atrophy), cv::FILLED, cv::LINE_AA);
  }
  const cv::Vec3f rim = mix(cv::Vec3f(80, 145, 238), cv::Vec3f(72, 125, 225), uniform(rng, 0.0f, 1.0f));
  cv::ellipse(albedo, cv::RotatedRect(g.disc, disc_axes * 2.0f, tilt), bgr(rim), cv::FILLED, cv::LINE_AA);
  const float cup_ry = static_cast<float>(eye.cdr) * g.disc_ry;
  const float cup_rx = std::min(cup_ry * uniform(rng, 0.8f, 0.98f), 0.92f * g.disc_rx);
  const cv::Point2f cup_at = g.disc - g.nasal * ((1.0f - static_cast<float>(eye.cdr)) * 0.3f * g.disc_rx);
  const cv::Vec3f cup(155, 212, 248);
  // Two steps so the cup's slope shades into the rim.
  cv::ellipse(albedo, cv::RotatedRect(cup_at, cv::Size2f(cup_rx, cup_ry) * 2.3f, tilt), bgr(mix(rim, cup, 0.5f)),
              cv::FILLED, cv::LINE_AA);
  cv::ellipse(albedo, cv::RotatedRect(cup_at, cv::Size2f(cup_rx, cup_ry) * 2.0f, tilt), bgr(cup), cv::FILLED,
              cv::LINE_AA);
  const float half = 1.6f * extent * std::max(g.disc_rx, g.disc_ry);
  return cv::Rect(cvFloor(g.disc.x - half), cvFloor(g.disc.y - half), cvCeil(2 * half), cvCeil(2 * half));
}

// Full coverage transmits these fractions of B, G, R (blood absorbs green most); veins are
// drawn at lower coverage than haemorrhages, arteries in their own layer, more transparent.
void apply_blood(cv::Mat& albedo, const BloodLayers& blood) {
  const cv::Vec3f venous(0.4f, 0.24f, 0.58f), arterial(0.76f, 0.56f, 0.88f);
  std::array<std::array<std::uint16_t, 256>, 3> through_vein{}, through_artery{};
  for (int k = 0; k < 3; ++k) {
    for (int m = 0; m < 256; ++m) {
      through_vein[k][m] = static_cast<std::uint16_t>(cvRound(256.0f * (1.0f - m / 255.0f * (1.0f - venous[k]))));
      through_artery[k][m] = static_cast<std::uint16_t>(cvRound(256.0f * (1.0f - m / 255.0f * (1.0f - arterial[k]))));
    }
  }
  for (int y = 0; y < albedo.rows; ++y) {
    cv::Vec3b* row = albedo.ptr<cv::Vec3b>(y);
    const uchar* v = blood.venous.ptr<uchar>(y);
    const uchar* a = blood.arterial.ptr<uchar>(y);
    for (int x = 0; x < albedo.cols; ++x) {
      if ((v[x] | a[x]) == 0) continue;
      for (int k = 0; k < 3; ++k) {
        row[x][k] = static_cast<uchar>((row[x][k] * through_vein[k][v[x]] * through_artery[k][a[x]]) >> 16);
      }
    }
  }
}

// Sensor noise: triangular bytes (sum of two uniform nibbles, sd 6.52 levels) from a
// splitmix64 stream, scaled through a table; a cv::RNG Gaussian fill costs several times more.
void add_sensor_noise(cv::Mat& image, float sigma, cv::RNG& rng) {
  std::array<schar, 256> table{};
  for (int b = 0; b < 256; ++b) table[b] = cv::saturate_cast<schar>(((b & 15) + (b >> 4) - 15) * sigma / 6.52f);
  std::uint64_t state = (static_cast<std::uint64_t>(rng.next()) << 32) | rng.next();
  cv::Mat noise(image.size(), CV_8SC3);
  for (int y = 0; y < noise.rows; ++y) {
    schar* row = noise.ptr<schar>(y);
    const int n = noise.cols * 3;
    for (int i = 0; i < n; i += 8) {
      std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      z ^= z >> 31;
      for (int k = 0; k < 8 && i + k < n; ++k) row[i + k] = table[(z >> (8 * k)) & 255];
    }
  }
  cv::add(image, noise, image, cv::noArray(), CV_8U);
}

void draw_fovea(cv::Mat& albedo, const Geometry& g, const EyeFindings& eye, cv::RNG& rng) {
  if (eye.amd || rng.uniform(0.0f, 1.0f) < 0.3f) return;  // the reflex fades with age and disease
  const cv::Vec3f reflex = mix(g.background * 0.7f, cv::Vec3f(180, 215, 235), 0.3f);
  cv::circle(albedo, fixed(g.fovea), fixed(1.6f * g.unit), bgr(reflex), cv::FILLED, cv::LINE_AA, kShift);
}

}  // namespace

cv::Point2f sample_near(const Geometry& g, cv::Point2f around, float spread, cv::RNG& rng) {
  cv::Point2f p = around;
  for (int attempt = 0; attempt < 30; ++attempt) {
    p = around + direction(uniform(rng, 0.0f, 2 * kPi)) * (spread * g.radius * std::sqrt(uniform(rng, 0.0f, 1.0f)));
    const cv::Point2f to_disc = p - g.disc;
    const cv::Point2f q(to_disc.x / g.disc_rx, to_disc.y / g.disc_ry);
    const bool on_disc = q.dot(q) < 1.7f;
    if (!on_disc && length(p - g.centre) < 0.94f * g.radius) break;
  }
  return p;
}

cv::Mat draw_fundus(const EyeFindings& eye, const Capture& capture, cv::RNG& rng) {
  const Geometry g = make_geometry(eye, capture, rng);
  const cv::Size low((capture.frame.width + kLowResFactor - 1) / kLowResFactor,
                     (capture.frame.height + kLowResFactor - 1) / kLowResFactor);
  const cv::Size upscaled(low.width * kLowResFactor, low.height * kLowResFactor);
  const cv::Rect frame_rect(cv::Point(0, 0), capture.frame);

  cv::Mat albedo;
  cv::resize(albedo_low_res(g, eye, low, rng), albedo, upscaled, 0, 0, cv::INTER_LINEAR);
  albedo = albedo(frame_rect);

  // The upscaled albedo is already smooth: only the boxes of soft findings need the blur.
  std::vector<cv::Rect> soft{draw_disc(albedo, g, eye, rng)};
  draw_soft_findings(albedo, g, eye, rng, soft);
  const double soft_sigma = 1.6 * g.unit;
  const int margin = cvCeil(3 * soft_sigma);
  for (const cv::Rect& box : soft) {
    const cv::Rect roi = (box + cv::Point(-margin, -margin) + cv::Size(2 * margin, 2 * margin)) & frame_rect;
    if (roi.area() == 0) continue;
    cv::Mat patch = albedo(roi);
    cv::GaussianBlur(patch, patch, cv::Size(), soft_sigma);
  }

  BloodLayers blood{cv::Mat::zeros(albedo.size(), CV_8U), cv::Mat::zeros(albedo.size(), CV_8U)};
  draw_vessels(blood, g, eye, eye.dr_grade >= 3, rng);
  draw_sharp_findings(albedo, blood, g, eye, rng);
  apply_blood(albedo, blood);
  draw_fovea(albedo, g, eye, rng);
  cv::GaussianBlur(albedo, albedo, cv::Size(), capture.blur_sigma * g.unit);

  cv::Mat light;
  cv::resize(illumination_low_res(g, capture, low, rng), light, upscaled, 0, 0, cv::INTER_LINEAR);
  cv::Mat image;
  cv::multiply(albedo, light(frame_rect), image, kIlluminationMax / 255.0);
  if (capture.haze > 0) {
    cv::Mat haze;
    cv::resize(haze_low_res(g, capture, low, rng), haze, upscaled, 0, 0, cv::INTER_LINEAR);
    cv::add(image, haze(frame_rect), image);
  }
  add_sensor_noise(image, capture.noise_sigma, rng);

  cv::Mat outside(image.size(), CV_8U, cv::Scalar(255));
  cv::circle(outside, fixed(g.centre), fixed(g.radius), cv::Scalar(0), cv::FILLED, cv::LINE_8, kShift);
  image.setTo(cv::Scalar::all(0), outside);
  return image;
}

}  // namespace gf::data::synth_draw
