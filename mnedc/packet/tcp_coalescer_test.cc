#include "mnedc/packet/tcp_coalescer.h"

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
using Offer = TcpCoalescer::Offer;

std::vector<uint8_t> Taken(TcpCoalescer& coalescer, Gso* gso) {
  const auto held = coalescer.Take(gso);
  return {held.begin(), held.end()};
}

TEST(TcpCoalescerTest, JoinsARunIntoTheSuperPacketItWasCutFrom) {
  for (int version : {4, 6}) {
    Flow flow;
    flow.ip_version = version;
    flow.tcp_options = 12;
    TcpCoalescer coalescer;
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

TEST(TcpCoalescerTest, ALoneSegmentComesBackUnchanged) {
  TcpCoalescer coalescer;
  const std::vector<uint8_t> packet = MakePacket(Flow{}, 1000);
  ASSERT_EQ(coalescer.Add(packet), Offer::kHeld);
  Gso gso{GsoKind::kTcp, 5};
  EXPECT_EQ(Taken(coalescer, &gso), packet);
  EXPECT_FALSE(gso.super());
}

TEST(TcpCoalescerTest, EndsTheRunAtAnythingThatDoesNotContinueIt) {
  const Flow flow;
  auto started = [&] {
    auto coalescer = std::make_unique<TcpCoalescer>();
    EXPECT_EQ(coalescer->Add(MakePacket(flow, 1000)), Offer::kHeld);
    return coalescer;
  };
  Flow other_port = flow;
  other_port.source_port = 1;
  Flow other_ack = flow;
  other_ack.ack = 1;
  Flow syn = flow;
  syn.tcp_flags = 0x12;
  Flow other_options = flow;
  other_options.tcp_options = 4;
  std::vector<uint8_t> bad_checksum = MakePacket(flow, 1000, 1000);
  bad_checksum.back() ^= 1;
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

TEST(TcpCoalescerTest, WhatCannotStartARunIsWrittenAsItIs) {
  TcpCoalescer coalescer;
  Flow udp;
  udp.protocol = 17;
  Flow push;
  push.tcp_flags = 0x18;
  std::vector<uint8_t> bad_checksum = MakePacket(Flow{}, 100);
  bad_checksum.back() ^= 1;
  EXPECT_EQ(coalescer.Add(MakePacket(udp, 100)), Offer::kNotCandidate);
  EXPECT_EQ(coalescer.Add(MakePacket(push, 100)), Offer::kNotCandidate);
  EXPECT_EQ(coalescer.Add(MakePacket(Flow{}, 0)), Offer::kNotCandidate);
  EXPECT_EQ(coalescer.Add(bad_checksum), Offer::kNotCandidate);
  EXPECT_EQ(coalescer.Add(std::vector<uint8_t>{0x45, 0, 0}), Offer::kNotCandidate);
  EXPECT_FALSE(coalescer.holding());
}

TEST(TcpCoalescerTest, StopsBeforeIpv4sLengthLimit) {
  TcpCoalescer coalescer;
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
