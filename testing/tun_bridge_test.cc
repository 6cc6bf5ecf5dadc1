// The client binary's data path with fakes: packets go TUN -> client -> relay
// -> client -> TUN over real loopback TCP, leases land on the port, and a port
// that fails for good stops the client with a reason.
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

}  // namespace
}  // namespace mnedc::testing
