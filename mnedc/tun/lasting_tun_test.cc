#include "mnedc/tun/lasting_tun.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "testing/fake_packet_port.h"

namespace mnedc::tun {
namespace {
namespace asio = boost::asio;
using namespace std::chrono_literals;
using testing::FakePacketPort;

// What the lasting port owns: a handle on a fake the test keeps, so the test
// can look at a port after the lasting port let go of it.
class Handle final : public PacketPort {
 public:
  explicit Handle(std::shared_ptr<FakePacketPort> port) : port_(std::move(port)) {}
  bool Configure(uint32_t a, uint32_t p, uint32_t m, std::string* e) override {
    return port_->Configure(a, p, m, e);
  }
  bool ConfigureIpv6(const base::Ipv6Address& a, uint32_t p, std::string* e) override {
    return port_->ConfigureIpv6(a, p, e);
  }
  asio::awaitable<boost::system::error_code> ReadLoop(PacketHandler handler, FlowControl flow) override {
    return port_->ReadLoop(std::move(handler), std::move(flow));
  }
  bool Write(std::span<const uint8_t> packet, packet::Gso gso) override { return port_->Write(packet, gso); }
  void Close() override { port_->Close(); }
  const std::string& name() const override { return port_->name(); }
  const PortCounters& counters() const override { return port_->counters(); }

 private:
  std::shared_ptr<FakePacketPort> port_;
};

// Opens fakes, keeping each, and refuses while `refuse` is positive.
struct FakeOpener {
  asio::io_context& io;
  std::vector<std::shared_ptr<FakePacketPort>> opened;
  int refuse = 0;
  bool next_refuses_lease = false;

  PortOpener Get() {
    return [this](std::string* error) -> std::unique_ptr<PacketPort> {
      if (refuse > 0) {
        --refuse;
        *error = "refused by the test";
        return nullptr;
      }
      auto port = std::make_shared<FakePacketPort>(io.get_executor(), "mnedc0");
      opened.push_back(port);
      if (std::exchange(next_refuses_lease, false)) port->set_accepting(false);
      return std::make_unique<Handle>(port);
    };
  }
};

struct ReadLoopRun {
  bool done = false;
  boost::system::error_code result;
  std::vector<std::vector<uint8_t>> packets;
};

void Start(asio::io_context& io, PacketPort& port, ReadLoopRun& run) {
  asio::co_spawn(
      io,
      port.ReadLoop([&run](std::span<const uint8_t> p, packet::Gso) { run.packets.emplace_back(p.begin(), p.end()); }),
      [&run](std::exception_ptr, boost::system::error_code ec) {
        run.done = true;
        run.result = ec;
      });
}

const std::vector<uint8_t> kPacket{0x45, 0, 0, 20};

TEST(LastingPortTest, AFailedDeviceIsCreatedAgainWithItsLease) {
  asio::io_context io;
  FakeOpener opener{io};
  std::string error;
  auto port = OpenLastingPort(io.get_executor(), opener.Get(), &error, {3, 1ms});
  ASSERT_TRUE(port) << error;
  ASSERT_TRUE(port->Configure(0x0a000002, 24, 1400, &error)) << error;
  const base::Ipv6Address address6 = *base::ParseIpv6("fd00:1:2::2");
  ASSERT_TRUE(port->ConfigureIpv6(address6, 64, &error)) << error;
  ReadLoopRun run;
  Start(io, *port, run);
  opener.opened[0]->Inject(kPacket);
  io.run_for(10ms);
  ASSERT_EQ(run.packets.size(), 1u);

  opener.opened[0]->Fail(boost::system::error_code(EBADFD, boost::system::system_category()));
  io.run_for(20ms);
  ASSERT_EQ(opener.opened.size(), 2u);
  EXPECT_TRUE(opener.opened[0]->closed());
  EXPECT_FALSE(run.done);  // Reading goes on, from the new device.
  ASSERT_TRUE(opener.opened[1]->config());
  EXPECT_EQ(*opener.opened[1]->config(), (FakePacketPort::Config{0x0a000002, 24, 1400}));
  ASSERT_TRUE(opener.opened[1]->config6());
  EXPECT_EQ(opener.opened[1]->config6()->first, address6);
  EXPECT_EQ(opener.opened[1]->config6()->second, 64u);

  opener.opened[1]->Inject(kPacket);
  EXPECT_TRUE(port->Write(kPacket));
  io.run_for(10ms);
  EXPECT_EQ(run.packets.size(), 2u);
  EXPECT_EQ(opener.opened[1]->written().size(), 1u);
  EXPECT_EQ(port->counters().packets_read, 2u);  // Counts add up over both devices.
  EXPECT_EQ(port->counters().read_errors, 1u);
  EXPECT_EQ(port->counters().recreations, 1u);

  port->Close();
  io.run_for(10ms);
  EXPECT_TRUE(run.done);
  EXPECT_FALSE(run.result);
}

TEST(LastingPortTest, GivesUpWithTheErrorAfterItsAttempts) {
  asio::io_context io;
  FakeOpener opener{io};
  std::string error;
  auto port = OpenLastingPort(io.get_executor(), opener.Get(), &error, {3, 1ms});
  ASSERT_TRUE(port) << error;
  ReadLoopRun run;
  Start(io, *port, run);
  opener.refuse = 100;
  opener.opened[0]->Fail(boost::system::error_code(EBADFD, boost::system::system_category()));
  io.run_for(50ms);
  ASSERT_TRUE(run.done);
  EXPECT_EQ(run.result.value(), EBADFD);
  EXPECT_EQ(opener.refuse, 97);  // Exactly three attempts, then no more.
  EXPECT_FALSE(port->Write(kPacket));
  EXPECT_EQ(port->counters().write_drops, 1u);
}

TEST(LastingPortTest, ANewDeviceThatRefusesTheLeaseIsTriedAgain) {
  asio::io_context io;
  FakeOpener opener{io};
  std::string error;
  auto port = OpenLastingPort(io.get_executor(), opener.Get(), &error, {3, 1ms});
  ASSERT_TRUE(port) << error;
  ASSERT_TRUE(port->Configure(0x0a000002, 24, 1400, &error));
  ReadLoopRun run;
  Start(io, *port, run);
  // The first replacement refuses its address; the next one takes it.
  opener.next_refuses_lease = true;
  opener.opened[0]->Fail(boost::system::error_code(EIO, boost::system::system_category()));
  io.run_for(20ms);
  EXPECT_FALSE(run.done);
  ASSERT_EQ(opener.opened.size(), 3u);
  EXPECT_TRUE(opener.opened[1]->closed());
  EXPECT_FALSE(opener.opened[1]->config());
  ASSERT_TRUE(opener.opened[2]->config());
  EXPECT_EQ(opener.opened[2]->config()->address, 0x0a000002u);
  port->Close();
  io.run_for(10ms);
  EXPECT_TRUE(run.done);
}

TEST(LastingPortTest, CloseEndsReadingWithoutCreatingAgain) {
  asio::io_context io;
  FakeOpener opener{io};
  std::string error;
  auto port = OpenLastingPort(io.get_executor(), opener.Get(), &error);
  ASSERT_TRUE(port) << error;
  ReadLoopRun run;
  Start(io, *port, run);
  io.run_for(5ms);
  port->Close();
  io.run_for(10ms);
  EXPECT_TRUE(run.done);
  EXPECT_FALSE(run.result);
  EXPECT_EQ(opener.opened.size(), 1u);
}

TEST(LastingPortTest, AFirstOpenThatFailsSaysWhy) {
  asio::io_context io;
  FakeOpener opener{io};
  opener.refuse = 1;
  std::string error;
  EXPECT_FALSE(OpenLastingPort(io.get_executor(), opener.Get(), &error));
  EXPECT_EQ(error, "refused by the test");
}

}  // namespace
}  // namespace mnedc::tun
