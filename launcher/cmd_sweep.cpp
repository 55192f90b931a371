// `greenfound sweep SWEEP.json --out DIR`: every run of a pretraining sweep (launcher/
// sweep_plan.hpp), each pretrain → embed → probe as the commands a user would type, in child
// processes of this binary: `--local` one after another here, `--slurm` as one SLURM job array
// (task i = `greenfound sweep ... --run <name i>`, requeued and resumed on preemption like any
// greenfound job). A state file per run records the finished stages, so running the command
// again skips finished runs and resumes unfinished ones (pretrain --resume auto continues from
// the newest checkpoint).
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <set>

#include "base/atomic_file.hpp"
#include "base/json_reader.hpp"
#include "base/output_paths.hpp"
#include "launcher/child_process.hpp"
#include "launcher/commands.hpp"
#include "launcher/sweep_plan.hpp"
#include "slurm/job_spec.hpp"
#include "slurm/sbatch_script.hpp"
#include "slurm/scheduler.hpp"
#include "train/checkpoint.hpp"
#include "train/pretrain.hpp"
#include "train/run_config.hpp"

namespace gf::launcher {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct SweepArgs {
  std::string sweep;
  std::string out;
  std::string data;
  std::string run;  // only this run (what each array task runs)
  bool local = false, slurm = false, dry_run = false;
  int max_runs = 0;
  int parallel = 0;  // --slurm: at most this many array tasks at once (0 = no limit)
  std::string site, time;
};

// Stopped on a signal (or preempted with a checkpoint written): the sweep stops too.
class Interrupted : public std::runtime_error {
  using std::runtime_error::runtime_error;
};

// SLURM job states in which a job (or array task) may still run.
const std::set<std::string> kActiveStates = {"PENDING",     "RUNNING",   "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "SUSPENDED",
                                             "CONFIGURING", "COMPLETING", "RESIZING", "SIGNALING",    "STAGE_OUT"};

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

// Throws Interrupted on a stop signal (the stage checkpointed and stopped, or was ended by a
// signal passed on to it), runtime_error on failure (a crash included: requeueing it would
// crash again).
void check_status(const std::string& run, const std::string& stage, int status) {
  if (status == train::kExitPreempted || status == 128 + SIGINT || status == 128 + SIGTERM || status == 128 + SIGUSR1)
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

// The plan, checked against the folder's stored one; the folder's plan and task files are
// written unless an array task (--run) finds them written by the submission already.
SweepPlan prepare(const SweepArgs& a, const fs::path& out) {
  const std::vector<base::InputPath> inputs = {{{"sweep file", a.sweep}}, {{"--data", a.data}}};
  base::refuse_overwriting_input("sweep", {"--out", a.out}, base::OutputKind::kFolder, inputs);
  base::refuse_overwriting_input("sweep", {"--out", a.out + "/sweep.json"}, base::OutputKind::kFile, inputs);
  const SweepPlan plan = read_sweep(a.sweep, a.data);
  if (!a.run.empty()) {
    bool known = false;
    std::string names;
    for (const auto& run : plan.runs) {
      known = known || run.name == a.run;
      names += (names.empty() ? "" : ", ") + run.name;
    }
    if (!known) throw std::runtime_error("sweep: --run " + a.run + ": found no run of that name in " + a.sweep + ", expected one of: " + names);
  }
  fs::create_directories(out / "runs");
  check_against_stored(plan, out);
  if (!a.run.empty() && fs::exists(out / "sweep.json")) return plan;
  base::write_file_atomic((out / "sweep.json").string(), plan_to_json(plan).dump(2) + "\n");
  for (const auto& e : plan.evaluation)
    base::write_file_atomic((out / ("tasks-" + e.name + ".json")).string(), e.tasks.dump(2) + "\n");
  return plan;
}

void run_local(const SweepArgs& a, const SweepPlan& plan, const fs::path& out) {
  int started = 0, failed = 0, index = 0;
  for (const auto& run : plan.runs) {
    ++index;
    if (!a.run.empty() && run.name != a.run) continue;
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
      // EX_TEMPFAIL, as pretrain's own early stop: a SLURM array task requeues on it.
      std::cerr << "sweep: " << e.what() << "; run the same command again to resume" << std::endl;
      throw CLI::RuntimeError(train::kExitPreempted);
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

// The job of every array task: the site file < the runs' "slurm" section < flags; one node
// group holding the sweep's ranks, the command started once in the batch shell.
slurm::JobSpec array_job(const SweepArgs& a, const SweepPlan& plan, const fs::path& out) {
  const json& slurm_section = plan.runs.front().config.contains("slurm") ? plan.runs.front().config["slurm"] : json::object();
  for (const auto& run : plan.runs)
    if (run.config.value("slurm", json::object()) != slurm_section)
      throw std::runtime_error(a.sweep + ": run '" + run.name + "': slurm: found settings that differ from run '" +
                               plan.runs.front().name + "', expected one \"slurm\" section for the whole array");
  slurm::JobSpec spec;
  spec.job_name = "gf-sweep";
  spec.requeue_exit_code = train::kExitPreempted;
  slurm::apply_layer(spec, slurm::resolve_site(a.site));
  slurm::apply_layer(spec, train::parse_run_config(plan.runs.front().config, a.sweep).slurm);
  if (!a.time.empty()) spec.time = a.time;
  if (plan.ranks % spec.nodes != 0)
    throw std::runtime_error(a.sweep + ": ranks: found " + std::to_string(plan.ranks) + " over slurm.nodes " + std::to_string(spec.nodes) +
                             ", expected a multiple of the node count");
  spec.ntasks_per_node = plan.ranks / spec.nodes;
  spec.command_starts_ranks = true;
  spec.array_throttle = a.parallel;
  spec.run_dir = out.string();
  spec.work_dir = fs::current_path().string();
  if (spec.signal != "USR1" && spec.signal != "SIGUSR1")
    throw std::runtime_error(a.sweep + ": slurm: signal: found \"" + spec.signal + "\", expected USR1 (the signal pretrain checkpoints and stops on)");
  return spec;
}

// Submits the unfinished runs as one array, unless a job of this sweep may still run them.
void submit_array(const SweepArgs& a, const SweepPlan& plan, const fs::path& out) {
  slurm::JobSpec spec = array_job(a, plan, out);
  std::vector<std::string> pending;
  for (const auto& run : plan.runs)
    if (read_run_state(run_dir(out.string(), run.name)).state != "done") pending.push_back(run.name);
  if (pending.empty()) {
    std::cout << "sweep: all " << plan.runs.size() << " runs done, nothing to submit (greenfound report " << out.string() << ")" << std::endl;
    return;
  }
  const auto ids = slurm::recorded_job_ids(out.string());
  if (!a.dry_run && !ids.empty()) {
    const slurm::JobState job = slurm::query_job(ids.back());
    bool active = kActiveStates.count(job.state) > 0;
    for (const auto& task : job.tasks) active = active || kActiveStates.count(task.state) > 0;
    if (active)
      throw std::runtime_error("sweep: " + out.string() + ": job " + ids.back() + " of this sweep is " + job.state +
                               ", expected none queued or running (wait for it, or greenfound cancel " + out.string() + ")");
  }
  for (const auto& name : pending) spec.array_tasks.push_back({"--run", name});
  std::vector<std::string> command{self_executable(), "sweep", fs::absolute(a.sweep).lexically_normal().string(), "--out", out.string()};
  if (!a.data.empty()) command.insert(command.end(), {"--data", fs::absolute(a.data).lexically_normal().string()});

  const std::string script = slurm::render_sbatch(spec, command);  // validates first
  if (!a.dry_run && !slurm::on_path("sbatch"))
    throw std::runtime_error("sbatch: not found on PATH; --slurm needs a SLURM client (--dry-run only writes the script)");
  const std::string path = slurm::write_script(out.string(), script);
  if (a.dry_run) {
    std::cout << script << "\n# written to " << path << " (dry run: not submitted)\n";
    return;
  }
  const std::string job = slurm::submit(path, out.string());
  std::cout << "submitted job " << job << " (array of " << pending.size() << " run(s), " << job << "_0.." << job << "_"
            << pending.size() - 1;
  if (a.parallel > 0) std::cout << ", at most " << a.parallel << " at once";
  std::cout << ")\n  script: " << path << "\n  logs:   " << out.string() << "/slurm/" << job << "_<task>.out\n  follow: greenfound status "
            << out.string() << "\n";
}

void run_sweep(const SweepArgs& a) {
  const fs::path out = fs::absolute(a.out).lexically_normal();
  const SweepPlan plan = prepare(a, out);
  if (a.slurm) return submit_array(a, plan, out);
  run_local(a, plan, out);
}

}  // namespace

void setup_sweep(CLI::App& sub) {
  auto args = std::make_shared<SweepArgs>();
  sub.add_option("sweep", args->sweep, "Sweep file: base config, axes (grid or list), evaluation")->required();
  sub.add_option("--out", args->out, "Sweep folder (sweep.json, runs/<name>/)")->required();
  sub.add_option("--data", args->data, "Packed dataset (replaces the sweep file's \"data\")");
  auto* local = sub.add_flag("--local", args->local, "Run on this machine, one run after another (the default)");
  auto* slurm = sub.add_flag("--slurm", args->slurm,
                             "Submit the unfinished runs as one SLURM job array (one run per task; requeued on preemption)");
  slurm->excludes(local);
  sub.add_option("--run", args->run, "Only this run (what each array task of --slurm runs)");
  sub.add_option("--max-runs", args->max_runs, "Start at most this many unfinished runs, then stop (0 = all)")
      ->check(CLI::NonNegativeNumber)
      ->excludes(slurm);
  sub.add_option("--parallel", args->parallel, "With --slurm: at most this many runs at once (the array's %K; 0 = no limit)")
      ->check(CLI::NonNegativeNumber)
      ->needs(slurm);
  sub.add_option("--site", args->site, "With --slurm: site defaults (JSON; default $GREENFOUND_SITE)")->needs(slurm);
  sub.add_option("--time", args->time, "With --slurm: each task's time limit, HH:MM:SS or D-HH:MM:SS (default: the config's slurm.time)")
      ->needs(slurm);
  sub.add_flag("--dry-run", args->dry_run, "With --slurm: write and print the array's script, do not submit")->needs(slurm);
  sub.callback([args] { run_sweep(*args); });
}

}  // namespace gf::launcher
