#pragma once
// IPv6 addresses and the overlay's IPv6 prefix: a /64, usually unique-local
// (RFC 4193, fd00::/8 with a 40-bit global ID).
//
// A device's IPv6 address follows from its IPv4 lease: the /64 with the
// lease's host number (its offset in the IPv4 network) as interface ID, so
// 10.0.0.5 in 10.0.0.0/24 is PREFIX::5 and the relay (.1) is PREFIX::1. A
// device therefore keeps its IPv6 address exactly as long as its IPv4 one
// (across reconnects, relay restarts and relays of a cluster), and the relay
// routes both with one table.
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace mnedc::base {

using Ipv6Address = std::array<uint8_t, 16>;

struct Prefix6 {
  std::array<uint8_t, 8> network{};  // The first 64 bits; the prefix length is always 64.

  // PREFIX::host (the host number in the low 32 bits).
  Ipv6Address AddressOf(uint32_t host) const;
  bool Contains(std::span<const uint8_t, 16> address) const;
  // The host number of an address this prefix could have leased (interface
  // ID 0:0:HIGH:LOW); nullopt for any other address.
  std::optional<uint32_t> HostOf(std::span<const uint8_t, 16> address) const;
  // "fd12:3456:789a::/64".
  std::string ToString() const;
  bool operator==(const Prefix6&) const = default;
};

// The unique-local /64 fdXX:XXXX:XXXX:0::/64 with this 40-bit global ID.
Prefix6 UniqueLocalPrefix(std::span<const uint8_t, 5> global_id);

// Any textual IPv6 address inet_pton takes ("fd00::1", "::ffff:1.2.3.4").
std::optional<Ipv6Address> ParseIpv6(std::string_view text);
// "PREFIX/64" with zero interface ID bits; other lengths are refused (the
// overlay's interface IDs are its host numbers), with a reason in `error`.
std::optional<Prefix6> ParsePrefix6(std::string_view text, std::string* error);
// Canonical text (RFC 5952, as inet_ntop writes it).
std::string Ipv6ToString(std::span<const uint8_t, 16> address);

inline bool IsIpv6Multicast(std::span<const uint8_t, 16> address) { return address[0] == 0xff; }
// fe80::/10.
inline bool IsIpv6LinkLocal(std::span<const uint8_t, 16> address) {
  return address[0] == 0xfe && (address[1] & 0xc0) == 0x80;
}

}  // namespace mnedc::base
