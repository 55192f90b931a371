// The retinal vessel tree. Each vessel is a random walk from the disc whose heading is pulled
// toward a goal: the temporal arcades orbit the macula along a widening ellipse, the rest
// keep their initial course; all taper, branch into thinner children and stop at the edge
// of the field or at the foveal avascular zone.
#include <opencv2/imgproc.hpp>

#include <vector>

#include "data/synth_scene.hpp"

namespace gf::data::synth_draw {
namespace {

constexpr int kMaxDepth = 2;
constexpr int kMaxSteps = 400;

struct Vessel {
  std::vector<cv::Point2f> points;
  std::vector<float> widths;
  bool artery = false;
};

struct Sprout {
  cv::Point2f at;
  float heading = 0;
  float width = 0;
  bool artery = false;
  int depth = 0;
  int arcade = 0;  // +1 superior / -1 inferior temporal arcade, 0 a free vessel
};

class TreeGrower {
 public:
  TreeGrower(const Geometry& g, const EyeFindings& eye, cv::RNG& rng) : g_(g), eye_(eye), rng_(rng) {
    const float a = length(g.disc - g.fovea);
    arcade_axes_ = {a, 0.5f * g.radius * uniform(rng, 0.85f, 1.15f)};
  }

  std::vector<Vessel> grow(std::vector<Sprout> pending) {
    std::vector<Vessel> vessels;
    // Breadth-first: children are queued behind their parents, so RNG order is fixed.
    for (std::size_t i = 0; i < pending.size(); ++i) {
      const Sprout sprout = pending[i];  // walk() appends to pending
      Vessel v = walk(sprout, pending);
      if (v.points.size() >= 2) vessels.push_back(std::move(v));
    }
    return vessels;
  }

 private:
  // Heading that follows an ellipse around the fovea, widening as it goes temporal.
  float arcade_heading(cv::Point2f p, int arcade) const {
    const cv::Point2f v = p - g_.fovea;
    const cv::Point2f up = g_.superior * static_cast<float>(arcade);
    const float psi = std::atan2(v.dot(up), v.dot(g_.nasal));
    const float c = std::cos(psi), s = std::sin(psi);
    const float a = arcade_axes_.width, b = arcade_axes_.height;
    const float target = a * b / std::sqrt(b * b * c * c + a * a * s * s) * (1.0f + 0.3f * (psi / kPi) * (psi / kPi));
    const cv::Point2f tangent = -s * g_.nasal + c * up;
    const cv::Point2f outward = c * g_.nasal + s * up;
    return angle_of(tangent + outward * (3.0f * (target - length(v)) / g_.radius));
  }

  bool in_arcade(cv::Point2f p, int arcade) const {
    const cv::Point2f v = p - g_.fovea;
    return std::atan2(v.dot(g_.superior * static_cast<float>(arcade)), v.dot(g_.nasal)) < 0.8f * kPi;
  }

  Vessel walk(const Sprout& sprout, std::vector<Sprout>& pending) {
    Vessel v;
    v.artery = sprout.artery;
    const float step = 3.5f * g_.unit;
    const float decay = 0.0031f / g_.unit;
    const float wiggle = 0.03f * eye_.tortuosity;
    const float faz = 0.075f * g_.radius;
    cv::Point2f p = sprout.at;
    float heading = sprout.heading, width = sprout.width, travelled = 0;
    float curvature = 0;  // a smooth random walk of the curvature gives gentle meanders, not kinks
    int arcade = sprout.arcade;
    float next_branch = uniform(rng_, 30.0f, 70.0f) * g_.unit * (1.0f + 0.5f * sprout.depth);
    for (int i = 0; i < kMaxSteps; ++i) {
      v.points.push_back(p);
      v.widths.push_back(width);
      if (arcade != 0 && !in_arcade(p, arcade)) arcade = 0;
      // Free vessels keep their course but drift to run away from the disc, as retinal vessels do.
      const float goal = arcade != 0 ? arcade_heading(p, arcade)
                                     : (sprout.depth == 0 ? sprout.heading : angle_of(p - g_.disc));
      const float pull = arcade != 0 ? 0.25f : (sprout.depth == 0 ? 0.06f : 0.035f);
      curvature = 0.8f * curvature + gaussian(rng_, wiggle);
      heading += pull * wrap_angle(goal - heading) + curvature;
      const cv::Point2f from_fovea = p - g_.fovea;
      const float df = length(from_fovea);
      if (df < 2.5f * faz) {  // vessels bend around the avascular zone
        const float away = angle_of(from_fovea);
        const float turn = wrap_angle(away - heading);
        if (std::abs(turn) > kPi / 2) heading += 0.12f * (turn > 0 ? turn - kPi / 2 : turn + kPi / 2);
      }
      p += direction(heading) * step;
      travelled += step;
      width *= std::exp(-step * decay);
      if (length(p - g_.centre) > 1.01f * g_.radius || width < 0.6f * g_.unit || df < faz) break;
      if (travelled > next_branch && sprout.depth < kMaxDepth && width > 1.1f * g_.unit) {
        const float side = rng_.uniform(0, 2) == 0 ? -1.0f : 1.0f;
        pending.push_back({p, heading + side * uniform(rng_, 0.45f, 1.1f), width * uniform(rng_, 0.45f, 0.72f),
                           sprout.artery, sprout.depth + 1, 0});
        width *= 0.93f;
        next_branch = travelled + uniform(rng_, 40.0f, 90.0f) * g_.unit * (1.0f + 0.5f * sprout.depth);
      }
    }
    return v;
  }

  const Geometry& g_;
  const EyeFindings& eye_;
  cv::RNG& rng_;
  cv::Size2f arcade_axes_;
};

std::vector<Sprout> trunks(const Geometry& g, cv::RNG& rng) {
  std::vector<Sprout> out;
  const float u = g.unit;
  for (const bool artery : {false, true}) {
    const float calibre = artery ? 1.0f : 1.38f;
    const float offset = (artery ? 0.18f : -0.18f) * g.disc_rx;
    for (const int arcade : {1, -1}) {
      const cv::Point2f up = g.superior * static_cast<float>(arcade);
      const cv::Point2f start = g.disc + up * (0.15f * g.disc_ry) + g.nasal * offset;
      out.push_back({start, angle_of(up + g.nasal * uniform(rng, -0.25f, 0.15f)), 3.9f * u * calibre, artery, 0, arcade});
      const float spread = uniform(rng, 0.45f, 1.0f);
      out.push_back({start, angle_of(g.nasal * std::cos(spread) + up * std::sin(spread)), 2.9f * u * calibre, artery, 0, 0});
    }
    const int twigs = rng.uniform(1, 4);  // small papillomacular vessels heading for the fovea
    for (int k = 0; k < twigs; ++k) {
      const float aim = angle_of(g.fovea - g.disc) + uniform(rng, -0.45f, 0.45f);
      out.push_back({g.disc + direction(aim) * (0.4f * g.disc_rx), aim, 1.3f * u * calibre, artery, 2, 0});
    }
    const float nasal_aim = angle_of(g.nasal) + uniform(rng, -0.3f, 0.3f);
    out.push_back({g.disc + g.nasal * (0.3f * g.disc_rx), nasal_aim, 1.9f * u * calibre, artery, 1, 0});
  }
  return out;
}

void draw_vessel(BloodLayers& blood, const Vessel& v, const Geometry& g, bool beading) {
  const std::size_t n = v.points.size();
  std::vector<cv::Point> left(n), right(n);
  float mean_width = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const cv::Point2f tangent = v.points[std::min(i + 1, n - 1)] - v.points[i > 0 ? i - 1 : 0];
    const cv::Point2f normal = cv::Point2f(-tangent.y, tangent.x) / std::max(length(tangent), 1e-3f);
    float w = v.widths[i];
    if (beading && !v.artery) w *= 1.0f + 0.35f * std::max(0.0f, std::sin(0.45f * static_cast<float>(i)));
    mean_width += w / static_cast<float>(n);
    left[i] = fixed(v.points[i] + normal * (0.5f * w));
    right[n - 1 - i] = fixed(v.points[i] - normal * (0.5f * w));
  }
  left.insert(left.end(), right.begin(), right.end());
  cv::Mat& layer = v.artery ? blood.arterial : blood.venous;
  const float coverage = (v.artery ? 255.0f : 205.0f) * std::clamp(mean_width / (2.2f * g.unit), 0.35f, 1.0f);
  const std::vector<std::vector<cv::Point>> polygon{left};
  cv::fillPoly(layer, polygon, cv::Scalar(coverage), cv::LINE_AA, kShift);

  // The central light reflex of the wider vessels: thinner blood along the axis.
  std::vector<cv::Point> reflex;
  for (std::size_t i = 0; i < n && v.widths[i] > 2.6f * g.unit; ++i) reflex.push_back(fixed(v.points[i]));
  if (reflex.size() >= 2) {
    cv::polylines(layer, reflex, false, cv::Scalar(coverage * (v.artery ? 0.72f : 0.85f)), 1, cv::LINE_AA, kShift);
  }
}

}  // namespace

void draw_vessels(BloodLayers& blood, const Geometry& g, const EyeFindings& eye, bool beading, cv::RNG& rng) {
  TreeGrower grower(g, eye, rng);
  const std::vector<Vessel> vessels = grower.grow(trunks(g, rng));
  for (const Vessel& v : vessels) draw_vessel(blood, v, g, beading);
}

}  // namespace gf::data::synth_draw
