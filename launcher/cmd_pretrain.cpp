// `greenfound pretrain`: loads the run config (file + --set overrides + flags), validates it
// (train/run_config.hpp) and calls train::pretrain. A run stopped by SIGUSR1/SIGTERM exits
// with train::kExitPreempted so SLURM requeues it.
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "launcher/commands.hpp"
#include "launcher/config_file.hpp"
#include "launcher/shared_options.hpp"
#include "train/pretrain.hpp"
#include "train/run_config.hpp"

namespace gf::launcher {
namespace {

struct PretrainFlags {
  std::string config;
  std::string data;
  std::string run_dir;
  std::string resume;
  int64_t max_steps = 0;
  int threads = 0;
  std::string device, backend;
  bool allow_batch_change = false;
  bool allow_dataset_change = false;
  std::vector<std::string> sets;
  CLI::Option *threads_option = nullptr, *device_option = nullptr, *backend_option = nullptr;
};

// The config fields the flags set, for errors worded by config path.
const FieldFlags kPretrainFlags = {{"data.path", "--data"},
                                   {"run_dir", "--run-dir"},
                                   {"resume", "--resume"},
                                   {"train.threads", "--threads"},
                                   {"train.device", "--device"},
                                   {"dist.backend", "--backend"}};

void run_pretrain(const PretrainFlags& flags) {
  nlohmann::json json = load_config(flags.config, flags.sets);
  // A flag given replaces the config's value.
  if (!flags.data.empty()) json["data"]["path"] = flags.data;
  if (flags.threads_option->count() > 0) json["train"]["threads"] = flags.threads;
  if (flags.device_option->count() > 0) json["train"]["device"] = flags.device;
  if (flags.backend_option->count() > 0) json["dist"]["backend"] = flags.backend;
  run_with_flag_names(kPretrainFlags, FieldSource::kConfigOrFlags, [&] {
    const train::RunConfig config = train::parse_run_config(json, flags.config);
    train::PretrainOptions options;
    options.run_dir =
        flags.run_dir.empty() ? "runs/" + std::filesystem::path(flags.config).stem().string() : flags.run_dir;
    options.resume = flags.resume;
    options.max_steps = flags.max_steps;
    options.allow_batch_change = flags.allow_batch_change;
    options.allow_dataset_change = flags.allow_dataset_change;
    const train::PretrainResult result = train::pretrain(config, options);
    if (result.status == train::PretrainStatus::kPreempted) throw CLI::RuntimeError(train::kExitPreempted);
  });
}

}  // namespace

void setup_pretrain(CLI::App& sub) {
  auto flags = std::make_shared<PretrainFlags>();
  sub.add_option("--config", flags->config, "Run config (configs/paper.json, configs/demo.json)")->required();
  sub.add_option("--data", flags->data, "Packed dataset folder (sets data.path)");
  sub.add_option("--run-dir", flags->run_dir, "Run folder (default runs/<config name>)");
  sub.add_option("--max-steps", flags->max_steps, "Stop with a checkpoint once this many optimizer steps are done")
      ->check(CLI::NonNegativeNumber);
  sub.add_option("--resume", flags->resume, "auto (newest complete checkpoint of the run folder) or a checkpoint folder");
  flags->threads_option = add_threads_option(sub, flags->threads)->description(
      "Threads per rank (sets train.threads); 0 = OMP_NUM_THREADS when set, else this node's cores shared by its ranks");
  flags->device_option = add_device_option(sub, flags->device)->description("auto, cpu or cuda (sets train.device)");
  flags->backend_option = add_backend_option(sub, flags->backend)->description("auto, mpi or nccl (sets dist.backend)");
  sub.add_flag("--allow-batch-change", flags->allow_batch_change,
               "Resume with a global batch (data.batch_size) other than the checkpoint's: the trajectory then differs "
               "from an uninterrupted run (any number of ranks with the same global batch needs no flag)");
  sub.add_flag("--allow-dataset-change", flags->allow_dataset_change,
               "Resume on a dataset other than the checkpoint's (another fingerprint: other images, resolution or "
               "split); the same data packed into another folder needs no flag");
  sub.add_option("--set", flags->sets, "Override a config field: section.key=value (repeatable)");
  sub.callback([flags] { run_pretrain(*flags); });
}

}  // namespace gf::launcher
