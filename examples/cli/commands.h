// examples/cli/commands.h: the subcommands of the reasonrt command-line tool.
#ifndef REASONRT_EXAMPLES_CLI_COMMANDS_H_
#define REASONRT_EXAMPLES_CLI_COMMANDS_H_

#include <cstdio>
#include <string>

#include "absl/status/status.h"

namespace reasonrt::cli {

// Prints "reasonrt: <message>" to stderr and returns the exit code 1.
inline int Fail(const absl::Status& status) {
  std::fprintf(stderr, "reasonrt: %s\n", std::string(status.message()).c_str());
  return 1;
}

int RunInspect(const std::string& dir);

}  // namespace reasonrt::cli

#endif  // REASONRT_EXAMPLES_CLI_COMMANDS_H_
