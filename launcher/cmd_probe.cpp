// `greenfound probe`: standardised logistic-regression probes of several models' embeddings,
// bootstrap AUROC and Wilcoxon best-vs-second, spread over ranks (eval/probe.hpp).
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "base/output_paths.hpp"
#include "eval/probe.hpp"
#include "launcher/commands.hpp"
#include "launcher/shared_options.hpp"

namespace gf::launcher {
namespace {

struct ProbeFlags {
  eval::ProbeConfig config;
  std::vector<std::string> embeddings;
  bool no_energy = false;
};

const FieldFlags kProbeFlags = {{"embeddings", "--embeddings"}, {"out_dir", "--out"}, {"bootstrap", "--bootstrap"}};

void run_probe(ProbeFlags flags) {
  for (const auto& text : flags.embeddings) flags.config.embeddings.push_back(eval::parse_embeddings_arg(text));
  std::vector<base::InputPath> inputs;
  for (const auto& e : flags.config.embeddings) inputs.push_back({{"--embeddings", e.path}});
  if (flags.config.tasks != "auto") inputs.push_back({{"--tasks", flags.config.tasks}});
  const std::string& out = flags.config.out_dir;
  base::refuse_overwriting_input("probe", {"--out", out}, base::OutputKind::kFolder, inputs);
  for (const char* written : {"results.json", "results.csv", "results.md"})
    base::refuse_overwriting_input("probe", {"--out", out + "/" + written}, base::OutputKind::kFile, inputs);
  flags.config.track_energy = !flags.no_energy;
  const eval::ProbeResults results = eval::run_probe(flags.config);
  // Errors confined to a task or model leave the rest standing; nothing standing is a failure.
  if (results.records.empty())
    throw std::runtime_error("probe: no (task, model) produced a result (" + std::to_string(results.errors.size()) + " error(s)" +
                             (results.errors.empty() ? std::string() : ", first: " + results.errors.front().message) +
                             "; listed in " + flags.config.out_dir + "/results.md)");
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
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  add_seed_option(sub, c.seed, "the bootstrap resamples (numpy RandomState, published: 42)");
  sub.add_option("--alpha", c.alpha, "A win needs Wilcoxon p below this")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  sub.add_option("--versus", c.versus,
                 "Models of --embeddings to compare each with every other one per task (better / worse / tie, with p)")
      ->expected(1, -1);
  add_threads_option(sub, c.threads);
  add_no_energy_flag(sub, flags->no_energy);
  sub.callback([flags] { run_with_flag_names(kProbeFlags, FieldSource::kFlagsOnly, [&] { run_probe(*flags); }); });
}

}  // namespace gf::launcher
