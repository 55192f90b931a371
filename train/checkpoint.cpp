#include "train/checkpoint.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <regex>
#include <stdexcept>

#include "base/atomic_file.hpp"
#include "base/json_reader.hpp"
#include "model/weights.hpp"

namespace gf::train {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int kCheckpointFormat = 2;  // 2: the loss scaler's state
const char* const kModelFile = "model.safetensors";
const char* const kOptimizerFile = "optimizer.safetensors";
const char* const kStateFile = "state.json";
const std::string kRngPrefix = "rng.";
const std::string kCarriedPrefix = "carried_grad.";
const std::regex kStepName("step-[0-9]{8,}");

std::string checkpoint_name(int64_t step) {
  char name[32];
  std::snprintf(name, sizeof(name), "step-%08lld", static_cast<long long>(step));
  return name;
}

json read_state_json(const std::string& dir) {
  const std::string path = dir + "/" + kStateFile;
  if (!std::filesystem::exists(path)) throw std::runtime_error(path + ": missing, expected a complete checkpoint folder");
  return base::load_json_file(path);
}

// Throws unless every file state.json lists is present with its recorded size.
json verified_state(const std::string& dir) {
  json state = read_state_json(dir);
  if (state.value("format", 0) != kCheckpointFormat)
    throw std::runtime_error(dir + "/" + kStateFile + ": format: found " + state.value("format", json(nullptr)).dump() +
                             ", expected " + std::to_string(kCheckpointFormat));
  for (const auto& item : state.at("files").items()) {
    const fs::path file = fs::path(dir) / item.key();
    std::error_code error;
    const auto size = fs::file_size(file, error);
    if (error) throw std::runtime_error(file.string() + ": missing from the checkpoint");
    if (size != item.value().get<uintmax_t>())
      throw std::runtime_error(file.string() + ": size: found " + std::to_string(size) + " bytes, expected " +
                               item.value().dump() + " (truncated checkpoint)");
  }
  return state;
}

bool is_complete(const fs::path& dir) {
  try {
    verified_state(dir.string());
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

std::string megabytes(uintmax_t bytes) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f MB", static_cast<double>(bytes) / 1e6);
  return text;
}

std::string significant(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.4g", value);
  return text;
}

void print_one(const fs::path& dir, const json& state, std::ostream& out) {
  const json& model = state.at("config").value("model", json::object());
  out << dir.filename().string() << ": step " << state.at("step") << " (epoch " << state.at("epoch") << ", "
      << state.at("epoch_step") << " steps into it), last loss " << significant(state.at("last_loss").get<double>()) << ", "
      << model.value("arch", std::string("?")) << " at " << model.value("img_size", 0) << " px, config "
      << state.at("config_hash").get<std::string>().substr(0, 12);
  uintmax_t bytes = 0;
  for (const auto& item : state.at("files").items()) bytes += item.value().get<uintmax_t>();
  out << ", " << megabytes(bytes) << "\n";
}

}  // namespace

bool is_checkpoint_or_run_dir(const std::string& path) {
  return fs::is_regular_file(fs::path(path) / kStateFile) || fs::is_directory(fs::path(path) / "checkpoints");
}

void print_checkpoint_summary(const std::string& path, std::ostream& out) {
  if (fs::is_regular_file(fs::path(path) / kStateFile)) {
    out << "checkpoint " << path << "\n  ";
    print_one(path, verified_state(path), out);  // throws naming a missing or truncated file
    return;
  }
  const auto complete = list_checkpoints(path);
  out << "run " << path << ": " << complete.size() << " complete checkpoint" << (complete.size() == 1 ? "" : "s")
      << (complete.empty() ? "" : ", newest last") << "\n";
  for (const auto& dir : complete) {
    out << "  ";
    print_one(dir, read_state_json(dir), out);
  }
  for (const auto& other : incomplete_checkpoints(path))
    out << "  incomplete " << fs::path(other.path).filename().string() << ": " << other.why << "\n";
}

std::vector<std::string> list_checkpoints(const std::string& run_dir) {
  const fs::path root = fs::path(run_dir) / "checkpoints";
  std::vector<std::string> found;
  if (!fs::is_directory(root)) return found;
  for (const auto& entry : fs::directory_iterator(root))
    if (entry.is_directory() && std::regex_match(entry.path().filename().string(), kStepName) && is_complete(entry.path()))
      found.push_back(entry.path().string());
  // Names are zero-padded, so text order is step order.
  std::sort(found.begin(), found.end(), [](const std::string& a, const std::string& b) {
    return a.size() != b.size() ? a.size() < b.size() : a < b;
  });
  return found;
}

std::string latest_checkpoint(const std::string& run_dir) {
  const auto all = list_checkpoints(run_dir);
  return all.empty() ? std::string() : all.back();
}

std::string last_good_checkpoint(const std::string& run_dir) {
  const auto all = list_checkpoints(run_dir);
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    try {
      model::require_finite(model::read_safetensors(*it + "/" + kModelFile).tensors, *it);
      return *it;
    } catch (const std::exception&) {
    }
  }
  return "";
}

std::vector<IncompleteCheckpoint> incomplete_checkpoints(const std::string& run_dir) {
  const fs::path root = fs::path(run_dir) / "checkpoints";
  std::vector<IncompleteCheckpoint> found;
  if (!fs::is_directory(root)) return found;
  const auto complete = list_checkpoints(run_dir);
  for (const auto& entry : fs::directory_iterator(root)) {
    const std::string path = entry.path().string();
    if (std::find(complete.begin(), complete.end(), path) != complete.end()) continue;
    IncompleteCheckpoint other{path, "a file, expected step-NNNNNNNN folders", false};
    if (entry.is_directory()) {
      try {
        verified_state(path);
        other.why = "complete, but not named step-NNNNNNNN";
      } catch (const std::exception& e) {
        other.why = e.what();
        other.torn = std::regex_match(entry.path().filename().string(), kStepName);
      }
    }
    found.push_back(std::move(other));
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.path < b.path; });
  return found;
}

std::string save_checkpoint(const std::string& run_dir, const Checkpoint& checkpoint, int64_t keep_last) {
  const fs::path root = fs::path(run_dir) / "checkpoints";
  fs::create_directories(root);
  const fs::path final_dir = root / checkpoint_name(checkpoint.state.step);
  if (is_complete(final_dir)) return final_dir.string();  // this step was already saved

  const fs::path temp_dir = root / (final_dir.filename().string() + ".tmp");
  fs::remove_all(temp_dir);
  fs::remove_all(final_dir);  // an incomplete leftover of the same step
  fs::create_directories(temp_dir);
  // Removes temp_dir on the way out: a write that fails (a full disk) leaves no half checkpoint
  // taking space; after the rename below there is nothing left there to remove.
  struct RemoveTemp {
    fs::path dir;
    ~RemoveTemp() {
      std::error_code ignored;
      fs::remove_all(dir, ignored);
    }
  } remove_temp{temp_dir};

  model::NamedTensors optimizer = checkpoint.optimizer;
  for (const auto& [name, tensor] : checkpoint.carried_grads) optimizer.emplace_back(kCarriedPrefix + name, tensor);
  for (const auto& [name, tensor] : checkpoint.rng) optimizer.emplace_back(kRngPrefix + name, tensor);
  model::write_safetensors((temp_dir / kModelFile).string(), checkpoint.model, {{"format", "pt"}});
  model::write_safetensors((temp_dir / kOptimizerFile).string(), optimizer, {{"format", "pt"}});

  const TrainingState& s = checkpoint.state;
  json state = {{"format", kCheckpointFormat},
                {"step", s.step},
                {"epoch", s.epoch},
                {"epoch_step", s.epoch_step},
                {"samples_seen", s.samples_seen},
                {"adam_step", s.adam_step},
                {"grad_scale", s.grad_scale},
                {"grad_scale_growth", s.grad_scale_growth},
                {"last_loss", s.last_loss},
                {"config_hash", s.config_hash},
                {"identity", s.identity},
                {"dataset", s.dataset},
                {"config", s.config}};
  json files = json::object();
  for (const char* name : {kModelFile, kOptimizerFile}) files[name] = fs::file_size(temp_dir / name);
  state["files"] = files;
  base::write_file_atomic((temp_dir / kStateFile).string(), state.dump(1));
  base::fsync_path(temp_dir.string());
  base::rename_durable(temp_dir.string(), final_dir.string());

  // Oldest first; the one just written is the newest.
  const auto all = list_checkpoints(run_dir);
  const auto keep = static_cast<size_t>(std::max<int64_t>(keep_last, 1));
  for (size_t i = 0; i + keep < all.size(); ++i) fs::remove_all(all[i]);
  return final_dir.string();
}

Checkpoint load_checkpoint(const std::string& path) {
  if (!fs::is_directory(path))
    throw std::runtime_error(path + ": not a folder, expected a checkpoint folder (run_dir/checkpoints/step-NNNNNNNN)");
  const json state = verified_state(path);
  Checkpoint checkpoint;
  TrainingState& s = checkpoint.state;
  s.step = state.at("step").get<int64_t>();
  s.epoch = state.at("epoch").get<int64_t>();
  s.epoch_step = state.at("epoch_step").get<int64_t>();
  s.samples_seen = state.at("samples_seen").get<int64_t>();
  s.adam_step = state.at("adam_step").get<int64_t>();
  s.grad_scale = state.at("grad_scale").get<double>();
  s.grad_scale_growth = state.at("grad_scale_growth").get<int64_t>();
  s.last_loss = state.at("last_loss").get<double>();
  s.config_hash = state.at("config_hash").get<std::string>();
  s.identity = state.at("identity");
  s.config = state.at("config");
  s.dataset = state.value("dataset", json::object());
  checkpoint.model = model::read_safetensors(path + "/" + kModelFile).tensors;
  model::require_finite(checkpoint.model, path + "/" + kModelFile);
  for (auto& [name, tensor] : model::read_safetensors(path + "/" + kOptimizerFile).tensors) {
    if (name.rfind(kRngPrefix, 0) == 0)
      checkpoint.rng.emplace_back(name.substr(kRngPrefix.size()), tensor);
    else if (name.rfind(kCarriedPrefix, 0) == 0)
      checkpoint.carried_grads.emplace_back(name.substr(kCarriedPrefix.size()), tensor);
    else
      checkpoint.optimizer.emplace_back(name, tensor);
  }
  return checkpoint;
}

CheckpointWeights load_checkpoint_weights(const std::string& path) {
  const json state = verified_state(path);
  // The wrapper's own tensors are not part of the encoder timm loads.
  static const std::regex kWrapperOnly("projector\\..*|ls_projector\\..*|corruption_token|pixel_head\\..*|mask_token");
  CheckpointWeights weights;
  for (auto& [name, tensor] : model::read_safetensors(path + "/" + kModelFile).tensors)
    if (!std::regex_match(name, kWrapperOnly)) weights.student.emplace_back(name, tensor);
  model::require_finite(weights.student, path + "/" + kModelFile);
  weights.vit = model::infer_vit_options(weights.student);
  const json& model_config = state.at("config").at("model");
  weights.vit.arch = model_config.at("arch").get<std::string>();
  weights.step = state.at("step").get<int64_t>();
  return weights;
}

}  // namespace gf::train
