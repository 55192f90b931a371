// Data-parallel scaling of pretraining on this machine: training images/s of 1 rank x 1
// thread against 2 ranks x 1 thread (same global batch, MPI backend), the scaling efficiency,
// and the fraction of each step spent waiting on communication (metrics.jsonl's allreduce
// time: the reducer's finalize wait plus the loss/stop all-reduce). Makes a small synthetic
// dataset, trains in-process for 1 rank, then re-runs itself under `mpirun -n <ranks>`.
//
//   bench_scaling [--ranks 2] [--arch vit_small_patch14_reg4] [--img-size 112] [--batch 8] [--steps 8] [--images 64]
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/pack.hpp"
#include "data/synth.hpp"
#include "train/pretrain.hpp"
#include "train/run_config.hpp"

namespace {

namespace fs = std::filesystem;

struct Args {
  int ranks = 2;
  std::string arch = "vit_small_patch14_reg4";
  int64_t img_size = 112;
  int64_t batch = 8;  // global
  int steps = 8;
  int images = 64;
  std::string dir;    // set on the relaunched ranks: the folder holding dataset/ and config.json
};

Args parse(int argc, char** argv) {
  Args args;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i], value = argv[i + 1];
    if (key == "--ranks") args.ranks = std::stoi(value);
    else if (key == "--arch") args.arch = value;
    else if (key == "--img-size") args.img_size = std::stoll(value);
    else if (key == "--batch") args.batch = std::stoll(value);
    else if (key == "--steps") args.steps = std::stoi(value);
    else if (key == "--images") args.images = std::stoi(value);
    else if (key == "--dir") args.dir = value;
    else {
      std::fprintf(stderr, "bench_scaling: unknown option %s\n", key.c_str());
      std::exit(2);
    }
  }
  return args;
}

gf::train::RunConfig make_config(const Args& args, const std::string& dataset) {
  nlohmann::json json = {
      {"model", {{"arch", args.arch}, {"img_size", args.img_size}}},
      {"data", {{"path", dataset}, {"split", "all"}, {"batch_size", args.batch}, {"workers", 1}, {"prefetch", 2}}},
      {"train", {{"threads", 1}, {"device", "cpu"}, {"log_every", 1}, {"checkpoint_every_epochs", 0}}},
      {"dist", {{"backend", "mpi"}}},
  };
  return gf::train::parse_run_config(json, "bench_scaling");
}

struct Figures {
  double images_per_s = 0;     // median over the measured steps
  double comm_fraction = 0;    // mean of allreduce / step time
  int steps = 0;
};

// The steps after the first two (allocations, loader warm-up).
Figures read_metrics(const std::string& run_dir) {
  std::ifstream in(run_dir + "/metrics.jsonl");
  std::vector<double> rates;
  Figures figures;
  std::string line;
  for (int index = 0; std::getline(in, line); ++index) {
    if (line.empty() || index < 2) continue;
    const auto record = nlohmann::json::parse(line);
    rates.push_back(record.at("images_per_s").get<double>());
    const auto& time = record.at("time_s");
    figures.comm_fraction += time.at("allreduce").get<double>() / time.at("step").get<double>();
  }
  if (rates.empty()) return figures;
  std::sort(rates.begin(), rates.end());
  figures.images_per_s = rates[rates.size() / 2];
  figures.comm_fraction /= static_cast<double>(rates.size());
  figures.steps = static_cast<int>(rates.size());
  return figures;
}

void train_into(const Args& args, const std::string& dir, const std::string& run_dir) {
  gf::train::PretrainOptions options;
  options.run_dir = run_dir;
  options.max_steps = args.steps;
  gf::train::pretrain(make_config(args, dir + "/dataset"), options);
}

std::string self_executable() {
  std::vector<char> exe(4096);
  const ssize_t n = readlink("/proc/self/exe", exe.data(), exe.size() - 1);
  return n > 0 ? std::string(exe.data(), static_cast<size_t>(n)) : std::string("bench_scaling");
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  if (!args.dir.empty()) {  // one of the relaunched ranks
    train_into(args, args.dir, args.dir + "/run-" + std::to_string(args.ranks));
    return 0;
  }

  const fs::path dir = fs::temp_directory_path() / ("gf_bench_scaling_" + std::to_string(getpid()));
  fs::create_directories(dir);
  gf::data::SynthOptions synth;
  synth.count = args.images;
  synth.frame_size = {static_cast<int>(args.img_size * 3 / 2), static_cast<int>(args.img_size * 3 / 2)};
  synth.threads = 1;
  gf::data::write_synth_dataset(synth, (dir / "images").string());
  gf::data::PackOptions pack;
  pack.images_dir = (dir / "images").string();
  pack.out_dir = (dir / "dataset").string();
  pack.resolution = static_cast<int>(args.img_size);
  pack.threads = 1;
  pack.show_progress = false;
  gf::data::pack(pack);

  train_into(args, dir.string(), (dir / "run-1").string());

  const char* mpiexec = std::getenv("GF_MPIEXEC");
  std::string command = std::string(mpiexec && *mpiexec ? mpiexec : "mpirun") + " -n " + std::to_string(args.ranks) +
                        " --oversubscribe --bind-to none -x OMP_NUM_THREADS=1";
  if (geteuid() == 0) command += " --allow-run-as-root";
  command += " " + self_executable();
  for (int i = 1; i < argc; ++i) command += std::string(" ") + argv[i];
  command += " --dir " + dir.string();
  std::printf("bench_scaling: %s\n", command.c_str());
  std::fflush(stdout);
  const int status = std::system(command.c_str());
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "bench_scaling: the %d-rank run failed (%s kept)\n", args.ranks, dir.c_str());
    return 1;
  }

  const Figures one = read_metrics((dir / "run-1").string());
  const Figures many = read_metrics((dir / ("run-" + std::to_string(args.ranks))).string());
  std::printf("bench_scaling: %s at %lld px, global batch %lld, %d synthetic images, CPU fp32, MPI backend, "
              "median of %d steps\n",
              args.arch.c_str(), static_cast<long long>(args.img_size), static_cast<long long>(args.batch), args.images,
              one.steps);
  std::printf("  1 rank  x 1 thread: %8.2f images/s, waiting on comms %4.1f%% of the step\n", one.images_per_s,
              100 * one.comm_fraction);
  std::printf("  %d ranks x 1 thread: %8.2f images/s, waiting on comms %4.1f%% of the step\n", args.ranks,
              many.images_per_s, 100 * many.comm_fraction);
  std::printf("  speed-up %.2fx, scaling efficiency %.0f%% (%u CPU cores on this machine)\n",
              many.images_per_s / one.images_per_s, 100 * many.images_per_s / (args.ranks * one.images_per_s),
              std::max(1u, static_cast<unsigned>(sysconf(_SC_NPROCESSORS_ONLN))));
  fs::remove_all(dir);
  return 0;
}
