#pragma once
// The addresses of one virtual network, kept in etcd so that several relays
// hand them out as one: a device keeps its address on whichever relay it
// joins, and no address ever belongs to two devices.
//
// Under PREFIX (e.g. "/mnedc/NETWORK/"):
//   PREFIX address/A.B.C.D -> device ID
//   PREFIX device/ID       -> A.B.C.D
// A device's pair is written by one transaction that succeeds only if
// neither key exists (compare create_revision = 0), so of two relays racing
// for one address, or for one device, exactly one wins; the loser reads what
// won and tries again. Nothing here is a consensus of its own: etcd's is.
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <optional>
#include <string>

#include "mnedc/cluster/etcd_client.h"

namespace mnedc::cluster {

struct AddressPool {
  uint32_t first = 0;  // Host byte order, inclusive.
  uint32_t last = 0;
  uint32_t reserved = 0;  // Never handed out (the relay's own address).
};

class EtcdLeases {
 public:
  EtcdLeases(EtcdClient& etcd, std::string prefix, AddressPool pool);

  // The device's address: the one it already has in the cluster, else
  // `previous` if that is in the pool and free, else the lowest free one.
  // nullopt with `error` when etcd cannot be asked or the pool is full
  // (then `full`, if given, is set).
  boost::asio::awaitable<std::optional<uint32_t>> Acquire(std::string device_id, uint32_t previous,
                                                          std::string* error, bool* full = nullptr);
  // How many transactions lost a race (for tests and metrics).
  uint64_t conflicts() const { return conflicts_; }

 private:
  std::string AddressKey(uint32_t address) const;
  std::string DeviceKey(const std::string& device_id) const;

  EtcdClient& etcd_;
  std::string prefix_;
  AddressPool pool_;
  uint64_t conflicts_ = 0;
};

}  // namespace mnedc::cluster
