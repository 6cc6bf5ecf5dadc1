// Runs a relay and two clients in one process through mnedc's public libraries,
// sends one packet from a to b, and exits 0 only if it arrived intact.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdio>
#include <vector>

#include "mnedc/client/client.h"
#include "mnedc/relay/relay.h"

namespace asio = boost::asio;

int main() {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  mnedc::relay::Relay relay(io.get_executor(), {});
  asio::co_spawn(io, relay.AcceptLoop(acceptor), asio::detached);

  auto make_client = [&](const char* id) {
    mnedc::client::ClientOptions options;
    options.server.endpoint = {"127.0.0.1", acceptor.local_endpoint().port()};
    options.device_id = id;
    return std::make_unique<mnedc::client::Client>(io.get_executor(), options);
  };
  auto a = make_client("consumer-a");
  auto b = make_client("consumer-b");
  std::vector<uint8_t> received;
  b->OnPacket([&](std::span<const uint8_t> p) { received.assign(p.begin(), p.end()); });
  asio::co_spawn(io, a->Run(), asio::detached);
  asio::co_spawn(io, b->Run(), asio::detached);

  std::vector<uint8_t> packet(64, 0x5a);
  bool sent = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (received.empty() && std::chrono::steady_clock::now() < deadline) {
    io.run_for(std::chrono::milliseconds(5));
    if (!sent && a->joined() && b->joined() && a->peers().Find("consumer-b")) {
      const uint32_t src = a->lease()->address, dst = b->lease()->address;
      packet[0] = 0x45;  // IPv4, 20-byte header, total length = size.
      packet[2] = 0;
      packet[3] = static_cast<uint8_t>(packet.size());
      for (int i = 0; i < 4; ++i) {
        packet[12 + i] = static_cast<uint8_t>(src >> (24 - 8 * i));
        packet[16 + i] = static_cast<uint8_t>(dst >> (24 - 8 * i));
      }
      sent = a->SendPacket(packet);
    }
  }
  a->Stop();
  b->Stop();
  relay.Shutdown();
  acceptor.close();
  io.run_for(std::chrono::seconds(2));
  if (received != packet) {
    std::fprintf(stderr, "consumer: packet did not arrive through the relay (sent: %d)\n", sent);
    return 1;
  }
  std::printf("consumer: relay and client libraries work from another workspace\n");
  return 0;
}
