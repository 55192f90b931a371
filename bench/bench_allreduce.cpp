// All-reduce of the vit_small gradient set over 2 ranks (MPI backend): bucketed and
// overlapped with backward (dist::GradientReducer, 25 MB buckets) against the baseline of
// one flat all-reduce after backward, and the fraction of the step spent waiting on
// communication in each. Started by hand it re-runs itself under `mpirun -n <ranks>`.
//
//   bench_allreduce [--ranks 2] [--threads 1] [--img-size 224] [--batch 2] [--steps 3] [--bucket-mb 25]
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "dist/communicator.hpp"
#include "dist/gradient_reducer.hpp"
#include "dist/world.hpp"
#include "model/arch_registry.hpp"
#include "model/vit.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  int ranks = 2;
  int threads = 1;
  int64_t img_size = 224;  // the gradient set is the same at any size but pos_embed; compute is 3x less than 392
  int64_t batch = 2;       // per rank
  int steps = 3;
  double bucket_mb = 25;
};

Args parse(int argc, char** argv) {
  Args args;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i], value = argv[i + 1];
    if (key == "--ranks") args.ranks = std::stoi(value);
    else if (key == "--threads") args.threads = std::stoi(value);
    else if (key == "--img-size") args.img_size = std::stoll(value);
    else if (key == "--batch") args.batch = std::stoll(value);
    else if (key == "--steps") args.steps = std::stoi(value);
    else if (key == "--bucket-mb") args.bucket_mb = std::stod(value);
    else {
      std::fprintf(stderr, "bench_allreduce: unknown option %s\n", key.c_str());
      std::exit(2);
    }
  }
  return args;
}

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// Re-runs this binary as `ranks` MPI ranks and returns their exit status.
int relaunch_under_mpirun(const Args& args, int argc, char** argv) {
  const char* mpiexec = std::getenv("GF_MPIEXEC");
  std::string command = std::string(mpiexec && *mpiexec ? mpiexec : "mpirun") + " -n " + std::to_string(args.ranks) +
                        " --oversubscribe --bind-to none -x OMP_NUM_THREADS=" + std::to_string(args.threads);
  if (geteuid() == 0) command += " --allow-run-as-root";
  std::vector<char> exe(4096);
  const ssize_t n = readlink("/proc/self/exe", exe.data(), exe.size() - 1);
  command += " " + (n > 0 ? std::string(exe.data(), static_cast<size_t>(n)) : std::string(argv[0]));
  for (int i = 1; i < argc; ++i) command += std::string(" ") + argv[i];
  std::printf("bench_allreduce: %s\n", command.c_str());
  std::fflush(stdout);
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

struct StepTimes {
  double step = 0;       // forward + backward + gradient averaging
  double comm_wait = 0;  // time the training thread blocked on communication
};

at::Tensor loss_of(gf::model::VisionTransformer& model, const at::Tensor& images) {
  return model->forward_features(images).pow(2).mean();
}

// Baseline: backward, then every gradient flattened into one tensor, all-reduced, copied back.
StepTimes flat_step(gf::model::VisionTransformer& model, gf::dist::Communicator& comm, const at::Tensor& images) {
  const auto start = Clock::now();
  model->zero_grad();
  loss_of(model, images).backward();
  std::vector<at::Tensor> grads;
  for (auto& p : model->parameters()) grads.push_back(p.grad().reshape(-1));
  at::Tensor flat = at::cat(grads);
  const auto comm_start = Clock::now();
  comm.all_reduce(flat, gf::dist::ReduceOp::kAvg);
  StepTimes times;
  times.comm_wait = seconds_since(comm_start);
  int64_t offset = 0;
  for (auto& p : model->parameters()) {
    p.mutable_grad().copy_(flat.narrow(0, offset, p.numel()).view(p.sizes()));
    offset += p.numel();
  }
  times.step = seconds_since(start);
  return times;
}

StepTimes bucketed_step(gf::model::VisionTransformer& model, gf::dist::GradientReducer& reducer, const at::Tensor& images) {
  const auto start = Clock::now();
  model->zero_grad();
  loss_of(model, images).backward();
  reducer.finalize();
  return {seconds_since(start), reducer.last_stats().finalize_wait_s};
}

// The slowest rank's figure, which is what the job waits for.
double job_max(gf::dist::Communicator& comm, double value) {
  at::Tensor t = comm.all_gather(at::tensor({value}, at::kDouble));
  return t.max().item<double>();
}

template <typename Step>
StepTimes measure(gf::dist::Communicator& comm, int steps, Step&& step) {
  step();  // warm-up: allocations, first-touch of buffers
  StepTimes total;
  for (int i = 0; i < steps; ++i) {
    comm.barrier();
    const StepTimes t = step();
    total.step += job_max(comm, t.step) / steps;
    total.comm_wait += job_max(comm, t.comm_wait) / steps;
  }
  return total;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  if (!gf::dist::launcher_view_from_env()) return relaunch_under_mpirun(args, argc, argv);

  at::set_num_threads(args.threads);
  const gf::dist::World& world = gf::dist::init_world();
  auto comm = gf::dist::make_communicator(gf::dist::Backend::kMpi, world);

  gf::model::VisionTransformer model(gf::model::arch_options("vit_small_patch14_reg4", args.img_size));
  model->init_weights(0);
  int64_t numel = 0;
  for (const auto& p : model->parameters()) numel += p.numel();
  at::manual_seed(1 + world.rank);
  const at::Tensor images = at::randn({args.batch, 3, args.img_size, args.img_size});

  // One flat all-reduce of the whole gradient set with nothing else running.
  at::Tensor flat = at::ones({numel});
  comm->all_reduce(flat, gf::dist::ReduceOp::kAvg);
  double alone = 0;
  for (int i = 0; i < args.steps; ++i) {
    comm->barrier();
    const auto start = Clock::now();
    comm->all_reduce(flat, gf::dist::ReduceOp::kAvg);
    alone += job_max(*comm, seconds_since(start)) / args.steps;
  }

  const StepTimes flat_times = measure(*comm, args.steps, [&] { return flat_step(model, *comm, images); });

  gf::dist::GradientReducerOptions options;
  options.bucket_bytes = static_cast<int64_t>(args.bucket_mb * 1024 * 1024);
  gf::dist::GradientReducer reducer(*comm, model->parameters(), options);
  const StepTimes bucketed = measure(*comm, args.steps, [&] { return bucketed_step(model, reducer, images); });

  if (world.rank == 0) {
    const double mb = numel * 4.0 / 1e6;
    std::printf("bench_allreduce: vit_small_patch14_reg4 gradients, %lld params (%.1f MB fp32), %d ranks x %d thread(s), "
                "batch %lld/rank at %lld px, MPI backend, mean of %d steps (slowest rank)\n",
                static_cast<long long>(numel), mb, world.size, args.threads, static_cast<long long>(args.batch),
                static_cast<long long>(args.img_size), args.steps);
    std::printf("  all-reduce of the whole set, nothing else running: %8.1f ms  (%.2f GB/s algorithm bandwidth)\n",
                alone * 1e3, mb / 1e3 / alone);
    std::printf("  baseline, one flat all-reduce after backward:        step %8.1f ms, waiting on comms %8.1f ms (%4.1f%% of the step)\n",
                flat_times.step * 1e3, flat_times.comm_wait * 1e3, 100 * flat_times.comm_wait / flat_times.step);
    std::printf("  bucketed (%d x <=%.0f MB) overlapped with backward:  step %8.1f ms, waiting on comms %8.1f ms (%4.1f%% of the step)\n",
                reducer.num_buckets(), args.bucket_mb, bucketed.step * 1e3, bucketed.comm_wait * 1e3,
                100 * bucketed.comm_wait / bucketed.step);
    std::printf("  exposed communication: %.2fx less with buckets; step time %.2fx of the baseline\n",
                flat_times.comm_wait / std::max(bucketed.comm_wait, 1e-9), bucketed.step / flat_times.step);
  }
  return 0;
}
