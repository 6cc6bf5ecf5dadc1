#include "mnedc/relay/ip_packet.h"

#include <algorithm>

namespace mnedc::relay {
namespace {
uint32_t Load32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
}  // namespace

PacketAddresses ParsePacketAddresses(std::span<const uint8_t> packet) {
  return ParsePacketAddresses(packet, packet.size());
}

PacketAddresses ParsePacketAddresses(std::span<const uint8_t> packet, std::size_t size) {
  PacketAddresses result;
  if (packet.size() > size) packet = packet.first(size);
  if (packet.empty()) return result;
  const uint8_t version = packet[0] >> 4;
  if (version == 4) {
    const std::size_t header_length = std::size_t{packet[0] & 0x0fu} * 4;
    if (header_length < 20 || packet.size() < header_length) return result;
    const std::size_t total_length = (std::size_t{packet[2]} << 8) | packet[3];
    if (total_length < header_length || total_length > size) return result;
    result.version = PacketAddresses::Version::kIpv4;
    result.source = Load32(packet.data() + 12);
    result.destination = Load32(packet.data() + 16);
  } else if (version == 6) {
    if (packet.size() < 40) return result;
    const std::size_t payload_length = (std::size_t{packet[4]} << 8) | packet[5];
    if (40 + payload_length > size) return result;
    result.version = PacketAddresses::Version::kIpv6;
    std::copy_n(packet.data() + 8, 16, result.source6.begin());
    std::copy_n(packet.data() + 24, 16, result.destination6.begin());
  }
  return result;
}

}  // namespace mnedc::relay
