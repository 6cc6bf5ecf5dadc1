#include "mnedc/transport/accept.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include "mnedc/base/coro.h"
#include "mnedc/transport/deadline.h"
#include "mnedc/transport/tls_context.h"
#include "mnedc/transport/tls_stream.h"
#include "mnedc/transport/websocket_stream.h"
#include "mnedc/transport/tcp_stream.h"

namespace mnedc::transport {
namespace {
namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace websocket = boost::beast::websocket;
using asio::ip::tcp;
using boost::system::error_code;
using base::kUse;
constexpr uint8_t kTlsHandshakeRecord = 0x16;
constexpr std::size_t kMaxRequestHead = 8192;

AcceptOutcome Refuse(std::string why) { return {nullptr, std::move(why)}; }

// Reads an HTTP request whose first bytes may already be in `buffer`, and
// upgrades it to a WebSocket. Anything but an upgrade gets a plain answer.
template <class Socket>
asio::awaitable<AcceptOutcome> UpgradeToWebSocket(Socket socket, boost::beast::flat_buffer buffer,
                                                  const bool& expired) {
  http::request_parser<http::empty_body> parser;
  parser.header_limit(kMaxRequestHead);
  parser.body_limit(0);
  auto [read_error, n] = co_await http::async_read(socket, buffer, parser, kUse);
  if (read_error) {
    co_return Refuse(expired ? "HTTP request timed out"
                                        : "bad HTTP request: " + read_error.message());
  }
  auto request = parser.release();
  if (!websocket::is_upgrade(request)) {
    http::response<http::string_body> answer{http::status::upgrade_required, request.version()};
    answer.set(http::field::upgrade, "websocket");
    answer.set(http::field::connection, "close");
    answer.set(http::field::content_type, "text/plain");
    answer.body() = "This is an mnedc relay: connect with the mnedc client (ws:// or wss://).\n";
    answer.prepare_payload();
    co_await http::async_write(socket, answer, kUse);
    co_return Refuse("plain HTTP request for " + std::string(request.target()) +
                     " (not a WebSocket upgrade)");
  }
  websocket::stream<Socket> ws(std::move(socket));
  ws.set_option(websocket::stream_base::decorator([](websocket::response_type& response) {
    response.set(http::field::server, "mnedc");
  }));
  auto [accept_error] = co_await ws.async_accept(request, kUse);
  if (accept_error) {
    co_return Refuse(expired ? "WebSocket handshake timed out"
                                        : "WebSocket handshake failed: " + accept_error.message());
  }
  co_return AcceptOutcome{MakeWebSocketStream(std::move(ws)), ""};
}

// Tells the transport by the first bytes and completes its handshake.
asio::awaitable<AcceptOutcome> Handshake(tcp::socket socket, AcceptOptions options,
                                         const bool& expired) {
  uint8_t first = 0;
  auto [peek_error, peeked] =
      co_await socket.async_receive(asio::buffer(&first, 1), tcp::socket::message_peek, kUse);
  if (peek_error || peeked == 0) {
    co_return Refuse(expired ? "sent nothing before the deadline"
                                        : "closed before sending anything");
  }
  if (first != kTlsHandshakeRecord) {
    if (!options.allow_plaintext) co_return Refuse("plaintext connection, but this relay requires TLS");
    if (first == 'G') co_return co_await UpgradeToWebSocket(std::move(socket), {}, expired);
    co_return AcceptOutcome{MakeTcpStream(std::move(socket)), ""};
  }
  if (!options.tls) co_return Refuse("TLS connection, but this relay has no --tls_cert");
  TlsSocket tls(std::move(socket), *options.tls);
  auto [handshake_error] = co_await tls.async_handshake(asio::ssl::stream_base::server, kUse);
  if (handshake_error) {
    if (OfferedPreSharedKey(tls.native_handle()) && !expired) {
      AcceptOutcome outcome = Refuse("TLS keyed by another cluster secret: a relay with another --cluster_secret_file");
      outcome.wrong_mesh_key = true;
      co_return outcome;
    }
    if (options.tls_for_mesh_only && !expired) {
      co_return Refuse("TLS connection, but this relay has no --tls_cert (its TLS is for the relays' mesh only)");
    }
    co_return Refuse(expired ? "TLS handshake timed out"
                                        : "TLS handshake failed: " + handshake_error.message());
  }
  // The first plaintext bytes decide between wss and native frames over TLS.
  std::vector<uint8_t> first_bytes(4096);
  auto [read_error, n] = co_await tls.async_read_some(asio::buffer(first_bytes), kUse);
  if (read_error) {
    co_return Refuse(expired ? "sent nothing over TLS before the deadline"
                                        : "TLS closed before anything was sent");
  }
  first_bytes.resize(n);
  first_bytes.shrink_to_fit();  // Kept until read: not 4 KiB per member for its lifetime.
  if (first_bytes[0] == 'G') {
    boost::beast::flat_buffer buffer;
    auto space = buffer.prepare(n);
    asio::buffer_copy(space, asio::buffer(first_bytes));
    buffer.commit(n);
    co_return co_await UpgradeToWebSocket(std::move(tls), std::move(buffer), expired);
  }
  co_return AcceptOutcome{MakeTlsStream(std::move(tls), std::move(first_bytes)), ""};
}
}  // namespace

asio::awaitable<AcceptOutcome> AcceptStream(tcp::socket socket, AcceptOptions options) {
  co_await asio::this_coro::throw_if_cancelled(false);
  TuneTcpSocket(socket);
  const auto deadline = std::chrono::steady_clock::now() + options.timeout;
  const int fd = socket.native_handle();
  bool expired = false;
  co_return co_await WithDeadline(Handshake(std::move(socket), std::move(options), expired),
                                  deadline, fd, expired);
}

}  // namespace mnedc::transport
