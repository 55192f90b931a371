#include "base/output_paths.hpp"

#include <algorithm>
#include <filesystem>
#include <stdexcept>

namespace gf::base {
namespace {

namespace fs = std::filesystem;

fs::path resolved(const std::string& path) { return fs::weakly_canonical(fs::absolute(path)); }

// `inner` lies strictly below `outer` (both resolved).
bool resolved_inside(const fs::path& inner, const fs::path& outer) {
  const auto mismatch = std::mismatch(outer.begin(), outer.end(), inner.begin(), inner.end());
  return mismatch.first == outer.end() && mismatch.second != inner.end();
}

}  // namespace

bool lies_inside(const std::string& path, const std::string& folder) {
  return resolved_inside(resolved(path), resolved(folder));
}

void refuse_overwriting_input(const std::string& command, const NamedPath& out, OutputKind kind,
                              const std::vector<InputPath>& inputs) {
  const fs::path target = resolved(out.path);
  const std::string shown_out = command + ": " + out.name + " " + out.path;
  for (const auto& [input, refused] : inputs) {
    if (input.path.empty()) continue;
    const fs::path source = resolved(input.path);
    const std::string shown_input = input.name + " " + input.path;
    if (source == target)
      throw std::runtime_error(shown_out + " is the input " + shown_input + "; expected a different " +
                               (kind == OutputKind::kFolder ? "folder" : "file"));
    if (refused == Overlap::kOutInside && resolved_inside(target, source))
      throw std::runtime_error(shown_out + " lies inside the input " + shown_input + "; expected a path outside it");
    if (refused == Overlap::kOutHolding && resolved_inside(source, target))
      throw std::runtime_error(shown_out + " holds the input " + shown_input + "; expected a folder outside it");
  }
}

}  // namespace gf::base
