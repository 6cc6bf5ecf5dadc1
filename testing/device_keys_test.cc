// Device keys through a real relay and real clients: the keys travel in the
// join and in peer announcements, the relay binds each device ID to the first
// key it joins with, the operator's tokens file binds it instead, and a
// device that presents another key (or none) under a bound ID is refused.
#include <gtest/gtest.h>

#include <boost/asio/write.hpp>

#include "mnedc/base/ipv4.h"
#include "mnedc/packet/test_packets.h"
#include "mnedc/protocol/frame.h"
#include "mnedc/seal/keys.h"
#include "testing/ip_packets.h"
#include "testing/loopback_net.h"

namespace mnedc::testing {
namespace {
using namespace std::chrono_literals;

seal::KeyPair NewKey() {
  seal::KeyPair key;
  EXPECT_TRUE(seal::KeyPair::Generate(&key));
  return key;
}

auto WithKey(const seal::KeyPair& key) {
  return [key](client::ClientOptions& options) { options.device_key = key; };
}

class DeviceKeysTest : public ::testing::Test {
 protected:
  bool FailsWith(Node& node, const std::string& words) {
    return net_.RunUntil([&] { return node.client->last_error().find(words) != std::string::npos; }, 5s);
  }
  LoopbackNet net_;
};

TEST_F(DeviceKeysTest, KeysReachThePeersAndASessionKeyIsNewEachRun) {
  net_.StartRelay();
  const seal::KeyPair a_key = NewKey(), b_key = NewKey();
  Node& a = net_.AddClient("a", WithKey(a_key));
  Node& b = net_.AddClient("b", WithKey(b_key));
  Node& old = net_.AddClient("old");  // An older client: no keys.
  ASSERT_TRUE(net_.RunUntil([&] { return b.client->peers().size() == 2 && a.client->peers().size() == 2; }));
  const auto a_at_b = b.client->peers().Find("a");
  ASSERT_TRUE(a_at_b && a_at_b->keys);
  EXPECT_EQ(a_at_b->keys->public_key, a_key.public_key());
  ASSERT_TRUE(a.client->session_key());
  EXPECT_EQ(a_at_b->keys->session_key, a.client->session_key()->public_key());
  EXPECT_NE(a_at_b->keys->session_key, a_key.public_key());
  EXPECT_FALSE(b.client->peers().Find("old")->keys);
  EXPECT_FALSE(old.client->session_key());
  EXPECT_EQ(net_.relay().BoundKey("a"), a_key.public_key());
  EXPECT_FALSE(net_.relay().BoundKey("old"));

  // a restarts: same device key, a new session key, which b learns.
  const seal::PublicKey first_session = a.client->session_key()->public_key();
  net_.StopClient(a);
  Node& a2 = net_.AddClient("a", WithKey(a_key));
  ASSERT_TRUE(net_.RunUntil([&] {
    const auto seen = b.client->peers().Find("a");
    return a2.client->joined() && seen && seen->keys && seen->keys->session_key != first_session;
  }));
  EXPECT_EQ(b.client->peers().Find("a")->keys->session_key, a2.client->session_key()->public_key());
}

TEST_F(DeviceKeysTest, AnIdIsBoundToItsFirstKeyUntilTheOperatorForgetsIt) {
  net_.StartRelay();
  const seal::KeyPair first = NewKey(), second = NewKey();
  Node& a = net_.AddClient("a", WithKey(first));
  ASSERT_TRUE(net_.RunUntil([&] { return a.client->joined(); }));
  net_.StopClient(a);

  Node& other = net_.AddClient("a", WithKey(second));
  EXPECT_TRUE(FailsWith(other, "UNAUTHORIZED: device a is bound to the key " + seal::ShortKey(first.public_key()) +
                                   "... on this relay, and this client holds another (" +
                                   seal::ShortKey(second.public_key()) + "...)"))
      << other.client->last_error();
  net_.StopClient(other);
  Node& none = net_.AddClient("a");
  EXPECT_TRUE(FailsWith(none, "presents none (an older version?)")) << none.client->last_error();
  net_.StopClient(none);
  EXPECT_GE(net_.relay().counters().auth_failures, 2u);
  EXPECT_EQ(net_.relay().member_count(), 0u);

  ASSERT_TRUE(net_.relay().ForgetKey("a"));
  Node& renewed = net_.AddClient("a", WithKey(second));
  ASSERT_TRUE(net_.RunUntil([&] { return renewed.client->joined(); })) << renewed.client->last_error();
  EXPECT_EQ(net_.relay().BoundKey("a"), second.public_key());
}

TEST_F(DeviceKeysTest, TheTokensFileBindsAKeyAndAReloadEnforcesIt) {
  const seal::KeyPair right = NewKey(), wrong = NewKey();
  relay::RelayOptions options;
  options.device_tokens = {{"a", "token-a"}, {"b", "token-b"}};
  net_.StartRelay(options);
  {
    relay::JoinPolicy policy;
    policy.SetDeviceTokens(options.device_tokens);
    policy.SetDeviceKeys({{"a", right.public_key()}});
    net_.relay().SetJoinPolicy(std::move(policy));
  }
  auto as = [](std::string token, const seal::KeyPair& key) {
    return [token, key](client::ClientOptions& o) {
      o.credentials = token;
      o.device_key = key;
    };
  };
  Node& impostor = net_.AddClient("a", as("token-a", wrong));
  EXPECT_TRUE(FailsWith(impostor, "UNAUTHORIZED: the tokens file binds device a to the key " +
                                      seal::ShortKey(right.public_key())))
      << impostor.client->last_error();
  net_.StopClient(impostor);
  Node& a = net_.AddClient("a", as("token-a", right));
  Node& b = net_.AddClient("b", as("token-b", wrong));
  ASSERT_TRUE(net_.RunUntil([&] { return a.client->joined() && b.client->joined(); }));

  // The operator binds b to another key and reloads: b is disconnected.
  relay::JoinPolicy policy;
  policy.SetDeviceTokens(options.device_tokens);
  policy.SetDeviceKeys({{"a", right.public_key()}, {"b", right.public_key()}});
  EXPECT_EQ(net_.relay().SetJoinPolicy(std::move(policy)), 1u);
  EXPECT_TRUE(FailsWith(b, "UNAUTHORIZED")) << b.client->last_error();
  EXPECT_TRUE(a.client->joined());
}

// Sealing end to end through the relay: between two devices with keys every
// unicast packet crosses as a SEALED frame the relay routes without opening;
// to a device without keys it goes as before.
TEST_F(DeviceKeysTest, UnicastBetweenKeyedDevicesIsSealedAndToAnOlderOneIsNot) {
  net_.StartRelay();
  Node& a = net_.AddClient("a", WithKey(NewKey()));
  Node& b = net_.AddClient("b", WithKey(NewKey()));
  Node& old = net_.AddClient("old");
  // A device with a key that seals nothing (--seal=false): its key binds, nothing is sealed to it.
  const seal::KeyPair plain_key = NewKey();
  Node& plain = net_.AddClient("plain", [&](client::ClientOptions& o) {
    o.device_key = plain_key;
    o.seal = false;
  });
  // And every one has its own lease (the relay may announce a member before
  // that member has read its Lease: its address() would still be 0).
  ASSERT_TRUE(net_.RunUntil([&] {
    return a.client->peers().size() == 3 && b.client->peers().size() == 3 && old.client->joined() &&
           plain.client->joined();
  }));
  EXPECT_TRUE(a.client->sealing()->Seals(*a.client->peers().Find("b")));
  EXPECT_FALSE(a.client->sealing()->Seals(*a.client->peers().Find("old")));
  EXPECT_FALSE(a.client->sealing()->Seals(*a.client->peers().Find("plain")));
  EXPECT_FALSE(plain.client->sealing());
  EXPECT_EQ(net_.relay().BoundKey("plain"), plain_key.public_key());
  ASSERT_TRUE(a.client->SendPacket(MakeIpv4Packet(a.address(), plain.address(), 500, 9)));
  ASSERT_TRUE(net_.RunUntil([&] { return plain.received.size() == 1; }));
  const std::vector<uint8_t> to_b = MakeIpv4Packet(a.address(), b.address(), 1200, 1);
  const std::vector<uint8_t> to_old = MakeIpv4Packet(a.address(), old.address(), 1200, 2);
  ASSERT_TRUE(a.client->SendPacket(to_b));
  ASSERT_TRUE(a.client->SendPacket(to_old));
  ASSERT_TRUE(net_.RunUntil([&] { return b.received.size() == 1 && old.received.size() == 1; }));
  EXPECT_EQ(b.received[0], to_b);
  EXPECT_EQ(old.received[0], to_old);
  EXPECT_EQ(net_.relay().counters().sealed_routed, 1u) << "only the packet to b went sealed";
  EXPECT_EQ(a.client->sealing()->counters().sealed_out, 1u);
  EXPECT_EQ(b.client->sealing()->counters().opened, 1u);
  // And back: b answers, sealed too.
  ASSERT_TRUE(b.client->SendPacket(MakeIpv4Packet(b.address(), a.address(), 300, 3)));
  ASSERT_TRUE(net_.RunUntil([&] { return a.received.size() == 1; }));
  EXPECT_EQ(net_.relay().counters().sealed_routed, 2u);
}

TEST_F(DeviceKeysTest, ASealedSuperPacketCrossesWholeOrAsSealedSegments) {
  for (const bool relay_takes_super_packets : {true, false}) {
    SCOPED_TRACE(relay_takes_super_packets ? "relay takes super-packets" : "relay takes none");
    LoopbackNet net;
    relay::RelayOptions options;
    options.super_packets = relay_takes_super_packets;
    net.StartRelay(options);
    auto keyed_offloading = [](client::ClientOptions& o) {
      seal::KeyPair key;
      ASSERT_TRUE(seal::KeyPair::Generate(&key));
      o.device_key = key;
      o.super_packets = true;
    };
    Node& a = net.AddClient("a", keyed_offloading);
    Node& b = net.AddClient("b", keyed_offloading);
    ASSERT_TRUE(net.RunUntil([&] { return a.client->peers().size() == 1 && b.client->peers().size() == 1; }));
    packet::testing::Flow flow;
    flow.source4 = a.address();
    flow.destination4 = b.address();
    const std::vector<uint8_t> super_packet = packet::testing::MakePacket(flow, 14000);
    const packet::Gso gso{packet::GsoKind::kTcp, 1400};
    ASSERT_TRUE(a.client->SendPacket(super_packet, gso));
    const std::size_t frames = relay_takes_super_packets ? 1 : 10;
    ASSERT_TRUE(net.RunUntil([&] { return b.received.size() == frames; }));
    EXPECT_EQ(net.relay().counters().sealed_routed, frames);
    if (relay_takes_super_packets) {
      EXPECT_EQ(b.received[0], super_packet);
      EXPECT_EQ(b.received_offloads[0], gso);
      // From a buffer the client may overwrite (the TUN's): sealed in place,
      // sent from there when the link is idle, copied into the queue when not.
      std::vector<std::vector<uint8_t>> owned(3, super_packet);
      for (auto& buffer : owned) ASSERT_TRUE(a.client->SendOwnedPacket(buffer, gso));
      EXPECT_NE(owned[0], super_packet) << "sealed where it lay";
      ASSERT_TRUE(net.RunUntil([&] { return b.received.size() == 4; }));
      for (std::size_t i = 1; i < 4; ++i) EXPECT_EQ(b.received[i], super_packet) << i;
      EXPECT_GE(a.client->counters().packets_sent, 4u);
    } else {
      for (std::size_t i = 0; i < frames; ++i) {
        packet::testing::Flow segment = flow;
        segment.ip_id = static_cast<uint16_t>(flow.ip_id + i);
        EXPECT_EQ(b.received[i], packet::testing::MakePacket(segment, 1400, i * 1400)) << "segment " << i;
      }
    }
  }
}

// What the relay checks of a SEALED frame, from a member that crafts them:
// the source must be its own lease, the destination a member with keys.
TEST_F(DeviceKeysTest, TheRelayRoutesSealedFramesOnlyFromTheirSenderToKeyedMembers) {
  net_.StartRelay();
  Node& b = net_.AddClient("b", WithKey(NewKey()));
  Node& old = net_.AddClient("old");
  boost::asio::ip::tcp::socket raw = net_.JoinRaw("raw", 0, protocol::PEERS_NONE);
  ASSERT_TRUE(net_.RunUntil([&] { return net_.relay().member_count() == 3 && b.address() && old.address(); }));
  uint32_t raw_address = 0;
  for (const auto& member : net_.relay().Members()) {
    if (member.device_id == "raw") raw_address = member.address;
  }
  auto sealed_frame = [](uint32_t source, uint32_t destination) {
    std::vector<uint8_t> frame(protocol::kFrameHeaderSize + protocol::kSealedHeaderSize + 64 + protocol::kSealedTagSize);
    protocol::WriteFrameHeader(protocol::FrameType::kSealed,
                               static_cast<uint32_t>(frame.size() - protocol::kFrameHeaderSize), frame.data());
    protocol::WriteSealedHeader({{}, destination, source, 7}, frame.data() + protocol::kFrameHeaderSize);
    return frame;
  };
  auto drops = [&](relay::DropReason reason) {
    return net_.relay().counters().drops[static_cast<std::size_t>(reason)];
  };
  boost::asio::write(raw, boost::asio::buffer(sealed_frame(b.address(), b.address())));   // Not its address.
  boost::asio::write(raw, boost::asio::buffer(sealed_frame(raw_address, old.address())));  // No keys there.
  boost::asio::write(raw, boost::asio::buffer(sealed_frame(raw_address, 0x0a000001)));     // The relay itself.
  boost::asio::write(raw, boost::asio::buffer(sealed_frame(raw_address, b.address())));    // Routed; b cannot open it.
  ASSERT_TRUE(net_.RunUntil([&] { return b.client->counters().dropped_unsealed == 1; }));
  EXPECT_EQ(drops(relay::DropReason::kSpoofedSource), 1u);
  EXPECT_EQ(drops(relay::DropReason::kUnsealable), 2u);
  EXPECT_EQ(b.client->sealing()->counters().unknown_peer, 1u) << "raw presented no keys";
  EXPECT_TRUE(old.received.empty());
  EXPECT_TRUE(b.received.empty());
}

}  // namespace
}  // namespace mnedc::testing
