#pragma once
// Renders a JobSpec and a command into a readable, commented sbatch script.
//
// The script:
//  - asks for the resources, `--signal=B:<SIG>@<seconds>`, `--requeue` and
//    `--open-mode=append` (a requeued run appends to the same log instead of truncating it);
//  - loads the site's modules, exports the environment (OMP_NUM_THREADS = cpus_per_task);
//  - starts the ranks in the background (`srun --mpi=pmix ...` or `mpirun ...`) and waits, so
//    that the batch shell's traps run while the ranks work;
//  - forwards the warning signal and SIGTERM from the batch shell to the ranks (srun and
//    mpirun both pass USR1/USR2/TERM on to every task), so every rank sees it whether SLURM
//    signalled the batch shell (`B:`, `scancel --batch`), the steps or both (`--full`);
//  - when the ranks exit with requeue_exit_code, runs `scontrol requeue $SLURM_JOB_ID` (an
//    array task: `A_i`, that task only): the job goes back to the queue and, when it runs
//    again, the same command resumes (pretrain is always given `--resume auto` by the launcher).
#include <string>
#include <vector>

#include "slurm/job_spec.hpp"

namespace gf::slurm {

// `command` is the argv of one rank (argv[0] an absolute path). Throws when validate(spec)
// does.
std::string render_sbatch(const JobSpec& spec, const std::vector<std::string>& command);

// POSIX shell quoting: the word unchanged when it has only safe characters, else in single
// quotes with embedded quotes escaped.
std::string shell_quote(const std::string& word);

}  // namespace gf::slurm
