#include "train/provenance.hpp"

#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>

#include "data/atomic_file.hpp"
#include "dist/device.hpp"

#ifndef GF_GIT_COMMIT
#define GF_GIT_COMMIT "unknown"
#endif

namespace gf::train {

namespace {

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

}  // namespace

void record_session(const std::string& run_dir, const Session& s) {
  const std::string path = run_dir + "/provenance.json";
  std::ifstream in(path);
  nlohmann::json document = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!document.is_object() || !document.contains("sessions") || !document["sessions"].is_array())
    document = {{"sessions", nlohmann::json::array()}};
  const dist::RuntimeVersions v = dist::runtime_versions();
  document["sessions"].push_back({{"started", utc_now()},
                                  {"start_step", s.start_step},
                                  {"host", s.host},
                                  {"ranks", s.ranks},
                                  {"ranks_per_node", s.ranks_per_node},
                                  {"threads_per_rank", s.threads_per_rank},
                                  {"device", s.device},
                                  {"backend", s.backend},
                                  {"greenfound", GF_GIT_COMMIT},
                                  {"libtorch", v.libtorch},
                                  {"cuda_runtime", v.cuda_runtime},
                                  {"cuda_driver", v.cuda_driver},
                                  {"cudnn", v.cudnn},
                                  {"nccl", v.nccl},
                                  {"mpi", v.mpi},
                                  {"gpus", v.gpus.names}});
  data::write_file_atomic(path, document.dump(2) + "\n");
}

}  // namespace gf::train
