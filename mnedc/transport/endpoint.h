#pragma once
// Parsing of "HOST[:PORT]" as given on command lines.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mnedc::transport {

struct HostPort {
  std::string host;  // Name or address; IPv6 without brackets.
  uint16_t port = 0;

  std::string ToString() const;  // Brackets an IPv6 literal.
};

// Accepts "host", "host:port", "1.2.3.4:5", "[::1]:5" and "[::1]". A missing port
// becomes `default_port`. Returns nullopt and sets `error` on anything else.
std::optional<HostPort> ParseHostPort(std::string_view text, uint16_t default_port,
                                      std::string* error);

}  // namespace mnedc::transport
