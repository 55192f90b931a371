#include "train/run_config.hpp"

#include <openssl/evp.h>

#include <cmath>
#include <iomanip>
#include <set>
#include <sstream>
#include <stdexcept>

#include "energy/energy_options.hpp"

namespace gf::train {

namespace {

using nlohmann::json;

// Reads one JSON object, field by field, remembering which keys it consumed so that a typo
// ("bach_size") is reported instead of silently ignored.
class Section {
 public:
  Section(const json& root, std::string path, std::string source)
      : path_(std::move(path)), source_(std::move(source)) {
    const json* node = &root;
    if (!path_.empty()) {
      if (!root.contains(path_)) return;
      node = &root.at(path_);
      if (!node->is_object()) fail(path_, *node, "a JSON object");
    }
    node_ = node;
  }

  void read(const char* key, std::string& out) {
    if (const json* v = find(key)) {
      if (!v->is_string()) fail(name(key), *v, "a string");
      out = v->get<std::string>();
    }
  }
  void read(const char* key, bool& out) {
    if (const json* v = find(key)) {
      if (!v->is_boolean()) fail(name(key), *v, "true or false");
      out = v->get<bool>();
    }
  }
  void read(const char* key, double& out) {
    if (const json* v = find(key)) {
      if (!v->is_number()) fail(name(key), *v, "a number");
      out = v->get<double>();
    }
  }
  void read(const char* key, int64_t& out) {
    if (const json* v = find(key)) {
      if (!v->is_number_integer()) fail(name(key), *v, "an integer");
      out = v->get<int64_t>();
    }
  }
  void read(const char* key, uint64_t& out) {
    if (const json* v = find(key)) {
      if (!v->is_number_integer() || (!v->is_number_unsigned() && v->get<int64_t>() < 0))
        fail(name(key), *v, "a non-negative integer");
      out = v->get<uint64_t>();
    }
  }
  void read(const char* key, json& out) {
    if (const json* v = find(key)) {
      if (!v->is_object()) fail(name(key), *v, "a JSON object");
      out = *v;
    }
  }

  // Every key of the section must have been read.
  void finish(const std::set<std::string>& ignored = {}) const {
    if (node_ == nullptr) return;
    for (const auto& item : node_->items())
      if (consumed_.count(item.key()) == 0 && ignored.count(item.key()) == 0)
        throw std::runtime_error(source_ + ": " + name(item.key().c_str()) + ": unknown field (misspelt?)");
  }

  [[noreturn]] void fail(const std::string& field, const json& value, const std::string& expected) const {
    throw std::runtime_error(source_ + ": " + field + ": found " + value.dump() + ", expected " + expected);
  }

 private:
  const json* find(const char* key) {
    if (node_ == nullptr || !node_->contains(key)) return nullptr;
    consumed_.insert(key);
    return &node_->at(key);
  }
  std::string name(const char* key) const { return path_.empty() ? key : path_ + "." + key; }

  const json* node_ = nullptr;
  std::string path_, source_;
  std::set<std::string> consumed_;
};

// Validation of values already typed: one message per bad field.
class Checker {
 public:
  explicit Checker(std::string source) : source_(std::move(source)) {}
  template <typename T>
  void require(bool ok, const std::string& field, const T& value, const std::string& expected) const {
    if (!ok) throw std::runtime_error(source_ + ": " + field + ": found " + shown(value) + ", expected " + expected);
  }

 private:
  // As the user wrote it: 2, not 2.0.
  static std::string shown(double value) {
    if (std::isfinite(value) && value == std::floor(value) && std::fabs(value) < 1e15)
      return std::to_string(static_cast<int64_t>(value));
    return json(value).dump();
  }
  template <typename T>
  static std::string shown(const T& value) {
    return json(value).dump();
  }

  std::string source_;
};

void validate(const RunConfig& c, const std::string& source) {
  const Checker check(source);
  check.require(!c.model.arch.empty(), "model.arch", c.model.arch, "a registered architecture name");
  check.require(c.model.img_size > 0 && c.model.img_size % 14 == 0, "model.img_size", c.model.img_size,
                "a positive multiple of the patch size 14");

  const auto& o = c.objective;
  check.require(o.max_corruption_ratio >= 0 && o.max_corruption_ratio <= 1, "objective.max_corruption_ratio",
                o.max_corruption_ratio, "a ratio in [0, 1]");
  check.require(o.pixel_noise_scale >= 0, "objective.pixel_noise_scale", o.pixel_noise_scale, "a number >= 0");
  check.require(o.projector_norm_eps > 0, "objective.projector_norm_eps", o.projector_norm_eps, "a number > 0");
  check.require(o.projector_layer_scale_init >= 0, "objective.projector_layer_scale_init",
                o.projector_layer_scale_init, "a number >= 0");

  const auto& p = c.optim;
  check.require(p.lr > 0, "optim.lr", p.lr, "a number > 0");
  check.require(p.beta1 >= 0 && p.beta1 < 1, "optim.beta1", p.beta1, "a number in [0, 1)");
  check.require(p.beta2 >= 0 && p.beta2 < 1, "optim.beta2", p.beta2, "a number in [0, 1)");
  check.require(p.eps > 0, "optim.eps", p.eps, "a number > 0");
  check.require(p.weight_decay >= 0, "optim.weight_decay", p.weight_decay, "a number >= 0");
  check.require(p.clip_grad_norm > 0, "optim.clip_grad_norm", p.clip_grad_norm, "a number > 0");
  check.require(p.epochs > 0, "optim.epochs", p.epochs, "an integer > 0");
  check.require(p.cosine_epochs > 0, "optim.cosine_epochs", p.cosine_epochs, "an integer > 0");
  check.require(p.warmup_epochs >= 0, "optim.warmup_epochs", p.warmup_epochs, "an integer >= 0");
  check.require(p.warmup_lr >= 0, "optim.warmup_lr", p.warmup_lr, "a number >= 0");
  check.require(p.min_lr >= 0 && p.min_lr <= p.lr, "optim.min_lr", p.min_lr, "a number in [0, optim.lr]");
  check.require(p.grad_scaler == "none" || p.grad_scaler == "published", "optim.grad_scaler", p.grad_scaler,
                "none or published");
  int exponent = 0;  // a power of two: only then is the scale/unscale round trip exact (train/grad_scaler.hpp)
  check.require(p.grad_scaler_init_scale > 0 && std::frexp(p.grad_scaler_init_scale, &exponent) == 0.5 &&
                    exponent >= -125 && exponent <= 128,
                "optim.grad_scaler_init_scale", p.grad_scaler_init_scale, "a power of two within float range");
  check.require(p.grad_scaler_growth_interval >= 1, "optim.grad_scaler_growth_interval", p.grad_scaler_growth_interval,
                "an integer >= 1");

  const auto& d = c.data;
  check.require(d.batch_size > 0, "data.batch_size", d.batch_size, "an integer > 0");
  check.require(d.workers >= 0, "data.workers", d.workers, "an integer >= 0");
  check.require(d.prefetch >= 1, "data.prefetch", d.prefetch, "an integer >= 1");
  check.require(!d.split.empty(), "data.split", d.split, "a split name of the dataset's manifest");

  const auto& t = c.train;
  check.require(t.grad_accum >= 1, "train.grad_accum", t.grad_accum, "an integer >= 1");
  check.require(d.batch_size % t.grad_accum == 0, "data.batch_size", d.batch_size,
                "a multiple of train.grad_accum (" + std::to_string(t.grad_accum) + ")");
  check.require(t.precision == "auto" || t.precision == "bf16" || t.precision == "fp32", "train.precision",
                t.precision, "auto, bf16 or fp32");
  check.require(t.device == "auto" || t.device == "cpu" || t.device == "cuda", "train.device", t.device,
                "auto, cpu or cuda");
  check.require(t.checkpoint_every_steps >= 0, "train.checkpoint_every_steps", t.checkpoint_every_steps,
                "an integer >= 0");
  check.require(t.checkpoint_every_epochs >= 0, "train.checkpoint_every_epochs", t.checkpoint_every_epochs,
                "an integer >= 0");
  check.require(t.keep_last >= 1, "train.keep_last", t.keep_last, "an integer >= 1");
  check.require(t.log_every >= 1, "train.log_every", t.log_every, "an integer >= 1");
  check.require(t.threads >= 0, "train.threads", t.threads, "an integer >= 0 (0 = automatic)");
  check.require(t.max_steps >= 0, "train.max_steps", t.max_steps, "an integer >= 0 (0 = no limit)");

  const auto& x = c.dist;
  check.require(x.backend == "auto" || x.backend == "mpi" || x.backend == "nccl", "dist.backend", x.backend,
                "auto, mpi or nccl");
  check.require(x.bucket_mb > 0, "dist.bucket_mb", x.bucket_mb, "a number > 0");
  check.require(x.timeout_s > 0, "dist.timeout_s", x.timeout_s, "a number of seconds > 0");
}

}  // namespace

RunConfig parse_run_config(const nlohmann::json& root, const std::string& source) {
  if (!root.is_object()) throw std::runtime_error(source + ": found " + std::string(root.type_name()) + ", expected a JSON object");
  RunConfig c;
  Section top(root, "", source);
  top.read("description", c.description);
  top.read("energy", c.energy);
  top.read("slurm", c.slurm);
  // config_hash is provenance that pretrain adds to RUN_DIR/config.json; ignoring it lets that
  // file serve again as --config (and lets `report` read it).
  top.finish({"model", "objective", "optim", "data", "train", "dist", "config_hash"});

  Section m(root, "model", source);
  m.read("arch", c.model.arch);
  m.read("img_size", c.model.img_size);
  m.read("init", c.model.init);
  m.read("init_seed", c.model.init_seed);
  m.finish();

  Section o(root, "objective", source);
  o.read("max_corruption_ratio", c.objective.max_corruption_ratio);
  o.read("sample_corruption_ratio", c.objective.sample_corruption_ratio);
  o.read("pixel_noise_scale", c.objective.pixel_noise_scale);
  o.read("last_sample_clean", c.objective.last_sample_clean);
  o.read("projector_norm_eps", c.objective.projector_norm_eps);
  o.read("projector_layer_scale_init", c.objective.projector_layer_scale_init);
  o.read("train_corruption_token", c.objective.train_corruption_token);
  o.finish();

  Section p(root, "optim", source);
  p.read("lr", c.optim.lr);
  p.read("beta1", c.optim.beta1);
  p.read("beta2", c.optim.beta2);
  p.read("eps", c.optim.eps);
  p.read("weight_decay", c.optim.weight_decay);
  p.read("decay_tokens", c.optim.decay_tokens);
  p.read("clip_grad_norm", c.optim.clip_grad_norm);
  p.read("epochs", c.optim.epochs);
  p.read("cosine_epochs", c.optim.cosine_epochs);
  p.read("warmup_epochs", c.optim.warmup_epochs);
  p.read("warmup_lr", c.optim.warmup_lr);
  p.read("min_lr", c.optim.min_lr);
  p.read("grad_scaler", c.optim.grad_scaler);
  p.read("grad_scaler_init_scale", c.optim.grad_scaler_init_scale);
  p.read("grad_scaler_growth_interval", c.optim.grad_scaler_growth_interval);
  p.finish();

  Section d(root, "data", source);
  d.read("path", c.data.path);
  d.read("split", c.data.split);
  d.read("batch_size", c.data.batch_size);
  d.read("drop_last", c.data.drop_last);
  d.read("workers", c.data.workers);
  d.read("prefetch", c.data.prefetch);
  d.read("seed", c.data.seed);
  d.read("augment", c.data.augment);
  d.finish();

  Section t(root, "train", source);
  t.read("grad_accum", c.train.grad_accum);
  t.read("precision", c.train.precision);
  t.read("checkpoint_every_steps", c.train.checkpoint_every_steps);
  t.read("checkpoint_every_epochs", c.train.checkpoint_every_epochs);
  t.read("keep_last", c.train.keep_last);
  t.read("log_every", c.train.log_every);
  t.read("threads", c.train.threads);
  t.read("max_steps", c.train.max_steps);
  t.read("device", c.train.device);
  t.finish();

  Section x(root, "dist", source);
  x.read("backend", c.dist.backend);
  x.read("bucket_mb", c.dist.bucket_mb);
  x.read("timeout_s", c.dist.timeout_s);
  x.finish();

  validate(c, source);
  try {
    energy::energy_options_from_json(c.energy);  // checked now, not hours into the run
  } catch (const std::exception& e) {
    throw std::runtime_error(source + ": " + e.what());
  }
  return c;
}

nlohmann::json to_json(const RunConfig& c) {
  const auto& o = c.objective;
  return json{
      {"description", c.description},
      {"model", {{"arch", c.model.arch}, {"img_size", c.model.img_size}, {"init", c.model.init},
                 {"init_seed", c.model.init_seed}}},
      {"objective", {{"max_corruption_ratio", o.max_corruption_ratio},
                     {"sample_corruption_ratio", o.sample_corruption_ratio},
                     {"pixel_noise_scale", o.pixel_noise_scale},
                     {"last_sample_clean", o.last_sample_clean},
                     {"projector_norm_eps", o.projector_norm_eps},
                     {"projector_layer_scale_init", o.projector_layer_scale_init},
                     {"train_corruption_token", o.train_corruption_token}}},
      {"optim", {{"lr", c.optim.lr}, {"beta1", c.optim.beta1}, {"beta2", c.optim.beta2}, {"eps", c.optim.eps},
                 {"weight_decay", c.optim.weight_decay}, {"decay_tokens", c.optim.decay_tokens},
                 {"clip_grad_norm", c.optim.clip_grad_norm}, {"epochs", c.optim.epochs},
                 {"cosine_epochs", c.optim.cosine_epochs}, {"warmup_epochs", c.optim.warmup_epochs},
                 {"warmup_lr", c.optim.warmup_lr}, {"min_lr", c.optim.min_lr}, {"grad_scaler", c.optim.grad_scaler},
                 {"grad_scaler_init_scale", c.optim.grad_scaler_init_scale},
                 {"grad_scaler_growth_interval", c.optim.grad_scaler_growth_interval}}},
      {"data", {{"path", c.data.path}, {"split", c.data.split}, {"batch_size", c.data.batch_size},
                {"drop_last", c.data.drop_last}, {"workers", c.data.workers}, {"prefetch", c.data.prefetch}, {"seed", c.data.seed},
                {"augment", c.data.augment}}},
      {"train", {{"grad_accum", c.train.grad_accum}, {"precision", c.train.precision},
                 {"checkpoint_every_steps", c.train.checkpoint_every_steps},
                 {"checkpoint_every_epochs", c.train.checkpoint_every_epochs},
                 {"keep_last", c.train.keep_last}, {"log_every", c.train.log_every},
                 {"threads", c.train.threads}, {"max_steps", c.train.max_steps}, {"device", c.train.device}}},
      {"dist", {{"backend", c.dist.backend}, {"bucket_mb", c.dist.bucket_mb}, {"timeout_s", c.dist.timeout_s}}},
      {"energy", c.energy},
      {"slurm", c.slurm},
  };
}

nlohmann::json identity_fields(const RunConfig& config) {
  // What defines the trajectory: the network, the objective, the optimizer and its schedule,
  // and the data stream. Logging, checkpoint cadence, threads, workers, paths of the data and
  // the distributed backend may change between a run and its resumption.
  const json full = to_json(config);
  json identity = json::object();
  for (const char* section : {"model", "objective", "optim"})
    for (const auto& item : full.at(section).items()) identity[std::string(section) + "." + item.key()] = item.value();
  for (const char* key : {"split", "batch_size", "drop_last", "seed", "augment"})
    identity[std::string("data.") + key] = full.at("data").at(key);
  return identity;
}

std::string config_hash(const RunConfig& config) {
  const std::string text = identity_fields(config).dump();
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("config hash: OpenSSL sha256 failed");
  std::ostringstream hex;
  for (unsigned int i = 0; i < length; ++i) hex << std::hex << std::setw(2) << std::setfill('0') << int(digest[i]);
  return hex.str();
}

std::vector<std::string> identity_differences(const nlohmann::json& stored, const nlohmann::json& current) {
  std::vector<std::string> differences;
  for (const auto& item : current.items()) {
    const std::string before = stored.contains(item.key()) ? stored.at(item.key()).dump() : "absent";
    if (before != item.value().dump()) differences.push_back(item.key() + ": " + before + " vs " + item.value().dump());
  }
  for (const auto& item : stored.items())
    if (!current.contains(item.key())) differences.push_back(item.key() + ": " + item.value().dump() + " vs absent");
  return differences;
}

}  // namespace gf::train
