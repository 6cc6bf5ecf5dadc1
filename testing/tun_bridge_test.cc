// Both binaries' data paths with fakes: packets go TUN -> client -> relay ->
// client -> TUN over real loopback TCP, leases land on the port, a port that
// fails for good stops the client with a reason, and the relay's own TUN is a
// PacketPort too.
#include "mnedc/client/tun_bridge.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>

#include "testing/fake_packet_port.h"
#include "testing/ip_packets.h"
#include "testing/loopback_net.h"

namespace mnedc::testing {
namespace {
namespace asio = boost::asio;
using namespace std::chrono_literals;

struct Device {
  Node* node;
  std::unique_ptr<FakePacketPort> port;
  std::unique_ptr<client::TunBridge> bridge;
  bool bridge_done = false;
  bool bridge_result = false;
};

class TunBridgeTest : public ::testing::Test {
 protected:
  void SetUp() override { net_.StartRelay(); }

  // The bridges' read loops end before their ports are destroyed.
  void TearDown() override {
    for (auto* device : devices_) device->port->Close();
    net_.RunUntil([&] {
      for (auto* device : devices_) {
        if (!device->bridge_done) return false;
      }
      return true;
    });
  }

  Device* AddDevice(const std::string& id) {
    owned_.push_back(std::make_unique<Device>());
    Device* device = owned_.back().get();
    device->node = &net_.AddClient(id);
    device->port = std::make_unique<FakePacketPort>(net_.io().get_executor(), "tun-" + id);
    device->bridge = std::make_unique<client::TunBridge>(*device->node->client, *device->port);
    Device* raw = device;
    devices_.push_back(raw);
    asio::co_spawn(net_.io(), raw->bridge->Run(), [raw](std::exception_ptr, bool ok) {
      raw->bridge_done = true;
      raw->bridge_result = ok;
    });
    return device;
  }

  LoopbackNet net_;
  std::vector<std::unique_ptr<Device>> owned_;  // Destroyed before net_.
  std::vector<Device*> devices_;
};

TEST_F(TunBridgeTest, PacketsCrossFromOneTunToTheOther) {
  auto a = AddDevice("a");
  auto b = AddDevice("b");
  ASSERT_TRUE(net_.RunUntil([&] { return a->port->config() && b->port->config(); }));
  EXPECT_EQ(a->port->config()->address, a->node->address());
  EXPECT_EQ(a->port->config()->prefix_length, 24u);
  EXPECT_EQ(a->port->config()->mtu, 1400u);

  std::vector<std::vector<uint8_t>> sent;
  for (uint32_t i = 0; i < 200; ++i) {
    sent.push_back(MakeIpv4Packet(a->node->address(), b->node->address(), 60 + i, i));
    a->port->Inject(sent.back());
  }
  ASSERT_TRUE(net_.RunUntil([&] { return b->port->written().size() == sent.size(); }));
  EXPECT_EQ(b->port->written(), sent);  // Nothing lost, nothing reordered: flow control held.
  EXPECT_EQ(a->node->client->counters().dropped_queue_full, 0u);
  EXPECT_EQ(a->port->counters().packets_read, 200u);
}

TEST_F(TunBridgeTest, APortThatFailsForGoodStopsTheClientWithItsReason) {
  auto a = AddDevice("a");
  ASSERT_TRUE(net_.RunUntil([&] { return a->node->client->joined(); }));
  a->port->Fail(boost::system::error_code(EBADFD, boost::system::system_category()));
  ASSERT_TRUE(net_.RunUntil([&] { return a->bridge_done && !a->node->running; }));
  EXPECT_FALSE(a->bridge_result);
  EXPECT_NE(a->bridge->failure().find("TUN tun-a failed"), std::string::npos) << a->bridge->failure();
}

TEST_F(TunBridgeTest, ALeaseThePortRefusesStopsTheClient) {
  auto a = AddDevice("a");
  a->port->set_accepting(false);
  ASSERT_TRUE(net_.RunUntil([&] { return a->bridge_done && !a->node->running; }));
  EXPECT_FALSE(a->bridge_result);
  EXPECT_NE(a->bridge->failure().find("refused by the test"), std::string::npos) << a->bridge->failure();
  EXPECT_TRUE(a->port->closed());
}

// The relay's own address is its PacketPort: a member's packet to 10.0.0.1
// comes out of it, and what it reads reaches the member.
TEST_F(TunBridgeTest, TheRelaysOwnTunIsAPacketPort) {
  FakePacketPort relay_tun(net_.io().get_executor(), "mnedc-relay");
  bool served = false;
  boost::system::error_code served_result;
  asio::co_spawn(net_.io(), net_.relay().ServeTun(relay_tun),
                 [&](std::exception_ptr, boost::system::error_code ec) {
                   served = true;
                   served_result = ec;
                 });
  auto a = AddDevice("a");
  ASSERT_TRUE(net_.RunUntil([&] { return a->port->config().has_value(); }));
  const uint32_t relay_address = 0x0a000001;
  a->port->Inject(MakeIpv4Packet(a->node->address(), relay_address, 100, 1));
  ASSERT_TRUE(net_.RunUntil([&] { return relay_tun.written().size() == 1; }));
  EXPECT_EQ(PacketSequence(relay_tun.written()[0]), 1u);
  relay_tun.Inject(MakeIpv4Packet(relay_address, a->node->address(), 100, 2));
  ASSERT_TRUE(net_.RunUntil([&] { return a->port->written().size() == 1; }));
  EXPECT_EQ(PacketSource(a->port->written()[0]), relay_address);

  // The TUN fails for good: the relay goes on without an address of its own.
  relay_tun.Fail(boost::system::error_code(EBADFD, boost::system::system_category()));
  ASSERT_TRUE(net_.RunUntil([&] { return served; }));
  EXPECT_EQ(served_result.value(), EBADFD);
  a->port->Inject(MakeIpv4Packet(a->node->address(), relay_address, 100, 3));
  ASSERT_TRUE(net_.RunUntil(
      [&] { return net_.relay().counters().drop(relay::DropReason::kNoLocalTun) == 1; }));
  EXPECT_EQ(relay_tun.written().size(), 1u);
}

}  // namespace
}  // namespace mnedc::testing
