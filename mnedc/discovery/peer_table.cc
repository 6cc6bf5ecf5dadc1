#include "mnedc/discovery/peer_table.h"

namespace mnedc::discovery {

const char* PeerEventName(PeerEvent event) { return event == PeerEvent::kUp ? "up" : "down"; }

void PeerTable::Fire(PeerEvent event, const Peer& peer) {
  for (const auto& listener : listeners_) listener(event, peer);
}

void PeerTable::Upsert(const Peer& peer) {
  auto it = peers_.find(peer.device_id);
  if (it == peers_.end()) {
    auto& entry = peers_.emplace(peer.device_id, Entry{peer, true}).first->second;
    entry.peer.since = std::chrono::system_clock::now();
    Fire(PeerEvent::kUp, entry.peer);
    return;
  }
  Entry& entry = it->second;
  entry.seen_in_sync = true;
  if (entry.peer.address != peer.address || entry.peer.address6 != peer.address6 || entry.peer.keys != peer.keys) {
    const Peer old = entry.peer;
    entry.peer = peer;
    entry.peer.since = std::chrono::system_clock::now();
    Fire(PeerEvent::kDown, old);
    Fire(PeerEvent::kUp, entry.peer);
  } else {
    entry.peer.seen_from = peer.seen_from;
  }
}

void PeerTable::Remove(const std::string& device_id) {
  auto it = peers_.find(device_id);
  if (it == peers_.end()) return;
  const Peer old = it->second.peer;
  peers_.erase(it);
  Fire(PeerEvent::kDown, old);
}

void PeerTable::BeginSync() {
  for (auto& [id, entry] : peers_) entry.seen_in_sync = false;
}

void PeerTable::EndSync() {
  std::vector<std::string> gone;
  for (const auto& [id, entry] : peers_) {
    if (!entry.seen_in_sync) gone.push_back(id);
  }
  for (const auto& id : gone) Remove(id);
}

void PeerTable::Clear() {
  BeginSync();
  EndSync();
}

std::optional<Peer> PeerTable::Find(const std::string& device_id) const {
  auto it = peers_.find(device_id);
  if (it == peers_.end()) return std::nullopt;
  return it->second.peer;
}

std::vector<Peer> PeerTable::Snapshot() const {
  std::vector<Peer> result;
  result.reserve(peers_.size());
  for (const auto& [id, entry] : peers_) result.push_back(entry.peer);
  return result;
}

}  // namespace mnedc::discovery
