#include "mnedc/cluster/etcd_leases.h"

#include <set>

#include "mnedc/base/ipv4.h"

namespace mnedc::cluster {
namespace asio = boost::asio;

namespace {
// Rounds of read-then-write one Acquire may lose before it gives up: each
// loss means another relay took an address (or this device) in between.
constexpr int kMaxRounds = 32;
}  // namespace

EtcdLeases::EtcdLeases(EtcdClient& etcd, std::string prefix, AddressPool pool)
    : etcd_(etcd), prefix_(std::move(prefix)), pool_(pool) {}

std::string EtcdLeases::AddressKey(uint32_t address) const {
  return prefix_ + "address/" + base::Ipv4ToString(address);
}

std::string EtcdLeases::DeviceKey(const std::string& device_id) const { return prefix_ + "device/" + device_id; }

asio::awaitable<std::optional<uint32_t>> EtcdLeases::Acquire(std::string device_id, uint32_t previous,
                                                             std::string* error, bool* full) {
  if (full) *full = false;
  const std::string device_key = DeviceKey(device_id);
  // Already placed (by any relay): that address. One read for a device seen before.
  auto placed = [&](const std::vector<KeyValue>& mine) -> std::optional<uint32_t> {
    const auto address = base::ParseIpv4(mine[0].value);
    if (!address) *error = "etcd holds '" + mine[0].value + "' as the address of " + device_id;
    return address;
  };
  auto first = co_await etcd_.Range(device_key, "", error);
  if (!first) co_return std::nullopt;
  if (!first->empty()) co_return placed(*first);
  for (int round = 0; round < kMaxRounds; ++round) {
    // The addresses taken now, and then whether this device holds one. In
    // this order: a device placed by another relay before the first read is
    // seen by the second, so a pool that looks full is full for this device.
    const std::string addresses = prefix_ + "address/";
    auto taken = co_await etcd_.Range(addresses, EtcdClient::PrefixEnd(addresses), error);
    if (!taken) co_return std::nullopt;
    auto mine = co_await etcd_.Range(device_key, "", error);
    if (!mine) co_return std::nullopt;
    if (!mine->empty()) co_return placed(*mine);
    std::set<uint32_t> used;
    for (const KeyValue& kv : *taken) {
      if (auto address = base::ParseIpv4(kv.key.substr(addresses.size()))) used.insert(*address);
    }
    auto is_free = [&](uint32_t a) {
      return a >= pool_.first && a <= pool_.last && a != pool_.reserved && !used.count(a);
    };
    std::optional<uint32_t> pick;
    if (previous != 0 && is_free(previous)) pick = previous;
    for (uint32_t a = pool_.first; !pick && a <= pool_.last && a >= pool_.first; ++a) {
      if (is_free(a)) pick = a;
      if (a == UINT32_MAX) break;
    }
    if (!pick) {
      *error = "no free address left in the network";
      if (full) *full = true;
      co_return std::nullopt;
    }
    const std::string address_text = base::Ipv4ToString(*pick);
    std::vector<std::string> absent = {AddressKey(*pick), device_key};
    std::vector<std::pair<std::string, std::string>> puts = {{AddressKey(*pick), device_id},
                                                             {device_key, address_text}};
    auto won = co_await etcd_.PutIfAbsent(std::move(absent), std::move(puts), 0, error);
    if (!won) co_return std::nullopt;
    if (*won) co_return *pick;
    ++conflicts_;  // Another relay took the address or placed this device: look again.
  }
  *error = "kept losing races for an address in etcd";
  co_return std::nullopt;
}

}  // namespace mnedc::cluster
