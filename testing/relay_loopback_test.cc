// Real relay, real clients, real TCP on 127.0.0.1: the relay core end to end.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <set>

#include "mnedc/base/ipv4.h"
#include "mnedc/base/ipv6.h"
#include "mnedc/protocol/control_codec.h"
#include "mnedc/protocol/frame.h"
#include "testing/ip_packets.h"
#include "testing/loopback_net.h"

namespace mnedc::testing {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using relay::DropReason;

constexpr uint32_t kBroadcast = 0x0a0000ff;

bool AllJoined(std::initializer_list<Node*> nodes) {
  for (Node* n : nodes) {
    if (!n->client->joined()) return false;
  }
  return true;
}

class RelayLoopbackTest : public ::testing::Test {
 protected:
  void SetUp() override { net_.StartRelay(); }

  // Sends `count` packets from `from` to `to`, pacing below the queue bound so
  // that nothing is dropped, and waits until all have arrived.
  bool SendPaced(Node& from, Node& to, const std::vector<std::size_t>& sizes,
                 std::vector<std::vector<uint8_t>>* sent) {
    const std::size_t before = to.received.size();
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      auto packet = MakeIpv4Packet(from.address(), to.address(), sizes[i], static_cast<uint32_t>(i));
      EXPECT_TRUE(from.client->SendPacket(packet));
      sent->push_back(std::move(packet));
      if (i % 16 == 15 && !net_.RunUntil([&] { return to.received.size() == before + i + 1; })) {
        return false;
      }
    }
    return net_.RunUntil([&] { return to.received.size() == before + sizes.size(); });
  }

  LoopbackNet net_;
};

TEST_F(RelayLoopbackTest, ThreeClientsExchangeEverySizeByteExactAndInOrder) {
  Node& a = net_.AddClient("a");
  Node& b = net_.AddClient("b");
  Node& c = net_.AddClient("c");
  ASSERT_TRUE(net_.RunUntil([&] { return AllJoined({&a, &b, &c}); }));
  std::set<uint32_t> addresses = {a.address(), b.address(), c.address()};
  EXPECT_EQ(addresses.size(), 3u);
  EXPECT_EQ(*addresses.begin(), 0x0a000002u);

  std::vector<std::size_t> sizes;
  for (std::size_t size = 20; size <= 1400; size += 23) sizes.push_back(size);
  sizes.push_back(1400);
  sizes.push_back(9000);
  sizes.push_back(20);
  Node* nodes[] = {&a, &b, &c};
  for (Node* from : nodes) {
    for (Node* to : nodes) {
      if (from == to) continue;
      to->received.clear();
      std::vector<std::vector<uint8_t>> sent;
      ASSERT_TRUE(SendPaced(*from, *to, sizes, &sent));
      ASSERT_EQ(to->received.size(), sent.size());
      for (std::size_t i = 0; i < sent.size(); ++i) {
        ASSERT_EQ(to->received[i], sent[i]) << "packet " << i << " of " << sent[i].size() << " bytes";
      }
    }
  }
  EXPECT_EQ(net_.relay().counters().drop(DropReason::kQueueFull), 0u);
  EXPECT_EQ(net_.relay().counters().packets_forwarded, 6 * sizes.size());
}

TEST_F(RelayLoopbackTest, PeersSeeAnnounceSnapshotAndGone) {
  Node& a = net_.AddClient("a");
  ASSERT_TRUE(net_.RunUntil([&] { return a.client->joined(); }));
  Node& b = net_.AddClient("b");
  ASSERT_TRUE(net_.RunUntil([&] { return a.client->peers().size() == 1; }));
  EXPECT_EQ(a.events, std::vector<std::string>{"up b 10.0.0.3"});
  Node& c = net_.AddClient("c");
  ASSERT_TRUE(net_.RunUntil([&] { return c.client->peers().size() == 2 && b.client->peers().size() == 2; }));
  // c learned of a and b from the snapshot (in no particular order).
  std::sort(c.events.begin(), c.events.end());
  EXPECT_EQ(c.events, (std::vector<std::string>{"up a 10.0.0.2", "up b 10.0.0.3"}));
  EXPECT_EQ(c.client->peers().Find("a")->seen_from.rfind("127.0.0.1:", 0), 0u);
  net_.StopClient(b);
  ASSERT_TRUE(net_.RunUntil([&] { return a.client->peers().size() == 1 && c.client->peers().size() == 1; }));
  EXPECT_EQ(a.events.back(), "down b 10.0.0.3");
  EXPECT_EQ(c.events.back(), "down b 10.0.0.3");
  EXPECT_EQ(net_.relay().member_count(), 2u);
  EXPECT_EQ(net_.relay().counters().leaves, 1u);
}

TEST_F(RelayLoopbackTest, SpoofedSourceIsDroppedAndCounted) {
  Node& a = net_.AddClient("a");
  Node& b = net_.AddClient("b");
  Node& c = net_.AddClient("c");
  ASSERT_TRUE(net_.RunUntil([&] { return AllJoined({&a, &b, &c}); }));
  a.client->SendPacket(MakeIpv4Packet(b.address(), c.address(), 100, 1));  // Pretends to be b.
  a.client->SendPacket(MakeIpv4Packet(a.address(), 0x0a0000fe, 100, 2));   // Nobody there.
  const uint8_t junk[] = {0x45, 0, 0, 1};
  a.client->SendPacket(junk);
  a.client->SendPacket(MakeIpv4Packet(a.address(), c.address(), 100, 3));
  ASSERT_TRUE(net_.RunUntil([&] { return c.received.size() == 1; }));
  EXPECT_EQ(PacketSequence(c.received[0]), 3u);
  const auto& counters = net_.relay().counters();
  EXPECT_EQ(counters.drop(DropReason::kSpoofedSource), 1u);
  EXPECT_EQ(counters.drop(DropReason::kUnknownDestination), 1u);
  EXPECT_EQ(counters.drop(DropReason::kMalformed), 1u);
  net_.RunFor(50ms);
  EXPECT_TRUE(b.received.empty());
}

TEST_F(RelayLoopbackTest, BroadcastAndMulticastReachAllOthers) {
  Node& a = net_.AddClient("a");
  Node& b = net_.AddClient("b");
  Node& c = net_.AddClient("c");
  ASSERT_TRUE(net_.RunUntil([&] { return AllJoined({&a, &b, &c}); }));
  a.client->SendPacket(MakeIpv4Packet(a.address(), kBroadcast, 60, 1));
  a.client->SendPacket(MakeIpv4Packet(a.address(), 0xffffffff, 60, 2));
  a.client->SendPacket(MakeIpv4Packet(a.address(), 0xe00000fb, 60, 3));  // mDNS group
  ASSERT_TRUE(net_.RunUntil([&] { return b.received.size() == 3 && c.received.size() == 3; }));
  net_.RunFor(50ms);
  EXPECT_TRUE(a.received.empty());
  EXPECT_EQ(net_.relay().counters().broadcast_packets, 3u);
}

// A dual-stack relay: each device's IPv6 address is the /64 with its IPv4
// host number, routed, checked and fanned out as IPv4 is.
class RelayIpv6Test : public ::testing::Test {
 protected:
  void SetUp() override {
    relay::RelayOptions options;
    options.prefix6 = base::ParsePrefix6("fd00:aa:bb::/64", nullptr);
    net_.StartRelay(options);
  }
  static base::Ipv6Address V6(const char* text) { return *base::ParseIpv6(text); }
  LoopbackNet net_;
};

TEST_F(RelayIpv6Test, LeasesPeersAndUnicastCarryBothAddresses) {
  Node& a = net_.AddClient("a");
  Node& b = net_.AddClient("b");
  ASSERT_TRUE(net_.RunUntil([&] { return AllJoined({&a, &b}) && a.client->peers().size() == 1; }));
  const auto& lease = *a.client->lease();
  ASSERT_TRUE(lease.address6);
  // 10.0.0.2 is host 2: fd00:aa:bb::2; the relay is ::1.
  EXPECT_EQ(base::Ipv6ToString(*lease.address6), "fd00:aa:bb::" + std::to_string(a.address() & 0xff));
  EXPECT_EQ(base::Ipv6ToString(lease.relay_address6), "fd00:aa:bb::1");
  EXPECT_EQ(lease.prefix_length6, 64u);
  const auto peer = a.client->peers().Find("b");
  ASSERT_TRUE(peer && peer->address6);
  EXPECT_EQ(base::Ipv6ToString(*peer->address6), "fd00:aa:bb::" + std::to_string(b.address() & 0xff));

  for (uint32_t i = 0; i < 3; ++i) {
    a.client->SendPacket(MakeIpv6Packet(*lease.address6, *peer->address6, 100 + 500 * i, i));
  }
  ASSERT_TRUE(net_.RunUntil([&] { return b.received.size() == 3; }));
  for (uint32_t i = 0; i < 3; ++i) {
    EXPECT_EQ(b.received[i], MakeIpv6Packet(*lease.address6, *peer->address6, 100 + 500 * i, i));
  }
  EXPECT_EQ(net_.relay().counters().drop(DropReason::kIpv6), 0u);
}

TEST_F(RelayIpv6Test, SpoofedLinkLocalAndStrayIpv6AreDroppedAndCounted) {
  Node& a = net_.AddClient("a");
  Node& b = net_.AddClient("b");
  Node& c = net_.AddClient("c");
  ASSERT_TRUE(net_.RunUntil([&] { return AllJoined({&a, &b, &c}); }));
  const base::Ipv6Address own = *a.client->lease()->address6;
  const base::Ipv6Address to_c = *c.client->lease()->address6;
  a.client->SendPacket(MakeIpv6Packet(*b.client->lease()->address6, to_c, 80, 1));  // Pretends to be b.
  a.client->SendPacket(MakeIpv6Packet(V6("::"), to_c, 80, 2));                     // Unspecified source.
  a.client->SendPacket(MakeIpv6Packet(V6("fd00:aa:cc::2"), to_c, 80, 3));          // Another prefix.
  a.client->SendPacket(MakeIpv6Packet(V6("fe80::1234"), V6("ff02::fb"), 80, 4));   // Link-local.
  a.client->SendPacket(MakeIpv6Packet(own, V6("fd00:aa:bb::fe"), 80, 5));          // Nobody there.
  a.client->SendPacket(MakeIpv6Packet(own, V6("fd00:aa:bb:0:1::2"), 80, 6));       // No lease's form.
  a.client->SendPacket(MakeIpv6Packet(own, V6("fe80::2"), 80, 7));                 // Link-local destination.
  a.client->SendPacket(MakeIpv6Packet(own, to_c, 80, 8));
  ASSERT_TRUE(net_.RunUntil([&] { return c.received.size() == 1; }));
  EXPECT_EQ(PacketSequence6(c.received[0]), 8u);
  const auto& counters = net_.relay().counters();
  EXPECT_EQ(counters.drop(DropReason::kSpoofedSource), 3u);
  EXPECT_EQ(counters.drop(DropReason::kLinkLocal), 1u);
  EXPECT_EQ(counters.drop(DropReason::kUnknownDestination), 3u);
  net_.RunFor(50ms);
  EXPECT_TRUE(b.received.empty());
}

TEST_F(RelayIpv6Test, MulticastReachesEveryOtherMember) {
  Node& a = net_.AddClient("a");
  Node& b = net_.AddClient("b");
  Node& c = net_.AddClient("c");
  ASSERT_TRUE(net_.RunUntil([&] { return AllJoined({&a, &b, &c}); }));
  const base::Ipv6Address own = *a.client->lease()->address6;
  a.client->SendPacket(MakeIpv6Packet(own, V6("ff02::fb"), 90, 1));  // mDNS
  a.client->SendPacket(MakeIpv6Packet(own, V6("ff05::1:3"), 90, 2));  // Site scope.
  ASSERT_TRUE(net_.RunUntil([&] { return b.received.size() == 2 && c.received.size() == 2; }));
  net_.RunFor(50ms);
  EXPECT_TRUE(a.received.empty());
  EXPECT_EQ(net_.relay().counters().broadcast_packets, 2u);
}

TEST_F(RelayLoopbackTest, AnIpv4OnlyRelayDropsIpv6AndLeasesNone) {
  Node& a = net_.AddClient("a");
  Node& b = net_.AddClient("b");
  ASSERT_TRUE(net_.RunUntil([&] { return AllJoined({&a, &b}) && a.client->peers().size() == 1; }));
  EXPECT_FALSE(a.client->lease()->address6);
  EXPECT_FALSE(a.client->peers().Find("b")->address6);
  a.client->SendPacket(MakeIpv6Packet(*base::ParseIpv6("fd00::2"), *base::ParseIpv6("fd00::3"), 80, 1));
  ASSERT_TRUE(net_.RunUntil([&] { return net_.relay().counters().drop(DropReason::kIpv6) == 1; }));
}

TEST_F(RelayLoopbackTest, DuplicateDeviceIdTakesOver) {
  Node& a = net_.AddClient("a");
  Node& b = net_.AddClient("b");
  ASSERT_TRUE(net_.RunUntil([&] { return AllJoined({&a, &b}); }));
  const uint32_t address = a.address();
  Node& a2 = net_.AddClient("a");
  ASSERT_TRUE(net_.RunUntil([&] {
    return a2.client->joined() && a.client->last_error().find("SUPERSEDED") != std::string::npos;
  }));
  EXPECT_EQ(a2.address(), address);
  EXPECT_FALSE(a.client->joined());
  net_.StopClient(a);  // Otherwise it would take over again after its long backoff.
  b.client->SendPacket(MakeIpv4Packet(b.address(), address, 80, 9));
  ASSERT_TRUE(net_.RunUntil([&] { return a2.received.size() == 1; }));
  net_.RunFor(50ms);
  EXPECT_TRUE(a.received.empty());
  EXPECT_EQ(net_.relay().counters().superseded, 1u);
  EXPECT_EQ(net_.relay().member_count(), 2u);
  EXPECT_EQ(b.client->peers().Find("a")->address, address);
}

// A member that joins and then never reads must cost only its own packets.
TEST_F(RelayLoopbackTest, StuckReceiverDoesNotSlowOthers) {
  Node& a = net_.AddClient("a");
  Node& b = net_.AddClient("b");
  Node& c = net_.AddClient("c");
  ASSERT_TRUE(net_.RunUntil([&] { return AllJoined({&a, &b, &c}); }));

  asio::ip::tcp::socket stuck = net_.JoinRaw("stuck", 4096);  // And never reads.
  ASSERT_TRUE(net_.RunUntil([&] { return a.client->peers().size() == 3; }));
  const uint32_t stuck_address = a.client->peers().Find("stuck")->address;

  // ~14 MB at the stuck member: far beyond what socket buffers absorb.
  const int kFlood = 10000;
  int b_sent = 0;
  for (int i = 0; i < kFlood; ++i) {
    a.client->SendPacket(MakeIpv4Packet(a.address(), stuck_address, 1400, i));
    if (i % 10 == 0) {
      ASSERT_TRUE(b.client->SendPacket(MakeIpv4Packet(b.address(), c.address(), 200, b_sent++)));
    }
    net_.io().poll();
    if (i % 8 == 0) net_.RunFor(1ms);
  }
  ASSERT_TRUE(net_.RunUntil([&] { return c.received.size() == static_cast<std::size_t>(b_sent); }));
  for (int i = 0; i < b_sent; ++i) ASSERT_EQ(PacketSequence(c.received[i]), static_cast<uint32_t>(i));
  EXPECT_GT(net_.relay().counters().drop(DropReason::kQueueFull), 0u);
  EXPECT_GE(net_.relay().counters().stalled_receivers, 1u);
  // A's packets all went to the stalled member: the relay stopped reading A
  // for a while at a time instead of reading and dropping at full speed.
  EXPECT_GE(net_.relay().counters().flood_pauses, 1u);
  EXPECT_EQ(net_.relay().member_count(), 4u);

  // Every packet that reached the relay is either forwarded (taken by a
  // receiver's writer) or dropped, never both: the stuck member's queue holds
  // at most its 64 packets that are neither yet.
  net_.RunFor(300ms);
  const auto& counters = net_.relay().counters();
  auto left = [](const client::ClientCounters& c) { return c.packets_sent - c.dropped_queue_full; };
  const uint64_t reached_relay = left(a.client->counters()) + left(b.client->counters());
  const uint64_t accounted = counters.packets_forwarded + counters.drop(DropReason::kQueueFull);
  EXPECT_LE(accounted, reached_relay) << "forwarded " << counters.packets_forwarded
                                      << " counts packets that were dropped";
  EXPECT_GE(accounted + 64, reached_relay);
  EXPECT_LT(counters.packets_forwarded, reached_relay / 2) << "the stuck member took almost nothing";
}

// --rate_limit: a device over its rate is read more slowly; nothing is lost.
TEST_F(RelayLoopbackTest, ARateLimitedSenderIsSlowedNotDropped) {
  net_.StopRelay();
  relay::RelayOptions options;
  options.rate_limit = 1'000'000;  // Bytes a second; bursts of 100 KB.
  net_.StartRelay(options);
  Node& a = net_.AddClient("a");
  Node& b = net_.AddClient("b");
  ASSERT_TRUE(net_.RunUntil([&] { return AllJoined({&a, &b}); }));
  const auto started = std::chrono::steady_clock::now();
  std::vector<std::vector<uint8_t>> sent;
  // 1.5 MB: 100 KB of burst, then 1.4 MB at 1 MB/s.
  ASSERT_TRUE(SendPaced(a, b, std::vector<std::size_t>(1500, 1000), &sent));
  const auto took = std::chrono::steady_clock::now() - started;
  ASSERT_EQ(b.received, sent);
  EXPECT_GT(net_.relay().counters().rate_limited, 0u);
  EXPECT_EQ(net_.relay().counters().drop(DropReason::kQueueFull), 0u);
  // A lower bound: the limit held (a slow machine only makes it longer).
  EXPECT_GE(took, 1200ms) << std::chrono::duration_cast<std::chrono::milliseconds>(took).count();
}

// A packet for a member whose session is closing is not an unknown destination.
TEST_F(RelayLoopbackTest, PacketsForAClosingReceiverHaveTheirOwnDropReason) {
  Node& a = net_.AddClient("a");
  ASSERT_TRUE(net_.RunUntil([&] { return a.client->joined(); }));
  net_.relay().Shutdown();  // Every session is now closing, still a member until it ends.
  net_.relay().SendFromLocal(MakeIpv4Packet(0x0a000001, a.address(), 100, 1));
  EXPECT_EQ(net_.relay().counters().drop(DropReason::kReceiverClosing), 1u);
  EXPECT_EQ(net_.relay().counters().drop(DropReason::kUnknownDestination), 0u);
}

// A receiver that reads slowly gets everything: the relay pauses the sender
// (which then holds back, as the TUN reader does) instead of dropping.
TEST_F(RelayLoopbackTest, SlowReceiverPushesBackWithoutLoss) {
  Node& a = net_.AddClient("a");
  ASSERT_TRUE(net_.RunUntil([&] { return a.client->joined(); }));
  asio::ip::tcp::socket slow = net_.JoinRaw("slow", 8192);
  ASSERT_TRUE(net_.RunUntil([&] { return a.client->peers().size() == 1; }));
  const uint32_t slow_address = a.client->peers().Find("slow")->address;
  slow.non_blocking(true);

  std::vector<uint8_t> stream;  // Everything the slow member read, frames included.
  auto read_a_little = [&] {
    uint8_t chunk[32768];
    boost::system::error_code ec;
    const std::size_t n = slow.read_some(asio::buffer(chunk), ec);
    if (!ec) stream.insert(stream.end(), chunk, chunk + n);
  };
  const int kPackets = 3000;  // ~4 MB, read 32 KB a round while a sends up to 90 KB.
  int sent = 0;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (sent < kPackets && std::chrono::steady_clock::now() < deadline) {
    while (sent < kPackets && a.client->HasRoom()) {
      ASSERT_TRUE(a.client->SendPacket(MakeIpv4Packet(a.address(), slow_address, 1400, sent)));
      ++sent;
    }
    net_.io().poll();
    read_a_little();
    net_.RunFor(1ms);
  }
  std::size_t data_frames = 0;
  std::size_t offset = 0;
  uint32_t out_of_order = 0;
  auto parse = [&] {
    for (;;) {
      auto parsed = protocol::ParseFrame(std::span(stream).subspan(offset));
      if (parsed.status != protocol::ParseStatus::kFrame) return;
      if (parsed.type == protocol::FrameType::kData) {
        if (PacketSequence(parsed.payload) != data_frames && out_of_order == 0) {
          out_of_order = PacketSequence(parsed.payload);
          ADD_FAILURE() << "expected packet " << data_frames << ", got " << out_of_order;
        }
        ++data_frames;
      }
      offset += parsed.consumed;
    }
  };
  while (data_frames < static_cast<std::size_t>(kPackets) &&
         std::chrono::steady_clock::now() < deadline) {
    net_.io().poll();
    read_a_little();
    parse();
    net_.RunFor(1ms);
  }
  EXPECT_EQ(data_frames, static_cast<std::size_t>(kPackets))
      << "sent " << sent << ", relay forwarded " << net_.relay().counters().packets_forwarded
      << ", pushbacks " << net_.relay().counters().pushbacks << ", drops "
      << net_.relay().counters().drop(DropReason::kQueueFull) << ", stalled "
      << net_.relay().counters().stalled_receivers << ", bytes read " << stream.size();
  EXPECT_EQ(net_.relay().counters().drop(DropReason::kQueueFull), 0u);
  EXPECT_GT(net_.relay().counters().pushbacks, 0u);
  EXPECT_EQ(a.client->counters().dropped_queue_full, 0u);
}

TEST_F(RelayLoopbackTest, ReconnectingClientGetsItsAddressBack) {
  Node& a = net_.AddClient("a");
  Node& b = net_.AddClient("b");
  ASSERT_TRUE(net_.RunUntil([&] { return AllJoined({&a, &b}); }));
  const uint32_t a_address = a.address();
  // Cut a's connection under it; meanwhile a newcomer must not get a's address.
  a.last_stream->Close();
  ASSERT_TRUE(net_.RunUntil([&] { return b.client->peers().size() == 0; }));
  Node& c = net_.AddClient("c");
  ASSERT_TRUE(net_.RunUntil([&] { return AllJoined({&a, &c}) && a.client->counters().joins == 2; }));
  EXPECT_EQ(a.address(), a_address);
  EXPECT_NE(c.address(), a_address);
  ASSERT_TRUE(net_.RunUntil([&] { return b.events.size() == 4; }));
  // a and c came back in either order.
  std::sort(b.events.begin() + 2, b.events.end());
  EXPECT_EQ(b.events, (std::vector<std::string>{"up a 10.0.0.2", "down a 10.0.0.2",
                                                 "up a 10.0.0.2", "up c 10.0.0.4"}));
}

// A relay names the relays of its network in the Lease; a client given only
// that relay learns them (skipping what is not an address, at most 16), and
// when its relay goes away tries them in order at once, then waits, then
// comes back to the first with the same address.
TEST(RelayList, AClientLearnsTheRelaysFromItsLeaseAndFailsOverInOrder) {
  LoopbackNet net;
  uint16_t port = 0, unused_port = 0;
  {
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    boost::asio::ip::tcp::acceptor b(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    port = a.local_endpoint().port();
    unused_port = b.local_endpoint().port();
  }
  const std::string self = "127.0.0.1:" + std::to_string(port);
  const std::string other = "127.0.0.1:" + std::to_string(unused_port);
  relay::RelayOptions options;
  options.relays = {self, "ws://127.0.0.1:" + std::to_string(unused_port) + "/mnedc", "not a relay:x:y", other};
  for (int i = 0; i < 20; ++i) options.relays.push_back("127.0.9." + std::to_string(i + 1) + ":" + std::to_string(unused_port));
  net.StartRelay(options, port);
  Node& a = net.AddClient("a", [](client::ClientOptions& o) {
    o.backoff_initial = 400ms;
    o.backoff_max = 400ms;
  });
  ASSERT_TRUE(net.RunUntil([&] { return a.client->joined(); }));
  const uint32_t address = a.address();
  const auto& known = a.client->known_relays();
  ASSERT_EQ(known.size(), 1u + client::Client::kMaxLearnedRelays) << "the given relay, then at most 16 learned";
  EXPECT_EQ(known[0].ToString(), "tcp://" + self);
  EXPECT_EQ(known[1].ToString(), "ws://127.0.0.1:" + std::to_string(unused_port) + "/mnedc");
  EXPECT_EQ(known[2].ToString(), "tcp://" + other);  // The bad one skipped, the relay itself not twice.
  EXPECT_EQ(a.client->relay().ToString(), "tcp://" + self);

  // The relay goes: the client tries the next relays at once, in order.
  a.dialed.clear();
  net.StopRelay();
  ASSERT_TRUE(net.RunUntil([&] { return a.dialed.size() >= 3; }, 3s));
  EXPECT_EQ(a.dialed[0], known[1].ToString());
  EXPECT_EQ(a.dialed[1], "tcp://" + other);
  EXPECT_EQ(a.dialed[2], known[3].ToString());
  // The relay comes back: once the list comes round to it, the client
  // rejoins it with the same address.
  net.StartRelay(options, port);
  ASSERT_TRUE(net.RunUntil([&] { return a.client->joined(); }, 30s));
  EXPECT_EQ(a.address(), address);
  EXPECT_EQ(a.client->relay().ToString(), "tcp://" + self);
}

TEST_F(RelayLoopbackTest, RelayRestartClientsRejoinWithSameAddresses) {
  Node& a = net_.AddClient("a");
  Node& b = net_.AddClient("b");
  ASSERT_TRUE(net_.RunUntil([&] { return AllJoined({&a, &b}); }));
  const uint32_t a_address = a.address();
  const uint32_t b_address = b.address();
  const uint16_t port = net_.port();
  net_.StopRelay();
  net_.RunFor(100ms);
  // The new relay knows nobody: the addresses come back because clients ask.
  net_.StartRelay({}, port);
  ASSERT_TRUE(net_.RunUntil([&] { return AllJoined({&a, &b}) && net_.relay().member_count() == 2; }));
  EXPECT_EQ(a.address(), a_address);
  EXPECT_EQ(b.address(), b_address);
  a.client->SendPacket(MakeIpv4Packet(a_address, b_address, 300, 5));
  ASSERT_TRUE(net_.RunUntil([&] { return b.received.size() == 1; }));
}

TEST_F(RelayLoopbackTest, LeaseFileKeepsAddressesWhenANewcomerJoinsFirst) {
  const char* dir = std::getenv("TEST_TMPDIR");
  relay::RelayOptions options;
  options.lease_file = std::string(dir ? dir : "/tmp") + "/relay-leases";
  std::remove(options.lease_file.c_str());
  net_.StopRelay();
  net_.StartRelay(options);
  Node& a = net_.AddClient("a");
  ASSERT_TRUE(net_.RunUntil([&] { return a.client->joined(); }));
  const uint32_t a_address = a.address();
  net_.StopClient(a);
  const uint16_t port = net_.port();
  net_.StopRelay();  // Saves the leases.
  // After the restart a newcomer joins before a returns: it must not get a's address.
  net_.StartRelay(options, port);
  std::string error;
  ASSERT_TRUE(net_.relay().RestoreLeases(&error)) << error;
  Node& newcomer = net_.AddClient("newcomer");
  ASSERT_TRUE(net_.RunUntil([&] { return newcomer.client->joined(); }));
  EXPECT_NE(newcomer.address(), a_address);
  Node& a_again = net_.AddClient("a");
  ASSERT_TRUE(net_.RunUntil([&] { return a_again.client->joined(); }));
  EXPECT_EQ(a_again.address(), a_address);
}

// A relay killed outright (no Shutdown) must not lose the leases it gave out:
// the file is written within a second of a join.
TEST_F(RelayLoopbackTest, LeaseFileIsWrittenSoonAfterAJoinNotOnlyAtShutdown) {
  const char* dir = std::getenv("TEST_TMPDIR");
  relay::RelayOptions options;
  options.lease_file = std::string(dir ? dir : "/tmp") + "/relay-leases-soon";
  std::remove(options.lease_file.c_str());
  net_.StopRelay();
  net_.StartRelay(options);
  Node& a = net_.AddClient("a");
  ASSERT_TRUE(net_.RunUntil([&] { return a.client->joined(); }));
  const std::string line = base::Ipv4ToString(a.address()) + " a\n";
  auto file_has_a = [&] {
    std::ifstream in(options.lease_file);
    std::stringstream content;
    content << in.rdbuf();
    return content.str().find(line) != std::string::npos;
  };
  EXPECT_TRUE(net_.RunUntil(file_has_a, 3s)) << "no lease in " << options.lease_file;
}

TEST_F(RelayLoopbackTest, ExhaustedPoolAnswersWithError) {
  net_.StopRelay();
  relay::RelayOptions options;
  std::string error;
  options.prefix = *relay::ParsePrefix("10.9.0.0/30", &error);  // One leasable address.
  net_.StartRelay(options);
  Node& a = net_.AddClient("a");
  ASSERT_TRUE(net_.RunUntil([&] { return a.client->joined(); }));
  Node& b = net_.AddClient("b");
  ASSERT_TRUE(net_.RunUntil([&] {
    return b.client->last_error().find("POOL_EXHAUSTED") != std::string::npos;
  }));
  EXPECT_FALSE(b.client->joined());
  EXPECT_GE(net_.relay().counters().joins_rejected, 1u);
  EXPECT_TRUE(a.client->joined());
}

TEST_F(RelayLoopbackTest, ConnectionLimitAndSilentConnectionsAreBounded) {
  net_.StopRelay();
  relay::RelayOptions options;
  options.max_connections = 3;
  options.link.handshake_timeout = 300ms;
  net_.StartRelay(options);
  // Three connections that never say anything fill the relay...
  std::vector<asio::ip::tcp::socket> silent;
  for (int i = 0; i < 3; ++i) {
    silent.emplace_back(net_.io());
    silent.back().connect({asio::ip::make_address("127.0.0.1"), net_.port()});
  }
  ASSERT_TRUE(net_.RunUntil([&] { return net_.relay().connection_count() == 3; }));
  // ...so a fourth is refused at once, and told why (BUSY: retry later)...
  asio::ip::tcp::socket extra(net_.io());
  extra.connect({asio::ip::make_address("127.0.0.1"), net_.port()});
  ASSERT_TRUE(net_.RunUntil([&] { return net_.relay().counters().connections_refused >= 1; }));
  const std::string refusal = net_.ReadUntilClosed(extra);
  const auto frame = protocol::ParseFrame(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(refusal.data()), refusal.size()));
  ASSERT_EQ(frame.status, protocol::ParseStatus::kFrame);
  protocol::ControlMessage error;
  ASSERT_TRUE(protocol::DecodeControl(frame.payload, error));
  EXPECT_EQ(error.error().code(), protocol::Error::BUSY);
  EXPECT_NE(error.error().text().find("maximum of 3 connections"), std::string::npos)
      << error.error().text();
  // ...and the silent ones are dropped at the handshake deadline, making room.
  ASSERT_TRUE(net_.RunUntil([&] { return net_.relay().connection_count() == 0; }, 3s));
  Node& a = net_.AddClient("a");
  EXPECT_TRUE(net_.RunUntil([&] { return a.client->joined(); }));
}

// Out of file descriptors, the relay answers who waits in its accept queue
// (BUSY, through a descriptor it keeps in reserve) instead of leaving them
// hanging, does not spin on the failing accept, and keeps serving its members.
TEST_F(RelayLoopbackTest, AtTheFileLimitNewcomersAreToldBusyAndMembersAreStillServed) {
  net_.StopRelay();
  relay::RelayOptions options;
  options.link.handshake_timeout = 1s;
  net_.StartRelay(options);
  Node& a = net_.AddClient("a");
  Node& b = net_.AddClient("b");
  ASSERT_TRUE(net_.RunUntil([&] { return AllJoined({&a, &b}); }));
  constexpr int kNewcomers = 20;
  std::vector<asio::ip::tcp::socket> newcomers;
  for (int i = 0; i < kNewcomers; ++i) {
    newcomers.emplace_back(net_.io());
    newcomers.back().open(asio::ip::tcp::v4());  // Made before the limit drops.
  }
  int open_fds = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) ++open_fds;
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit low = saved;
  low.rlim_cur = static_cast<rlim_t>(open_fds + 2);  // Room for two more connections.
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  for (auto& socket : newcomers) socket.connect({asio::ip::make_address("127.0.0.1"), net_.port()});
  const uint64_t errors_before = net_.relay().counters().accept_errors;
  int busy = 0;
  for (auto& socket : newcomers) {
    const std::string answer = net_.ReadUntilClosed(socket);
    const auto frame = protocol::ParseFrame(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(answer.data()), answer.size()));
    if (frame.status != protocol::ParseStatus::kFrame) continue;
    protocol::ControlMessage error;
    if (protocol::DecodeControl(frame.payload, error) && error.error().code() == protocol::Error::BUSY) {
      ++busy;
    }
  }
  // The two that fit are cut at the handshake deadline (they never sent a
  // Hello), and say nothing; every other one was told BUSY.
  EXPECT_GE(busy, kNewcomers - 3);
  // Members are still served meanwhile.
  const auto packet = MakeIpv4Packet(a.address(), b.address(), 100, 1);
  ASSERT_TRUE(a.client->SendPacket(packet));
  EXPECT_TRUE(net_.RunUntil([&] { return b.received.size() == 1; }));
  // At the limit accept fails even with nobody waiting (Linux takes the
  // descriptor first): the relay then waits for an arrival, it does not retry.
  net_.RunFor(1000ms);
  EXPECT_LE(net_.relay().counters().accept_errors - errors_before, 3u);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
}

// The deadline counts from accept: a connection that sends its first byte
// late gets no second full timeout for its Hello (slow-loris).
TEST_F(RelayLoopbackTest, TheJoinDeadlineCountsFromAccept) {
  net_.StopRelay();
  relay::RelayOptions options;
  options.link.handshake_timeout = 1000ms;
  net_.StartRelay(options);
  asio::ip::tcp::socket trickle(net_.io());
  trickle.connect({asio::ip::make_address("127.0.0.1"), net_.port()});
  const auto connected = std::chrono::steady_clock::now();
  ASSERT_TRUE(net_.RunUntil([&] { return net_.relay().connection_count() == 1; }));
  net_.RunFor(600ms);
  const uint8_t first_byte_of_a_control_frame = 2;
  asio::write(trickle, asio::buffer(&first_byte_of_a_control_frame, 1));  // And no more.
  ASSERT_TRUE(net_.RunUntil([&] { return net_.relay().connection_count() == 0; }, 5s));
  const auto cut_after = std::chrono::steady_clock::now() - connected;
  // With a fresh deadline after the transport handshake it was cut at 1.6 s.
  EXPECT_LT(cut_after, 1400ms) << std::chrono::duration_cast<std::chrono::milliseconds>(cut_after).count()
                               << " ms";
}

TEST_F(RelayLoopbackTest, WrongProtocolVersionIsRefused) {
  asio::ip::tcp::socket raw(net_.io());
  raw.connect({asio::ip::make_address("127.0.0.1"), net_.port()});
  protocol::ControlMessage hello;
  hello.mutable_hello()->set_protocol_version(99);
  hello.mutable_hello()->set_device_id("future");
  std::vector<uint8_t> frame;
  ASSERT_TRUE(protocol::EncodeControlFrame(hello, frame));
  asio::write(raw, asio::buffer(frame));
  std::vector<uint8_t> reply(protocol::kFrameHeaderSize);
  bool got = false;
  raw.async_receive(asio::buffer(reply), [&](auto, std::size_t) { got = true; });
  ASSERT_TRUE(net_.RunUntil([&] { return got; }));
  const uint32_t length = (uint32_t{reply[3]} << 8) | reply[4];
  std::vector<uint8_t> body(length);
  asio::read(raw, asio::buffer(body));
  protocol::ControlMessage answer;
  ASSERT_TRUE(protocol::DecodeControl(body, answer));
  EXPECT_EQ(answer.error().code(), protocol::Error::VERSION_MISMATCH);
  EXPECT_EQ(net_.relay().member_count(), 0u);
}

// A device ID that is not text (invalid UTF-8) is refused by the device-ID
// rule, with a reason - not dropped as an unparsable message, and not logged
// by protobuf for every such Hello.
TEST_F(RelayLoopbackTest, ADeviceIdThatIsNotTextIsRefusedWithTheRule) {
  const std::string refusal = [&] {
    asio::ip::tcp::socket raw(net_.io());
    raw.connect({asio::ip::make_address("127.0.0.1"), net_.port()});
    protocol::ControlMessage hello;
    hello.mutable_hello()->set_protocol_version(protocol::kProtocolVersion);
    hello.mutable_hello()->set_device_id(std::string("\xff\xfe\x80", 3));
    std::vector<uint8_t> frame;
    EXPECT_TRUE(protocol::EncodeControlFrame(hello, frame));
    asio::write(raw, asio::buffer(frame));
    return net_.ReadUntilClosed(raw);
  }();
  const auto frame = protocol::ParseFrame(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(refusal.data()), refusal.size()));
  ASSERT_EQ(frame.status, protocol::ParseStatus::kFrame);
  protocol::ControlMessage answer;
  ASSERT_TRUE(protocol::DecodeControl(frame.payload, answer));
  EXPECT_EQ(answer.error().code(), protocol::Error::BAD_REQUEST);
  EXPECT_NE(answer.error().text().find("device id must be"), std::string::npos) << answer.error().text();
  EXPECT_EQ(net_.relay().counters().joins_rejected, 1u);
}

}  // namespace
}  // namespace mnedc::testing
