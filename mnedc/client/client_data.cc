// The client's data path: packets from the TUN to the relay (sealed for a
// peer with keys, whole or as segments), and what the relay delivers back.
// Joining, reconnecting and the peer table are in client.cc.
#include <utility>

#include "mnedc/client/client.h"
#include "mnedc/protocol/frame.h"

namespace mnedc::client {

bool Client::SendPacket(std::span<const uint8_t> packet) { return SendPacket(packet, {}); }

bool Client::SendPacket(std::span<const uint8_t> packet, packet::Gso gso) { return Send(packet, gso, {}); }

bool Client::SendOwnedPacket(std::span<uint8_t> packet, packet::Gso gso) { return Send(packet, gso, packet); }

bool Client::Send(std::span<const uint8_t> packet, packet::Gso gso, std::span<uint8_t> writable) {
  const uint32_t sealed_to = sealing_ ? sealing_->SealingPeerFor(packet) : 0;
  // Direct when the path to that peer is, relay or no relay.
  if (sealed_to && direct_ && direct_->Send(sealed_to, packet, gso)) {
    ++counters_.packets_sent;
    counters_.bytes_sent += packet.size();
    return true;
  }
  if (!joined()) {
    ++counters_.dropped_not_connected;
    return false;
  }
  switch (sealed_to ? SendSealed(sealed_to, packet, gso, writable) : link_->SendData(packet, gso)) {
    case link::FramedLink::Push::kQueued:
      ++counters_.packets_sent;
      counters_.bytes_sent += packet.size();
      return true;
    case link::FramedLink::Push::kQueuedDroppedOldest:
      ++counters_.packets_sent;
      counters_.bytes_sent += packet.size();
      ++counters_.dropped_queue_full;
      return true;
    case link::FramedLink::Push::kClosed:
      break;
  }
  ++counters_.dropped_not_connected;
  return false;
}

link::FramedLink::Push Client::SendSealed(uint32_t peer, std::span<const uint8_t> packet, packet::Gso gso,
                                          std::span<uint8_t> writable) {
  using Push = link::FramedLink::Push;
  // Keys first: a frame once queued must be filled. A peer whose keys give
  // none gets nothing (counted), never the packet in the clear.
  if (!sealing_->Prepare(peer)) return Push::kClosed;
  const bool whole = !gso.super() || link_->peer_takes_super_packets();
  if (whole && !writable.empty()) {
    // Sealed where it lies, then sent from there if the link is idle.
    uint8_t header[protocol::kSealedHeaderSize];
    uint8_t tag[protocol::kSealedTagSize];
    if (!sealing_->SealInPlace(peer, writable, gso, header, tag)) return Push::kClosed;
    return link_->SendSealedParts(header, writable, tag);
  }
  Push result = Push::kQueued;
  // One SEALED frame in the queue, its packet sealed from `in` (which may be
  // the frame's own packet part) into it.
  auto seal_one = [&](std::size_t size, auto&& build) -> bool {
    Push push = Push::kQueued;
    const std::span<uint8_t> out = link_->AppendSealed(Sealing::SealedSize(size), &push);
    if (push == Push::kClosed) return false;
    if (push == Push::kQueuedDroppedOldest) result = push;
    const std::span<uint8_t> body = out.subspan(protocol::kSealedHeaderSize, size);
    const std::pair<std::span<const uint8_t>, packet::Gso> in = build(body);
    return sealing_->Seal(peer, in.first, in.second, out);
  };
  if (whole) {
    const bool sealed = seal_one(packet.size(), [&](std::span<uint8_t>) { return std::pair(packet, gso); });
    return sealed ? result : Push::kClosed;
  }
  // The relay takes no super-packets: each segment is built in its frame and
  // sealed there.
  packet::SuperPacketLayout layout;
  if (packet::ParseSuperPacket(packet, gso, &layout) != packet::GsoVerdict::kOk) return Push::kClosed;
  for (std::size_t i = 0; i < layout.segments; ++i) {
    const bool sealed = seal_one(packet::SegmentSize(layout, gso, i), [&](std::span<uint8_t> body) {
      packet::BuildSegment(packet, gso, layout, i, body);
      return std::pair(std::span<const uint8_t>(body), packet::Gso{});
    });
    if (!sealed) return Push::kClosed;
  }
  return result;
}

link::DataVerdict Client::OnSealed(std::span<uint8_t> payload) {
  std::span<const uint8_t> packet;
  packet::Gso gso;
  uint32_t source = 0;
  switch (sealing_ ? sealing_->Open(payload, &packet, &gso, &source) : Sealing::Verdict::kDropped) {
    case Sealing::Verdict::kOpened:
      return OnData(packet, gso);
    case Sealing::Verdict::kDisco:
      if (direct_) direct_->OnDisco(source, packet, std::nullopt);
      return link::DataVerdict::kAccepted;
    case Sealing::Verdict::kDropped:
      break;
  }
  ++counters_.dropped_unsealed;
  return link::DataVerdict::kAccepted;
}

bool Client::SendDiscoThroughRelay(uint32_t peer, std::span<const uint8_t> body) {
  if (!joined() || !sealing_->Prepare(peer)) return false;
  link::FramedLink::Push push = link::FramedLink::Push::kQueued;
  const std::span<uint8_t> out = link_->AppendSealed(Sealing::SealedSize(body.size()), &push);
  if (push == link::FramedLink::Push::kClosed) return false;
  return sealing_->Seal(peer, body, {}, out);
}

link::DataVerdict Client::OnData(std::span<const uint8_t> packet, packet::Gso gso) {
  ++counters_.packets_received;
  counters_.bytes_received += packet.size();
  if (super_packet_handler_) {
    super_packet_handler_(packet, gso);
  } else if (packet_handler_ && !gso.super()) {
    packet_handler_(packet);
  } else if (packet_handler_) {
    // A handler of ordinary packets only: hand it the segments (the link
    // checked the super-packet already).
    segment_.resize(65536);
    packet::ForEachSegment(packet, gso, segment_, packet_handler_);
  }
  return link::DataVerdict::kAccepted;
}

}  // namespace mnedc::client
