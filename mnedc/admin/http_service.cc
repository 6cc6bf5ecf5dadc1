#include "mnedc/admin/http_service.h"

#include "mnedc/base/coro.h"
#include "mnedc/transport/accept_loop.h"

#include <glog/logging.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cstdio>
#include <ctime>

namespace mnedc::admin {
namespace {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using asio::local::stream_protocol;
using base::kUse;
constexpr auto kIdleTimeout = std::chrono::seconds(10);

bool IsLocal(const tcp::socket& socket) {
  boost::system::error_code ec;
  const auto peer = socket.remote_endpoint(ec);
  return !ec && peer.address().is_loopback();
}
bool IsLocal(const stream_protocol::socket&) { return true; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string PercentDecode(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out += ' ';
    } else if (text[i] == '%' && i + 2 < text.size() && HexValue(text[i + 1]) >= 0 &&
               HexValue(text[i + 2]) >= 0) {
      out += static_cast<char>(HexValue(text[i + 1]) * 16 + HexValue(text[i + 2]));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

template <class Protocol>
asio::awaitable<void> ServeConnection(typename Protocol::socket socket,
                                      std::shared_ptr<const HttpHandler> handler) {
  const bool from_local = IsLocal(socket);
  beast::basic_stream<Protocol> stream(std::move(socket));
  beast::flat_buffer buffer;
  for (;;) {
    stream.expires_after(kIdleTimeout);
    http::request_parser<http::string_body> parser;
    parser.header_limit(8192);
    parser.body_limit(4096);
    auto [read_error, n] = co_await http::async_read(stream, buffer, parser, kUse);
    if (read_error) co_return;  // Closed, timed out or malformed: nothing to answer.
    const auto& request = parser.get();
    HttpRequest parsed;
    parsed.method = std::string(request.method_string());
    const std::string_view target = request.target();
    const auto question = target.find('?');
    parsed.path = std::string(target.substr(0, question));
    if (question != std::string_view::npos) parsed.query = ParseQuery(target.substr(question + 1));
    if (auto it = request.find(http::field::authorization); it != request.end()) {
      parsed.authorization = std::string(it->value());
    }
    parsed.from_local = from_local;
    const bool head = request.method() == http::verb::head;
    if (head) parsed.method = "GET";
    const HttpResponse answer = (*handler)(parsed);
    http::response<http::string_body> response{static_cast<http::status>(answer.status),
                                               request.version()};
    response.set(http::field::server, "mnedc");
    response.set(http::field::content_type, answer.content_type);
    response.keep_alive(request.keep_alive());
    response.body() = answer.body;
    response.prepare_payload();
    if (head) response.body().clear();
    auto [write_error, written] = co_await http::async_write(stream, response, kUse);
    if (write_error || !response.keep_alive()) co_return;
  }
}

template <class Acceptor>
asio::awaitable<void> Accept(Acceptor& acceptor, HttpHandler serve) {
  using Protocol = typename Acceptor::protocol_type;
  // Shared with each connection: one may still be answering after the loop ended.
  auto handler = std::make_shared<const HttpHandler>(std::move(serve));
  auto serve_one = [handler](typename Protocol::socket socket) {
    return ServeConnection<Protocol>(std::move(socket), handler);
  };
  // Named, not temporaries in the co_await: GCC 12 may destroy those twice.
  transport::AcceptLoopOptions options;
  options.what = "operations endpoint";
  co_await transport::AcceptLoop(acceptor, std::move(serve_one), std::move(options));
}
}  // namespace

asio::awaitable<void> ServeHttp(tcp::acceptor& acceptor, HttpHandler handler) {
  return Accept(acceptor, std::move(handler));
}

asio::awaitable<void> ServeHttp(stream_protocol::acceptor& acceptor, HttpHandler handler) {
  return Accept(acceptor, std::move(handler));
}

std::map<std::string, std::string> ParseQuery(std::string_view query) {
  std::map<std::string, std::string> result;
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const auto equals = pair.find('=');
    if (!pair.empty()) {
      result[PercentDecode(pair.substr(0, equals))] =
          equals == std::string_view::npos ? "" : PercentDecode(pair.substr(equals + 1));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return result;
}

std::string JsonString(std::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      char escaped[8];
      std::snprintf(escaped, sizeof(escaped), "\\u%04x", c);
      out += escaped;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string Rfc3339(std::chrono::system_clock::time_point when) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(when);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

}  // namespace mnedc::admin
