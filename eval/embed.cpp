#include "eval/embed.hpp"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>

#include "base/error.hpp"
#include "base/parallel_for.hpp"
#include "base/progress.hpp"
#include "base/sha256.hpp"
#include "data/augment.hpp"
#include "data/dataset.hpp"
#include "data/image_codec.hpp"
#include "data/labels_csv.hpp"
#include "data/loader.hpp"
#include "dist/communicator.hpp"
#include "dist/device.hpp"
#include "dist/world.hpp"
#include "energy/tracker.hpp"
#include "model/arch_registry.hpp"
#include "model/autocast.hpp"

namespace gf::eval {
namespace {

struct ImageFile {
  std::string path, id;
};

// Every PNG/JPEG of a folder (not recursive), sorted by file name; ids are the names without
// extension and must be unique.
std::vector<ImageFile> list_images(const std::string& dir) {
  if (!std::filesystem::is_directory(dir)) throw base::FieldError("embed", "images_dir", dir + ": not a folder");
  std::vector<ImageFile> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    if (data::is_image_extension(entry.path().extension().string()))
      files.push_back({entry.path().string(), entry.path().stem().string()});
  }
  std::sort(files.begin(), files.end(), [](const ImageFile& a, const ImageFile& b) {
    return std::filesystem::path(a.path).filename() < std::filesystem::path(b.path).filename();
  });
  if (files.empty()) throw base::FieldError("embed", "images_dir", dir + ": found no .png/.jpg/.jpeg files, expected images");
  std::set<std::string> ids;
  for (const auto& f : files)
    if (!ids.insert(f.id).second)
      throw base::FieldError("embed", "images_dir", dir + ": two files are named \"" + f.id + "\" (ids are file names without extension), expected unique names");
  return files;
}

// One image of the folder form, as the loader's eval transform prepares a dataset's.
at::Tensor folder_image(const ImageFile& file, int64_t size) {
  return data::normalize_to_float(data::eval_transform(data::read_image_file(file.path), static_cast<int>(size)));
}

// The encoder the config names, weights loaded, in eval mode on `device`.
model::VisionTransformer build_encoder(const EmbedConfig& config, std::string& sha256) {
  model::VitOptions options;
  model::StateDict state;
  if (config.random_init) {
    if (config.arch.empty()) throw base::FieldError("embed", "arch", "found none, expected an architecture for a random init");
    options = model::arch_options(config.arch, config.img_size);
  } else {
    state = config.weights.empty() ? config.state : model::read_weights(config.weights);
    if (state.empty()) throw base::FieldError("embed", "weights", "found none, expected weights or a checkpoint's encoder");
    if (config.arch.empty()) {
      options = model::infer_vit_options(state);
      if (options.arch.empty())
        throw base::FieldError("embed", "arch", (config.weights.empty() ? std::string("checkpoint") : config.weights) +
                                                    ": no registered architecture has this width, expected one named");
      options.img_size = config.img_size;
    } else {
      options = model::arch_options(config.arch, config.img_size);
    }
  }
  model::VisionTransformer encoder(options);
  if (config.random_init) {
    encoder->init_weights(config.seed);
  } else {
    model::load_state_dict(*encoder, model::adapt_to_model(state, options),
                           config.weights.empty() ? "checkpoint" : config.weights);
  }
  sha256 = config.weights_sha256;
  if (sha256.empty() && !config.weights.empty()) sha256 = base::sha256_file(config.weights);
  encoder->eval();
  return encoder;
}

// What embed_slice applies to a batch of prepared images: an encoder's pooled tokens, or the
// pixel baseline; with the names and sizes the file records.
struct Embedder {
  model::VisionTransformer encoder{nullptr};  // null for the pixel baseline
  int64_t pixels = 0;
  std::string arch;
  int64_t img_size = 0, dim = 0;
  double flops_per_image = 0;

  at::Tensor forward(const at::Tensor& images, model::Pool pool) {
    if (!encoder) return at::adaptive_avg_pool2d(images, {pixels, pixels}).flatten(1);
    return encoder->forward_embedding(images, pool);
  }
};

Embedder build_embedder(const EmbedConfig& config, std::string& sha256, const at::Device& device) {
  Embedder embedder;
  if (config.pixels > 0) {
    if (config.random_init || !config.weights.empty() || !config.state.empty())
      throw base::FieldError("embed", "pixels", "found pixels with an encoder, expected one or the other");
    embedder.pixels = config.pixels;
    embedder.arch = "pixels_" + std::to_string(config.pixels);
    embedder.img_size = config.img_size;
    embedder.dim = 3 * config.pixels * config.pixels;
    sha256 = embedder.arch;
    return embedder;
  }
  embedder.encoder = build_encoder(config, sha256);
  embedder.encoder->to(device);
  const model::VitOptions& vit = embedder.encoder->options();
  embedder.arch = vit.arch;
  embedder.img_size = vit.img_size;
  embedder.dim = vit.embed_dim;
  embedder.flops_per_image = model::forward_flops(vit);
  return embedder;
}

// fp32: IEEE float32 on the GPU too (LibTorch lets cuDNN convolutions use TF32 by default),
// so GPU embeddings match CPU ones; bf16: autocast, the fast path. True for bf16.
bool use_bf16(const std::string& precision, const at::Device& device) {
  if (precision != "fp32" && precision != "bf16")
    base::throw_found_expected("embed", "precision", "\"" + precision + "\"", "fp32 or bf16");
  if (precision == "bf16" && !device.is_cuda())
    base::throw_found_expected("embed", "precision", "\"bf16\" on " + device.str(), "a CUDA device (or fp32)");
  if (device.is_cuda() && precision == "fp32") {
    at::globalContext().setAllowTF32CuDNN(false);
    at::globalContext().setAllowTF32CuBLAS(false);
  }
  return precision == "bf16";
}

// Row positions and embeddings of every rank, gathered in rank order.
std::pair<at::Tensor, at::Tensor> gather_rows(const at::Tensor& positions, const at::Tensor& embeddings,
                                              dist::Communicator* communicator) {
  if (!communicator || communicator->size() == 1) return {positions, embeddings};
  return {communicator->all_gatherv(positions), communicator->all_gatherv(embeddings)};
}

double max_over_ranks(double value, dist::Communicator* communicator) {
  if (!communicator || communicator->size() == 1) return value;
  return communicator->all_gather(at::tensor({value}, at::kDouble)).max().item<double>();
}

}  // namespace

namespace {

// The rows to embed in output order (ids, split and labels of the table), read from the
// folder or the dataset; the dataset form embeds through a loader of this rank's slice.
struct EmbedInputs {
  EmbeddingTable table;
  std::vector<ImageFile> files;          // folder form
  std::unique_ptr<data::Loader> loader;  // dataset form
  int64_t total = 0;
};

EmbedInputs open_inputs(const EmbedConfig& config, const dist::World& world, const at::Device& device) {
  EmbedInputs in;
  EmbeddingTable& table = in.table;
  if (!config.images_dir.empty()) {
    in.files = list_images(config.images_dir);
    in.total = static_cast<int64_t>(in.files.size());
    for (const auto& f : in.files) table.ids.push_back(f.id);
    return in;
  }
  data::LoaderOptions options;
  options.dataset_dir = config.data_dir;
  options.split = config.split;
  options.mode = data::LoaderMode::kEval;
  options.global_batch_size = config.batch_size * world.size;
  options.rank = world.rank;
  options.world_size = world.size;
  options.img_size = static_cast<int>(config.img_size);
  options.workers = config.workers;
  options.verify = world.is_root() ? data::Verify::kChecksums : data::Verify::kSizes;
  options.device = device;
  in.loader = std::make_unique<data::Loader>(options);
  const data::Dataset& dataset = in.loader->dataset();
  // The published evaluation embedded raw images; a fundus-cropped set embeds its crops.
  if (world.is_root() && config.verbose && dataset.manifest().preprocessing_json.find("border crop") != std::string::npos)
    std::cerr << "embed: note: " << config.data_dir << " was packed with the border crop; the published evaluation "
              << "resized raw images (pack evaluation sets with --preprocess none, or embed --images)\n";
  const std::vector<int64_t> indices = dataset.split_indices(config.split);
  in.total = static_cast<int64_t>(indices.size());
  std::vector<uint8_t> is_test(static_cast<size_t>(dataset.size()), 0);
  if (dataset.has_split())
    for (int64_t i : dataset.split_indices("test")) is_test[i] = 1;
  table.split_by = dataset.manifest().split.by;
  for (int64_t i : indices) {
    table.ids.push_back(dataset.ids()[i]);
    if (dataset.has_split()) table.split.push_back(is_test[i] ? "test" : "train");
  }
  for (const auto& column : dataset.label_columns()) {
    LabelColumn out;
    out.integer = column.type != data::LabelType::kFloat;
    out.type = data::to_string(column.type);
    out.categories = column.categories;
    const std::vector<double> values = dataset.float_labels(column.name);
    for (int64_t i : indices) out.values.push_back(values[i]);
    table.labels.emplace(column.name, std::move(out));
  }
  return in;
}

std::unique_ptr<energy::EnergyTracker> start_tracker(const EmbedConfig& config, const dist::World& world,
                                                     dist::Communicator* communicator) {
  if (!config.track_energy) return nullptr;
  std::string dir = config.energy_dir;
  if (dir.empty()) dir = std::filesystem::absolute(config.out).parent_path().string();
  std::filesystem::create_directories(dir);
  auto tracker = std::make_unique<energy::EnergyTracker>(config.energy, world, communicator, dir);
  tracker->start();
  return tracker;
}

// This rank's rows [begin, end): their embeddings (rows in `positions` order) and positions.
struct EmbeddedSlice {
  at::Tensor rows;
  std::vector<int64_t> positions;
};

EmbeddedSlice embed_slice(const EmbedConfig& config, EmbedInputs& in, int64_t begin, int64_t end,
                          Embedder& embedder, const at::Device& device, bool bf16,
                          energy::EnergyTracker* tracker, base::Progress& progress) {
  const auto phase = [&](energy::Phase p) {
    if (tracker) tracker->set_phase(p);
  };
  std::vector<at::Tensor> outputs;
  EmbeddedSlice slice;
  // Inference mode only around the forward: the loader's worker threads fill batch tensors
  // that next() allocates, and they may not write to inference tensors.
  const auto embed_batch = [&](const at::Tensor& images) {
    phase(energy::Phase::kEval);
    {
      c10::InferenceMode inference;
      const model::CudaBf16Autocast autocast(bf16);
      outputs.push_back(embedder.forward(images.to(device), config.pool).to(at::kCPU, at::kFloat));
    }
    phase(energy::Phase::kData);
    progress.advance(images.size(0));
  };
  phase(energy::Phase::kData);
  if (in.loader) {
    in.loader->start(0);
    while (auto batch = in.loader->next()) {
      slice.positions.insert(slice.positions.end(), batch->global_positions.begin(), batch->global_positions.end());
      embed_batch(batch->images);
    }
  } else {
    for (int64_t i = begin; i < end; i += config.batch_size) {
      std::vector<at::Tensor> images;
      for (int64_t j = i; j < std::min(end, i + config.batch_size); ++j) {
        images.push_back(folder_image(in.files[j], config.img_size));
        slice.positions.push_back(j);
      }
      embed_batch(at::stack(images));
    }
  }
  progress.finish();
  slice.rows = outputs.empty() ? at::empty({0, embedder.dim}, at::kFloat) : at::cat(outputs).contiguous();
  return slice;
}

// Rank 0: the gathered rows put in output order into `table`, and the file written.
void write_table(const EmbedConfig& config, EmbeddingTable& table, const Embedder& embedder,
                 const std::string& sha256, const at::Tensor& all_positions, const at::Tensor& all_rows, int64_t total) {
  if (all_positions.size(0) != total)
    throw std::runtime_error("embed: gathered " + std::to_string(all_positions.size(0)) + " embeddings, expected " +
                             std::to_string(total));
  table.dim = embedder.dim;
  table.values.assign(static_cast<size_t>(total * table.dim), 0.0f);
  const auto position = all_positions.accessor<int64_t, 1>();
  const float* rows = all_rows.contiguous().data_ptr<float>();
  for (int64_t r = 0; r < total; ++r)
    std::copy_n(rows + r * table.dim, table.dim, table.values.data() + position[r] * table.dim);
  table.arch = embedder.arch;
  table.img_size = embedder.img_size;
  table.pool = model::pool_name(config.pool);
  table.weights_sha256 = sha256;
  write_embeddings(config.out, table, config.dtype);
}

}  // namespace

EmbedSummary run_embed(const EmbedConfig& config) {
  const dist::World& world = dist::init_world();
  const std::unique_ptr<dist::Communicator> ranks = dist::make_stage_communicator(world);
  dist::Communicator* communicator = ranks.get();
  if (config.images_dir.empty() == config.data_dir.empty())
    throw base::FieldError("embed", "images_dir", "expected exactly one of an image folder or a packed dataset (data_dir)");
  if (config.out.empty()) base::throw_found_expected("embed", "out", "\"\"", "an output .h5 path");
  // Made now, with or without energy files beside it: a folder that cannot be made fails here,
  // not after every image was embedded.
  if (world.is_root()) std::filesystem::create_directories(std::filesystem::absolute(config.out).parent_path());
  if (config.batch_size < 1) throw base::FieldError("embed", "batch_size", "found " + std::to_string(config.batch_size) +
                                                      ", expected at least 1");
  at::set_num_threads(base::resolve_threads(config.threads, world.local_size));
  const at::Device device = dist::select_device(config.device, world, "device");
  const bool bf16 = use_bf16(config.precision, device);

  std::string sha256;
  Embedder embedder = build_embedder(config, sha256, device);

  // The rows in output order, and this rank's contiguous slice of them.
  EmbedInputs in = open_inputs(config, world, device);
  const int64_t total = in.total;
  const int64_t begin = total * world.rank / world.size, end = total * (world.rank + 1) / world.size;
  const std::unique_ptr<energy::EnergyTracker> tracker = start_tracker(config, world, communicator);

  base::ProgressOptions progress_options;
  progress_options.label = world.size > 1 ? "embed (rank 0 of " + std::to_string(world.size) + ")" : "embed";
  progress_options.style = world.is_root() && config.verbose ? base::ProgressStyle::kAuto : base::ProgressStyle::kSilent;
  base::Progress progress(progress_options, end - begin);
  const auto started = std::chrono::steady_clock::now();
  const EmbeddedSlice slice = embed_slice(config, in, begin, end, embedder, device, bf16, tracker.get(), progress);
  const double seconds =
      max_over_ranks(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(), communicator);
  if (slice.rows.size(0) != end - begin)
    throw std::runtime_error("embed: rank " + std::to_string(world.rank) + " embedded " +
                             std::to_string(slice.rows.size(0)) + " images, expected its slice of " +
                             std::to_string(end - begin));
  const auto [all_positions, all_rows] = gather_rows(at::tensor(slice.positions, at::kLong), slice.rows, communicator);

  EmbedSummary summary;
  summary.images = total;
  summary.dim = embedder.dim;
  summary.seconds = seconds;
  summary.images_per_second = seconds > 0 ? static_cast<double>(total) / seconds : 0;
  summary.bytes_per_embedding = embedder.dim * (config.dtype == EmbeddingDtype::kFloat16 ? 2 : 4);
  if (world.is_root()) {
    if (tracker) tracker->set_phase(energy::Phase::kCheckpoint);
    write_table(config, in.table, embedder, sha256, all_positions, all_rows, total);
    if (config.verbose)
      std::cout << "embed: wrote " << config.out << ": " << total << " embeddings of " << embedder.arch << " at "
                << embedder.img_size << " px (" << model::pool_name(config.pool) << "), " << std::fixed
                << std::setprecision(1) << summary.images_per_second << " images/s on " << world.size << " rank(s), "
                << summary.bytes_per_embedding << " bytes per embedding (" << in.table.dim << " x "
                << (config.dtype == EmbeddingDtype::kFloat16 ? "float16" : "float32") << ")" << std::endl;
  }
  if (tracker) {
    tracker->finish(static_cast<double>(total), embedder.flops_per_image * static_cast<double>(total));
    if (world.is_root() && config.verbose) tracker->print_summary(std::cout);
  }
  return summary;
}

}  // namespace gf::eval
