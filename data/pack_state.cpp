#include "data/pack_state.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "base/atomic_file.hpp"
#include "base/sha256.hpp"

namespace gf::data {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

json problem_json(const PackProblem& p) { return {{"kind", p.kind}, {"path", p.path}, {"detail", p.detail}}; }

PackProblem problem_from_json(const json& j) {
  return {j.at("kind").get<std::string>(), j.at("path").get<std::string>(), j.at("detail").get<std::string>()};
}

json done_shard_json(const DoneShard& d) {
  json problems = json::array();
  for (const auto& p : d.problems) problems.push_back(problem_json(p));
  return {{"file", d.info.file},   {"count", d.info.count},   {"first_index", d.info.first_index}, {"bytes", d.info.bytes},
          {"sha256", d.info.sha256}, {"input_end", d.input_end}, {"train", d.train},                 {"test", d.test},
          {"fallback", d.fallback}, {"sources", d.sources},    {"problems", problems}};
}

DoneShard done_shard_from_json(const json& s) {
  DoneShard d;
  d.info.file = s.at("file").get<std::string>();
  d.info.count = s.at("count").get<int64_t>();
  d.info.first_index = s.at("first_index").get<int64_t>();
  d.info.bytes = s.at("bytes").get<int64_t>();
  d.info.sha256 = s.at("sha256").get<std::string>();
  d.input_end = s.at("input_end").get<int64_t>();
  d.train = s.at("train").get<int64_t>();
  d.test = s.at("test").get<int64_t>();
  d.fallback = s.at("fallback").get<int64_t>();
  d.sources = s.at("sources").get<std::map<std::string, int64_t>>();
  for (const auto& p : s.at("problems")) d.problems.push_back(problem_from_json(p));
  return d;
}

}  // namespace

bool is_pack_file(const std::string& name) {
  const bool shard = name.rfind("shard-", 0) == 0 && name.find(".h5") != std::string::npos;
  return shard || name.rfind(kPackStateFile, 0) == 0 || name.rfind(kPackReportFile, 0) == 0 ||
         name == "manifest.json" || name == "manifest.json.tmp";
}

std::string pack_state_plan(const std::string& out_dir) {
  std::ifstream in(fs::path(out_dir) / kPackStateFile);
  if (!in) return "";
  try {
    json state;
    in >> state;
    return state.at("plan_sha256").get<std::string>();
  } catch (const std::exception&) {
    return "";
  }
}

void remove_pack_outputs(const std::string& out_dir) {
  const fs::path out(out_dir);
  std::error_code ec;
  fs::remove(out / "manifest.json", ec);  // first: without it nothing looks complete
  for (const auto& e : fs::directory_iterator(out))
    if (is_pack_file(e.path().filename().string())) fs::remove(e.path(), ec);
}

std::vector<DoneShard> resumable_shards(const std::string& out_dir, const std::string& plan_sha256) {
  const fs::path out(out_dir);
  std::vector<DoneShard> kept;
  std::ifstream in(out / kPackStateFile);
  if (!in) return kept;
  try {
    json state;
    in >> state;
    if (state.at("plan_sha256").get<std::string>() != plan_sha256) return {};
    for (const auto& s : state.at("shards")) {
      DoneShard d = done_shard_from_json(s);
      const fs::path file = out / d.info.file;
      std::error_code ec;
      if (!fs::is_regular_file(file, ec) || base::sha256_file(file.string()) != d.info.sha256) break;
      kept.push_back(std::move(d));
    }
  } catch (const std::exception&) {
    return {};  // an unreadable state file: start clean
  }
  return kept;
}

void write_pack_state(const std::string& out_dir, const std::string& plan_sha256, const std::vector<DoneShard>& shards) {
  json state = {{"plan_sha256", plan_sha256}, {"shards", json::array()}};
  for (const auto& d : shards) state["shards"].push_back(done_shard_json(d));
  base::write_file_atomic((fs::path(out_dir) / kPackStateFile).string(), state.dump(1) + "\n");
}

void write_pack_report(const std::string& out_dir, const PackResult& r) {
  json problems = json::array();
  std::map<std::string, int64_t> counts;
  for (const auto& p : r.problems) {
    problems.push_back(problem_json(p));
    ++counts[p.kind];
  }
  const json report = {{"inputs", r.inputs},
                       {"packed", r.packed},
                       {"problem_count", r.problems.size()},
                       {"problem_counts", counts},
                       {"problems", problems},
                       {"fallback_resized", r.fallback_resized},
                       {"resumed_shards", r.resumed_shards},
                       {"seconds", r.seconds},
                       {"images_per_second", r.images_per_second}};
  base::write_file_atomic((fs::path(out_dir) / kPackReportFile).string(), report.dump(2) + "\n");
}

bool read_pack_report(const std::string& out_dir, PackResult* result) {
  std::ifstream in(fs::path(out_dir) / kPackReportFile);
  if (!in) return false;
  try {
    json report;
    in >> report;
    std::vector<PackProblem> problems;
    for (const auto& p : report.at("problems")) problems.push_back(problem_from_json(p));
    result->problems = std::move(problems);
    result->fallback_resized = report.at("fallback_resized").get<int64_t>();
  } catch (const std::exception&) {
    return false;
  }
  return true;
}

}  // namespace gf::data
