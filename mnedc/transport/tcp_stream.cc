#include "mnedc/transport/tcp_stream.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <netinet/tcp.h>

#include "mnedc/base/coro.h"

namespace mnedc::transport {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
using base::kUse;
constexpr int kNotSentLowWater = 128 * 1024;

class TcpStream final : public Stream {
 public:
  explicit TcpStream(tcp::socket socket) : socket_(std::move(socket)), peer_(PeerText(socket_)) {
    TuneTcpSocket(socket_);
    // TrySendNow's send must never wait (asynchronous operations are not affected).
    error_code ignored;
    socket_.non_blocking(true, ignored);
  }

  asio::awaitable<std::pair<error_code, std::size_t>> ReadSome(asio::mutable_buffer buffer) override {
    auto [ec, n] = co_await socket_.async_read_some(buffer, kUse);
    co_return std::pair{ec, n};
  }

  asio::awaitable<error_code> WriteAll(std::span<const asio::const_buffer> buffers) override {
    auto [ec, n] = co_await asio::async_write(socket_, buffers, kUse);
    co_return ec;
  }

  std::size_t TrySendNow(std::span<const asio::const_buffer> buffers) override {
    error_code ec;  // would_block when the socket takes nothing now (TCP_NOTSENT_LOWAT).
    const std::size_t n = socket_.send(buffers, 0, ec);
    return ec ? 0 : n;
  }

  int native_socket() const override { return const_cast<tcp::socket&>(socket_).native_handle(); }

  asio::awaitable<error_code> WaitReady(bool write) override {
    auto [ec] = co_await socket_.async_wait(write ? tcp::socket::wait_write : tcp::socket::wait_read, kUse);
    co_return ec;
  }

  void ShutdownSend() override {
    error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
  }

  void Close() override {
    error_code ignored;
    socket_.close(ignored);
  }

  const std::string& peer() const override { return peer_; }
  std::string_view kind() const override { return "tcp"; }

 private:
  tcp::socket socket_;
  std::string peer_;
};

}  // namespace

std::string PeerText(const tcp::socket& socket) {
  error_code ec;
  const auto endpoint = socket.remote_endpoint(ec);
  if (ec) return "?";
  return HostPort{endpoint.address().to_string(), endpoint.port()}.ToString();
}

void TuneTcpSocket(tcp::socket& socket) {
  error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  socket.set_option(asio::socket_base::keep_alive(true), ignored);
  // Report writable once little unsent data is left, rather than when half of
  // an autotuned multi-megabyte send buffer is free: packets wait in our
  // bounded queue (where they can be dropped or push back) instead of in the
  // kernel, which keeps latency low and flow control responsive.
  socket.set_option(
      asio::detail::socket_option::integer<IPPROTO_TCP, TCP_NOTSENT_LOWAT>(kNotSentLowWater),
      ignored);
}

std::unique_ptr<Stream> MakeTcpStream(tcp::socket socket) {
  return std::make_unique<TcpStream>(std::move(socket));
}

asio::awaitable<std::pair<error_code, tcp::socket>> DialTcpSocket(
    HostPort target, std::chrono::steady_clock::duration timeout) {
  using namespace asio::experimental::awaitable_operators;
  auto executor = co_await asio::this_coro::executor;
  tcp::resolver resolver(executor);
  asio::steady_timer deadline(executor, timeout);
  tcp::socket socket(executor);
  auto resolved = co_await (resolver.async_resolve(target.host, std::to_string(target.port), kUse) ||
                            deadline.async_wait(kUse));
  if (resolved.index() == 1) co_return std::pair{error_code(asio::error::timed_out), std::move(socket)};
  auto [resolve_error, endpoints] = std::get<0>(resolved);
  if (resolve_error) co_return std::pair{resolve_error, std::move(socket)};
  auto connected =
      co_await (asio::async_connect(socket, endpoints, kUse) || deadline.async_wait(kUse));
  if (connected.index() == 1) co_return std::pair{error_code(asio::error::timed_out), std::move(socket)};
  auto [connect_error, endpoint] = std::get<0>(connected);
  if (!connect_error) TuneTcpSocket(socket);
  co_return std::pair{connect_error, std::move(socket)};
}

}  // namespace mnedc::transport
