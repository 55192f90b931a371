#pragma once
// Outputs never replace inputs: the check every command with --out and input paths runs
// before it writes anything. Paths are compared after std::filesystem::weakly_canonical, so
// "./x", "x", "dir/../x" and a symlink to x all name x.
#include <string>
#include <vector>

namespace gf::base {

struct NamedPath {
  std::string name;  // how the user gave it: a flag ("--weights") or a field
  std::string path;
};

// What of an input the output may not touch, besides the input itself.
enum class Overlap {
  kSame,        // only the same file or folder is refused
  kOutInside,   // also an output inside this input folder (a dataset, a checkpoint, an image folder)
  kOutHolding,  // also an output folder holding this input (an output folder replaced whole)
};

struct InputPath {
  NamedPath input;
  Overlap refused = Overlap::kSame;
};

enum class OutputKind { kFile, kFolder };

// `path` lies strictly below `folder`, both resolved as above.
bool lies_inside(const std::string& path, const std::string& folder);

// Throws one line when `out` would replace or write into an input, e.g.
// "embed: --out x is the input --checkpoint x; expected a different file". Inputs with an
// empty path (options not given) are skipped.
void refuse_overwriting_input(const std::string& command, const NamedPath& out, OutputKind kind,
                              const std::vector<InputPath>& inputs);

}  // namespace gf::base
