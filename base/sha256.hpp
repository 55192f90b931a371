#pragma once
// SHA-256 as lower-case hex (OpenSSL's EVP digest; every return value checked).
#include <string>

namespace gf::base {

std::string sha256_hex(const std::string& bytes);
// Of a file's bytes, read in 1 MiB pieces. Errors name the file.
std::string sha256_file(const std::string& path);

}  // namespace gf::base
