#pragma once
// The relay address a client is given: which transport, where, and (for
// WebSocket) which path.
//   relay.example:3334            native frames over TCP (port 3334 if omitted)
//   tls://relay.example:3334      native frames over TLS
//   ws://relay.example:80/mnedc   frames in WebSocket binary messages
//   wss://relay.example/mnedc     the same over TLS (port 443 if omitted)
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "mnedc/transport/endpoint.h"

namespace mnedc::transport {

// The port of tcp:// and tls:// relays when none is given.
inline constexpr uint16_t kDefaultRelayPort = 3334;

enum class Scheme { kTcp, kTls, kWs, kWss };
std::string_view SchemeName(Scheme scheme);  // "tcp", "tls", "ws", "wss"

struct ServerAddress {
  Scheme scheme = Scheme::kTcp;
  HostPort endpoint;
  std::string path = "/";  // WebSocket request target.

  bool uses_tls() const { return scheme == Scheme::kTls || scheme == Scheme::kWss; }
  bool uses_websocket() const { return scheme == Scheme::kWs || scheme == Scheme::kWss; }
  std::string ToString() const;
};

std::optional<ServerAddress> ParseServerAddress(std::string_view text, uint16_t default_port,
                                                std::string* error);

}  // namespace mnedc::transport
