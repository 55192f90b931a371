#include "launcher/config_file.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace gf::launcher {

nlohmann::json load_config(const std::string& path, const std::vector<std::string>& overrides) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open config file");
  nlohmann::json config;
  try {
    config = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    throw std::runtime_error(path + ": not valid JSON (" + e.what() + ")");
  }
  if (!config.is_object()) throw std::runtime_error(path + ": found " + std::string(config.type_name()) + ", expected a JSON object");
  for (const auto& assignment : overrides) apply_override(config, assignment);
  return config;
}

void apply_override(nlohmann::json& config, const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw std::runtime_error("--set " + assignment + ": expected key.path=value");
  const std::string key = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);

  nlohmann::json* node = &config;
  std::stringstream parts(key);
  std::string part, walked;
  std::vector<std::string> path;
  while (std::getline(parts, part, '.')) path.push_back(part);
  for (size_t i = 0; i + 1 < path.size(); ++i) {
    walked += (walked.empty() ? "" : ".") + path[i];
    if (!node->contains(path[i]) || !(*node)[path[i]].is_object())
      throw std::runtime_error("--set " + key + ": config has no section '" + walked + "'");
    node = &(*node)[path[i]];
  }
  nlohmann::json value;
  try {
    value = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error&) {
    value = text;
  }
  (*node)[path.back()] = value;
}

}  // namespace gf::launcher
