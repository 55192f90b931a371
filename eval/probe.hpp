#pragma once
// `greenfound probe`: linear probes of several models' embeddings on a set of tasks, spread
// over ranks by (model, task), gathered and written by rank 0.
#include <cstdint>
#include <string>
#include <vector>

#include "energy/energy_options.hpp"
#include "eval/logistic_probe.hpp"
#include "eval/results.hpp"

namespace gf::eval {

// One --embeddings argument: MODEL=FILE or MODEL:SOURCE=FILE.
struct EmbeddingsArg {
  std::string model, source, path;
};
EmbeddingsArg parse_embeddings_arg(const std::string& text);

struct ProbeConfig {
  std::vector<EmbeddingsArg> embeddings;
  std::string tasks = "auto";  // a tasks JSON file (eval/tasks.hpp) or "auto"
  std::string out_dir;
  int bootstrap = 100;         // resamples of the test set (published: 100)
  uint32_t seed = 42;          // of the bootstrap generator (published: RandomState(42))
  double alpha = 0.05;         // a win needs Wilcoxon p below this
  std::vector<std::string> versus;  // models to compare each with every other one per task
  LogisticOptions logistic;
  int threads = 0;             // torch intra-op threads per rank; 0 = automatic (base::resolve_threads)
  bool track_energy = true;    // energy.csv / energy.json in out_dir, summary printed by rank 0
  energy::EnergyOptions energy;
  bool verbose = true;         // a line per (model, task) and a summary on stdout
};

// Collective over this process's world (dist::init_world), as every stage. Bad input confined to one
// task or model (missing column, one class in training, NaN embeddings, ids that differ
// between models) becomes an entry of `errors` and the rest still runs; a file that cannot
// be read at all throws. Rank 0 writes the results files; every rank returns the results.
ProbeResults run_probe(const ProbeConfig& config);

}  // namespace gf::eval
