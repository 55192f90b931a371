#pragma once
// Internal to data/: paints one synthetic colour-fundus photograph from a description of
// the eye (anatomy, findings) and of the capture (camera, exposure, defects). synth.cpp
// decides both from the labels; nothing here knows about labels.csv or files.
#include <opencv2/core.hpp>

namespace gf::data::synth_draw {

struct EyeFindings {
  bool right_eye = false;       // the optic disc sits on the nasal side: right of the fovea for a right eye
  int dr_grade = 0;             // 0-4
  bool macular_edema = false;   // exudates clustered around the fovea
  bool amd = false;             // drusen around the macula
  double cdr = 0.3;             // vertical cup-to-disc ratio
  float pigment = 0.5f;         // 0 blond (orange) .. 1 dark (brown-red) fundus
  float tessellation = 0.0f;    // visibility of the choroidal vessel network, 0..1
  float tortuosity = 1.0f;      // scale of the vessels' random wiggle
};

struct Capture {
  cv::Size frame{600, 500};
  float field_fraction = 0.94f;  // field radius / half the frame height (> 1 clips top and bottom)
  cv::Vec3f gain{1, 1, 1};       // B, G, R colour cast of the camera
  float exposure = 1.0f;
  float noise_sigma = 2.5f;      // sensor noise, grey levels
  float blur_sigma = 0.7f;       // optics and defocus, in pixels of a 250 px field radius
  float haze = 0.0f;             // additive veil (cataract, flare), grey levels
  float shadow = 0.0f;           // depth of a dark crescent (pupil, eyelid), 0..1
};

// 8-bit BGR image of capture.frame: the field on black. Deterministic for the RNG's state.
cv::Mat draw_fundus(const EyeFindings& eye, const Capture& capture, cv::RNG& rng);

}  // namespace gf::data::synth_draw
