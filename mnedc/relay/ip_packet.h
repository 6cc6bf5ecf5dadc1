#pragma once
// Just enough IP header parsing to route a packet by its addresses.
#include <cstdint>
#include <cstddef>
#include <span>

#include "mnedc/base/ipv6.h"

namespace mnedc::relay {

struct PacketAddresses {
  enum class Version { kInvalid, kIpv4, kIpv6 };
  Version version = Version::kInvalid;
  uint32_t source = 0;       // IPv4 only, host byte order.
  uint32_t destination = 0;  // IPv4 only, host byte order.
  base::Ipv6Address source6{};       // IPv6 only.
  base::Ipv6Address destination6{};  // IPv6 only.
};

// Reads the version nibble and the addresses. A packet shorter than its
// header, or whose total (IPv4) or payload (IPv6) length claims more bytes than
// it has, is kInvalid.
PacketAddresses ParsePacketAddresses(std::span<const uint8_t> packet);
// The same for a packet of `size` bytes of which `head` is the start (a frame
// the relay peeked at): its header must be in `head`, its lengths are checked
// against `size`.
PacketAddresses ParsePacketAddresses(std::span<const uint8_t> head, std::size_t size);

inline bool IsIpv4Multicast(uint32_t address) { return (address >> 28) == 0xe; }

}  // namespace mnedc::relay
