// `greenfound scaling` through the binary: the README's step-time table and figure are what
// it prints and draws for configs/paper.json (docs/scaling.svg is regenerated, not drawn by hand).
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/support/run_job.hpp"

namespace {

std::string read(const std::string& path) {
  std::stringstream text;
  text << std::ifstream(path).rdbuf();
  return text.str();
}

TEST(ScalingCommand, PrintsTheReadmeTableAndDrawsItsFigure) {
  const std::string source = std::getenv("GF_SOURCE_DIR");
  const std::string svg = (std::filesystem::temp_directory_path() / ("gf_scaling_" + std::to_string(::getpid()) + ".svg")).string();
  const gf::test::JobResult out =
      gf::test::run_job(std::string(std::getenv("GF_BIN")) + " scaling --config " + source + "/configs/paper.json --svg " + svg);
  ASSERT_EQ(out.exit_code, 0) << out.output;
  for (const char* row : {"vit_small_patch14_reg4   100 Gb/s       2    16     8.0       4.19        7.76       5.66      9.85",
                          "vit_small_patch14_reg4   400 Gb/s       2    16     8.0       4.19        2.45       0.69      4.88",
                          "vit_large_patch14_reg4   3.2 Tb/s       4    32     4.0      24.89       11.92       0.24     25.13"})
    EXPECT_NE(out.output.find(row), std::string::npos) << row << "\nin:\n" << out.output;
  const std::string figure = read(svg);
  std::filesystem::remove(svg);
  EXPECT_EQ(figure.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u);
  EXPECT_NE(figure.find("vit_small_patch14_reg4: step time"), std::string::npos);
  EXPECT_NE(figure.find("vit_large_patch14_reg4: step time"), std::string::npos);
  EXPECT_EQ(figure, read(source + "/docs/scaling.svg")) << "docs/scaling.svg is stale: regenerate it with this command";
}

}  // namespace
