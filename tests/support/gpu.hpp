#pragma once
// For tests under the ctest label `gpu`: GF_SKIP_WITHOUT_GPU() as a test's first line reports
// the test SKIPPED, with the CUDA runtime's reason, where no GPU is visible (never passed).
#include <gtest/gtest.h>

#include "dist/device.hpp"

#define GF_SKIP_WITHOUT_GPU()                                                                    \
  do {                                                                                           \
    const gf::dist::GpuVisibility gf_gpus_ = gf::dist::visible_gpus();                           \
    if (gf_gpus_.names.empty()) GTEST_SKIP() << "no GPU visible (" << gf_gpus_.why_none << ")"; \
  } while (0)
