#pragma once
// The members of the virtual network as a client sees them, with up/down events
// for applications (the NATs block multicast discovery; this replaces it).
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "mnedc/base/ipv6.h"

namespace mnedc::discovery {

struct Peer {
  std::string device_id;
  uint32_t address = 0;   // Virtual IPv4, host byte order.
  std::string seen_from;  // "ip:port" as the relay sees it.
  std::optional<base::Ipv6Address> address6;  // Virtual IPv6, on a dual-stack network.
  // Its sealing keys (mnedc/seal), from a peer of a version that has them:
  // its static public key and the session key of its current run.
  struct Keys {
    std::array<uint8_t, 32> public_key{};
    std::array<uint8_t, 32> session_key{};
    uint32_t ciphers = 0;  // protocol::CipherBits: whether it opens / seals with AES-256-GCM.
    bool operator==(const Keys&) const = default;
  };
  std::optional<Keys> keys;
  // When this device first saw the peer up (set by the table).
  std::chrono::system_clock::time_point since{};
};

enum class PeerEvent { kUp, kDown };
const char* PeerEventName(PeerEvent event);  // "up" / "down"

class PeerTable {
 public:
  using Listener = std::function<void(PeerEvent, const Peer&)>;

  // Listeners are called in order for every change, after the table changed.
  void Subscribe(Listener listener) { listeners_.push_back(std::move(listener)); }

  // Adds or updates a peer. Fires kUp when it is new, or an address or its
  // keys changed (after a kDown for the old one: new keys are a new run of it).
  void Upsert(const Peer& peer);
  void Remove(const std::string& device_id);

  // A rejoin re-announces everyone: peers not announced between BeginSync() and
  // EndSync() left while we were away, and go down at EndSync().
  void BeginSync();
  void EndSync();
  // Everyone goes down (the client is stopping).
  void Clear();

  std::optional<Peer> Find(const std::string& device_id) const;
  std::vector<Peer> Snapshot() const;
  std::size_t size() const { return peers_.size(); }

 private:
  struct Entry {
    Peer peer;
    bool seen_in_sync = true;
  };
  void Fire(PeerEvent event, const Peer& peer);

  std::map<std::string, Entry> peers_;  // Ordered: stable listings.
  std::vector<Listener> listeners_;
};

}  // namespace mnedc::discovery
