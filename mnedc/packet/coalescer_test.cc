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
  Flow sack;
  sack.tcp_option_bytes = {1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2};
  EXPECT_EQ(coalescer.Add(MakePacket(sack, 0)), Offer::kNotCandidate) << "a pure ACK with SACK";
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

// A pure ACK of the flow TCP bulk sends back: `ack`, timestamps (value, echo).
std::vector<uint8_t> Ack(uint32_t ack, uint32_t value = 100, uint32_t echo = 50, int ip_version = 4) {
  Flow flow;
  flow.ip_version = ip_version;
  flow.ack = ack;
  flow.tcp_option_bytes = testing::TimestampOptions(value, echo);
  return MakePacket(flow, 0);
}

TEST(CoalescerTest, ANewerPureAckTakesTheHeldOnesPlace) {
  for (int version : {4, 6}) {
    Coalescer coalescer(true);
    EXPECT_EQ(coalescer.Add(Ack(1000, 100, 50, version)), Offer::kHeld);
    EXPECT_EQ(coalescer.Add(Ack(2000, 101, 51, version)), Offer::kReplacedHeld);
    EXPECT_EQ(coalescer.Add(Ack(66000, 101, 51, version)), Offer::kReplacedHeld) << "same timestamps";
    Gso gso{GsoKind::kTcp, 5};
    EXPECT_EQ(Taken(coalescer, &gso), Ack(66000, 101, 51, version)) << "IPv" << version;
    EXPECT_FALSE(gso.super());
    EXPECT_FALSE(coalescer.holding());
    // Without timestamps too, and across the wrap of the sequence space.
    Flow plain;
    plain.ip_version = version;
    plain.ack = 0xfffffff0u;
    EXPECT_EQ(coalescer.Add(MakePacket(plain, 0)), Offer::kHeld);
    plain.ack = 0x10;
    EXPECT_EQ(coalescer.Add(MakePacket(plain, 0)), Offer::kReplacedHeld);
    EXPECT_EQ(Taken(coalescer, &gso), MakePacket(plain, 0));
  }
}

TEST(CoalescerTest, KeepsEveryAckThatSaysSomethingTheNextDoesNot) {
  const std::vector<uint8_t> held = Ack(1000);
  auto with = [](auto change) {
    Flow flow;
    flow.ack = 2000;
    flow.tcp_option_bytes = testing::TimestampOptions(100, 50);
    change(flow);
    return MakePacket(flow, 0);
  };
  std::vector<uint8_t> bad_checksum = Ack(2000);
  bad_checksum[36] ^= 1;  // The TCP checksum.
  std::vector<uint8_t> bad_ip_checksum = Ack(2000);
  bad_ip_checksum[10] ^= 1;
  std::vector<uint8_t> ecn = Ack(2000);
  ecn[1] = 0x02;  // ECT(0) where the held one is Not-ECT: the IP fields differ.
  ecn[10] = ecn[11] = 0;
  packet::SetIpv4HeaderChecksum(ecn.data(), 20);
  const std::vector<std::pair<const char*, std::vector<uint8_t>>> keepers = {
      {"a duplicate ACK (fast retransmit counts them)", Ack(1000)},
      {"an older ACK", Ack(999)},
      {"an ACK from before the wrap", Ack(1000 - 0x80000000u)},
      {"an older timestamp", Ack(2000, 99, 50)},
      {"an older echoed timestamp", Ack(2000, 100, 49)},
      {"SACK", with([](Flow& f) { f.tcp_option_bytes = {1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 1, 8, 10, 0, 0, 0, 100, 0, 0, 0, 50}; })},
      {"no timestamps", with([](Flow& f) { f.tcp_option_bytes.clear(); })},
      {"another sequence number", with([](Flow& f) { f.sequence = 1001; })},
      {"another port", with([](Flow& f) { f.source_port = 1; })},
      {"another address", with([](Flow& f) { f.source4 = 0x0a000009; })},
      {"IPv6", Ack(2000, 100, 50, 6)},
      {"ECE", with([](Flow& f) { f.tcp_flags = 0x50; })},
      {"CWR", with([](Flow& f) { f.tcp_flags = 0x90; })},
      {"PSH", with([](Flow& f) { f.tcp_flags = 0x18; })},
      {"FIN", with([](Flow& f) { f.tcp_flags = 0x11; })},
      {"RST", with([](Flow& f) { f.tcp_flags = 0x14; })},
      {"data", MakePacket(Flow{.ack = 2000, .tcp_option_bytes = testing::TimestampOptions(100, 50)}, 100)},
      {"a wrong TCP checksum", bad_checksum},
      {"a wrong IP header checksum", bad_ip_checksum},
      {"another ECN codepoint", ecn},
      {"UDP", MakePacket(Flow{.protocol = 17}, 100)},
  };
  for (const auto& [what, packet] : keepers) {
    Coalescer coalescer(true);
    ASSERT_EQ(coalescer.Add(held), Offer::kHeld);
    EXPECT_EQ(coalescer.Add(packet), Offer::kTakeHeldFirst) << what;
    Gso gso;
    EXPECT_EQ(Taken(coalescer, &gso), held) << what;
  }
}

TEST(CoalescerTest, DuplicateAcksAllGoThroughAndARunOfDataIsNotCutShortByOne) {
  // Three duplicates: each is written (the writer takes the held one, then
  // offers the packet again).
  Coalescer coalescer(true);
  int written = 0;
  for (int i = 0; i < 3; ++i) {
    Offer offer = coalescer.Add(Ack(1000));
    if (offer == Offer::kTakeHeldFirst) {
      Gso gso;
      EXPECT_EQ(Taken(coalescer, &gso), Ack(1000));
      ++written;
      offer = coalescer.Add(Ack(1000));
    }
    EXPECT_EQ(offer, Offer::kHeld);
  }
  EXPECT_EQ(written, 2);
  EXPECT_TRUE(coalescer.holding());
  // Data behind a held ACK, and an ACK behind held data, end the run.
  EXPECT_EQ(coalescer.Add(MakePacket(Flow{}, 1000)), Offer::kTakeHeldFirst);
  Gso gso;
  Taken(coalescer, &gso);
  EXPECT_EQ(coalescer.Add(MakePacket(Flow{}, 1000)), Offer::kHeld);
  EXPECT_EQ(coalescer.Add(Ack(2000)), Offer::kTakeHeldFirst);
}

}  // namespace
}  // namespace mnedc::packet
