#pragma once
// Replaces a file so that readers see the old content or the new, never half:
// write PATH.tmp, optionally fsync it, rename over PATH.
#include <string>
#include <string_view>

namespace mnedc::base {

// With `durable`, the data reaches the disk before the rename (leases must
// survive a power cut; a peers file on /run need not). Mode 0644 & ~umask
// unless `mode` is given. False with `error` saying which step failed.
bool WriteFileAtomically(const std::string& path, std::string_view content, bool durable,
                         std::string* error, int mode = 0644);

}  // namespace mnedc::base
