#pragma once
// Waiting in tests on what they check, never for a fixed time: poll a condition until it
// holds or a deadline passes (a loaded CI machine only makes the wait longer).
#include <chrono>
#include <fstream>
#include <functional>
#include <string>
#include <thread>

namespace gf::test {

// True as soon as `condition` holds; false when `timeout_s` passed first.
inline bool wait_until(const std::function<bool()>& condition, double timeout_s = 60) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

// Lines of a text file containing `text` (0 when the file is absent): rows a sampler wrote.
inline int lines_containing(const std::string& path, const std::string& text) {
  std::ifstream in(path);
  int n = 0;
  for (std::string line; std::getline(in, line);) n += line.find(text) != std::string::npos ? 1 : 0;
  return n;
}

}  // namespace gf::test
