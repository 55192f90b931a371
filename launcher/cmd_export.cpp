// `greenfound export`: any readable encoder weights -> timm-loadable .safetensors
// (model/weights_tools.hpp).
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>

#include "base/output_paths.hpp"
#include "base/sha256.hpp"
#include "launcher/commands.hpp"
#include "model/arch_registry.hpp"
#include "model/weights.hpp"
#include "model/weights_tools.hpp"
#include "train/checkpoint.hpp"

namespace gf::launcher {
namespace {

struct ExportFlags {
  std::string weights;
  std::string checkpoint;  // a pretrain checkpoint folder: its student encoder is exported
  std::string out;
  model::ExportOptions options;
  bool allow_extra_keys = false;
};

void run_export(ExportFlags flags) {
  flags.options.extra = flags.allow_extra_keys ? model::ExtraKeys::kIgnore : model::ExtraKeys::kReject;
  if (flags.weights.empty() == flags.checkpoint.empty())
    throw std::runtime_error("export: expected exactly one of --weights FILE or --checkpoint FOLDER");
  base::refuse_overwriting_input("export", {"--out", flags.out}, base::OutputKind::kFile,
                                 {{{"--weights", flags.weights}}, {{"--checkpoint", flags.checkpoint}, base::Overlap::kOutInside}});
  model::StateDict state;
  model::Metadata provenance;
  std::string source;
  if (!flags.checkpoint.empty()) {
    const train::CheckpointWeights checkpoint = train::load_checkpoint_weights(flags.checkpoint);
    if (flags.options.arch.empty()) flags.options.arch = checkpoint.vit.arch;
    state = checkpoint.student;
    source = flags.checkpoint;
    provenance = {{"source_checkpoint", flags.checkpoint}, {"checkpoint_step", std::to_string(checkpoint.step)}};
  } else {
    state = model::read_weights(flags.weights);
    source = flags.weights;
    provenance = {{"source_sha256", base::sha256_file(flags.weights)}};
  }
  const model::VitOptions o = model::export_encoder(state, source, flags.out, flags.options, provenance);
  std::cout << "wrote " << flags.out << ": " << o.arch << " at " << o.img_size << " px, " << model::parameter_count(o)
            << " parameters; timm.create_model(\"" << model::timm_model_name(o) << "\", **" << model::timm_kwargs_json(o)
            << ", pretrained=True, pretrained_cfg_overlay=dict(file=\"" << flags.out << "\"))\n"
            << "sha256 " << base::sha256_file(flags.out) << "\n";
}

}  // namespace

void setup_export(CLI::App& sub) {
  auto flags = std::make_shared<ExportFlags>();
  auto* weights =
      sub.add_option("--weights", flags->weights, "Encoder weights to export (.safetensors, or a torch.save .pth state dict)")
          ->check(CLI::ExistingFile);
  sub.add_option("--checkpoint", flags->checkpoint, "A pretrain checkpoint folder (RUN/checkpoints/step-N): its student encoder")
      ->check(CLI::ExistingDirectory)
      ->excludes(weights);
  sub.add_option("--out", flags->out, "The .safetensors file to write (timm key names and layout)")->required();
  sub.add_option("--arch", flags->options.arch, "Registered architecture (default: inferred from the tensors)");
  sub.add_option("--img-size", flags->options.img_size,
                 "Image size of the exported model; pos_embed is resampled as timm does (default: the stored grid's)")
      ->check(CLI::PositiveNumber);
  sub.add_flag("--allow-extra-keys", flags->allow_extra_keys, "Drop keys outside the encoder (a projector head) instead of failing");
  sub.callback([flags] { run_export(*flags); });
}

}  // namespace gf::launcher
