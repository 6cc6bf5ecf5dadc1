#pragma once
// What a relay that is one of several keeps in a store shared by all of them
// (mnedc/cluster implements it over etcd): addresses for the whole network,
// which device is on which relay, and which relays there are. A relay without
// one (no --cluster) leases from its own pool and file, as always.
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace mnedc::relay {

struct StoreLease {
  std::optional<uint32_t> address;
  // Without an address: why, in one line for the device and the log, and
  // whether it is because the store cannot be reached (the device may come
  // back later) rather than because the network is full.
  std::string error;
  bool unavailable = false;
  // The device ID is bound to another public key than the one presented.
  bool wrong_key = false;
};

// Another relay of the cluster: its name, where relays reach it
// ("HOST:PORT", for the mesh) and where devices do (as in Relays()).
struct RelayPeer {
  std::string name;
  std::string mesh;
  std::string advertise;
  bool operator==(const RelayPeer&) const = default;
};

class ClusterStore {
 public:
  virtual ~ClusterStore() = default;
  // The device's address in the whole network: the one it has (on whichever
  // relay it joined before), else `previous` if that is free, else a free one.
  // With `public_key` (32 raw bytes; empty: the client presented none) and
  // `check_key`: first the device's key binding for the whole network (trust
  // on first use, as KeyBindings on a relay alone): wrong_key if it is bound
  // to another. Without `check_key` the operator's tokens file decided.
  virtual boost::asio::awaitable<StoreLease> Acquire(std::string device_id, uint32_t previous,
                                                     std::string public_key, bool check_key) = 0;
  // The device joined this relay with `address`, or left it.
  virtual void Joined(const std::string& device_id, uint32_t address, const std::string& seen_from) = 0;
  virtual void Left(const std::string& device_id) = 0;
  // The relays of the network as devices dial them (this one included), for the Lease.
  virtual std::vector<std::string> Relays() const = 0;
  // The other relays, for the mesh.
  virtual std::vector<RelayPeer> Peers() const = 0;
  // Calls `changed` (null: nothing) whenever Relays() or Peers() changes.
  virtual void OnRelaysChanged(std::function<void()> changed) = 0;
  // Calls `elsewhere` (null: nothing) with a device that joined this relay
  // and has since joined another: its connection here is stale (this relay
  // was cut off and has not noticed yet), and the relay closes it.
  virtual void OnMemberElsewhere(std::function<void(const std::string& device_id)> elsewhere) = 0;
};

}  // namespace mnedc::relay
