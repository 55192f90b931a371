#pragma once
// Talks to SLURM through its command-line tools (sbatch, squeue, scontrol, sacct, scancel):
// they are the stable interface every site has, whatever the version of its libraries.
// Job ids of a run are recorded, one per line, in <run_dir>/slurm/job_ids.
#include <string>
#include <utility>
#include <vector>

namespace gf::slurm {

// Writes <run_dir>/slurm/job.sbatch (temp name, fsync, rename; mode 0755) and returns its path.
std::string write_script(const std::string& run_dir, const std::string& script);
// Writes <run_dir>/slurm/<name> the same way and returns its path.
std::string write_run_file(const std::string& run_dir, const std::string& name, const std::string& text, int mode);

// Submits with `sbatch --parsable SCRIPT` and appends the job id to <run_dir>/slurm/job_ids.
// Throws when sbatch is not on PATH, or when sbatch rejects the script (its stderr quoted).
std::string submit(const std::string& script_path, const std::string& run_dir);

// Job ids recorded for a run, oldest first (empty when none).
std::vector<std::string> recorded_job_ids(const std::string& run_dir);

struct JobState {
  std::string job_id;
  std::string state;      // PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, ...; "UNKNOWN"
  std::string reason;     // squeue/scontrol Reason ("None" when there is none)
  std::string exit_code;  // "0:0" (code:signal) once known, else ""
  int restarts = 0;       // times the job was requeued, when the source reports it
  std::string node_list;  // the nodes it runs or ran on ("gf-h[1-2]"), when scontrol knows the job
  std::string source;     // which tool answered: "squeue", "scontrol", "sacct", or "" for none
  // Array jobs: one entry per task (job_id "A_i"), in task order; empty otherwise.
  std::vector<JobState> tasks;
};

// Asks squeue, then `scontrol show job`, then sacct, and returns the first answer. A job
// none of them knows (finished and forgotten, no accounting) has state "UNKNOWN".
JobState query_job(const std::string& job_id);

// Nodes of `node_list` that SLURM holds down or drained, each with its reason
// ({"gf-h2", "Not responding"}); empty when all are up or SLURM does not answer.
std::vector<std::pair<std::string, std::string>> unavailable_nodes(const std::string& node_list);

// `scancel JOB` (arrays: every task). Throws with scancel's message when it fails.
void cancel(const std::string& job_id);

// `scontrol requeue JOB`. Throws with scontrol's message when it fails.
void requeue(const std::string& job_id);

// True when `tool` (e.g. "sbatch") is an executable found on $PATH.
bool on_path(const std::string& tool);

}  // namespace gf::slurm
