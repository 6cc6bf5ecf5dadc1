// Routing: each packet from a member (or the relay's own TUN) goes to the
// member that owns its destination, to every other member for broadcast and
// multicast, or is dropped and counted with its reason.
#include "mnedc/relay/relay.h"

#include <glog/logging.h>

#include "mnedc/relay/ip_packet.h"
#include "mnedc/relay/session.h"

namespace mnedc::relay {
namespace asio = boost::asio;
using base::Ipv4ToString;
using protocol::ControlMessage;

bool Relay::Forward(Session* from, Session& to, std::span<const uint8_t> packet, packet::Gso gso,
                    bool may_wait) {
  if (may_wait && !to.pushback_.stalled() && !to.link_.closing()) {
    // Room for all of it: a super-packet cut up for this receiver needs a
    // slot per segment (as many as the queue has, at most).
    const std::size_t needed = std::min(to.link_.FramesFor(packet, gso), options_.link.data_queue_frames);
    if (to.link_.data_queue_room() < needed) return false;
  }
  // Counted as forwarded when the receiver's writer takes it (OnDataTaken).
  switch (to.link_.SendData(packet, gso)) {
    case link::FramedLink::Push::kQueuedDroppedOldest:
      Drop(DropReason::kQueueFull);
      if (from && may_wait && to.pushback_.stalled()) ++from->drops_at_stalled_;
      break;
    case link::FramedLink::Push::kQueued:
      if (from && may_wait) from->drops_at_stalled_ = 0;
      break;
    case link::FramedLink::Push::kClosed:
      Drop(DropReason::kReceiverClosing);
      break;
  }
  return true;
}

Session* Relay::Route(Session* from, std::span<const uint8_t> packet, packet::Gso gso) {
  auto drop = [this](DropReason reason) -> Session* {
    Drop(reason);
    return nullptr;
  };
  PacketAddresses addresses;
  if (!ParseForRouting(packet, &addresses)) return nullptr;
  const uint32_t expected_source = from ? from->address_ : options_.prefix.relay_address();
  if (addresses.source != expected_source) return drop(DropReason::kSpoofedSource);

  const uint32_t destination = addresses.destination;
  if (destination == options_.prefix.broadcast() || destination == 0xffffffffu ||
      IsIpv4Multicast(destination)) {
    // Fan-out never waits: one slow member must not hold the others back.
    ++counters_.broadcast_packets;
    for (const auto& [id, member] : by_device_) {
      if (member != from) Forward(from, *member, packet, gso, false);
    }
    // The other relays' devices too (not from the relay's TUN: its address is every relay's).
    if (from) {
      for (const auto& [name, link] : mesh_links_) Forward(from, *link, packet, gso, false);
    }
    if (from && local_port_) local_port_->Write(packet, gso);
    return nullptr;
  }
  if (destination == options_.prefix.relay_address()) {
    if (!from) return drop(DropReason::kNoLocalTun);  // From the relay's own TUN to itself.
    DeliverToRelayHost(packet, gso);
    return nullptr;
  }
  const auto owner = by_address_.find(destination);
  if (owner == by_address_.end()) {
    if (cluster_) return RouteToMesh(from, destination, packet, gso);
    return drop(DropReason::kUnknownDestination);
  }
  // Only a member's packets can wait; the relay's own TUN has no reader to pause.
  return Forward(from, *owner->second, packet, gso, from != nullptr) ? nullptr : owner->second;
}

bool Relay::ParseForRouting(std::span<const uint8_t> packet, PacketAddresses* addresses) {
  *addresses = ParsePacketAddresses(packet);
  if (addresses->version == PacketAddresses::Version::kIpv4) return true;
  Drop(addresses->version == PacketAddresses::Version::kIpv6 ? DropReason::kIpv6 : DropReason::kMalformed);
  return false;
}

void Relay::DeliverToRelayHost(std::span<const uint8_t> packet, packet::Gso gso) {
  if (!local_port_) return Drop(DropReason::kNoLocalTun);
  ++counters_.packets_forwarded;
  counters_.bytes_forwarded += packet.size();
  local_port_->Write(packet, gso);
}

void Relay::SendFromLocal(std::span<const uint8_t> packet, packet::Gso gso) { Route(nullptr, packet, gso); }

asio::awaitable<boost::system::error_code> Relay::ServeTun(tun::PacketPort& tun) {
  local_port_ = &tun;
  const boost::system::error_code failure =
      co_await tun.ReadLoop([this](std::span<const uint8_t> packet, packet::Gso gso) { SendFromLocal(packet, gso); });
  if (local_port_ == &tun) local_port_ = nullptr;
  co_return failure;
}

}  // namespace mnedc::relay
