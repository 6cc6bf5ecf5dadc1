#include "mnedc/base/ipv4.h"

#include <charconv>

namespace mnedc::base {

std::string Ipv4ToString(uint32_t address) {
  return std::to_string(address >> 24) + "." + std::to_string((address >> 16) & 0xff) + "." +
         std::to_string((address >> 8) & 0xff) + "." + std::to_string(address & 0xff);
}

std::string Prefix::ToString() const {
  return Ipv4ToString(network) + "/" + std::to_string(length);
}

std::optional<uint32_t> ParseIpv4(std::string_view text) {
  uint32_t result = 0;
  for (int part = 0; part < 4; ++part) {
    unsigned value = 0;
    const char* begin = text.data();
    const auto [end, ec] = std::from_chars(begin, text.data() + text.size(), value);
    if (ec != std::errc() || end == begin || value > 255 || end - begin > 3) return std::nullopt;
    result = (result << 8) | value;
    text.remove_prefix(end - begin);
    if (part < 3) {
      if (text.empty() || text[0] != '.') return std::nullopt;
      text.remove_prefix(1);
    }
  }
  if (!text.empty()) return std::nullopt;
  return result;
}

std::optional<Prefix> ParsePrefix(std::string_view text, std::string* error) {
  auto fail = [&](const std::string& why) -> std::optional<Prefix> {
    if (error) *error = "'" + std::string(text) + "' " + why;
    return std::nullopt;
  };
  const auto slash = text.find('/');
  if (slash == std::string_view::npos) return fail("is not a CIDR prefix like 10.0.0.0/24");
  const auto address = ParseIpv4(text.substr(0, slash));
  if (!address) return fail("does not start with an IPv4 address");
  unsigned length = 0;
  const std::string_view length_text = text.substr(slash + 1);
  const auto [end, ec] =
      std::from_chars(length_text.data(), length_text.data() + length_text.size(), length);
  if (ec != std::errc() || end != length_text.data() + length_text.size() || length_text.empty()) {
    return fail("has no prefix length after '/'");
  }
  if (length > 32) return fail("has a prefix length over 32");
  if (length < 8 || length > 30) {
    return fail("must have a prefix length from 8 to 30 (room for the relay and members)");
  }
  Prefix prefix{*address, length};
  if ((*address & prefix.mask()) != *address) {
    prefix.network = *address & prefix.mask();
    return fail("has host bits set; did you mean " + prefix.ToString() + "?");
  }
  return prefix;
}

}  // namespace mnedc::base
