#include "dist/communicator.hpp"

#include <stdexcept>

#include "dist/backends.hpp"

namespace gf::dist {

std::string backend_name(Backend backend) { return base::enum_name(backend, kBackendNames); }

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

std::unique_ptr<Communicator> make_stage_communicator(const World& world, const CommunicatorOptions& options) {
  if (world.size == 1) return nullptr;
  return make_communicator(Backend::kMpi, world, options);
}

}  // namespace gf::dist
