#include "train/trainer.hpp"

#include <ATen/Parallel.h>
#include <torch/cuda.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <sstream>
#include <stdexcept>

#include "base/atomic_file.hpp"
#include "base/error.hpp"
#include "base/parallel_for.hpp"
#include "dist/device.hpp"
#include "model/arch_registry.hpp"
#include "model/autocast.hpp"
#include "model/weights.hpp"
#include "train/provenance.hpp"

namespace gf::train {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

const char* const kCpuGenerator = "torch_cpu";

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

std::string format_step_line(const MetricsRecord& r) {
  std::ostringstream line;
  line << "step " << r.step << " epoch " << r.epoch << " loss " << r.loss << " lr " << r.lr << " grad_norm "
       << r.grad_norm << " clip_coef " << r.clip_coef << " grad_scale " << r.grad_scale << (r.skipped ? " skipped" : "")
       << " images/s " << r.images_per_s;
  return line.str();
}

// Which checkpoint to continue from ("" for a fresh run) and, for the log, what was passed over.
// auto never starts afresh over checkpoints that were complete once: with every step-N folder
// torn it refuses, naming them; a torn newer one is passed over for the newest complete.
struct ResumeChoice {
  std::string path, note;
};

ResumeChoice resolve_resume(const PretrainOptions& options) {
  const std::string latest = latest_checkpoint(options.run_dir);
  if (options.resume.empty()) {
    if (!latest.empty())
      throw base::FieldError(options.run_dir, "resume", "found \"\" with checkpoint " + latest +
                                                            " here, expected \"auto\" (continue) or another run folder (start afresh)");
    return {};
  }
  if (options.resume != "auto") return {options.resume, ""};
  std::string torn;
  for (const auto& other : incomplete_checkpoints(options.run_dir))
    if (other.torn && other.path > latest) torn += (torn.empty() ? "" : "; ") + other.why;
  if (torn.empty()) return {latest, ""};
  if (latest.empty())
    base::throw_found_expected(options.run_dir, "resume", "\"auto\" and no complete checkpoint, only torn ones (" + torn + ")",
                               "a complete checkpoint to continue from: restore one, or start afresh in another run folder");
  return {latest, "passed over torn checkpoints newer than " + latest + ": " + torn};
}

// The config the run trains with (options.max_steps applied), its inputs checked before any
// rank starts MPI.
RunConfig effective_config(const RunConfig& config_in, const PretrainOptions& options) {
  RunConfig config = config_in;
  if (options.max_steps > 0) config.train.max_steps = options.max_steps;
  if (options.run_dir.empty()) base::throw_found_expected("pretrain", "run_dir", "\"\"", "a folder for the run");
  if (config.data.path.empty()) base::throw_found_expected("pretrain", "data.path", "\"\"", "a packed dataset folder");
  if (!config.model.init.empty() && !fs::is_regular_file(config.model.init))
    base::throw_found_expected("pretrain", "model.init", base::shown(config.model.init) + ", no such file",
                               "the initial weights (e.g. DINOv2 ViT-S/14-reg4 as timm .safetensors or Meta's "
                               ".pth), or \"\" for a seeded random init");
  return config;
}

// The wrapper's parameters as the loss scaler sees them: those the optimizer holds (with
// their positions in `all`), and the others with their published names (from `state`).
struct ParameterSplit {
  std::vector<torch::Tensor> held;
  std::vector<int64_t> held_positions;
  model::NamedTensors unheld;
};

ParameterSplit split_by_optimizer(const std::vector<torch::Tensor>& all, const model::NamedTensors& state,
                                  const model::NamedTensors& optimized) {
  auto is_optimized = [&](const torch::Tensor& tensor) {
    for (const auto& item : optimized)
      if (item.second.is_same(tensor)) return true;
    return false;
  };
  ParameterSplit split;
  for (size_t i = 0; i < all.size(); ++i)
    if (is_optimized(all[i])) split.held.push_back(all[i]), split.held_positions.push_back(static_cast<int64_t>(i));
  for (const auto& [name, tensor] : state)
    if (tensor.requires_grad() && !is_optimized(tensor)) split.unheld.emplace_back(name, tensor);
  return split;
}

}  // namespace

// Seconds of each phase of a step, measured after the device finished its queued work (CUDA
// is asynchronous), so a phase's sync belongs to that phase's time and energy.
class Trainer::StepClock {
 public:
  explicit StepClock(torch::Device device) : device_(device), start_(Clock::now()), last_(start_) {}
  double lap() {
    if (device_.is_cuda()) torch::cuda::synchronize(device_.index());
    const auto now = Clock::now();
    const double seconds = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    return seconds;
  }
  double total() const { return std::chrono::duration<double>(last_ - start_).count(); }  // up to the last lap

 private:
  torch::Device device_;
  Clock::time_point start_, last_;
};

Trainer::Trainer(const RunConfig& config, const PretrainOptions& options)
    : config_(effective_config(config, options)), options_(options), world_(dist::init_world()) {
  root_ = world_.is_root();
  setup_device();
  setup_communicator();
  resume();
  build_model();
  build_data();
  write_run_files();  // last: a resume that fails (checkpoint, config, data) leaves the run folder as it was
}

Trainer::~Trainer() = default;

void Trainer::setup_device() {
  device_ = dist::select_device(config_.train.device, world_, "train.device");
  device_guard_.emplace(device_);
  bf16_ = config_.train.precision == Precision::kBf16 || (config_.train.precision == Precision::kAuto && device_.is_cuda());
  if (bf16_ && !device_.is_cuda())
    base::throw_found_expected("pretrain", "train.precision", "\"bf16\" on a CPU device", "fp32 or auto");
  // One compute pool: this LibTorch runs ATen, MKL (GNU OpenMP layer) and oneDNN on the one
  // libgomp team this sizes; the loader's workers run ATen single-threaded. On 2 idle cores 2
  // threads trained ~1.8x faster than 1. libgomp spins up to ~3 ms per barrier: on loaded cores
  // 2 threads ran ~2x slower than with OMP_WAIT_POLICY=passive or GOMP_SPINCOUNT=10000, which
  // cost 5-10% on idle cores; libgomp reads them only at process start, so they stay the
  // environment's choice (shared nodes: set one).
  at::set_num_threads(base::resolve_threads(static_cast<int>(config_.train.threads), world_.local_size, "train.threads"));
}

void Trainer::setup_communicator() {
  global_batch_ = config_.data.batch_size;
  accum_ = config_.train.grad_accum;
  micro_batch_ = global_batch_ / accum_;
  if (micro_batch_ % world_.size != 0)
    base::throw_found_expected("pretrain", "data.batch_size", std::to_string(global_batch_),
                               "a multiple of train.grad_accum x ranks (" + std::to_string(accum_) + " x " +
                                   std::to_string(world_.size) + ")");
  comm_ = dist::make_communicator(config_.dist.backend, world_,
                                  dist::CommunicatorOptions{config_.dist.timeout_s, device_.type(), device_.index()});
  if (root_) fs::create_directories(options_.run_dir);
  comm_->barrier();
}

void Trainer::resume() {
  // Every rank must pick the same checkpoint.
  const ResumeChoice choice = resolve_resume(options_);
  resume_path_ = choice.path;
  resume_note_ = choice.note;
  if (!resume_path_.empty()) checkpoint_ = load_checkpoint(resume_path_);
  const float step = checkpoint_ ? static_cast<float>(checkpoint_->state.step) : -1.0f;
  const auto all = comm_->all_gather(torch::full({1}, step, torch::TensorOptions().device(device_)));
  if (!all.eq(step).all().item<bool>())
    throw std::runtime_error(options_.run_dir + ": ranks found different checkpoints to resume (is the run folder "
                             "on a shared file system?)");
  identity_ = identity_fields(config_);
  resolved_config_ = to_json(config_);
  resolved_hash_ = config_hash(config_);
  dataset_ = {{"fingerprint", dataset_fingerprint(config_.data.path)}, {"path", config_.data.path}};
  if (checkpoint_)
    resume_plan_ = plan_resume(resume_path_, checkpoint_->state,
                               ResumeRequest{identity_, global_batch_, dataset_, options_.allow_batch_change,
                                             options_.allow_dataset_change});
}

void Trainer::write_run_files() {
  log_ = std::make_unique<RunLog>(options_.run_dir, root_);
  node_progress_ = std::make_unique<NodeProgress>(options_.run_dir, world_);
  if (!root_) return;
  json resolved = resolved_config_;
  resolved["config_hash"] = resolved_hash_;
  base::write_file_atomic(options_.run_dir + "/config.json", resolved.dump(2) + "\n");
  log_->truncate_metrics_after(start_step_);
  record_session(options_.run_dir, {start_step_, world_.host, world_.size, world_.local_size, at::get_num_threads(),
                                    device_.str(), dist::backend_name(comm_->backend()), world_});
}

void Trainer::build_model() {
  // Token Reconstruction: student = the initial weights, teacher = a frozen copy of them.
  // Masked pixels: the encoder alone, with its pixel head.
  vit_ = model::arch_options(config_.model.arch, config_.model.img_size);
  model::VisionTransformer student(vit_);
  if (!config_.model.init.empty())
    model::load_weights_file(*student, config_.model.init);
  else
    student->init_weights(config_.model.init_seed);
  torch::manual_seed(config_.model.init_seed);  // the projector's (or pixel head's) init
  torch::nn::Module* objective = nullptr;
  model::NamedTensors optimized, state;
  if (config_.objective_kind == ObjectiveKind::kMaskedPixels) {
    masked_ = model::MaskedPixelObjective(student, config_.masked_pixels);
    if (checkpoint_) masked_->load_state(checkpoint_->model);
    masked_->to(device_);
    objective = masked_.get();
    optimized = masked_->optimized_parameters();
    state = masked_->state();
  } else {
    wrapper_ = model::TokenReconstruction(student, config_.objective);
    if (checkpoint_) wrapper_->load_state(checkpoint_->model);
    wrapper_->to_device(device_);
    objective = wrapper_.get();
    optimized = wrapper_->optimized_parameters();
    state = wrapper_->state();
  }
  objective->train();

  optimizer_ = std::make_unique<Optimizer>(optimized, config_.optim);
  parameters_ = objective->parameters();
  ParameterSplit split = split_by_optimizer(parameters_, state, optimized);
  optimized_index_ = torch::tensor(split.held_positions, torch::kLong).to(device_);
  scaler_ = std::make_unique<GradScaler>(
      GradScalerOptions{parse_grad_scaler_mode(config_.optim.grad_scaler), config_.optim.grad_scaler_init_scale,
                        config_.optim.grad_scaler_growth_interval},
      std::move(split.held), std::move(split.unheld));
  if (checkpoint_) {
    optimizer_->load_state(checkpoint_->optimizer, checkpoint_->state.adam_step, resume_path_);
    scaler_->load_state({checkpoint_->state.grad_scale, checkpoint_->state.grad_scale_growth, checkpoint_->carried_grads},
                        resume_path_);
    for (const auto& [name, state] : checkpoint_->rng)
      if (name == kCpuGenerator) {
        at::Generator generator = at::detail::getDefaultCPUGenerator();  // shares the global one
        generator.set_state(state);
      }
  }
  reducer_ = std::make_unique<dist::GradientReducer>(
      *comm_, parameters_, dist::GradientReducerOptions{static_cast<int64_t>(config_.dist.bucket_mb * 1024 * 1024)});
}

void Trainer::build_data() {
  data::LoaderOptions loader_options;
  loader_options.dataset_dir = config_.data.path;
  loader_options.split = config_.data.split;
  loader_options.fraction = config_.data.fraction;
  loader_options.mode = data::LoaderMode::kTrain;
  loader_options.global_batch_size = micro_batch_;
  loader_options.drop_last = config_.data.drop_last;
  loader_options.rank = world_.rank;
  loader_options.world_size = world_.size;
  loader_options.seed = config_.data.seed;
  loader_options.img_size = static_cast<int>(config_.model.img_size);
  loader_options.augment = augment_options(config_.data.augment);
  loader_options.workers = static_cast<int>(config_.data.workers);
  loader_options.prefetch = static_cast<int>(config_.data.prefetch);
  loader_options.device = device_;
  loader_ = std::make_unique<data::Loader>(loader_options);
  // A kept last batch is one step of fewer micro-batches, the last of them smaller.
  const int64_t micro_steps = loader_->steps_per_epoch();
  steps_per_epoch_ = config_.data.drop_last ? micro_steps / accum_ : (micro_steps + accum_ - 1) / accum_;
  epoch_images_ = config_.data.drop_last ? steps_per_epoch_ * global_batch_ : loader_->split_size();
  if (steps_per_epoch_ == 0)
    base::throw_found_expected("pretrain", "data.batch_size", std::to_string(global_batch_),
                               "at most the " + std::to_string(loader_->split_size()) + " images of split '" +
                                   config_.data.split + "'");

  schedule_.emplace(model::CosineScheduleOptions{config_.optim.lr, config_.optim.cosine_epochs,
                                                 config_.optim.warmup_epochs, config_.optim.warmup_lr,
                                                 config_.optim.min_lr, false, 1});
  energy::EnergyOptions energy_options = config_.energy;
  if (energy_options.gpus_per_rank < 0) energy_options.gpus_per_rank = device_.is_cuda() ? 1 : 0;
  tracker_ = std::make_unique<energy::EnergyTracker>(energy_options, world_, comm_.get(), options_.run_dir);
  // Token Reconstruction: teacher fwd + student fwd + bwd (2x); masked pixels: no teacher.
  flops_per_image_ = (wrapper_ ? 4 : 3) * model::forward_flops(vit_);

  if (checkpoint_) {
    state_ = checkpoint_->state;
    state_.epoch_step = resume_plan_.epoch_step;
  }
  state_.identity = identity_;
  state_.dataset = dataset_;
  state_.config = resolved_config_;
  state_.config_hash = resolved_hash_;
  start_step_ = state_.step;
  result_.last_loss = state_.last_loss;
  if (checkpoint_) {
    saved_step_ = checkpoint_->state.step;
    if (root_) result_.checkpoint = resume_path_;
  }
  checkpoint_.reset();  // its tensors are in the model and optimizer now
}

PretrainResult Trainer::run() {
  if (!resume_note_.empty()) log_->event(resume_note_);
  if (!resume_plan_.note.empty()) log_->event(resume_plan_.note);
  log_->event((resume_path_.empty() ? std::string("starting") : "resuming from " + resume_path_) + ": " +
              base::enum_name(config_.objective_kind, kObjectiveKindNames) + ", " + config_.model.arch + " at " +
              std::to_string(config_.model.img_size) + " px, " +
              std::to_string(world_.size) + " rank(s) × " + std::to_string(at::get_num_threads()) + " thread(s) on " +
              device_.str() + (bf16_ ? " (bf16 autocast)" : " (fp32)") + " on " +
              std::to_string(world_.hosts().size()) + " host(s), global batch " +
              std::to_string(global_batch_) + ", " + std::to_string(steps_per_epoch_) + " steps per epoch, " +
              std::to_string(config_.optim.epochs) + " epochs, loss scaler " + config_.optim.grad_scaler);
  const StopSignalGuard stop_signal;
  tracker_->start();
  for (; state_.epoch < config_.optim.epochs; state_.epoch += 1, state_.epoch_step = 0)
    if (const auto status = train_epoch(stop_signal)) return finish(*status);
  state_.epoch = config_.optim.epochs - 1;
  state_.epoch_step = steps_per_epoch_;
  save();
  log_->event("finished " + std::to_string(config_.optim.epochs) + " epochs, " + std::to_string(state_.step) +
              " steps, last loss " + std::to_string(result_.last_loss));
  return finish(PretrainStatus::kCompleted);
}

std::optional<PretrainStatus> Trainer::train_epoch(const StopSignalGuard& stop_signal) {
  const double lr = schedule_->lr(state_.epoch);
  optimizer_->set_lr(lr);
  loader_->start(state_.epoch, state_.epoch_step * accum_);
  base::Progress progress({"epoch " + std::to_string(state_.epoch + 1) + "/" + std::to_string(config_.optim.epochs),
                           "images", root_ ? base::ProgressStyle::kAuto : base::ProgressStyle::kSilent, 10},
                          epoch_images_);
  progress.advance(state_.epoch_step * global_batch_);

  while (state_.epoch_step < steps_per_epoch_) {
    if (max_steps_reached()) {
      progress.finish();
      save();
      log_->event("reached max_steps " + std::to_string(config_.train.max_steps));
      return PretrainStatus::kMaxSteps;
    }
    const StepOutcome outcome = step(lr, stop_signal);
    record(outcome, progress);
    const bool last = state_.epoch + 1 == config_.optim.epochs && state_.epoch_step == steps_per_epoch_;
    if (last) break;
    if (outcome.stop) {
      progress.finish();
      log_->event("stop signal at step " + std::to_string(state_.step) + ": checkpointing for requeue");
      save();
      return PretrainStatus::kPreempted;
    }
    maybe_checkpoint_after_step();
  }
  progress.finish();
  maybe_checkpoint_after_epoch();
  return std::nullopt;
}

Trainer::StepOutcome Trainer::step(double lr, const StopSignalGuard& stop_signal) {
  comm_->set_step(state_.step + 1);  // numbered as metrics.jsonl numbers the step being trained
  for (auto& parameter : parameters_) parameter.mutable_grad().reset();
  StepOutcome outcome;
  MetricsRecord& metrics = outcome.record;
  StepClock clock(device_);
  // Global samples of this step: the global batch, or what an epoch's kept last batch holds.
  outcome.images = std::min(global_batch_, epoch_images_ - state_.epoch_step * global_batch_);
  const int64_t micro_steps = (outcome.images + micro_batch_ - 1) / micro_batch_;
  torch::Tensor loss_sum = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat32).device(device_));
  for (int64_t micro = 0; micro < micro_steps; ++micro)
    loss_sum += forward_backward(micro, micro_steps, outcome.images, clock, metrics.time_s);
  reduce(loss_sum, stop_signal.received() != 0, clock, outcome);
  update(clock, outcome);
  metrics.time_s.step = clock.total();
  state_.step += 1;
  state_.epoch_step += 1;
  state_.last_loss = result_.last_loss = metrics.loss;
  metrics.step = state_.step;
  metrics.epoch = state_.epoch;
  metrics.lr = lr;
  metrics.images_per_s = static_cast<double>(outcome.images) / metrics.time_s.step;
  images_trained_ += outcome.images;
  return outcome;
}

torch::Tensor Trainer::forward_backward(int64_t micro, int64_t micro_steps, int64_t step_images, StepClock& clock,
                                        StepTimes& times) {
  // Each phase ends with its lap, whose device sync belongs to that phase's energy.
  torch::Tensor images;
  int64_t clean_index = -1;  // the global batch's last sample (last position of its last micro-batch) stays clean
  model::CorruptionDraws draws;
  {
    energy::PhaseScope phase(*tracker_, energy::Phase::kData);
    const std::optional<data::Batch> batch = loader_->next();
    if (!batch)
      throw std::runtime_error("pretrain: the loader ended epoch " + std::to_string(state_.epoch) + " before step " +
                               std::to_string(state_.epoch_step));
    images = batch->images.to(device_);
    if (micro == micro_steps - 1)
      for (size_t i = 0; i < batch->global_positions.size(); ++i)
        if (batch->global_positions[i] == batch->global_batch_size - 1) clean_index = static_cast<int64_t>(i);
    if (images.size(0) > 0)
      draws = model::draw_corruption({config_.data.seed, state_.epoch, state_.step}, batch->dataset_indices, vit_, device_);
    times.data += clock.lap();
  }
  // A rank with no sample of a kept last batch adds nothing; the reducer's finalize() still
  // meets the others.
  if (images.size(0) == 0) return torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat32).device(device_));
  torch::Tensor target;  // Token Reconstruction's: the frozen teacher's tokens
  if (wrapper_) {
    if (options_.on_inputs) options_.on_inputs(StepInputs{state_.step, micro, images, draws, clean_index, *wrapper_});
    energy::PhaseScope phase(*tracker_, energy::Phase::kTeacherForward);
    const model::CudaBf16Autocast autocast(bf16_);
    target = wrapper_->teacher_forward(images);
    times.teacher += clock.lap();
  }
  energy::PhaseScope phase(*tracker_, energy::Phase::kStudentForwardBackward);
  torch::Tensor objective_loss;
  {
    const model::CudaBf16Autocast autocast(bf16_);
    objective_loss = wrapper_ ? wrapper_->student_forward(images, target, draws, clean_index).loss
                              : masked_->forward(images, draws.mask_uniform).loss;
  }
  // This rank's mean weighted by its share of the step's samples, so that the reducer's mean
  // over ranks is the mean over the step's samples (accum_ for every full micro-batch).
  const torch::Tensor loss =
      objective_loss / (static_cast<double>(step_images) / static_cast<double>(images.size(0) * world_.size));
  if (micro + 1 < micro_steps) {
    auto no_sync = reducer_->no_sync();
    loss.backward();
  } else {
    loss.backward();
  }
  times.student += clock.lap();
  return loss.detach();
}

void Trainer::reduce(const torch::Tensor& loss_sum, bool stop_here, StepClock& clock, StepOutcome& outcome) {
  // Gradients, the step's loss and the stop flag, agreed over ranks.
  torch::Tensor shared;
  {
    energy::PhaseScope phase(*tracker_, energy::Phase::kAllreduce);
    reducer_->finalize();
    shared = torch::stack({loss_sum, torch::full({}, stop_here ? 1.0f : 0.0f, loss_sum.options())});
    comm_->all_reduce(shared, dist::ReduceOp::kSum);
    outcome.record.time_s.allreduce = clock.lap();
  }
  const auto values = shared.to(torch::kCPU);
  const double loss = values[0].item<double>() / world_.size;
  outcome.record.loss = loss;
  outcome.stop = values[1].item<double>() > 0;
  if (std::isfinite(loss)) return;
  throw std::runtime_error("pretrain: step " + std::to_string(state_.step + 1) + " (epoch " +
                           std::to_string(state_.epoch) + "): loss is " + std::to_string(loss) +
                           "; stopped before the optimizer step, " + last_good_text());
}

std::string Trainer::last_good_text() const {
  const std::string good = last_good_checkpoint(options_.run_dir);
  return "last good checkpoint: " + (good.empty() ? std::string("none") : good);
}

void Trainer::update(StepClock& clock, StepOutcome& outcome) {
  energy::PhaseScope phase(*tracker_, energy::Phase::kOptimizer);
  MetricsRecord& r = outcome.record;
  r.grad_scale = scaler_->scale();
  const GradScaler::Unscaled unscaled = scaler_->unscale();
  const ClipResult clip = clip_grad_norm(parameters_, config_.optim.clip_grad_norm);
  if (unscaled.finite)
    optimizer_->step();
  else
    r.skipped = true;
  scaler_->update(unscaled.finite);
  // One transfer for the step's figures.
  const torch::Tensor figures =
      torch::stack({clip.total_norm, clip.coefficient, clip.norms.index_select(0, optimized_index_).norm(),
                    unscaled.unheld_norm.to(clip.total_norm.device())})
          .to(torch::kCPU, torch::kDouble);
  const double* f = figures.data_ptr<double>();
  r.grad_norm = f[0];
  r.clip_coef = f[1];
  r.student_grad_norm = f[2];
  r.token_grad_norm = f[3];
  r.time_s.optimizer = clock.lap();
}

void Trainer::record(const StepOutcome& outcome, base::Progress& progress) {
  const MetricsRecord& r = outcome.record;
  log_->metrics(r);
  if (r.step % config_.train.log_every == 0) log_->detail(format_step_line(r));
  std::ostringstream note;
  note << "loss " << r.loss;
  progress.set_note(note.str());
  progress.advance(outcome.images);
  node_progress_->update(state_.step, state_.epoch);
  if (options_.on_step) options_.on_step(StepView{r, wrapper_ ? *wrapper_->student() : *masked_->encoder()});
}

bool Trainer::max_steps_reached() const {
  return config_.train.max_steps > 0 && state_.step >= config_.train.max_steps;
}

void Trainer::maybe_checkpoint_after_step() {
  const int64_t every = config_.train.checkpoint_every_steps;
  if (every > 0 && state_.step % every == 0) save();
}

void Trainer::maybe_checkpoint_after_epoch() {
  const int64_t done = state_.epoch + 1, every = config_.train.checkpoint_every_epochs;
  if (done < config_.optim.epochs && every > 0 && done % every == 0) save();
}

TrainingState Trainer::position() const {
  // A finished epoch continues at the next one's start.
  TrainingState at = state_;
  if (at.epoch_step == steps_per_epoch_) at.epoch += 1, at.epoch_step = 0;
  at.samples_seen = at.epoch_step * global_batch_;
  at.adam_step = optimizer_->step_count();
  return at;
}

void Trainer::save() {
  if (state_.step == saved_step_) return;  // e.g. max_steps right after a periodic checkpoint
  saved_step_ = state_.step;
  energy::PhaseScope phase(*tracker_, energy::Phase::kCheckpoint);
  // Every rank holds the same weights, so every rank stops here alike (no rank left waiting).
  const model::NamedTensors weights = wrapper_ ? wrapper_->state() : masked_->state();
  try {
    model::require_finite(weights, "step " + std::to_string(state_.step) + "'s weights");
  } catch (const std::exception& e) {
    throw std::runtime_error("pretrain: " + std::string(e.what()) + "; not saved as a checkpoint, " + last_good_text());
  }
  if (root_) {
    Checkpoint out;
    out.state = position();
    out.model = weights;
    out.optimizer = optimizer_->state();
    GradScalerState scaler = scaler_->state();
    out.state.grad_scale = scaler.scale;
    out.state.grad_scale_growth = scaler.growth_tracker;
    out.carried_grads = std::move(scaler.carried);
    out.rng.emplace_back(kCpuGenerator, at::detail::getDefaultCPUGenerator().get_state());
    result_.checkpoint = save_checkpoint(options_.run_dir, out, config_.train.keep_last);
    log_->event("checkpoint " + result_.checkpoint);
  }
  comm_->barrier();
}

PretrainResult Trainer::finish(PretrainStatus status) {
  node_progress_->update(state_.step, position().epoch, /*force=*/true);
  const double images = static_cast<double>(images_trained_);
  tracker_->finish(images, images * flops_per_image_);
  if (root_) tracker_->print_summary(std::cerr);
  result_.status = status;
  result_.step = state_.step;
  result_.epoch = position().epoch;
  return result_;
}

}  // namespace gf::train
