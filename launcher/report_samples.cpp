#include <openssl/evp.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <ATen/ATen.h>
#include <filesystem>

#include "data/dataset.hpp"
#include "launcher/report_html.hpp"
#include "model/arch_registry.hpp"
#include "model/token_reconstruction.hpp"
#include "model/vit.hpp"
#include "train/run_config.hpp"

namespace gf::launcher {

namespace {

cv::Mat to_rgb8(const at::Tensor& chw) {  // normalised [3,S,S] -> uint8 HWC RGB
  at::Tensor hwc = ((chw * 0.5 + 0.5).clamp(0, 1) * 255).round().to(at::kByte).permute({1, 2, 0}).contiguous();
  cv::Mat image(static_cast<int>(hwc.size(0)), static_cast<int>(hwc.size(1)), CV_8UC3, hwc.data_ptr<uint8_t>());
  return image.clone();
}

std::string base64(const std::vector<uint8_t>& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes.data(), static_cast<int>(bytes.size()));
  out.resize(n);
  return out;
}

}  // namespace

std::string sample_grid_png_base64(const RunData& run, int count, std::string* why) {
  if (count <= 0) return "";
  if (!run.config) {
    *why = "no config.json in " + run.dir;
    return "";
  }
  const train::RunConfig& config = *run.config;
  if (config.data.path.empty() || !data::is_dataset_dir(config.data.path)) {
    *why = "the run's dataset (" + config.data.path + ") is not available here";
    return "";
  }
  auto dataset = data::Dataset::open(config.data.path, data::Verify::kSizes);
  std::vector<int64_t> indices = dataset->split_indices(dataset->has_split() ? config.data.split : "all");
  indices.resize(std::min<size_t>(indices.size(), count));
  if (indices.empty()) {
    *why = "the run's dataset split is empty";
    return "";
  }
  const model::VitOptions vit_options = model::arch_options(config.model.arch, config.model.img_size);
  const int64_t size = vit_options.img_size;
  std::vector<at::Tensor> images;
  for (int64_t index : indices) {
    cv::Mat rgb = dataset->decode(index), resized;
    cv::resize(rgb, resized, cv::Size(size, size), 0, 0, cv::INTER_AREA);
    at::Tensor t = at::from_blob(resized.data, {size, size, 3}, at::kByte).permute({2, 0, 1}).to(at::kFloat);
    images.push_back((t / 255.0 - 0.5) / 0.5);
  }
  const at::Tensor batch = at::stack(images);

  // The run's own objective draws the corruption, so the picture is what the student saw.
  model::VisionTransformer vit(vit_options);
  vit->init_weights(config.model.init_seed);
  model::TokenReconstruction objective(vit, config.objective);
  std::vector<int64_t> positions(indices.size());
  for (size_t i = 0; i < positions.size(); ++i) positions[i] = static_cast<int64_t>(i);
  const auto draws = model::draw_corruption({config.data.seed, 0, 0}, positions, vit_options, at::kCPU);
  at::NoGradGuard no_grad;
  const auto out = objective->forward(batch, draws, static_cast<int64_t>(indices.size()) - 1);

  const int64_t patch = vit_options.patch_size, grid = vit_options.grid(), gap = 6;
  const int64_t n = static_cast<int64_t>(indices.size());
  cv::Mat sheet(static_cast<int>(2 * size + gap), static_cast<int>(n * size + (n - 1) * gap), CV_8UC3, cv::Scalar(255, 255, 255));
  for (int64_t i = 0; i < n; ++i) {
    const int x = static_cast<int>(i * (size + gap));
    to_rgb8(batch[i]).copyTo(sheet(cv::Rect(x, 0, size, size)));
    cv::Mat corrupted = to_rgb8(out.student_input[i]);
    const at::Tensor mask = out.mask[i].to(at::kBool);
    for (int64_t p = 0; p < grid * grid; ++p) {
      if (!mask[p].item<bool>()) continue;  // replaced tokens: their pixels never reach the student
      cv::Rect cell(static_cast<int>((p % grid) * patch), static_cast<int>((p / grid) * patch), patch, patch);
      corrupted(cell).setTo(cv::Scalar(40, 40, 40));
    }
    corrupted.copyTo(sheet(cv::Rect(x, static_cast<int>(size + gap), size, size)));
  }
  cv::Mat bgr;
  cv::cvtColor(sheet, bgr, cv::COLOR_RGB2BGR);
  std::vector<uint8_t> png;
  cv::imencode(".png", bgr, png);
  return base64(png);
}

}  // namespace gf::launcher
