// greenfound: one binary, one subcommand per pipeline stage. Parsing and dispatch only;
// every stage lives in its library. Errors are caught once here: one line, non-zero exit.
#include <cstdlib>
#include <exception>
#include <iostream>

#include "dist/world.hpp"
#include "launcher/commands.hpp"
#include "launcher/rank_prefix.hpp"

namespace {

const gf::launcher::Command kCommands[] = {
    {"demo", "Run the whole pipeline on built-in synthetic data: pack, pretrain, embed, probe, bill, report", gf::launcher::setup_demo},
    {"report", "Write a self-contained HTML report of one or more run folders", gf::launcher::setup_report},
    {"inspect", "Describe a weights file, checkpoint or packed dataset", gf::launcher::setup_inspect},
    {"export", "Write encoder weights as timm-loadable .safetensors", gf::launcher::setup_export},
    {"submit", "Write an sbatch script for a stage and submit it to SLURM", gf::launcher::setup_submit},
    {"status", "State of a run's SLURM job, its progress and energy so far", gf::launcher::setup_status},
    {"cancel", "Cancel a run's pending or running SLURM jobs", gf::launcher::setup_cancel},
    {"cost", "Estimate hours, kWh, CO2e and dollars of a planned run on a GPU model", gf::launcher::setup_cost},
    {"scaling", "Analytic step time on 1..N nodes: compute, gradient all-reduce over the network, overlap", gf::launcher::setup_scaling},
    {"pretrain", "Pretrain a ViT with Token Reconstruction (resumable, N ranks)", gf::launcher::setup_pretrain},
    {"pack", "Pack an image folder (+ labels CSV) into HDF5 shards with the published preprocessing", gf::launcher::setup_pack},
    {"synth", "Write synthetic colour-fundus JPEGs with labelled findings + labels.csv", gf::launcher::setup_synth},
    {"launch", "Start N ranks of a subcommand (mpirun, or srun inside a SLURM allocation)", gf::launcher::setup_launch},
    {"embed", "Embed an image folder or packed dataset with a frozen encoder into one HDF5 (N ranks)", gf::launcher::setup_embed},
    {"sweep", "Pretraining sweep: expand axes over a base config, pretrain, embed and probe every run (resumable)", gf::launcher::setup_sweep},
    {"probe", "Linear probes of models' embeddings: bootstrap AUROC, Wilcoxon wins, results tables (N ranks)", gf::launcher::setup_probe},
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"greenfound: Token Reconstruction pretraining and evaluation of retinal foundation models"};
  app.require_subcommand(1);
  app.footer(
      "Built against the CUDA LibTorch of the venv scripts/install-deps.sh makes (pinned torch 2.11.0+cu130, "
      "~5.2 GB, outside the checkout); CUDA and NCCL are always compiled in and used when a GPU is visible. "
      "README.md: install, build and the two commands.");
  app.set_help_all_flag("--help-all", "Every subcommand's help");
  app.set_version_flag("--version", gf::launcher::version_text,
                       "greenfound's commit, LibTorch, CUDA, cuDNN, NCCL and MPI versions, and the visible GPUs");
  for (const auto& command : kCommands) command.setup(*app.add_subcommand(command.name, command.help));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    // One write per line, so the lines of ranks failing together do not interleave.
    std::cerr << gf::launcher::rank_prefix() + "error: " + e.what() + "\n" << std::flush;
    gf::dist::abort_job_if_distributed(EXIT_FAILURE);  // peers must not wait on this rank
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}
