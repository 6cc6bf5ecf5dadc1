#include "mnedc/packet/gso.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "mnedc/packet/checksum.h"
#include "mnedc/packet/test_packets.h"

namespace mnedc::packet {
namespace {
using testing::ChecksumsRight;
using testing::Flow;
using testing::MakePacket;
using testing::ReferenceChecksum;

TEST(ChecksumTest, Ipv4HeaderMatchesTheTextbookExample) {
  // The header of RFC 1071-style worked examples: its checksum is 0xb861.
  std::vector<uint8_t> header = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                                 0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
  SetIpv4HeaderChecksum(header.data(), 20);
  EXPECT_EQ(header[10], 0xb8);
  EXPECT_EQ(header[11], 0x61);
}

TEST(ChecksumTest, FastSumAgreesWithTheSlowOneForEveryLength) {
  std::minstd_rand random(7);
  for (std::size_t length = 0; length < 300; ++length) {
    std::vector<uint8_t> bytes(length);
    for (auto& b : bytes) b = static_cast<uint8_t>(random());
    uint8_t got[2];
    StoreChecksum(got, static_cast<uint16_t>(~Fold(Sum(bytes))));
    EXPECT_EQ(Load16(got), ReferenceChecksum(bytes)) << "length " << length;
  }
}

TEST(ChecksumTest, CompletesAPartialChecksumAsTheKernelLeavesIt) {
  Flow flow;
  std::vector<uint8_t> packet = MakePacket(flow, 333);
  ASSERT_TRUE(ChecksumsRight(packet));
  // CHECKSUM_PARTIAL: the field holds the pseudo-header sum.
  StoreChecksum(&packet[36], Fold(PseudoHeaderSum(packet, 6, static_cast<uint32_t>(packet.size() - 20))));
  EXPECT_FALSE(ChecksumsRight(packet));
  ASSERT_TRUE(CompletePartialChecksum(packet, 20, 16));
  EXPECT_TRUE(ChecksumsRight(packet));
  EXPECT_TRUE(TransportChecksumValid(packet, 20, 6));
  EXPECT_FALSE(CompletePartialChecksum(packet, 20, packet.size()));  // Past the end.
}

// Builds the super-packet of `segments` payloads of `flow` (the whole stream
// in one packet, as the kernel hands it over), then segments it.
struct Split {
  std::vector<uint8_t> super_packet;
  std::vector<std::vector<uint8_t>> segments;
};

Split SegmentStream(Flow flow, std::size_t total_payload, uint16_t segment_size) {
  Split split;
  split.super_packet = MakePacket(flow, total_payload);
  const Gso gso{flow.protocol == 6 ? GsoKind::kTcp : GsoKind::kUdp, segment_size};
  SuperPacketLayout layout;
  EXPECT_EQ(ParseSuperPacket(split.super_packet, gso, &layout), GsoVerdict::kOk);
  std::vector<uint8_t> out(65536);
  for (std::size_t i = 0; i < layout.segments; ++i) {
    const std::size_t n = BuildSegment(split.super_packet, gso, layout, i, out);
    EXPECT_EQ(n, SegmentSize(layout, gso, i));
    split.segments.emplace_back(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n));
  }
  return split;
}

void ExpectSegmentsOf(const Flow& flow, const Split& split, std::size_t total_payload, uint16_t segment_size) {
  const std::size_t count = (total_payload + segment_size - 1) / segment_size;
  ASSERT_EQ(split.segments.size(), std::max<std::size_t>(count, 1));
  for (std::size_t i = 0; i < split.segments.size(); ++i) {
    const std::size_t offset = i * segment_size;
    const std::size_t payload = std::min<std::size_t>(segment_size, total_payload - offset);
    Flow expected_flow = flow;
    expected_flow.ip_id = static_cast<uint16_t>(flow.ip_id + i);
    const bool last = i + 1 == split.segments.size();
    if (!last) expected_flow.tcp_flags &= static_cast<uint8_t>(~0x09);  // FIN, PSH only at the end.
    if (i > 0) expected_flow.tcp_flags &= static_cast<uint8_t>(~0x80);  // CWR only at the start.
    // The segment must be exactly the packet a sender of segments would have
    // built: lengths, IDs, sequence numbers, flags, payload and checksums.
    EXPECT_EQ(split.segments[i], MakePacket(expected_flow, payload, offset)) << "segment " << i;
    EXPECT_TRUE(ChecksumsRight(split.segments[i])) << "segment " << i;
  }
}

TEST(GsoTest, SplitsIpv4TcpWithOptionsAndAShortLastSegment) {
  Flow flow;
  flow.tcp_options = 12;
  flow.tcp_flags = 0x10 | 0x08 | 0x01 | 0x80;  // ACK PSH FIN CWR.
  const Split split = SegmentStream(flow, 2500, 1000);
  ExpectSegmentsOf(flow, split, 2500, 1000);
}

TEST(GsoTest, JudgesASuperPacketFromItsHeadAndSizeAsFromAllOfIt) {
  Flow flow;
  flow.tcp_options = 40;  // A 60-byte TCP header behind a 20-byte IPv4 one.
  const std::vector<uint8_t> packet = MakePacket(flow, 30000);
  const Gso gso{GsoKind::kTcp, 1400};
  SuperPacketLayout whole;
  SuperPacketLayout head;
  ASSERT_EQ(ParseSuperPacket(packet, gso, &whole), GsoVerdict::kOk);
  ASSERT_EQ(ParseSuperPacketHead(std::span(packet).first(73), packet.size(), gso, &head), GsoVerdict::kOk);
  EXPECT_EQ(head.headers_length, whole.headers_length);
  EXPECT_EQ(head.segments, whole.segments);
  EXPECT_EQ(head.payload_length, whole.payload_length);
  // The size must be the one the IP header gives; a head without the TCP
  // header's length field cannot be judged good.
  EXPECT_EQ(ParseSuperPacketHead(std::span(packet).first(73), packet.size() - 1, gso, &head), GsoVerdict::kBadIpHeader);
  EXPECT_EQ(ParseSuperPacketHead(std::span(packet).first(32), packet.size(), gso, &head),
            GsoVerdict::kBadTransportHeader);
  Flow v6;
  v6.ip_version = 6;
  const std::vector<uint8_t> packet6 = MakePacket(v6, 20000);
  ASSERT_EQ(ParseSuperPacketHead(std::span(packet6).first(53), packet6.size(), gso, &head), GsoVerdict::kOk);
  EXPECT_EQ(head.payload_length, packet6.size() - 60);
}

TEST(GsoTest, SplitsIpv6Tcp) {
  Flow flow;
  flow.ip_version = 6;
  flow.tcp_flags = 0x18;
  const Split split = SegmentStream(flow, 64000, 1428);
  ExpectSegmentsOf(flow, split, 64000, 1428);
}

TEST(GsoTest, SplitsUdpIntoDatagramsWithTheirOwnLengths) {
  for (int version : {4, 6}) {
    Flow flow;
    flow.ip_version = version;
    flow.protocol = 17;
    const Split split = SegmentStream(flow, 3001, 1200);
    ExpectSegmentsOf(flow, split, 3001, 1200);
  }
}

TEST(GsoTest, APacketThatNeedsNoSplitComesOutWholeWithItsChecksum) {
  Flow flow;
  flow.tcp_flags = 0x18;
  const Split split = SegmentStream(flow, 800, 1400);
  ASSERT_EQ(split.segments.size(), 1u);
  EXPECT_EQ(split.segments[0], split.super_packet);
}

TEST(GsoTest, SplitsTheLargestIpv4SuperPacket) {
  Flow flow;
  const std::size_t payload = 65535 - 40;
  const Split split = SegmentStream(flow, payload, 1448);
  ExpectSegmentsOf(flow, split, payload, 1448);
}

TEST(GsoTest, RefusesMetadataItCannotTrust) {
  Flow flow;
  std::vector<uint8_t> packet = MakePacket(flow, 4000);
  SuperPacketLayout layout;
  const Gso tcp{GsoKind::kTcp, 1000};
  EXPECT_EQ(ParseSuperPacket(packet, Gso{GsoKind::kTcp, 0}, &layout), GsoVerdict::kZeroSegmentSize);
  EXPECT_EQ(ParseSuperPacket(packet, Gso{static_cast<GsoKind>(9), 1000}, &layout), GsoVerdict::kUnknownKind);
  EXPECT_EQ(ParseSuperPacket(packet, Gso{GsoKind::kUdp, 1000}, &layout), GsoVerdict::kWrongProtocol);
  EXPECT_EQ(ParseSuperPacket(packet, Gso{GsoKind::kTcp, 1}, &layout), GsoVerdict::kTooManySegments);
  EXPECT_EQ(ParseSuperPacket(packet, Gso{GsoKind::kTcp, 65500}, &layout), GsoVerdict::kOversize);

  std::vector<uint8_t> header_past_end = MakePacket(flow, 0);
  header_past_end[32] = 0xf0;  // TCP data offset 60 bytes in a 40-byte packet.
  EXPECT_EQ(ParseSuperPacket(header_past_end, tcp, &layout), GsoVerdict::kBadTransportHeader);
  std::vector<uint8_t> ip_header_past_end = packet;
  ip_header_past_end.resize(24);
  Store16(&ip_header_past_end[2], 24);
  ip_header_past_end[0] = 0x4f;  // 60-byte IP header.
  EXPECT_EQ(ParseSuperPacket(ip_header_past_end, tcp, &layout), GsoVerdict::kBadIpHeader);
  std::vector<uint8_t> length_lies = packet;
  Store16(&length_lies[2], 100);
  EXPECT_EQ(ParseSuperPacket(length_lies, tcp, &layout), GsoVerdict::kBadIpHeader);
  std::vector<uint8_t> fragment = packet;
  fragment[6] |= 0x20;
  EXPECT_EQ(ParseSuperPacket(fragment, tcp, &layout), GsoVerdict::kFragment);
  std::vector<uint8_t> too_long(kMaxSuperPacket + 1, 0x60);
  EXPECT_EQ(ParseSuperPacket(too_long, tcp, &layout), GsoVerdict::kOversize);
  EXPECT_EQ(ParseSuperPacket({}, tcp, &layout), GsoVerdict::kBadIpHeader);
  std::vector<uint8_t> not_ip = packet;
  not_ip[0] = 0x55;
  EXPECT_EQ(ParseSuperPacket(not_ip, tcp, &layout), GsoVerdict::kBadIpHeader);
  EXPECT_EQ(ParseSuperPacket(packet, tcp, &layout), GsoVerdict::kOk);
  EXPECT_EQ(layout.segments, 4u);
  EXPECT_EQ(layout.headers_length, 40);
}

TEST(GsoTest, PreparedHeadersCarryThePseudoHeaderSumTheKernelCompletes) {
  for (int version : {4, 6}) {
    Flow flow;
    flow.ip_version = version;
    std::vector<uint8_t> packet = MakePacket(flow, 5000);
    const Gso gso{GsoKind::kTcp, 1400};
    SuperPacketLayout layout;
    ASSERT_EQ(ParseSuperPacket(packet, gso, &layout), GsoVerdict::kOk);
    std::vector<uint8_t> headers(packet.begin(), packet.begin() + layout.headers_length);
    headers[version == 4 ? 10 : 0] ^= version == 4 ? 0xff : 0;  // A stale IPv4 checksum gets fixed.
    PrepareHeadersForOffload(headers, layout, packet.size());
    std::copy(headers.begin(), headers.end(), packet.begin());
    // What the kernel (or a NIC) does with CHECKSUM_PARTIAL gives a right packet.
    ASSERT_TRUE(CompletePartialChecksum(packet, layout.ip_header_length, layout.checksum_offset));
    EXPECT_TRUE(ChecksumsRight(packet)) << "IPv" << version;
  }
}

}  // namespace
}  // namespace mnedc::packet
