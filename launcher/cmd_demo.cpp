// `greenfound demo`: the paper's comparison in miniature on built-in synthetic data, on local
// ranks — synth a target set (labelled, two sites) and a source set (other sites, no labels)
// → pack → teacher stage (masked_pixels on the source set, configs/demo-teacher.json: the
// stand-in for DINOv2) → Token Reconstruction from that teacher on the target's unlabelled
// train images (configs/demo.json) → embed (raw pixels, the random init, the teacher, the
// student) → probe all four, the student against each → energy/cost bill → report.html.
// Each stage runs as the same CLI a user would type, in a child process, so the demo proves
// those commands.

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "base/atomic_file.hpp"
#include "eval/results.hpp"
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
  int source_images = 1000;
  std::string config = std::string(GF_CONFIG_DIR) + "/demo.json";
  std::string teacher_config = std::string(GF_CONFIG_DIR) + "/demo-teacher.json";
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

// The newest checkpoint of a run folder, or a clear failure.
std::string final_checkpoint(const fs::path& run) {
  const std::string checkpoint = train::latest_checkpoint(run.string());
  if (checkpoint.empty()) throw std::runtime_error(run.string() + "/checkpoints: no checkpoint after pretraining");
  return checkpoint;
}

// Per task, the student (then the teacher) against each other row: medians with their
// intervals and the verdict of the paired Wilcoxon test (probe --versus).
void print_verdicts(const eval::ProbeResults& results) {
  std::map<std::pair<std::string, std::string>, const eval::ProbeRecord*> records;
  for (const auto& r : results.records)
    if (!r.cls) records[{r.model, r.task}] = &r;
  const auto interval = [](const eval::ProbeRecord& r) {
    std::ostringstream out;
    out << std::fixed << std::setprecision(3) << r.auroc_median << " [" << r.auroc_ci_low << ", " << r.auroc_ci_high << "]";
    return out.str();
  };
  std::cout << "\nDid the student beat its teacher and the pixel baseline, and the teacher the random init? (median "
            << "AUROC [95% bootstrap interval], "
            << "Wilcoxon signed-rank over the paired resamples, alpha " << results.alpha << ")\n";
  std::map<std::pair<std::string, std::string>, std::map<std::string, int>> tally;  // (model, other) -> outcome counts
  for (const auto& v : results.versus) {
    const auto a = records.find({v.model, v.task}), b = records.find({v.other, v.task});
    if (v.cls || (v.model == "teacher" && v.other == "student") || a == records.end() || b == records.end()) continue;
    ++tally[{v.model, v.other}][v.outcome];
    std::cout << "  " << v.task << ": " << v.model << " " << interval(*a->second) << " vs " << v.other << " "
              << interval(*b->second) << ": " << v.outcome << " (" << eval::format_p_value(v.p_value) << ")\n";
  }
  std::cout << "In all (tasks without a class):\n";
  for (auto& [pair, counts] : tally)
    std::cout << "  " << pair.first << " vs " << pair.second << ": better on " << counts["better"] << ", worse on "
              << counts["worse"] << ", tie on " << counts["tie"] << "\n";
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
  const fs::path source_images = out / "source-synth", source = out / "source-dataset", teacher_run = out / "teacher-run";
  const fs::path teacher = out / "teacher.safetensors";
  fs::create_directories(emb);

  run_stage("synth (target: sites A, B, labelled)",
            {"synth", "--out", images.string(), "--n", std::to_string(a.images), "--sites", "2", "--seed",
             std::to_string(a.seed), "--preview", "--quiet"});
  // The contact sheet is for people, not for pack (which would report it as an unlabelled image).
  fs::rename(images / "preview.png", out / "synth-preview.png");
  // Other sites (own colour cast, exposure, frame) and other patients: the teacher never sees
  // the target site or a label.
  run_stage("synth (source: sites C-F)", {"synth", "--out", source_images.string(), "--n", std::to_string(a.source_images),
                                          "--sites", "4", "--first-site", "2", "--seed", std::to_string(a.seed + 1),
                                          "--quiet"});
  // Packed a little larger than the training size so random-resized crops keep detail.
  const std::string resolution = std::to_string(img_size + img_size / 4);
  run_stage("pack (target)", {"pack", "--images", images.string(), "--labels", (images / "labels.csv").string(),
                              "--id-column", "image_id", "--out", dataset.string(), "--resolution", resolution,
                              "--split-by", "patient_id", "--test-fraction", "0.3", "--seed", std::to_string(a.seed),
                              "--quiet"});
  run_stage("pack (source, no labels)", {"pack", "--images", source_images.string(), "--out", source.string(),
                                         "--resolution", resolution, "--quiet"});
  run_stage("teacher (masked pixels on the source set)",
            {"launch", "-n", ranks, "--", "pretrain", "--config", a.teacher_config, "--data", source.string(),
             "--run-dir", teacher_run.string()});
  const std::string teacher_checkpoint = final_checkpoint(teacher_run);
  run_stage("export the teacher", {"export", "--checkpoint", teacher_checkpoint, "--out", teacher.string()});
  run_stage("student (Token Reconstruction from the teacher on the target's train images)",
            {"launch", "-n", ranks, "--", "pretrain", "--config", a.config, "--data", dataset.string(), "--run-dir",
             run.string(), "--set", "model.init=" + teacher.string()});
  const std::string student_checkpoint = final_checkpoint(run);

  const std::vector<std::string> common = {"--data", dataset.string(), "--split", "all", "--img-size", std::to_string(img_size),
                                           "--pool", "mean_all", "--no-energy"};
  const auto embed = [&](const std::string& what, const std::string& name, std::vector<std::string> source_flags) {
    std::vector<std::string> args = {"launch", "-n", ranks, "--", "embed", "--out", (emb / (name + ".h5")).string()};
    args.insert(args.end(), source_flags.begin(), source_flags.end());
    args.insert(args.end(), common.begin(), common.end());
    run_stage("embed (" + what + ")", args);
  };
  embed("raw pixels, 16x16", "pixels", {"--pixels", "16"});
  embed("random init = the teacher before training", "random_init", {"--arch", arch, "--init-seed", init_seed});
  embed("teacher", "teacher", {"--checkpoint", teacher_checkpoint});
  embed("student", "student", {"--checkpoint", student_checkpoint});
  base::write_file_atomic((out / "tasks.json").string(), demo_tasks().dump(2) + "\n");
  std::vector<std::string> probe = {"launch", "-n", ranks, "--", "probe", "--embeddings"};
  for (const char* name : {"pixels", "random_init", "teacher", "student"})
    probe.push_back(std::string(name) + "=" + (emb / (std::string(name) + ".h5")).string());
  for (const char* rest : {"--versus", "student", "teacher", "--tasks"}) probe.push_back(rest);
  for (const std::string& rest : {(out / "tasks.json").string(), std::string("--out"), (run / "probe").string(),
                                  std::string("--no-energy")})
    probe.push_back(rest);
  run_stage("probe", probe);

  std::vector<RunData> runs{read_run(teacher_run.string()), read_run(run.string())};
  base::write_file_atomic((out / "report.html").string(), render_report(runs, {}));
  const double minutes = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / 60;
  std::cout << "\n== demo: done in " << minutes << " min ==\n"
            << "  synthetic images  " << images.string() << " (contact sheet: " << (out / "synth-preview.png").string()
            << "), source set " << source_images.string() << "\n"
            << "  packed datasets   " << dataset.string() << ", " << source.string() << "\n"
            << "  teacher run       " << teacher_run.string() << " (exported: " << teacher.string() << ")\n"
            << "  student run       " << run.string() << " (metrics.jsonl, checkpoints/, energy.json, emissions.csv, provenance.json)\n"
            << "  embeddings        " << emb.string() << "\n"
            << "  probe results     " << (run / "probe" / "results.md").string() << "\n"
            << "  report            " << (out / "report.html").string() << "\n";
  std::ifstream md(run / "probe" / "results.md");
  std::cout << "\n" << md.rdbuf() << std::endl;
  if (runs.back().results) print_verdicts(*runs.back().results);
  print_bill(runs.back().energy, run / "energy.json");
}

}  // namespace

void setup_demo(CLI::App& sub) {
  auto args = std::make_shared<DemoArgs>();
  sub.add_option("--out", args->out, "Folder for everything the demo writes")->capture_default_str();
  sub.add_option("--ranks", args->ranks, "Local ranks for pretrain, embed and probe")->capture_default_str()->check(CLI::Range(1, 64));
  sub.add_option("--images", args->images, "Synthetic images to generate")->capture_default_str()->check(CLI::Range(40, 1000000));
  sub.add_option("--source-images", args->source_images, "Synthetic images of the teacher's source set (other sites)")
      ->capture_default_str()
      ->check(CLI::Range(40, 1000000));
  sub.add_option("--config", args->config, "The student's Token Reconstruction config")->capture_default_str();
  sub.add_option("--teacher-config", args->teacher_config, "The teacher stage's config (objective.kind masked_pixels)")
      ->capture_default_str();
  add_seed_option(sub, args->seed, "the synthetic data and the split");
  sub.callback([args] { run_demo(*args); });
}

}  // namespace gf::launcher
