// Training throughput of one Token Reconstruction step on this CPU: greenfound's step (the
// objective, optimizer and clip of train::pretrain, on an in-memory batch) next to the same
// step written in plain PyTorch (bench/reference_train_step.py, run by Debian's python3 with
// the same thread count), as images/s, the split of step time, and the ratio.
//
//   bench_train_step [--arch vit_small_patch14_reg4] [--img-size 224] [--batch 8] [--steps 3]
//                    [--warmup 1] [--threads N] [--python PATH] [--reference PATH]
// Python: --python, else $GF_PYTHON, else /usr/bin/python3.
#include <ATen/Parallel.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include "model/arch_registry.hpp"
#include "model/token_reconstruction.hpp"
#include "train/optimizer.hpp"
#include "train/run_config.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Split {
  double draws = 0, teacher = 0, student = 0, optimizer = 0, step = 0, images_per_s = 0;
};

double seconds_since(Clock::time_point& start) {
  const auto now = Clock::now();
  const double s = std::chrono::duration<double>(now - start).count();
  start = now;
  return s;
}

Split run_greenfound(const std::string& arch, int64_t img_size, int64_t batch, int steps, int warmup) {
  const gf::model::VitOptions vit = gf::model::arch_options(arch, img_size);
  gf::model::VisionTransformer student(vit);
  student->init_weights(0);
  torch::manual_seed(0);
  gf::model::TokenReconstruction wrapper(student, gf::model::TokenReconstructionOptions{});
  wrapper->train();
  const gf::train::OptimConfig optim;
  gf::train::Optimizer optimizer(wrapper->optimized_parameters(), optim);
  std::vector<torch::Tensor> parameters = wrapper->parameters();
  const torch::Tensor images = torch::rand({batch, 3, img_size, img_size}) * 2 - 1;
  std::vector<int64_t> indices(static_cast<size_t>(batch));
  for (int64_t i = 0; i < batch; ++i) indices[static_cast<size_t>(i)] = i;

  Split split;
  for (int step = 0; step < warmup + steps; ++step) {
    auto clock = Clock::now();
    const auto start = clock;
    for (auto& p : parameters) p.mutable_grad().reset();
    const auto draws = gf::model::draw_corruption({0, 0, step}, indices, vit, torch::kCPU);
    const double t_draws = seconds_since(clock);
    const torch::Tensor target = wrapper->teacher_forward(images);
    const double t_teacher = seconds_since(clock);
    wrapper->student_forward(images, target, draws, batch - 1).loss.backward();
    const double t_student = seconds_since(clock);
    gf::train::clip_grad_norm(parameters, optim.clip_grad_norm);
    optimizer.step();
    const double t_optimizer = seconds_since(clock);
    if (step < warmup) continue;
    split.draws += t_draws / steps;
    split.teacher += t_teacher / steps;
    split.student += t_student / steps;
    split.optimizer += t_optimizer / steps;
    split.step += std::chrono::duration<double>(clock - start).count() / steps;
  }
  split.images_per_s = static_cast<double>(batch) / split.step;
  return split;
}

// Runs the reference script and reads the JSON line it prints.
nlohmann::json run_reference(const std::string& python, const std::string& script, const std::string& arch,
                             int64_t img_size, int64_t batch, int steps, int warmup, int threads) {
  const std::string command = "OMP_NUM_THREADS=" + std::to_string(threads) + " '" + python + "' '" + script +
                              "' --arch " + arch + " --img-size " + std::to_string(img_size) + " --batch " +
                              std::to_string(batch) + " --steps " + std::to_string(steps) + " --warmup " +
                              std::to_string(warmup) + " --threads " + std::to_string(threads);
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  if (!pipe) throw std::runtime_error("bench_train_step: cannot run " + python);
  std::string output;
  std::array<char, 4096> buffer{};
  while (fgets(buffer.data(), static_cast<int>(buffer.size()), pipe.get()) != nullptr) output += buffer.data();
  const int status = pclose(pipe.release());
  if (status != 0) throw std::runtime_error("bench_train_step: " + command + ": exit status " + std::to_string(status));
  return nlohmann::json::parse(output.substr(output.find('{')));
}

void print_row(const std::string& name, double draws, double teacher, double student, double optimizer, double step,
               double images_per_s) {
  auto ms = [](double s) { return s * 1e3; };
  std::cout << std::left << std::setw(22) << name << std::right << std::fixed << std::setprecision(1) << std::setw(10)
            << images_per_s << std::setw(10) << ms(step) << std::setw(10) << ms(draws) << std::setw(10) << ms(teacher)
            << std::setw(10) << ms(student) << std::setw(11) << ms(optimizer) << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Token Reconstruction training step: greenfound vs plain PyTorch on this CPU"};
  std::string arch = "vit_small_patch14_reg4";
  int64_t img_size = 224, batch = 8;
  int steps = 3, warmup = 1;
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const char* env_python = std::getenv("GF_PYTHON");
  std::string python = env_python != nullptr && *env_python != '\0' ? env_python : "/usr/bin/python3";
  std::string reference = (std::filesystem::path(__FILE__).parent_path() / "reference_train_step.py").string();
  app.add_option("--arch", arch, "Registered architecture");
  app.add_option("--img-size", img_size, "Square image size");
  app.add_option("--batch", batch, "Images per step");
  app.add_option("--steps", steps, "Timed steps");
  app.add_option("--warmup", warmup, "Untimed steps first");
  app.add_option("--threads", threads, "Intra-op threads of both runs");
  app.add_option("--python", python, "Python with torch (default $GF_PYTHON or /usr/bin/python3)");
  app.add_option("--reference", reference, "The reference script");
  CLI11_PARSE(app, argc, argv);

  try {
    at::set_num_threads(threads);
    std::cout << "Token Reconstruction training step, " << arch << " at " << img_size << " px, batch " << batch << ", "
              << threads << " thread(s), " << steps << " timed step(s) after " << warmup << " warm-up, fp32 CPU\n";
    const Split ours = run_greenfound(arch, img_size, batch, steps, warmup);
    const auto ref = run_reference(python, reference, arch, img_size, batch, steps, warmup, threads);
    std::cout << std::left << std::setw(22) << "" << std::right << std::setw(10) << "images/s" << std::setw(10)
              << "step ms" << std::setw(10) << "draws" << std::setw(10) << "teacher" << std::setw(10) << "student"
              << std::setw(11) << "optimizer" << "\n";
    print_row("greenfound (LibTorch)", ours.draws, ours.teacher, ours.student, ours.optimizer, ours.step,
              ours.images_per_s);
    // The reference draws inside its student forward (as the published code does).
    print_row("python torch " + ref.at("torch").get<std::string>(), 0, ref.at("teacher").get<double>(),
              ref.at("student").get<double>(), ref.at("optimizer").get<double>(), ref.at("step").get<double>(),
              ref.at("images_per_s").get<double>());
    std::cout << std::setprecision(2) << "ratio greenfound / python: " << ours.images_per_s / ref.at("images_per_s").get<double>()
              << "x images/s\n";
  } catch (const std::exception& e) {
    std::cerr << "bench_train_step: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
