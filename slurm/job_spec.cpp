#include "slurm/job_spec.hpp"

#include <cstdlib>
#include <regex>
#include <stdexcept>
#include <type_traits>

#include "base/json_reader.hpp"

namespace gf::slurm {
namespace {

using nlohmann::json;

[[noreturn]] void invalid(const std::string& field, const std::string& found, const std::string& expected) {
  base::throw_found_expected("slurm job", field, found, expected);
}

// libstdc++'s std::regex recurses once per character: a 300 KB job_name overflowed the stack
// of `submit`. Every field matched here is short; a longer one is refused before matching.
constexpr size_t kMaxMatchedBytes = 1024;

bool matches(const std::string& text, const std::regex& pattern) {
  return text.size() <= kMaxMatchedBytes && std::regex_match(text, pattern);
}

// "value" for "found ...", a long one cut short (its length said).
std::string quoted(const std::string& value) {
  if (value.size() <= 80) return "\"" + value + "\"";
  return "\"" + value.substr(0, 40) + "..\" (" + std::to_string(value.size()) + " bytes)";
}

// Every setting a layer may name, as (key, member): one list for reading, writing and layering.
template <class F>
void for_each_setting(F&& f) {
  f("job_name", &JobSpec::job_name);
  f("nodes", &JobSpec::nodes);
  f("ntasks_per_node", &JobSpec::ntasks_per_node);
  f("gpus_per_node", &JobSpec::gpus_per_node);
  f("gpu_type", &JobSpec::gpu_type);
  f("cpus_per_task", &JobSpec::cpus_per_task);
  f("time", &JobSpec::time);
  f("partition", &JobSpec::partition);
  f("account", &JobSpec::account);
  f("qos", &JobSpec::qos);
  f("mem", &JobSpec::mem);
  f("array", &JobSpec::array);
  f("array_throttle", &JobSpec::array_throttle);
  f("signal", &JobSpec::signal);
  f("signal_seconds", &JobSpec::signal_seconds);
  f("requeue", &JobSpec::requeue);
  f("launcher", &JobSpec::launcher);
  f("modules", &JobSpec::modules);
  f("extra_sbatch", &JobSpec::extra_sbatch);
  f("environment", &JobSpec::environment);
  f("output", &JobSpec::output);
  f("error", &JobSpec::error);
}

template <class T>
constexpr bool is_launcher = std::is_same_v<T, RankLauncher>;

}  // namespace

void read_job_spec_layer(base::Section& section, JobSpecLayer& layer) {
  for_each_setting([&](const char* key, auto member) {
    auto& field = layer.values.*member;
    bool found = false;
    if constexpr (is_launcher<std::decay_t<decltype(field)>>)
      found = section.read(key, field, kRankLauncherNames);
    else
      found = section.read(key, field);
    if (found) layer.given.insert(key);
  });
  section.finish();
}

JobSpecLayer job_spec_layer_from_json(const nlohmann::json& object, const std::string& path, const std::string& source) {
  JobSpecLayer layer;
  base::Section section = base::Section::of(object, path, source);
  read_job_spec_layer(section, layer);
  return layer;
}

nlohmann::json to_json(const JobSpecLayer& layer) {
  json out = json::object();
  for_each_setting([&](const char* key, auto member) {
    if (layer.given.count(key) == 0) return;
    const auto& field = layer.values.*member;
    if constexpr (is_launcher<std::decay_t<decltype(field)>>)
      out[key] = base::enum_name(field, kRankLauncherNames);
    else
      out[key] = field;
  });
  return out;
}

void apply_layer(JobSpec& spec, const JobSpecLayer& layer) {
  for_each_setting([&](const char* key, auto member) {
    if (layer.given.count(key) == 0) return;
    auto& field = spec.*member;
    if constexpr (std::is_same_v<std::decay_t<decltype(field)>, std::map<std::string, std::string>>) {
      for (const auto& [name, value] : layer.values.*member) field[name] = value;
    } else {
      field = layer.values.*member;
    }
  });
}

JobSpecLayer load_site(const std::string& path) {
  return job_spec_layer_from_json(base::load_json_file(path), "", path);
}

JobSpecLayer resolve_site(const std::string& explicit_path) {
  if (!explicit_path.empty()) return load_site(explicit_path);
  const char* env = std::getenv("GREENFOUND_SITE");
  if (env && *env) return load_site(env);
  return {};
}

long parse_time_limit(const std::string& text) {
  // sbatch's forms: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S.
  static const std::regex kForm(R"(^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$)");
  std::smatch m;
  if (text.size() > kMaxMatchedBytes || !std::regex_match(text, m, kForm))
    throw std::runtime_error("slurm job: time: found " + quoted(text) + ", expected HH:MM:SS, MM:SS, MM or D-HH[:MM[:SS]]");
  auto num = [&](int i) { return m[i].matched ? std::stol(m[i].str()) : 0L; };
  if (m[1].matched) return ((num(1) * 24 + num(2)) * 60 + num(3)) * 60 + num(4);
  if (m[4].matched) return (num(2) * 60 + num(3)) * 60 + num(4);  // H:M:S
  if (m[3].matched) return num(2) * 60 + num(3);                   // M:S
  return num(2) * 60;                                              // M
}

void validate(const JobSpec& spec) {
  static const std::regex kWord(R"(^[A-Za-z0-9_.+-]+$)");
  static const std::regex kEnvName(R"(^[A-Za-z_][A-Za-z0-9_]*$)");
  static const std::regex kArray(R"(^\d+(-\d+(:\d+)?)?(,\d+(-\d+(:\d+)?)?)*(%\d+)?$)");
  // srun and mpirun pass USR1/USR2 on to every rank unchanged; TERM would make srun end the
  // step at once, and INT makes it print status instead.
  static const std::regex kSignal(R"(^(SIG)?(USR1|USR2)$)");

  if (!matches(spec.job_name, kWord)) invalid("job_name", quoted(spec.job_name), "letters, digits, _ . + -");
  if (spec.nodes < 1) invalid("nodes", std::to_string(spec.nodes), "at least 1");
  if (spec.ntasks_per_node < 0)
    invalid("ntasks_per_node", std::to_string(spec.ntasks_per_node), "at least 1 (or absent: one rank per GPU, 1 on CPU jobs)");
  if (spec.cpus_per_task < 1) invalid("cpus_per_task", std::to_string(spec.cpus_per_task), "at least 1");
  if (spec.gpus_per_node < 0) invalid("gpus_per_node", std::to_string(spec.gpus_per_node), "0 (CPU-only) or more");
  if (spec.gpus_per_node > 0 && spec.ntasks_per_node > 0 && spec.ntasks_per_node != spec.gpus_per_node) {
    const int ranks = spec.ntasks_per_node, gpus = spec.gpus_per_node;
    const std::string why = ranks < gpus ? std::to_string(gpus - ranks) + " of " + std::to_string(gpus) + " GPUs per node would sit idle"
                                         : "ranks would share GPUs (" + std::to_string(ranks) + " ranks on " + std::to_string(gpus) + " GPUs)";
    invalid("ntasks_per_node", std::to_string(ranks) + (ranks == 1 ? " rank" : " ranks") + " per node with gpus_per_node " + std::to_string(gpus),
            "one rank per GPU (" + std::to_string(gpus) + "; leave ntasks_per_node out for that): " + why);
  }
  if (spec.gpus_per_node == 0 && !spec.gpu_type.empty())
    invalid("gpu_type", "\"" + spec.gpu_type + "\" with gpus_per_node 0", "gpus_per_node > 0 when a GPU type is given");
  if (!spec.gpu_type.empty() && !matches(spec.gpu_type, kWord))
    invalid("gpu_type", quoted(spec.gpu_type), "a GRES type name such as a100");
  auto check_name = [](const char* field, const std::string& value) {
    static const std::regex kName(R"(^[A-Za-z0-9_.,+-]+$)");
    if (!value.empty() && !matches(value, kName)) invalid(field, quoted(value), "a name without spaces or quotes");
  };
  check_name("partition", spec.partition);
  check_name("account", spec.account);
  check_name("qos", spec.qos);
  check_name("mem", spec.mem);

  const long limit = parse_time_limit(spec.time);
  if (limit <= 0) invalid("time", "\"" + spec.time + "\"", "a time limit above zero");
  if (!matches(spec.signal, kSignal))
    invalid("signal", quoted(spec.signal), "USR1 or USR2 (signals srun and mpirun forward to every rank)");
  if (spec.signal_seconds < 0 || spec.signal_seconds > 65535)
    invalid("signal_seconds", std::to_string(spec.signal_seconds), "0 to 65535 (sbatch --signal)");
  if (spec.signal_seconds >= limit)
    invalid("signal_seconds", std::to_string(spec.signal_seconds) + " with time " + spec.time,
            "fewer seconds than the time limit (" + std::to_string(limit) + " s)");
  if (spec.requeue_exit_code < 1 || spec.requeue_exit_code > 125)
    invalid("requeue_exit_code", std::to_string(spec.requeue_exit_code), "1 to 125 (126+ mean exec failure or a signal)");

  if (!spec.array.empty() && !spec.array_tasks.empty())
    invalid("array", "both a spec \"" + spec.array + "\" and per-task arguments", "one of them");
  if (!spec.array.empty() && !matches(spec.array, kArray))
    invalid("array", quoted(spec.array), "a SLURM array spec such as 0-9, 1,3,5 or 0-15%4");
  if (spec.array_throttle < 0) invalid("array_throttle", std::to_string(spec.array_throttle), "0 (no limit) or more");

  for (const auto& line : spec.extra_sbatch)
    if (line.rfind("--", 0) != 0 || line.find('\n') != std::string::npos)
      invalid("extra_sbatch", "\"" + line + "\"", "one sbatch option per entry, starting with -- (e.g. \"--qos=high\")");
  for (const auto& module : spec.modules)
    if (module.empty() || module.find_first_of(" \t\n'\"") != std::string::npos)
      invalid("modules", "\"" + module + "\"", "a module name such as openmpi/4.1");
  for (const auto& [name, value] : spec.environment) {
    if (!matches(name, kEnvName)) invalid("environment", quoted(name), "a variable name ([A-Za-z_][A-Za-z0-9_]*)");
    if (name == "OMP_NUM_THREADS") invalid("environment", "OMP_NUM_THREADS", "cpus_per_task to set it (it is exported from there)");
  }
  // #SBATCH lines are not shell words: paths there cannot be quoted, so they may not need it.
  auto check_path = [](const char* field, const std::string& path, bool required) {
    if (path.empty() && !required) return;
    if (path.empty() || path[0] != '/' || path.find_first_of(" \t\n'\"\\$`") != std::string::npos)
      invalid(field, "\"" + path + "\"", "an absolute path without spaces, quotes or $");
  };
  check_path("run_dir", spec.run_dir, true);
  check_path("work_dir", spec.work_dir, false);
  check_path("output", spec.output, false);
  check_path("error", spec.error, false);
}

}  // namespace gf::slurm
