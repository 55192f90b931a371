#pragma once
// RUN_DIR/provenance.json: who ran each session of a run. A preempted and requeued run has
// several sessions, each on its own hosts, binary and libraries; `report` shows them all.
//
// {"sessions": [{"started": "2026-11-28T00:33:37Z", "start_step": 0, "host": "node1",
//   "ranks": 4, "ranks_per_node": 2, "threads_per_rank": 1, "device": "cpu",
//   "backend": "mpi", "greenfound": "a1b2c3d", "libtorch": "1.13.0", "mpi": "Open MPI v4.1.4",
//   "hosts": [{"host": "node1", "ranks": "0-1", "gpus": ["0,1", "0,1"]},
//             {"host": "node2", "ranks": "2-3", "gpus": ["0,1", "0,1"]}]}]}
// ("gpus": the CUDA_VISIBLE_DEVICES each rank on that host found, in rank order.)
#include <cstdint>
#include <string>

#include "dist/world.hpp"

namespace gf::train {

struct Session {
  int64_t start_step = 0;
  std::string host;  // rank 0's
  int ranks = 1, ranks_per_node = 1, threads_per_rank = 1;
  std::string device, backend;
  dist::World world;  // every host and rank of the session
};

// Appends `session` (with the time, this binary's commit and its library versions) to
// run_dir/provenance.json, written atomically; an unreadable old file is replaced.
void record_session(const std::string& run_dir, const Session& session);

}  // namespace gf::train
