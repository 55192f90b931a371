// `greenfound export`: any readable encoder weights -> timm-loadable .safetensors
// (model/weights_tools.hpp).
#include <iostream>
#include <memory>
#include <string>

#include "launcher/commands.hpp"
#include "model/arch_registry.hpp"
#include "model/weights.hpp"
#include "model/weights_tools.hpp"

namespace gf::launcher {
namespace {

struct ExportFlags {
  std::string weights;
  std::string out;
  model::ExportOptions options;
  bool allow_extra_keys = false;
};

void run_export(ExportFlags flags) {
  flags.options.extra = flags.allow_extra_keys ? model::ExtraKeys::kIgnore : model::ExtraKeys::kReject;
  const model::Metadata provenance = {{"source_sha256", model::sha256_file(flags.weights)}};
  const model::VitOptions o =
      model::export_encoder(model::read_weights(flags.weights), flags.weights, flags.out, flags.options, provenance);
  std::cout << "wrote " << flags.out << ": " << o.arch << " at " << o.img_size << " px, " << model::parameter_count(o)
            << " parameters; timm.create_model(\"" << model::timm_model_name(o) << "\", **" << model::timm_kwargs_json(o)
            << ", pretrained=True, pretrained_cfg_overlay=dict(file=\"" << flags.out << "\"))\n"
            << "sha256 " << model::sha256_file(flags.out) << "\n";
}

}  // namespace

void setup_export(CLI::App& sub) {
  auto flags = std::make_shared<ExportFlags>();
  sub.add_option("--weights", flags->weights, "Encoder weights to export (.safetensors, or a torch.save .pth state dict)")
      ->required()
      ->check(CLI::ExistingFile);
  sub.add_option("--out", flags->out, "The .safetensors file to write (timm key names and layout)")->required();
  sub.add_option("--arch", flags->options.arch, "Registered architecture (default: inferred from the tensors)");
  sub.add_option("--img-size", flags->options.img_size,
                 "Image size of the exported model; pos_embed is resampled as timm does (default: the stored grid's)")
      ->check(CLI::PositiveNumber);
  sub.add_flag("--allow-extra-keys", flags->allow_extra_keys, "Drop keys outside the encoder (a projector head) instead of failing");
  sub.callback([flags] { run_export(*flags); });
}

}  // namespace gf::launcher
