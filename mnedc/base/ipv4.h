#pragma once
// IPv4 addresses and prefixes, held in host byte order: the one home of the
// helpers the relay, the client, the TUN and the tools all use.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mnedc::base {

// The netmask of a prefix length (0..32): 24 -> 255.255.255.0.
constexpr uint32_t PrefixMask(uint32_t length) {
  return length == 0 ? 0 : length >= 32 ? ~uint32_t{0} : ~uint32_t{0} << (32 - length);
}

struct Prefix {
  uint32_t network = 0;  // Host bits zero.
  uint32_t length = 0;   // 8..30 when parsed by ParsePrefix.

  uint32_t mask() const { return PrefixMask(length); }
  uint32_t broadcast() const { return network | ~mask(); }
  uint32_t relay_address() const { return network + 1; }  // The first host.
  bool Contains(uint32_t address) const { return (address & mask()) == network; }
  std::string ToString() const;
};

// "10.0.0.7" (exactly four decimal parts of at most three digits).
std::optional<uint32_t> ParseIpv4(std::string_view text);
// Parses "10.0.0.0/24". Refuses host bits, and lengths outside 8..30 (room
// for the relay and members), with a reason in `error`.
std::optional<Prefix> ParsePrefix(std::string_view text, std::string* error);
// Dotted-quad text.
std::string Ipv4ToString(uint32_t address);

}  // namespace mnedc::base
