#pragma once
// Small text helpers shared by the folders: splitting and trimming lines of tool output and
// CSV-like files, and the time stamps of logs and records.
#include <string>
#include <vector>

namespace gf::base {

// Fields between `separator`s ("a,,b" → a, "", b; "" → none). No quoting: for files whose
// fields hold no separator (greenfound's own CSVs, SLURM's `|` output).
std::vector<std::string> split(const std::string& text, char separator);
// Without leading and trailing blanks (space, tab, CR, LF).
std::string trim(const std::string& text);

// The current time, formatted by strftime: UTC ("2026-11-28T00:33:37Z") or the local zone.
enum class Zone { kUtc, kLocal };
std::string format_now(Zone zone, const char* strftime_format);

}  // namespace gf::base
