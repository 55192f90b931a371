// `greenfound demo`: the whole pipeline on built-in synthetic data, on local ranks —
// synth → pack (patient-level split) → pretrain (configs/demo.json) → embed with the initial
// and the pretrained encoder → probe both → energy/cost bill → report.html. Each stage runs
// as the same CLI a user would type, in a child process, so the demo proves those commands.

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "base/atomic_file.hpp"
#include "launcher/child_process.hpp"
#include "launcher/commands.hpp"
#include "launcher/config_file.hpp"
#include "launcher/report_html.hpp"
#include "launcher/shared_options.hpp"
#include "train/checkpoint.hpp"
#include "train/run_config.hpp"

#ifndef GF_CONFIG_DIR
#define GF_CONFIG_DIR "configs"
#endif

namespace gf::launcher {

namespace fs = std::filesystem;

namespace {

struct DemoArgs {
  std::string out = "demo-out";
  int ranks = 2;
  int images = 2000;
  std::string config = std::string(GF_CONFIG_DIR) + "/demo.json";
  uint64_t seed = 0;
};

// Runs `greenfound <args>` and fails naming the stage when it does.
void run_stage(const std::string& stage, const std::vector<std::string>& args) {
  const auto start = std::chrono::steady_clock::now();
  std::cout << "\n== demo: " << stage << " ==\n  greenfound";
  for (const auto& a : args) std::cout << ' ' << a;
  std::cout << std::endl;
  std::vector<std::string> argv{self_executable()};
  argv.insert(argv.end(), args.begin(), args.end());
  const int status = run_and_wait(argv);
  if (status != 0)
    throw std::runtime_error("demo: stage '" + stage + "' failed (exit status " + std::to_string(status) + ")");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "  (" << stage << ": " << static_cast<int>(seconds + 0.5) << " s)" << std::endl;
}

// The synthetic labels as the paper's task kinds (DR grade multiclass, derived referable/any
// DR), and a site-A-to-site-B transfer task.
nlohmann::json demo_tasks() {
  using nlohmann::json;
  return json{{"tasks", json::array({
                            {{"name", "dr_grade"}, {"label", "dr_grade"}, {"kind", "multiclass"}},
                            {{"name", "referable_dr"}, {"label", "dr_grade > 1"}},
                            {{"name", "any_dr"}, {"label", "dr_grade > 0"}},
                            {{"name", "macular_edema"}, {"label", "macular_edema"}, {"kind", "binary"}},
                            {{"name", "amd"}, {"label", "amd"}, {"kind", "binary"}},
                            {{"name", "glaucoma"}, {"label", "glaucoma"}, {"kind", "binary"}},
                            {{"name", "quality"}, {"label", "quality"}, {"kind", "binary"}},
                            {{"name", "diabetes"}, {"label", "diabetes"}, {"kind", "binary"}},
                            // Domain shift: a probe fitted on one site's camera, tested on the other's.
                            {{"name", "any_dr_site_A_to_B"},
                             {"label", "dr_grade > 0"},
                             {"train", {{"split", "all"}, {"filter", {{"column", "site"}, {"equals", "A"}}}}},
                             {"test", {{"split", "all"}, {"filter", {{"column", "site"}, {"equals", "B"}}}}}},
                        })}};
}

// The pretraining bill in one line, and whether its energy was measured or estimated.
void print_bill(const std::optional<energy::EnergySummary>& bill, const fs::path& energy_json) {
  if (!bill) return;
  const auto& package = bill->domains[static_cast<int>(energy::Domain::kPackage)];
  std::cout << "pretraining bill: " << bill->duration_s << " s, " << bill->joules << " J ("
            << energy::label_name(package.label) << "), " << bill->co2e_kg * 1000 << " g CO2e, $" << bill->cost << ", "
            << bill->joules_per_image << " J/image (" << energy_json.string() << ")\n";
}

void run_demo(const DemoArgs& a) {
  const auto start = std::chrono::steady_clock::now();
  const fs::path out = fs::absolute(a.out);
  fs::create_directories(out);
  const train::RunConfig config = train::parse_run_config(load_config(a.config, {}), a.config);
  const std::string& arch = config.model.arch;
  const int64_t img_size = config.model.img_size;
  const std::string init_seed = std::to_string(config.model.init_seed);
  const std::string ranks = std::to_string(a.ranks);
  const fs::path images = out / "synth", dataset = out / "dataset", run = out / "run", emb = out / "embeddings";
  fs::create_directories(emb);

  run_stage("synth", {"synth", "--out", images.string(), "--n", std::to_string(a.images), "--sites", "2", "--seed",
                      std::to_string(a.seed), "--preview", "--quiet"});
  // The contact sheet is for people, not for pack (which would report it as an unlabelled image).
  fs::rename(images / "preview.png", out / "synth-preview.png");
  // Packed a little larger than the training size so random-resized crops keep detail.
  run_stage("pack", {"pack", "--images", images.string(), "--labels", (images / "labels.csv").string(), "--id-column", "image_id",
                     "--out", dataset.string(), "--resolution", std::to_string(img_size + img_size / 4), "--split-by",
                     "patient_id", "--test-fraction", "0.3", "--seed", std::to_string(a.seed), "--quiet"});
  run_stage("pretrain", {"launch", "-n", ranks, "--", "pretrain", "--config", a.config, "--data", dataset.string(), "--run-dir",
                         run.string()});
  const std::string checkpoint = train::latest_checkpoint(run.string());
  if (checkpoint.empty()) throw std::runtime_error(run.string() + "/checkpoints: no checkpoint after pretraining");
  const std::vector<std::string> common = {"--data", dataset.string(), "--split", "all", "--img-size", std::to_string(img_size),
                                           "--pool", "mean_all", "--no-energy"};
  std::vector<std::string> initial = {"launch", "-n", ranks, "--", "embed", "--arch", arch, "--init-seed", init_seed, "--out",
                                      (emb / "initial.h5").string()};
  initial.insert(initial.end(), common.begin(), common.end());
  run_stage("embed (initial weights = the teacher)", initial);
  std::vector<std::string> student = {"launch", "-n", ranks, "--", "embed", "--checkpoint", checkpoint, "--out",
                                      (emb / "pretrained.h5").string()};
  student.insert(student.end(), common.begin(), common.end());
  run_stage("embed (pretrained student)", student);
  base::write_file_atomic((out / "tasks.json").string(), demo_tasks().dump(2) + "\n");
  run_stage("probe", {"launch", "-n", ranks, "--", "probe", "--embeddings", "initial=" + (emb / "initial.h5").string(),
                      "pretrained=" + (emb / "pretrained.h5").string(), "--tasks", (out / "tasks.json").string(), "--out",
                      (run / "probe").string(), "--no-energy"});

  std::vector<RunData> runs{read_run(run.string())};
  base::write_file_atomic((out / "report.html").string(), render_report(runs, {}));
  const double minutes = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / 60;
  std::cout << "\n== demo: done in " << minutes << " min ==\n"
            << "  synthetic images  " << images.string() << " (contact sheet: " << (out / "synth-preview.png").string() << ")\n"
            << "  packed dataset    " << dataset.string() << "\n"
            << "  pretraining run   " << run.string() << " (metrics.jsonl, checkpoints/, energy.json, emissions.csv, provenance.json)\n"
            << "  embeddings        " << emb.string() << "\n"
            << "  probe results     " << (run / "probe" / "results.md").string() << "\n"
            << "  report            " << (out / "report.html").string() << "\n";
  std::ifstream md(run / "probe" / "results.md");
  std::cout << "\n" << md.rdbuf() << std::endl;
  print_bill(runs.front().energy, run / "energy.json");
}

}  // namespace

void setup_demo(CLI::App& sub) {
  auto args = std::make_shared<DemoArgs>();
  sub.add_option("--out", args->out, "Folder for everything the demo writes")->capture_default_str();
  sub.add_option("--ranks", args->ranks, "Local ranks for pretrain, embed and probe")->capture_default_str()->check(CLI::Range(1, 64));
  sub.add_option("--images", args->images, "Synthetic images to generate")->capture_default_str()->check(CLI::Range(40, 1000000));
  sub.add_option("--config", args->config, "Pretraining config")->capture_default_str();
  add_seed_option(sub, args->seed, "the synthetic data and the split");
  sub.callback([args] { run_demo(*args); });
}

}  // namespace gf::launcher
