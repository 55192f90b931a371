#include "launcher/config_file.hpp"

#include <sstream>
#include <stdexcept>

#include "base/json_reader.hpp"

namespace gf::launcher {

nlohmann::json load_config(const std::string& path, const std::vector<std::string>& overrides) {
  nlohmann::json config = base::load_json_file(path);
  if (config.is_object())
    for (const auto& item : config.items())
      if (item.value().is_null())
        throw std::runtime_error(path + ": " + item.key() + ": found null, expected " +
                                 (item.key() == "description" ? "a string" : "a JSON object") + " (or the key left out for the defaults)");
  for (const auto& assignment : overrides) apply_override(config, assignment);
  return config;
}

void apply_override(nlohmann::json& config, const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw std::runtime_error("--set " + assignment + ": expected key.path=value");
  const std::string key = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);

  std::vector<std::string> path;
  std::stringstream parts(key);
  for (std::string part; std::getline(parts, part, '.');) path.push_back(part);
  // A section the file leaves out is created: whether the field exists is the schema's
  // question, which parse_run_config answers (unknown fields are errors there).
  nlohmann::json* node = &config;
  std::string walked;
  for (size_t i = 0; i + 1 < path.size(); ++i) {
    walked += (walked.empty() ? "" : ".") + path[i];
    // A section written as null is a mistake to report, not an empty section to fill in.
    if (node->contains(path[i]) && node->at(path[i]).is_null())
      throw std::runtime_error("--set " + key + ": " + walked + ": found null in the config, expected a JSON object (or the key left out for the defaults)");
    nlohmann::json& next = (*node)[path[i]];
    if (next.is_null()) next = nlohmann::json::object();
    if (!next.is_object()) throw std::runtime_error("--set " + key + ": " + walked + " is not a section of the config");
    node = &next;
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
