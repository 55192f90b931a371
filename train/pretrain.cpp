#include "train/pretrain.hpp"

#include "train/trainer.hpp"

namespace gf::train {

PretrainResult pretrain(const RunConfig& config, const PretrainOptions& options) {
  Trainer trainer(config, options);
  return trainer.run();
}

}  // namespace gf::train
