#pragma once
// Image files <-> 8-bit RGB cv::Mat (HWC, continuous). JPEG goes through libjpeg with every
// warning treated as an error (a truncated or corrupt JPEG is bad input, never a grey
// half-image); PNG through OpenCV, unchanged depth so a 16-bit file is
// reported, not silently rescaled. EXIF orientation is ignored, as torchvision's read_image
// and PIL's Image.open do.
#include <opencv2/core.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/dataset.hpp"

namespace gf::data {

// Why an input image cannot be used; kind() is the pack-report problem kind.
class ImageError : public std::runtime_error {
 public:
  ImageError(std::string kind, const std::string& message) : std::runtime_error(message), kind_(std::move(kind)) {}
  const std::string& kind() const { return kind_; }

 private:
  std::string kind_;
};

// PIL's Image.MAX_IMAGE_PIXELS x 2: past it PIL raises DecompressionBombError. Checked from
// the JPEG/PNG header, before any pixel is decoded.
inline constexpr int64_t kMaxImagePixels = 2 * int64_t{89478485};

// Decodes JPEG/PNG bytes to RGB. `name` only labels errors. Throws ImageError with kind
// "empty_file", "truncated_image", "unreadable_image", "not_8bit" or "too_large" (over
// kMaxImagePixels).
cv::Mat decode_image(const std::vector<uint8_t>& bytes, const std::string& name);
// Reads and decodes a file (ImageError as above; kind "unreadable_image" when it cannot be read).
cv::Mat read_image_file(const std::string& path);

// JPEG with 4:4:4 chroma (no subsampling), baseline, the given quality.
std::vector<uint8_t> encode_jpeg(const cv::Mat& rgb, int quality);
std::vector<uint8_t> encode_png(const cv::Mat& rgb);
// Encodes for a shard: JPEG, PNG or the raw HWC bytes.
std::vector<uint8_t> encode_for_shard(const cv::Mat& rgb, Encoding encoding, int jpeg_quality);

}  // namespace gf::data
