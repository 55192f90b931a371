// `greenfound inspect PATH`: describes what PATH holds. Each kind of input is one branch that
// recognises it and calls its library's summary; the first that recognises PATH prints.
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>

#include "data/dataset.hpp"
#include "launcher/commands.hpp"
#include "model/weights_tools.hpp"
#include "train/checkpoint.hpp"

namespace gf::launcher {
namespace {

void run_inspect(const std::string& path) {
  if (data::is_dataset_dir(path)) {  // a packed dataset: counts, labels, splits, verified checksums
    data::print_dataset_summary(path, std::cout);
    return;
  }
  if (train::is_checkpoint_or_run_dir(path)) {  // checkpoints: step, epoch, loss, which are torn
    train::print_checkpoint_summary(path, std::cout);
    return;
  }
  if (model::looks_like_weights_file(path)) {
    model::print_weights_summary(path, std::cout);
    return;
  }
  throw std::runtime_error(path +
                           ": not a recognised input, expected a weights file (.safetensors, or a torch.save .pth), "
                           "a packed dataset folder, a checkpoint folder or a run folder");
}

}  // namespace

void setup_inspect(CLI::App& sub) {
  auto path = std::make_shared<std::string>();
  sub.add_option("path", *path, "Weights file (.safetensors or torch.save .pth), packed dataset, checkpoint or run folder")
      ->required();
  sub.callback([path] { run_inspect(*path); });
}

}  // namespace gf::launcher
