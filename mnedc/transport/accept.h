#pragma once
// Relay side: one listening port serves every transport. The first byte a
// client sends tells which: 0x16 starts a TLS ClientHello, 'G' an HTTP
// WebSocket upgrade, and anything else is a native frame. Inside TLS the first
// plaintext bytes tell wss from native TLS the same way.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "mnedc/transport/stream.h"

namespace mnedc::transport {

struct AcceptOptions {
  std::shared_ptr<boost::asio::ssl::context> tls;  // Null: TLS clients are refused.
  // `tls` takes only the relays' pre-shared key (a relay of a cluster with no
  // certificate): a device's TLS is refused, saying so.
  bool tls_for_mesh_only = false;
  bool allow_plaintext = true;  // False: only TLS and wss (for a relay exposed widely).
  std::chrono::steady_clock::duration timeout = std::chrono::seconds(10);
};

struct AcceptOutcome {
  std::unique_ptr<Stream> stream;
  std::string refused;  // Why the connection was not taken, when stream is null.
  // Refused because it offered the relays' mesh key, but not this relay's.
  bool wrong_mesh_key = false;
};

boost::asio::awaitable<AcceptOutcome> AcceptStream(boost::asio::ip::tcp::socket socket,
                                                   AcceptOptions options);

}  // namespace mnedc::transport
