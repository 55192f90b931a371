#include "train/provenance.hpp"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/atomic_file.hpp"
#include "base/json_reader.hpp"
#include "base/text.hpp"
#include "dist/device.hpp"

#ifndef GF_GIT_COMMIT
#define GF_GIT_COMMIT "unknown"
#endif

namespace gf::train {

namespace {

// A session's fields, once, as (key, field): written and read in this order. `S` is
// SessionRecord or const SessionRecord.
template <class S, class F>
void visit_fields(S& s, F&& f) {
  f("started", s.started);
  f("start_step", s.start_step);
  f("host", s.host);
  f("ranks", s.ranks);
  f("ranks_per_node", s.ranks_per_node);
  f("threads_per_rank", s.threads_per_rank);
  f("device", s.device);
  f("backend", s.backend);
  f("greenfound", s.greenfound);
  f("libtorch", s.libtorch);
  f("cuda_runtime", s.cuda_runtime);
  f("cuda_driver", s.cuda_driver);
  f("cudnn", s.cudnn);
  f("nccl", s.nccl);
  f("mpi", s.mpi);
  f("gpus", s.gpus);
}

}  // namespace

nlohmann::json to_json(const Provenance& provenance) {
  nlohmann::json sessions = nlohmann::json::array();
  for (const SessionRecord& session : provenance.sessions) {
    nlohmann::json item = nlohmann::json::object();
    visit_fields(session, [&](const char* key, const auto& field) { item[key] = field; });
    item["hosts"] = nlohmann::json::array();
    for (const SessionHost& host : session.hosts)
      item["hosts"].push_back({{"host", host.host}, {"ranks", host.ranks}, {"gpus", host.gpus}});
    sessions.push_back(std::move(item));
  }
  return {{"sessions", sessions}};
}

Provenance provenance_from_json(const nlohmann::json& json, const std::string& source) {
  Provenance provenance;
  base::Section document = base::Section::of(json, "", source);
  for (base::Section& item : document.children("sessions")) {
    SessionRecord session;
    visit_fields(session, [&](const char* key, auto& field) { item.read(key, field); });
    for (base::Section& host_item : item.children("hosts")) {
      SessionHost host;
      host_item.read("host", host.host);
      host_item.read("ranks", host.ranks);
      host_item.read("gpus", host.gpus);
      host_item.finish();
      session.hosts.push_back(std::move(host));
    }
    item.finish();
    provenance.sessions.push_back(std::move(session));
  }
  document.finish();
  return provenance;
}

Provenance read_provenance(const std::string& path) {
  if (!std::filesystem::exists(path)) return {};
  return provenance_from_json(base::load_json_file(path), path);
}

void record_session(const std::string& run_dir, const Session& started) {
  const std::string path = run_dir + "/provenance.json";
  Provenance provenance;
  try {
    provenance = read_provenance(path);
  } catch (const std::exception&) {
    // A torn or foreign file: this session starts a new record.
  }
  SessionRecord session;
  static_cast<Session&>(session) = started;
  session.started = base::format_now(base::Zone::kUtc, "%Y-%m-%dT%H:%M:%SZ");
  session.greenfound = GF_GIT_COMMIT;
  const dist::RuntimeVersions versions = dist::runtime_versions();
  session.libtorch = versions.libtorch;
  session.cuda_runtime = versions.cuda_runtime;
  session.cuda_driver = versions.cuda_driver;
  session.cudnn = versions.cudnn;
  session.nccl = versions.nccl;
  session.mpi = versions.mpi;
  session.gpus = versions.gpus.names;
  for (const std::string& host : started.world.hosts()) {
    SessionHost record{host, started.world.ranks_on(host), {}};
    for (const auto& place : started.world.places)
      if (place.host == host) record.gpus.push_back(place.visible_gpus);
    session.hosts.push_back(std::move(record));
  }
  provenance.sessions.push_back(std::move(session));
  base::write_file_atomic(path, to_json(provenance).dump(2) + "\n");
}

}  // namespace gf::train
