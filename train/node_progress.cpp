#include "train/node_progress.hpp"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/atomic_file.hpp"
#include "base/json_reader.hpp"

namespace gf::train {

NodeProgress::NodeProgress(const std::string& run_dir, const dist::World& world)
    : writer_(world.local_rank == 0),
      path_(run_dir + "/nodes/" + world.host + ".json"),
      host_(world.host),
      ranks_(world.ranks_on(world.host)) {
  if (writer_) std::filesystem::create_directories(run_dir + "/nodes");
}

std::vector<NodeRecord> read_node_progress(const std::string& run_dir) {
  namespace fs = std::filesystem;
  std::vector<NodeRecord> nodes;
  std::error_code ignored;
  if (!fs::is_directory(run_dir + "/nodes", ignored)) return nodes;
  for (const auto& entry : fs::directory_iterator(run_dir + "/nodes")) {
    if (entry.path().extension() != ".json") continue;
    try {
      const nlohmann::json json = base::load_json_file(entry.path().string());
      base::Section item = base::Section::of(json, "", entry.path().string());
      NodeRecord node;
      item.read("host", node.host);
      item.read("ranks", node.ranks);
      item.read("step", node.step);
      item.read("epoch", node.epoch);
      item.read("time", node.time);
      item.finish();
      if (!node.host.empty()) nodes.push_back(std::move(node));
    } catch (const std::exception&) {
      // Being written by its node, or not ours: the next status reads it.
    }
  }
  std::sort(nodes.begin(), nodes.end(), [](const NodeRecord& a, const NodeRecord& b) { return a.host < b.host; });
  return nodes;
}

void NodeProgress::update(int64_t step, int64_t epoch, bool force) {
  if (!writer_) return;
  const auto now = std::chrono::steady_clock::now();
  if (!force && written_ && now - last_write_ < kMinInterval) return;
  last_write_ = now;
  written_ = true;
  const double time = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  const nlohmann::json record = {{"host", host_}, {"ranks", ranks_}, {"step", step}, {"epoch", epoch}, {"time", time}};
  base::write_file_atomic(path_, record.dump() + "\n");
}

}  // namespace gf::train
