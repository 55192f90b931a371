// The bad-input suite (label `hostile`) for the command line: each case writes its hostile
// input into a fresh folder, runs greenfound on it with a time bound and its peak memory
// measured, and expects a clean refusal (tests/support/hostile.hpp): a non-zero exit that is
// not a crash, one line naming what was wrong, no backtrace, nothing that existed changed and
// nothing half-written left. Inputs the cases share (a small packed set, a raw-pixel
// embeddings file) are made once per test process.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/support/environment.hpp"
#include "tests/support/hostile.hpp"
#include "tests/support/run_job.hpp"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct Case {
  std::string name;
  // Writes the case's inputs into the folder and returns greenfound's arguments.
  std::function<std::string(const fs::path& dir)> prepare;
  std::string expected;  // part of the one error line
  double max_seconds = 60;
  long max_rss_mb = 2500;  // LibTorch's CUDA libraries alone are ~0.5 GB resident
  std::string environment;  // VAR=value prefix, when the case is about the environment
};

std::string bin() { return gf::test::greenfound_bin(); }

void write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

void run_ok(const std::string& command) {
  const gf::test::JobResult job = gf::test::run_job(command);
  ASSERT_EQ(job.exit_code, 0) << command << "\n" << job.output;
}

json demo_config() {
  json c = json::parse(std::ifstream(gf::test::source_dir() + "/configs/demo.json"));
  c["model"]["img_size"] = 56;
  c["data"]["batch_size"] = 4;
  c["data"]["split"] = "all";
  return c;
}

// Made once per build of greenfound and shared by the test processes (ctest runs each case in
// its own; flock keeps two from making it at once): a packed set of 24 synthetic images and its
// raw-pixel embeddings.
const fs::path& shared() {
  static const fs::path dir = [] {
    const auto stamp = fs::last_write_time(bin()).time_since_epoch().count();
    const fs::path d = fs::temp_directory_path() / ("gf_hostile_shared_" + std::to_string(std::hash<std::string>{}(bin() + std::to_string(stamp))));
    const int lock = open((d.string() + ".lock").c_str(), O_CREAT | O_RDWR, 0644);
    flock(lock, LOCK_EX);
    if (!fs::exists(d / "ready")) {
      fs::remove_all(d);
      run_ok(bin() + " synth --out " + (d / "images").string() + " --n 24 --size 96x96 --seed 1 --threads 1 --quiet");
      run_ok(bin() + " pack --images " + (d / "images").string() + " --labels " + (d / "images" / "labels.csv").string() +
             " --id-column image_id --split-by patient_id --test-fraction 0.5 --out " + (d / "dataset").string() +
             " --resolution 64 --threads 1 --quiet");
      run_ok(bin() + " embed --data " + (d / "dataset").string() + " --pixels 4 --out " + (d / "pixels.h5").string() +
             " --no-energy --workers 1");
      // The same images at another resolution: another dataset fingerprint.
      run_ok(bin() + " pack --images " + (d / "images").string() + " --out " + (d / "dataset56").string() +
             " --resolution 56 --threads 1 --quiet");
      // A one-step run (its checkpoint step-00000001) and its encoder exported.
      write(d / "run.json", demo_config().dump(2));
      run_ok(bin() + " pretrain --config " + (d / "run.json").string() + " --data " + (d / "dataset").string() +
             " --run-dir " + (d / "run").string() + " --max-steps 1");
      run_ok(bin() + " export --checkpoint " + (d / "run/checkpoints/step-00000001").string() + " --out " +
             (d / "w.safetensors").string());
      write(d / "ready", "");
    }
    flock(lock, LOCK_UN);
    close(lock);
    return d;
  }();
  return dir;
}

std::string dataset() { return (shared() / "dataset").string(); }

// `text` with every occurrence of each key replaced by its value.
std::string filled(std::string text, const std::vector<std::pair<std::string, std::string>>& values) {
  for (const auto& [key, value] : values)
    for (size_t at = text.find(key); at != std::string::npos; at = text.find(key, at + value.size()))
      text.replace(at, key.size(), value);
  return text;
}

// Writes a NaN over the first value of the file's first F32 tensor, keeping its size (so a
// checkpoint's state.json still lists it as complete).
void poke_nan(const fs::path& file) {
  std::fstream io(file, std::ios::in | std::ios::out | std::ios::binary);
  uint64_t header_bytes = 0;
  io.read(reinterpret_cast<char*>(&header_bytes), 8);
  std::string header(header_bytes, '\0');
  io.read(header.data(), static_cast<std::streamsize>(header_bytes));
  const json tensors = json::parse(header);
  for (const auto& item : tensors.items()) {
    if (item.key() == "__metadata__" || item.value().at("dtype") != "F32") continue;
    const float nan = std::numeric_limits<float>::quiet_NaN();
    io.seekp(static_cast<std::streamoff>(8 + header_bytes + item.value().at("data_offsets")[0].get<uint64_t>()));
    io.write(reinterpret_cast<const char*>(&nan), sizeof(nan));
    return;
  }
  FAIL() << file << ": no F32 tensor";
}

// A copy of the shared one-step run in the case's folder, which `edit` then changes; greenfound
// is given `args` with "{run}" the copy, "{dir}" the case's folder, "{data}" the shared set and
// "{data56}" the same images packed at 56 px.
Case run_case(const std::string& name, const std::function<void(const fs::path& run)>& edit, const std::string& args,
              const std::string& expected) {
  return {name,
          [edit, args](const fs::path& dir) {
            fs::copy(shared() / "run", dir / "run", fs::copy_options::recursive);
            fs::copy_file(shared() / "run.json", dir / "c.json");
            fs::copy_file(shared() / "w.safetensors", dir / "w.safetensors");
            edit(dir / "run");
            return filled(args, {{"{run}", (dir / "run").string()},
                                 {"{dir}", dir.string()},
                                 {"{data56}", (shared() / "dataset56").string()},
                                 {"{data}", dataset()}});
          },
          expected};
}

const char* const kCheckpoint = "checkpoints/step-00000001";
const char* const kResume = "pretrain --config {dir}/c.json --data {data} --run-dir {run} --resume auto --max-steps 2";


// pretrain on the shared set with the config `edit` makes from the demo config.
Case config_case(const std::string& name, const std::function<void(json&)>& edit, const std::string& expected,
                 const std::string& environment = "") {
  return {name,
          [edit](const fs::path& dir) {
            json c = demo_config();
            edit(c);
            write(dir / "c.json", c.dump(2));
            return "pretrain --config " + (dir / "c.json").string() + " --data " + dataset() + " --run-dir " +
                   (dir / "run").string() + " --max-steps 1";
          },
          expected, 60, 2500, environment};
}

// pretrain with a config file of these exact bytes.
Case config_text_case(const std::string& name, const std::string& text, const std::string& expected) {
  return {name,
          [text](const fs::path& dir) {
            write(dir / "c.json", text);
            return "pretrain --config " + (dir / "c.json").string() + " --data " + dataset() + " --run-dir " + (dir / "run").string();
          },
          expected};
}

// report on a folder holding these files (name -> bytes).
Case report_case(const std::string& name, const std::vector<std::pair<std::string, std::string>>& files, const std::string& expected) {
  return {name,
          [files](const fs::path& dir) {
            fs::create_directories(dir / "run");
            for (const auto& [file, text] : files) write(dir / "run" / file, text);
            return "report " + (dir / "run").string() + " --out " + (dir / "report.html").string();
          },
          expected};
}

// probe on a copy of the shared embeddings that `python` (h5py, the file open as `f`) edits.
Case probe_case(const std::string& name, const std::string& python, const std::string& expected,
                const std::string& tasks = "auto", const std::string& extra = "") {
  return {name,
          [python, tasks, extra](const fs::path& dir) {
            fs::copy_file(shared() / "pixels.h5", dir / "e.h5");
            if (!python.empty()) {
              write(dir / "edit.py", "import h5py, numpy as np\nf = h5py.File('" + (dir / "e.h5").string() + "', 'r+')\n" + python +
                                         "\nf.close()\n");
              run_ok(gf::test::python() + " " + (dir / "edit.py").string());
              fs::remove(dir / "edit.py");
            }
            std::string tasks_arg = tasks;
            if (tasks != "auto") {
              write(dir / "tasks.json", tasks);
              tasks_arg = (dir / "tasks.json").string();
            }
            return "probe --embeddings m=" + (dir / "e.h5").string() + " --tasks " + tasks_arg + " --out " + (dir / "out").string() +
                   " --no-energy --bootstrap 20" + extra;
          },
          expected};
}

// greenfound with arguments naming files the case writes (name -> bytes) in its folder; "{dir}"
// in the arguments is the folder and "{src}" the source tree (the table is built before ctest's
// environment is there: test discovery lists the cases), "{data}" in a file the shared packed set.
Case files_case(const std::string& name, const std::vector<std::pair<std::string, std::string>>& files, const std::string& args,
                const std::string& expected) {
  return {name,
          [files, args](const fs::path& dir) {
            for (const auto& [file, text] : files) write(dir / file, filled(text, {{"{data}", dataset()}}));
            return filled(args, {{"{dir}", dir.string()}, {"{src}", gf::test::source_dir()}});
          },
          expected};
}

std::vector<Case> cases() {
  std::vector<Case> all = {
      // Config sections and fields.
      config_case("data_null", [](json& c) { c["data"] = nullptr; }, "data: found null, expected a JSON object"),
      config_case("model_null", [](json& c) { c["model"] = nullptr; }, "model: found null, expected a JSON object"),
      config_case("optim_null", [](json& c) { c["optim"] = nullptr; }, "optim: found null"),
      config_case("description_null", [](json& c) { c["description"] = nullptr; }, "description: found null, expected a string"),
      config_case("threads_5000", [](json& c) { c["train"]["threads"] = 5000; }, "train.threads: found 5000"),
      config_case("workers_2000", [](json& c) { c["data"]["workers"] = 2000; }, "data.workers: found 2000"),
      config_case("img_size_999999994", [](json& c) { c["model"]["img_size"] = 999999994; }, "model.img_size"),
      config_case("img_size_4494", [](json& c) { c["model"]["img_size"] = 4494; }, "model.img_size"),
      config_case("img_size_0", [](json& c) { c["model"]["img_size"] = 0; }, "model.img_size"),
      config_case("img_size_100", [](json& c) { c["model"]["img_size"] = 100; }, "model.img_size"),
      config_case("img_size_string", [](json& c) { c["model"]["img_size"] = "56"; }, "model.img_size"),
      config_case("unknown_key", [](json& c) { c["optim"]["lrr"] = 1; }, "lrr"),
      config_case("unknown_section", [](json& c) { c["optimizer"] = json::object(); }, "optimizer"),
      config_case("lr_string", [](json& c) { c["optim"]["lr"] = "fast"; }, "optim.lr"),
      config_case("lr_negative", [](json& c) { c["optim"]["lr"] = -1; }, "optim.lr"),
      config_case("batch_size_negative", [](json& c) { c["data"]["batch_size"] = -4; }, "data.batch_size"),
      config_case("batch_size_float", [](json& c) { c["data"]["batch_size"] = 4.5; }, "data.batch_size"),
      config_case("fraction_2", [](json& c) { c["data"]["fraction"] = 2; }, "data.fraction"),
      config_case("fraction_0", [](json& c) { c["data"]["fraction"] = 0; }, "data.fraction"),
      config_case("epochs_huge", [](json& c) { c["optim"]["epochs"] = 1e30; }, "optim.epochs"),
      config_case("epochs_0", [](json& c) { c["optim"]["epochs"] = 0; }, "optim.epochs"),
      config_case("keep_last_0", [](json& c) { c["train"]["keep_last"] = 0; }, "train.keep_last"),
      config_case("grad_accum_0", [](json& c) { c["train"]["grad_accum"] = 0; }, "train.grad_accum"),
      config_case("grad_accum_not_dividing", [](json& c) { c["train"]["grad_accum"] = 3; }, "data.batch_size"),
      config_case("corruption_ratio_2", [](json& c) { c["objective"]["max_corruption_ratio"] = 2; }, "objective.max_corruption_ratio"),
      config_case("arch_unknown", [](json& c) { c["model"]["arch"] = "vit_huge_patch99"; }, "vit_huge_patch99"),
      config_case("arch_empty", [](json& c) { c["model"]["arch"] = ""; }, "model.arch"),
      config_case("device_tpu", [](json& c) { c["train"]["device"] = "tpu"; }, "train.device"),
      config_case("split_unknown", [](json& c) { c["data"]["split"] = "validation"; }, "validation"),
      config_case("scaler_scale_3", [](json& c) { c["optim"]["grad_scaler_init_scale"] = 3; }, "optim.grad_scaler_init_scale"),
      config_case("section_is_list", [](json& c) { c["train"] = json::array({1, 2}); }, "train"),
      config_case("omp_threads_100000", [](json&) {}, "OMP_NUM_THREADS: found 100000", "OMP_NUM_THREADS=100000"),
      config_text_case("config_array", "[1, 2]", "expected a JSON object"),
      config_text_case("config_truncated", "{\"model\": {", "c.json"),
      config_text_case("config_empty", "", "c.json"),
      config_text_case("config_binary", std::string("\x89PNG\r\n\x1a\n\0\0\0", 11), "c.json"),
      config_text_case("config_deep_nesting", "{\"a\": " + std::string(100000, '[') + std::string(100000, ']') + "}", "a"),
      config_text_case("config_number_overflow", "{\"optim\": {\"lr\": 1e999}}", "number overflow parsing '1e999'"),
      // Sweep files.
      files_case("sweep_not_json", {{"s.json", "{grid"}}, "sweep {dir}/s.json --out {dir}/out --local", "s.json"),
      files_case("sweep_array", {{"s.json", "[]"}}, "sweep {dir}/s.json --out {dir}/out --local", "s.json"),
      files_case("sweep_base_missing", {{"s.json", R"({"base": "nowhere.json", "grid": {"optim.epochs": [1]}, "data": "{data}", "evaluation": [{"name": "e", "tasks": [{"name": "t", "label": "dr_grade > 0"}]}]})"}},
                 "sweep {dir}/s.json --out {dir}/out --local", "nowhere.json"),
      files_case("sweep_unknown_axis", {{"s.json", R"({"base": {}, "grid": {"optim.epochz": [1, 2]}, "data": "{data}", "evaluation": [{"name": "e", "tasks": [{"name": "t", "label": "dr_grade > 0"}]}]})"}},
                 "sweep {dir}/s.json --out {dir}/out --local", "epochz"),
      files_case("sweep_fraction_axis_2", {{"s.json", R"({"base": {}, "grid": {"data.fraction": [0.5, 2]}, "data": "{data}", "evaluation": [{"name": "e", "tasks": [{"name": "t", "label": "dr_grade > 0"}]}]})"}},
                 "sweep {dir}/s.json --out {dir}/out --local", "data.fraction"),
      files_case("sweep_axis_not_list", {{"s.json", R"({"base": {}, "grid": {"optim.epochs": 3}, "data": "{data}", "evaluation": [{"name": "e", "tasks": [{"name": "t", "label": "dr_grade > 0"}]}]})"}},
                 "sweep {dir}/s.json --out {dir}/out --local", "optim.epochs"),
      files_case("sweep_list_duplicate_names",
                 {{"s.json", R"({"base": {}, "list": [{"name": "a", "optim.epochs": 1}, {"name": "a", "optim.epochs": 2}], "data": "{data}", "evaluation": [{"name": "e", "tasks": [{"name": "t", "label": "dr_grade > 0"}]}]})"}},
                 "sweep {dir}/s.json --out {dir}/out --local", "'a' twice"),
      files_case("sweep_run_name_path", {{"s.json", R"({"base": {}, "list": [{"name": "../../etc", "optim.epochs": 1}], "data": "{data}", "evaluation": [{"name": "e", "tasks": [{"name": "t", "label": "dr_grade > 0"}]}]})"}},
                 "sweep {dir}/s.json --out {dir}/out --local", "../../etc"),
      files_case("sweep_unknown_run", {{"s.json", R"({"base": {}, "list": [{"name": "a", "optim.epochs": 1}], "data": "{data}", "evaluation": [{"name": "e", "tasks": [{"name": "t", "label": "dr_grade > 0"}]}]})"}},
                 "sweep {dir}/s.json --out {dir}/out --local --run b", "--run b"),
      // Commands pointed at what is not theirs.
      files_case("inspect_missing", {}, "inspect {dir}/nothing.safetensors", "nothing.safetensors"),
      files_case("inspect_text_as_weights", {{"w.safetensors", "hello"}}, "inspect {dir}/w.safetensors", "w.safetensors"),
      files_case("inspect_text_as_pth", {{"w.pth", "hello"}}, "inspect {dir}/w.pth", "w.pth"),
      files_case("inspect_manifest_garbage", {{"ds/manifest.json", "{"}}, "inspect {dir}/ds", "manifest.json"),
      files_case("export_missing_checkpoint", {}, "export --checkpoint {dir}/ckpt --out {dir}/w.safetensors", "ckpt"),
      files_case("embed_missing_weights", {}, "embed --weights {dir}/w.safetensors --images {dir} --out {dir}/e.h5 --no-energy",
                 "w.safetensors"),
      files_case("status_missing_folder", {}, "status {dir}/nowhere", "nowhere"),
      files_case("cancel_without_jobs", {}, "cancel {dir}", "job"),
      files_case("launch_nothing", {}, "launch -n 2", "command is required"),
      files_case("launch_launch", {}, "launch -n 2 -- launch -n 2 -- pretrain", "launch"),
      files_case("submit_bad_array_throttle", {{"c.json", "{}"}, {"s.json", "{}"}},
                 "submit --config {dir}/c.json --dry-run --array {dir}/s.json%abc -- embed", "K a number"),
      files_case("submit_pretrain_resume_path", {{"c.json", "{}"}},
                 "submit --config {dir}/c.json --dry-run -- pretrain --resume {dir}/x", "expected auto"),
      files_case("submit_bad_time", {{"c.json", R"({"slurm": {"time": "forever"}})"}},
                 "submit --config {dir}/c.json --dry-run -- pretrain", "forever"),
      files_case("submit_slurm_unknown_key", {{"c.json", R"({"slurm": {"gpus": 8}})"}},
                 "submit --config {dir}/c.json --dry-run -- pretrain", "gpus"),
      files_case("pack_missing_images", {}, "pack --images {dir}/none --out {dir}/ds", "none"),
      files_case("pack_labels_missing", {{"img/a.png", "not a png"}},
                 "pack --images {dir}/img --labels {dir}/labels.csv --id-column image_id --out {dir}/ds", "labels.csv"),
      files_case("synth_zero_images", {}, "synth --out {dir}/s --n 0", "--n"),
      files_case("synth_bad_size", {}, "synth --out {dir}/s --n 1 --size 0x0", "size"),
      files_case("cost_unknown_gpu", {}, "cost --config {src}/configs/paper.json --gpu tpu9000", "tpu9000"),
      // report on folders that are not runs, or whose files are not what they claim.
      report_case("report_empty_folder", {}, "found none of config.json"),
      report_case("report_metrics_garbage", {{"metrics.jsonl", "not json\n{\"step\": \"x\"}\n"}}, "metrics.jsonl"),
      report_case("report_results_wrong_type", {{"results.json", "{\"results\": 5}"}}, "results.json"),
      report_case("report_results_array", {{"results.json", "[]"}}, "results.json"),
      report_case("report_energy_wrong_type", {{"energy.json", "{\"kwh\": \"a lot\"}"}}, "energy.json"),
      report_case("report_provenance_array", {{"provenance.json", "[1]"}}, "provenance.json"),
      report_case("report_config_null", {{"config.json", "null"}}, "config.json"),
      {"report_missing_folder",
       [](const fs::path& dir) { return "report " + (dir / "nowhere").string() + " --out " + (dir / "r.html").string(); },
       "not a run folder"},
      // Resumes that would continue from something else than the run's last good state, and
      // weights that are not finite.
      run_case("resume_every_checkpoint_torn",
               [](const fs::path& run) { fs::resize_file(run / kCheckpoint / "model.safetensors", 100); }, kResume,
               "found \"auto\" and no complete checkpoint, only torn ones"),
      run_case("resume_other_dataset", [](const fs::path&) {},
               "pretrain --config {dir}/c.json --data {data56} --run-dir {run} --resume auto --max-steps 2",
               "dataset fingerprint: found"),
      run_case("resume_nan_checkpoint", [](const fs::path& run) { poke_nan(run / kCheckpoint / "model.safetensors"); },
               kResume, "values not finite (1 NaN, 0 Inf), expected finite weights"),
      run_case("export_nan_checkpoint", [](const fs::path& run) { poke_nan(run / kCheckpoint / "model.safetensors"); },
               "export --checkpoint {run}/checkpoints/step-00000001 --out {dir}/out.safetensors", "expected finite weights"),
      run_case("export_nan_weights", [](const fs::path& run) { poke_nan(run.parent_path() / "w.safetensors"); },
               "export --weights {dir}/w.safetensors --out {dir}/out.safetensors", "w.safetensors: "),
      run_case("embed_nan_weights", [](const fs::path& run) { poke_nan(run.parent_path() / "w.safetensors"); },
               "embed --weights {dir}/w.safetensors --data {data} --out {dir}/e.h5 --no-energy --workers 1",
               "expected finite weights"),
      run_case("pretrain_init_nan", [](const fs::path& run) {
                 poke_nan(run.parent_path() / "w.safetensors");
                 json c = demo_config();
                 c["model"]["init"] = (run.parent_path() / "w.safetensors").string();
                 write(run.parent_path() / "c.json", c.dump(2));
               },
               "pretrain --config {dir}/c.json --data {data} --run-dir {dir}/fresh --max-steps 1", "expected finite weights"),
      // probe on embeddings that cannot give a meaningful result.
      probe_case("probe_nan", "f['embeddings'][0, 0] = np.nan", "non-finite"),
      probe_case("probe_inf", "f['embeddings'][3, 5] = np.inf", "non-finite"),
      probe_case("probe_duplicate_id", "ids = f['ids'][...]; ids[1] = ids[0]; f['ids'][...] = ids", "expected each image once"),
      probe_case("probe_no_labels", "del f['labels']", "found no task"),
      probe_case("probe_tasks_empty", "", "tasks: expected a non-empty list", "{\"tasks\": []}"),
      probe_case("probe_tasks_garbage", "", "tasks.json", "{\"tasks\": 7}"),
      probe_case("probe_tasks_unknown_column", "", "no (task, model) produced a result", "{\"tasks\": [{\"name\": \"x\", \"label\": \"no_such_column\"}]}"),
      probe_case("probe_bootstrap_0", "", "--bootstrap: Value 0 not in range 1 to 1000000", "auto", " --bootstrap 0"),
      {"probe_missing_file",
       [](const fs::path& dir) {
         return "probe --embeddings m=" + (dir / "none.h5").string() + " --tasks auto --out " + (dir / "out").string() + " --no-energy";
       },
       "none.h5"},
      {"probe_not_hdf5",
       [](const fs::path& dir) {
         write(dir / "e.h5", "just text\n");
         return "probe --embeddings m=" + (dir / "e.h5").string() + " --tasks auto --out " + (dir / "out").string() + " --no-energy";
       },
       "e.h5"},
      {"probe_malformed_embeddings_arg",
       [](const fs::path& dir) { return "probe --embeddings justafile.h5 --tasks auto --out " + (dir / "out").string(); },
       "MODEL=FILE"},
      {"probe_model_twice",
       [](const fs::path& dir) {
         const std::string e = (shared() / "pixels.h5").string();
         return "probe --embeddings m=" + e + " m=" + e + " --tasks auto --out " + (dir / "out").string() + " --no-energy";
       },
       "given twice"},
  };
  return all;
}

// gtest prints a parameter in failure messages and ctest's test names: the case's name.
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class Hostile : public ::testing::TestWithParam<Case> {};

TEST_P(Hostile, RefusedCleanly) {
  const Case& c = GetParam();
  const fs::path dir = fs::temp_directory_path() / ("gf_hostile_" + std::to_string(getpid()) + "_" + c.name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string args = c.prepare(dir);
  ASSERT_FALSE(HasFatalFailure());
  const gf::test::Snapshot before = gf::test::snapshot(dir);
  const std::string command = (c.environment.empty() ? "" : "env " + c.environment + " ") + bin() + " " + args;
  const gf::test::BoundedRun run = gf::test::run_bounded(command, c.max_seconds, fs::temp_directory_path() / ("gf_hostile_" + c.name + ".log"));
  gf::test::expect_clean_refusal(run, c.expected, c.max_seconds, c.max_rss_mb, before, dir);
  RecordProperty("seconds", std::to_string(run.seconds));
  RecordProperty("peak_rss_mb", std::to_string(run.peak_rss_mb));
  if (!HasFailure()) fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Cli, Hostile, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

}  // namespace
