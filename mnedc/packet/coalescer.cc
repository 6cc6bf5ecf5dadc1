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

bool Coalescer::SameFlowAsHeld(const uint8_t* p, std::size_t ip_header_length) const {
  const uint8_t* held = buffer_.get();
  if (ip_header_length == 20) {
    // Version and header length, TOS, DF/reserved bits, TTL, protocol, addresses.
    if (p[0] != held[0] || p[1] != held[1] || (p[6] >> 5) != (held[6] >> 5) || p[8] != held[8] ||
        p[9] != held[9] || std::memcmp(p + 12, held + 12, 8) != 0) {
      return false;
    }
  } else {
    // Version, traffic class and flow label; next header; hop limit; addresses.
    if (std::memcmp(p, held, 4) != 0 || p[6] != held[6] || p[7] != held[7] || std::memcmp(p + 8, held + 8, 32) != 0) {
      return false;
    }
  }
  return std::memcmp(p + ip_header_length, held + ip_header_length, 4) == 0;  // Ports.
}

bool Coalescer::Continues(std::span<const uint8_t> packet, const Candidate& c) const {
  if (ended_ || c.protocol != first_.protocol || c.ip_header_length != first_.ip_header_length ||
      c.transport_header_length != first_.transport_header_length || c.payload > first_.payload ||
      (c.protocol == kIpProtocolTcp && c.sequence != next_sequence_) || held_size_ + c.payload > kMaxSuperPacket ||
      segments_ >= (c.protocol == kIpProtocolUdp ? kMaxUdpSegments : kMaxSegments)) {
    return false;
  }
  if (c.ip_header_length == 20 && held_size_ + c.payload > 65535) return false;  // IPv4's total length.
  if (!SameFlowAsHeld(packet.data(), c.ip_header_length)) return false;
  if (c.protocol == kIpProtocolUdp) return true;
  // The acknowledgement number, and the options.
  const uint8_t* transport = packet.data() + c.ip_header_length;
  const uint8_t* held_transport = buffer_.get() + c.ip_header_length;
  return std::memcmp(transport + 8, held_transport + 8, 4) == 0 &&
         std::memcmp(transport + 20, held_transport + 20, c.transport_header_length - 20) == 0;
}

bool Coalescer::ParsePureAck(std::span<const uint8_t> packet, PureAck* out) {
  if (packet.size() < 40) return false;
  const uint8_t version = packet[0] >> 4;
  if (version == 4) {
    if (packet[0] != 0x45 || packet[9] != kIpProtocolTcp || Load16(packet.data() + 2) != packet.size() ||
        (Load16(packet.data() + 6) & 0x3fff) != 0 ||  // No fragment (MF, offset).
        Fold(Sum(packet.first(20))) != 0xffff) {        // The header checksum right.
      return false;
    }
    out->ip_header_length = 20;
  } else if (version == 6) {
    if (packet.size() < 60 || packet[6] != kIpProtocolTcp || Load16(packet.data() + 4) + 40u != packet.size()) {
      return false;
    }
    out->ip_header_length = 40;
  } else {
    return false;
  }
  const uint8_t* t = packet.data() + out->ip_header_length;
  out->transport_header_length = static_cast<std::size_t>(t[12] >> 4) * 4;
  // No payload; flags exactly ACK, the reserved bits (AE among them) clear.
  if (out->transport_header_length < 20 || out->ip_header_length + out->transport_header_length != packet.size() ||
      (t[12] & 0x0f) != 0 || t[13] != kAck) {
    return false;
  }
  out->sequence = Load32(t + 4);
  out->ack = Load32(t + 8);
  out->timestamps_at = 0;
  for (std::size_t at = 20; at < out->transport_header_length;) {
    const uint8_t kind = t[at];
    if (kind == 0) break;  // End of options.
    if (kind == 1) {       // NOP.
      ++at;
      continue;
    }
    // Timestamps, once; any other option (SACK above all) and it stays.
    if (kind != 8 || out->timestamps_at != 0 || at + 10 > out->transport_header_length || t[at + 1] != 10) return false;
    out->timestamps_at = out->ip_header_length + at + 2;
    at += 10;
  }
  return TransportChecksumValid(packet, out->ip_header_length, kIpProtocolTcp);
}

bool Coalescer::Supersedes(std::span<const uint8_t> packet, const PureAck& ack) const {
  // Serial number arithmetic (RFC 1982), as TCP compares sequence numbers.
  auto after = [](uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) > 0; };
  if (ack.ip_header_length != held_ack_.ip_header_length ||
      ack.transport_header_length != held_ack_.transport_header_length ||
      ack.timestamps_at != held_ack_.timestamps_at || ack.sequence != held_ack_.sequence ||
      !after(ack.ack, held_ack_.ack) ||
      !SameFlowAsHeld(packet.data(), ack.ip_header_length)) {
    return false;
  }
  if (ack.timestamps_at == 0) return true;
  const uint8_t* now = packet.data() + ack.timestamps_at;
  const uint8_t* held = buffer_.get() + ack.timestamps_at;
  return !after(Load32(held), Load32(now)) && !after(Load32(held + 4), Load32(now + 4));
}

void Coalescer::Hold(std::span<const uint8_t> packet) {
  std::memcpy(buffer_.get(), packet.data(), packet.size());
  held_size_ = packet.size();
  segments_ = 1;
  ended_ = false;
}

Coalescer::Offer Coalescer::Add(std::span<const uint8_t> packet) {
  if (holding_ack_) {
    PureAck ack;
    if (!ParsePureAck(packet, &ack) || !Supersedes(packet, ack)) return Offer::kTakeHeldFirst;
    Hold(packet);
    held_ack_ = ack;
    return Offer::kReplacedHeld;
  }
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
  if (!candidate) {
    PureAck ack;
    if (!ParsePureAck(packet, &ack)) return Offer::kNotCandidate;
    Hold(packet);
    holding_ack_ = true;
    held_ack_ = ack;
    return Offer::kHeld;
  }
  if (c.push) return Offer::kNotCandidate;  // PSH: nothing could follow it.
  Hold(packet);
  first_ = c;
  next_sequence_ = c.sequence + static_cast<uint32_t>(c.payload);
  return Offer::kHeld;
}

std::span<const uint8_t> Coalescer::Take(Gso* gso) {
  const std::size_t size = held_size_;
  uint8_t* p = buffer_.get();
  held_size_ = 0;
  holding_ack_ = false;
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
