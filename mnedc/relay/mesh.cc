// The relay mesh: with a cluster store, a relay keeps one link to every
// other relay of the cluster (the one with the smaller name dials), TLS
// keyed by the cluster secret, and forwards over it the packets of its devices
// to devices of the other relay. Each side tells the other, as PeerList
// batches, which devices it serves; the packets that come over a link must
// be from those devices and to its own, so a relay never forwards what came
// from another relay on to a third (no loops), and anti-spoofing holds
// across the mesh.
#include <glog/logging.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>

#include "mnedc/base/coro.h"
#include "mnedc/base/device_id.h"
#include "mnedc/base/ipv4.h"
#include "mnedc/protocol/peer_frames.h"
#include "mnedc/relay/ip_packet.h"
#include "mnedc/relay/relay.h"
#include "mnedc/relay/session.h"
#include "mnedc/transport/dial.h"
#include "mnedc/transport/endpoint.h"

namespace mnedc::relay {
namespace {
namespace asio = boost::asio;
using base::kUse;
using namespace std::chrono_literals;

constexpr std::size_t kMaxRelayName = 253;
constexpr auto kFirstRetry = 200ms;
constexpr auto kLastRetry = 5s;

bool ValidRelayName(const std::string& name) {
  return !name.empty() && name.size() <= kMaxRelayName && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}
}  // namespace

struct Relay::MeshDialer {
  explicit MeshDialer(asio::any_io_executor executor) : timer(std::move(executor)) {}
  asio::steady_timer timer;  // Between attempts; cancelled to stop the dialer at once.
  bool wanted = true;
};

void Relay::UpdateMesh() {
  if (!cluster_ || shutting_down_) return;
  mesh_peers_ = cluster_->Peers();
  auto listed = [this](const std::string& name) {
    return std::any_of(mesh_peers_.begin(), mesh_peers_.end(), [&](const RelayPeer& p) { return p.name == name; });
  };
  // Relays gone from the cluster: stop dialing them, end their links.
  for (auto& [name, dialer] : mesh_dialers_) {
    if (!listed(name)) {
      dialer->wanted = false;
      dialer->timer.cancel();
    }
  }
  for (auto& [name, session] : mesh_links_) {
    if (!listed(name)) {
      session->link_.set_end_reason("relay " + name + " left the cluster");
      session->link_.Close();
    }
  }
  // The relay with the smaller name dials.
  for (const RelayPeer& peer : mesh_peers_) {
    if (peer.name > options_.cluster_name && !mesh_dialers_.count(peer.name)) {
      asio::co_spawn(executor_, MeshDialLoop(peer.name), asio::detached);
    }
  }
}

void Relay::StopMesh() {
  for (auto& [name, dialer] : mesh_dialers_) {
    dialer->wanted = false;
    dialer->timer.cancel();
  }
}

asio::awaitable<void> Relay::MeshDialLoop(std::string name) {
  using namespace asio::experimental::awaitable_operators;
  co_await base::NoThrowOnCancel();
  MeshDialer dialer(executor_);
  mesh_dialers_[name] = &dialer;
  auto retry = std::chrono::steady_clock::duration(kFirstRetry);
  std::string last_error;
  while (dialer.wanted && !shutting_down_) {
    const auto peer =
        std::find_if(mesh_peers_.begin(), mesh_peers_.end(), [&](const RelayPeer& p) { return p.name == name; });
    if (peer == mesh_peers_.end()) break;
    std::string error;
    const auto target = transport::ParseHostPort(peer->mesh, 3334, &error);
    if (target && mesh_tls_) {
      // Stopping cancels the timer, which ends a dial in flight.
      dialer.timer.expires_at(std::chrono::steady_clock::time_point::max());
      auto dial = transport::DialWithPreSharedKey(*target, options_.link.handshake_timeout, mesh_tls_);
      auto stop = dialer.timer.async_wait(kUse);
      auto outcome = co_await (std::move(dial) || std::move(stop));
      if (outcome.index() == 1 || !dialer.wanted || shutting_down_) break;
      auto& dialed = std::get<0>(outcome);
      if (dialed.stream) {
        const auto began = std::chrono::steady_clock::now();
        last_error.clear();
        co_await ServeSession(std::move(dialed.stream), began, name);
        // A link that ran a while: come back at once, not after the last wait.
        if (std::chrono::steady_clock::now() - began > kLastRetry) retry = kFirstRetry;
      } else {
        error = dialed.detail;
        if (dialed.error == asio::error::access_denied) ++counters_.mesh_auth_failures;
      }
    } else if (!mesh_tls_) {
      error = "this relay has no cluster secret";
    } else {
      error = "'" + peer->mesh + "' is not HOST:PORT: " + error;
    }
    if (!error.empty() && error != last_error) {
      LOG(WARNING) << "mesh: relay " << name << ": " << error << "; retrying";
      last_error = error;
    }
    if (!dialer.wanted || shutting_down_) break;
    dialer.timer.expires_after(retry);
    co_await dialer.timer.async_wait(kUse);
    retry = std::min<std::chrono::steady_clock::duration>(retry * 2, kLastRetry);
  }
  if (auto found = mesh_dialers_.find(name); found != mesh_dialers_.end() && found->second == &dialer) {
    mesh_dialers_.erase(found);
  }
}

void Relay::StartMeshAuth(Session& session, const std::string& peer) {
  session.mesh_dialer_ = true;
  session.mesh_peer_ = peer;
  protocol::ControlMessage hello;
  hello.mutable_mesh_auth()->set_name(options_.cluster_name);
  session.link_.SendControl(hello);
}

// The link's TLS, keyed by the cluster secret, has proven that both ends
// know it (and, with its fresh key exchange, that nothing is replayed): what
// is left is for each to say who it is.
void Relay::OnMeshAuth(Session& session, const protocol::MeshAuth& auth) {
  auto refuse = [&](const std::string& why) {
    ++counters_.mesh_auth_failures;
    LOG_EVERY_N(WARNING, 10) << "mesh: " << session.seen_from()
                             << (session.mesh_peer_.empty() ? "" : " (relay " + session.mesh_peer_ + ")")
                             << " refused: " << why << " (refusal #" << google::COUNTER << ")";
    session.link_.set_end_reason("mesh link refused: " + why);
    session.link_.SendErrorAndClose(protocol::Error::UNAUTHORIZED, why);
  };
  if (!cluster_ || options_.cluster_secret.empty()) return refuse("this relay is not one of a cluster");
  if (session.mesh_dialer_) {
    // The acceptor's answer: its name.
    if (auth.name() != session.mesh_peer_) {
      return refuse("expected relay " + session.mesh_peer_ + ", reached relay '" + auth.name() + "'");
    }
    return EstablishMesh(session);
  }
  // A dialer's name, only over TLS keyed by the cluster secret: device
  // traffic crosses the link, and the relays may be far apart.
  if (!session.link_.stream().pre_shared_key()) {
    return refuse("a mesh link must be TLS keyed by the cluster secret (a relay of an older version?)");
  }
  if (!ValidRelayName(auth.name())) return refuse("malformed mesh authentication");
  if (auth.name() == options_.cluster_name) return refuse("relay '" + auth.name() + "' is this relay's own name");
  session.mesh_peer_ = auth.name();
  protocol::ControlMessage answer;
  answer.mutable_mesh_auth()->set_name(options_.cluster_name);
  session.link_.SendControl(answer);
  EstablishMesh(session);
}

void Relay::EstablishMesh(Session& session) {
  const std::string& name = session.mesh_peer_;
  if (auto old = mesh_links_.find(name); old != mesh_links_.end() && old->second != &session) {
    // The other relay restarted (or reconnected) before its old link ended here.
    old->second->link_.set_end_reason("replaced by a newer mesh link");
    old->second->link_.Close();
    MeshLinkEnded(*old->second);
  }
  session.mesh_ = true;
  session.peer_mode_ = protocol::PEERS_BATCHED;
  session.link_.set_peer_takes_super_packets(true);
  session.link_.MarkEstablished();
  mesh_links_[name] = &session;
  LOG(INFO) << "mesh: linked with relay " << name << " (" << session.seen_from() << ")";
  SendRelayList();  // Its devices' relays now name it.
  // The devices here, a piece at a time as the link takes them.
  StartSnapshot(session);
}

void Relay::MeshLinkEnded(Session& session) {
  if (!session.mesh_) return;
  session.mesh_ = false;
  if (auto link = mesh_links_.find(session.mesh_peer_); link != mesh_links_.end() && link->second == &session) {
    mesh_links_.erase(link);
    LOG(INFO) << "mesh: link with relay " << session.mesh_peer_ << " ended: " << session.link_.end_reason();
    if (!shutting_down_) SendRelayList();
  }
  // Its devices are unreachable until a link (or they) come back.
  for (auto it = remote_by_address_.begin(); it != remote_by_address_.end();) {
    if (it->second.relay != session.mesh_peer_) {
      ++it;
      continue;
    }
    ForgetRemote(it->first, it->second);
    it = remote_by_address_.erase(it);
  }
}

void Relay::ForgetRemote(uint32_t address, const RemoteMember& remote) {
  if (auto entry = directory_.find(address); entry != directory_.end() && !entry->second.session) {
    directory_.erase(entry);
  }
  // A member here under that ID (it moved here) stays in everyone's view.
  if (!by_device_.count(remote.device_id)) {
    AnnounceRemote(protocol::EncodePeerChange(remote.device_id, address, {}, true, Address6Of(address)), remote.device_id, true);
  }
}

void Relay::OnMeshPeers(Session& session, const protocol::PeerList& list) {
  for (const protocol::PeerChange& change : list.changes()) {
    const uint32_t address = change.address();
    if (!options_.prefix.Contains(address) || address == options_.prefix.relay_address() ||
        address == options_.prefix.broadcast() || address == options_.prefix.network) {
      continue;  // Not a device address of this network: never routed.
    }
    auto found = remote_by_address_.find(address);
    if (change.gone()) {
      // Only the relay that announced it may take it back (the device may
      // have moved to another relay meanwhile).
      if (found != remote_by_address_.end() && found->second.relay == session.mesh_peer_ &&
          found->second.device_id == change.device_id()) {
        ForgetRemote(address, found->second);
        remote_by_address_.erase(found);
      }
      continue;
    }
    if (!base::IsValidDeviceId(change.device_id())) continue;
    if (found == remote_by_address_.end() && remote_by_address_.size() >= leases_.pool().capacity()) continue;
    if (found != remote_by_address_.end() && found->second.device_id != change.device_id()) {
      ForgetRemote(address, found->second);  // The address has another device now.
    }
    RemoteMember& remote = remote_by_address_[address];
    remote = RemoteMember{change.device_id(), session.mesh_peer_,
                          protocol::EncodePeerChange(change.device_id(), address, change.seen_from(), false,
                                                     Address6Of(address), {change.public_key(), change.session_key(),
                                                      change.ciphers() & 3})};
    // The members here hear of it (unless it is a member here too: it moved,
    // and its leave here will tell them where it went).
    auto entry = directory_.find(address);
    if (entry == directory_.end() || !entry->second.session) {
      directory_[address] = DirectoryEntry{&remote.change, nullptr};
      if (!by_device_.count(remote.device_id)) AnnounceRemote(remote.change, remote.device_id, false);
    }
  }
}

Session* Relay::RouteFromMesh(Session& from, std::span<const uint8_t> packet, packet::Gso gso) {
  auto drop = [this](DropReason reason) -> Session* {
    Drop(reason);
    return nullptr;
  };
  RouteAddresses addresses;
  if (!ParseForRouting(packet, &addresses)) return nullptr;
  // From a device the other relay serves, as it told us.
  const auto source = remote_by_address_.find(addresses.source);
  if (source == remote_by_address_.end() || source->second.relay != from.mesh_peer_) {
    return drop(DropReason::kSpoofedSource);
  }
  const uint32_t destination = addresses.destination;
  if (addresses.fan_out) {
    // To the devices here only: the other relays had it from its own relay.
    ++counters_.broadcast_packets;
    for (const auto& [id, member] : by_device_) Forward(nullptr, *member, packet, gso, false);
    if (local_port_) local_port_->Write(packet, gso);
    return nullptr;
  }
  if (destination == options_.prefix.relay_address()) {
    DeliverToRelayHost(packet, gso);
    return nullptr;
  }
  // Never on to a third relay: to a device here, or nowhere.
  const auto owner = by_address_.find(destination);
  if (owner == by_address_.end()) return drop(DropReason::kUnknownDestination);
  return Forward(&from, *owner->second, packet, gso, true) ? nullptr : owner->second;
}

Session* Relay::RouteToMesh(Session* from, uint32_t destination, std::span<const uint8_t> packet, packet::Gso gso,
                            bool sealed) {
  const auto remote = remote_by_address_.find(destination);
  // The relay's own address is every relay's (each is .1 on its host): its
  // TUN reaches the devices of this relay only.
  if (remote == remote_by_address_.end() || !from) {
    Drop(DropReason::kUnknownDestination);
    return nullptr;
  }
  const auto link = mesh_links_.find(remote->second.relay);
  if (link == mesh_links_.end()) {
    Drop(DropReason::kRelayUnreachable);
    return nullptr;
  }
  return Forward(from, *link->second, packet, gso, from != nullptr, sealed) ? nullptr : link->second;
}

}  // namespace mnedc::relay
