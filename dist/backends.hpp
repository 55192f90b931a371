#pragma once
// Internal: the backend constructors behind make_communicator (dist/communicator.cpp).
#include <memory>

#include "dist/communicator.hpp"

namespace gf::dist {

std::unique_ptr<Communicator> make_mpi_communicator(const World& world, const CommunicatorOptions& options);
std::unique_ptr<Communicator> make_nccl_communicator(const World& world, const CommunicatorOptions& options);

}  // namespace gf::dist
