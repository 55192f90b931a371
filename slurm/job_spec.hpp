#pragma once
// What one SLURM job asks for, filled from JSON in one place and validated in one place.
//
// Precedence (lowest first): JobSpec's defaults < site file (`--site FILE` or
// $GREENFOUND_SITE) < the run config's "slurm" section < command-line flags. The site file
// and the "slurm" section share one set of keys (those of JobSpec, snake_case); objects
// (environment) merge key by key, everything else (lists included) is replaced.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "base/enum_names.hpp"

namespace gf::base {
class Section;  // base/json_reader.hpp
}

namespace gf::slurm {

// Exit code with which a stage says "I stopped early on a preemption/time-limit signal and
// wrote a checkpoint; requeue me". 75 = EX_TEMPFAIL of <sysexits.h> ("try again later").
// train/ owns the trainer's constant (the launcher passes it in JobSpec::requeue_exit_code);
// this is the value both sides agree on.
constexpr int kRequeueExitCode = 75;

// How ranks start inside the allocation. Debian's Open MPI has PMIx but no PMI-1/2, so srun
// must be given --mpi=pmix; mpirun works too (it finds the allocation through SLURM's env).
enum class RankLauncher { kSrun, kMpirun };
inline constexpr base::EnumName<RankLauncher> kRankLauncherNames[] = {{"srun", RankLauncher::kSrun},
                                                                       {"mpirun", RankLauncher::kMpirun}};

struct JobSpec {
  std::string job_name = "greenfound";
  int nodes = 1;
  // Ranks per node; 0 = the default: one per GPU on GPU jobs (greenfound runs one rank per
  // GPU, each taking GPU <local rank>), else 1. On GPU jobs any other count is refused: fewer
  // ranks leave GPUs idle, more make two ranks share one.
  int ntasks_per_node = 0;
  int gpus_per_node = 0;  // 0 = CPU-only job
  std::string gpu_type;   // "" = any GPU; else --gpus-per-node=<type>:<n>
  int cpus_per_task = 1;  // also OMP_NUM_THREADS of every rank
  std::string time = "01:00:00";
  std::string partition;  // "" = the cluster's default partition
  std::string account;
  std::string qos;
  std::string mem;  // e.g. "64G" per node; "" = the cluster's default

  // Array jobs: either a plain SLURM spec ("0-9%2", every task runs the same command and
  // reads $SLURM_ARRAY_TASK_ID), or per-task argument lists (task i appends array_tasks[i]
  // to the command; the spec then is "0-<n-1>" plus "%<array_throttle>" when > 0).
  std::string array;
  std::vector<std::vector<std::string>> array_tasks;
  int array_throttle = 0;

  // Warning signal before the time limit (USR1 or USR2); sent to the batch shell (B:),
  // which forwards it to the ranks. SIGTERM (preemption, scancel, time limit) SLURM sends to
  // the ranks itself; the batch shell only outlives them.
  std::string signal = "USR1";
  int signal_seconds = 120;
  bool requeue = true;
  int requeue_exit_code = kRequeueExitCode;

  RankLauncher launcher = RankLauncher::kSrun;
  // The command runs once, in the batch shell, and starts its own ranks as job steps
  // (`greenfound sweep --run`, whose stages each `launch` srun); `launcher` is then unused.
  bool command_starts_ranks = false;
  std::vector<std::string> modules;       // `module load` each, in order, before the ranks start
  std::vector<std::string> extra_sbatch;  // extra directives, written after "#SBATCH "
  std::map<std::string, std::string> environment;  // exported before the ranks start

  std::string run_dir;   // absolute; the script lives in <run_dir>/slurm/
  std::string work_dir;  // absolute; the job's working directory (--chdir)
  std::string output;    // "" = <run_dir>/slurm/%j.out (arrays: %A_%a.out); %j/%A/%a allowed
  std::string error;     // "" = same file as output

  int ranks_per_node() const { return ntasks_per_node > 0 ? ntasks_per_node : std::max(1, gpus_per_node); }
  int total_tasks() const { return nodes * ranks_per_node(); }
  bool is_array() const { return !array.empty() || !array_tasks.empty(); }
};

// The settings one source gives (a site file, a run config's "slurm" section): only the
// keys it names replace what the layers below it set.
struct JobSpecLayer {
  JobSpec values;               // the named fields' values (the others are unused)
  std::set<std::string> given;  // the keys it names
};

// Reads a layer from `section` (JobSpec's keys, snake_case). Unknown keys and wrong types are
// base::FieldErrors naming the source and the key ("site.json: gpus_per_node: found "8",
// expected an integer").
void read_job_spec_layer(base::Section& section, JobSpecLayer& layer);
// `object` (a site file's contents, or a "slurm" section named `path`) as a layer.
JobSpecLayer job_spec_layer_from_json(const nlohmann::json& object, const std::string& path, const std::string& source);
// The keys the layer names with their values (what read_job_spec_layer reads back).
nlohmann::json to_json(const JobSpecLayer& layer);
// Puts `layer` over `spec`: its given fields replace spec's, environment merges key by key.
void apply_layer(JobSpec& spec, const JobSpecLayer& layer);

// Reads a site file (a JSON object with JobSpec keys). Errors name the file.
JobSpecLayer load_site(const std::string& path);

// The site file to use: `explicit_path` when not empty, else $GREENFOUND_SITE when set, else
// none (an empty layer).
JobSpecLayer resolve_site(const std::string& explicit_path);

// Resource and field checks done before anything is written or submitted; throws a
// std::runtime_error naming the field, what was found and what was expected.
void validate(const JobSpec& spec);

// "HH:MM:SS", "MM:SS", "MM", "D-HH", "D-HH:MM", "D-HH:MM:SS" (sbatch --time) → seconds;
// throws on anything else.
long parse_time_limit(const std::string& text);

}  // namespace gf::slurm
