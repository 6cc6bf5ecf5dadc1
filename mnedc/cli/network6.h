#pragma once
// The relay's IPv6 /64 (--network6): given, or made so that it stays the same
// without any state to keep.
#include <optional>
#include <string>
#include <string_view>

#include "mnedc/base/ipv6.h"

namespace mnedc::cli {

// A unique-local /64 (RFC 4193) whose 40-bit global ID is the first 40 bits
// of SHA-256 over `seed`: as unpredictable as the seed, and the same for the
// same seed. The seed is the host's /etc/machine-id with the IPv4 network for
// one relay (the same after every restart), or the cluster secret with it for
// the relays of a cluster (the same on every one of them).
base::Prefix6 DerivedUniqueLocalPrefix(std::string_view seed);

// The value of --network6: "auto" (derived as above from `seed`; nullopt
// with `error` when `seed` is empty), "none" (IPv4 only: nullopt, no error),
// or PREFIX/64.
std::optional<base::Prefix6> Network6FromFlag(std::string_view flag, std::string_view seed, std::string* error);

// This host's /etc/machine-id, or "" if it has none.
std::string MachineId();

}  // namespace mnedc::cli
