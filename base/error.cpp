#include "base/error.hpp"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace gf::base {

FieldError::FieldError(std::string source, std::string field, std::string problem)
    : std::runtime_error((source.empty() ? "" : source + ": ") + (field.empty() ? "" : field + ": ") + problem),
      source_(std::move(source)),
      field_(std::move(field)),
      problem_(std::move(problem)) {}

void throw_found_expected(const std::string& source, const std::string& field, const std::string& found,
                          const std::string& expected) {
  throw FieldError(source, field, "found " + found + ", expected " + expected);
}

std::string shown(double value) {
  if (std::isfinite(value) && value == std::floor(value) && std::fabs(value) < 1e15)
    return std::to_string(static_cast<int64_t>(value));
  return nlohmann::json(value).dump();
}

std::string shown(const std::string& value) { return nlohmann::json(value).dump(); }

std::string one_of(const std::vector<std::string>& names) {
  std::string text;
  for (size_t i = 0; i < names.size(); ++i)
    text += (i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + names[i];
  return text;
}

std::runtime_error io_error(const std::string& path, const std::string& what) {
  return std::runtime_error(path + ": " + what + " failed (" + std::strerror(errno) + ")");
}

}  // namespace gf::base
