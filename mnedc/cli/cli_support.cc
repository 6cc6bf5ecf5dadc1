#include "mnedc/cli/cli_support.h"

#include <gflags/gflags.h>
#include <glog/logging.h>

#include <sys/stat.h>

#include <cctype>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <cstdlib>
#include <vector>

// gflags defines these in its own library without exporting declarations.
DECLARE_bool(help);
DECLARE_bool(helpshort);
DECLARE_bool(helpfull);

namespace mnedc::cli {
namespace {
std::string program_name = "mnedc";

void PrintHelp(std::string_view usage) {
  std::printf("%.*s\n\nFlags:\n", static_cast<int>(usage.size()), usage.data());
  std::vector<gflags::CommandLineFlagInfo> flags;
  gflags::GetAllFlags(&flags);
  for (const auto& flag : flags) {
    // Only mnedc's own flags; glog and gflags add dozens nobody needs here.
    if (flag.filename.find("mnedc/cli/") == std::string::npos) continue;
    std::string default_text = flag.type == "string" ? "\"" + flag.default_value + "\""
                                                     : flag.default_value;
    std::printf("  --%s  (default: %s)\n      %s\n", flag.name.c_str(), default_text.c_str(),
                flag.description.c_str());
  }
  std::printf("\nLogging: --v=1 for more detail, --minloglevel=1 for warnings only.\n");
}
}  // namespace

void Init(int* argc, char*** argv, std::string_view usage) {
  if (*argc > 0) {
    program_name = (*argv)[0];
    program_name = program_name.substr(program_name.find_last_of('/') + 1);
  }
  FLAGS_logtostderr = true;
  FLAGS_colorlogtostderr = false;
  gflags::SetUsageMessage(std::string(usage));
  gflags::ParseCommandLineNonHelpFlags(argc, argv, true);
  if (FLAGS_help || FLAGS_helpshort || FLAGS_helpfull) {
    if (FLAGS_helpfull) {
      gflags::ShowUsageWithFlags((*argv)[0]);
    } else {
      PrintHelp(usage);
    }
    std::exit(0);
  }
  gflags::HandleCommandLineHelpFlags();
  if (*argc > 1) Fail(std::string("unexpected argument '") + (*argv)[1] + "'; see --help");
  google::InitGoogleLogging(program_name.c_str());
}

std::string ReadTokenFile(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Fail(flag + ": cannot read '" + path + "'");
  std::string token((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  if (token.empty()) Fail(flag + ": '" + path + "' is empty");
  if (token.size() > 1024) Fail(flag + ": '" + path + "' is over 1024 bytes; is it the right file?");
  struct stat info {};
  if (::stat(path.c_str(), &info) == 0 && (info.st_mode & 077) != 0) {
    LOG(WARNING) << flag << ": '" << path << "' can be read by other users; chmod 600 it";
  }
  return token;
}

void Fail(const std::string& message) {
  std::fprintf(stderr, "%s: error: %s\n", program_name.c_str(), message.c_str());
  std::exit(2);
}

}  // namespace mnedc::cli
