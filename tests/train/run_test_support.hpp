#pragma once
// What the loop tests share: a tiny packed synthetic dataset.
#include <string>

#include "data/pack.hpp"
#include "data/synth.hpp"

namespace gf::test {

// `count` synthetic fundus images of 160 px under root/images, packed at `resolution` into
// root/dataset.
inline void write_packed_synthetic(const std::string& root, int count, int resolution) {
  data::SynthOptions synth;
  synth.count = count;
  synth.frame_size = {160, 160};
  synth.threads = 1;
  data::write_synth_dataset(synth, root + "/images");
  data::PackOptions pack;
  pack.images_dir = root + "/images";
  pack.out_dir = root + "/dataset";
  pack.resolution = resolution;
  pack.threads = 1;
  pack.show_progress = false;
  data::pack(pack);
}


}  // namespace gf::test
