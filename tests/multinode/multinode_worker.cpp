// One rank of a multi-host test job, started across the test cluster's hosts by
// `greenfound launch --hosts ...`'s mpirun (test_multinode_mpi.cpp reads its output):
//   multinode_worker world                  prints this rank's World as one line
//   multinode_worker sampler DATASET B      checks that W ranks on any hosts read, step by
//                                           step, exactly the global batches of one rank
#include <iostream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>

#include "data/loader.hpp"
#include "dist/communicator.hpp"
#include "dist/world.hpp"

namespace {

using gf::dist::World;

void print_world(const World& world) {
  std::ostringstream line;
  line << "world rank " << world.rank << " size " << world.size << " local " << world.local_rank << " of "
       << world.local_size << " host " << world.host << " hosts";
  for (const auto& host : world.hosts()) line << " " << host << ":" << world.ranks_on(host);
  std::cout << line.str() << std::endl;
}

gf::data::LoaderOptions loader_options(const std::string& dataset, int64_t batch, int rank, int size) {
  gf::data::LoaderOptions options;
  options.dataset_dir = dataset;
  options.split = "all";
  options.global_batch_size = batch;
  options.rank = rank;
  options.world_size = size;
  options.workers = 1;
  options.verify = gf::data::Verify::kSizes;
  return options;
}

// Every rank's indices of every step of two epochs, gathered in rank order, must be the
// one-rank loader's batches: every sample once per epoch (drop-last aside), on one rank only.
void check_sampler(const World& world, gf::dist::Communicator& comm, const std::string& dataset, int64_t batch) {
  gf::data::Loader mine(loader_options(dataset, batch, world.rank, world.size));
  gf::data::Loader one(loader_options(dataset, batch, 0, 1));
  for (int64_t epoch = 0; epoch < 2; ++epoch) {
    std::set<int64_t> seen;
    for (int64_t step = 0; step < mine.steps_per_epoch(); ++step) {
      const auto local = mine.indices_at(epoch, step);
      at::Tensor gathered = comm.all_gatherv(at::tensor(local, at::kLong));
      const auto expected = one.indices_at(epoch, step);
      if (gathered.numel() != static_cast<int64_t>(expected.size()))
        throw std::runtime_error("sampler: step " + std::to_string(step) + " gathered " + std::to_string(gathered.numel()) +
                                 " samples, expected " + std::to_string(expected.size()));
      for (size_t i = 0; i < expected.size(); ++i) {
        const int64_t index = gathered[static_cast<int64_t>(i)].item<int64_t>();
        if (index != expected[i])
          throw std::runtime_error("sampler: epoch " + std::to_string(epoch) + " step " + std::to_string(step) + " position " +
                                   std::to_string(i) + ": dataset index " + std::to_string(index) + ", one rank reads " +
                                   std::to_string(expected[i]));
        if (!seen.insert(index).second)
          throw std::runtime_error("sampler: epoch " + std::to_string(epoch) + ": sample " + std::to_string(index) + " read twice");
      }
    }
    if (world.is_root())
      std::cout << "sampler epoch " << epoch << ": " << seen.size() << " of " << mine.split_size()
                << " samples, each on one rank once, batches as one rank's" << std::endl;
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::string scenario = argc > 1 ? argv[1] : "";
  if (scenario != "world" && !(scenario == "sampler" && argc == 4)) {
    std::cerr << "usage: multinode_worker world | sampler DATASET GLOBAL_BATCH" << std::endl;
    return 2;
  }
  int rank = 0;
  try {
    const World& world = gf::dist::init_world();
    rank = world.rank;
    gf::dist::CommunicatorOptions options;
    options.timeout_s = 60;
    auto comm = gf::dist::make_communicator(gf::dist::Backend::kMpi, world, options);
    if (scenario == "world") print_world(world);
    else check_sampler(world, *comm, argv[2], std::stoll(argv[3]));
    comm->barrier();
  } catch (const std::exception& e) {
    std::cerr << "multinode_worker[rank " << rank << "]: error: " << e.what() << std::endl;
    gf::dist::abort_job_if_distributed(EXIT_FAILURE);
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}
