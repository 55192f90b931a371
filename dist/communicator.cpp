#include "dist/communicator.hpp"

#include <stdexcept>

#include "dist/backends.hpp"

namespace gf::dist {

Backend parse_backend(const std::string& name) {
  if (name == "auto") return Backend::kAuto;
  if (name == "mpi") return Backend::kMpi;
  if (name == "nccl") return Backend::kNccl;
  throw std::runtime_error("dist.backend: found '" + name + "', expected auto, mpi or nccl");
}

std::string backend_name(Backend backend) {
  switch (backend) {
    case Backend::kAuto: return "auto";
    case Backend::kMpi: return "mpi";
    case Backend::kNccl: return "nccl";
  }
  return "unknown";
}

Backend select_backend(Backend requested, at::DeviceType device) {
  const bool cuda = device == at::kCUDA;
  switch (requested) {
    case Backend::kAuto:
      return cuda ? Backend::kNccl : Backend::kMpi;
    case Backend::kMpi:
      return Backend::kMpi;  // CUDA tensors too, staged through host memory
    case Backend::kNccl:
      if (!cuda) {
        throw std::runtime_error("dist.backend: found 'nccl' with tensors on " + c10::DeviceTypeName(device) +
                                 ", expected CUDA tensors (use mpi or auto on CPU)");
      }
      return Backend::kNccl;
  }
  throw std::runtime_error("dist.backend: unknown backend value");
}

std::unique_ptr<Communicator> make_communicator(Backend backend, const World& world, const CommunicatorOptions& options) {
  if (select_backend(backend, options.device) == Backend::kNccl) return make_nccl_communicator(world, options);
  return make_mpi_communicator(world, options);
}

}  // namespace gf::dist
