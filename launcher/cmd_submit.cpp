// `greenfound submit`: wraps one stage (`-- <subcommand> [args]`) in an sbatch script built
// from the run config's "slurm" section, the site file and the flags; writes it to
// RUN_DIR/slurm/job.sbatch, submits it and records the job id (slurm/ does the work).
#include <filesystem>
#include <iostream>
#include <memory>

#include "launcher/child_process.hpp"
#include "launcher/commands.hpp"
#include "launcher/config_file.hpp"
#include "slurm/array_sweep.hpp"
#include "slurm/job_spec.hpp"
#include "slurm/sbatch_script.hpp"
#include "slurm/scheduler.hpp"
#include "train/pretrain.hpp"

namespace gf::launcher {
namespace {

namespace fs = std::filesystem;

struct SubmitFlags {
  std::string config;
  std::string run_dir;
  // Resource flags override the config only when given (0 = not given).
  int nodes = 0, ntasks_per_node = 0, gpus_per_node = -1, cpus_per_task = 0;
  std::string gpu_type, time, partition, account, array, site, job_name;
  bool dry_run = false;
  std::vector<std::string> command;
};

std::string absolute(const std::string& path) { return fs::absolute(path).lexically_normal().string(); }

// Index of `flag` in args ("--flag value" or "--flag=value"), or npos.
size_t find_flag(const std::vector<std::string>& args, const std::string& flag) {
  for (size_t i = 0; i < args.size(); ++i)
    if (args[i] == flag || args[i].rfind(flag + "=", 0) == 0) return i;
  return std::string::npos;
}

std::string flag_value(const std::vector<std::string>& args, size_t i) {
  const auto eq = args[i].find('=');
  if (eq != std::string::npos) return args[i].substr(eq + 1);
  return i + 1 < args.size() ? args[i + 1] : "";
}

// The run folder: --run-dir, else the stage's own --run-dir, else runs/<config name>.
std::string resolve_run_dir(const SubmitFlags& flags) {
  if (!flags.run_dir.empty()) return absolute(flags.run_dir);
  const size_t i = find_flag(flags.command, "--run-dir");
  if (i != std::string::npos) return absolute(flag_value(flags.command, i));
  return absolute("runs/" + fs::path(flags.config).stem().string());
}

// argv of one rank. pretrain always gets the config, the run folder and `--resume auto`, so
// the requeued job continues from the newest checkpoint.
std::vector<std::string> stage_command(const SubmitFlags& flags, const std::string& run_dir) {
  if (flags.command.empty()) throw std::runtime_error("submit: no stage given, expected `-- <subcommand> [args]` (e.g. -- pretrain)");
  std::vector<std::string> argv{self_executable()};
  argv.insert(argv.end(), flags.command.begin(), flags.command.end());
  if (flags.command[0] != "pretrain") return argv;

  std::vector<std::string> args(flags.command.begin() + 1, flags.command.end());
  if (const size_t i = find_flag(args, "--resume"); i != std::string::npos && flag_value(args, i) != "auto")
    throw std::runtime_error("submit: pretrain --resume: found \"" + flag_value(args, i) +
                             "\", expected auto (a requeued job must continue from its newest checkpoint; use model.init to start from weights)");
  if (const size_t i = find_flag(args, "--run-dir"); i != std::string::npos && absolute(flag_value(args, i)) != run_dir)
    throw std::runtime_error("submit: pretrain --run-dir " + flag_value(args, i) + " differs from the job's run folder " + run_dir);
  if (const size_t i = find_flag(args, "--config"); i != std::string::npos && absolute(flag_value(args, i)) != absolute(flags.config))
    throw std::runtime_error("submit: pretrain --config " + flag_value(args, i) + " differs from submit --config " + flags.config);
  if (find_flag(args, "--config") == std::string::npos) argv.insert(argv.end(), {"--config", absolute(flags.config)});
  if (find_flag(args, "--run-dir") == std::string::npos) argv.insert(argv.end(), {"--run-dir", run_dir});
  if (find_flag(args, "--resume") == std::string::npos) argv.insert(argv.end(), {"--resume", "auto"});
  return argv;
}

// "sweep.json" or "sweep.json%2" (at most 2 tasks at once) is a sweep file; anything else a
// SLURM array spec.
bool is_sweep_file(const std::string& array, std::string& path, int& throttle) {
  const auto pct = array.rfind('%');
  path = array.substr(0, pct);
  if (path.size() < 5 || path.substr(path.size() - 5) != ".json") return false;
  throttle = 0;
  if (pct != std::string::npos) {
    const std::string k = array.substr(pct + 1);
    if (k.empty() || k.find_first_not_of("0123456789") != std::string::npos)
      throw std::runtime_error("submit: --array " + array + ": expected FILE.json or FILE.json%K with K a number");
    throttle = std::stoi(k);
  }
  return true;
}

void run_submit(const SubmitFlags& flags) {
  // The config is checked here, with a pretrain stage's --set overrides, so a typo fails now
  // and not after hours in the queue.
  std::vector<std::string> sets;
  if (!flags.command.empty() && flags.command[0] == "pretrain")
    for (size_t i = 1; i < flags.command.size(); ++i)
      if (flags.command[i] == "--set" || flags.command[i].rfind("--set=", 0) == 0)
        sets.push_back(flag_value(flags.command, i));
  const train::RunConfig config = train::parse_run_config(load_config(flags.config, sets), flags.config);
  slurm::JobSpec spec;
  spec.requeue_exit_code = train::kExitPreempted;
  if (!flags.command.empty()) spec.job_name = "gf-" + flags.command[0];
  slurm::apply_layer(spec, slurm::resolve_site(flags.site));
  slurm::apply_layer(spec, config.slurm);

  if (flags.nodes > 0) spec.nodes = flags.nodes;
  if (flags.ntasks_per_node > 0) spec.ntasks_per_node = flags.ntasks_per_node;
  if (flags.gpus_per_node >= 0) spec.gpus_per_node = flags.gpus_per_node;
  if (flags.cpus_per_task > 0) spec.cpus_per_task = flags.cpus_per_task;
  if (!flags.gpu_type.empty()) spec.gpu_type = flags.gpu_type;
  if (!flags.time.empty()) spec.time = flags.time;
  if (!flags.partition.empty()) spec.partition = flags.partition;
  if (!flags.account.empty()) spec.account = flags.account;
  if (!flags.job_name.empty()) spec.job_name = flags.job_name;

  spec.run_dir = resolve_run_dir(flags);
  spec.work_dir = fs::current_path().string();
  if (!spec.output.empty() && spec.output[0] != '/') spec.output = spec.run_dir + "/" + spec.output;
  if (!spec.error.empty() && spec.error[0] != '/') spec.error = spec.run_dir + "/" + spec.error;

  const std::vector<std::string> command = stage_command(flags, spec.run_dir);
  if (flags.command[0] == "pretrain" && spec.signal != "USR1" && spec.signal != "SIGUSR1")
    throw std::runtime_error(flags.config + ": slurm: signal: found \"" + spec.signal +
                             "\", expected USR1 (the signal pretrain checkpoints and stops on)");
  std::vector<slurm::SweepTask> sweep;
  if (!flags.array.empty()) {
    std::string sweep_path;
    int throttle = 0;
    if (is_sweep_file(flags.array, sweep_path, throttle)) {
      sweep = slurm::load_sweep(sweep_path, spec.run_dir);
      spec.array.clear();
      spec.array_throttle = throttle;
      for (const auto& task : sweep) spec.array_tasks.push_back(task.args);
    } else {
      spec.array = flags.array;
    }
  }

  const std::string script = slurm::render_sbatch(spec, command);  // validates first
  if (!flags.dry_run && !slurm::on_path("sbatch"))
    throw std::runtime_error("sbatch: not found on PATH; submitting needs a SLURM client (--dry-run only writes the script)");
  const std::string path = slurm::write_script(spec.run_dir, script);
  const auto probes = slurm::probe_commands(sweep, command[0], spec.run_dir);
  if (!probes.empty()) {
    std::string text = "#!/bin/bash\n# Gathers the array's embeddings: one probe per dataset over every model.\nset -e\n";
    for (const auto& p : probes) text += p + "\n";
    slurm::write_run_file(spec.run_dir, "probe_commands.sh", text, 0755);
  }

  if (flags.dry_run) {
    std::cout << script << "\n# written to " << path << " (dry run: not submitted)\n";
  } else {
    const std::string job_id = slurm::submit(path, spec.run_dir);
    std::cout << "submitted job " << job_id;
    if (!sweep.empty()) std::cout << " (array of " << sweep.size() << " tasks, " << job_id << "_0.." << job_id << "_" << sweep.size() - 1 << ")";
    std::cout << "\n  script: " << path << "\n  log:    " << spec.run_dir << "/slurm/"
              << (spec.is_array() ? job_id + "_<task>.out" : job_id + ".out") << "\n  follow: greenfound status " << spec.run_dir
              << "\n";
  }
  if (!probes.empty()) {
    std::cout << "after the array finishes, gather with (also in " << spec.run_dir << "/slurm/probe_commands.sh):\n";
    for (const auto& p : probes) std::cout << "  " << p << "\n";
  }
}

}  // namespace

void setup_submit(CLI::App& sub) {
  auto flags = std::make_shared<SubmitFlags>();
  sub.add_option("--config", flags->config, "Run config (JSON); its \"slurm\" section gives the job's defaults")->required()->check(CLI::ExistingFile);
  sub.add_option("--run-dir", flags->run_dir, "Run folder (default: the stage's --run-dir, else runs/<config name>)");
  sub.add_option("--nodes", flags->nodes, "Nodes")->check(CLI::PositiveNumber);
  sub.add_option("--ntasks-per-node", flags->ntasks_per_node, "Ranks per node (one per GPU on GPU jobs)")->check(CLI::PositiveNumber);
  sub.add_option("--gpus-per-node", flags->gpus_per_node, "GPUs per node (0 = CPU-only)")->check(CLI::NonNegativeNumber);
  sub.add_option("--gpu-type", flags->gpu_type, "GPU type (GRES name, e.g. a100)");
  sub.add_option("--cpus-per-task", flags->cpus_per_task, "CPUs (threads) per rank; sets OMP_NUM_THREADS")->check(CLI::PositiveNumber);
  sub.add_option("--time", flags->time, "Time limit, HH:MM:SS or D-HH:MM:SS");
  sub.add_option("--partition", flags->partition, "Partition");
  sub.add_option("--account", flags->account, "Account to charge");
  sub.add_option("--array", flags->array,
                 "Job array: a SLURM spec (0-9%2) or a sweep file (sweep.json[%K]) of models x datasets, one embed per task");
  sub.add_option("--site", flags->site, "Site defaults (JSON; default $GREENFOUND_SITE)");
  sub.add_option("--job-name", flags->job_name, "Job name (default gf-<subcommand>)");
  sub.add_flag("--dry-run", flags->dry_run, "Write and print the script, do not submit");
  sub.add_option("command", flags->command, "The stage to run: -- <subcommand> [args]");
  sub.callback([flags] { run_submit(*flags); });
}

}  // namespace gf::launcher
