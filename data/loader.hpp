#pragma once
// The training / evaluation loader over a packed dataset.
//
// Train mode: every epoch is a seeded permutation of the split (a function of seed and epoch
// only), cut into global batches of global_batch_size B; the last, smaller one (b < B
// samples) is kept as the published DataLoader keeps it (drop_last=False: 586 batches of
// 75,000 at 128), unless drop_last. Rank r of W takes positions [r*b/W, (r+1)*b/W) of each
// global batch of b samples (a rank may get none of a last batch smaller than W), so W
// ranks together see exactly the batches one rank sees. Each sample's augmentation draws from an RNG seeded by
// (seed, epoch, dataset index) only, so the batches are identical whatever the worker count,
// and start(epoch, step) resumes mid-epoch exactly.
// Eval mode: no shuffle, every sample of the split exactly once in dataset order, the eval
// transform (resize only); rank r takes the contiguous slice [r*N/W, (r+1)*N/W) in batches of
// max(1, global_batch_size / W), the last one possibly smaller.
//
// One HDF5 handle per process (Dataset), reads under one lock, decode + augment on worker
// threads, at most `prefetch` batches in flight.
// On a CUDA device, batches are assembled in pinned host memory and the worker that finishes
// a batch starts its copy to the GPU at once, non-blocking, on the loader's own copy stream,
// so it overlaps whatever the GPU computes meanwhile; next() makes the caller's current CUDA
// stream wait for that copy (an event, no host synchronisation).
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "data/augment.hpp"
#include "data/dataset.hpp"

namespace gf::data {

enum class LoaderMode { kTrain, kEval };

struct LoaderOptions {
  std::string dataset_dir;
  std::string split = "train";    // "train" | "test" | "all"
  double fraction = 1.0;          // train: Dataset::patient_subset of the split, seeded by seed
  LoaderMode mode = LoaderMode::kTrain;
  int64_t global_batch_size = 128;
  bool drop_last = false;         // train: drop the epoch's last, smaller batch (published: kept)
  int rank = 0;
  int world_size = 1;
  uint64_t seed = 0;
  int img_size = 392;
  AugmentOptions augment;         // train mode; augment.img_size is set from img_size
  int workers = 0;                // decode/augment threads; 0 = hardware threads
  int prefetch = 2;               // batches in flight ahead of the consumer
  Verify verify = Verify::kChecksums;
  c10::Device device = c10::kCPU;  // where next() delivers the images
};

struct Batch {
  at::Tensor images;                      // float32 [b,3,S,S] on options.device, (x/255 - 0.5) / 0.5
  std::vector<int64_t> dataset_indices;   // [b]
  std::vector<int64_t> global_positions;  // [b] position of each sample in the global batch
                                          // (eval: in the split's order)
  int64_t global_batch_size = 0;          // train: this global batch's samples (B, or fewer for
                                          // a kept last batch); eval: the split's sample count
  int64_t epoch = 0;
  int64_t step = 0;
};

class Loader {
 public:
  explicit Loader(const LoaderOptions& options);
  // Shares an open dataset (no second verification) between loaders of one process.
  Loader(const LoaderOptions& options, std::shared_ptr<const Dataset> dataset);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  const Dataset& dataset() const { return *dataset_; }
  int64_t split_size() const { return static_cast<int64_t>(split_.size()); }
  // Train: ceil(split / B) (floor with drop_last), the same on every rank. Eval: this rank's
  // batch count.
  int64_t steps_per_epoch() const;
  int64_t local_batch_size() const;  // this rank's samples per full batch

  // Positions the loader at (epoch, step) and starts prefetching; batches then come in
  // step order until the epoch ends.
  void start(int64_t epoch, int64_t step = 0);
  // The next batch of the current epoch, std::nullopt once the epoch is done. Rethrows the
  // first error a worker hit (a corrupt image names the dataset index and id).
  std::optional<Batch> next();

  // Dataset indices rank `rank` reads at (epoch, step): the sampler alone, no I/O.
  std::vector<int64_t> indices_at(int64_t epoch, int64_t step) const;

 private:
  class Pipeline;
  void init();
  Batch describe_batch(int64_t epoch, int64_t step) const;  // indices and positions, no images
  // Decodes, transforms and normalises one sample straight into `dst` (float [3,S,S]), on a worker.
  void load_sample_into(int64_t index, int64_t epoch, at::Tensor dst) const;

  LoaderOptions options_;
  std::shared_ptr<const Dataset> dataset_;
  std::vector<int64_t> split_;  // dataset indices of the split, ascending
  mutable std::mutex permutation_mutex_;
  mutable std::vector<int64_t> permutation_;  // of the split, for permutation_epoch_
  mutable int64_t permutation_epoch_ = -1;
  std::unique_ptr<Pipeline> pipeline_;
};

// The seeded permutation of [0, n) for an epoch (Fisher-Yates over a mt19937_64 seeded by
// (seed, epoch); identical on every platform).
std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch);

}  // namespace gf::data
