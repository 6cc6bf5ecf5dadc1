#pragma once
// What both binaries share: flag parsing with a --help that lists only mnedc's
// own flags, one-line fatal errors, and log set-up.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mnedc/link/framed_link.h"

namespace mnedc::cli {

// Parses flags (exits 0 after printing help for --help, 1 on unknown flags) and
// starts logging to stderr. `usage` is the text that --help prints first.
// Under `bazel run` it first changes to the directory the command was typed in
// (BUILD_WORKING_DIRECTORY), so relative paths in flags, --flagfile and hook
// commands mean what the user meant, not a path in Bazel's runfiles tree.
// With `arguments`, words that are not flags are returned there (ctl's
// commands); without, they are an error.
void Init(int* argc, char*** argv, std::string_view usage,
          std::vector<std::string>* arguments = nullptr);

// Prints "<program>: error: <message>" on one line and exits with status 2.
[[noreturn]] void Fail(const std::string& message);

// Reads a join token: the file's content without trailing white space. Fails
// (via Fail) on an unreadable, empty or oversized file, and on one that every
// user can read.
std::string ReadTokenFile(const std::string& flag, const std::string& path);

// Checks --keepalive_seconds and --dead_after_seconds (as both binaries name
// them) and puts them into `link`; fails with one line on nonsense.
void ApplyKeepaliveFlags(int keepalive_seconds, int dead_after_seconds,
                         link::LinkOptions& link);

// Raises this process's soft limit on open files to its hard limit, and
// returns how many connections fit under it once `reserved` descriptors are
// set aside for everything else (listening sockets, the TUN, files, hooks).
std::size_t RaiseFileLimit(std::size_t reserved, unsigned long* soft_limit);

// "10mbit", "500kbit", "1gbit" (bits), "2MB", "100KB", "1GB" (bytes, powers of
// 1000) or a bare number of bytes, as bytes a second; nullopt with `error`.
std::optional<uint64_t> ParseRate(const std::string& text, std::string* error);

// The items of a comma-separated flag value, spaces around each trimmed;
// false (and `error`) if one is empty ("a,,b", "a,").
bool SplitList(std::string_view text, std::vector<std::string>* items, std::string* error);

// The kernel's cap on a listening socket's queue of connections not yet
// accepted (net.core.somaxconn); 0 if unknown.
int KernelListenBacklogCap();

}  // namespace mnedc::cli
