#include "train/run_config.hpp"

#include <cmath>
#include <map>
#include <stdexcept>

#include "base/json_reader.hpp"
#include "base/sha256.hpp"
#include "model/vit.hpp"

namespace gf::train {

namespace {

using nlohmann::json;

// Every field of the sections RunConfig types itself, once, as (section, key, field[, names]):
// parse_run_config reads them, to_json writes them, in this order. `C` is RunConfig or const
// RunConfig.
template <class C, class F>
void visit_fields(C& c, F&& f) {
  f("model", "arch", c.model.arch);
  f("model", "img_size", c.model.img_size);
  f("model", "init", c.model.init);
  f("model", "init_seed", c.model.init_seed);
  f("objective", "kind", c.objective_kind, kObjectiveKindNames);
  f("objective", "mask_ratio", c.masked_pixels.mask_ratio);
  f("objective", "max_corruption_ratio", c.objective.max_corruption_ratio);
  f("objective", "sample_corruption_ratio", c.objective.sample_corruption_ratio);
  f("objective", "pixel_noise_scale", c.objective.pixel_noise_scale);
  f("objective", "last_sample_clean", c.objective.last_sample_clean);
  f("objective", "projector_norm_eps", c.objective.projector_norm_eps);
  f("objective", "projector_layer_scale_init", c.objective.projector_layer_scale_init);
  f("objective", "train_corruption_token", c.objective.train_corruption_token);
  f("optim", "lr", c.optim.lr);
  f("optim", "beta1", c.optim.beta1);
  f("optim", "beta2", c.optim.beta2);
  f("optim", "eps", c.optim.eps);
  f("optim", "weight_decay", c.optim.weight_decay);
  f("optim", "decay_tokens", c.optim.decay_tokens);
  f("optim", "clip_grad_norm", c.optim.clip_grad_norm);
  f("optim", "epochs", c.optim.epochs);
  f("optim", "cosine_epochs", c.optim.cosine_epochs);
  f("optim", "warmup_epochs", c.optim.warmup_epochs);
  f("optim", "warmup_lr", c.optim.warmup_lr);
  f("optim", "min_lr", c.optim.min_lr);
  f("optim", "grad_scaler", c.optim.grad_scaler);
  f("optim", "grad_scaler_init_scale", c.optim.grad_scaler_init_scale);
  f("optim", "grad_scaler_growth_interval", c.optim.grad_scaler_growth_interval);
  f("data", "path", c.data.path);
  f("data", "split", c.data.split);
  f("data", "fraction", c.data.fraction);
  f("data", "batch_size", c.data.batch_size);
  f("data", "drop_last", c.data.drop_last);
  f("data", "workers", c.data.workers);
  f("data", "prefetch", c.data.prefetch);
  f("data", "seed", c.data.seed);
  f("data", "augment", c.data.augment);
  f("train", "grad_accum", c.train.grad_accum);
  f("train", "precision", c.train.precision, kPrecisionNames);
  f("train", "checkpoint_every_steps", c.train.checkpoint_every_steps);
  f("train", "checkpoint_every_epochs", c.train.checkpoint_every_epochs);
  f("train", "keep_last", c.train.keep_last);
  f("train", "log_every", c.train.log_every);
  f("train", "threads", c.train.threads);
  f("train", "max_steps", c.train.max_steps);
  f("train", "device", c.train.device);
  f("dist", "backend", c.dist.backend, dist::kBackendNames);
  f("dist", "bucket_mb", c.dist.bucket_mb);
  f("dist", "timeout_s", c.dist.timeout_s);
}

constexpr const char* kSections[] = {"model", "objective", "optim", "data", "train", "dist"};

// A field as JSON: itself, or an enum's name.
template <class T>
json field_json(const T& value) {
  return value;
}
template <class E, size_t N>
json field_json(const E& value, const base::EnumName<E> (&names)[N]) {
  return base::enum_name(value, names);
}

void validate(const RunConfig& c, const std::string& source) {
  const base::Checker check(source);
  check.require(!c.model.arch.empty(), "model.arch", c.model.arch, "a registered architecture name");
  check.require(c.model.img_size > 0 && c.model.img_size % 14 == 0 && c.model.img_size <= model::kMaxImgSize,
                "model.img_size", c.model.img_size,
                "a positive multiple of the patch size 14 up to " + std::to_string(model::kMaxImgSize));

  const auto& o = c.objective;
  check.require(o.max_corruption_ratio >= 0 && o.max_corruption_ratio <= 1, "objective.max_corruption_ratio",
                o.max_corruption_ratio, "a ratio in [0, 1]");
  check.require(c.masked_pixels.mask_ratio > 0 && c.masked_pixels.mask_ratio < 1, "objective.mask_ratio",
                c.masked_pixels.mask_ratio, "a ratio in (0, 1)");
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
  check.require(d.fraction > 0 && d.fraction <= 1, "data.fraction", d.fraction, "a number in (0, 1]");

  const auto& t = c.train;
  check.require(t.grad_accum >= 1, "train.grad_accum", t.grad_accum, "an integer >= 1");
  check.require(d.batch_size % t.grad_accum == 0, "data.batch_size", d.batch_size,
                "a multiple of train.grad_accum (" + std::to_string(t.grad_accum) + ")");
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
  check.require(x.bucket_mb > 0, "dist.bucket_mb", x.bucket_mb, "a number > 0");
  check.require(x.timeout_s > 0, "dist.timeout_s", x.timeout_s, "a number of seconds > 0");
}

}  // namespace

RunConfig parse_run_config(const nlohmann::json& root, const std::string& source) {
  if (!root.is_object())
    throw std::runtime_error(source + ": found " + std::string(root.type_name()) + ", expected a JSON object");
  RunConfig c;
  base::Section top(root, "", source);
  top.read("description", c.description);
  // config_hash is provenance that pretrain adds to RUN_DIR/config.json; skipping it lets that
  // file serve again as --config (and lets `report` read it).
  top.skip("config_hash");
  std::map<std::string, base::Section> sections;
  for (const char* name : kSections) sections.emplace(name, top.child(name));
  visit_fields(c, [&](const char* section, const char* key, auto& field, const auto&... names) {
    sections.at(section).read(key, field, names...);
  });
  for (const auto& [name, section] : sections) section.finish();
  base::Section energy = top.child("energy");
  energy::read_energy_options(energy, c.energy);
  base::Section slurm = top.child("slurm");
  slurm::read_job_spec_layer(slurm, c.slurm);
  top.finish();
  validate(c, source);
  return c;
}

nlohmann::json to_json(const RunConfig& c) {
  json out = {{"description", c.description},
              {"energy", energy::energy_options_to_json(c.energy)},
              {"slurm", slurm::to_json(c.slurm)}};
  visit_fields(c, [&](const char* section, const char* key, const auto& field, const auto&... names) {
    out[section][key] = field_json(field, names...);
  });
  return out;
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
  // Token Reconstruction runs keep the identity they had before objective.kind existed, so
  // their checkpoints still resume.
  if (config.objective_kind == ObjectiveKind::kTokenReconstruction) {
    identity.erase("objective.kind");
    identity.erase("objective.mask_ratio");
  }
  // Only a subset enters the identity, so checkpoints written before data.fraction existed resume.
  if (config.data.fraction != 1.0) identity["data.fraction"] = config.data.fraction;
  return identity;
}

std::string config_hash(const RunConfig& config) { return base::sha256_hex(identity_fields(config).dump()); }

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
