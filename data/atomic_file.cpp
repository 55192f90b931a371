#include "data/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace gf::data {
namespace {

std::runtime_error io_error(const std::string& path, const char* what) {
  return std::runtime_error(path + ": " + what + " failed (" + std::strerror(errno) + ")");
}

void fsync_fd_path(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags);
  if (fd < 0) throw io_error(path, "open for fsync");
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) throw io_error(path, "fsync");
}

}  // namespace

void fsync_path(const std::string& path) { fsync_fd_path(path, O_RDONLY); }

void rename_durable(const std::string& from, const std::string& to) {
  if (std::rename(from.c_str(), to.c_str()) != 0) throw io_error(to, "rename");
  std::string folder = std::filesystem::path(to).parent_path().string();
  fsync_fd_path(folder.empty() ? "." : folder, O_RDONLY | O_DIRECTORY);
}

void write_file_atomic(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) throw io_error(tmp, "open for writing");
  size_t written = 0;
  while (written < content.size()) {
    const ssize_t n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      throw io_error(tmp, "write");
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    throw io_error(tmp, "fsync");
  }
  if (::close(fd) != 0) throw io_error(tmp, "close");
  rename_durable(tmp, path);
}

}  // namespace gf::data
