#pragma once
// `train::pretrain`: the Token Reconstruction training loop over W ranks (W = 1 needs no
// mpirun), run by train/trainer.hpp's Trainer. The global batch is split over ranks and
// accumulation steps; gradients are all-reduced by dist/'s bucketed reducer; only rank 0
// writes files. The run folder holds config.json, metrics.jsonl, train.log, checkpoints/
// (train/checkpoint.hpp) and the energy tracker's files.
#include <cstdint>
#include <functional>
#include <string>

#include "model/token_reconstruction.hpp"
#include "train/metrics_record.hpp"
#include "train/run_config.hpp"

namespace gf::train {

// Exit code of `greenfound pretrain` when the run stopped on SIGUSR1/SIGTERM after writing a
// checkpoint: the job is incomplete and should be requeued (`--resume auto` continues it).
// 75 is sysexits' EX_TEMPFAIL.
constexpr int kExitPreempted = 75;

// One micro-batch as it enters the objective on this rank (a peer implementation replays them).
struct StepInputs {
  int64_t step = 0;   // optimizer steps done before this one
  int64_t micro = 0;  // accumulation micro-step
  torch::Tensor images;
  model::CorruptionDraws draws;
  int64_t clean_index = -1;  // the sample kept clean, -1 when it lives on another rank
  const model::TokenReconstructionImpl& wrapper;  // before this step's update
};  // (objective.kind token_reconstruction only)

// A finished optimizer step.
struct StepView {
  const MetricsRecord& record;                    // record.step: the steps done
  const model::VisionTransformerImpl& student;     // the trained encoder, after the update
};

struct PretrainOptions {
  std::string run_dir;
  std::string resume;     // "" = fresh run (refused if run_dir has checkpoints) | "auto" | a checkpoint path
  int64_t max_steps = 0;  // > 0 overrides config.train.max_steps (a total: steps done, not more steps)
  bool allow_batch_change = false;  // resume with a global batch other than the checkpoint's (train/resume_check.hpp)
  bool allow_dataset_change = false;  // resume on data with another fingerprint than the checkpoint's
  // Called on every rank after each optimizer step (tests raise the preemption signal from
  // it; bench_grad_scaler measures how the weights move).
  std::function<void(const StepView&)> on_step;
  // Called on every rank before each micro-batch's forward (tests export the inputs).
  std::function<void(const StepInputs&)> on_inputs;
};

enum class PretrainStatus {
  kCompleted,  // every epoch trained
  kMaxSteps,   // stopped after max_steps optimizer steps, checkpoint written
  kPreempted,  // stopped on a signal, checkpoint written: exit with kExitPreempted
};

struct PretrainResult {
  PretrainStatus status = PretrainStatus::kCompleted;
  int64_t step = 0;         // optimizer steps done in total
  int64_t epoch = 0;        // epoch the next step belongs to
  double last_loss = 0;     // mean over ranks of the last step's loss
  std::string checkpoint;   // rank 0: the last checkpoint written ("" if none, and on other ranks)
};

// Trains per `config`. A non-finite loss throws, naming the step; the last good checkpoint
// stays. Installs SIGUSR1/SIGTERM handlers for the duration of the call (all ranks agree on
// the stop at every step).
PretrainResult pretrain(const RunConfig& config, const PretrainOptions& options);

}  // namespace gf::train
