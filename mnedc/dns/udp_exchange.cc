#include "mnedc/dns/udp_exchange.h"

#include <cstring>

#include "mnedc/packet/checksum.h"

namespace mnedc::dns {
namespace {
using packet::Load16;
using packet::Load32;
using packet::Store16;
constexpr uint8_t kUdp = 17;
constexpr uint16_t kDnsPort = 53;
}  // namespace

std::optional<std::span<const uint8_t>> DnsQueryIn(std::span<const uint8_t> packet, uint32_t server,
                                                   const std::optional<base::Ipv6Address>& server6, UdpFlow* flow) {
  if (packet.empty()) return std::nullopt;
  std::size_t udp_offset = 0;
  std::size_t ip_end = 0;  // Where the IP packet ends (its own length).
  if (packet[0] >> 4 == 4) {
    if (packet.size() < 20) return std::nullopt;
    const std::size_t header = std::size_t{packet[0] & 0x0fu} * 4;
    const std::size_t total = Load16(packet.data() + 2);
    if (header < 20 || total < header || total > packet.size() || packet[9] != kUdp) return std::nullopt;
    if ((Load16(packet.data() + 6) & 0x3fff) != 0) return std::nullopt;  // A fragment (MF or an offset).
    if (Load32(packet.data() + 16) != server) return std::nullopt;
    flow->version = 4;
    std::memcpy(flow->source, packet.data() + 12, 4);
    std::memcpy(flow->destination, packet.data() + 16, 4);
    udp_offset = header;
    ip_end = total;
  } else if (packet[0] >> 4 == 6) {
    if (!server6 || packet.size() < 40) return std::nullopt;
    const std::size_t total = 40 + std::size_t{Load16(packet.data() + 4)};
    if (total > packet.size() || packet[6] != kUdp) return std::nullopt;  // Extension headers: not DNS to us.
    if (std::memcmp(packet.data() + 24, server6->data(), 16) != 0) return std::nullopt;
    flow->version = 6;
    std::memcpy(flow->source, packet.data() + 8, 16);
    std::memcpy(flow->destination, packet.data() + 24, 16);
    udp_offset = 40;
    ip_end = total;
  } else {
    return std::nullopt;
  }
  if (ip_end < udp_offset + 8) return std::nullopt;
  const uint8_t* udp = packet.data() + udp_offset;
  const std::size_t udp_length = Load16(udp + 4);
  if (udp_length < 8 || udp_offset + udp_length > ip_end) return std::nullopt;
  if (Load16(udp + 2) != kDnsPort) return std::nullopt;
  flow->source_port = Load16(udp);
  flow->destination_port = kDnsPort;
  return packet.subspan(udp_offset + 8, udp_length - 8);
}

void BuildUdpAnswer(const UdpFlow& flow, std::span<const uint8_t> payload, std::vector<uint8_t>* out) {
  const std::size_t ip_header = flow.version == 4 ? 20 : 40;
  const std::size_t udp_length = 8 + payload.size();
  out->assign(ip_header + udp_length, 0);
  uint8_t* p = out->data();
  if (flow.version == 4) {
    p[0] = 0x45;
    Store16(p + 2, static_cast<uint16_t>(out->size()));
    p[6] = 0x40;  // Don't fragment.
    p[8] = 64;
    p[9] = kUdp;
    std::memcpy(p + 12, flow.destination, 4);
    std::memcpy(p + 16, flow.source, 4);
    packet::SetIpv4HeaderChecksum(p, 20);
  } else {
    p[0] = 0x60;
    Store16(p + 4, static_cast<uint16_t>(udp_length));
    p[6] = kUdp;
    p[7] = 64;
    std::memcpy(p + 8, flow.destination, 16);
    std::memcpy(p + 24, flow.source, 16);
  }
  uint8_t* udp = p + ip_header;
  Store16(udp, flow.destination_port);
  Store16(udp + 2, flow.source_port);
  Store16(udp + 4, static_cast<uint16_t>(udp_length));
  if (!payload.empty()) std::memcpy(udp + 8, payload.data(), payload.size());
  const std::span<const uint8_t> whole(out->data(), out->size());
  uint16_t checksum = static_cast<uint16_t>(
      ~packet::Fold(packet::Sum({udp, udp_length}, packet::PseudoHeaderSum(whole, kUdp, static_cast<uint32_t>(udp_length)))));
  if (checksum == 0) checksum = 0xffff;  // 0 means "none" in UDP.
  packet::StoreChecksum(udp + 6, checksum);
}

}  // namespace mnedc::dns
