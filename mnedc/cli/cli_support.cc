#include "mnedc/cli/cli_support.h"

#include <sys/resource.h>

#include <fstream>

#include "mnedc/relay/join_policy.h"

#include <gflags/gflags.h>
#include <glog/logging.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <cstdio>
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

void Init(int* argc, char*** argv, std::string_view usage, std::vector<std::string>* arguments) {
  if (*argc > 0) {
    program_name = (*argv)[0];
    program_name = program_name.substr(program_name.find_last_of('/') + 1);
  }
  if (const char* typed_in = std::getenv("BUILD_WORKING_DIRECTORY"); typed_in && *typed_in) {
    if (::chdir(typed_in) != 0) {
      Fail(std::string("cannot change to the directory bazel run was started in, '") + typed_in +
           "': " + std::strerror(errno));
    }
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
  if (arguments) {
    for (int i = 1; i < *argc; ++i) arguments->push_back((*argv)[i]);
  } else if (*argc > 1) {
    Fail(std::string("unexpected argument '") + (*argv)[1] + "'; see --help");
  }
  google::InitGoogleLogging(program_name.c_str());
}

std::string ReadTokenFile(const std::string& flag, const std::string& path) {
  std::string token, error;
  if (!relay::ReadTokenFile(path, &token, &error)) Fail(flag + ": " + error);
  return token;
}

void Fail(const std::string& message) {
  std::fprintf(stderr, "%s: error: %s\n", program_name.c_str(), message.c_str());
  std::exit(2);
}

void ApplyKeepaliveFlags(int keepalive_seconds, int dead_after_seconds,
                         link::LinkOptions& link) {
  if (keepalive_seconds < 1) Fail("--keepalive_seconds must be at least 1");
  if (dead_after_seconds <= keepalive_seconds) {
    Fail("--dead_after_seconds must be larger than --keepalive_seconds");
  }
  link.keepalive_interval = std::chrono::seconds(keepalive_seconds);
  link.dead_after = std::chrono::seconds(dead_after_seconds);
}

std::size_t RaiseFileLimit(std::size_t reserved, unsigned long* soft_limit) {
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) != 0) return 0;
  if (files.rlim_cur < files.rlim_max) {
    rlimit raised = files;
    raised.rlim_cur = files.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) files = raised;
  }
  *soft_limit = static_cast<unsigned long>(files.rlim_cur);
  return files.rlim_cur > reserved ? static_cast<std::size_t>(files.rlim_cur - reserved) : 0;
}

int KernelListenBacklogCap() {
  std::ifstream in("/proc/sys/net/core/somaxconn");
  int cap = 0;
  if (!(in >> cap)) return 0;
  return cap;
}

bool SplitList(std::string_view text, std::vector<std::string>* items, std::string* error) {
  items->clear();
  while (!text.empty()) {
    const std::size_t comma = text.find(',');
    std::string_view one = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    while (!one.empty() && one.front() == ' ') one.remove_prefix(1);
    while (!one.empty() && one.back() == ' ') one.remove_suffix(1);
    if (one.empty() || (comma != std::string_view::npos && text.empty())) {
      *error = "an empty item in the list";
      return false;
    }
    items->emplace_back(one);
  }
  return true;
}

std::optional<uint64_t> ParseRate(const std::string& text, std::string* error) {
  std::size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {  // Start-up only: a flag that is not a number.
    *error = "expected a rate such as 10mbit, 2MB or 1000000";
    return std::nullopt;
  }
  const std::string unit = text.substr(used);
  double bytes = 0;
  if (unit.empty() || unit == "B") bytes = value;
  else if (unit == "kbit") bytes = value * 1e3 / 8;
  else if (unit == "mbit") bytes = value * 1e6 / 8;
  else if (unit == "gbit") bytes = value * 1e9 / 8;
  else if (unit == "KB") bytes = value * 1e3;
  else if (unit == "MB") bytes = value * 1e6;
  else if (unit == "GB") bytes = value * 1e9;
  else {
    *error = "unknown unit '" + unit + "' (kbit, mbit, gbit, KB, MB, GB)";
    return std::nullopt;
  }
  if (!(bytes >= 0) || bytes > 1e12) {
    *error = "must be from 0 to 8000gbit";
    return std::nullopt;
  }
  if (bytes > 0 && bytes < 1000) {
    *error = "below 8kbit a device could not even send one full packet a second";
    return std::nullopt;
  }
  return static_cast<uint64_t>(bytes);
}

}  // namespace mnedc::cli
