#pragma once
// Durable file replacement: write under a temporary name, fsync, rename over the final
// name, fsync the folder, so a crash leaves either the old file or the new one, never half.
#include <string>

namespace gf::data {

// Writes `content` to `path` atomically (temporary "<path>.tmp").
void write_file_atomic(const std::string& path, const std::string& content);
// fsync of an existing file or folder (after libhdf5 wrote and closed a file; after
// renames into a folder).
void fsync_path(const std::string& path);
// rename(from, to) then fsync of to's folder.
void rename_durable(const std::string& from, const std::string& to);

}  // namespace gf::data
