#pragma once
// A small HTTP/1.1 server for operations endpoints (the relay's admin port on
// TCP, the client's status socket on a Unix socket): one handler function,
// bounded requests, an idle deadline per connection, and an accept loop that
// pauses instead of spinning when accept fails (EMFILE).
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <string_view>

namespace mnedc::admin {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // Without the query.
  std::map<std::string, std::string> query;  // Percent-decoded.
  std::string authorization;                 // The Authorization header, if any.
  // A TCP peer on a loopback address, or any peer of a Unix socket (whose
  // file mode already says who may connect).
  bool from_local = false;
};

struct HttpResponse {
  unsigned status = 200;
  std::string content_type = "text/plain";
  std::string body;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

// Serves requests until the acceptor is closed.
boost::asio::awaitable<void> ServeHttp(boost::asio::ip::tcp::acceptor& acceptor, HttpHandler handler);
boost::asio::awaitable<void> ServeHttp(boost::asio::local::stream_protocol::acceptor& acceptor,
                                       HttpHandler handler);

// Splits "a=1&b=x%20y" into decoded pairs (later keys win).
std::map<std::string, std::string> ParseQuery(std::string_view query);

// JSON string literal for any text (quotes, backslashes and controls escaped).
std::string JsonString(std::string_view text);
// "2026-11-25T12:00:00Z".
std::string Rfc3339(std::chrono::system_clock::time_point when);

}  // namespace mnedc::admin
