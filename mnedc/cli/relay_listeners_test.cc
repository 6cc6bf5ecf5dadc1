// The relay's listeners: each --listen address, STUN on the same UDP ports by
// default (a port another program holds is skipped, the relay serves on), an
// explicit --stun_listen that cannot open is an error naming it, and bad
// values are refused with the flag's name.
#include "mnedc/cli/relay_listeners.h"

#include <gtest/gtest.h>

namespace mnedc::cli {
namespace {
namespace asio = boost::asio;

TEST(RelayListeners, EachListenAddressAndStunOnItsUdpPort) {
  asio::io_context io;
  RelayListeners listeners;
  std::string error;
  ASSERT_TRUE(OpenRelayListeners(io, {"127.0.0.1:0", "127.0.0.1:0"}, "auto", 16, &listeners, &error)) << error;
  ASSERT_EQ(listeners.tcp.size(), 2u);
  ASSERT_EQ(listeners.stun.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_TRUE(listeners.tcp[i]->is_open());
    EXPECT_EQ(listeners.stun[i]->local_endpoint().port(), listeners.tcp[i]->local_endpoint().port());
  }
  EXPECT_EQ(listeners.TcpText(), BoundText(*listeners.tcp[0]) + ", " + BoundText(*listeners.tcp[1]));
  EXPECT_EQ(listeners.StunText().rfind("127.0.0.1:", 0), 0u) << listeners.StunText();
  listeners.Close();
  EXPECT_FALSE(listeners.tcp[0]->is_open());
  EXPECT_FALSE(listeners.stun[0]->is_open());
}

TEST(RelayListeners, AutomaticStunSkipsAPortAnotherProgramHolds) {
  asio::io_context io;
  // A UDP port held here whose TCP port is free (tests running beside this
  // one may hold the TCP port of the first UDP port the kernel picks).
  asio::ip::udp::socket holder(io);
  for (int attempt = 0; attempt < 50; ++attempt) {
    holder = asio::ip::udp::socket(io, asio::ip::udp::endpoint{asio::ip::make_address("127.0.0.1"), 0});
    boost::system::error_code taken;
    asio::ip::tcp::acceptor probe(io);
    probe.open(asio::ip::tcp::v4());
    probe.bind({asio::ip::make_address("127.0.0.1"), holder.local_endpoint().port()}, taken);
    if (!taken) break;
  }
  const std::string port = std::to_string(holder.local_endpoint().port());
  RelayListeners listeners;
  std::string error;
  ASSERT_TRUE(OpenRelayListeners(io, {"127.0.0.1:" + port}, "auto", 16, &listeners, &error)) << error;
  EXPECT_EQ(listeners.tcp.size(), 1u);
  EXPECT_TRUE(listeners.stun.empty());
  EXPECT_EQ(listeners.StunText(), "");

  // Asked for by name, the same port is an error.
  RelayListeners named;
  EXPECT_FALSE(OpenRelayListeners(io, {"127.0.0.1:0"}, "127.0.0.1:" + port, 16, &named, &error));
  EXPECT_EQ(error.rfind("cannot listen on --stun_listen=127.0.0.1:" + port + ": ", 0), 0u) << error;
  EXPECT_TRUE(named.tcp.empty()) << "nothing is left half-open";
}

TEST(RelayListeners, NoneServesNoStun) {
  asio::io_context io;
  RelayListeners listeners;
  std::string error;
  ASSERT_TRUE(OpenRelayListeners(io, {"127.0.0.1:0"}, "none", 16, &listeners, &error)) << error;
  EXPECT_EQ(listeners.tcp.size(), 1u);
  EXPECT_TRUE(listeners.stun.empty());
}

TEST(RelayListeners, BadValuesAreRefusedWithTheFlagsName) {
  asio::io_context io;
  RelayListeners listeners;
  std::string error;
  EXPECT_FALSE(OpenRelayListeners(io, {}, "auto", 16, &listeners, &error));
  EXPECT_EQ(error, "--listen needs at least one HOST:PORT");
  EXPECT_FALSE(OpenRelayListeners(io, {"relay.example:3334"}, "auto", 16, &listeners, &error));
  EXPECT_EQ(error, "--listen needs an IP address to bind, not 'relay.example'");
  EXPECT_FALSE(OpenRelayListeners(io, {"127.0.0.1:0"}, "127.0.0.1:0,,", 16, &listeners, &error));
  EXPECT_EQ(error.rfind("--stun_listen: ", 0), 0u) << error;

  // A port in use for TCP.
  asio::ip::tcp::acceptor taken(io, asio::ip::tcp::endpoint{asio::ip::make_address("127.0.0.1"), 0});
  taken.listen();
  const std::string value = "127.0.0.1:" + std::to_string(taken.local_endpoint().port());
  EXPECT_FALSE(OpenRelayListeners(io, {"127.0.0.1:0", value}, "auto", 16, &listeners, &error));
  EXPECT_EQ(error.rfind("cannot listen on --listen=" + value + ": ", 0), 0u) << error;
  EXPECT_TRUE(listeners.tcp.empty());
}

}  // namespace
}  // namespace mnedc::cli
