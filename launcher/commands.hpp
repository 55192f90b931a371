#pragma once
// The subcommand table of the `greenfound` binary: each entry's setup function (one file per
// subcommand, launcher/cmd_<name>.cpp) declares its flags and binds a callback that calls
// one library entry point.
#include <CLI/CLI.hpp>

#include <string>

namespace gf::launcher {

struct Command {
  const char* name;
  const char* help;
  void (*setup)(CLI::App& sub);
};

// Add a declaration here and a row in main.cpp's table for each new subcommand.
void setup_inspect(CLI::App& sub);
void setup_report(CLI::App& sub);
void setup_demo(CLI::App& sub);
void setup_export(CLI::App& sub);
void setup_submit(CLI::App& sub);
void setup_status(CLI::App& sub);
void setup_cancel(CLI::App& sub);
void setup_cost(CLI::App& sub);
void setup_scaling(CLI::App& sub);
void setup_pretrain(CLI::App& sub);
void setup_pack(CLI::App& sub);
void setup_synth(CLI::App& sub);
void setup_launch(CLI::App& sub);
void setup_embed(CLI::App& sub);
void setup_probe(CLI::App& sub);
void setup_sweep(CLI::App& sub);

// What `greenfound --version` prints: commit, LibTorch, CUDA, cuDNN, NCCL, MPI, visible GPUs.
std::string version_text();

}  // namespace gf::launcher
