#pragma once
// Durable file replacement: write under a temporary name ("<path>.tmp"), fsync, rename over
// the final name, fsync the folder, so a crash leaves either the old file or the new one,
// never half of one. The one writer of every file greenfound produces whole.
#include <sys/types.h>

#include <cstddef>
#include <string>

namespace gf::base {

// A file written in pieces (large outputs: safetensors, CSVs) and put in place by commit().
// Destroyed without commit() (an exception on the way), it removes the temporary file and
// leaves `path` as it was.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path, mode_t mode = 0644);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t size);
  void write(const std::string& text) { write(text.data(), text.size()); }
  // fsync, close, rename into place, fsync of the folder.
  void commit();

 private:
  std::string path_, temp_;
  int fd_ = -1;
};

// Writes `content` to `path` atomically (an AtomicFile in one piece).
void write_file_atomic(const std::string& path, const std::string& content, mode_t mode = 0644);
// fsync of an existing file or folder (after libhdf5 wrote and closed a file; after
// renames into a folder).
void fsync_path(const std::string& path);
// rename(from, to) then fsync of to's folder.
void rename_durable(const std::string& from, const std::string& to);
// Puts the folder `staged` in place of the folder `target` in one step, so a crash leaves
// either the old folder or the new one at `target`: renameat2(RENAME_EXCHANGE) swaps them
// and the old one is left at `staged` for the caller to remove. A missing `target` is a plain
// rename_durable. Throws (both folders as they were) where the file system cannot exchange.
void exchange_folder_durable(const std::string& staged, const std::string& target);

}  // namespace gf::base
