// `greenfound --version`: this binary's commit and the libraries it runs on, and the GPUs it
// sees (the same facts provenance.json records for every run session).
#include <sstream>

#include "dist/device.hpp"
#include "launcher/commands.hpp"

#ifndef GF_GIT_COMMIT
#define GF_GIT_COMMIT "unknown"
#endif

namespace gf::launcher {

std::string version_text() {
  const dist::RuntimeVersions v = dist::runtime_versions();
  const auto or_none = [](const std::string& text) { return text.empty() ? std::string("none") : text; };
  std::ostringstream out;
  out << "greenfound " << GF_VERSION << " (commit " << GF_GIT_COMMIT << ")\n"
      << "LibTorch   " << v.libtorch << "\n"
      << "CUDA       runtime " << or_none(v.cuda_runtime) << ", driver " << or_none(v.cuda_driver) << "\n"
      << "cuDNN      " << or_none(v.cudnn) << "\n"
      << "NCCL       " << or_none(v.nccl) << "\n"
      << "MPI        " << or_none(v.mpi) << "\n";
  if (v.gpus.names.empty()) {
    out << "GPUs       no GPU visible (" << v.gpus.why_none << ")";
  } else {
    out << "GPUs       " << v.gpus.names.size() << " visible:";
    for (size_t i = 0; i < v.gpus.names.size(); ++i) out << (i ? ", " : " ") << "cuda:" << i << " " << v.gpus.names[i];
  }
  return out.str();
}

}  // namespace gf::launcher
