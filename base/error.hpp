#pragma once
// Errors for the user: one sentence naming where (a file, a config field, an argument), what
// was found and what was expected, e.g. "run.json: data.batch_size: found 0, expected an
// integer > 0". Libraries word them by config path or argument name, never by a CLI flag;
// the CLI, which knows its flags, maps a FieldError's field to the flag that sets it.
#include <stdexcept>
#include <string>
#include <vector>

namespace gf::base {

class FieldError : public std::runtime_error {
 public:
  // what() = "<source>: <field>: <problem>", each part left out when empty.
  FieldError(std::string source, std::string field, std::string problem);

  const std::string& source() const { return source_; }  // a file, or "" (flags, built-in)
  const std::string& field() const { return field_; }    // dotted config path or argument name
  const std::string& problem() const { return problem_; }

 private:
  std::string source_, field_, problem_;
};

// FieldError(source, field, "found <found>, expected <expected>").
[[noreturn]] void throw_found_expected(const std::string& source, const std::string& field, const std::string& found,
                                       const std::string& expected);

// A checked value as the user wrote it, for "found X": 2, not 2.0; 0.5; "text" quoted.
std::string shown(double value);
std::string shown(const std::string& value);

// "a, b or c" (one item: itself).
std::string one_of(const std::vector<std::string>& names);

// "<path>: <what> failed (<strerror(errno)>)"; call right after the failing system call.
std::runtime_error io_error(const std::string& path, const std::string& what);

}  // namespace gf::base
