#include "slurm/sbatch_script.hpp"

#include <sstream>

namespace gf::slurm {
namespace {

std::string join_quoted(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : " ") + shell_quote(w);
  return out;
}

std::string signal_name(const std::string& signal) {
  return signal.rfind("SIG", 0) == 0 ? signal.substr(3) : signal;
}

std::string array_spec(const JobSpec& spec) {
  if (!spec.array.empty()) return spec.array;
  std::string out = "0-" + std::to_string(spec.array_tasks.size() - 1);
  if (spec.array_throttle > 0) out += "%" + std::to_string(spec.array_throttle);
  return out;
}

void write_directives(std::ostream& os, const JobSpec& spec) {
  const std::string log_dir = spec.run_dir + "/slurm/";
  const std::string output = spec.output.empty() ? log_dir + (spec.is_array() ? "%A_%a.out" : "%j.out") : spec.output;

  const int ranks = spec.ranks_per_node();
  os << "# Resources: " << spec.nodes << (spec.nodes == 1 ? " node" : " nodes") << " x " << ranks
     << (ranks == 1 ? " rank" : " ranks") << " per node = " << spec.total_tasks()
     << (spec.total_tasks() == 1 ? " rank" : " ranks");
  if (spec.gpus_per_node > 0)
    os << ", " << spec.gpus_per_node << (spec.gpu_type.empty() ? "" : " " + spec.gpu_type) << " GPU"
       << (spec.gpus_per_node == 1 ? "" : "s") << " per node (one rank per GPU)";
  else
    os << ", CPU only";
  os << ", " << spec.cpus_per_task << " CPU" << (spec.cpus_per_task == 1 ? "" : "s") << " (threads) per rank.\n";
  os << "#SBATCH --job-name=" << spec.job_name << "\n";
  os << "#SBATCH --nodes=" << spec.nodes << "\n";
  os << "#SBATCH --ntasks-per-node=" << ranks << "\n";
  if (spec.gpus_per_node > 0)
    os << "#SBATCH --gpus-per-node=" << (spec.gpu_type.empty() ? "" : spec.gpu_type + ":") << spec.gpus_per_node << "\n";
  os << "#SBATCH --cpus-per-task=" << spec.cpus_per_task << "\n";
  if (!spec.mem.empty()) os << "#SBATCH --mem=" << spec.mem << "\n";
  os << "#SBATCH --time=" << spec.time << "\n";
  if (!spec.partition.empty()) os << "#SBATCH --partition=" << spec.partition << "\n";
  if (!spec.account.empty()) os << "#SBATCH --account=" << spec.account << "\n";
  if (!spec.qos.empty()) os << "#SBATCH --qos=" << spec.qos << "\n";
  if (spec.is_array()) {
    os << "# Array: " << (spec.array_tasks.empty() ? "every task runs the same command; it reads $SLURM_ARRAY_TASK_ID."
                                                    : "task i runs the command with the arguments of case i below.")
       << "\n";
    os << "#SBATCH --array=" << array_spec(spec) << "\n";
  }
  const std::string sig = signal_name(spec.signal);
  os << "# Preemption and time limit: SIG" << sig << " to this batch shell " << spec.signal_seconds
     << " s before the limit;\n"
     << "# it is forwarded to every rank, the ranks checkpoint and exit with " << spec.requeue_exit_code << ", and the job\n"
     << "# requeues itself" << (spec.requeue ? "" : " (disabled: requeue is off)") << ". A requeued run appends to the same log.\n";
  os << "#SBATCH --signal=B:" << sig << "@" << spec.signal_seconds << "\n";
  os << (spec.requeue ? "#SBATCH --requeue\n" : "#SBATCH --no-requeue\n");
  os << "#SBATCH --open-mode=append\n";
  os << "#SBATCH --output=" << output << "\n";
  if (!spec.error.empty()) os << "#SBATCH --error=" << spec.error << "\n";
  if (!spec.work_dir.empty()) os << "#SBATCH --chdir=" << spec.work_dir << "\n";
  if (!spec.extra_sbatch.empty()) {
    os << "# Site and config directives.\n";
    for (const auto& line : spec.extra_sbatch) os << "#SBATCH " << line << "\n";
  }
}

void write_environment(std::ostream& os, const JobSpec& spec) {
  if (!spec.modules.empty()) {
    os << "\n# Site modules.\n";
    for (const auto& module : spec.modules) os << "module load " << module << "\n";
  }
  os << "\n# Environment of every rank: one thread per CPU of the task.\n";
  os << "export OMP_NUM_THREADS=" << spec.cpus_per_task << "\n";
  for (const auto& [name, value] : spec.environment) os << "export " << name << "=" << shell_quote(value) << "\n";
  if (spec.launcher == RankLauncher::kMpirun) {
    os << "# Open MPI refuses to start as root unless told (test clusters run jobs as root).\n"
       << "if [ \"$(id -u)\" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi\n";
  }
}

void write_array_cases(std::ostream& os, const JobSpec& spec) {
  os << "\n# Array sweep: the arguments of this task.\n";
  os << "case \"$SLURM_ARRAY_TASK_ID\" in\n";
  for (size_t i = 0; i < spec.array_tasks.size(); ++i)
    os << "  " << i << ") task_args=(" << join_quoted(spec.array_tasks[i]) << ") ;;\n";
  os << "  *) echo \"greenfound: no arguments for array task $SLURM_ARRAY_TASK_ID\" >&2; exit 2 ;;\n";
  os << "esac\n";
}

void write_launch(std::ostream& os, const JobSpec& spec, const std::vector<std::string>& command) {
  const std::string sig = signal_name(spec.signal);
  os << "\n# bash runs a trap only between commands, so the ranks run in the background and the\n"
     << "# shell waits. SIG" << sig << " (from --signal, `scancel --batch` or `scancel --full`) is passed on to\n"
     << "# the launcher, which forwards it to every rank. SIGTERM is not passed on: SLURM sends it to\n"
     << "# the ranks itself (preemption, scancel, time limit), and a TERM to srun would end the\n"
     << "# step at once; the shell only keeps waiting for the ranks' checkpoint.\n";
  os << "step_pid=\n";
  os << "on_signal() { interrupted=1; [ -n \"$step_pid\" ] && kill -" << sig << " \"$step_pid\" 2>/dev/null; }\n";
  os << "trap on_signal " << sig << "\n";
  os << "trap 'interrupted=1' TERM\n";

  const std::string args = join_quoted(command) + (spec.array_tasks.empty() ? "" : " \"${task_args[@]}\"");
  if (spec.command_starts_ranks) {
    os << "\n# One process here, in the batch shell: it starts each stage's " << spec.total_tasks()
       << (spec.total_tasks() == 1 ? " rank" : " ranks") << " itself\n"
       << "# (srun job steps inside this allocation) and passes the signals on to them.\n";
  } else if (spec.launcher == RankLauncher::kSrun) {
    os << "\n# One rank per task. --mpi=pmix: Debian's Open MPI has PMIx but no PMI-2. srun does not\n"
       << "# inherit --cpus-per-task from sbatch since SLURM 22.05, so it is passed again. No\n"
       << "# --kill-on-bad-exit: a rank leaving with the requeue code must not kill rank 0 while it\n"
       << "# writes the checkpoint (a crashed rank is caught by greenfound's collective watchdog).\n";
    if (spec.gpus_per_node > 0)
      os << "# One rank per GPU: every rank sees its node's " << spec.gpus_per_node << " GPU"
         << (spec.gpus_per_node == 1 ? "" : "s") << " and takes GPU <its local rank> (SLURM_LOCALID),\n"
         << "# so none sits idle and none is shared.\n";
    os << "srun --mpi=pmix --cpus-per-task=\"$SLURM_CPUS_PER_TASK\" \\\n";
  } else {
    os << "\n# One rank per task, started by mpirun from the allocation SLURM describes; threads are\n"
       << "# not bound to one core each (every rank runs OMP_NUM_THREADS threads).\n";
    os << "mpirun -np \"$SLURM_NTASKS\" --map-by ppr:" << spec.ranks_per_node() << ":node --bind-to none -x OMP_NUM_THREADS";
    for (const auto& [name, value] : spec.environment) os << " -x " << name;
    os << " \\\n";
  }
  os << (spec.command_starts_ranks ? "" : "  ") << args << " &\n";
  os << "step_pid=$!\n";
  os << "step_rc=\n";
  os << "while [ -z \"$step_rc\" ]; do\n"
     << "  interrupted=0\n"
     << "  wait \"$step_pid\"\n"
     << "  rc=$?\n"
     << "  [ \"$interrupted\" -eq 0 ] && step_rc=$rc\n"
     << "done\n";

  os << "\nif [ \"$step_rc\" -eq " << spec.requeue_exit_code << " ]; then\n";
  if (spec.requeue) {
    // An array task names itself A_i: its SLURM_JOB_ID can equal the array's id A (the task
    // left holding the array's record), and `scontrol requeue A` requeues every task.
    const std::string self = spec.is_array() ? "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}" : "$SLURM_JOB_ID";
    os << "  # The ranks checkpointed and stopped early: back to the queue; the rerun resumes.\n";
    if (spec.is_array()) os << "  # This task only (A_i): the array's id would requeue every task.\n";
    os << "  echo \"greenfound: ranks stopped for requeue (exit " << spec.requeue_exit_code << "): requeueing job " << self
       << " at $(date -Is)\"\n"
       << "  scontrol requeue \"" << self << "\" ||\n"
       << "    echo \"greenfound: scontrol requeue " << self << " failed; resubmit with: sbatch " << spec.run_dir
       << "/slurm/job.sbatch\" >&2\n";
  } else {
    os << "  echo \"greenfound: ranks stopped early (exit " << spec.requeue_exit_code
       << ") and requeue is off; resubmit with: sbatch " << spec.run_dir << "/slurm/job.sbatch\" >&2\n";
  }
  os << "fi\n";
  os << "echo \"greenfound: job $SLURM_JOB_ID ranks exited with $step_rc at $(date -Is)\"\n";
  os << "exit \"$step_rc\"\n";
}

}  // namespace

std::string shell_quote(const std::string& word) {
  if (!word.empty() && word.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_@%+=:,./-") ==
                           std::string::npos)
    return word;
  std::string out = "'";
  for (char c : word) out += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string render_sbatch(const JobSpec& spec, const std::vector<std::string>& command) {
  validate(spec);
  std::ostringstream os;
  os << "#!/bin/bash\n"
     << "# greenfound job script, written by `greenfound submit`; submit it again with\n"
     << "#   sbatch " << spec.run_dir << "/slurm/job.sbatch\n"
     << "#\n";
  write_directives(os, spec);
  os << "\nset -u\n";
  os << "echo \"greenfound: job $SLURM_JOB_ID" << (spec.is_array() ? " (array task ${SLURM_ARRAY_TASK_ID:-})" : "")
     << " on $SLURM_JOB_NODELIST, restart ${SLURM_RESTART_COUNT:-0}, $(date -Is)\"\n";
  write_environment(os, spec);
  if (!spec.array_tasks.empty()) write_array_cases(os, spec);
  write_launch(os, spec, command);
  return os.str();
}

}  // namespace gf::slurm
