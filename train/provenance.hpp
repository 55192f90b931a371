#pragma once
// RUN_DIR/provenance.json: who ran each session of a run. A preempted and requeued run has
// several sessions, each on its own hosts, binary and libraries; `report` shows them all.
//
// {"sessions": [{"started": "2026-11-28T00:33:37Z", "start_step": 0, "host": "node1",
//   "ranks": 2, "ranks_per_node": 2, "threads_per_rank": 1, "device": "cuda:0",
//   "backend": "nccl", "greenfound": "a1b2c3d", "libtorch": "2.11.0", "cuda_runtime": "13.0",
//   "cuda_driver": "13.0", "cudnn": "9.19.0", "nccl": "2.28.9", "mpi": "Open MPI v4.1.4",
//   "gpus": ["NVIDIA H200"],
//   "hosts": [{"host": "node1", "ranks": "0-1", "gpus": ["0,1", "0,1"]},
//             {"host": "node2", "ranks": "2-3", "gpus": ["0,1", "0,1"]}]}]}
// Versions and "gpus" are rank 0's (dist/device.hpp); "" where a library or driver is absent.
// A host's "gpus": the CUDA_VISIBLE_DEVICES each of its ranks found, in rank order.
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "dist/world.hpp"

namespace gf::train {

// What the trainer knows of a session it starts.
struct Session {
  int64_t start_step = 0;
  std::string host;  // rank 0's
  int ranks = 1, ranks_per_node = 1, threads_per_rank = 1;
  std::string device, backend;
  dist::World world;  // every host and rank of the session
};

struct SessionHost {
  std::string host;
  std::string ranks;              // "2-3"
  std::vector<std::string> gpus;  // per rank on the host
};

// A session as provenance.json holds it: record_session adds when, and with which build and
// libraries.
struct SessionRecord : Session {
  std::string started, greenfound, libtorch, cuda_runtime, cuda_driver, cudnn, nccl, mpi;
  std::vector<std::string> gpus;
  std::vector<SessionHost> hosts;
};

struct Provenance {
  std::vector<SessionRecord> sessions;  // oldest first
};

nlohmann::json to_json(const Provenance& provenance);
// Errors are base::FieldErrors naming `source` and the field.
Provenance provenance_from_json(const nlohmann::json& json, const std::string& source);
// RUN_DIR/provenance.json ({} sessions when the file is absent).
Provenance read_provenance(const std::string& path);

// Appends `session` (with the time, this binary's commit and its library versions) to
// run_dir/provenance.json, written atomically; an unreadable old file is replaced.
void record_session(const std::string& run_dir, const Session& session);

}  // namespace gf::train
