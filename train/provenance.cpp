#include "train/provenance.hpp"

#include <torch/version.h>

#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>

#include "data/atomic_file.hpp"
#include "dist/world.hpp"

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
  nlohmann::json hosts = nlohmann::json::array();
  for (const std::string& host : s.world.hosts()) {
    nlohmann::json gpus = nlohmann::json::array();
    for (const auto& place : s.world.places)
      if (place.host == host) gpus.push_back(place.visible_gpus);
    hosts.push_back({{"host", host}, {"ranks", s.world.ranks_on(host)}, {"gpus", gpus}});
  }
  document["sessions"].push_back({{"started", utc_now()},
                                  {"start_step", s.start_step},
                                  {"host", s.host},
                                  {"ranks", s.ranks},
                                  {"ranks_per_node", s.ranks_per_node},
                                  {"threads_per_rank", s.threads_per_rank},
                                  {"device", s.device},
                                  {"backend", s.backend},
                                  {"greenfound", GF_GIT_COMMIT},
                                  {"libtorch", TORCH_VERSION},
                                  {"mpi", dist::mpi_library_version()},
                                  {"hosts", hosts}});
  data::write_file_atomic(path, document.dump(2) + "\n");
}

}  // namespace gf::train
