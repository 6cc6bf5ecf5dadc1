#pragma once
// The relay's leases on disk, so a restarted relay gives every device the
// address it had even if a newcomer joins first. One lease a line:
//   10.0.0.2 device-a
// Written whole to a temporary file and renamed, so a crash never leaves half.
#include <string>
#include <string_view>

#include "mnedc/relay/lease_pool.h"

namespace mnedc::relay {

// Loads `path` into `pool`. A missing file is an empty one. Lines outside the
// pool's prefix or in conflict are skipped and counted in `skipped`. False with
// `error` only when the file exists but cannot be read.
bool LoadLeaseFile(const std::string& path, LeasePool& pool, int* skipped, std::string* error);
// The same for the file's content; returns how many lines were skipped.
int ParseLeases(std::string_view content, LeasePool& pool);

bool SaveLeaseFile(const std::string& path, const LeasePool& pool, std::string* error);

}  // namespace mnedc::relay
