#include "mnedc/transport/dial.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <openssl/x509v3.h>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <cstdlib>
#include <sstream>

#include "mnedc/base/coro.h"
#include "mnedc/transport/deadline.h"
#include "mnedc/transport/tls_stream.h"
#include "mnedc/transport/websocket_stream.h"
#include "mnedc/transport/tcp_stream.h"

namespace mnedc::transport {
namespace {
namespace asio = boost::asio;
namespace ssl = asio::ssl;
namespace websocket = boost::beast::websocket;
using asio::ip::tcp;
using boost::system::error_code;
using base::kUse;

DialOutcome Failed(error_code ec, std::string detail) { return {ec, std::move(detail), nullptr}; }

bool IsIpLiteral(const std::string& host) {
  error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

// Asks the proxy for a tunnel to `target`; the answer must be 2xx.
asio::awaitable<std::string> ProxyConnect(tcp::socket& socket, const HostPort& target) {
  const std::string authority = target.ToString();
  const std::string request = "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority +
                              "\r\nUser-Agent: mnedc\r\n\r\n";
  auto [write_error, written] = co_await asio::async_write(socket, asio::buffer(request), kUse);
  if (write_error) co_return "sending CONNECT to the proxy: " + write_error.message();
  // Read exactly the response head (up to 8 KiB), leaving nothing buffered.
  asio::streambuf head(8192);
  auto [read_error, n] = co_await asio::async_read_until(socket, head, "\r\n\r\n", kUse);
  if (read_error) co_return "reading the proxy's answer: " + read_error.message();
  // A proxy has nothing to say after its answer until the relay speaks; bytes
  // beyond it would be lost to the stream, so refuse rather than corrupt.
  if (head.size() != n) co_return "the proxy sent data before the tunnel was set up";
  std::istream in(&head);
  std::string version, status;
  in >> version >> status;
  if (!version.starts_with("HTTP/1.") || status.size() != 3 || status[0] != '2') {
    std::string line = version + " " + status;
    std::string rest;
    std::getline(in, rest);
    if (!rest.empty() && rest.back() == '\r') rest.pop_back();
    co_return "the proxy refused CONNECT " + authority + ": " + line + rest;
  }
  co_return "";
}
}  // namespace

std::optional<HostPort> ParseProxy(const std::string& text, std::string* error) {
  std::string_view rest = text;
  if (rest.starts_with("http://")) rest.remove_prefix(7);
  else if (rest.find("://") != std::string_view::npos) {
    *error = "proxy '" + text + "': only http:// proxies (HTTP CONNECT) are supported";
    return std::nullopt;
  }
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.find('@') != std::string_view::npos) {
    *error = "proxy '" + text + "': proxy credentials are not supported";
    return std::nullopt;
  }
  return ParseHostPort(rest, 8080, error);
}

std::optional<HostPort> ProxyFromEnvironment(const std::string& host, std::string* error) {
  const char* proxy = std::getenv("https_proxy");
  if (!proxy || !*proxy) proxy = std::getenv("HTTPS_PROXY");
  if (!proxy || !*proxy) return std::nullopt;
  const char* no_proxy = std::getenv("no_proxy");
  if (!no_proxy || !*no_proxy) no_proxy = std::getenv("NO_PROXY");
  if (no_proxy) {
    std::stringstream list(no_proxy);
    std::string entry;
    while (std::getline(list, entry, ',')) {
      while (!entry.empty() && entry.front() == ' ') entry.erase(0, 1);
      while (!entry.empty() && entry.back() == ' ') entry.pop_back();
      if (entry.empty()) continue;
      if (entry == "*" || entry == host) return std::nullopt;
      const std::string suffix = entry.front() == '.' ? entry : "." + entry;
      if (host.size() > suffix.size() && host.ends_with(suffix)) return std::nullopt;
    }
  }
  return ParseProxy(proxy, error);
}

namespace {
// Everything after the TCP connect: proxy CONNECT, TLS, WebSocket. `expired`
// says whether a failure came from the dial's deadline.
asio::awaitable<DialOutcome> Handshake(tcp::socket socket, ServerAddress address,
                                       DialOptions options, const bool& expired) {
  auto failed = [&](error_code ec, const std::string& step) {
    if (expired) return Failed(asio::error::timed_out, step + ": timed out");
    return Failed(ec, step + ": " + ec.message());
  };

  if (options.proxy) {
    const std::string problem = co_await ProxyConnect(socket, address.endpoint);
    if (expired) co_return Failed(asio::error::timed_out, "proxy CONNECT timed out");
    if (!problem.empty()) co_return Failed(asio::error::connection_refused, problem);
  }
  const std::string host_header = address.endpoint.ToString();

  if (!address.uses_tls()) {
    if (!address.uses_websocket()) co_return DialOutcome{{}, "", MakeTcpStream(std::move(socket))};
    websocket::stream<tcp::socket> ws(std::move(socket));
    auto [ec] = co_await ws.async_handshake(host_header, address.path, kUse);
    if (ec) co_return failed(ec, "WebSocket handshake with " + address.ToString());
    co_return DialOutcome{{}, "", MakeWebSocketStream(std::move(ws))};
  }

  if (!options.tls) co_return Failed(asio::error::invalid_argument, "no TLS settings for " + address.ToString());
  TlsSocket tls(std::move(socket), *options.tls);
  const std::string& host = address.endpoint.host;
  if (!IsIpLiteral(host)) SSL_set_tlsext_host_name(tls.native_handle(), host.c_str());
  if (options.verify_host_name) {
    // OpenSSL checks the name (or address) during certificate verification.
    X509_VERIFY_PARAM* param = SSL_get0_param(tls.native_handle());
    if (IsIpLiteral(host)) {
      X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
    } else {
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
    }
  }
  auto [handshake_error] = co_await tls.async_handshake(ssl::stream_base::client, kUse);
  if (handshake_error) {
    DialOutcome outcome = failed(handshake_error, "TLS handshake with " + address.ToString());
    const long verdict = SSL_get_verify_result(tls.native_handle());
    if (expired) {
    } else if (!options.verify_host_name) {
      outcome.detail += " (the relay's certificate does not match --pin_sha256)";
    } else if (verdict == X509_V_ERR_HOSTNAME_MISMATCH || verdict == X509_V_ERR_IP_ADDRESS_MISMATCH) {
      outcome.detail += " (the relay's certificate does not name " + host + ")";
    } else if (verdict != X509_V_OK) {
      outcome.detail += std::string(" (") + X509_verify_cert_error_string(verdict) + ")";
    }
    co_return outcome;
  }
  if (!address.uses_websocket()) co_return DialOutcome{{}, "", MakeTlsStream(std::move(tls))};
  websocket::stream<TlsSocket> ws(std::move(tls));
  auto [ec] = co_await ws.async_handshake(host_header, address.path, kUse);
  if (ec) co_return failed(ec, "WebSocket handshake with " + address.ToString());
  co_return DialOutcome{{}, "", MakeWebSocketStream(std::move(ws))};
}
}  // namespace

namespace {
asio::awaitable<DialOutcome> PskHandshake(tcp::socket socket, std::shared_ptr<ssl::context> context,
                                          std::string where, const bool& expired) {
  TlsSocket tls(std::move(socket), *context);
  auto [ec] = co_await tls.async_handshake(ssl::stream_base::client, kUse);
  if (expired) co_return Failed(ec ? ec : asio::error::timed_out, "TLS handshake with " + where + " timed out");
  if (ec) {
    // Connected, and the TLS failed: the other end did not take the key.
    co_return Failed(asio::error::access_denied,
                     "the TLS handshake with " + where + " failed (" + ec.message() +
                         "): the relays have different cluster secrets (--cluster_secret_file), or it is no "
                         "relay of this version");
  }
  co_return DialOutcome{{}, "", MakeTlsStream(std::move(tls))};
}
}  // namespace

asio::awaitable<DialOutcome> DialWithPreSharedKey(HostPort target, std::chrono::steady_clock::duration timeout,
                                                  std::shared_ptr<ssl::context> context) {
  co_await asio::this_coro::throw_if_cancelled(false);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const std::string where = target.ToString();
  auto [connect_error, socket] = co_await DialTcpSocket(target, timeout);
  if (connect_error) co_return Failed(connect_error, where + ": " + connect_error.message());
  bool expired = false;
  const int fd = socket.native_handle();
  co_return co_await WithDeadline(PskHandshake(std::move(socket), std::move(context), where, expired), deadline, fd,
                                  expired);
}

asio::awaitable<DialOutcome> Dial(ServerAddress address, DialOptions options) {
  // Cancelled (the client stopping): error codes, not exceptions.
  co_await asio::this_coro::throw_if_cancelled(false);
  // One deadline for the whole dial: what the connect used is not given again
  // to the handshakes.
  const auto deadline = std::chrono::steady_clock::now() + options.timeout;
  const HostPort first_hop = options.proxy ? *options.proxy : address.endpoint;
  const std::string hop_name = options.proxy ? "proxy " + first_hop.ToString()
                                             : "relay " + first_hop.ToString();
  auto [connect_error, socket] = co_await DialTcpSocket(first_hop, options.timeout);
  if (connect_error) {
    co_return Failed(connect_error, "cannot connect to " + hop_name + ": " + connect_error.message());
  }
  bool expired = false;
  const int fd = socket.native_handle();
  co_return co_await WithDeadline(Handshake(std::move(socket), std::move(address), std::move(options), expired),
                                  deadline, fd, expired);
}

}  // namespace mnedc::transport
