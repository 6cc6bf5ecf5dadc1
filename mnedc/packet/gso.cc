#include "mnedc/packet/gso.h"

#include <algorithm>
#include <cstring>

#include "mnedc/packet/checksum.h"

namespace mnedc::packet {
namespace {
constexpr uint8_t kTcpFin = 0x01;
constexpr uint8_t kTcpPsh = 0x08;
constexpr uint8_t kTcpCwr = 0x80;
}  // namespace

std::string_view GsoVerdictName(GsoVerdict verdict) {
  switch (verdict) {
    case GsoVerdict::kOk: return "ok";
    case GsoVerdict::kUnknownKind: return "unknown segmentation kind";
    case GsoVerdict::kZeroSegmentSize: return "segment size of 0";
    case GsoVerdict::kOversize: return "over the maximum size";
    case GsoVerdict::kBadIpHeader: return "bad IP header";
    case GsoVerdict::kWrongProtocol: return "IP protocol does not match the segmentation kind";
    case GsoVerdict::kFragment: return "IPv4 fragment";
    case GsoVerdict::kBadTransportHeader: return "bad transport header";
    case GsoVerdict::kTooManySegments: return "too many segments";
  }
  return "?";
}

GsoVerdict ParseSuperPacket(std::span<const uint8_t> packet, Gso gso, SuperPacketLayout* layout) {
  return ParseSuperPacketHead(packet, packet.size(), gso, layout);
}

GsoVerdict ParseSuperPacketHead(std::span<const uint8_t> packet, std::size_t size, Gso gso,
                                SuperPacketLayout* layout) {
  if (packet.size() > size) packet = packet.first(size);
  if (gso.kind != GsoKind::kTcp && gso.kind != GsoKind::kUdp) return GsoVerdict::kUnknownKind;
  if (gso.segment_size == 0) return GsoVerdict::kZeroSegmentSize;
  if (size > kMaxSuperPacket) return GsoVerdict::kOversize;
  if (packet.empty()) return GsoVerdict::kBadIpHeader;
  SuperPacketLayout out;
  out.ip_version = packet[0] >> 4;
  if (out.ip_version == 4) {
    if (packet.size() < 20) return GsoVerdict::kBadIpHeader;
    out.ip_header_length = static_cast<uint16_t>((packet[0] & 0x0f) * 4);
    if (out.ip_header_length < 20 || out.ip_header_length > packet.size()) {
      return GsoVerdict::kBadIpHeader;
    }
    if (Load16(packet.data() + 2) != size) return GsoVerdict::kBadIpHeader;
    if ((packet[6] & 0x20) != 0 || (Load16(packet.data() + 6) & 0x1fff) != 0) {
      return GsoVerdict::kFragment;
    }
    out.protocol = packet[9];
  } else if (out.ip_version == 6) {
    if (packet.size() < 40 || Load16(packet.data() + 4) + 40u != size) {
      return GsoVerdict::kBadIpHeader;
    }
    out.ip_header_length = 40;
    out.protocol = packet[6];
  } else {
    return GsoVerdict::kBadIpHeader;
  }
  if (out.protocol != (gso.kind == GsoKind::kTcp ? kIpProtocolTcp : kIpProtocolUdp)) return GsoVerdict::kWrongProtocol;
  const std::size_t rest = size - out.ip_header_length;
  std::size_t transport_header = 8;
  if (out.protocol == kIpProtocolTcp) {
    if (rest < 20 || packet.size() < out.ip_header_length + 13u) return GsoVerdict::kBadTransportHeader;
    transport_header = static_cast<std::size_t>(packet[out.ip_header_length + 12] >> 4) * 4;
    if (transport_header < 20) return GsoVerdict::kBadTransportHeader;
    out.checksum_offset = 16;
  } else {
    out.checksum_offset = 6;
  }
  if (rest < transport_header) return GsoVerdict::kBadTransportHeader;
  out.headers_length = static_cast<uint16_t>(out.ip_header_length + transport_header);
  if (out.headers_length + std::size_t{gso.segment_size} > 65535) return GsoVerdict::kOversize;
  out.payload_length = size - out.headers_length;
  out.segments = std::max<std::size_t>(1, (out.payload_length + gso.segment_size - 1) / gso.segment_size);
  if (out.segments > kMaxSegments) return GsoVerdict::kTooManySegments;
  *layout = out;
  return GsoVerdict::kOk;
}

std::size_t SegmentSize(const SuperPacketLayout& layout, Gso gso, std::size_t index) {
  const std::size_t start = index * gso.segment_size;
  return layout.headers_length + std::min<std::size_t>(gso.segment_size, layout.payload_length - start);
}

std::size_t BuildSegment(std::span<const uint8_t> packet, Gso gso, const SuperPacketLayout& layout,
                         std::size_t index, std::span<uint8_t> out) {
  const std::size_t payload_start = index * gso.segment_size;
  const std::size_t payload = std::min<std::size_t>(gso.segment_size, layout.payload_length - payload_start);
  const std::size_t size = layout.headers_length + payload;
  const bool last = index + 1 == layout.segments;
  uint8_t* p = out.data();
  std::memcpy(p, packet.data(), layout.headers_length);
  std::memcpy(p + layout.headers_length, packet.data() + layout.headers_length + payload_start, payload);
  if (layout.ip_version == 4) {
    Store16(p + 2, static_cast<uint16_t>(size));
    Store16(p + 4, static_cast<uint16_t>(Load16(p + 4) + index));
    SetIpv4HeaderChecksum(p, layout.ip_header_length);
  } else {
    Store16(p + 4, static_cast<uint16_t>(size - 40));
  }
  uint8_t* transport = p + layout.ip_header_length;
  const std::size_t transport_length = size - layout.ip_header_length;
  if (layout.protocol == kIpProtocolTcp) {
    Store32(transport + 4, static_cast<uint32_t>(Load32(transport + 4) + payload_start));
    if (!last) transport[13] &= static_cast<uint8_t>(~(kTcpFin | kTcpPsh));
    if (index > 0) transport[13] &= static_cast<uint8_t>(~kTcpCwr);
  } else {
    Store16(transport + 4, static_cast<uint16_t>(transport_length));
  }
  uint8_t* field = transport + layout.checksum_offset;
  field[0] = field[1] = 0;
  const uint64_t pseudo = PseudoHeaderSum({p, size}, layout.protocol, static_cast<uint32_t>(transport_length));
  uint16_t checksum = static_cast<uint16_t>(~Fold(Sum({transport, transport_length}, pseudo)));
  if (checksum == 0 && layout.protocol == kIpProtocolUdp) checksum = 0xffff;  // 0 means "none" in UDP.
  StoreChecksum(field, checksum);
  return size;
}

void PrepareHeadersForOffload(std::span<uint8_t> headers, const SuperPacketLayout& layout,
                              std::size_t packet_size) {
  uint8_t* p = headers.data();
  if (layout.ip_version == 4) SetIpv4HeaderChecksum(p, layout.ip_header_length);
  const uint32_t transport_length = static_cast<uint32_t>(packet_size - layout.ip_header_length);
  if (layout.protocol == kIpProtocolUdp) {
    Store16(p + layout.ip_header_length + 4, static_cast<uint16_t>(transport_length));
  }
  StoreChecksum(p + layout.ip_header_length + layout.checksum_offset,
                Fold(PseudoHeaderSum(headers, layout.protocol, transport_length)));
}

}  // namespace mnedc::packet
