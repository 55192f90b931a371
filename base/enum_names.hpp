#pragma once
// Enums named in configs and files: one table per enum gives its names, in the order they are
// listed to the user, and both directions of the mapping.
//
//   inline constexpr base::EnumName<Precision> kPrecisionNames[] = {{"auto", Precision::kAuto}, ...};
//   base::enum_name(Precision::kAuto, kPrecisionNames)  // "auto"
#include <cstddef>
#include <string>
#include <vector>

#include "base/error.hpp"

namespace gf::base {

template <class E>
struct EnumName {
  const char* name;
  E value;
};

template <class E, size_t N>
const char* enum_name(E value, const EnumName<E> (&names)[N]) {
  for (const auto& n : names)
    if (n.value == value) return n.name;
  return "?";
}
template <class E, size_t N>
std::vector<std::string> enum_names(const EnumName<E> (&names)[N]) {
  std::vector<std::string> out;
  for (const auto& n : names) out.push_back(n.name);
  return out;
}
// The value named `text`; FieldError(source, field, "found \"x\", expected a, b or c") else.
template <class E, size_t N>
E parse_enum(const std::string& text, const EnumName<E> (&names)[N], const std::string& source,
             const std::string& field) {
  for (const auto& n : names)
    if (text == n.name) return n.value;
  throw_found_expected(source, field, shown(text), one_of(enum_names(names)));
}

}  // namespace gf::base
