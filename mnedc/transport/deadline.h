#pragma once
// Bounds a multi-step handshake (TCP, proxy, TLS, WebSocket) with one deadline:
// when it passes, the socket is shut down, so whatever step is pending fails.
// Works on the file descriptor, which stays the same as the socket object is
// moved from layer to layer.
#include <sys/socket.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>

namespace mnedc::transport {

class HandshakeDeadline {
 public:
  HandshakeDeadline(boost::asio::any_io_executor executor, int fd,
                    std::chrono::steady_clock::duration timeout)
      : timer_(executor, timeout), expired_(std::make_shared<bool>(false)) {
    timer_.async_wait([fd, expired = expired_](const boost::system::error_code& ec) {
      if (ec) return;  // Cancelled: the handshake finished (the fd may be gone).
      *expired = true;
      ::shutdown(fd, SHUT_RDWR);
    });
  }
  ~HandshakeDeadline() { timer_.cancel(); }
  HandshakeDeadline(const HandshakeDeadline&) = delete;
  HandshakeDeadline& operator=(const HandshakeDeadline&) = delete;

  bool expired() const { return *expired_; }

 private:
  boost::asio::steady_timer timer_;
  std::shared_ptr<bool> expired_;
};

}  // namespace mnedc::transport
