// `greenfound sweep SWEEP.json --out DIR`: every run of a pretraining sweep (launcher/
// sweep_plan.hpp) one after another, each pretrain → embed → probe as the commands a user
// would type, in child processes of this binary. A state file per run records the finished
// stages, so running the command again skips finished runs and resumes unfinished ones
// (pretrain --resume auto continues from the newest checkpoint).
#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>

#include "base/atomic_file.hpp"
#include "base/json_reader.hpp"
#include "base/output_paths.hpp"
#include "launcher/child_process.hpp"
#include "launcher/commands.hpp"
#include "launcher/sweep_plan.hpp"
#include "train/checkpoint.hpp"
#include "train/pretrain.hpp"

namespace gf::launcher {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct SweepArgs {
  std::string sweep;
  std::string out;
  std::string data;
  bool local = true;
  int max_runs = 0;
};

// Stopped on a signal (or preempted with a checkpoint written): the sweep stops too.
class Interrupted : public std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The stored plan must agree with the file's on every run both plans name: a changed config under
// an existing run folder would mix two experiments in one result.
void check_against_stored(const SweepPlan& plan, const fs::path& out) {
  const fs::path stored_path = out / "sweep.json";
  if (!fs::exists(stored_path)) return;
  const SweepPlan stored = plan_from_json(base::load_json_file(stored_path.string()), stored_path.string());
  for (const auto& old : stored.runs)
    for (const auto& run : plan.runs)
      if (old.name == run.name && old.config != run.config && fs::exists(run_dir(out.string(), run.name)))
        throw std::runtime_error(stored_path.string() + ": run '" + run.name +
                                 "': found a different config than the sweep file's now, expected the same (use a new --out, "
                                 "or remove " + run_dir(out.string(), run.name) + ")");
}

// Runs `greenfound <args>` and returns its exit status.
int run_child(const std::string& run, const std::string& stage, const std::vector<std::string>& args) {
  std::cout << "sweep: " << run << ": " << stage << ": greenfound";
  for (const auto& a : args) std::cout << ' ' << a;
  std::cout << std::endl;
  std::vector<std::string> argv{self_executable()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_and_wait(argv);
}

// Throws Interrupted on a stop signal, runtime_error on failure.
void check_status(const std::string& run, const std::string& stage, int status) {
  if (status == train::kExitPreempted || status >= 128)
    throw Interrupted(run + ": " + stage + " stopped (exit status " + std::to_string(status) + ")");
  if (status != 0) throw std::runtime_error(run + ": " + stage + " failed (exit status " + std::to_string(status) + ")");
}

// pretrain's energy.json covers one session (a resumed run rewrites it): each new one is kept
// as energy-sessions/<k>.json, so the sweep's bill of a run is the sum of all its sessions.
void keep_energy_session(const fs::path& dir) {
  const fs::path current = dir / "energy.json", sessions = dir / kEnergySessionsDir;
  if (!fs::exists(current)) return;
  const json bill = base::load_json_file(current.string());
  fs::create_directories(sessions);
  size_t k = 0;
  for (; fs::exists(sessions / (std::to_string(k) + ".json")); ++k)
    if (base::load_json_file((sessions / (std::to_string(k) + ".json")).string()) == bill) return;  // kept already
  base::write_file_atomic((sessions / (std::to_string(k) + ".json")).string(), bill.dump(2) + "\n");
}

// The stages of one run not yet finished; the state file is rewritten after each.
void run_one(const SweepPlan& plan, const SweepRun& run, const fs::path& out, RunState& state) {
  const std::string dir = run_dir(out.string(), run.name);
  const std::string ranks = std::to_string(plan.ranks);
  const std::string config_path = (fs::path(dir) / "sweep-config.json").string();
  base::write_file_atomic(config_path, run.config.dump(2) + "\n");
  auto stage = [&](const std::string& name, const std::vector<std::string>& args) {
    if (state.finished(name)) return;
    const auto start = std::chrono::steady_clock::now();
    const int status = run_child(run.name, name, args);
    if (name == "pretrain") keep_energy_session(fs::path(dir));
    check_status(run.name, name, status);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << "sweep: " << run.name << ": " << name << " done in " << static_cast<int>(seconds + 0.5) << " s" << std::endl;
    state.done.push_back(name);
    write_run_state(dir, state);
  };
  stage("pretrain", {"launch", "-n", ranks, "--", "pretrain", "--config", config_path, "--run-dir", dir, "--resume", "auto"});
  const std::string checkpoint = train::latest_checkpoint(dir);
  if (checkpoint.empty()) throw std::runtime_error(dir + "/checkpoints: found no checkpoint after pretraining, expected one");
  const std::string img_size = std::to_string(run.config.at("model").at("img_size").get<int64_t>());
  for (const auto& e : plan.evaluation) {
    const std::string embeddings = (fs::path(dir) / "embeddings" / (e.name + ".h5")).string();
    fs::create_directories(fs::path(embeddings).parent_path());
    stage("embed:" + e.name, {"launch", "-n", ranks, "--", "embed", "--checkpoint", checkpoint, "--data", e.data, "--split",
                              e.split, "--img-size", img_size, "--pool", e.pool, "--out", embeddings, "--no-energy"});
    const std::string tasks = (out / ("tasks-" + e.name + ".json")).string();
    stage("probe:" + e.name, {"launch", "-n", ranks, "--", "probe", "--embeddings", run.name + "=" + embeddings, "--tasks",
                              tasks, "--out", (fs::path(dir) / "probe" / e.name).string(), "--no-energy"});
  }
}

void run_sweep(const SweepArgs& a) {
  const std::vector<base::InputPath> inputs = {{{"sweep file", a.sweep}}, {{"--data", a.data}}};
  base::refuse_overwriting_input("sweep", {"--out", a.out}, base::OutputKind::kFolder, inputs);
  base::refuse_overwriting_input("sweep", {"--out", a.out + "/sweep.json"}, base::OutputKind::kFile, inputs);
  const SweepPlan plan = read_sweep(a.sweep, a.data);
  const fs::path out = fs::absolute(a.out).lexically_normal();
  fs::create_directories(out / "runs");
  check_against_stored(plan, out);
  base::write_file_atomic((out / "sweep.json").string(), plan_to_json(plan).dump(2) + "\n");
  for (const auto& e : plan.evaluation)
    base::write_file_atomic((out / ("tasks-" + e.name + ".json")).string(), e.tasks.dump(2) + "\n");

  int started = 0, failed = 0, index = 0;
  for (const auto& run : plan.runs) {
    ++index;
    const std::string dir = run_dir(out.string(), run.name);
    RunState state = read_run_state(dir);
    const std::string where = "sweep: run " + std::to_string(index) + "/" + std::to_string(plan.runs.size()) + " " + run.name;
    if (state.state == "done") {
      std::cout << where << ": done, skipped" << std::endl;
      continue;
    }
    if (a.max_runs > 0 && started == a.max_runs) {
      std::cout << "sweep: stopping after " << started << " run(s) (--max-runs); run the same command again to continue" << std::endl;
      break;
    }
    ++started;
    std::cout << where << (state.state == "pending" ? ": starting" : ": resuming (was " + state.state + ")") << std::endl;
    state.state = "running";
    state.message.clear();
    write_run_state(dir, state);
    try {
      run_one(plan, run, out, state);
      state.state = "done";
      write_run_state(dir, state);
    } catch (const Interrupted& e) {
      state.state = "interrupted";
      state.message = e.what();
      write_run_state(dir, state);
      throw std::runtime_error(std::string("sweep: ") + e.what() + "; run the same command again to resume");
    } catch (const std::exception& e) {
      // One failed run does not stop the others; the sweep exits non-zero at the end.
      state.state = "failed";
      state.message = e.what();
      write_run_state(dir, state);
      std::cerr << "sweep: " << e.what() << std::endl;
      ++failed;
    }
  }
  if (failed > 0) throw std::runtime_error("sweep: " + std::to_string(failed) + " run(s) failed (see greenfound status " + out.string() + ")");
  std::cout << "sweep: " << out.string() << " (greenfound status / report " << out.string() << ")" << std::endl;
}

}  // namespace

void setup_sweep(CLI::App& sub) {
  auto args = std::make_shared<SweepArgs>();
  sub.add_option("sweep", args->sweep, "Sweep file: base config, axes (grid or list), evaluation")->required();
  sub.add_option("--out", args->out, "Sweep folder (sweep.json, runs/<name>/)")->required();
  sub.add_option("--data", args->data, "Packed dataset (replaces the sweep file's \"data\")");
  sub.add_flag("--local", args->local, "Run on this machine, one run after another (the default)");
  sub.add_option("--max-runs", args->max_runs, "Start at most this many unfinished runs, then stop (0 = all)")
      ->check(CLI::NonNegativeNumber);
  sub.callback([args] { run_sweep(*args); });
}

}  // namespace gf::launcher
