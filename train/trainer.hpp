#pragma once
// The Trainer behind train::pretrain (train/pretrain.hpp): one object holds what the steps of
// a run share (device, communicator, model, optimizer, gradient reducer, loader, energy
// tracker, the training state), and each part of the loop is a method:
//
//   Trainer trainer(config, options);  // setup(): ranks, device, resume(), model, data, run folder
//   PretrainResult result = trainer.run();
//     run()            epochs of train_epoch(), then the final checkpoint and finish()
//     train_epoch()    step() after step, with maybe_checkpoint() between them
//     step()           one optimizer step: forward_backward() per micro-batch, reduce(), update()
//     update()         the loss scaler's unscale, the clip, the optimizer step, the scaler's update
//
// Setup runs in a fixed order every rank shares: collectives (the resume agreement, the
// reducer's parameter broadcast, the tracker) must meet, and the global CPU generator is
// seeded for the projector's init before a checkpoint's generator state replaces it.
#include <c10/core/DeviceGuard.h>
#include <torch/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/progress.hpp"
#include "data/loader.hpp"
#include "dist/communicator.hpp"
#include "dist/gradient_reducer.hpp"
#include "dist/world.hpp"
#include "energy/tracker.hpp"
#include "model/lr_schedule.hpp"
#include "model/masked_pixel_objective.hpp"
#include "model/token_reconstruction.hpp"
#include "train/checkpoint.hpp"
#include "train/grad_scaler.hpp"
#include "train/metrics_record.hpp"
#include "train/node_progress.hpp"
#include "train/optimizer.hpp"
#include "train/pretrain.hpp"
#include "train/resume_check.hpp"
#include "train/run_config.hpp"
#include "train/run_log.hpp"
#include "train/stop_signal.hpp"

namespace gf::train {

class Trainer {
 public:
  // setup(): everything up to the first step; collective.
  Trainer(const RunConfig& config, const PretrainOptions& options);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // Trains until the last epoch, max_steps or a stop signal; collective.
  PretrainResult run();

 private:
  class StepClock;  // phase laps of one step, after a device sync (trainer.cpp)

  // What one optimizer step produced, agreed over ranks.
  struct StepOutcome {
    MetricsRecord record;
    int64_t images = 0;  // global samples of the step
    bool stop = false;   // some rank received the stop signal
  };

  // ---- setup, in this order ----
  void check_inputs();
  void setup_device();        // device, precision, threads
  void setup_communicator();  // batch split over ranks, communicator, run folder
  void resume();              // the checkpoint every rank continues from (or none)
  void build_model();         // the objective's modules, optimizer, reducer; checkpoint state loaded
  void build_data();          // loader, schedule, energy tracker, training state
  // config.json, metrics.jsonl trimmed to the checkpoint, provenance.json: only once everything
  // above succeeded, so a failed resume leaves the run folder as it was.
  void write_run_files();

  // ---- the loop ----
  std::optional<PretrainStatus> train_epoch(const StopSignalGuard& stop_signal);
  StepOutcome step(double lr, const StopSignalGuard& stop_signal);
  // One micro-batch's weighted loss (its share of the step's `step_images` samples).
  torch::Tensor forward_backward(int64_t micro, int64_t micro_steps, int64_t step_images, StepClock& clock,
                                 StepTimes& times);
  void reduce(const torch::Tensor& loss_sum, bool stop_here, StepClock& clock, StepOutcome& outcome);
  void update(StepClock& clock, StepOutcome& outcome);  // scaler, clip, optimizer step
  void record(const StepOutcome& outcome, base::Progress& progress);
  bool max_steps_reached() const;
  void maybe_checkpoint_after_step();
  void maybe_checkpoint_after_epoch();

  // ---- checkpoints and the end ----
  TrainingState position() const;  // where a resumed run continues
  void save();                      // collective: rank 0 writes, all wait
  std::string last_good_text() const;  // "last good checkpoint: <newest with finite weights>" or "none"
  PretrainResult finish(PretrainStatus status);  // collective: energy totals, the result

  RunConfig config_;
  PretrainOptions options_;
  const dist::World& world_;
  bool root_ = false;
  torch::Device device_ = torch::kCPU;
  std::optional<c10::DeviceGuard> device_guard_;
  bool bf16_ = false;
  int64_t global_batch_ = 0, accum_ = 1, micro_batch_ = 0;  // micro: global samples per loader step
  std::unique_ptr<dist::Communicator> comm_;

  std::string resume_path_;
  std::string resume_note_;  // checkpoints skipped on the way to resume_path_, for the log
  nlohmann::json dataset_;   // {"fingerprint", "path"} of the data trained on
  ResumePlan resume_plan_;  // where in the epoch the checkpoint continues
  std::optional<Checkpoint> checkpoint_;  // held until build_model() loaded it
  nlohmann::json identity_, resolved_config_;
  std::string resolved_hash_;
  std::unique_ptr<RunLog> log_;
  std::unique_ptr<NodeProgress> node_progress_;  // RUN_DIR/nodes/<host>.json

  model::VitOptions vit_;
  model::TokenReconstruction wrapper_{nullptr};  // objective.kind token_reconstruction,
  model::MaskedPixelObjective masked_{nullptr};  // or masked_pixels: exactly one is set
  std::unique_ptr<Optimizer> optimizer_;
  std::vector<torch::Tensor> parameters_;  // every gradient: clipped and all-reduced
  torch::Tensor optimized_index_;          // positions in parameters_ of the optimizer's parameters
  std::unique_ptr<GradScaler> scaler_;
  std::unique_ptr<dist::GradientReducer> reducer_;

  std::unique_ptr<data::Loader> loader_;
  int64_t steps_per_epoch_ = 0;
  int64_t epoch_images_ = 0;    // samples trained per epoch (the split, less a dropped last batch)
  int64_t images_trained_ = 0;  // by this session
  std::optional<model::CosineSchedule> schedule_;
  std::unique_ptr<energy::EnergyTracker> tracker_;
  double flops_per_image_ = 0;

  TrainingState state_;
  int64_t start_step_ = 0;
  int64_t saved_step_ = -1;  // the step of the newest checkpoint (-1: none)
  PretrainResult result_;
};

}  // namespace gf::train
