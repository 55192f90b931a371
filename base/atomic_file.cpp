#include "base/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>

#include "base/error.hpp"

namespace gf::base {
namespace {

void fsync_fd_path(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) throw io_error(path, "open for fsync");
  const int rc = ::fsync(fd);
  const int error = errno;
  ::close(fd);
  errno = error;
  if (rc != 0) throw io_error(path, "fsync");
}

}  // namespace

void fsync_path(const std::string& path) { fsync_fd_path(path, O_RDONLY); }

void rename_durable(const std::string& from, const std::string& to) {
  if (std::rename(from.c_str(), to.c_str()) != 0) throw io_error(to, "rename");
  const std::string folder = std::filesystem::path(to).parent_path().string();
  fsync_fd_path(folder.empty() ? "." : folder, O_RDONLY | O_DIRECTORY);
}

void exchange_folder_durable(const std::string& staged, const std::string& target) {
  std::error_code ec;
  if (!std::filesystem::exists(target, ec)) return rename_durable(staged, target);
  if (::renameat2(AT_FDCWD, staged.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) != 0)
    throw io_error(target, "exchange with " + staged);
  const std::string folder = std::filesystem::path(target).parent_path().string();
  fsync_fd_path(folder.empty() ? "." : folder, O_RDONLY | O_DIRECTORY);
}

AtomicFile::AtomicFile(std::string path, mode_t mode) : path_(std::move(path)), temp_(path_ + ".tmp") {
  fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd_ < 0) throw io_error(temp_, "open for writing");
  // The mode asked for, whatever the umask (job scripts must be executable).
  if (::fchmod(fd_, mode) != 0) {
    const auto error = io_error(temp_, "chmod");
    ::close(fd_);
    ::unlink(temp_.c_str());
    throw error;
  }
}

AtomicFile::~AtomicFile() {
  if (fd_ < 0) return;
  ::close(fd_);
  ::unlink(temp_.c_str());
}

void AtomicFile::write(const void* data, size_t size) {
  const char* bytes = static_cast<const char*>(data);
  size_t written = 0;
  while (written < size) {
    const ssize_t n = ::write(fd_, bytes + written, size - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw io_error(temp_, "write");
    }
    written += static_cast<size_t>(n);
  }
}

void AtomicFile::commit() {
  if (::fsync(fd_) != 0) throw io_error(temp_, "fsync");
  const int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0) {
    const auto error = io_error(temp_, "close");
    ::unlink(temp_.c_str());
    throw error;
  }
  try {
    rename_durable(temp_, path_);
  } catch (...) {
    ::unlink(temp_.c_str());
    throw;
  }
}

void write_file_atomic(const std::string& path, const std::string& content, mode_t mode) {
  AtomicFile file(path, mode);
  file.write(content);
  file.commit();
}

}  // namespace gf::base
