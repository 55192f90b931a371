// greenfound: one binary, one subcommand per pipeline stage. Parsing and dispatch only;
// every stage lives in its library. Errors are caught once here: one line, non-zero exit.
#include <cstdlib>
#include <exception>
#include <iostream>

#include "launcher/commands.hpp"
#include "launcher/rank_prefix.hpp"

namespace {

const gf::launcher::Command kCommands[] = {
    {"inspect", "Describe a weights file, checkpoint or packed dataset", gf::launcher::setup_inspect},
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"greenfound: Token Reconstruction pretraining and evaluation of retinal foundation models"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Every subcommand's help");
  for (const auto& command : kCommands) command.setup(*app.add_subcommand(command.name, command.help));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::cerr << gf::launcher::rank_prefix() << "error: " << e.what() << std::endl;
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}
