#pragma once
// The one sentence an error gives, for tests that check its wording.
#include <functional>
#include <stdexcept>
#include <string>

namespace gf::test {

// What `body` throws (a std::exception's what()), "" when it throws nothing.
inline std::string error_of(const std::function<void()>& body) {
  try {
    body();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace gf::test
