#include "base/text.hpp"

#include <ctime>
#include <sstream>

namespace gf::base {

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> fields;
  std::stringstream in(text);
  for (std::string field; std::getline(in, field, separator);) fields.push_back(field);
  return fields;
}

std::string trim(const std::string& text) {
  const auto begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  return text.substr(begin, text.find_last_not_of(" \t\r\n") - begin + 1);
}

std::string format_now(Zone zone, const char* strftime_format) {
  const std::time_t now = std::time(nullptr);
  std::tm parts{};
  if (zone == Zone::kUtc)
    gmtime_r(&now, &parts);
  else
    localtime_r(&now, &parts);
  char text[64];
  std::strftime(text, sizeof(text), strftime_format, &parts);
  return text;
}

}  // namespace gf::base
