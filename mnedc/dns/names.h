#pragma once
// Names of the overlay's devices: DEVICE_LABEL.DOMAIN, for the DNS answers
// each client gives from its own peer table (name_service.h).
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mnedc/base/ipv6.h"

namespace mnedc::dns {

// The DNS label a device is known by. A device ID that is already a valid
// lowercase host label (a-z, 0-9 and '-', neither first nor last, at most 63
// characters) is its own label: "devb" -> "devb". Any other ID is lowercased,
// every character outside a-z and 0-9 becomes '-', runs of '-' become one, '-'
// is trimmed from both ends, the result is cut to 54 characters, and '-' and
// 8 hex digits of the ID's FNV-1a hash are appended, so that IDs that differ
// only in case or punctuation keep different names: "Dev_B" -> "dev-b-1d3c3ef0"
// (an ID of no letter or digit at all is "device-" and the hash).
std::string DeviceLabel(std::string_view device_id);

// Checks --dns_domain: one or more labels (as above, lowercase), at most 100
// characters in all, no trailing dot.
bool IsValidDomain(std::string_view domain, std::string* error);

struct Member {
  std::string device_id;
  uint32_t address = 0;  // IPv4, host order.
  std::optional<base::Ipv6Address> address6;
};

// The devices a client knows (its peers and itself), by label and by address.
class NameTable {
 public:
  // Adds or replaces the device's entry.
  void Put(const Member& member);
  void Remove(const std::string& device_id);
  void Clear();
  std::size_t size() const { return by_device_.size(); }

  // The device a label names: when two IDs map to one label, the ID that is
  // the label itself, else the smallest ID (the same answer on every device).
  const Member* FindLabel(std::string_view label) const;
  const Member* FindAddress(uint32_t address) const;
  const Member* FindAddress6(const base::Ipv6Address& address) const;

 private:
  std::map<std::string, Member, std::less<>> by_device_;
  std::multimap<std::string, std::string, std::less<>> labels_;  // label -> device ID
  std::map<uint32_t, std::string> by_address_;
  std::map<base::Ipv6Address, std::string> by_address6_;
};

}  // namespace mnedc::dns
