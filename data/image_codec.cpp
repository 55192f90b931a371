#include "data/image_codec.hpp"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>

// jpeglib.h needs size_t/FILE declared first.
#include <jerror.h>
#include <jpeglib.h>

namespace gf::data {
namespace {

bool is_jpeg(const std::vector<uint8_t>& bytes) {
  return bytes.size() >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF;
}

bool is_png(const std::vector<uint8_t>& bytes) {
  static const uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  return bytes.size() >= 8 && std::memcmp(bytes.data(), kSignature, 8) == 0;
}

uint32_t big_endian_32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

void check_pixel_count(uint64_t width, uint64_t height, const char* format, const std::string& name) {
  if (width * height <= static_cast<uint64_t>(kMaxImagePixels)) return;
  throw ImageError("too_large", name + ": found a " + format + " declaring " + std::to_string(width) + "x" +
                                    std::to_string(height) + " (" + std::to_string(width * height) +
                                    " pixels), expected at most " + std::to_string(kMaxImagePixels) +
                                    " pixels (PIL's decompression-bomb limit)");
}

// The IHDR chunk must come first (PNG spec 5.6): its width and height, read before OpenCV
// decodes anything, since OpenCV 4.6 has no header-only read and would allocate W x H x 4 first.
void check_png_header(const std::vector<uint8_t>& bytes, const std::string& name) {
  static const uint8_t kIhdr[4] = {'I', 'H', 'D', 'R'};
  if (bytes.size() < 24 || std::memcmp(bytes.data() + 12, kIhdr, 4) != 0)
    throw ImageError("truncated_image", name + ": found a PNG without its IHDR header, expected a complete file");
  check_pixel_count(big_endian_32(bytes.data() + 16), big_endian_32(bytes.data() + 20), "PNG", name);
}

// libjpeg reports problems through callbacks: errors end the decode; so do the warnings that
// mean missing or corrupt data (libjpeg would otherwise hand back a grey-filled image).
struct JpegErrors {
  jpeg_error_mgr manager;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  bool truncated;
  uint64_t width, height;  // as the header declares; set when it declares too many pixels
};

[[noreturn]] void jpeg_fail(j_common_ptr cinfo) {
  auto* errors = reinterpret_cast<JpegErrors*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, errors->message);
  std::longjmp(errors->jump, 1);
}

void jpeg_message(j_common_ptr cinfo, int level) {
  if (level >= 0) return;  // trace messages
  const int code = cinfo->err->msg_code;
  if (code == JWRN_EXTRANEOUS_DATA) return;  // junk between markers: the image itself is whole
  reinterpret_cast<JpegErrors*>(cinfo->err)->truncated = (code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER);
  jpeg_fail(cinfo);
}

// Returns false with errors->message set on failure. No C++ objects with destructors live in
// this frame, so longjmp out of libjpeg is safe.
bool decode_jpeg_into(const std::vector<uint8_t>& bytes, cv::Mat* out, JpegErrors* errors) {
  jpeg_decompress_struct cinfo;
  cinfo.err = jpeg_std_error(&errors->manager);
  errors->manager.error_exit = jpeg_fail;
  errors->manager.emit_message = jpeg_message;
  errors->truncated = false;
  errors->width = errors->height = 0;
  if (setjmp(errors->jump)) {
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, bytes.data(), static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&cinfo, TRUE);
  if (uint64_t{cinfo.image_width} * cinfo.image_height > static_cast<uint64_t>(kMaxImagePixels)) {  // before any pixel buffer
    errors->width = cinfo.image_width;
    errors->height = cinfo.image_height;
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  cinfo.out_color_space = JCS_RGB;
  jpeg_start_decompress(&cinfo);
  out->create(static_cast<int>(cinfo.output_height), static_cast<int>(cinfo.output_width), CV_8UC3);
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = out->ptr<uint8_t>(static_cast<int>(cinfo.output_scanline));
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return true;
}

bool encode_jpeg_into(const cv::Mat& rgb, int quality, unsigned char** buffer, unsigned long* size, JpegErrors* errors) {
  jpeg_compress_struct cinfo;
  cinfo.err = jpeg_std_error(&errors->manager);
  errors->manager.error_exit = jpeg_fail;
  if (setjmp(errors->jump)) {
    jpeg_destroy_compress(&cinfo);
    return false;
  }
  jpeg_create_compress(&cinfo);
  jpeg_mem_dest(&cinfo, buffer, size);
  cinfo.image_width = static_cast<JDIMENSION>(rgb.cols);
  cinfo.image_height = static_cast<JDIMENSION>(rgb.rows);
  cinfo.input_components = 3;
  cinfo.in_color_space = JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  for (int c = 0; c < cinfo.num_components; ++c) {  // 4:4:4, as PIL's subsampling=0
    cinfo.comp_info[c].h_samp_factor = 1;
    cinfo.comp_info[c].v_samp_factor = 1;
  }
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(rgb.ptr<uint8_t>(static_cast<int>(cinfo.next_scanline)));
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  return true;
}

cv::Mat to_rgb(const cv::Mat& decoded, const std::string& name) {
  if (decoded.depth() != CV_8U) {
    throw ImageError("not_8bit", name + ": found a " + std::to_string(8 * decoded.elemSize1()) +
                                     "-bit image, expected 8-bit RGB or grey");
  }
  cv::Mat rgb;
  switch (decoded.channels()) {
    case 1: cv::cvtColor(decoded, rgb, cv::COLOR_GRAY2RGB); break;
    case 3: cv::cvtColor(decoded, rgb, cv::COLOR_BGR2RGB); break;
    case 4: cv::cvtColor(decoded, rgb, cv::COLOR_BGRA2RGB); break;
    default:
      throw ImageError("unreadable_image", name + ": found " + std::to_string(decoded.channels()) +
                                               " channels, expected RGB or grey");
  }
  return rgb;
}

}  // namespace

cv::Mat decode_image(const std::vector<uint8_t>& bytes, const std::string& name) {
  if (bytes.empty()) throw ImageError("empty_file", name + ": found an empty file, expected an image");
  if (is_jpeg(bytes)) {
    cv::Mat rgb;
    JpegErrors errors;
    if (!decode_jpeg_into(bytes, &rgb, &errors)) {
      if (errors.width > 0) check_pixel_count(errors.width, errors.height, "JPEG", name);
      if (errors.truncated) throw ImageError("truncated_image", name + ": found a truncated JPEG (" + errors.message + "), expected a complete file");
      throw ImageError("unreadable_image", name + ": found a corrupt JPEG (" + errors.message + "), expected a decodable image");
    }
    return rgb;
  }
  // Only PNG goes to OpenCV: its other decoders (TIFF, PNM, WebP, ...) are not inputs, and
  // each would be one more header to check before it allocates.
  if (!is_png(bytes)) throw ImageError("unreadable_image", name + ": found data that is neither JPEG nor PNG, expected a JPEG or PNG image");
  check_png_header(bytes, name);
  const cv::Mat raw(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<uint8_t*>(bytes.data()));
  const cv::Mat decoded = cv::imdecode(raw, cv::IMREAD_UNCHANGED);
  if (decoded.empty()) throw ImageError("unreadable_image", name + ": found data that no image decoder reads, expected a JPEG or PNG image");
  return to_rgb(decoded, name);
}

cv::Mat read_image_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ImageError("unreadable_image", path + ": cannot be opened for reading");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw ImageError("unreadable_image", path + ": read failed");
  return decode_image(bytes, path);
}

std::vector<uint8_t> encode_jpeg(const cv::Mat& rgb, int quality) {
  if (rgb.type() != CV_8UC3) throw std::runtime_error("encode_jpeg: found an image that is not 8-bit RGB, expected 8-bit RGB");
  const cv::Mat input = rgb.isContinuous() ? rgb : rgb.clone();
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  JpegErrors errors;
  const bool ok = encode_jpeg_into(input, quality, &buffer, &size, &errors);
  std::vector<uint8_t> bytes;
  if (ok) bytes.assign(buffer, buffer + size);
  std::free(buffer);
  if (!ok) throw std::runtime_error(std::string("encode_jpeg: libjpeg failed (") + errors.message + ")");
  return bytes;
}

std::vector<uint8_t> encode_png(const cv::Mat& rgb) {
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  std::vector<uint8_t> bytes;
  if (!cv::imencode(".png", bgr, bytes)) throw std::runtime_error("encode_png: OpenCV could not encode the image");
  return bytes;
}

std::vector<uint8_t> encode_for_shard(const cv::Mat& rgb, Encoding encoding, int jpeg_quality) {
  switch (encoding) {
    case Encoding::kJpeg: return encode_jpeg(rgb, jpeg_quality);
    case Encoding::kPng: return encode_png(rgb);
    case Encoding::kRaw: {
      const cv::Mat continuous = rgb.isContinuous() ? rgb : rgb.clone();
      return std::vector<uint8_t>(continuous.datastart, continuous.dataend);
    }
  }
  throw std::runtime_error("encode_for_shard: unknown encoding");
}

}  // namespace gf::data
