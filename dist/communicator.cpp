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

bool nccl_built() {
#ifdef GF_WITH_NCCL
  return true;
#else
  return false;
#endif
}

Backend select_backend(Backend requested, at::DeviceType device, bool nccl_is_built) {
  const bool cuda = device == at::kCUDA;
  switch (requested) {
    case Backend::kAuto:
      // MPI can still serve CUDA tensors (staged through host memory) when NCCL is absent.
      return cuda && nccl_is_built ? Backend::kNccl : Backend::kMpi;
    case Backend::kMpi:
      return Backend::kMpi;
    case Backend::kNccl:
      if (!nccl_is_built) {
        throw std::runtime_error("dist.backend: found 'nccl', but this build has no NCCL backend "
                                 "(configure with CUDA and NCCL installed, GF_WITH_NCCL=ON)");
      }
      if (!cuda) {
        throw std::runtime_error("dist.backend: found 'nccl' with tensors on " + c10::DeviceTypeName(device) +
                                 ", expected CUDA tensors (use mpi or auto on CPU)");
      }
      return Backend::kNccl;
  }
  throw std::runtime_error("dist.backend: unknown backend value");
}

std::unique_ptr<Communicator> make_communicator(Backend backend, const World& world, const CommunicatorOptions& options) {
  switch (select_backend(backend, options.device, nccl_built())) {
#ifdef GF_WITH_NCCL
    case Backend::kNccl: return make_nccl_communicator(world, options);
#endif
    default: return make_mpi_communicator(world, options);
  }
}

}  // namespace gf::dist
