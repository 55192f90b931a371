#include "train/pretrain.hpp"

#include <ATen/Parallel.h>
#include <c10/core/DeviceGuard.h>
#include <torch/cuda.h>

#include <chrono>
#include <cstdlib>
#include <cmath>
#include <filesystem>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "data/atomic_file.hpp"
#include "data/loader.hpp"
#include "data/progress.hpp"
#include "dist/communicator.hpp"
#include "dist/gradient_reducer.hpp"
#include "dist/world.hpp"
#include "energy/tracker.hpp"
#include "model/arch_registry.hpp"
#include "model/lr_schedule.hpp"
#include "model/token_reconstruction.hpp"
#include "model/weights.hpp"
#include "train/autocast.hpp"
#include "train/checkpoint.hpp"
#include "train/optimizer.hpp"
#include "train/node_progress.hpp"
#include "train/provenance.hpp"
#include "train/resume_check.hpp"
#include "train/run_log.hpp"
#include "train/stop_signal.hpp"

namespace gf::train {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

const char* const kCpuGenerator = "torch_cpu";

torch::Device pick_device(const std::string& name, const dist::World& world) {
  const bool cuda = torch::cuda::is_available();
  if (name == "cuda" && !cuda) throw std::runtime_error("train.device: found \"cuda\", but no CUDA device is visible");
  if (name == "cpu" || !cuda) return torch::kCPU;
  const auto count = static_cast<int>(torch::cuda::device_count());
  return {torch::kCUDA, static_cast<c10::DeviceIndex>(world.local_rank % count)};
}

// OMP_NUM_THREADS first: `launch --threads` and SLURM job scripts share cores out through it.
int64_t default_threads(const dist::World& world) {
  if (const char* omp = std::getenv("OMP_NUM_THREADS")) {
    const int64_t n = std::atoll(omp);
    if (n > 0) return n;
  }
  const int64_t cores = std::max(1u, std::thread::hardware_concurrency());
  return std::max<int64_t>(1, cores / std::max(1, world.local_size));
}

data::AugmentOptions augment_options(bool augment) {
  data::AugmentOptions options;
  if (augment) return options;
  // Every branch reduced to the plain Resize((S, S)).
  options.hflip_p = options.vflip_p = options.side_padding_p = options.rotation_p = options.jitter_p = 0;
  options.crop_scale_min = options.crop_scale_max = 1;
  options.crop_ratio_min = options.crop_ratio_max = 1;
  options.center_crop_enlarge = 1;
  return options;
}

// Seconds since `start`, after the device finished its queued work (CUDA is asynchronous).
double lap(Clock::time_point& start, const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
  const auto now = Clock::now();
  const double seconds = std::chrono::duration<double>(now - start).count();
  start = now;
  return seconds;
}

std::string format_step_line(int64_t step, int64_t epoch, double loss, double lr, double grad_norm,
                             double images_per_s) {
  std::ostringstream line;
  line << "step " << step << " epoch " << epoch << " loss " << loss << " lr " << lr << " grad_norm " << grad_norm
       << " images/s " << images_per_s;
  return line.str();
}

// Which checkpoint to continue from, "" for a fresh run.
std::string resolve_resume(const PretrainOptions& options) {
  if (options.resume.empty()) {
    const std::string existing = latest_checkpoint(options.run_dir);
    if (!existing.empty())
      throw std::runtime_error(options.run_dir + ": holds checkpoint " + existing +
                               "; expected --resume auto (continue) or another --run-dir (start afresh)");
    return "";
  }
  if (options.resume == "auto") return latest_checkpoint(options.run_dir);
  return options.resume;
}

}  // namespace

PretrainResult pretrain(const RunConfig& config_in, const PretrainOptions& options) {
  RunConfig config = config_in;
  if (options.max_steps > 0) config.train.max_steps = options.max_steps;
  if (options.run_dir.empty()) throw std::runtime_error("pretrain: run_dir: found \"\", expected a folder for the run");
  if (config.data.path.empty())
    throw std::runtime_error("pretrain: data.path: found \"\", expected a packed dataset folder (--data)");

  if (!config.model.init.empty() && !fs::is_regular_file(config.model.init))
    throw std::runtime_error("model.init: found \"" + config.model.init +
                             "\", no such file; expected the initial weights (e.g. DINOv2 ViT-S/14-reg4 as timm "
                             ".safetensors or Meta's .pth), or \"\" for a seeded random init");
  const dist::World& world = dist::init_world();
  const bool root = world.is_root();
  const torch::Device device = pick_device(config.train.device, world);
  const c10::DeviceGuard device_guard(device);
  const bool bf16 = config.train.precision == "bf16" || (config.train.precision == "auto" && device.is_cuda());
  if (bf16 && !device.is_cuda())
    throw std::runtime_error("train.precision: found \"bf16\" on a CPU device, expected fp32 or auto");
  at::set_num_threads(static_cast<int>(config.train.threads > 0 ? config.train.threads : default_threads(world)));

  const int64_t global_batch = config.data.batch_size;
  const int64_t accum = config.train.grad_accum;
  const int64_t micro_batch = global_batch / accum;  // global samples per loader step
  if (micro_batch % world.size != 0)
    throw std::runtime_error("data.batch_size: found " + std::to_string(global_batch) +
                             ", expected a multiple of train.grad_accum x ranks (" + std::to_string(accum) + " x " +
                             std::to_string(world.size) + ")");

  auto comm = dist::make_communicator(dist::parse_backend(config.dist.backend), world,
                                      dist::CommunicatorOptions{config.dist.timeout_s, device.type(), device.index()});
  if (root) fs::create_directories(options.run_dir);
  comm->barrier();

  // ---- where to start: every rank must pick the same checkpoint ----
  const std::string resume_path = resolve_resume(options);
  std::optional<Checkpoint> checkpoint;
  if (!resume_path.empty()) checkpoint = load_checkpoint(resume_path);
  {
    const float step = checkpoint ? static_cast<float>(checkpoint->state.step) : -1.0f;
    const auto all = comm->all_gather(torch::full({1}, step, torch::TensorOptions().device(device)));
    if (!all.eq(step).all().item<bool>())
      throw std::runtime_error(options.run_dir + ": ranks found different checkpoints to resume (is the run folder "
                               "on a shared file system?)");
  }
  const json identity = identity_fields(config);
  ResumePlan resume_plan;
  if (checkpoint)
    resume_plan = plan_resume(resume_path, checkpoint->state, identity, global_batch, options.allow_batch_change);

  const json resolved_config = to_json(config);
  const std::string resolved_hash = config_hash(config);
  RunLog log(options.run_dir, root);
  if (root) {
    json resolved = resolved_config;
    resolved["config_hash"] = resolved_hash;
    data::write_file_atomic(options.run_dir + "/config.json", resolved.dump(2) + "\n");
    log.truncate_metrics_after(checkpoint ? checkpoint->state.step : 0);
    record_session(options.run_dir, {checkpoint ? checkpoint->state.step : 0, world.host, world.size, world.local_size,
                                     at::get_num_threads(), device.str(), dist::backend_name(comm->backend()), world});
  }
  NodeProgress node_progress(options.run_dir, world);

  // ---- model: student = initial weights, teacher = a frozen copy of them ----
  model::VitOptions vit = model::arch_options(config.model.arch, config.model.img_size);
  model::VisionTransformer student(vit);
  if (!config.model.init.empty())
    model::load_weights_file(*student, config.model.init);
  else
    student->init_weights(config.model.init_seed);
  torch::manual_seed(config.model.init_seed);  // the projector's init
  model::TokenReconstruction wrapper(student, config.objective);
  if (checkpoint) wrapper->load_state(checkpoint->model);
  wrapper->to_device(device);
  wrapper->train();

  Optimizer optimizer(wrapper->optimized_parameters(), config.optim);
  if (checkpoint) {
    optimizer.load_state(checkpoint->optimizer, checkpoint->state.adam_step, resume_path);
    for (const auto& [name, state] : checkpoint->rng)
      if (name == kCpuGenerator) {
        at::Generator generator = at::detail::getDefaultCPUGenerator();  // shares the global one
        generator.set_state(state);
      }
  }
  std::vector<torch::Tensor> parameters = wrapper->parameters();  // every gradient: clip and all-reduce
  dist::GradientReducer reducer(*comm, parameters,
                                {static_cast<int64_t>(config.dist.bucket_mb * 1024 * 1024)});

  data::LoaderOptions loader_options;
  loader_options.dataset_dir = config.data.path;
  loader_options.split = config.data.split;
  loader_options.mode = data::LoaderMode::kTrain;
  loader_options.global_batch_size = micro_batch;
  loader_options.rank = world.rank;
  loader_options.world_size = world.size;
  loader_options.seed = config.data.seed;
  loader_options.img_size = static_cast<int>(config.model.img_size);
  loader_options.augment = augment_options(config.data.augment);
  loader_options.workers = static_cast<int>(config.data.workers);
  loader_options.prefetch = static_cast<int>(config.data.prefetch);
  data::Loader loader(loader_options);
  const int64_t steps_per_epoch = loader.steps_per_epoch() / accum;
  if (steps_per_epoch == 0)
    throw std::runtime_error("data.batch_size: found " + std::to_string(global_batch) + ", expected at most the " +
                             std::to_string(loader.split_size()) + " images of split '" + config.data.split + "'");

  const model::CosineSchedule schedule({config.optim.lr, config.optim.cosine_epochs, config.optim.warmup_epochs,
                                        config.optim.warmup_lr, config.optim.min_lr, false, 1});
  auto energy_options = energy::energy_options_from_json(config.energy);
  if (energy_options.gpus_per_rank < 0) energy_options.gpus_per_rank = device.is_cuda() ? 1 : 0;
  energy::EnergyTracker tracker(energy_options, world, comm.get(), options.run_dir);
  const double flops_per_image = 4 * model::forward_flops(vit);  // teacher fwd + student fwd + bwd (2x)

  TrainingState state;
  if (checkpoint) {
    state = checkpoint->state;
    state.epoch_step = resume_plan.epoch_step;
  }
  state.identity = identity;
  state.config = resolved_config;
  state.config_hash = resolved_hash;
  const int64_t start_step = state.step;
  PretrainResult result;
  result.last_loss = state.last_loss;
  if (checkpoint && root) result.checkpoint = resume_path;

  // The position to continue from: a finished epoch continues at the next one's start.
  auto position = [&]() {
    TrainingState at = state;
    if (at.epoch_step == steps_per_epoch) at.epoch += 1, at.epoch_step = 0;
    at.samples_seen = at.epoch_step * global_batch;
    at.adam_step = optimizer.step_count();
    return at;
  };
  int64_t saved_step = checkpoint ? checkpoint->state.step : -1;
  auto save = [&]() {
    if (state.step == saved_step) return;  // e.g. max_steps right after a periodic checkpoint
    saved_step = state.step;
    energy::PhaseScope phase(tracker, energy::Phase::kCheckpoint);
    if (root) {
      Checkpoint out;
      out.state = position();
      out.model = wrapper->state();
      out.optimizer = optimizer.state();
      out.rng.emplace_back(kCpuGenerator, at::detail::getDefaultCPUGenerator().get_state());
      result.checkpoint = save_checkpoint(options.run_dir, out, config.train.keep_last);
      log.event("checkpoint " + result.checkpoint);
    }
    comm->barrier();
  };
  auto finish = [&](PretrainStatus status) {
    node_progress.update(state.step, position().epoch, /*force=*/true);
    const double images = static_cast<double>((state.step - start_step) * global_batch);
    tracker.finish(images, images * flops_per_image);
    if (root) tracker.print_summary(std::cerr);
    result.status = status;
    result.step = state.step;
    result.epoch = position().epoch;
    return result;
  };

  if (!resume_plan.note.empty()) log.event(resume_plan.note);
  log.event(std::string(checkpoint ? "resuming from " + resume_path : "starting") + ": " + config.model.arch + " at " +
            std::to_string(config.model.img_size) + " px, " + std::to_string(world.size) + " rank(s) × " +
            std::to_string(at::get_num_threads()) + " thread(s) on " + device.str() + (bf16 ? " (bf16 autocast)" : " (fp32)") +
            " on " + std::to_string(world.hosts().size()) + " host(s), global batch " + std::to_string(global_batch) + ", " + std::to_string(steps_per_epoch) + " steps per epoch, " +
            std::to_string(config.optim.epochs) + " epochs");
  StopSignalGuard stop_signal;
  tracker.start();
  const auto tensor_options = torch::TensorOptions().dtype(torch::kFloat32).device(device);

  for (; state.epoch < config.optim.epochs; state.epoch += 1, state.epoch_step = 0) {
    const double lr = schedule.lr(state.epoch);
    optimizer.set_lr(lr);
    loader.start(state.epoch, state.epoch_step * accum);
    data::Progress progress({"epoch " + std::to_string(state.epoch + 1) + "/" + std::to_string(config.optim.epochs),
                             "images", root ? data::ProgressStyle::kAuto : data::ProgressStyle::kSilent, 10},
                            steps_per_epoch * global_batch);
    progress.advance(state.epoch_step * global_batch);

    while (state.epoch_step < steps_per_epoch) {
      if (config.train.max_steps > 0 && state.step >= config.train.max_steps) {
        progress.finish();
        save();
        log.event("reached max_steps " + std::to_string(config.train.max_steps));
        return finish(PretrainStatus::kMaxSteps);
      }
      comm->set_step(state.step + 1);  // numbered as metrics.jsonl numbers the step being trained
      for (auto& parameter : parameters) parameter.mutable_grad().reset();
      double t_data = 0, t_teacher = 0, t_student = 0;
      auto clock = Clock::now();
      const auto step_start = clock;
      torch::Tensor loss_sum = torch::zeros({}, tensor_options);
      for (int64_t micro = 0; micro < accum; ++micro) {
        // Each phase ends with its lap, whose device sync belongs to that phase's energy.
        torch::Tensor images;
        int64_t clean_index = -1;  // the global batch's last sample (last position of its last micro-batch) stays clean
        model::CorruptionDraws draws;
        {
          energy::PhaseScope phase(tracker, energy::Phase::kData);
          const std::optional<data::Batch> batch = loader.next();
          if (!batch) throw std::runtime_error("pretrain: the loader ended epoch " + std::to_string(state.epoch) +
                                               " before step " + std::to_string(state.epoch_step));
          images = batch->images.to(device);
          if (micro == accum - 1)
            for (size_t i = 0; i < batch->global_positions.size(); ++i)
              if (batch->global_positions[i] == micro_batch - 1) clean_index = static_cast<int64_t>(i);
          draws = model::draw_corruption({config.data.seed, state.epoch, state.step}, batch->dataset_indices, vit, device);
          t_data += lap(clock, device);
        }

        torch::Tensor target;
        {
          energy::PhaseScope phase(tracker, energy::Phase::kTeacherForward);
          const CudaBf16Autocast autocast(bf16);
          target = wrapper->teacher_forward(images);
          t_teacher += lap(clock, device);
        }
        {
          energy::PhaseScope phase(tracker, energy::Phase::kStudentForwardBackward);
          model::TokenReconstructionOutput out;
          {
            const CudaBf16Autocast autocast(bf16);
            out = wrapper->student_forward(images, target, draws, clean_index);
          }
          const torch::Tensor loss = out.loss / static_cast<double>(accum);
          if (micro + 1 < accum) {
            auto no_sync = reducer.no_sync();
            loss.backward();
          } else {
            loss.backward();
          }
          loss_sum += loss.detach();
          t_student += lap(clock, device);
        }
      }

      // Gradients, the step's loss and the stop flag, agreed over ranks.
      torch::Tensor shared;
      double t_allreduce = 0;
      {
        energy::PhaseScope phase(tracker, energy::Phase::kAllreduce);
        reducer.finalize();
        shared = torch::stack({loss_sum, torch::full({}, stop_signal.received() != 0 ? 1.0f : 0.0f, tensor_options)});
        comm->all_reduce(shared, dist::ReduceOp::kSum);
        t_allreduce = lap(clock, device);
      }
      const auto values = shared.to(torch::kCPU);
      const double loss = values[0].item<double>() / world.size;
      const bool stop = values[1].item<double>() > 0;
      if (!std::isfinite(loss)) {
        const std::string good = latest_checkpoint(options.run_dir);
        throw std::runtime_error("pretrain: step " + std::to_string(state.step + 1) + " (epoch " +
                                 std::to_string(state.epoch) + "): loss is " + std::to_string(loss) +
                                 "; stopped before the optimizer step, last good checkpoint: " +
                                 (good.empty() ? std::string("none") : good));
      }
      double grad_norm = 0, t_optimizer = 0;
      {
        energy::PhaseScope phase(tracker, energy::Phase::kOptimizer);
        grad_norm = clip_grad_norm(parameters, config.optim.clip_grad_norm);
        optimizer.step();
        t_optimizer = lap(clock, device);
      }
      const double step_seconds = std::chrono::duration<double>(clock - step_start).count();
      state.step += 1;
      state.epoch_step += 1;
      state.last_loss = result.last_loss = loss;

      const double images_per_s = static_cast<double>(global_batch) / step_seconds;
      log.metrics({{"step", state.step}, {"epoch", state.epoch}, {"loss", loss}, {"lr", lr}, {"grad_norm", grad_norm},
                   {"images_per_s", images_per_s},
                   {"time_s", {{"step", step_seconds}, {"data", t_data}, {"teacher", t_teacher}, {"student", t_student},
                               {"allreduce", t_allreduce}, {"optimizer", t_optimizer}}}});
      if (state.step % config.train.log_every == 0)
        log.detail(format_step_line(state.step, state.epoch, loss, lr, grad_norm, images_per_s));
      std::ostringstream note;
      note << "loss " << loss;
      progress.set_note(note.str());
      progress.advance(global_batch);
      node_progress.update(state.step, state.epoch);
      if (options.on_step) options.on_step(state.step);

      const bool last = state.epoch + 1 == config.optim.epochs && state.epoch_step == steps_per_epoch;
      if (last) break;
      if (stop) {
        progress.finish();
        log.event("stop signal at step " + std::to_string(state.step) + ": checkpointing for requeue");
        save();
        return finish(PretrainStatus::kPreempted);
      }
      if (config.train.checkpoint_every_steps > 0 && state.step % config.train.checkpoint_every_steps == 0) save();
    }
    progress.finish();
    const int64_t done = state.epoch + 1;
    if (done < config.optim.epochs && config.train.checkpoint_every_epochs > 0 &&
        done % config.train.checkpoint_every_epochs == 0)
      save();
  }
  state.epoch = config.optim.epochs - 1;
  state.epoch_step = steps_per_epoch;
  save();
  log.event("finished " + std::to_string(config.optim.epochs) + " epochs, " + std::to_string(state.step) +
            " steps, last loss " + std::to_string(result.last_loss));
  return finish(PretrainStatus::kCompleted);
}

}  // namespace gf::train
