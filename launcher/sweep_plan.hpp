#pragma once
// A pretraining sweep (`greenfound sweep SWEEP.json`): a base run config, axes over any config
// field (the `--set section.key=value` of config_file.hpp) as a grid or a list, and the
// evaluation each run gets. Expanded here into named runs, each with its resolved config;
// the sweep folder's layout and per-run state file are here too, so `sweep`, `status` and
// `report` read one description.
//
//   {"base": "demo.json",                       // a config file (relative to this file) or inline
//    "data": "dataset",                         // the packed dataset: data.path, and evaluation's default
//    "set": {"train.threads": 1},               // optional, applied to every run
//    "grid": {"model.arch": ["a", "b"], "data.fraction": [0.5, 1]},   // or
//    "list": [{"name": "small", "model.arch": "b"}, ...],
//    "evaluation": [{"name": "synth", "split": "all", "tasks": "tasks.json" or [..]}],
//    "ranks": 1}
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace gf::launcher {

struct SweepEvaluation {
  std::string name;     // folder name of its embeddings and probe results
  std::string data;     // packed dataset folder (absolute)
  std::string split = "all";
  nlohmann::json tasks;  // the probe's tasks file contents ({"tasks": [...]})
  std::string pool = "mean_all";
};

struct SweepRun {
  std::string name;                 // [A-Za-z0-9._-]+, unique in the sweep
  nlohmann::json assignments;       // field -> value this run sets over the base
  nlohmann::json config;            // the resolved run config (validated)
};

struct SweepPlan {
  std::string source;
  std::vector<SweepRun> runs;
  std::vector<SweepEvaluation> evaluation;
  int ranks = 1;
};

// Reads and expands a sweep file; every run's config is validated (train::parse_run_config)
// before anything runs. Errors name the file and the field. Paths in the file are relative to
// it; `data_override` (a path relative to the working folder) replaces its "data".
SweepPlan read_sweep(const std::string& path, const std::string& data_override = "");

// The sweep folder: DIR/sweep.json (the expanded plan), DIR/runs/<name>/ per run.
nlohmann::json plan_to_json(const SweepPlan& plan);
SweepPlan plan_from_json(const nlohmann::json& json, const std::string& source);
std::string run_dir(const std::string& sweep_dir, const std::string& run);
// pretrain's energy.json of each session of a run (a resumed run rewrites energy.json), kept
// by the sweep as <run>/energy-sessions/<k>.json: the run's bill is their sum.
inline constexpr const char* kEnergySessionsDir = "energy-sessions";

// DIR/runs/<name>/sweep-state.json, written atomically after every stage.
struct RunState {
  std::string state = "pending";    // pending | running | interrupted | failed | done
  std::vector<std::string> done;    // finished stages: "pretrain", "embed:<eval>", "probe:<eval>"
  std::string message;              // why it failed or stopped
  bool finished(const std::string& stage) const;
};
RunState read_run_state(const std::string& run_dir);  // pending when absent
void write_run_state(const std::string& run_dir, const RunState& state);

}  // namespace gf::launcher
