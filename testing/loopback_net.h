#pragma once
// An in-process virtual network for tests: one real relay on 127.0.0.1 (port 0)
// and any number of real clients, all on one io_context that the test drives
// with deadlines, so a hang fails instead of hanging.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "mnedc/client/client.h"
#include "mnedc/relay/relay.h"

namespace mnedc::testing {

struct Node {
  std::unique_ptr<client::Client> client;
  std::vector<std::vector<uint8_t>> received;
  std::vector<packet::Gso> received_offloads;  // Beside `received`: super-packets whole.
  std::vector<std::string> events;  // "up b 10.0.0.3", "down b 10.0.0.3"
  bool running = false;
  transport::Stream* last_stream = nullptr;  // The connection now in use.
  std::vector<std::string> dialed;  // Every relay the client dialed, in order.

  uint32_t address() const { return client->lease() ? client->lease()->address : 0; }
};

class LoopbackNet {
 public:
  LoopbackNet();
  ~LoopbackNet();

  // With `store`, one relay of a cluster (it must outlive the relay).
  void StartRelay(relay::RelayOptions options = {}, uint16_t port = 0, relay::ClusterStore* store = nullptr);
  // Shuts the relay down and waits (bounded) until every connection is gone.
  void StopRelay();
  relay::Relay& relay() { return *relay_; }
  uint16_t port() const { return port_; }

  // Starts a client; `tune` may adjust its options before it starts.
  Node& AddClient(const std::string& device_id,
                  std::function<void(client::ClientOptions&)> tune = nullptr);
  void StopClient(Node& node);

  // Runs the io_context until `done` or `limit`; returns done().
  bool RunUntil(const std::function<bool()>& done,
                std::chrono::milliseconds limit = std::chrono::seconds(10));
  void RunFor(std::chrono::milliseconds d) { io_.run_for(d); }
  boost::asio::io_context& io() { return io_; }

  // A raw TCP member that sent its Hello and does nothing else: the test reads
  // (or never reads) its socket by hand. `receive_buffer` shrinks its window.
  boost::asio::ip::tcp::socket JoinRaw(const std::string& device_id, int receive_buffer = 0,
                                       protocol::PeerMode peers = protocol::PEERS_EACH);
  // Reads `socket` until the other side closes it (bounded by the usual deadline).
  std::string ReadUntilClosed(boost::asio::ip::tcp::socket& socket);

 private:
  boost::asio::io_context io_;
  std::unique_ptr<boost::asio::ip::tcp::acceptor> acceptor_;
  std::unique_ptr<relay::Relay> relay_;
  uint16_t port_ = 0;
  std::vector<std::unique_ptr<Node>> nodes_;
};

}  // namespace mnedc::testing
