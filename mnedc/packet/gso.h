#pragma once
// Super-packets: one TCP or UDP packet of up to 64 KiB that stands for a run
// of ordinary packets (segments) of one flow, as Linux hands them to a TUN
// opened with offloads (GSO, "generic segmentation offload"). One such packet
// crosses mnedc as one frame instead of ~45, and is cut into its segments
// only where something cannot take it whole (an older client, a TUN without
// offloads).
//
// A super-packet is its IP header (IPv4 without fragmentation, or IPv6 with
// TCP or UDP as the next header: extension headers are not supported), its
// TCP or UDP header, and the payload of every segment in order; its IP length
// fields cover all of it. Gso says what it is and how long each segment's
// payload is (the last may be shorter). Its transport checksum field is not
// meaningful: whoever segments it computes every segment's checksum, and
// whoever hands it to a kernel stores the pseudo-header sum the kernel wants.
//
// Everything here checks lengths before touching bytes: super-packets come
// from the network.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace mnedc::packet {

// IP protocol numbers of the transports super-packets carry.
inline constexpr uint8_t kIpProtocolTcp = 6;
inline constexpr uint8_t kIpProtocolUdp = 17;

enum class GsoKind : uint8_t {
  kNone = 0,  // An ordinary packet.
  kTcp = 1,   // TCP segmentation (TSO).
  kUdp = 2,   // UDP segmentation (USO): each segment its own datagram.
};

struct Gso {
  GsoKind kind = GsoKind::kNone;
  uint16_t segment_size = 0;  // Payload bytes per segment (the last may have fewer).
  bool super() const { return kind != GsoKind::kNone; }
  bool operator==(const Gso&) const = default;
};

// An IPv6 header plus the largest payload its length field can announce.
inline constexpr std::size_t kMaxSuperPacket = 40 + 65535;
// Bounds the work one super-packet can ask for (Linux's TCP cannot go below
// an MSS of 88 bytes, which makes ~745 segments of 64 KiB).
inline constexpr std::size_t kMaxSegments = 1024;

// Where things are in a super-packet, found by ParseSuperPacket.
struct SuperPacketLayout {
  uint8_t ip_version = 0;
  uint8_t protocol = 0;            // 6 (TCP) or 17 (UDP).
  uint16_t ip_header_length = 0;   // Where the transport header starts.
  uint16_t headers_length = 0;     // IP and transport headers: where the payload starts.
  uint16_t checksum_offset = 0;    // Of the checksum field within the transport header.
  std::size_t payload_length = 0;
  std::size_t segments = 0;        // At least 1.
};

enum class GsoVerdict {
  kOk,
  kUnknownKind,       // Not TCP or UDP segmentation.
  kZeroSegmentSize,
  kOversize,          // Longer than kMaxSuperPacket, or a segment longer than 65535.
  kBadIpHeader,       // Too short, wrong lengths, not IPv4/IPv6.
  kWrongProtocol,     // The IP header's protocol is not the one Gso names.
  kFragment,          // An IPv4 fragment cannot be segmented.
  kBadTransportHeader,
  kTooManySegments,   // More than kMaxSegments.
};
std::string_view GsoVerdictName(GsoVerdict verdict);

// Checks `packet` against `gso` and finds its layout. Only a kOk packet may
// be segmented or handed to a kernel as a super-packet.
GsoVerdict ParseSuperPacket(std::span<const uint8_t> packet, Gso gso, SuperPacketLayout* layout);
// The same for a super-packet of `size` bytes of which only the first are at
// hand (`head`: a relay that peeked at a frame it passes on unread). The
// same verdicts, from the same checks; `head` must hold its IP header and
// the first 13 bytes of its TCP header (73 bytes cover any), else the
// verdict says the header is bad.
GsoVerdict ParseSuperPacketHead(std::span<const uint8_t> head, std::size_t size, Gso gso,
                                SuperPacketLayout* layout);

// The size of segment `index` (< layout.segments).
std::size_t SegmentSize(const SuperPacketLayout& layout, Gso gso, std::size_t index);

// Builds segment `index` of a parsed super-packet into `out` (at least
// SegmentSize bytes) as an ordinary packet, and returns its size: lengths set,
// IPv4 ID advanced by the index, TCP sequence number advanced, FIN and PSH
// only on the last segment and CWR only on the first, IPv4 header and
// transport checksums complete.
std::size_t BuildSegment(std::span<const uint8_t> packet, Gso gso, const SuperPacketLayout& layout,
                         std::size_t index, std::span<uint8_t> out);

// Checks `packet` and calls emit(std::span<const uint8_t>) with each of its
// segments in turn, built in `scratch` (at least 65,535 bytes); false, with
// nothing emitted, if it does not parse.
template <class Emit>
bool ForEachSegment(std::span<const uint8_t> packet, Gso gso, std::span<uint8_t> scratch, Emit&& emit) {
  SuperPacketLayout layout;
  if (ParseSuperPacket(packet, gso, &layout) != GsoVerdict::kOk) return false;
  for (std::size_t i = 0; i < layout.segments; ++i) {
    emit(std::span<const uint8_t>(scratch.data(), BuildSegment(packet, gso, layout, i, scratch)));
  }
  return true;
}

// The headers of a super-packet made ready for a kernel that takes it whole
// (virtio-net's conventions, as Linux's TUN expects): `headers` is a copy of
// the packet's first layout.headers_length bytes; this sets the IPv4 header
// checksum and stores the pseudo-header sum in the transport checksum field.
void PrepareHeadersForOffload(std::span<uint8_t> headers, const SuperPacketLayout& layout,
                              std::size_t packet_size);

}  // namespace mnedc::packet
