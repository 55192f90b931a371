// The cost model, the GPU table, options parsing, and how rank records become the job's
// summary and its CodeCarbon row.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "energy/cost.hpp"
#include "energy/energy_csv.hpp"
#include "energy/energy_options.hpp"
#include "energy/summary.hpp"
#include "tests/support/temp_dir.hpp"

namespace gf::energy {
namespace {

std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> fields;
  std::string field;
  bool quoted = false;
  for (char c : line) {
    if (c == '"') quoted = !quoted;
    else if (c == ',' && !quoted) fields.push_back(std::exchange(field, ""));
    else field += c;
  }
  fields.push_back(field);
  return fields;
}

TEST(Cost, BillArithmetic) {
  EnergyOptions options;
  options.pue = 1.5;
  options.carbon_g_per_kwh = 400;
  options.energy_price_per_kwh = 0.2;
  // 7.2 MJ = 2 kWh; x 1.5 = 3 kWh; 3 kWh x 400 g = 1.2 kg; 3 x $0.2 = $0.6; 10 h x $2 = $20.
  const Bill bill = make_bill(7.2e6, 10.0, 2.0, options);
  EXPECT_DOUBLE_EQ(bill.kwh, 2.0);
  EXPECT_DOUBLE_EQ(bill.kwh_x_pue, 3.0);
  EXPECT_NEAR(bill.co2e_kg, 1.2, 1e-12);
  EXPECT_NEAR(bill.energy_cost, 0.6, 1e-12);
  EXPECT_DOUBLE_EQ(bill.device_cost, 20.0);
  EXPECT_NEAR(bill.cost, 20.6, 1e-12);
}

TEST(Cost, PlannedRunAndFlopsToHours) {
  EnergyOptions options;  // PUE 1, 475 g/kWh, $0.13/kWh, table price
  const GpuSpec h100 = require_gpu(default_gpu_table(), "h100");
  const Estimate estimate = estimate_run({h100, 8, 2.5}, options);
  // 8 GPUs x 2.5 h x 700 W = 14 kWh.
  EXPECT_NEAR(estimate.bill.kwh, 14.0, 1e-9);
  EXPECT_NEAR(estimate.bill.co2e_kg, 14.0 * 0.475, 1e-9);
  EXPECT_NEAR(estimate.bill.cost, 14.0 * 0.13 + 20.0 * h100.price_per_hour, 1e-9);
  options.device_price_per_hour = 1.0;
  EXPECT_NEAR(estimate_run({h100, 8, 2.5}, options).bill.device_cost, 20.0, 1e-12);
  // 1e18 FLOPs at 50% of 1000 TFLOPS on 2 GPUs: 1e18 / 1e15 s = 1000 s.
  const GpuSpec round{"X", 100, 1, 1000};
  EXPECT_NEAR(hours_for_flops(1e18, round, 2, 0.5), 1000.0 / 3600.0, 1e-12);
  EXPECT_THROW(hours_for_flops(1e18, GpuSpec{"Y", 100, 1, 0}, 1, 0.5), std::runtime_error);
}

TEST(Cost, MeasuredRateAndEnergy) {
  // 9,000,000 images at 500 images/s on each of 2 GPUs: 9000 s = 2.5 h.
  EXPECT_NEAR(hours_for_images(9e6, 500, 2), 2.5, 1e-12);
  EXPECT_THROW(hours_for_images(9e6, 0, 1), std::runtime_error);
  // A measured 0.5 J/image over those images replaces 2 GPUs x 2.5 h x 700 W.
  EnergyOptions options;
  const GpuSpec h200 = require_gpu(default_gpu_table(), "H200");
  const Estimate measured = estimate_run({h200, 2, 2.5, 0.5 * 9e6}, options);
  EXPECT_NEAR(measured.bill.kwh, 0.5 * 9e6 / 3.6e6, 1e-12);
  EXPECT_NEAR(measured.bill.device_hours, 5.0, 1e-12);
  EXPECT_NEAR(estimate_run({h200, 2, 2.5}, options).bill.kwh, 5.0 * 0.7, 1e-9);
}

TEST(Cost, GpuNamesMatchNvmlNamesAndShortForms) {
  const auto table = default_gpu_table();
  ASSERT_EQ(table.size(), 6u);
  EXPECT_EQ(find_gpu(table, "NVIDIA A100-SXM4-80GB")->name, "A100");
  EXPECT_EQ(find_gpu(table, "NVIDIA H100 80GB HBM3")->name, "H100");
  EXPECT_EQ(find_gpu(table, "NVIDIA H200")->name, "H200");
  EXPECT_EQ(find_gpu(table, "Tesla V100-SXM2-32GB")->name, "V100");
  EXPECT_EQ(find_gpu(table, "NVIDIA RTX A6000")->name, "RTX A6000");
  EXPECT_EQ(find_gpu(table, "NVIDIA GeForce RTX 4090")->name, "RTX 4090");
  EXPECT_EQ(find_gpu(table, "a6000")->name, "RTX A6000");
  EXPECT_EQ(find_gpu(table, "RTX"), nullptr);  // ambiguous
  EXPECT_EQ(find_gpu(table, "MI300X"), nullptr);
  try {
    require_gpu(table, "MI300X");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("A100, H100, H200, V100, RTX A6000, RTX 4090"), std::string::npos) << e.what();
  }
}

TEST(Cost, GpuTableOverridesAndAdditions) {
  auto table = default_gpu_table();
  apply_gpu_table_json(table, nlohmann::json::parse(R"({"a100": {"price_per_hour": 1.1},
      "MI300X": {"board_power_w": 750, "price_per_hour": 3.5, "dense_tflops": 1307}})"), "table.json");
  EXPECT_DOUBLE_EQ(require_gpu(table, "A100").price_per_hour, 1.1);
  EXPECT_DOUBLE_EQ(require_gpu(table, "A100").board_power_w, 400.0);
  EXPECT_DOUBLE_EQ(require_gpu(table, "MI300X").dense_tflops, 1307.0);
  EXPECT_THROW(apply_gpu_table_json(table, nlohmann::json::parse(R"({"B200": {"board_power_w": 1000}})"), "t"),
               std::runtime_error);
  try {
    apply_gpu_table_json(table, nlohmann::json::parse(R"({"A100": {"watts": 1}})"), "table.json");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("table.json: A100.watts"), std::string::npos) << e.what();
  }
}

TEST(Options, DefaultsAndErrorsNameTheField) {
  const EnergyOptions defaults = energy_options_from_json(nlohmann::json::object());
  EXPECT_EQ(defaults.sample_hz, 1.0);
  EXPECT_EQ(defaults.pue, 1.0);
  EXPECT_EQ(defaults.carbon_g_per_kwh, 475.0);
  const auto parsed = energy_options_from_json(nlohmann::json::parse(
      R"({"pue": 1.2, "carbon_g_per_kwh": 50, "gpu_ids": [1, 3], "gpu": "H100", "device_price_per_hour": 0})"));
  EXPECT_EQ(parsed.pue, 1.2);
  EXPECT_EQ(parsed.gpu_ids, (std::vector<int>{1, 3}));
  EXPECT_EQ(parsed.device_price_per_hour, 0.0);
  // Round trip.
  const auto again = energy_options_from_json(energy_options_to_json(parsed));
  EXPECT_EQ(again.gpu, "H100");
  EXPECT_EQ(again.carbon_g_per_kwh, 50.0);

  const auto message = [](const char* text) {
    try {
      energy_options_from_json(nlohmann::json::parse(text));
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message(R"({"pue": 0.5})"), "energy.pue: found 0.5, expected a number >= 1");
  EXPECT_EQ(message(R"({"sample_hz": 0})"), "energy.sample_hz: found 0, expected a number > 0");
  EXPECT_EQ(message(R"({"gpu_ids": [1, -2]})"), "energy.gpu_ids[1]: found -2, expected an integer >= 0");
  EXPECT_EQ(message(R"({"gpu": 3})"), "energy.gpu: found 3, expected a string");
  EXPECT_NE(message(R"({"carbon": 3})").find("energy.carbon: unknown field"), std::string::npos);
}

RankRecord record(int rank, const std::string& host, double package, Label package_label, double gpu, int gpus) {
  RankRecord r;
  r.rank = rank;
  r.host = host;
  r.duration_s = 3600.0;
  r.domains[0] = {package, package_label};
  r.domains[2] = {gpu, gpus > 0 ? Label::kMeasured : Label::kUnavailable};
  r.phase_joules[0] = 0.25 * (package + gpu);
  r.phase_joules[2] = 0.75 * (package + gpu);
  r.gpus = gpus;
  r.gpu_name = gpus > 0 ? "NVIDIA H100 80GB HBM3" : "";
  return r;
}

TEST(Summary, RanksBecomeNodesAndOneJobTotal) {
  // Node a: local rank 0 reads RAPL (1 MJ), local rank 1 has no package meter; node b
  // estimates its package. Each rank has one 0.9 MJ GPU.
  std::vector<RankRecord> records = {record(0, "a", 1.0e6, Label::kMeasured, 0.9e6, 1),
                                     record(1, "a", 0.0, Label::kUnavailable, 0.9e6, 1),
                                     record(2, "b", 0.5e6, Label::kEstimated, 0.9e6, 1)};
  // Through JSON, as the gather does.
  for (auto& r : records) r = RankRecord::from_json(nlohmann::json::parse(r.to_json().dump()));
  EnergyOptions options;
  options.pue = 1.2;
  const EnergySummary s = summarize(records, options, 1000.0, 2e15);
  ASSERT_EQ(s.nodes.size(), 2u);
  EXPECT_EQ(s.nodes[0].host, "a");
  EXPECT_DOUBLE_EQ(s.nodes[0].domains[0].joules, 1.0e6);
  EXPECT_EQ(s.nodes[0].domains[0].label, Label::kMeasured);
  EXPECT_DOUBLE_EQ(s.nodes[0].joules(), 2.8e6);
  EXPECT_EQ(s.nodes[1].domains[0].label, Label::kEstimated);
  EXPECT_DOUBLE_EQ(s.domains[0].joules, 1.5e6);
  EXPECT_EQ(s.domains[0].label, Label::kMixed);
  EXPECT_DOUBLE_EQ(s.domains[2].joules, 2.7e6);
  EXPECT_DOUBLE_EQ(s.joules, 4.2e6);
  EXPECT_EQ(s.gpus, 3);
  EXPECT_DOUBLE_EQ(s.device_hours, 3.0);
  const double price = require_gpu(default_gpu_table(), "H100").price_per_hour;
  EXPECT_DOUBLE_EQ(s.device_price_per_hour, price);
  const Bill bill = make_bill(4.2e6, 3.0, price, options);
  EXPECT_DOUBLE_EQ(s.cost, bill.cost);
  EXPECT_DOUBLE_EQ(s.co2e_kg, bill.co2e_kg);
  EXPECT_DOUBLE_EQ(s.joules_per_image, 4200.0);
  EXPECT_DOUBLE_EQ(s.cost_per_image, bill.cost / 1000.0);
  double phases = 0;
  for (double j : s.phase_joules) phases += j;
  EXPECT_NEAR(phases, s.joules, 1e-6);

  // A CPU-only job: device-hours are rank-hours, priced at 0 unless configured.
  const EnergySummary cpu = summarize({record(0, "a", 1e5, Label::kEstimated, 0, 0)}, EnergyOptions{}, 0, 0);
  EXPECT_DOUBLE_EQ(cpu.device_hours, 1.0);
  EXPECT_DOUBLE_EQ(cpu.device_cost, 0.0);
  EXPECT_DOUBLE_EQ(cpu.joules_per_image, 0.0);
}

// energy.json through its one writer/reader pair; a wrongly typed file names file and field.
TEST(Summary, EnergyJsonRoundTripsAndNamesAWronglyTypedField) {
  EnergyOptions options;
  options.pue = 1.2;
  options.carbon_g_per_kwh = 50;
  const EnergySummary s = summarize({record(0, "a", 1.0e6, Label::kMeasured, 0.9e6, 1),
                                     record(1, "b", 0.5e6, Label::kEstimated, 0.0, 0)},
                                    options, 1000.0, 2e15);
  const EnergySummary back = EnergySummary::from_json(s.to_json(), "energy.json");
  EXPECT_EQ(back.to_json(), s.to_json());
  EXPECT_EQ(back.nodes.size(), 2u);
  EXPECT_EQ(back.domains[0].label, Label::kMixed);
  EXPECT_DOUBLE_EQ(back.pue, 1.2);
  EXPECT_DOUBLE_EQ(back.carbon_g_per_kwh, 50);

  const gf::test::TempDir dir("energy-json");
  nlohmann::json bad = s.to_json();
  bad["domains"]["gpu"]["label"] = "guessed";
  std::ofstream(dir / "energy.json") << bad.dump();
  try {
    read_energy_summary(dir / "energy.json");
    FAIL() << "a wrongly typed energy.json was read";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), (dir / "energy.json" + ": domains.gpu.label: found \"guessed\", expected unavailable, "
                                                    "measured, estimated or mixed").c_str());
  }
  bad = s.to_json();
  bad["cost"] = "$3";
  std::ofstream(dir / "energy.json") << bad.dump();
  EXPECT_THROW(read_energy_summary(dir / "energy.json"), std::runtime_error);
  EXPECT_FALSE(read_energy_summary(dir / "absent.json"));
}

// energy.csv: the tracker's rows read back; a row cut short is counted, a foreign file refused.
TEST(EnergyCsv, RowsRoundTripAndAForeignHeaderIsAnError) {
  const gf::test::TempDir dir("energy-csv");
  const EnergySample sample{1700000000.25, 1, "node-a", "gpu0", "gpu", 12.5, 300.25, "measured"};
  std::ofstream(dir / "energy.csv") << energy_csv_header() << energy_csv_row(sample) << "1700000000.5,0,node";
  const EnergyCsv csv = read_energy_csv(dir / "energy.csv");
  ASSERT_EQ(csv.samples.size(), 1u);
  EXPECT_EQ(csv.torn_rows, 1);
  EXPECT_EQ(energy_csv_row(csv.samples[0]), energy_csv_row(sample));
  EXPECT_EQ(csv.samples[0].rank, 1);
  EXPECT_EQ(csv.samples[0].device, "gpu0");
  // A rank no int holds is no rank (casting 1e300 to int is undefined; the fuzzer found it).
  std::ofstream(dir / "ranks.csv") << energy_csv_header() << "1,1e300,h,d,gpu,1,1,x\n1,-1,h,d,gpu,1,1,x\n1,nan,h,d,gpu,1,1,x\n"
                                   << "1,0.5,h,d,gpu,1,1,x\n" << energy_csv_row(sample);
  const EnergyCsv ranks = read_energy_csv(dir / "ranks.csv");
  EXPECT_EQ(ranks.samples.size(), 1u);
  EXPECT_EQ(ranks.torn_rows, 4);
  std::ofstream(dir / "other.csv") << "timestamp,project_name\n1,x\n";
  try {
    read_energy_csv(dir / "other.csv");
    FAIL() << "a foreign CSV was read as energy.csv";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(dir / "other.csv" + ": header: found \"timestamp,project_name\""),
              std::string::npos)
        << e.what();
  }
}

TEST(Summary, EmissionsCsvHasCodeCarbonColumns) {
  const std::string header = emissions_csv_header();
  const auto columns = split_csv(header);
  // CodeCarbon 2.x (codecarbon/output_methods/emissions_data.py), in order.
  const std::vector<std::string> expected = {
      "timestamp", "project_name", "run_id", "experiment_id", "duration", "emissions", "emissions_rate",
      "cpu_power", "gpu_power", "ram_power", "cpu_energy", "gpu_energy", "ram_energy", "energy_consumed",
      "country_name", "country_iso_code", "region", "cloud_provider", "cloud_region", "os", "python_version",
      "codecarbon_version", "cpu_count", "cpu_model", "gpu_count", "gpu_model", "longitude", "latitude",
      "ram_total_size", "tracking_mode", "on_cloud", "pue"};
  EXPECT_EQ(columns, expected);

  EnergyOptions options;
  options.pue = 2.0;
  options.project_name = "green, test";  // quoted in the CSV
  const EnergySummary s = summarize({record(0, "a", 3.6e6, Label::kMeasured, 7.2e6, 1)}, options, 0, 0);
  const auto row = split_csv(emissions_csv_row(s, options, {"id-1", "run", "2025-01-01T00:00:00"}));
  ASSERT_EQ(row.size(), expected.size());
  const auto at = [&](const std::string& name) {
    return row[std::find(expected.begin(), expected.end(), name) - expected.begin()];
  };
  EXPECT_EQ(at("project_name"), "green, test");
  EXPECT_DOUBLE_EQ(std::stod(at("cpu_energy")), 1.0);          // kWh at the device
  EXPECT_DOUBLE_EQ(std::stod(at("gpu_energy")), 2.0);
  EXPECT_DOUBLE_EQ(std::stod(at("energy_consumed")), 6.0);     // x PUE
  EXPECT_DOUBLE_EQ(std::stod(at("emissions")), 6.0 * 0.475);
  EXPECT_DOUBLE_EQ(std::stod(at("cpu_power")), 1000.0);        // 3.6 MJ over an hour
  EXPECT_EQ(at("gpu_count"), "1");
  EXPECT_EQ(at("tracking_mode"), "machine");
  EXPECT_EQ(at("pue"), "2");

  // Appending keeps earlier rows of the same format.
  const gf::test::TempDir dir("emissions");
  append_emissions_row(dir / "emissions.csv", "first");
  append_emissions_row(dir / "emissions.csv", "second");
  std::ifstream in(dir / "emissions.csv");
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), header + "\nfirst\nsecond\n");
}

}  // namespace
}  // namespace gf::energy
