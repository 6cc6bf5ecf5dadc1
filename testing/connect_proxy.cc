#include "testing/connect_proxy.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <sstream>

namespace mnedc::testing {
namespace asio = boost::asio;
using asio::ip::tcp;
constexpr auto kUse = asio::as_tuple(asio::use_awaitable);

ConnectProxy::ConnectProxy(asio::io_context& io, bool refuse)
    : io_(io), acceptor_(io, {asio::ip::make_address("127.0.0.1"), 0}), refuse_(refuse) {
  port_ = acceptor_.local_endpoint().port();
  asio::co_spawn(io_, AcceptLoop(), asio::detached);
}

ConnectProxy::~ConnectProxy() {
  *alive_ = false;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
}

asio::awaitable<void> ConnectProxy::AcceptLoop() {
  auto alive = alive_;
  for (;;) {
    auto [ec, socket] = co_await acceptor_.async_accept(kUse);
    if (ec || !*alive) co_return;
    asio::co_spawn(io_, Handle(std::move(socket)), asio::detached);
  }
}

namespace {
asio::awaitable<void> Pipe(tcp::socket& from, tcp::socket& to) {
  std::vector<char> buffer(65536);
  for (;;) {
    auto [ec, n] = co_await from.async_read_some(asio::buffer(buffer), kUse);
    if (ec) break;
    auto [write_error, written] = co_await asio::async_write(to, asio::buffer(buffer.data(), n), kUse);
    if (write_error) break;
  }
  boost::system::error_code ignored;
  to.shutdown(tcp::socket::shutdown_send, ignored);
}
}  // namespace

asio::awaitable<void> ConnectProxy::Handle(tcp::socket client) {
  using namespace asio::experimental::awaitable_operators;
  auto alive = alive_;
  asio::streambuf head;
  auto [ec, n] = co_await asio::async_read_until(client, head, "\r\n\r\n", kUse);
  if (ec || !*alive) co_return;
  std::string request(asio::buffers_begin(head.data()), asio::buffers_begin(head.data()) + n);
  head.consume(n);
  requests_.push_back(request.substr(0, request.find("\r\n")));
  std::string method, authority;
  std::istringstream(request) >> method >> authority;
  if (refuse_ || method != "CONNECT") {
    const std::string answer = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
    co_await asio::async_write(client, asio::buffer(answer), kUse);
    co_return;
  }
  const auto colon = authority.rfind(':');
  tcp::resolver resolver(io_);
  auto [resolve_error, endpoints] = co_await resolver.async_resolve(
      authority.substr(0, colon), authority.substr(colon + 1), kUse);
  tcp::socket upstream(io_);
  if (!resolve_error) {
    auto [connect_error, endpoint] = co_await asio::async_connect(upstream, endpoints, kUse);
    resolve_error = connect_error;
  }
  if (resolve_error || !*alive) {
    const std::string answer = "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n";
    co_await asio::async_write(client, asio::buffer(answer), kUse);
    co_return;
  }
  ++tunnels_;
  const std::string answer = "HTTP/1.1 200 Connection established\r\n\r\n";
  co_await asio::async_write(client, asio::buffer(answer), kUse);
  co_await (Pipe(client, upstream) && Pipe(upstream, client));
}

}  // namespace mnedc::testing
