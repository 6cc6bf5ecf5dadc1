#include "mnedc/packet/coalescer.h"

#include <gtest/gtest.h>

#include <vector>

#include "mnedc/packet/checksum.h"
#include "mnedc/packet/gso.h"
#include "mnedc/packet/test_packets.h"

namespace mnedc::packet {
namespace {
using testing::ChecksumsRight;
using testing::Flow;
using testing::MakePacket;
using Offer = Coalescer::Offer;

std::vector<uint8_t> Taken(Coalescer& coalescer, Gso* gso) {
  const auto held = coalescer.Take(gso);
  return {held.begin(), held.end()};
}

TEST(CoalescerTest, JoinsARunIntoTheSuperPacketItWasCutFrom) {
  for (int version : {4, 6}) {
    Flow flow;
    flow.ip_version = version;
    flow.tcp_options = 12;
    Coalescer coalescer(true);
    for (int i = 0; i < 5; ++i) {
      Flow segment = flow;
      if (i == 4) segment.tcp_flags |= 0x08;  // PSH on the last, as a sender sets it.
      EXPECT_EQ(coalescer.Add(MakePacket(segment, i == 4 ? 300 : 1000, std::size_t(i) * 1000)), Offer::kHeld);
    }
    Gso gso;
    std::vector<uint8_t> joined = Taken(coalescer, &gso);
    EXPECT_FALSE(coalescer.holding());
    EXPECT_EQ(gso, (Gso{GsoKind::kTcp, 1000}));
    // The super-packet a sender's kernel would have made of the same stream
    // (IP ID of the first; the checksum field is not meaningful in one).
    Flow whole = flow;
    whole.tcp_flags |= 0x08;
    std::vector<uint8_t> expected = MakePacket(whole, 4300);
    const std::size_t checksum_at = (version == 4 ? 20 : 40) + 16;
    joined[checksum_at] = expected[checksum_at];
    joined[checksum_at + 1] = expected[checksum_at + 1];
    EXPECT_EQ(joined, expected) << "IPv" << version;
    SuperPacketLayout layout;
    EXPECT_EQ(ParseSuperPacket(joined, gso, &layout), GsoVerdict::kOk);
    EXPECT_EQ(layout.segments, 5u);
  }
}

TEST(CoalescerTest, ALoneSegmentComesBackUnchanged) {
  Coalescer coalescer(true);
  const std::vector<uint8_t> packet = MakePacket(Flow{}, 1000);
  ASSERT_EQ(coalescer.Add(packet), Offer::kHeld);
  Gso gso{GsoKind::kTcp, 5};
  EXPECT_EQ(Taken(coalescer, &gso), packet);
  EXPECT_FALSE(gso.super());
}

// The packet after MakePacket(flow, 1000), its last byte flipped after its checksum was made.
std::vector<uint8_t> WithBadChecksum(const Flow& flow) {
  std::vector<uint8_t> packet = MakePacket(flow, 1000, 1000);
  packet.back() ^= 1;
  return packet;
}

// A coalescer holding one packet of `flow` (1000 bytes of payload).
std::unique_ptr<Coalescer> Started(const Flow& flow) {
  auto coalescer = std::make_unique<Coalescer>(true);
  EXPECT_EQ(coalescer->Add(MakePacket(flow, 1000)), Offer::kHeld);
  return coalescer;
}

TEST(CoalescerTest, EndsTheRunAtAnythingThatDoesNotContinueIt) {
  const Flow flow;
  auto started = [&] { return Started(flow); };
  Flow other_port = flow;
  other_port.source_port = 1;
  Flow other_ack = flow;
  other_ack.ack = 1;
  Flow syn = flow;
  syn.tcp_flags = 0x12;
  Flow other_options = flow;
  other_options.tcp_options = 4;
  const std::vector<uint8_t> bad_checksum = WithBadChecksum(flow);
  const std::vector<std::vector<uint8_t>> breakers = {
      MakePacket(flow, 1000, 2000),   // A gap in the sequence.
      MakePacket(flow, 1000, 0),      // A retransmission.
      MakePacket(flow, 1200, 1000),   // Larger than the first.
      MakePacket(other_port, 1000, 1000),
      MakePacket(other_ack, 1000, 1000),
      MakePacket(syn, 1000, 1000),
      MakePacket(other_options, 1000, 1000),
      MakePacket(flow, 0, 1000),      // A pure ACK.
      bad_checksum,
  };
  for (std::size_t i = 0; i < breakers.size(); ++i) {
    auto coalescer = started();
    EXPECT_EQ(coalescer->Add(breakers[i]), Offer::kTakeHeldFirst) << "breaker " << i;
  }
  // After a shorter segment, or one with PSH, nothing more joins.
  auto coalescer = started();
  EXPECT_EQ(coalescer->Add(MakePacket(flow, 500, 1000)), Offer::kHeld);
  EXPECT_EQ(coalescer->Add(MakePacket(flow, 500, 1500)), Offer::kTakeHeldFirst);
  Flow push = flow;
  push.tcp_flags = 0x18;
  coalescer = started();
  EXPECT_EQ(coalescer->Add(MakePacket(push, 1000, 1000)), Offer::kHeld);
  EXPECT_EQ(coalescer->Add(MakePacket(flow, 1000, 2000)), Offer::kTakeHeldFirst);
}

TEST(CoalescerTest, WhatCannotStartARunIsWrittenAsItIs) {
  Coalescer coalescer(true);
  Flow udp;
  udp.protocol = 17;
  Coalescer no_udp(false);  // A TUN that refused USO.
  EXPECT_EQ(no_udp.Add(MakePacket(udp, 100)), Offer::kNotCandidate);
  std::vector<uint8_t> no_checksum = MakePacket(udp, 100);
  no_checksum[26] = no_checksum[27] = 0;  // IPv4 UDP without a checksum.
  Flow push;
  push.tcp_flags = 0x18;
  std::vector<uint8_t> bad_checksum = MakePacket(Flow{}, 100);
  bad_checksum.back() ^= 1;
  EXPECT_EQ(coalescer.Add(no_checksum), Offer::kNotCandidate);
  EXPECT_EQ(coalescer.Add(MakePacket(udp, 0)), Offer::kNotCandidate) << "no payload";
  EXPECT_EQ(coalescer.Add(MakePacket(push, 100)), Offer::kNotCandidate);
  EXPECT_EQ(coalescer.Add(MakePacket(Flow{}, 0)), Offer::kNotCandidate);
  EXPECT_EQ(coalescer.Add(bad_checksum), Offer::kNotCandidate);
  EXPECT_EQ(coalescer.Add(std::vector<uint8_t>{0x45, 0, 0}), Offer::kNotCandidate);
  EXPECT_FALSE(coalescer.holding());
}

TEST(CoalescerTest, JoinsUdpDatagramsIntoTheSuperPacketTheKernelCutsBackIntoThem) {
  for (int version : {4, 6}) {
    Flow flow;
    flow.ip_version = version;
    flow.protocol = 17;
    Coalescer coalescer(true);
    std::vector<std::vector<uint8_t>> sent;
    for (int i = 0; i < 5; ++i) {
      sent.push_back(MakePacket(flow, i == 4 ? 300 : 1200, std::size_t(i) * 1200));
      EXPECT_EQ(coalescer.Add(sent.back()), Offer::kHeld);
    }
    Gso gso;
    std::vector<uint8_t> joined = Taken(coalescer, &gso);
    EXPECT_EQ(gso, (Gso{GsoKind::kUdp, 1200}));
    // The datagram of all five payloads, its IP and UDP lengths covering
    // them (the checksum field is not meaningful in a super-packet).
    std::vector<uint8_t> expected = MakePacket(flow, 5100);
    const std::size_t ip = version == 4 ? 20 : 40;
    joined[ip + 6] = expected[ip + 6];
    joined[ip + 7] = expected[ip + 7];
    EXPECT_EQ(joined, expected) << "IPv" << version;
    // Cut as the kernel cuts it: the same datagrams, every checksum right.
    std::vector<uint8_t> scratch(65536);
    std::size_t index = 0;
    ASSERT_TRUE(ForEachSegment(joined, gso, scratch, [&](std::span<const uint8_t> segment) {
      ASSERT_LT(index, sent.size());
      const std::vector<uint8_t> got(segment.begin(), segment.end());
      EXPECT_TRUE(ChecksumsRight(got)) << index;
      EXPECT_EQ(std::vector<uint8_t>(got.begin() + ip, got.end()),
                std::vector<uint8_t>(sent[index].begin() + ip, sent[index].end()))
          << "datagram " << index << ", IPv" << version;
      ++index;
    }));
    EXPECT_EQ(index, sent.size());
  }
}

TEST(CoalescerTest, EndsAUdpRunAtAnythingThatDoesNotContinueIt) {
  Flow flow;
  flow.protocol = 17;
  auto started = [&] { return Started(flow); };
  Flow other_port = flow;
  other_port.destination_port = 1;
  Flow other_address = flow;
  other_address.destination4 = 0x0a000009;
  const std::vector<uint8_t> bad_checksum = WithBadChecksum(flow);
  const std::vector<std::vector<uint8_t>> breakers = {
      MakePacket(other_port, 1000),
      MakePacket(other_address, 1000),
      MakePacket(flow, 1001),  // Larger than the first.
      bad_checksum,
      MakePacket(Flow{}, 1000),  // TCP.
  };
  for (std::size_t i = 0; i < breakers.size(); ++i) {
    auto coalescer = started();
    EXPECT_EQ(coalescer->Add(breakers[i]), Offer::kTakeHeldFirst) << i;
  }
  auto coalescer = started();
  EXPECT_EQ(coalescer->Add(MakePacket(flow, 500)), Offer::kHeld);
  EXPECT_EQ(coalescer->Add(MakePacket(flow, 500)), Offer::kTakeHeldFirst) << "after a shorter one";
  // A TCP run is ended by a UDP datagram of the same addresses too.
  Coalescer tcp(true);
  ASSERT_EQ(tcp.Add(MakePacket(Flow{}, 1000)), Offer::kHeld);
  EXPECT_EQ(tcp.Add(MakePacket(flow, 1000)), Offer::kTakeHeldFirst);
  // At most 64 datagrams a run (what every kernel with USO cuts).
  Coalescer many(true);
  int held = 0;
  while (many.Add(MakePacket(flow, 100)) == Offer::kHeld) ++held;
  EXPECT_EQ(held, 64);
}

TEST(CoalescerTest, StopsBeforeIpv4sLengthLimit) {
  Coalescer coalescer(true);
  const Flow flow;
  std::size_t offset = 0;
  int held = 0;
  for (;; offset += 1400) {
    const Offer offer = coalescer.Add(MakePacket(flow, 1400, offset));
    if (offer != Offer::kHeld) break;
    ++held;
  }
  Gso gso;
  const auto joined = Taken(coalescer, &gso);
  EXPECT_LE(joined.size(), 65535u);
  EXPECT_EQ(held, (65535 - 40) / 1400);
}

}  // namespace
}  // namespace mnedc::packet
