#include "mnedc/packet/coalescer.h"

#include <cstring>

#include "mnedc/packet/checksum.h"

namespace mnedc::packet {
namespace {
constexpr uint8_t kAck = 0x10;
constexpr uint8_t kPsh = 0x08;
// The most datagrams one UDP super-packet may stand for: Linux's
// UDP_MAX_SEGMENTS on the kernels that have it at its smallest.
constexpr std::size_t kMaxUdpSegments = 64;
}  // namespace

Coalescer::Coalescer(bool udp) : udp_(udp), buffer_(new uint8_t[kMaxSuperPacket]) {}

bool Coalescer::Parse(std::span<const uint8_t> packet, Candidate* out) const {
  if (packet.size() < 28) return false;
  const uint8_t version = packet[0] >> 4;
  if (version == 4) {
    // No IP options (they would have to match too), no fragments.
    out->protocol = packet[9];
    if (packet[0] != 0x45 || Load16(packet.data() + 2) != packet.size()) return false;
    if ((packet[6] & 0x20) != 0 || (Load16(packet.data() + 6) & 0x1fff) != 0) return false;
    out->ip_header_length = 20;
  } else if (version == 6) {
    if (packet.size() < 48 || Load16(packet.data() + 4) + 40u != packet.size()) return false;
    out->protocol = packet[6];
    out->ip_header_length = 40;
  } else {
    return false;
  }
  const uint8_t* transport = packet.data() + out->ip_header_length;
  if (out->protocol == kIpProtocolUdp) {
    if (!udp_) return false;
    out->transport_header_length = 8;
    // The UDP length says the same as the IP one; a payload; a checksum.
    if (Load16(transport + 4) != packet.size() - out->ip_header_length || packet.size() - out->ip_header_length <= 8 ||
        Load16(transport + 6) == 0) {
      return false;
    }
    out->push = false;
    out->sequence = 0;
  } else if (out->protocol == kIpProtocolTcp) {
    if (packet.size() < out->ip_header_length + 20) return false;
    out->transport_header_length = static_cast<std::size_t>(transport[12] >> 4) * 4;
    if (out->transport_header_length < 20 || out->ip_header_length + out->transport_header_length >= packet.size()) {
      return false;  // Bad, or no payload (a pure ACK joins nothing).
    }
    const uint8_t flags = transport[13];
    if (flags != kAck && flags != (kAck | kPsh)) return false;
    out->push = flags & kPsh;
    out->sequence = Load32(transport + 4);
  } else {
    return false;
  }
  out->payload = packet.size() - out->ip_header_length - out->transport_header_length;
  return TransportChecksumValid(packet, out->ip_header_length, out->protocol);
}

bool Coalescer::Continues(std::span<const uint8_t> packet, const Candidate& c) const {
  const uint8_t* held = buffer_.get();
  if (ended_ || c.protocol != first_.protocol || c.ip_header_length != first_.ip_header_length ||
      c.transport_header_length != first_.transport_header_length || c.payload > first_.payload ||
      (c.protocol == kIpProtocolTcp && c.sequence != next_sequence_) || held_size_ + c.payload > kMaxSuperPacket ||
      segments_ >= (c.protocol == kIpProtocolUdp ? kMaxUdpSegments : kMaxSegments)) {
    return false;
  }
  const uint8_t* p = packet.data();
  if (c.ip_header_length == 20) {
    if (held_size_ + c.payload > 65535) return false;  // IPv4's total length.
    // TOS, DF/reserved bits, TTL, protocol, addresses.
    if (p[1] != held[1] || (p[6] >> 5) != (held[6] >> 5) || p[8] != held[8] ||
        std::memcmp(p + 12, held + 12, 8) != 0) {
      return false;
    }
  } else {
    // Version, traffic class and flow label; hop limit; addresses.
    if (std::memcmp(p, held, 4) != 0 || p[7] != held[7] || std::memcmp(p + 8, held + 8, 32) != 0) {
      return false;
    }
  }
  const uint8_t* transport = p + c.ip_header_length;
  const uint8_t* held_transport = held + c.ip_header_length;
  if (std::memcmp(transport, held_transport, 4) != 0) return false;  // Ports.
  if (c.protocol == kIpProtocolUdp) return true;
  // The acknowledgement number, and the options.
  return std::memcmp(transport + 8, held_transport + 8, 4) == 0 &&
         std::memcmp(transport + 20, held_transport + 20, c.transport_header_length - 20) == 0;
}

Coalescer::Offer Coalescer::Add(std::span<const uint8_t> packet) {
  Candidate c;
  const bool candidate = Parse(packet, &c);
  if (holding()) {
    if (!candidate || !Continues(packet, c)) return Offer::kTakeHeldFirst;
    std::memcpy(buffer_.get() + held_size_, packet.data() + c.ip_header_length + c.transport_header_length,
                c.payload);
    held_size_ += c.payload;
    next_sequence_ += static_cast<uint32_t>(c.payload);
    ++segments_;
    if (c.push) buffer_[first_.ip_header_length + 13] |= kPsh;
    ended_ = c.push || c.payload < first_.payload;
    return Offer::kHeld;
  }
  if (!candidate || c.push) return Offer::kNotCandidate;  // PSH: nothing could follow it.
  std::memcpy(buffer_.get(), packet.data(), packet.size());
  held_size_ = packet.size();
  first_ = c;
  next_sequence_ = c.sequence + static_cast<uint32_t>(c.payload);
  segments_ = 1;
  ended_ = false;
  return Offer::kHeld;
}

std::span<const uint8_t> Coalescer::Take(Gso* gso) {
  const std::size_t size = held_size_;
  uint8_t* p = buffer_.get();
  held_size_ = 0;
  if (segments_ <= 1) {
    *gso = Gso{};
    return {p, size};
  }
  if (first_.ip_header_length == 20) {
    Store16(p + 2, static_cast<uint16_t>(size));
    SetIpv4HeaderChecksum(p, 20);
  } else {
    Store16(p + 4, static_cast<uint16_t>(size - 40));
  }
  const bool udp = first_.protocol == kIpProtocolUdp;
  if (udp) Store16(p + first_.ip_header_length + 4, static_cast<uint16_t>(size - first_.ip_header_length));
  *gso = Gso{udp ? GsoKind::kUdp : GsoKind::kTcp, static_cast<uint16_t>(first_.payload)};
  return {p, size};
}

}  // namespace mnedc::packet
