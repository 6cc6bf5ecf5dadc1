#include "mnedc/transport/endpoint.h"

#include <charconv>

namespace mnedc::transport {

std::string HostPort::ToString() const {
  const bool ipv6 = host.find(':') != std::string::npos;
  return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

namespace {
constexpr char kNameCharacters[] =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_";
}  // namespace

std::optional<HostPort> ParseHostPort(std::string_view text, uint16_t default_port,
                                      std::string* error) {
  auto fail = [&](std::string why) -> std::optional<HostPort> {
    if (error) *error = "'" + std::string(text) + "': " + why;
    return std::nullopt;
  };
  HostPort result;
  std::string_view port_text;
  const bool bracketed = text.starts_with('[');
  if (bracketed) {
    const auto close = text.find(']');
    if (close == std::string_view::npos) return fail("missing ']' after IPv6 address");
    result.host = std::string(text.substr(1, close - 1));
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return fail("expected ':PORT' after ']'");
      port_text = rest.substr(1);
      if (port_text.empty()) return fail("empty port");
    }
  } else {
    const auto colon = text.rfind(':');
    if (colon != std::string_view::npos && text.find(':') != colon) {
      return fail("IPv6 addresses need brackets, as in [::1]:3334");
    }
    result.host = std::string(text.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = text.substr(colon + 1);
      if (port_text.empty()) return fail("empty port");
    }
  }
  if (result.host.empty()) return fail("empty host");
  if (bracketed) {
    // An IPv6 literal, maybe with a zone: hex digits, ':' and '.', then %zone.
    const auto zone = result.host.find('%');
    const std::string_view address = std::string_view(result.host).substr(0, zone);
    const bool literal = address.find(':') != std::string_view::npos &&
                         address.find_first_not_of("0123456789abcdefABCDEF:.") == std::string_view::npos;
    const bool zone_ok = zone == std::string::npos ||
                         (zone + 1 < result.host.size() &&
                          result.host.find_first_not_of(kNameCharacters, zone + 1) == std::string::npos);
    if (!literal || !zone_ok) return fail("only an IPv6 address goes in brackets");
  } else if (result.host.size() > 253 ||
             result.host.find_first_not_of(kNameCharacters) != std::string::npos) {
    return fail("a host is a name or an address: letters, digits, '.', '-' and '_' (IPv6 in brackets)");
  }
  result.port = default_port;
  if (!port_text.empty()) {
    unsigned value = 0;
    const auto [end, ec] =
        std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || value > 65535) {
      return fail("port must be a number from 0 to 65535");
    }
    result.port = static_cast<uint16_t>(value);
  }
  return result;
}

}  // namespace mnedc::transport
