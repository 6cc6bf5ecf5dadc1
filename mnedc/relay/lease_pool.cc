#include "mnedc/relay/lease_pool.h"

#include <charconv>


namespace mnedc::relay {

LeasePool::LeasePool(Prefix prefix)
    : prefix_(prefix),
      first_host_(prefix.relay_address() + 1),
      capacity_(prefix.broadcast() - first_host_),
      next_unused_(first_host_) {}

bool LeasePool::IsHostAddress(uint32_t address) const {
  return address >= first_host_ && address < prefix_.broadcast();
}

std::optional<uint32_t> LeasePool::AddressOf(const std::string& device_id) const {
  const auto it = by_device_.find(std::string_view(device_id));
  if (it == by_device_.end()) return std::nullopt;
  return it->second;
}

uint32_t LeasePool::Bind(const std::string& device_id, uint32_t address) {
  const auto [node, added] = by_device_.emplace(device_id, address);
  by_address_[address] = Entry{&node->first, true, {}};
  ++active_;
  ++generation_;
  return address;
}

bool LeasePool::Remember(const std::string& device_id, uint32_t address) {
  if (!IsHostAddress(address) || by_address_.contains(address) || by_device_.contains(std::string_view(device_id))) {
    return false;
  }
  const auto [node, added] = by_device_.emplace(device_id, address);
  by_address_[address] = Entry{&node->first, false, released_.insert(released_.end(), address)};
  return true;
}

std::vector<std::pair<std::string, uint32_t>> LeasePool::Leases() const {
  std::vector<std::pair<std::string, uint32_t>> leases;
  leases.reserve(by_address_.size());
  for (uint32_t address : released_) leases.emplace_back(*by_address_.at(address).device_id, address);
  for (const auto& [address, entry] : by_address_) {
    if (entry.active) leases.emplace_back(*entry.device_id, address);
  }
  return leases;
}

std::optional<uint32_t> LeasePool::Acquire(const std::string& device_id, uint32_t requested) {
  if (const auto known = by_device_.find(std::string_view(device_id)); known != by_device_.end()) {
    Entry& entry = by_address_.at(known->second);
    if (!entry.active) {
      released_.erase(entry.released_position);
      entry.active = true;
      ++active_;
    }
    return known->second;
  }
  // A device returning after a relay restart asks for what it had: honour it if free.
  if (requested != 0 && IsHostAddress(requested) && !by_address_.contains(requested)) {
    return Bind(device_id, requested);
  }
  while (next_unused_ < prefix_.broadcast() && by_address_.contains(next_unused_)) ++next_unused_;
  if (next_unused_ < prefix_.broadcast()) return Bind(device_id, next_unused_++);
  if (released_.empty()) return std::nullopt;
  // Reclaim the lease whose device has been away longest.
  const uint32_t address = released_.front();
  released_.pop_front();
  by_device_.erase(by_device_.find(std::string_view(*by_address_.at(address).device_id)));
  by_address_.erase(address);
  return Bind(device_id, address);
}

void LeasePool::Release(const std::string& device_id) {
  const auto known = by_device_.find(std::string_view(device_id));
  if (known == by_device_.end()) return;
  Entry& entry = by_address_.at(known->second);
  if (!entry.active) return;
  entry.active = false;
  entry.released_position = released_.insert(released_.end(), known->second);
  --active_;
}

}  // namespace mnedc::relay
