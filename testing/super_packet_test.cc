// Super-packets through a real relay and real clients on 127.0.0.1, in every
// mix of who takes them: crossing whole between members that do, cut into
// exact segments for one that does not (an older client), for a relay that
// does not, for the relay's own TUN without offloads; fanned out in the form
// each member takes; and held to the same anti-spoofing as any packet.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>

#include "mnedc/packet/gso.h"
#include "mnedc/packet/test_packets.h"
#include "testing/fake_packet_port.h"
#include "testing/loopback_net.h"

namespace mnedc::testing {
namespace {
using packet::Gso;
using packet::GsoKind;
using packet::testing::ChecksumsRight;
using packet::testing::Flow;
using packet::testing::MakePacket;

constexpr Gso kTcp1400{GsoKind::kTcp, 1400};

auto WithSuperPackets(bool on) {
  return [on](client::ClientOptions& options) { options.super_packets = on; };
}

Flow FlowBetween(const Node& from, uint32_t to) {
  Flow flow;
  flow.source4 = from.address();
  flow.destination4 = to;
  flow.tcp_flags = 0x18;
  return flow;
}

// The segments a sender without offloads would have sent instead.
std::vector<std::vector<uint8_t>> SegmentsOf(const std::vector<uint8_t>& super_packet, Gso gso) {
  packet::SuperPacketLayout layout;
  EXPECT_EQ(packet::ParseSuperPacket(super_packet, gso, &layout), packet::GsoVerdict::kOk);
  std::vector<std::vector<uint8_t>> segments;
  std::vector<uint8_t> out(65536);
  for (std::size_t i = 0; i < layout.segments; ++i) {
    const std::size_t n = packet::BuildSegment(super_packet, gso, layout, i, out);
    segments.emplace_back(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_TRUE(ChecksumsRight(segments.back()));
  }
  return segments;
}

class SuperPacketTest : public ::testing::Test {
 protected:
  void Start(relay::RelayOptions options = {}) {
    net_.StartRelay(options);
    a_ = &net_.AddClient("a", WithSuperPackets(true));
    b_ = &net_.AddClient("b", WithSuperPackets(true));
    old_ = &net_.AddClient("old", WithSuperPackets(false));
    ASSERT_TRUE(net_.RunUntil([&] { return a_->client->joined() && b_->client->joined() && old_->client->joined(); }));
  }
  LoopbackNet net_;
  Node* a_ = nullptr;
  Node* b_ = nullptr;
  Node* old_ = nullptr;
};

TEST_F(SuperPacketTest, CrossesTheRelayWholeBetweenMembersThatTakeThem) {
  Start();
  EXPECT_TRUE(a_->client->lease()->super_packets);
  EXPECT_FALSE(old_->client->lease()->super_packets);
  const auto super_packet = MakePacket(FlowBetween(*a_, b_->address()), 60000);
  ASSERT_TRUE(a_->client->SendPacket(super_packet, kTcp1400));
  ASSERT_TRUE(net_.RunUntil([&] { return !b_->received.empty(); }));
  net_.RunFor(std::chrono::milliseconds(50));
  ASSERT_EQ(b_->received.size(), 1u);
  EXPECT_EQ(b_->received[0], super_packet);
  EXPECT_EQ(b_->received_offloads[0], kTcp1400);
  EXPECT_EQ(net_.relay().counters().packets_forwarded, 1u);
}

TEST_F(SuperPacketTest, AnOlderMemberGetsTheExactSegments) {
  Start();
  const auto super_packet = MakePacket(FlowBetween(*a_, old_->address()), 10000);
  ASSERT_TRUE(a_->client->SendPacket(super_packet, kTcp1400));
  const auto expected = SegmentsOf(super_packet, kTcp1400);
  ASSERT_TRUE(net_.RunUntil([&] { return old_->received.size() >= expected.size(); }));
  EXPECT_EQ(old_->received, expected);
  // And the older member's ordinary packets reach a newer one as they are.
  ASSERT_TRUE(old_->client->SendPacket(MakePacket(FlowBetween(*old_, a_->address()), 100)));
  ASSERT_TRUE(net_.RunUntil([&] { return !a_->received.empty(); }));
  EXPECT_FALSE(a_->received_offloads[0].super());
}

TEST_F(SuperPacketTest, ARelayWithoutThemGetsSegmentsFromTheSender) {
  relay::RelayOptions options;
  options.super_packets = false;
  Start(options);
  EXPECT_FALSE(a_->client->lease()->super_packets);
  const auto super_packet = MakePacket(FlowBetween(*a_, b_->address()), 5000);
  ASSERT_TRUE(a_->client->SendPacket(super_packet, kTcp1400));
  const auto expected = SegmentsOf(super_packet, kTcp1400);
  ASSERT_TRUE(net_.RunUntil([&] { return b_->received.size() >= expected.size(); }));
  EXPECT_EQ(b_->received, expected);
  for (const Gso& gso : b_->received_offloads) EXPECT_FALSE(gso.super());
}

TEST_F(SuperPacketTest, BroadcastGoesOutInTheFormEachMemberTakes) {
  Start();
  Flow flow = FlowBetween(*a_, 0x0a0000ff);  // 10.0.0.255, the /24's broadcast.
  flow.protocol = 17;
  const auto super_packet = MakePacket(flow, 3000);
  const Gso udp{GsoKind::kUdp, 1200};
  ASSERT_TRUE(a_->client->SendPacket(super_packet, udp));
  const auto expected = SegmentsOf(super_packet, udp);
  ASSERT_TRUE(net_.RunUntil([&] { return !b_->received.empty() && old_->received.size() >= expected.size(); }));
  EXPECT_EQ(b_->received[0], super_packet);
  EXPECT_EQ(b_->received_offloads[0], udp);
  EXPECT_EQ(old_->received, expected);
}

TEST_F(SuperPacketTest, ASpoofedSuperPacketIsDroppedAndCounted) {
  Start();
  Flow flow = FlowBetween(*a_, b_->address());
  flow.source4 = old_->address();  // a pretends to be old.
  ASSERT_TRUE(a_->client->SendPacket(MakePacket(flow, 20000), kTcp1400));
  ASSERT_TRUE(net_.RunUntil(
      [&] { return net_.relay().counters().drop(relay::DropReason::kSpoofedSource) == 1; }));
  net_.RunFor(std::chrono::milliseconds(50));
  EXPECT_TRUE(b_->received.empty());
}

TEST_F(SuperPacketTest, TheRelaysOwnTunTakesThemWholeOrCut) {
  Start();
  FakePacketPort relay_tun(net_.io().get_executor(), "mnedc-relay");
  bool served = false;
  boost::asio::co_spawn(net_.io(), net_.relay().ServeTun(relay_tun),
                        [&](std::exception_ptr, boost::system::error_code) { served = true; });
  const uint32_t relay_address = 0x0a000001;
  const auto to_relay = MakePacket(FlowBetween(*a_, relay_address), 4000);
  // Without offloads, as the fake port is by default: segments.
  ASSERT_TRUE(a_->client->SendPacket(to_relay, kTcp1400));
  const auto expected = SegmentsOf(to_relay, kTcp1400);
  ASSERT_TRUE(net_.RunUntil([&] { return relay_tun.written().size() >= expected.size(); }));
  EXPECT_EQ(relay_tun.written(), expected);
  EXPECT_GE(relay_tun.flushes(), 1);  // Each batch the relay read ends with a flush.
  // With offloads: whole.
  relay_tun.set_takes_super_packets(true);
  ASSERT_TRUE(a_->client->SendPacket(to_relay, kTcp1400));
  ASSERT_TRUE(net_.RunUntil([&] { return relay_tun.written().size() == expected.size() + 1; }));
  EXPECT_EQ(relay_tun.written().back(), to_relay);
  EXPECT_EQ(relay_tun.written_offloads().back(), kTcp1400);
  // What the relay's TUN reads goes out whole to b.
  Flow flow = FlowBetween(*a_, b_->address());
  flow.source4 = relay_address;
  relay_tun.Inject(MakePacket(flow, 9000), kTcp1400);
  ASSERT_TRUE(net_.RunUntil([&] { return !b_->received.empty(); }));
  EXPECT_EQ(b_->received[0], MakePacket(flow, 9000));
  EXPECT_EQ(b_->received_offloads[0], kTcp1400);
  relay_tun.Close();  // The relay lets go of it before it is destroyed.
  ASSERT_TRUE(net_.RunUntil([&] { return served; }));
}

}  // namespace
}  // namespace mnedc::testing
