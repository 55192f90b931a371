#include "dist/world.hpp"

#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>

namespace gf::dist {
namespace {

const char* env(const char* name) {
  const char* value = std::getenv(name);
  return (value && *value) ? value : nullptr;
}

int env_int(const char* name) {
  const char* value = env(name);
  if (!value) return -1;
  char* end = nullptr;
  long parsed = std::strtol(value, &end, 10);
  if (*end != '\0' || parsed < 0 || parsed > INT_MAX) {
    throw std::runtime_error(std::string("environment: ") + name + ": found '" + value +
                             "', expected a non-negative integer");
  }
  return static_cast<int>(parsed);
}

// SLURM_STEP_TASKS_PER_NODE is a compressed list such as "2(x3),1": the count of node `node`.
int slurm_tasks_on_node(const std::string& list, int node) {
  size_t pos = 0;
  int first_node = 0;
  while (pos < list.size()) {
    size_t end = list.find(',', pos);
    if (end == std::string::npos) end = list.size();
    std::string item = list.substr(pos, end - pos);
    int count = std::atoi(item.c_str());
    int repeat = 1;
    size_t x = item.find("(x");
    if (x != std::string::npos) repeat = std::atoi(item.c_str() + x + 2);
    if (node < first_node + repeat) return count;
    first_node += repeat;
    pos = end + 1;
  }
  return -1;
}

std::string hostname() {
  char buffer[256] = {};
  if (gethostname(buffer, sizeof(buffer) - 1) != 0) return "unknown-host";
  return buffer;
}

std::string describe(const char* source, int rank, int size, int local_rank, int local_size) {
  auto show = [](int v) { return v < 0 ? std::string("?") : std::to_string(v); };
  return std::string(source) + " says rank " + show(rank) + " of " + show(size) + ", local rank " +
         show(local_rank) + " of " + show(local_size);
}

std::string visible_gpus() {
  const char* value = env("CUDA_VISIBLE_DEVICES");
  return value ? value : "";
}

// Every rank's host and visible GPUs, gathered in one fixed-size record per rank.
std::vector<RankPlace> gather_places(const World& world) {
  constexpr int kField = 256;
  std::vector<char> mine(2 * kField, '\0');
  world.host.copy(mine.data(), kField - 1);
  visible_gpus().copy(mine.data() + kField, kField - 1);
  std::vector<char> all(static_cast<size_t>(world.size) * mine.size());
  int local = world.local_rank;
  std::vector<int> local_ranks(static_cast<size_t>(world.size));
  MPI_Allgather(mine.data(), 2 * kField, MPI_CHAR, all.data(), 2 * kField, MPI_CHAR, MPI_COMM_WORLD);
  MPI_Allgather(&local, 1, MPI_INT, local_ranks.data(), 1, MPI_INT, MPI_COMM_WORLD);
  std::vector<RankPlace> places;
  for (int r = 0; r < world.size; ++r) {
    const char* record = all.data() + static_cast<size_t>(r) * 2 * kField;
    places.push_back({std::string(record), local_ranks[static_cast<size_t>(r)], std::string(record + kField)});
  }
  return places;
}

void finalize_mpi() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Finalize();
}

World discover() {
  World world;
  world.host = hostname();
  world.places = {{world.host, 0, visible_gpus()}};
  std::optional<LauncherView> launcher = launcher_view_from_env();
  // PMIx without Open MPI's variables: a direct launch that MPI_Init understands.
  if (!launcher && !env("PMIX_RANK")) return world;

  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    // The communication thread drives collectives while the watchdog may call MPI_Abort.
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided);
    if (provided < MPI_THREAD_MULTIPLE) {
      throw std::runtime_error("MPI_Init_thread: found thread level " + std::to_string(provided) +
                               ", expected MPI_THREAD_MULTIPLE (" +
                               std::to_string(MPI_THREAD_MULTIPLE) + ")");
    }
    std::atexit(finalize_mpi);
  }
  world.uses_mpi = true;
  MPI_Comm_rank(MPI_COMM_WORLD, &world.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world.size);
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, world.rank, MPI_INFO_NULL, &node);
  MPI_Comm_rank(node, &world.local_rank);
  MPI_Comm_size(node, &world.local_size);
  MPI_Comm_free(&node);
  if (launcher) cross_check(world, *launcher);
  world.places = gather_places(world);
  return world;
}

}  // namespace

std::vector<std::string> World::hosts() const {
  std::vector<std::string> out;
  for (const auto& place : places)
    if (std::find(out.begin(), out.end(), place.host) == out.end()) out.push_back(place.host);
  return out;
}

std::string World::ranks_on(const std::string& name) const {
  std::string out;
  int run_start = -1, previous = -2;
  auto close_run = [&] {
    if (run_start < 0) return;
    out += (out.empty() ? "" : ",") + std::to_string(run_start);
    if (previous > run_start) out += "-" + std::to_string(previous);
  };
  for (int r = 0; r < static_cast<int>(places.size()); ++r) {
    if (places[static_cast<size_t>(r)].host != name) continue;
    if (r != previous + 1) {
      close_run();
      run_start = r;
    }
    previous = r;
  }
  close_run();
  return out;
}

std::optional<LauncherView> launcher_view_from_env() {
  if (env("OMPI_COMM_WORLD_SIZE")) {
    return LauncherView{"Open MPI", env_int("OMPI_COMM_WORLD_RANK"), env_int("OMPI_COMM_WORLD_SIZE"),
                        env_int("OMPI_COMM_WORLD_LOCAL_RANK"), env_int("OMPI_COMM_WORLD_LOCAL_SIZE")};
  }
  // Only an srun step describes this process: a batch script's own shell carries SLURM_PROCID 0
  // and the job's SLURM_NTASKS without being one of the tasks.
  if (env("SLURM_STEP_ID") && env("SLURM_PROCID")) {
    LauncherView view{"SLURM", env_int("SLURM_PROCID"), -1, env_int("SLURM_LOCALID"), -1};
    view.size = env("SLURM_STEP_NUM_TASKS") ? env_int("SLURM_STEP_NUM_TASKS") : env_int("SLURM_NTASKS");
    const char* per_node = env("SLURM_STEP_TASKS_PER_NODE");
    int node = env_int("SLURM_NODEID");
    if (per_node && node >= 0) view.local_size = slurm_tasks_on_node(per_node, node);
    return view;
  }
  return std::nullopt;
}

void cross_check(const World& world, const LauncherView& launcher) {
  auto differs = [](int said, int actual) { return said >= 0 && said != actual; };
  if (differs(launcher.rank, world.rank) || differs(launcher.size, world.size) ||
      differs(launcher.local_rank, world.local_rank) || differs(launcher.local_size, world.local_size)) {
    throw std::runtime_error(
        "rank discovery: " + describe("MPI", world.rank, world.size, world.local_rank, world.local_size) +
        " but " + describe(launcher.source.c_str(), launcher.rank, launcher.size, launcher.local_rank, launcher.local_size) +
        " (on " + world.host + "); start every rank with the same launcher and MPI library");
  }
}

const World& init_world() {
  static std::mutex mutex;
  static std::optional<World> world;
  std::lock_guard<std::mutex> lock(mutex);
  if (!world) world = discover();
  return *world;
}

void abort_job_if_distributed(int exit_code) {
  int initialized = 0, finalized = 0, size = 1;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (!initialized || finalized) return;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size > 1) MPI_Abort(MPI_COMM_WORLD, exit_code);
}

void abort_job(int exit_code) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);
}

std::string mpi_library_version() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING] = {0};
  int length = 0;
  MPI_Get_library_version(text, &length);
  const std::string line(text, length);
  return line.substr(0, line.find_first_of(",\n"));
}

}  // namespace gf::dist
