#pragma once
// A minimal HTTP CONNECT proxy for tests, on 127.0.0.1 (port 0): tunnels to
// the requested host:port, or answers 403 when told to refuse.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <string>
#include <vector>

namespace mnedc::testing {

class ConnectProxy {
 public:
  explicit ConnectProxy(boost::asio::io_context& io, bool refuse = false);
  ~ConnectProxy();
  uint16_t port() const { return port_; }
  int tunnels() const { return tunnels_; }
  const std::vector<std::string>& requests() const { return requests_; }

 private:
  boost::asio::awaitable<void> AcceptLoop();
  boost::asio::awaitable<void> Handle(boost::asio::ip::tcp::socket client);

  boost::asio::io_context& io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  bool refuse_;
  uint16_t port_ = 0;
  int tunnels_ = 0;
  std::vector<std::string> requests_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace mnedc::testing
