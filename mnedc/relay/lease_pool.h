#pragma once
// Virtual address leases over one IPv4 prefix.
//
// The network address, the broadcast address and the first host (the relay
// itself) are never leased. A device keeps its address for as long as the relay
// runs: a device that leaves has its lease remembered, and gets it back when it
// returns. Remembered leases are reclaimed oldest-first only when no never-used
// address is left, so a pool of 65k addresses serves any number of devices over
// time while active ones are never disturbed. Memory grows with the devices seen,
// not with the size of the prefix.
//
// Its entries live in a pool of their own, packed together: they outlast the
// sessions of the devices they remember, and scattered among those sessions'
// memory they would keep the relay from giving it back after a mass leave.
#include <cstdint>
#include <functional>
#include <list>
#include <memory_resource>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "mnedc/base/ipv4.h"

namespace mnedc::relay {

// The prefix type and its parser live in mnedc/base; RelayOptions and the
// pool take them under these names.
using base::ParseIpv4;
using base::ParsePrefix;
using base::Prefix;

class LeasePool {
 public:
  explicit LeasePool(Prefix prefix);

  // Leases an address to `device_id`: the one it already has, else `requested`
  // if that is a free host address, else a fresh one. nullopt when every host
  // address is held by a connected device.
  std::optional<uint32_t> Acquire(const std::string& device_id, uint32_t requested = 0);
  // The device disconnected: keep its address for it, reclaimable if needed.
  void Release(const std::string& device_id);

  const Prefix& prefix() const { return prefix_; }
  uint32_t capacity() const { return capacity_; }
  std::size_t active() const { return active_; }
  // The address remembered for a device, active or not.
  std::optional<uint32_t> AddressOf(const std::string& device_id) const;

  // Restores a remembered lease (from a lease file) as released: the device
  // gets it back when it joins. False if the address is not a free host address
  // of this prefix or the device already has one.
  bool Remember(const std::string& device_id, uint32_t address);
  // Every remembered lease, for saving. Released ones in release order first.
  std::vector<std::pair<std::string, uint32_t>> Leases() const;
  // Changes whenever a device is bound to a different address than before.
  uint64_t generation() const { return generation_; }

 private:
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
  };
  struct StringEqual {
    using is_transparent = void;
    bool operator()(std::string_view a, std::string_view b) const { return a == b; }
  };
  // Looked up by string_view: no pmr::string made per lookup.
  using DeviceMap = std::pmr::unordered_map<std::pmr::string, uint32_t, StringHash, StringEqual>;
  struct Entry {
    const std::pmr::string* device_id;  // The key of its by_device_ node (nodes do not move).
    bool active = true;
    std::pmr::list<uint32_t>::iterator released_position;  // Valid while !active.
  };
  uint32_t Bind(const std::string& device_id, uint32_t address);
  bool IsHostAddress(uint32_t address) const;

  Prefix prefix_;
  uint32_t first_host_;  // The first leasable address (relay + 1).
  uint32_t capacity_;
  uint32_t next_unused_;  // Every address below it has been leased at some time.
  std::size_t active_ = 0;
  std::pmr::unsynchronized_pool_resource storage_;  // Before the containers that use it.
  std::pmr::unordered_map<uint32_t, Entry> by_address_{&storage_};
  DeviceMap by_device_{&storage_};
  std::pmr::list<uint32_t> released_{&storage_};  // Oldest release first.
  uint64_t generation_ = 0;
};

}  // namespace mnedc::relay
