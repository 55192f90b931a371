#pragma once
// Text from weight files (tensor names, metadata, pickle names) made safe to print: a hostile
// file must not drive the terminal with escape sequences.
#include <string>

namespace gf::model {

// `text` with C0 and C1 control characters, DEL and bytes that are not valid UTF-8 written as
// \xNN (and a backslash as \\); printable UTF-8 is kept as it is.
std::string printable(const std::string& text);

}  // namespace gf::model
