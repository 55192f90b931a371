// Training throughput of one Token Reconstruction step on this CPU: greenfound's step (the
// draws, objective, clip and optimizer of train::pretrain, on an in-memory batch) next to the
// same step in plain PyTorch eager with the real timm model and the published wrapper
// (bench/reference_train_step.py, run by the venv's python: the same torch), at every thread
// count of the sweep. Each figure is the median step of `--rounds` rounds x `--steps` timed
// steps (after `--warmup` untimed ones); the rounds alternate the two sides so that a change
// of machine load hits both. Prints images/s, the split of the step, the spread of the steps
// and the share of the cores the side held (CPU time / (wall time x threads)) per side and
// thread count, the ratio at each count, and the ratio of each side's best.
//
//   bench_train_step [--arch vit_small_patch14_reg4] [--img-size 224] [--batch 8] [--steps 5]
//                    [--warmup 2] [--rounds 3] [--threads 1,2] [--python PATH] [--reference PATH]
//
// Figures taken while anything else runs are noise: the load average is printed before and
// after, and a held% well below 100 shows the cores were shared; compare on an idle machine.
#include <ATen/Parallel.h>
#include <CLI/CLI.hpp>
#include <sys/resource.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "model/arch_registry.hpp"
#include "model/token_reconstruction.hpp"
#include "train/optimizer.hpp"
#include "train/run_config.hpp"

namespace {

using Clock = std::chrono::steady_clock;
const std::vector<std::string> kPhases = {"step", "draws", "teacher", "student", "optimizer"};

struct Setup {
  std::string arch;
  int64_t img_size = 0, batch = 0;
  int steps = 0, warmup = 0;
};

// Seconds of every timed step, by phase (kPhases).
using Samples = std::map<std::string, std::vector<double>>;

// CPU seconds of this process so far, every thread.
double process_cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + 1e-6 * static_cast<double>(t.tv_usec); };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

double seconds_since(Clock::time_point& start) {
  const auto now = Clock::now();
  const double s = std::chrono::duration<double>(now - start).count();
  start = now;
  return s;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return in ? one + " " + five + " " + fifteen : "unknown";
}

void run_greenfound(const Setup& s, Samples& samples) {
  const gf::model::VitOptions vit = gf::model::arch_options(s.arch, s.img_size);
  gf::model::VisionTransformer student(vit);
  student->init_weights(0);
  torch::manual_seed(0);
  gf::model::TokenReconstruction wrapper(student, gf::model::TokenReconstructionOptions{});
  wrapper->train();
  const gf::train::OptimConfig optim;
  gf::train::Optimizer optimizer(wrapper->optimized_parameters(), optim);
  std::vector<torch::Tensor> parameters = wrapper->parameters();
  const torch::Tensor images = torch::rand({s.batch, 3, s.img_size, s.img_size}) * 2 - 1;
  std::vector<int64_t> indices(static_cast<size_t>(s.batch));
  for (int64_t i = 0; i < s.batch; ++i) indices[static_cast<size_t>(i)] = i;

  for (int step = 0; step < s.warmup + s.steps; ++step) {
    auto clock = Clock::now();
    const auto start = clock;
    const double cpu_start = process_cpu_seconds();
    for (auto& p : parameters) p.mutable_grad().reset();
    const auto draws = gf::model::draw_corruption({0, 0, step}, indices, vit, torch::kCPU);
    const double t_draws = seconds_since(clock);
    const torch::Tensor target = wrapper->teacher_forward(images);
    const double t_teacher = seconds_since(clock);
    const torch::Tensor loss = wrapper->student_forward(images, target, draws, s.batch - 1).loss;
    loss.backward();
    const double t_student = seconds_since(clock);
    gf::train::clip_grad_norm(parameters, optim.clip_grad_norm);
    optimizer.step();
    const double t_optimizer = seconds_since(clock);
    const double cpu = process_cpu_seconds() - cpu_start;
    if (!std::isfinite(loss.item<double>()))
      throw std::runtime_error("greenfound step " + std::to_string(step) + ": loss is not finite");
    if (step < s.warmup) continue;
    samples["step"].push_back(std::chrono::duration<double>(clock - start).count());
    samples["draws"].push_back(t_draws);
    samples["teacher"].push_back(t_teacher);
    samples["student"].push_back(t_student);
    samples["optimizer"].push_back(t_optimizer);
    samples["cpu"].push_back(cpu);
  }
}

// Runs the reference script with `threads` threads and appends the step times it prints (it
// draws inside its student forward, as the published code does: draws stay empty).
nlohmann::json run_reference(const std::string& python, const std::string& script, const Setup& s, int threads,
                             Samples& samples) {
  const std::string t = std::to_string(threads);
  const std::string command = "OMP_NUM_THREADS=" + t + " MKL_NUM_THREADS=" + t + " '" + python + "' '" + script +
                              "' --arch " + s.arch + " --img-size " + std::to_string(s.img_size) + " --batch " +
                              std::to_string(s.batch) + " --steps " + std::to_string(s.steps) + " --warmup " +
                              std::to_string(s.warmup) + " --threads " + t;
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  if (!pipe) throw std::runtime_error("cannot run " + python);
  std::string output;
  std::array<char, 4096> buffer{};
  while (fgets(buffer.data(), static_cast<int>(buffer.size()), pipe.get()) != nullptr) output += buffer.data();
  const int status = pclose(pipe.release());
  if (status != 0) throw std::runtime_error(command + ": exit status " + std::to_string(status));
  const size_t brace = output.rfind("\n{");
  const auto result = nlohmann::json::parse(output.substr(brace == std::string::npos ? output.find('{') : brace + 1));
  for (const auto& [phase, values] : result.at("seconds").items())
    for (const auto& v : values) samples[phase].push_back(v.get<double>());
  return result;
}

struct Figures {
  double images_per_s = 0;
  double spread = 0;  // (slowest - fastest step) / median step, %
  double held = 0;    // CPU time / (wall time x threads), %: well below 100 = the cores were shared
  std::map<std::string, double> ms;  // median per phase
};

Figures summarize(Samples& samples, int64_t batch, int threads) {
  Figures f;
  for (const auto& phase : kPhases) f.ms[phase] = median(samples[phase]) * 1e3;
  const auto& steps = samples["step"];
  const auto [lo, hi] = std::minmax_element(steps.begin(), steps.end());
  f.images_per_s = static_cast<double>(batch) / (f.ms["step"] / 1e3);
  f.spread = (*hi - *lo) / (f.ms["step"] / 1e3) * 100;
  double cpu = 0, wall = 0;
  for (size_t i = 0; i < steps.size(); ++i) cpu += samples["cpu"][i], wall += steps[i];
  f.held = cpu / (wall * threads) * 100;
  return f;
}

constexpr int kNameWidth = 36;

void print_row(const std::string& threads, const std::string& name, const Figures& f, bool has_draws) {
  std::cout << std::left << std::setw(8) << threads << std::setw(kNameWidth) << name << std::right << std::fixed
            << std::setprecision(2) << std::setw(9) << f.images_per_s << std::setprecision(1) << std::setw(10)
            << f.ms.at("step") << std::setw(9) << f.spread << std::setw(7) << f.held << std::setw(9);
  if (has_draws)
    std::cout << f.ms.at("draws");
  else
    std::cout << "-";
  std::cout << std::setw(10) << f.ms.at("teacher") << std::setw(10) << f.ms.at("student") << std::setw(11)
            << f.ms.at("optimizer") << "\n";
}

std::vector<int> default_sweep() {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::vector<int> sweep;
  for (int t = 1; t < cores; t *= 2) sweep.push_back(t);
  sweep.push_back(cores);
  return sweep;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Token Reconstruction training step: greenfound vs plain PyTorch eager (timm) on this CPU"};
  Setup s{"vit_small_patch14_reg4", 224, 8, 5, 2};
  int rounds = 3;
  std::vector<int> sweep = default_sweep();
  const char* env_python = std::getenv("GF_PYTHON");
  std::string python = env_python != nullptr && *env_python != '\0' ? env_python : GF_PYTHON_DEFAULT;
  std::string reference = GF_REFERENCE_DEFAULT;
  app.add_option("--arch", s.arch, "Registered architecture")->capture_default_str();
  app.add_option("--img-size", s.img_size, "Square image size")->capture_default_str();
  app.add_option("--batch", s.batch, "Images per step")->capture_default_str()->check(CLI::Range(2, 1 << 20));
  app.add_option("--steps", s.steps, "Timed steps per round")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--warmup", s.warmup, "Untimed steps first, per round")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--rounds", rounds, "Rounds, each running both sides at every thread count")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--threads", sweep, "Thread counts to sweep (default 1, 2, 4, ..., all cores)")
      ->delimiter(',')
      ->check(CLI::PositiveNumber);
  app.add_option("--python", python, "Python with torch and timm (default $GF_PYTHON, else the venv's python the build was configured with)");
  app.add_option("--reference", reference, "The reference script");
  CLI11_PARSE(app, argc, argv);

  try {
    std::cout << "Token Reconstruction training step, " << s.arch << " at " << s.img_size << " px, batch " << s.batch
              << ", fp32 CPU; per side and thread count: median of " << rounds << " round(s) x " << s.steps
              << " step(s) after " << s.warmup << " warm-up\n"
              << "load average before: " << load_average() << " (" << std::thread::hardware_concurrency()
              << " cores; figures taken under load are noise)\n";
    std::map<int, Samples> ours, theirs;
    nlohmann::json versions;
    for (int round = 0; round < rounds; ++round) {
      for (const int threads : sweep) {
        at::set_num_threads(threads);  // as train::pretrain sets --threads
        run_greenfound(s, ours[threads]);
        versions = run_reference(python, reference, s, threads, theirs[threads]);
        std::cerr << "round " << round + 1 << "/" << rounds << ", " << threads << " thread(s) done, load "
                  << load_average() << "\n";
      }
    }
    const std::string name = "PyTorch " + versions.at("torch").get<std::string>() + " timm " +
                             versions.at("timm").get<std::string>();
    std::cout << std::left << std::setw(8) << "threads" << std::setw(kNameWidth) << "" << std::right << std::setw(9)
              << "images/s" << std::setw(10) << "step ms" << std::setw(9) << "spread%" << std::setw(7) << "held%"
              << std::setw(9) << "draws"
              << std::setw(10) << "teacher" << std::setw(10) << "student" << std::setw(11) << "optimizer" << "\n";
    int best_ours = sweep.front(), best_theirs = sweep.front();
    std::map<int, Figures> fo, ft;
    for (const int threads : sweep) {
      fo[threads] = summarize(ours[threads], s.batch, threads);
      ft[threads] = summarize(theirs[threads], s.batch, threads);
      print_row(std::to_string(threads), "greenfound (LibTorch)", fo[threads], true);
      print_row("", name, ft[threads], false);
      std::cout << std::left << std::setw(8) << "" << "ratio greenfound / PyTorch: " << std::setprecision(2)
                << fo[threads].images_per_s / ft[threads].images_per_s << "x\n";
      if (fo[threads].images_per_s > fo[best_ours].images_per_s) best_ours = threads;
      if (ft[threads].images_per_s > ft[best_theirs].images_per_s) best_theirs = threads;
    }
    std::cout << std::setprecision(2) << "best: greenfound " << fo[best_ours].images_per_s << " images/s at "
              << best_ours << " thread(s), PyTorch eager " << ft[best_theirs].images_per_s << " images/s at "
              << best_theirs << " thread(s): ratio " << fo[best_ours].images_per_s / ft[best_theirs].images_per_s
              << "x\nload average after: " << load_average() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "bench_train_step: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
