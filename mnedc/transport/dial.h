#pragma once
// Client side: connect to a relay over any transport, optionally through an
// HTTP CONNECT proxy.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "mnedc/transport/endpoint.h"
#include "mnedc/transport/server_address.h"
#include "mnedc/transport/stream.h"

namespace mnedc::transport {

struct DialOptions {
  std::shared_ptr<boost::asio::ssl::context> tls;  // Required for tls:// and wss://.
  // With CA verification the certificate must also name the host dialed; a
  // relay pinned by fingerprint is trusted for its key alone.
  bool verify_host_name = true;
  std::optional<HostPort> proxy;                   // HTTP proxy to CONNECT through.
  // For the whole dial: resolve, connect, proxy, TLS and WebSocket together.
  std::chrono::steady_clock::duration timeout = std::chrono::seconds(10);
};

struct DialOutcome {
  boost::system::error_code error;
  std::string detail;  // Which step failed and why, for the log.
  std::unique_ptr<Stream> stream;
};

// Connects within options.timeout. Cancelling the awaiting coroutine (e.g.
// through an `||`) ends a dial in flight at once.
boost::asio::awaitable<DialOutcome> Dial(ServerAddress address, DialOptions options);

// The relays' mesh: TCP to `target`, then TLS 1.3 keyed by the cluster secret
// (`context` from MakePskClientContext, tls_context.h), within `timeout` in
// all: native frames over TLS, the peer proven to know the secret.
boost::asio::awaitable<DialOutcome> DialWithPreSharedKey(HostPort target, std::chrono::steady_clock::duration timeout,
                                                         std::shared_ptr<boost::asio::ssl::context> context);

// "http://host:port" (or "host:port") as in --proxy and https_proxy.
std::optional<HostPort> ParseProxy(const std::string& text, std::string* error);

// The proxy from the environment (https_proxy, then HTTPS_PROXY) unless
// no_proxy / NO_PROXY names `host` (exact name, ".suffix", or "*").
std::optional<HostPort> ProxyFromEnvironment(const std::string& host, std::string* error);

}  // namespace mnedc::transport
