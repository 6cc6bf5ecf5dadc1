// Membership: who may join (tokens, certificates), joining with a lease and
// the peer snapshot, leaving, superseding, revoking, kicking, and telling
// every member about the others.
#include "mnedc/relay/relay.h"

#include <glog/logging.h>
#include <malloc.h>

#include <algorithm>

#include "mnedc/base/device_id.h"
#include "mnedc/base/ipv4.h"
#include "mnedc/protocol/control_codec.h"
#include "mnedc/protocol/peer_frames.h"
#include "mnedc/relay/session.h"

namespace mnedc::relay {
namespace {
namespace asio = boost::asio;
// A snapshot goes out in pieces of about this many bytes: a member joining a
// large fleet holds one piece at a time, not one buffer per peer.
constexpr std::size_t kSnapshotPiece = 32 * 1024;
// Members whose snapshot is being sent at once; the others wait their turn
// (they hear of changes meanwhile). Keeps the loop's queue short in a join
// storm, so Hellos are read promptly while snapshots stream.
constexpr std::size_t kSnapshotsAtOnce = 64;

protocol::PeerMode GrantedMode(protocol::PeerMode asked) {
  // A mode this version does not know gets the original form, which every
  // client understands.
  return asked == protocol::PEERS_BATCHED || asked == protocol::PEERS_NONE ? asked
                                                                          : protocol::PEERS_EACH;
}
}  // namespace
using base::Ipv4ToString;
using protocol::ControlMessage;

std::string Relay::Authorize(const Session& session, const std::string& device_id) const {
  if (options_.bind_device_to_certificate) {
    const auto& names = session.link_.stream().certificate_names();
    if (names.empty()) {
      return "this relay binds device IDs to client certificates: join over tls:// or wss:// "
             "with a certificate that names " + device_id;
    }
    if (std::find(names.begin(), names.end(), device_id) == names.end()) {
      return "the client certificate does not name device " + device_id;
    }
  }
  if (std::string why = policy_.Check(device_id, session.credentials_, session.presented_credentials_);
      !why.empty()) {
    return why;
  }
  return policy_.CheckKey(device_id, session.public_key());
}

std::size_t Relay::SetJoinPolicy(JoinPolicy policy) {
  policy_ = std::move(policy);
  std::vector<Session*> revoked;
  for (const auto& [id, session] : by_device_) {
    if (!Authorize(*session, id).empty()) revoked.push_back(session);
  }
  for (Session* session : revoked) {
    ++counters_.revoked;
    LOG(WARNING) << "device " << session->device_id_ << " (" << Ipv4ToString(session->address_)
                 << ") is no longer authorized: disconnecting it";
    session->link_.set_end_reason("token revoked");
    session->link_.SendErrorAndClose(protocol::Error::UNAUTHORIZED,
                                     "the relay no longer accepts this device's token");
    // It leaves now, not when its connection has finished closing: its address
    // must not receive another packet.
    Leave(*session);
  }
  return revoked.size();
}

bool Relay::Kick(const std::string& device_id, const std::string& reason) {
  const auto found = by_device_.find(device_id);
  if (found == by_device_.end()) return false;
  Session& session = *found->second;
  ++counters_.kicked;
  LOG(WARNING) << "device " << device_id << " (" << Ipv4ToString(session.address_)
               << ") kicked by an operator: " << reason;
  session.link_.set_end_reason("kicked by an operator: " + reason);
  session.link_.SendErrorAndClose(protocol::Error::KICKED, "closed by the relay's operator: " + reason);
  Leave(session);
  return true;
}

void Relay::RejectJoin(Session& session, protocol::Error::Code code, const std::string& why) {
  ++counters_.joins_rejected;
  LOG_EVERY_N(WARNING, 20) << session.seen_from() << ": join refused: " << why
                           << " (refusal #" << google::COUNTER << ")";
  session.link_.set_end_reason("join refused: " + why);
  session.link_.SendErrorAndClose(code, why);
}

void Relay::Join(Session& session, const protocol::Hello& hello) {
  auto reject = [&](protocol::Error::Code code, const std::string& why) { RejectJoin(session, code, why); };
  if (hello.protocol_version() != protocol::kProtocolVersion) {
    return reject(protocol::Error::VERSION_MISMATCH,
                  "protocol version " + std::to_string(hello.protocol_version()) +
                      " is not supported; this relay speaks " +
                      std::to_string(protocol::kProtocolVersion));
  }
  const std::string& id = hello.device_id();
  if (!base::IsValidDeviceId(id)) return reject(protocol::Error::BAD_REQUEST, base::kDeviceIdRule);
  // Kept (as a digest) so a reload of the token files can re-check members.
  session.credentials_ = DigestToken(hello.credentials());
  session.presented_credentials_ = !hello.credentials().empty();
  // Keys: the public key alone (a device that seals nothing), or with a
  // session key; 32 bytes each.
  if (!hello.public_key().empty() || !hello.session_key().empty()) {
    if (hello.public_key().size() != seal::kKeySize ||
        (!hello.session_key().empty() && hello.session_key().size() != seal::kKeySize)) {
      return reject(protocol::Error::BAD_REQUEST,
                    "public_key must be 32 bytes, and session_key 32 bytes or absent (with a public_key)");
    }
    auto keys = std::make_unique<Session::Keys>();
    std::copy(hello.public_key().begin(), hello.public_key().end(), keys->public_key.begin());
    std::copy(hello.session_key().begin(), hello.session_key().end(), keys->session_key.begin());
    keys->seals = !hello.session_key().empty();
    keys->ciphers = hello.ciphers() & (protocol::OPENS_AES_256_GCM | protocol::SEALS_AES_256_GCM);
    session.keys_ = std::move(keys);
  }
  if (std::string why = Authorize(session, id); !why.empty()) {
    ++counters_.auth_failures;
    return reject(protocol::Error::UNAUTHORIZED, why);
  }
  // Trust on first use, where the operator has not bound the device's key: on
  // this relay, or for the whole network in the cluster store (FinishJoin).
  if (!cluster_ && policy_.OperatorKey(id) == nullptr) {
    if (std::string why = keys_.Check(id, session.public_key()); !why.empty()) {
      ++counters_.auth_failures;
      return reject(protocol::Error::UNAUTHORIZED, why);
    }
  }
  if (shutting_down_) return reject(protocol::Error::SHUTTING_DOWN, "relay is shutting down");
  session.device_id_ = id;
  session.peer_mode_ = GrantedMode(hello.peers());
  session.wants_super_packets_ = hello.super_packets();
  if (cluster_) {
    // The address comes from the cluster store: the session's reader awaits
    // FinishJoin (Session::FinishControl) and reads nothing meanwhile.
    session.requested_address_ = hello.previous_address();
    session.join_pending_ = true;
    return;
  }
  const auto address = leases_.pool().Acquire(id, hello.previous_address());
  if (!address) {
    return reject(protocol::Error::POOL_EXHAUSTED,
                  "no free address in " + options_.prefix.ToString() + " (" +
                      std::to_string(leases_.pool().capacity()) + " members)");
  }
  leases_.Changed();
  CompleteJoin(session, *address);
}

asio::awaitable<void> Relay::FinishJoin(Session& session) {
  session.join_pending_ = false;
  std::string public_key;
  if (session.keys_) public_key.assign(session.keys_->public_key.begin(), session.keys_->public_key.end());
  const bool check_key = policy_.OperatorKey(session.device_id_) == nullptr;
  const StoreLease lease =
      co_await cluster_->Acquire(session.device_id_, session.requested_address_, std::move(public_key), check_key);
  if (session.link_.closing()) co_return;  // Timed out, or the relay shut down, meanwhile.
  if (shutting_down_) co_return RejectJoin(session, protocol::Error::SHUTTING_DOWN, "relay is shutting down");
  if (lease.wrong_key) {
    ++counters_.auth_failures;
    co_return RejectJoin(session, protocol::Error::UNAUTHORIZED, lease.error);
  }
  if (!lease.address) {
    co_return RejectJoin(session, lease.unavailable ? protocol::Error::UNAVAILABLE : protocol::Error::POOL_EXHAUSTED,
                         lease.error);
  }
  // Another device here with the address the store gave: the store lost
  // what it knew (its data was wiped?). Never two devices on one address.
  if (auto holder = by_address_.find(*lease.address);
      holder != by_address_.end() && holder->second->device_id_ != session.device_id_) {
    LOG(ERROR) << "the cluster store gave " << Ipv4ToString(*lease.address) << " to " << session.device_id_
               << ", but " << holder->second->device_id_ << " holds it here: refusing the join";
    co_return RejectJoin(session, protocol::Error::UNAVAILABLE,
                         "the cluster store gave an address another device holds on this relay");
  }
  CompleteJoin(session, *lease.address);
}

void Relay::CompleteJoin(Session& session, uint32_t address) {
  const std::string& id = session.device_id_;
  // The same device joined again (it lost its connection and we have not noticed
  // yet, or it runs twice): the newer connection wins, the older one is told why.
  if (auto existing = by_device_.find(id); existing != by_device_.end()) {
    Session& old = *existing->second;
    LOG(WARNING) << "device " << id << " joined again from " << session.seen_from()
                 << "; closing its older connection from " << old.seen_from();
    by_device_.erase(existing);
    by_address_.erase(old.address_);
    directory_.erase(old.address_);
    SnapshotDone(old);
    old.Supersede();
    ++counters_.superseded;
  }
  session.address_ = address;
  session.joined_ = true;
  // Plain TCP only (the link checks); a rate limit counts every packet as it
  // is read, so none under one.
  session.link_.set_splice_reads(options_.splice && options_.rate_limit == 0);
  protocol::MemberKeys keys;
  if (session.keys_) {
    keys.public_key = std::string_view(reinterpret_cast<const char*>(session.keys_->public_key.data()), seal::kKeySize);
    if (session.keys_->seals) {
      keys.session_key =
          std::string_view(reinterpret_cast<const char*>(session.keys_->session_key.data()), seal::kKeySize);
      keys.ciphers = session.keys_->ciphers;
    }
  }
  session.change_ = protocol::EncodePeerChange(id, address, session.seen_from(), false, Address6Of(address), keys);
  by_device_[id] = &session;
  by_address_[address] = &session;
  directory_[address] = DirectoryEntry{&session.change_, &session};
  members_at_trim_ = std::max(members_at_trim_, by_device_.size());
  ++counters_.joins;
  if (cluster_) cluster_->Joined(id, address, session.seen_from());

  ControlMessage lease;
  lease.mutable_lease()->set_address(address);
  lease.mutable_lease()->set_prefix_length(options_.prefix.length);
  lease.mutable_lease()->set_mtu(options_.mtu);
  lease.mutable_lease()->set_relay_address(options_.prefix.relay_address());
  lease.mutable_lease()->set_peers(session.peer_mode_);
  const bool super_packets = options_.super_packets && session.wants_super_packets_;
  lease.mutable_lease()->set_super_packets(super_packets);
  lease.mutable_lease()->set_stun_port(options_.stun_port);
  for (const std::string& relay : RelayList()) lease.mutable_lease()->add_relays(relay);
  if (options_.prefix6) {
    lease.mutable_lease()->set_address6(Address6Of(address));
    lease.mutable_lease()->set_relay_address6(Address6Of(options_.prefix.relay_address()));
    lease.mutable_lease()->set_prefix_length6(64);
  }
  session.link_.set_peer_takes_super_packets(super_packets);
  session.link_.SendControl(lease);
  // The snapshot of present members follows, pulled by the writer as the
  // member takes it (ContinueSnapshot); its own join goes to the others.
  if (session.peer_mode_ != protocol::PEERS_NONE) StartSnapshot(session);
  Announce(session, false);
  session.joined_in_round_ = announce_round_;
  session.link_.MarkEstablished();
  LOG(INFO) << "device " << id << " joined from " << session.seen_from() << " over "
            << session.stream_kind() << " as " << Ipv4ToString(address);
}

void Relay::SendRelayList() {
  ControlMessage message;
  for (const std::string& relay : RelayList()) message.mutable_relay_list()->add_relays(relay);
  for (const auto& [id, member] : by_device_) member->link_.SendControl(message);
}

std::vector<std::string> Relay::RelayList() const {
  std::vector<std::string> relays = options_.relays;
  if (cluster_) {
    // Another relay only while linked with this one: its devices and ours
    // reach each other, so a device here may move there (one that failed the
    // mesh's authentication, or is not reached yet, is not named).
    const std::vector<RelayPeer> peers = cluster_->Peers();
    auto unlinked = [&](const std::string& relay) {
      return std::any_of(peers.begin(), peers.end(),
                         [&](const RelayPeer& p) { return p.advertise == relay && !mesh_links_.count(p.name); });
    };
    for (std::string& relay : cluster_->Relays()) {
      if (relays.size() >= kMaxRelaysInLease) break;
      if (unlinked(relay)) continue;
      if (std::find(relays.begin(), relays.end(), relay) == relays.end()) relays.push_back(std::move(relay));
    }
  }
  return relays;
}

void Relay::Leave(Session& session) {
  if (!session.joined_ || session.superseded_) return;
  session.joined_ = false;
  SnapshotDone(session);
  by_device_.erase(session.device_id_);
  by_address_.erase(session.address_);
  directory_.erase(session.address_);
  if (cluster_) {
    cluster_->Left(session.device_id_);
  } else {
    leases_.pool().Release(session.device_id_);
    leases_.Changed();
  }
  ++counters_.leaves;
  Announce(session, true);
  // It left here for another relay of the cluster, which told us first.
  if (auto remote = remote_by_address_.find(session.address_);
      remote != remote_by_address_.end() && remote->second.device_id == session.device_id_) {
    directory_[session.address_] = DirectoryEntry{&remote->second.change, nullptr};
    AnnounceRemote(remote->second.change, session.device_id_, false);
  }
}

void Relay::MemberElsewhere(const std::string& device_id) {
  const auto found = by_device_.find(device_id);
  if (found == by_device_.end()) return;
  Session& session = *found->second;
  LOG(WARNING) << "device " << device_id << " has joined another relay of the cluster since; closing its "
               << "stale connection here from " << session.seen_from();
  // Gone from here for everyone (the other relay announces it there), then
  // told why, should it be listening after all.
  Leave(session);
  session.Supersede();
  ++counters_.superseded;
}

void Relay::Announce(const Session& subject, bool gone) {
  QueueChange({gone ? protocol::EncodePeerChange(subject.device_id_, subject.address_, {}, true, Address6Of(subject.address_)) : subject.change_,
               subject.device_id_, gone, true});
}

void Relay::AnnounceRemote(std::string change, const std::string& device_id, bool gone) {
  QueueChange({std::move(change), device_id, gone, false});
}

void Relay::QueueChange(PendingChange change) {
  pending_changes_.push_back(std::move(change));
  if (pending_changes_.size() > 1) return;  // The timer is already set.
  // Gather what else happens meanwhile: the larger the fleet, the longer
  // (each batch costs a write per member), within max_announce_delay.
  const auto per_member = std::chrono::microseconds(100) * by_device_.size();
  const auto delay = std::clamp<std::chrono::steady_clock::duration>(
      per_member, options_.min_announce_delay,
      std::max(options_.min_announce_delay, options_.max_announce_delay));
  announce_timer_.expires_after(delay);
  announce_timer_.async_wait([weak = std::weak_ptr<Relay*>(alive_)](const boost::system::error_code& ec) {
    const auto self = weak.lock();
    if (ec || !self) return;
    (*self)->SendAnnouncements();
  });
}

void Relay::SendAnnouncements() {
  if (pending_changes_.empty()) return;
  const uint64_t round = announce_round_++;
  ++counters_.peer_batches;
  counters_.peer_changes += pending_changes_.size();
  // Each form is encoded once and shared by every member that takes it.
  std::shared_ptr<const std::vector<uint8_t>> batched;
  std::shared_ptr<const std::vector<uint8_t>> each;
  auto encode = [this](protocol::PeerMode mode, const std::string* except, bool local_only = false) {
    protocol::PeerFrameBuilder builder(mode);
    for (const PendingChange& pending : pending_changes_) {
      if (except && pending.device_id == *except) continue;
      if (local_only && !pending.local) continue;
      builder.Add(pending.change, pending.gone);
    }
    builder.Flush();
    return std::make_shared<const std::vector<uint8_t>>(std::move(builder.out()));
  };
  for (const auto& [id, member] : by_device_) {
    switch (member->peer_mode_) {
      case protocol::PEERS_NONE:
        break;
      case protocol::PEERS_BATCHED:
        // A member finds its own join in the batch too, and skips it.
        if (!batched) batched = encode(protocol::PEERS_BATCHED, nullptr);
        member->link_.SendEncodedControl(batched);
        break;
      default:
        // Clients of the original form would list themselves: a member that
        // joined in this round gets the batch without its own join.
        if (member->joined_in_round_ == round) {
          auto own = encode(protocol::PEERS_EACH, &member->device_id_);
          if (!own->empty()) member->link_.SendEncodedControl(std::move(own));
          break;
        }
        if (!each) each = encode(protocol::PEERS_EACH, nullptr);
        member->link_.SendEncodedControl(each);
        break;
    }
  }
  // The other relays hear of the devices here (not of each other's).
  std::shared_ptr<const std::vector<uint8_t>> local;
  for (const auto& [name, link] : mesh_links_) {
    if (!local) local = encode(protocol::PEERS_BATCHED, nullptr, true);
    if (!local->empty()) link->link_.SendEncodedControl(local);
  }
  pending_changes_.clear();
  if (pending_changes_.capacity() > 4096) pending_changes_.shrink_to_fit();
  // Most of a large fleet left (a mass disconnect): give the memory its
  // sessions used back to the system, rather than hold the peak for good.
  // At most once per halving of the membership, down to the last 64 members
  // (about 0.5 MiB of sessions): a mass leave costs about log2(N) trims.
  const std::size_t members = by_device_.size();
  if (members_at_trim_ >= 64 && members * 2 <= members_at_trim_) {
    ::malloc_trim(0);
    VLOG(1) << "membership fell from " << members_at_trim_ << " to " << by_device_.size()
            << ": returned free memory to the system";
    members_at_trim_ = by_device_.size();
  }
}

void Relay::StartSnapshot(Session& session) {
  session.snapshot_next_ = 0;
  if (snapshots_sending_ >= kSnapshotsAtOnce) {
    session.snapshot_queued_ = snapshot_queue_.insert(snapshot_queue_.end(), &session);
    return;
  }
  ++snapshots_sending_;
  session.snapshot_pending_ = true;
  session.link_.WakeWriter();
}

void Relay::SnapshotDone(Session& session) {
  if (session.snapshot_queued_) {
    snapshot_queue_.erase(*session.snapshot_queued_);
    session.snapshot_queued_.reset();
  }
  if (!session.snapshot_pending_) return;
  session.snapshot_pending_ = false;
  --snapshots_sending_;
  while (!snapshot_queue_.empty() && snapshots_sending_ < kSnapshotsAtOnce) {
    Session& next = *snapshot_queue_.front();
    snapshot_queue_.pop_front();
    next.snapshot_queued_.reset();
    StartSnapshot(next);
  }
}

void Relay::ContinueSnapshot(Session& session) {
  if (!session.snapshot_pending_ || (!session.joined_ && !session.mesh_)) return;
  protocol::PeerFrameBuilder builder(session.peer_mode_);
  auto next = directory_.lower_bound(session.snapshot_next_);
  for (; next != directory_.end() && builder.size() < kSnapshotPiece; ++next) {
    const DirectoryEntry& entry = next->second;
    // Another relay hears only of the members here.
    if (entry.session == &session || (session.mesh_ && !entry.session)) continue;
    builder.Add(*entry.change, false);
  }
  const bool done = next == directory_.end();
  if (done) {
    builder.EndSnapshot();
  } else {
    builder.Flush();
    session.snapshot_next_ = next->first;
  }
  session.link_.SendEncodedControl(
      std::make_shared<const std::vector<uint8_t>>(std::move(builder.out())));
  if (done) SnapshotDone(session);
}

}  // namespace mnedc::relay
