#include "mnedc/transport/server_address.h"

namespace mnedc::transport {

std::string_view SchemeName(Scheme scheme) {
  switch (scheme) {
    case Scheme::kTcp:
      return "tcp";
    case Scheme::kTls:
      return "tls";
    case Scheme::kWs:
      return "ws";
    case Scheme::kWss:
      return "wss";
  }
  return "?";
}

std::string ServerAddress::ToString() const {
  std::string text = std::string(SchemeName(scheme)) + "://" + endpoint.ToString();
  if (uses_websocket()) text += path;
  return text;
}

std::optional<ServerAddress> ParseServerAddress(std::string_view text, uint16_t default_port,
                                                std::string* error) {
  ServerAddress result;
  uint16_t port = default_port;
  const auto separator = text.find("://");
  if (separator != std::string_view::npos) {
    const std::string_view scheme = text.substr(0, separator);
    if (scheme == "tcp") {
      result.scheme = Scheme::kTcp;
    } else if (scheme == "tls") {
      result.scheme = Scheme::kTls;
    } else if (scheme == "ws") {
      result.scheme = Scheme::kWs;
      port = 80;
    } else if (scheme == "wss") {
      result.scheme = Scheme::kWss;
      port = 443;
    } else {
      if (error) {
        *error = "'" + std::string(text) + "': unknown scheme '" + std::string(scheme) +
                 "' (use tcp://, tls://, ws:// or wss://)";
      }
      return std::nullopt;
    }
    text.remove_prefix(separator + 3);
  }
  const auto slash = text.find('/');
  if (slash != std::string_view::npos) {
    if (!result.uses_websocket()) {
      if (error) *error = "'" + std::string(text) + "': a path only makes sense with ws:// or wss://";
      return std::nullopt;
    }
    result.path = std::string(text.substr(slash));
    text = text.substr(0, slash);
  }
  auto endpoint = ParseHostPort(text, port, error);
  if (!endpoint) return std::nullopt;
  result.endpoint = *endpoint;
  return result;
}

}  // namespace mnedc::transport
