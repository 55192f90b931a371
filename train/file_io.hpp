#pragma once
// Durable writes for the run folder: temp name, fsync, rename, fsync of the folder.
#include <string>

namespace gf::train {

// Writes `text` to `path` atomically (path.tmp, fsync, rename, fsync of the parent folder).
void write_file_atomic(const std::string& path, const std::string& text);
// fsync of a file or folder (a rename is durable once its folder is synced).
void fsync_path(const std::string& path);

}  // namespace gf::train
