// `greenfound probe`: standardised logistic-regression probes of several models' embeddings,
// bootstrap AUROC and Wilcoxon best-vs-second, spread over ranks (eval/probe.hpp).
#include <memory>
#include <string>
#include <vector>

#include "dist/communicator.hpp"
#include "dist/world.hpp"
#include "eval/probe.hpp"
#include "launcher/commands.hpp"

namespace gf::launcher {
namespace {

struct ProbeFlags {
  eval::ProbeConfig config;
  std::vector<std::string> embeddings;
  bool no_energy = false;
};

void run_probe(ProbeFlags flags) {
  for (const auto& text : flags.embeddings) flags.config.embeddings.push_back(eval::parse_embeddings_arg(text));
  flags.config.track_energy = !flags.no_energy;
  const dist::World& world = dist::init_world();
  std::unique_ptr<dist::Communicator> communicator;
  if (world.size > 1) communicator = dist::make_communicator(dist::Backend::kMpi, world);
  eval::run_probe(flags.config, world, communicator.get());
}

}  // namespace

void setup_probe(CLI::App& sub) {
  auto flags = std::make_shared<ProbeFlags>();
  auto& c = flags->config;
  sub.add_option("--embeddings", flags->embeddings,
                 "MODEL=FILE (or MODEL:SOURCE=FILE for transfer tasks), one or more; the first model is the reference for ids")
      ->required()
      ->expected(1, -1);
  sub.add_option("--tasks", c.tasks, "Tasks JSON file (label, kind, filter, train/test), or auto: one task per label column")
      ->capture_default_str();
  sub.add_option("--out", c.out_dir, "Folder for results.json, results.csv and results.md")->required();
  sub.add_option("--bootstrap", c.bootstrap, "Bootstrap resamples of the test set (published: 100)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub.add_option("--seed", c.seed, "Bootstrap seed (numpy RandomState, published: 42)")->capture_default_str();
  sub.add_option("--alpha", c.alpha, "A win needs Wilcoxon p below this")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  sub.add_option("--threads", c.threads, "Torch threads per rank (0: LibTorch's default)")->check(CLI::NonNegativeNumber);
  sub.add_flag("--no-energy", flags->no_energy, "Do not measure energy");
  sub.callback([flags] { run_probe(*flags); });
}

}  // namespace gf::launcher
