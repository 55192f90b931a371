#include "data/loader.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <c10/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>

#include "base/parallel_for.hpp"

namespace gf::data {

std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> perm(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) perm[static_cast<size_t>(i)] = i;
  // SampleRng with index -1: a stream no sample's augmentation uses.
  SampleRng rng(seed, epoch, -1);
  for (int64_t i = n - 1; i > 0; --i) std::swap(perm[static_cast<size_t>(i)], perm[static_cast<size_t>(rng.below(i + 1))]);
  return perm;
}

// Workers take (batch, position) jobs in order, read under the dataset's lock, decode and
// transform outside it, and write their sample into the batch tensor; the worker that
// completes a batch starts its device copy; the consumer takes batches in step order once
// ready. Stale jobs of an abandoned epoch finish into slots nobody reads.
class Loader::Pipeline {
 public:
  Pipeline(const Loader& owner, int workers) : owner_(owner), device_(with_index(owner.options_.device)) {
    if (device_.is_cuda()) copy_stream_ = c10::cuda::getStreamFromPool(/*isHighPriority=*/false, device_.index());
    // Each worker runs ATen single-threaded: parallelism comes from the workers, and one
    // OpenMP team per worker would oversubscribe the cores. at::set_num_threads also sets
    // the process default, which is restored once every worker has taken its setting.
    const int previous = at::get_num_threads();
    int started = 0, created = 0;
    try {
      for (; created < workers; ++created) start_worker(started);
    } catch (const std::system_error& e) {
      // No more threads to be had (a process or memory limit): the workers that started carry
      // the load; with none, the loader cannot run.
      if (created == 0) throw std::runtime_error(std::string("data.workers: could not start a loader thread (") + e.what() + ")");
    }
    std::unique_lock<std::mutex> lock(mutex_);
    work_ready_.wait(lock, [&] { return started == created; });
    lock.unlock();
    at::set_num_threads(previous);
  }

  ~Pipeline() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
      jobs_.clear();
    }
    work_ready_.notify_all();
    for (auto& t : threads_) t.join();
  }

  void start(int64_t epoch, int64_t step, int64_t end_step, int prefetch) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      jobs_.clear();
      in_flight_.clear();
      epoch_ = epoch;
      next_step_ = step;
      end_step_ = end_step;
      prefetch_ = std::max(1, prefetch);
      fill_locked();
    }
    work_ready_.notify_all();
  }

  std::optional<Batch> next() {
    std::unique_lock<std::mutex> lock(mutex_);
    if (in_flight_.empty()) return std::nullopt;
    std::shared_ptr<Slot> slot = in_flight_.front();
    batch_done_.wait(lock, [&] { return slot->ready; });
    in_flight_.pop_front();
    fill_locked();
    lock.unlock();
    work_ready_.notify_all();
    if (slot->error) std::rethrow_exception(slot->error);
    if (device_.is_cuda()) {
      // The caller's stream waits for the copy, and the allocator for the caller's use of the
      // images before it reuses their memory (they were allocated on the copy stream).
      const c10::cuda::CUDAStream current = c10::cuda::getCurrentCUDAStream(device_.index());
      slot->copied.block(current);
      slot->batch.images.record_stream(current);
    }
    return std::move(slot->batch);
  }

 private:
  // One worker thread; `started` counts those that took their ATen setting.
  void start_worker(int& started) {
    threads_.emplace_back([this, &started] {
      at::get_num_threads();  // ATen's lazy per-thread init first, so it does not undo the next line
      at::set_num_threads(1);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        ++started;
      }
      work_ready_.notify_all();
      work();
    });
  }

  struct Slot {
    Batch batch;
    int64_t remaining = 0;  // samples not yet written
    bool ready = false;     // every sample written (and, on CUDA, the device copy started)
    std::exception_ptr error;
    c10::cuda::CUDAEvent copied;  // CUDA: the device copy finished
  };
  struct Job {
    std::shared_ptr<Slot> slot;
    int64_t position = 0;
  };

  // Queues batches until `prefetch_` are in flight. Caller holds mutex_.
  void fill_locked() {
    while (static_cast<int>(in_flight_.size()) < prefetch_ && next_step_ < end_step_) {
      auto slot = std::make_shared<Slot>();
      slot->batch = owner_.describe_batch(epoch_, next_step_);
      const int64_t b = static_cast<int64_t>(slot->batch.dataset_indices.size());
      const int64_t s = owner_.options_.img_size;
      // A normal tensor even when the consumer calls next() under InferenceMode: the workers,
      // outside it, write into it.
      c10::InferenceMode normal_tensor(false);
      // Pinned for CUDA: only page-locked memory copies asynchronously.
      // A rank without a sample of a kept last batch gets an empty one at once, on the device.
      slot->batch.images = b == 0 ? at::empty({0, 3, s, s}, at::TensorOptions().dtype(at::kFloat).device(device_))
                                  : at::empty({b, 3, s, s}, at::TensorOptions().dtype(at::kFloat).pinned_memory(device_.is_cuda()));
      slot->remaining = b;
      slot->ready = b == 0;
      for (int64_t p = 0; p < b; ++p) jobs_.push_back(Job{slot, p});
      in_flight_.push_back(slot);
      ++next_step_;
    }
  }

  void work() {
    for (;;) {
      Job job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        work_ready_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
        if (stop_) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      std::exception_ptr error;
      try {
        const int64_t index = job.slot->batch.dataset_indices[static_cast<size_t>(job.position)];
        owner_.load_sample_into(index, job.slot->batch.epoch, job.slot->batch.images[job.position]);
      } catch (...) {
        error = std::current_exception();
      }
      bool complete = false;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (error && !job.slot->error) job.slot->error = error;
        complete = --job.slot->remaining == 0;
      }
      if (!complete) continue;
      // Every sample is in: this worker alone owns the batch until `ready`.
      if (device_.is_cuda() && !job.slot->error) start_copy(*job.slot);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        job.slot->ready = true;
      }
      batch_done_.notify_all();
    }
  }

  // "cuda" alone means the current GPU.
  static c10::Device with_index(c10::Device device) {
    if (device.is_cuda() && !device.has_index()) device.set_index(c10::cuda::current_device());
    return device;
  }

  // Queues the batch's host-to-device copy on the copy stream; returns without waiting.
  void start_copy(Slot& slot) {
    try {
      const c10::cuda::CUDAGuard device_guard(device_.index());
      const c10::cuda::CUDAStreamGuard stream_guard(*copy_stream_);
      slot.batch.images = slot.batch.images.to(device_, /*non_blocking=*/true);
      slot.copied.record(*copy_stream_);
    } catch (...) {
      slot.error = std::current_exception();
    }
  }

  const Loader& owner_;
  const c10::Device device_;
  std::optional<c10::cuda::CUDAStream> copy_stream_;  // CUDA only
  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable work_ready_, batch_done_;
  std::deque<Job> jobs_;
  std::deque<std::shared_ptr<Slot>> in_flight_;
  int64_t epoch_ = 0, next_step_ = 0, end_step_ = 0;
  int prefetch_ = 2;
  bool stop_ = false;
};

Loader::Loader(const LoaderOptions& options) : options_(options) {
  dataset_ = Dataset::open(options.dataset_dir, options.verify);
  init();
}

Loader::Loader(const LoaderOptions& options, std::shared_ptr<const Dataset> dataset)
    : options_(options), dataset_(std::move(dataset)) {
  init();
}

Loader::~Loader() = default;

void Loader::init() {
  const LoaderOptions& o = options_;
  if (o.world_size < 1 || o.rank < 0 || o.rank >= o.world_size) {
    throw std::runtime_error("loader: rank/world_size: found " + std::to_string(o.rank) + "/" + std::to_string(o.world_size) +
                             ", expected 0 <= rank < world_size");
  }
  if (o.global_batch_size < o.world_size) {
    throw std::runtime_error("loader: global_batch_size: found " + std::to_string(o.global_batch_size) +
                             ", expected at least one sample per rank (" + std::to_string(o.world_size) + ")");
  }
  if (o.img_size <= 0) throw std::runtime_error("loader: img_size: found " + std::to_string(o.img_size) + ", expected > 0");
  options_.augment.img_size = o.img_size;
  split_ = dataset_->split_indices(o.split);
  if (o.mode == LoaderMode::kTrain) split_ = dataset_->patient_subset(split_, o.fraction, o.seed);
  if (o.mode == LoaderMode::kTrain && split_size() < o.global_batch_size) {
    throw std::runtime_error(dataset_->dir() + ": split '" + o.split + "': found " + std::to_string(split_size()) +
                             " samples, expected at least one global batch of " + std::to_string(o.global_batch_size));
  }
  int workers = o.workers > 0 ? base::check_thread_count(o.workers, "data.workers")
                              : static_cast<int>(std::thread::hardware_concurrency());
  pipeline_ = std::make_unique<Pipeline>(*this, std::max(1, workers));
}

int64_t Loader::local_batch_size() const {
  const int64_t b = options_.global_batch_size, w = options_.world_size, r = options_.rank;
  if (options_.mode == LoaderMode::kEval) return std::max<int64_t>(1, b / w);
  return (r + 1) * b / w - r * b / w;
}

int64_t Loader::steps_per_epoch() const {
  if (options_.mode == LoaderMode::kTrain) {
    const int64_t b = options_.global_batch_size;
    return options_.drop_last ? split_size() / b : (split_size() + b - 1) / b;
  }
  const int64_t n = split_size(), w = options_.world_size, r = options_.rank;
  const int64_t slice = (r + 1) * n / w - r * n / w;
  const int64_t b = local_batch_size();
  return (slice + b - 1) / b;
}

Batch Loader::describe_batch(int64_t epoch, int64_t step) const {
  Batch batch;
  batch.epoch = epoch;
  batch.step = step;
  const int64_t w = options_.world_size, r = options_.rank;
  if (options_.mode == LoaderMode::kTrain) {
    const int64_t b = std::min(options_.global_batch_size, split_size() - step * options_.global_batch_size);
    {
      std::lock_guard<std::mutex> lock(permutation_mutex_);
      if (permutation_epoch_ != epoch || permutation_.empty()) {
        permutation_ = epoch_permutation(split_size(), options_.seed, epoch);
        permutation_epoch_ = epoch;
      }
      for (int64_t p = r * b / w; p < (r + 1) * b / w; ++p) {
        batch.global_positions.push_back(p);
        const int64_t at = step * options_.global_batch_size + p;
        batch.dataset_indices.push_back(split_[static_cast<size_t>(permutation_[static_cast<size_t>(at)])]);
      }
    }
    batch.global_batch_size = b;
    return batch;
  }
  const int64_t n = split_size();
  const int64_t begin = r * n / w, end = (r + 1) * n / w, per = local_batch_size();
  for (int64_t p = begin + step * per; p < std::min(end, begin + (step + 1) * per); ++p) {
    batch.global_positions.push_back(p);
    batch.dataset_indices.push_back(split_[static_cast<size_t>(p)]);
  }
  batch.global_batch_size = n;
  return batch;
}

void Loader::load_sample_into(int64_t index, int64_t epoch, at::Tensor dst) const {
  const cv::Mat rgb = dataset_->decode(index);
  at::Tensor u8;
  if (options_.mode == LoaderMode::kEval) {
    u8 = eval_transform(rgb, options_.img_size);
  } else {
    SampleRng rng(options_.seed, epoch, index);
    u8 = augment_train(rgb, options_.augment, rng);
  }
  normalize_into(u8, dst);  // straight into the batch slot: no per-sample float tensor
}

std::vector<int64_t> Loader::indices_at(int64_t epoch, int64_t step) const { return describe_batch(epoch, step).dataset_indices; }

void Loader::start(int64_t epoch, int64_t step) {
  const int64_t steps = steps_per_epoch();
  if (step < 0 || step > steps) {
    throw std::runtime_error("loader: start step: found " + std::to_string(step) + ", expected 0.." + std::to_string(steps));
  }
  pipeline_->start(epoch, step, steps, options_.prefetch);
}

std::optional<Batch> Loader::next() { return pipeline_->next(); }

}  // namespace gf::data
