#include "testing/loopback_net.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/write.hpp>

#include "mnedc/base/ipv4.h"
#include "mnedc/protocol/control_codec.h"
#include "mnedc/protocol/frame.h"
#include "mnedc/transport/tcp_stream.h"

namespace mnedc::testing {
namespace asio = boost::asio;
using namespace std::chrono_literals;

LoopbackNet::LoopbackNet() = default;

LoopbackNet::~LoopbackNet() {
  for (auto& node : nodes_) StopClient(*node);
  if (relay_) StopRelay();
}

void LoopbackNet::StartRelay(relay::RelayOptions options, uint16_t port, relay::ClusterStore* store) {
  acceptor_ = std::make_unique<asio::ip::tcp::acceptor>(io_);
  const asio::ip::tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), port);
  acceptor_->open(endpoint.protocol());
  acceptor_->set_option(asio::socket_base::reuse_address(true));
  acceptor_->bind(endpoint);
  acceptor_->listen();
  port_ = acceptor_->local_endpoint().port();
  relay_ = std::make_unique<relay::Relay>(io_.get_executor(), options);
  if (store) relay_->SetClusterStore(store);
  asio::co_spawn(io_, relay_->AcceptLoop(*acceptor_), asio::detached);
}

void LoopbackNet::StopRelay() {
  relay_->Shutdown();
  acceptor_->close();
  RunUntil([&] { return relay_->connection_count() == 0; }, 5s);
  io_.poll();  // Let the accept loop see the closed acceptor.
  relay_.reset();
  acceptor_.reset();
}

Node& LoopbackNet::AddClient(const std::string& device_id,
                             std::function<void(client::ClientOptions&)> tune) {
  auto node = std::make_unique<Node>();
  Node* raw = node.get();
  client::ClientOptions options;
  options.server.endpoint = {"127.0.0.1", port_};
  options.device_id = device_id;
  options.backoff_initial = 20ms;
  options.backoff_max = 200ms;
  // Direct paths off unless a test asks for them: over this machine's own
  // addresses they would carry what a test means to send through the relay.
  options.direct = false;
  if (tune) tune(options);
  // Dials whatever options.server says (tcp, tls, ws, wss), and remembers the
  // connection so tests can cut it.
  auto dial = [raw, options](const transport::ServerAddress& relay) -> asio::awaitable<transport::DialOutcome> {
    raw->dialed.push_back(relay.ToString());
    auto result = co_await transport::Dial(relay, options.dial);
    raw->last_stream = result.stream.get();
    co_return result;
  };
  raw->client = std::make_unique<client::Client>(io_.get_executor(), options, dial);
  raw->client->OnPacket([raw](std::span<const uint8_t> packet) {
    raw->received.emplace_back(packet.begin(), packet.end());
    raw->received_offloads.push_back({});
  });
  if (options.super_packets) {
    raw->client->OnSuperPacket([raw](std::span<const uint8_t> packet, packet::Gso gso) {
      raw->received.emplace_back(packet.begin(), packet.end());
      raw->received_offloads.push_back(gso);
    });
  }
  raw->client->peers().Subscribe([raw](discovery::PeerEvent event, const discovery::Peer& peer) {
    raw->events.push_back(std::string(discovery::PeerEventName(event)) + " " + peer.device_id +
                          " " + base::Ipv4ToString(peer.address));
  });
  raw->running = true;
  asio::co_spawn(
      io_,
      [raw]() -> asio::awaitable<void> {
        co_await raw->client->Run();
        raw->running = false;
      },
      asio::detached);
  nodes_.push_back(std::move(node));
  return *raw;
}

void LoopbackNet::StopClient(Node& node) {
  if (!node.running) return;
  node.client->Stop();
  RunUntil([&] { return !node.running; }, 5s);
}

asio::ip::tcp::socket LoopbackNet::JoinRaw(const std::string& device_id, int receive_buffer,
                                           protocol::PeerMode peers) {
  asio::ip::tcp::socket socket(io_);
  socket.open(asio::ip::tcp::v4());
  if (receive_buffer > 0) socket.set_option(asio::socket_base::receive_buffer_size(receive_buffer));
  socket.connect({asio::ip::make_address("127.0.0.1"), port_});
  protocol::ControlMessage hello;
  hello.mutable_hello()->set_protocol_version(protocol::kProtocolVersion);
  hello.mutable_hello()->set_device_id(device_id);
  hello.mutable_hello()->set_peers(peers);
  std::vector<uint8_t> frame;
  protocol::EncodeControlFrame(hello, frame);
  asio::write(socket, asio::buffer(frame));
  return socket;
}

std::string LoopbackNet::ReadUntilClosed(asio::ip::tcp::socket& socket) {
  std::string received;
  bool closed = false;
  std::vector<char> chunk(4096);
  std::function<void(boost::system::error_code, std::size_t)> on_read =
      [&](boost::system::error_code ec, std::size_t n) {
        received.append(chunk.data(), n);
        if (ec) {
          closed = true;
          return;
        }
        socket.async_read_some(asio::buffer(chunk), on_read);
      };
  socket.async_read_some(asio::buffer(chunk), on_read);
  if (!RunUntil([&] { return closed; })) socket.close();
  RunUntil([&] { return closed; }, std::chrono::seconds(1));
  return received;
}

bool LoopbackNet::RunUntil(const std::function<bool()>& done, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    if (io_.stopped()) io_.restart();
    io_.run_for(2ms);
  }
  return true;
}

}  // namespace mnedc::testing
