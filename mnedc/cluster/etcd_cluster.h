#pragma once
// A relay's part in a cluster kept in etcd (relay::ClusterStore): addresses
// from EtcdLeases, and under an etcd lease this relay keeps alive
//   PREFIX relay/NAME   -> {"advertise": how devices dial it, "mesh": HOST:PORT for relays}
//   PREFIX member/ID    -> {"relay": NAME, "address": A.B.C.D, "seen_from": ip:port}
// and, for good (no lease), PREFIX key/ID -> the device's public key (base64)
// from its first join with one: the key binding of the whole network.
// so a relay that dies drops out of etcd, with its members, within the
// lease's TTL. PREFIX network holds the network's CIDR, and PREFIX network6
// its IPv6 /64, written by the first relay (with IPv6) to come; a relay
// configured with another one is refused.
//
// When etcd cannot be reached, devices this relay has leased an address to
// before join again with it (addresses are never reused, so it is still
// theirs); new devices are refused with a clear error until etcd is back.
// Run() reconnects by itself and writes again what etcd missed.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "mnedc/cluster/etcd_client.h"
#include "mnedc/cluster/etcd_leases.h"
#include "mnedc/relay/cluster_store.h"
#include "mnedc/transport/endpoint.h"

namespace mnedc::cluster {

struct ClusterOptions {
  std::vector<transport::HostPort> etcd;
  std::string prefix = "/mnedc/";  // Every key of this network starts with it.
  std::string name;                // This relay's name in the cluster: unique.
  std::string advertise;           // How devices dial this relay, as they pass it to --server.
  std::string mesh;                // HOST:PORT other relays reach this one at (native TCP).
  std::string network;             // CIDR text of the virtual network, the same on every relay.
  std::string network6;            // Its IPv6 /64 (empty: none), the same on every relay that has one.
  AddressPool pool;
  std::chrono::seconds ttl{6};     // A dead relay's keys go within this.
  std::chrono::steady_clock::duration call_timeout = std::chrono::seconds(2);
};

class EtcdCluster final : public relay::ClusterStore {
 public:
  EtcdCluster(boost::asio::any_io_executor executor, ClusterOptions options);

  // Keeps this relay registered, its members written and the relay list
  // fresh until Stop(); then ends its lease (its keys go at once) and returns.
  boost::asio::awaitable<void> Run();
  void Stop();

  boost::asio::awaitable<relay::StoreLease> Acquire(std::string device_id, uint32_t previous,
                                                    std::string public_key, bool check_key) override;
  void Joined(const std::string& device_id, uint32_t address, const std::string& seen_from) override;
  void Left(const std::string& device_id) override;
  std::vector<std::string> Relays() const override { return relays_; }
  std::vector<relay::RelayPeer> Peers() const override { return peers_; }
  void OnRelaysChanged(std::function<void()> changed) override { relays_changed_ = std::move(changed); }
  void OnMemberElsewhere(std::function<void(const std::string&)> elsewhere) override {
    member_elsewhere_ = std::move(elsewhere);
  }

  // Whether the last call to etcd got through, and since when it has not.
  bool reachable() const { return reachable_; }
  // Set for good when etcd holds another network under the prefix.
  const std::string& fatal_error() const { return fatal_error_; }
  bool registered() const { return lease_ != 0; }

 private:
  // The device's key binding (made on first use): "" if `public_key` (raw,
  // empty: none) may join as `device_id`, else why not; nullopt if etcd
  // cannot be reached (`error`).
  boost::asio::awaitable<std::optional<std::string>> CheckKey(const std::string& device_id,
                                                              const std::string& public_key, std::string* error);
  // Grants a lease and writes this relay's key and every member's.
  boost::asio::awaitable<bool> Register(std::string* error);
  boost::asio::awaitable<bool> WriteMembers(std::string* error);
  boost::asio::awaitable<bool> RefreshRelays(std::string* error);
  // Reads the member keys written since the last look: a device that joined
  // here and whose key another relay has written since is elsewhere now.
  boost::asio::awaitable<bool> CheckMembers(std::string* error);
  void MemberElsewhere(const std::string& device_id);
  void NoteReachable(bool reachable, const std::string& error);
  std::string MemberValue(uint32_t address, const std::string& seen_from) const;

  ClusterOptions options_;
  EtcdClient etcd_;
  EtcdLeases leases_;
  boost::asio::steady_timer wake_;
  bool stopping_ = false;
  int64_t lease_ = 0;
  bool reachable_ = true;
  std::string fatal_error_;
  std::vector<std::string> relays_;
  std::vector<relay::RelayPeer> peers_;
  std::function<void()> relays_changed_;
  // Devices this relay leased an address to (from etcd): they may join again
  // while etcd is unreachable.
  std::unordered_map<std::string, uint32_t> known_;
  // And the key each joined with (raw; empty: none), checked while etcd is away.
  std::unordered_map<std::string, std::string> known_keys_;
  struct Member {
    uint32_t address = 0;
    std::string seen_from;
  };
  std::map<std::string, Member> members_;  // Joined here now.
  // Member keys to write (value) or delete (nullopt) at the next round. A
  // fresh one (the device joined here just now) is the newest word on where
  // the device is and overwrites; one written again after this relay's lease
  // was lost only if no other relay wrote the key since (the device may have
  // joined there while this relay was cut off and has not noticed yet).
  struct Pending {
    std::optional<std::string> value;
    bool fresh = false;
  };
  std::map<std::string, Pending> pending_;
  // What each member key we wrote holds and the revision we wrote it at: a
  // delete must not remove, and a rewrite must not overwrite, another
  // relay's newer key of the same device.
  struct Written {
    std::string value;
    int64_t revision = 0;
  };
  std::map<std::string, Written> written_;
  std::function<void(const std::string&)> member_elsewhere_;
  int64_t members_checked_ = 0;  // The newest member key revision CheckMembers has seen.
};

}  // namespace mnedc::cluster
