#pragma once
// RUN_DIR/nodes/<host>.json: where each node of the job is, written by the node's first rank
// (local rank 0) as it trains, so `greenfound status` shows every node's progress and a node
// that stopped is seen as one:
//   {"host": "node2", "ranks": "2-3", "step": 40, "epoch": 9, "time": 1764750000.5}
// ("time": seconds since the epoch of the last write). Written atomically, at most every
// kMinInterval and always at the end; rank 0 alone writes nothing else here.
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "dist/world.hpp"

namespace gf::train {

struct NodeRecord {
  std::string host, ranks;  // ranks: "2-3"
  int64_t step = 0, epoch = 0;
  double time = 0;  // seconds since the epoch of the last write
};

// Every RUN_DIR/nodes/*.json by host (none when the folder is absent); a torn or foreign file
// is skipped, as a node may be writing it.
std::vector<NodeRecord> read_node_progress(const std::string& run_dir);

class NodeProgress {
 public:
  NodeProgress(const std::string& run_dir, const dist::World& world);
  // After an optimizer step; `force` writes now (the run ends).
  void update(int64_t step, int64_t epoch, bool force = false);

 private:
  static constexpr std::chrono::seconds kMinInterval{2};
  bool writer_;
  std::string path_, host_, ranks_;
  std::chrono::steady_clock::time_point last_write_{};
  bool written_ = false;
};

}  // namespace gf::train
