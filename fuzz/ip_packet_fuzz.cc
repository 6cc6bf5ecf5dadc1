// The relay's IP header parsing: what decides where a member's packet goes.
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "mnedc/relay/ip_packet.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using mnedc::relay::PacketAddresses;
  const PacketAddresses parsed = mnedc::relay::ParsePacketAddresses({data, size});
  // An IPv4 verdict needs a whole header, and a total length within the
  // packet that covers the header (bytes after it are padding).
  if (parsed.version == PacketAddresses::Version::kIpv4) {
    const std::size_t header = std::size_t{data[0] & 0x0fu} * 4;
    const std::size_t total = (std::size_t{data[2]} << 8) | data[3];
    if (size < 20 || (data[0] >> 4) != 4 || header < 20 || total < header || total > size) std::abort();
  }
  // An IPv6 verdict needs the fixed header and a payload length within the
  // packet, and its addresses are the header's.
  if (parsed.version == PacketAddresses::Version::kIpv6) {
    if (size < 40 || (data[0] >> 4) != 6 || 40 + ((std::size_t{data[4]} << 8) | data[5]) > size) std::abort();
    if (std::memcmp(parsed.source6.data(), data + 8, 16) != 0 ||
        std::memcmp(parsed.destination6.data(), data + 24, 16) != 0) {
      std::abort();
    }
  }
  // What the relay sees of a frame it peeks at (splice): the packet's first
  // bytes and its size. With its headers among them, the same verdict.
  const std::size_t head = std::min<std::size_t>(size, 80);
  const PacketAddresses peeked = mnedc::relay::ParsePacketAddresses({data, head}, size);
  if (peeked.version != parsed.version || peeked.source != parsed.source ||
      peeked.destination != parsed.destination || peeked.source6 != parsed.source6 ||
      peeked.destination6 != parsed.destination6) {
    std::abort();
  }
  return 0;
}
