// Membership: who may join (tokens, certificates), joining with a lease and
// the peer snapshot, leaving, superseding, revoking, kicking, and telling
// every member about the others.
#include "mnedc/relay/relay.h"

#include <glog/logging.h>

#include <algorithm>

#include "mnedc/base/device_id.h"
#include "mnedc/base/ipv4.h"
#include "mnedc/protocol/control_codec.h"
#include "mnedc/relay/session.h"

namespace mnedc::relay {
namespace asio = boost::asio;
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
  return policy_.Check(device_id, session.credentials_, session.presented_credentials_);
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

void Relay::Join(Session& session, const protocol::Hello& hello) {
  auto reject = [&](protocol::Error::Code code, const std::string& why) {
    ++counters_.joins_rejected;
    LOG_EVERY_N(WARNING, 20) << session.seen_from() << ": join refused: " << why
                             << " (refusal #" << google::COUNTER << ")";
    session.link_.set_end_reason("join refused: " + why);
    session.link_.SendErrorAndClose(code, why);
  };
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
  if (std::string why = Authorize(session, id); !why.empty()) {
    ++counters_.auth_failures;
    return reject(protocol::Error::UNAUTHORIZED, why);
  }
  if (shutting_down_) return reject(protocol::Error::SHUTTING_DOWN, "relay is shutting down");

  // The same device joined again (it lost its connection and we have not noticed
  // yet, or it runs twice): the newer connection wins, the older one is told why.
  if (auto existing = by_device_.find(id); existing != by_device_.end()) {
    Session& old = *existing->second;
    LOG(WARNING) << "device " << id << " joined again from " << session.seen_from()
                 << "; closing its older connection from " << old.seen_from();
    by_device_.erase(existing);
    by_address_.erase(old.address_);
    old.Supersede();
    ++counters_.superseded;
  }
  const auto address = leases_.pool().Acquire(id, hello.previous_address());
  if (!address) {
    return reject(protocol::Error::POOL_EXHAUSTED,
                  "no free address in " + options_.prefix.ToString() + " (" +
                      std::to_string(leases_.pool().capacity()) + " members)");
  }
  leases_.Changed();
  session.device_id_ = id;
  session.address_ = *address;
  session.joined_ = true;
  by_device_[id] = &session;
  by_address_[*address] = &session;
  ++counters_.joins;

  ControlMessage lease;
  lease.mutable_lease()->set_address(*address);
  lease.mutable_lease()->set_prefix_length(options_.prefix.length);
  lease.mutable_lease()->set_mtu(options_.mtu);
  lease.mutable_lease()->set_relay_address(options_.prefix.relay_address());
  session.link_.SendControl(lease);

  ControlMessage announce;
  for (const auto& [other_id, other] : by_device_) {
    if (other == &session) continue;
    auto* peer = announce.mutable_peer_announce();
    peer->set_device_id(other_id);
    peer->set_address(other->address_);
    peer->set_seen_from(other->seen_from());
    session.link_.SendControl(announce);
  }
  ControlMessage snapshot_end;
  snapshot_end.mutable_snapshot_end();
  session.link_.SendControl(snapshot_end);

  auto* self = announce.mutable_peer_announce();
  self->set_device_id(id);
  self->set_address(*address);
  self->set_seen_from(session.seen_from());
  Broadcast(announce, &session);
  session.link_.MarkEstablished();
  LOG(INFO) << "device " << id << " joined from " << session.seen_from() << " over "
            << session.stream_kind() << " as " << Ipv4ToString(*address);
}

void Relay::Leave(Session& session) {
  if (!session.joined_ || session.superseded_) return;
  session.joined_ = false;
  by_device_.erase(session.device_id_);
  by_address_.erase(session.address_);
  leases_.pool().Release(session.device_id_);
  leases_.Changed();
  ++counters_.leaves;
  ControlMessage gone;
  gone.mutable_peer_gone()->set_device_id(session.device_id_);
  gone.mutable_peer_gone()->set_address(session.address_);
  Broadcast(gone, nullptr);
}

void Relay::Broadcast(const ControlMessage& message, const Session* except) {
  if (!protocol::EncodeControlFrame(message, broadcast_scratch_)) return;
  for (const auto& [id, member] : by_device_) {
    if (member != except) member->link_.SendEncodedControl(broadcast_scratch_);
  }
}

}  // namespace mnedc::relay
