#pragma once
// pack's files beside the shards: pack-state.json (the finished shards of a run still under
// way, so an interrupted run resumes) and pack-report.json (what was packed and every
// problem with the input). Internal to pack.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "data/dataset.hpp"
#include "data/pack.hpp"

namespace gf::data {

inline constexpr const char* kPackStateFile = "pack-state.json";
inline constexpr const char* kPackReportFile = "pack-report.json";

// A finished shard as recorded in pack-state.json.
struct DoneShard {
  ShardInfo info;
  int64_t input_end = 0;  // plan entries consumed up to and including this shard
  int64_t train = 0, test = 0, fallback = 0;
  std::map<std::string, int64_t> sources;
  std::vector<PackProblem> problems;  // bad images met while filling it
};

// A file pack writes into a dataset folder: manifest.json, shard-NNNNN.h5, the state and report
// files, and each one's temporary.
bool is_pack_file(const std::string& name);
// The plan_sha256 of an unfinished pack's state file; "" when absent or unreadable.
std::string pack_state_plan(const std::string& out_dir);
// Deletes manifest.json first (without it nothing looks complete), then every shard,
// temporary, state and report file of an earlier run. Other files are left alone.
void remove_pack_outputs(const std::string& out_dir);
// The recorded shards of an interrupted run with the same plan, up to the first whose file
// is missing or fails its sha256; empty when there is no usable state.
std::vector<DoneShard> resumable_shards(const std::string& out_dir, const std::string& plan_sha256);
void write_pack_state(const std::string& out_dir, const std::string& plan_sha256, const std::vector<DoneShard>& shards);

void write_pack_report(const std::string& out_dir, const PackResult& result);
// Fills result->problems and fallback_resized from an existing report; false when unreadable.
bool read_pack_report(const std::string& out_dir, PackResult* result);

}  // namespace gf::data
