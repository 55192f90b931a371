// The run folder's artifacts written by train/ and read back by `status`, `report` and
// `demo`: metrics.jsonl records and provenance.json, each through one writer/reader pair; a
// wrongly typed file is one error naming the file and the field.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <string>

#include "tests/support/errors.hpp"
#include "tests/support/temp_dir.hpp"
#include "train/metrics_record.hpp"
#include "train/provenance.hpp"

namespace gf::train {
namespace {

using gf::test::error_of;

TEST(MetricsRecord, RoundTripsAndNamesAWronglyTypedField) {
  MetricsRecord record;
  record.step = 7;
  record.epoch = 1;
  record.loss = 0.125;
  record.lr = 1e-4;
  record.grad_norm = 0.5;
  record.images_per_s = 42.5;
  record.time_s = {0.5, 0.1, 0.1, 0.2, 0.05, 0.05};
  const MetricsRecord back = metrics_record_from_json(to_json(record), "x");
  EXPECT_EQ(back.step, 7);
  EXPECT_EQ(back.loss, 0.125);
  EXPECT_EQ(back.time_s.allreduce, 0.05);
  EXPECT_EQ(to_json(back), to_json(record));

  const gf::test::TempDir dir("metrics");
  const std::string path = dir / "metrics.jsonl";
  nlohmann::json bad = to_json(record);
  bad["loss"] = "low";
  std::ofstream(path) << to_json(record).dump() << "\n" << bad.dump() << "\n";
  EXPECT_EQ(error_of([&] { read_metrics(path); }), path + ": record 2: loss: found \"low\", expected a number");
  bad = to_json(record);
  bad["time_s"]["data"] = nullptr;
  std::ofstream(path) << bad.dump() << "\n";
  EXPECT_EQ(error_of([&] { read_metrics(path); }), path + ": record 1: time_s.data: found null, expected a number");
  // A record this version does not know is refused, not half read.
  bad = to_json(record);
  bad["loss_ema"] = 0.1;
  std::ofstream(path) << bad.dump() << "\n";
  EXPECT_NE(error_of([&] { read_metrics(path); }).find("record 1: loss_ema: unknown field"), std::string::npos);
  // A run that died mid-line: the torn last line is no record.
  std::ofstream(path) << to_json(record).dump() << "\n{\"step\": 8, \"lo";
  EXPECT_EQ(read_metrics(path).size(), 1u);
  EXPECT_TRUE(read_metrics(dir / "absent.jsonl").empty());
}

TEST(Provenance, SessionsAppendAndAWronglyTypedFileIsNamed) {
  const gf::test::TempDir dir("provenance");
  record_session(dir.str(), {0, "node1", 2, 2, 4, "cpu", "mpi"});
  record_session(dir.str(), {5, "node2", 2, 1, 8, "cuda:0", "nccl"});
  const Provenance provenance = read_provenance(dir / "provenance.json");
  ASSERT_EQ(provenance.sessions.size(), 2u);
  EXPECT_EQ(provenance.sessions[1].start_step, 5);
  EXPECT_EQ(provenance.sessions[1].host, "node2");
  EXPECT_EQ(provenance.sessions[1].backend, "nccl");
  EXPECT_FALSE(provenance.sessions[1].started.empty());
  EXPECT_FALSE(provenance.sessions[1].libtorch.empty());

  std::ofstream(dir / "provenance.json") << R"({"sessions": [{"start_step": "five"}]})";
  EXPECT_EQ(error_of([&] { read_provenance(dir / "provenance.json"); }),
            dir / "provenance.json" + ": sessions[0].start_step: found \"five\", expected an integer");
  // The writer replaces what it cannot read with a record that starts again.
  record_session(dir.str(), {9, "node3", 1, 1, 1, "cpu", "mpi"});
  EXPECT_EQ(read_provenance(dir / "provenance.json").sessions.size(), 1u);
}

}  // namespace
}  // namespace gf::train
