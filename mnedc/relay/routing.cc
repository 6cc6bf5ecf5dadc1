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
                    bool may_wait, bool sealed) {
  if (may_wait && !to.pushback_.stalled() && !to.link_.closing()) {
    // Room for all of it: a super-packet cut up for this receiver needs a
    // slot per segment (as many as the queue has, at most).
    const std::size_t needed =
        sealed ? 1 : std::min(to.link_.FramesFor(packet, gso), options_.link.data_queue_frames);
    if (to.link_.data_queue_room() < needed) return false;
  }
  // Counted as forwarded when the receiver's writer takes it (OnDataTaken).
  switch (sealed ? to.link_.SendSealed(packet) : to.link_.SendData(packet, gso)) {
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

Relay::Destination Relay::PacketDestination(const Session* from, std::span<const uint8_t> head,
                                            std::size_t size) const {
  using Kind = Destination::Kind;
  RouteAddresses addresses;
  if (const std::optional<DropReason> refused = ClassifyForRouting(head, size, &addresses)) {
    return Destination::Dropped(*refused);
  }
  const uint32_t expected_source = from ? from->address_ : options_.prefix.relay_address();
  if (addresses.source != expected_source) return Destination::Dropped(DropReason::kSpoofedSource);
  if (addresses.fan_out) return Destination::To(Kind::kFanOut);
  const uint32_t destination = addresses.destination;
  if (destination == options_.prefix.relay_address()) {
    // From the relay's own TUN to itself: nowhere.
    return from ? Destination::To(Kind::kRelayHost, destination) : Destination::Dropped(DropReason::kNoLocalTun);
  }
  const auto owner = by_address_.find(destination);
  if (owner != by_address_.end()) return Destination::To(Kind::kMember, destination, owner->second);
  if (cluster_) return Destination::To(Kind::kOtherRelay, destination);
  return Destination::Dropped(DropReason::kUnknownDestination);
}

Relay::Destination Relay::SealedDestination(const Session& from, std::span<const uint8_t> head) const {
  using Kind = Destination::Kind;
  protocol::SealedHeader header;
  if (!protocol::ReadSealedHeader(head, &header)) return Destination::Dropped(DropReason::kMalformed);
  if (from.mesh_) {
    // From a device the other relay serves, as it told us; to one here.
    const auto source = remote_by_address_.find(header.source);
    if (source == remote_by_address_.end() || source->second.relay != from.mesh_peer_) {
      return Destination::Dropped(DropReason::kSpoofedSource);
    }
  } else if (header.source != from.address_) {
    return Destination::Dropped(DropReason::kSpoofedSource);
  }
  const auto owner = by_address_.find(header.destination);
  if (owner == by_address_.end()) {
    if (header.destination == options_.prefix.relay_address()) {
      return Destination::Dropped(DropReason::kUnsealable);
    }
    if (cluster_ && !from.mesh_) return Destination::To(Kind::kOtherRelay, header.destination);
    return Destination::Dropped(DropReason::kUnknownDestination);
  }
  if (!owner->second->keys_ || !owner->second->keys_->seals) {
    return Destination::Dropped(DropReason::kUnsealable);
  }
  return Destination::To(Kind::kMember, header.destination, owner->second);
}

Session* Relay::Route(Session* from, std::span<const uint8_t> packet, packet::Gso gso) {
  const Destination to = PacketDestination(from, packet, packet.size());
  switch (to.kind) {
    case Destination::Kind::kDrop:
      Drop(to.drop);
      return nullptr;
    case Destination::Kind::kFanOut:
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
    case Destination::Kind::kRelayHost:
      DeliverToRelayHost(packet, gso);
      return nullptr;
    case Destination::Kind::kOtherRelay:
      return RouteToMesh(from, to.address, packet, gso);
    case Destination::Kind::kMember:
      break;
  }
  // Only a member's packets can wait; the relay's own TUN has no reader to pause.
  return Forward(from, *to.member, packet, gso, from != nullptr) ? nullptr : to.member;
}

Session* Relay::RouteSealed(Session& from, std::span<const uint8_t> payload) {
  const Destination to = SealedDestination(from, payload);
  switch (to.kind) {
    case Destination::Kind::kMember:
      ++counters_.sealed_routed;
      return Forward(&from, *to.member, payload, {}, true, true) ? nullptr : to.member;
    case Destination::Kind::kOtherRelay:
      ++counters_.sealed_routed;
      return RouteToMesh(&from, to.address, payload, {}, true);
    case Destination::Kind::kDrop:
      Drop(to.drop);
      return nullptr;
    case Destination::Kind::kFanOut:
    case Destination::Kind::kRelayHost:
      break;  // Never for a sealed frame.
  }
  return nullptr;
}

bool Relay::ParseForRouting(std::span<const uint8_t> packet, RouteAddresses* addresses) {
  const std::optional<DropReason> refused = ClassifyForRouting(packet, packet.size(), addresses);
  if (refused) Drop(*refused);
  return !refused;
}

std::optional<DropReason> Relay::ClassifyForRouting(std::span<const uint8_t> head, std::size_t size,
                                                    RouteAddresses* addresses) const {
  const PacketAddresses parsed = ParsePacketAddresses(head, size);
  switch (parsed.version) {
    case PacketAddresses::Version::kIpv4:
      addresses->source = parsed.source;
      addresses->destination = parsed.destination;
      addresses->fan_out = parsed.destination == options_.prefix.broadcast() || parsed.destination == 0xffffffffu ||
                           IsIpv4Multicast(parsed.destination);
      return std::nullopt;
    case PacketAddresses::Version::kIpv6:
      break;
    case PacketAddresses::Version::kInvalid:
      return DropReason::kMalformed;
  }
  if (!options_.prefix6) return DropReason::kIpv6;
  // Link-local sources are refused rather than guessed at: each device's
  // kernel makes its own fe80:: addresses, which say nothing about who sent
  // the packet and are unique on no link the overlay has (clients turn them
  // off on their TUN, so their kernels send from the overlay address).
  if (base::IsIpv6LinkLocal(parsed.source6)) return DropReason::kLinkLocal;
  // A source that is no lease of the /64 (::, another prefix) is spoofed:
  // 0 never matches a sender's address.
  const std::optional<uint32_t> source_host = options_.prefix6->HostOf(parsed.source6);
  addresses->source = source_host && *source_host <= ~options_.prefix.mask() ? options_.prefix.network + *source_host : 0;
  addresses->fan_out = base::IsIpv6Multicast(parsed.destination6);
  if (addresses->fan_out) return std::nullopt;
  // To a host number of the IPv4 network other than its network and
  // broadcast addresses (which IPv6 has no use for).
  const std::optional<uint32_t> host = options_.prefix6->HostOf(parsed.destination6);
  if (!host || *host == 0 || *host >= ~options_.prefix.mask()) return DropReason::kUnknownDestination;
  addresses->destination = options_.prefix.network + *host;
  return std::nullopt;
}

Session* Relay::SpliceRoute(Session& from, const link::SpliceOffer& offer) {
  // Only what Route or RouteSealed would hand whole to one member's queue
  // now, decided by the same functions; everything else (fan-out, the
  // relay's TUN, other relays, a receiver that must have it cut, a full or
  // stalled one, a drop) is read and routed as usual, which also counts it.
  const Destination to = offer.type == protocol::FrameType::kSealed
                             ? SealedDestination(from, offer.head)
                             : PacketDestination(&from, offer.head, offer.size);
  if (to.kind != Destination::Kind::kMember || to.member == &from) return nullptr;
  Session& member = *to.member;
  if (member.pushback_.stalled() || !member.link_.CanTakeSplice(offer.frame_size)) return nullptr;
  if (offer.type == protocol::FrameType::kSuperPacket && !member.link_.peer_takes_super_packets()) return nullptr;
  return &member;
}

std::string Relay::Address6Of(uint32_t address) const {
  const std::optional<base::Ipv6Address> address6 = Ipv6Of(address);
  return address6 ? std::string(address6->begin(), address6->end()) : std::string();
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
