#pragma once
// What a device ID may be, in one place: the client checks its own before it
// dials, the relay checks every Hello, the lease and tokens files check theirs.
#include <algorithm>
#include <cstddef>
#include <string_view>

namespace mnedc::base {

inline constexpr std::size_t kMaxDeviceIdLength = 128;
inline constexpr char kDeviceIdRule[] =
    "device id must be 1 to 128 printable ASCII characters without spaces";

// Printable ASCII only: the ID ends up in logs, hooks, files and JSON.
inline bool IsValidDeviceId(std::string_view id) {
  return !id.empty() && id.size() <= kMaxDeviceIdLength &&
         std::all_of(id.begin(), id.end(), [](char c) { return c > ' ' && c < 127; });
}

}  // namespace mnedc::base
