// Client::Stop ends whatever the client is doing at once, a dial included.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "mnedc/client/client.h"

namespace mnedc::client {
namespace {
namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

// The relay accepts the connection and never answers the WebSocket upgrade.
TEST(ClientStopTest, StopEndsADialInFlight) {
  asio::io_context io;
  tcp::acceptor silent_relay(io, {asio::ip::make_address("127.0.0.1"), 0});
  ClientOptions options;
  options.server.endpoint = {"127.0.0.1", silent_relay.local_endpoint().port()};
  options.server.scheme = transport::Scheme::kWs;
  options.server.path = "/mnedc";
  options.device_id = "a";
  options.dial.timeout = 30s;
  Client client(io.get_executor(), options);
  bool running = true;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    co_await client.Run();
    running = false;
  }, asio::detached);
  tcp::socket accepted(io);
  silent_relay.async_accept(accepted, [](boost::system::error_code) {});
  io.run_for(200ms);
  ASSERT_TRUE(accepted.is_open());  // The dial is waiting for the upgrade answer.
  ASSERT_TRUE(running);

  const auto stopped_at = std::chrono::steady_clock::now();
  client.Stop();
  while (running && std::chrono::steady_clock::now() < stopped_at + 5s) io.run_for(10ms);
  EXPECT_FALSE(running) << "Run() still waits for a dial that has 30 s to go";
  EXPECT_EQ(client.counters().joins, 0u);
}

}  // namespace
}  // namespace mnedc::client
