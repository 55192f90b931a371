#pragma once
// Run configs on disk: a JSON file plus `--set a.b=value` overrides. Typing and validation of
// the fields happen in one place, train/run_config.cpp; this only reads and merges.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace gf::launcher {

// Reads `path` (errors name the file and the JSON parse position), then applies each
// "dotted.key=value" override; value is parsed as JSON when it parses (numbers, true, [..]),
// else taken as a string. Sections the file leaves out are created; whether the field exists
// is for parse_run_config to say (`--set dist.timeout_s=10` works on any config).
nlohmann::json load_config(const std::string& path, const std::vector<std::string>& overrides);
void apply_override(nlohmann::json& config, const std::string& assignment);

}  // namespace gf::launcher
