#include "train/node_progress.hpp"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "data/atomic_file.hpp"

namespace gf::train {

NodeProgress::NodeProgress(const std::string& run_dir, const dist::World& world)
    : writer_(world.local_rank == 0),
      path_(run_dir + "/nodes/" + world.host + ".json"),
      host_(world.host),
      ranks_(world.ranks_on(world.host)) {
  if (writer_) std::filesystem::create_directories(run_dir + "/nodes");
}

void NodeProgress::update(int64_t step, int64_t epoch, bool force) {
  if (!writer_) return;
  const auto now = std::chrono::steady_clock::now();
  if (!force && written_ && now - last_write_ < kMinInterval) return;
  last_write_ = now;
  written_ = true;
  const double time = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  const nlohmann::json record = {{"host", host_}, {"ranks", ranks_}, {"step", step}, {"epoch", epoch}, {"time", time}};
  data::write_file_atomic(path_, record.dump() + "\n");
}

}  // namespace gf::train
