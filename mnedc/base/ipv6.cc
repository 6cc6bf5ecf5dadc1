#include "mnedc/base/ipv6.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace mnedc::base {

Ipv6Address Prefix6::AddressOf(uint32_t host) const {
  Ipv6Address address{};
  std::copy(network.begin(), network.end(), address.begin());
  address[12] = static_cast<uint8_t>(host >> 24);
  address[13] = static_cast<uint8_t>(host >> 16);
  address[14] = static_cast<uint8_t>(host >> 8);
  address[15] = static_cast<uint8_t>(host);
  return address;
}

bool Prefix6::Contains(std::span<const uint8_t, 16> address) const {
  return std::equal(network.begin(), network.end(), address.begin());
}

std::optional<uint32_t> Prefix6::HostOf(std::span<const uint8_t, 16> address) const {
  if (!Contains(address)) return std::nullopt;
  if (address[8] != 0 || address[9] != 0 || address[10] != 0 || address[11] != 0) return std::nullopt;
  return (uint32_t{address[12]} << 24) | (uint32_t{address[13]} << 16) | (uint32_t{address[14]} << 8) |
         address[15];
}

std::string Prefix6::ToString() const { return Ipv6ToString(AddressOf(0)) + "/64"; }

Prefix6 UniqueLocalPrefix(std::span<const uint8_t, 5> global_id) {
  Prefix6 prefix;
  prefix.network[0] = 0xfd;  // fc00::/7 with the L bit: locally assigned.
  std::copy(global_id.begin(), global_id.end(), prefix.network.begin() + 1);
  // Subnet ID 0 (bytes 6 and 7).
  return prefix;
}

std::optional<Ipv6Address> ParseIpv6(std::string_view text) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  char buffer[INET6_ADDRSTRLEN] = {};
  std::memcpy(buffer, text.data(), text.size());
  Ipv6Address address{};
  if (::inet_pton(AF_INET6, buffer, address.data()) != 1) return std::nullopt;
  return address;
}

std::optional<Prefix6> ParsePrefix6(std::string_view text, std::string* error) {
  auto fail = [&](const std::string& why) -> std::optional<Prefix6> {
    if (error) *error = "'" + std::string(text) + "' " + why;
    return std::nullopt;
  };
  const auto slash = text.find('/');
  if (slash == std::string_view::npos) return fail("is not an IPv6 prefix like fd12:3456:789a::/64");
  const auto address = ParseIpv6(text.substr(0, slash));
  if (!address) return fail("does not start with an IPv6 address");
  unsigned length = 0;
  const std::string_view length_text = text.substr(slash + 1);
  const auto [end, ec] = std::from_chars(length_text.data(), length_text.data() + length_text.size(), length);
  if (ec != std::errc() || length_text.empty() || end != length_text.data() + length_text.size()) {
    return fail("has no prefix length after '/'");
  }
  if (length != 64) return fail("must be a /64 (the overlay's interface IDs are its devices' host numbers)");
  Prefix6 prefix;
  std::copy(address->begin(), address->begin() + 8, prefix.network.begin());
  if (prefix.AddressOf(0) != *address) return fail("has interface ID bits set; did you mean " + prefix.ToString() + "?");
  return prefix;
}

std::string Ipv6ToString(std::span<const uint8_t, 16> address) {
  char buffer[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET6, address.data(), buffer, sizeof(buffer));
  return buffer;
}

}  // namespace mnedc::base
