#include "mnedc/dns/names.h"

#include <cstdio>

namespace mnedc::dns {
namespace {

bool IsLabelCharacter(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; }

bool IsValidLabel(std::string_view label) {
  if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
  for (char c : label) {
    if (!IsLabelCharacter(c)) return false;
  }
  return true;
}

uint32_t Fnv1a(std::string_view text) {
  uint32_t hash = 2166136261u;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 16777619u;
  }
  return hash;
}

}  // namespace

std::string DeviceLabel(std::string_view device_id) {
  if (IsValidLabel(device_id)) return std::string(device_id);
  std::string label;
  for (char c : device_id) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (!IsLabelCharacter(c) || c == '-') {
      if (!label.empty() && label.back() != '-') label += '-';
      continue;
    }
    label += c;
  }
  while (!label.empty() && label.back() == '-') label.pop_back();
  if (label.size() > 54) label.resize(54);
  while (!label.empty() && label.back() == '-') label.pop_back();
  if (label.empty()) label = "device";
  char suffix[10];
  std::snprintf(suffix, sizeof(suffix), "-%08x", Fnv1a(device_id));
  return label + suffix;
}

bool IsValidDomain(std::string_view domain, std::string* error) {
  auto fail = [&](const std::string& why) {
    *error = "'" + std::string(domain) + "' " + why;
    return false;
  };
  if (domain.empty()) return fail("is empty");
  if (domain.size() > 100) return fail("is longer than 100 characters");
  std::size_t start = 0;
  while (start <= domain.size()) {
    const std::size_t dot = domain.find('.', start);
    const std::string_view label = domain.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (!IsValidLabel(label)) {
      return fail("has the label '" + std::string(label) +
                  "': labels are 1 to 63 of a-z, 0-9 and '-' (not first or last), lowercase, with no "
                  "trailing dot");
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return true;
}

void NameTable::Put(const Member& member) {
  Remove(member.device_id);
  by_device_[member.device_id] = member;
  labels_.emplace(DeviceLabel(member.device_id), member.device_id);
  by_address_[member.address] = member.device_id;
  if (member.address6) by_address6_[*member.address6] = member.device_id;
}

void NameTable::Remove(const std::string& device_id) {
  const auto found = by_device_.find(device_id);
  if (found == by_device_.end()) return;
  const Member& member = found->second;
  auto [first, last] = labels_.equal_range(DeviceLabel(device_id));
  for (auto it = first; it != last; ++it) {
    if (it->second == device_id) {
      labels_.erase(it);
      break;
    }
  }
  if (auto a = by_address_.find(member.address); a != by_address_.end() && a->second == device_id) {
    by_address_.erase(a);
  }
  if (member.address6) {
    if (auto a = by_address6_.find(*member.address6); a != by_address6_.end() && a->second == device_id) {
      by_address6_.erase(a);
    }
  }
  by_device_.erase(found);
}

void NameTable::Clear() {
  by_device_.clear();
  labels_.clear();
  by_address_.clear();
  by_address6_.clear();
}

const Member* NameTable::FindLabel(std::string_view label) const {
  auto [first, last] = labels_.equal_range(label);
  const std::string* chosen = nullptr;
  for (auto it = first; it != last; ++it) {
    if (it->second == label) {
      chosen = &it->second;
      break;
    }
    if (!chosen || it->second < *chosen) chosen = &it->second;
  }
  if (!chosen) return nullptr;
  return &by_device_.find(*chosen)->second;
}

const Member* NameTable::FindAddress(uint32_t address) const {
  const auto found = by_address_.find(address);
  return found == by_address_.end() ? nullptr : &by_device_.find(found->second)->second;
}

const Member* NameTable::FindAddress6(const base::Ipv6Address& address) const {
  const auto found = by_address6_.find(address);
  return found == by_address6_.end() ? nullptr : &by_device_.find(found->second)->second;
}

}  // namespace mnedc::dns
