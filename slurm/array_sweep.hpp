#pragma once
// Evaluation sweeps as SLURM job arrays: one (model, dataset) pair per array task, each task
// running one `embed`; `probe` then gathers the embeddings of every model per dataset.
//
// Sweep file (JSON):
//   {
//     "models":   {"green": "weights/green.safetensors",          // string: --weights PATH
//                  "dinov2": {"weights": "w/dinov2.pth", "img-size": 224}},  // object: --key value
//     "datasets": {"idrid": "packs/idrid",                         // string: --data PATH
//                  "brset": {"data": "packs/brset", "split": "all"}},
//     "pairs":    [["green", "idrid"], ["dinov2", "idrid"]]        // optional; default: every
//   }                                                              //   model x every dataset
// Task i appends its model's and dataset's flags and
// `--out <run_dir>/embeddings/<model>/<dataset>/embeddings.h5` to the submitted command
// (`greenfound embed [args]`): one folder per task, so the tasks' energy files (written next
// to --out) never share a file. Models are taken in key order, and datasets within each
// model, so task numbers are stable for a given file.
//
// Gathering: once the array has finished, one probe per dataset reads every model's file:
//   greenfound probe --embeddings green=<run_dir>/embeddings/green/idrid/embeddings.h5
//                                 dinov2=<run_dir>/embeddings/dinov2/idrid/embeddings.h5
//                    --tasks auto --out <run_dir>/probe/idrid
// (probe_commands() prints exactly these; `greenfound submit` shows them after submitting and
// records them in <run_dir>/slurm/probe_commands.sh.)
#include <string>
#include <vector>

namespace gf::slurm {

struct SweepTask {
  std::string model;
  std::string dataset;
  std::string output;              // absolute path of the embeddings file
  std::vector<std::string> args;   // flags appended to the command for this task
};

// Reads the sweep file; relative paths in it are left as they are (the job runs in the
// submission directory). Errors name the file and the key.
std::vector<SweepTask> load_sweep(const std::string& path, const std::string& run_dir);

// One `probe` command line per dataset (in first-seen order) over every model of the sweep.
std::vector<std::string> probe_commands(const std::vector<SweepTask>& tasks, const std::string& greenfound,
                                        const std::string& run_dir);

}  // namespace gf::slurm
