// Slow-loris: thousands of connections that trickle the start of a handshake
// - native frames, a WebSocket upgrade, a TLS ClientHello - and never finish
// it. Devices must keep joining meanwhile, and every trickler must be cut at
// the handshake deadline, which counts from accept whatever the transport.
#include <gtest/gtest.h>

#include <boost/asio/write.hpp>
#include <cstdlib>
#include <string>
#include <vector>

#include "mnedc/transport/tls_context.h"
#include "testing/loopback_net.h"
#include "testing/test_pki.h"

namespace mnedc::testing {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

TEST(SlowLoris, TricklersAreCutAtTheDeadlineWhileDevicesKeepJoining) {
  const char* dir = std::getenv("TEST_TMPDIR");
  const TestPki pki = MakeTestPki(dir ? dir : "/tmp");
  relay::RelayOptions options;
  options.prefix = {0x0a000000, 16};
  options.link.handshake_timeout = 4s;  // Room for a slow (sanitized) build to open 1,500 connections.
  std::string error;
  options.accept.tls = transport::MakeTlsServerContext({pki.server_cert, pki.server_key, ""}, &error);
  ASSERT_TRUE(options.accept.tls) << error;
  LoopbackNet net;
  net.StartRelay(options);

  // 1,500 tricklers, a third of each kind, each sending the first bytes only.
  const std::string starts[] = {std::string("\x02\x00", 2), "GET / HTTP/1.1\r\nHost: re",
                                std::string("\x16\x03\x01\x00", 4)};
  constexpr int kTricklers = 1500;
  std::vector<asio::ip::tcp::socket> tricklers;
  tricklers.reserve(kTricklers);
  const auto opened = std::chrono::steady_clock::now();
  for (int i = 0; i < kTricklers; ++i) {
    tricklers.emplace_back(net.io());
    tricklers.back().connect({asio::ip::make_address("127.0.0.1"), net.port()});
    asio::write(tricklers.back(), asio::buffer(starts[i % 3]));
    if (i % 100 == 99) net.RunFor(1ms);  // Let the relay accept as they come.
  }
  ASSERT_TRUE(net.RunUntil([&] { return net.relay().connection_count() >= kTricklers; }, 5s))
      << net.relay().connection_count();

  // Devices join while every trickler still holds its connection.
  std::vector<Node*> devices;
  for (int i = 0; i < 20; ++i) devices.push_back(&net.AddClient("device-" + std::to_string(i)));
  ASSERT_TRUE(net.RunUntil(
      [&] {
        for (Node* node : devices) {
          if (!node->client->joined()) return false;
        }
        return true;
      },
      5s));
  const auto joined_after = std::chrono::steady_clock::now() - opened;
  EXPECT_LT(joined_after, options.link.handshake_timeout)
      << "the devices joined only after the tricklers were gone";
  EXPECT_GE(net.relay().connection_count(), static_cast<std::size_t>(kTricklers));

  // Then every trickler is cut: the relay holds the devices and nothing else.
  ASSERT_TRUE(net.RunUntil([&] { return net.relay().connection_count() == devices.size(); }, 10s))
      << net.relay().connection_count() << " connections left";
  const auto all_cut_after = std::chrono::steady_clock::now() - opened;
  // The deadline counts from accept, not from the last byte: nobody got a second one.
  EXPECT_LT(all_cut_after, options.link.handshake_timeout * 2)
      << std::chrono::duration_cast<std::chrono::milliseconds>(all_cut_after).count() << " ms";
  EXPECT_EQ(net.relay().member_count(), devices.size());
}

}  // namespace
}  // namespace mnedc::testing
