// FramedLink's data going out: a packet or a super-packet into the data
// queue (whole, or cut into segments for a peer that does not take
// super-packets), or straight to the socket when nothing is ahead of it.
#include <algorithm>
#include <array>
#include <boost/asio/buffer.hpp>

#include "mnedc/link/framed_link.h"
#include "mnedc/protocol/frame.h"

namespace mnedc::link {
namespace {
namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

// A frame at least this large goes straight from the sender's buffer to the
// socket when nothing is ahead of it (FramedLink::SendDirect): the copy into
// a queue slot costs more than a write of its own.
constexpr std::size_t kDirectSendMin = 16 * 1024;
}  // namespace

FramedLink::Push FramedLink::SendData(std::span<const uint8_t> packet) {
  if (closing_) return Push::kClosed;
  const bool dropped = data_queue_.PushDropOldest(protocol::FrameType::kData, packet);
  wake_writer_.cancel();
  if (dropped) {
    ++counters_.data_dropped_queue_full;
    return Push::kQueuedDroppedOldest;
  }
  return Push::kQueued;
}

void AddLinkCounters(LinkCounters& sum, const LinkCounters& more) {
  sum.frames_in += more.frames_in;
  sum.bytes_in += more.bytes_in;
  sum.frames_out += more.frames_out;
  sum.bytes_out += more.bytes_out;
  sum.data_dropped_queue_full += more.data_dropped_queue_full;
  sum.data_dropped_on_close += more.data_dropped_on_close;
  sum.unknown_frames_skipped += more.unknown_frames_skipped;
  sum.super_packets_in += more.super_packets_in;
  sum.super_packets_out += more.super_packets_out;
  sum.direct_sends += more.direct_sends;
  sum.super_packets_split += more.super_packets_split;
  sum.bad_super_packets += more.bad_super_packets;
  sum.bad_sealed += more.bad_sealed;
  sum.spliced_in += more.spliced_in;
  sum.spliced_out += more.spliced_out;
}

bool FramedLink::SendDirect(protocol::FrameType type, std::span<const uint8_t> prefix,
                            std::span<const uint8_t> payload, std::span<const uint8_t> suffix) {
  // Only a large frame, and only when it would be the next bytes on the wire
  // anyway: a small one waits to share the writer's next write with others.
  const std::size_t payload_size = prefix.size() + payload.size() + suffix.size();
  if (payload_size < kDirectSendMin || writing_ || !writer_running_ || closing_ || closed_ ||
      !direct_rest_.empty() || pipe_pending_ > 0 || !control_queue_.empty() || !data_queue_.empty()) {
    return false;
  }
  uint8_t header[protocol::kFrameHeaderSize];
  protocol::WriteFrameHeader(type, static_cast<uint32_t>(payload_size), header);
  const std::array<asio::const_buffer, 4> buffers{asio::buffer(header), asio::buffer(prefix.data(), prefix.size()),
                                                  asio::buffer(payload.data(), payload.size()),
                                                  asio::buffer(suffix.data(), suffix.size())};
  const std::size_t sent = stream_->TrySendNow(buffers);
  if (sent == 0) return false;
  const std::size_t total = protocol::kFrameHeaderSize + payload_size;
  if (sent < total) {
    // The socket took part of it: the writer sends the rest before anything else.
    if (direct_rest_.capacity() < protocol::kMaxFrameSize) direct_rest_.reserve(protocol::kMaxFrameSize);
    std::size_t skip = sent;
    for (const asio::const_buffer& b : buffers) {
      const auto* data = static_cast<const uint8_t*>(b.data());
      if (skip >= b.size()) {
        skip -= b.size();
        continue;
      }
      direct_rest_.insert(direct_rest_.end(), data + skip, data + b.size());
      skip = 0;
    }
    data_storage_held_ = true;
    wake_writer_.cancel();
  }
  ++counters_.direct_sends;
  ++counters_.frames_out;
  counters_.bytes_out += total;
  last_data_out_ = Clock::now();
  if (on_data_taken_) on_data_taken_(1, payload_size);
  return true;
}

FramedLink::Push FramedLink::SendData(std::span<const uint8_t> packet, packet::Gso gso) {
  if (!gso.super()) return SendData(packet);
  if (closing_) return Push::kClosed;
  bool dropped = false;
  std::size_t dropped_count = 0;
  if (peer_takes_super_packets_) {
    ++counters_.super_packets_out;
    uint8_t gso_header[protocol::kSuperPacketHeaderSize];
    protocol::WriteSuperPacketHeader(gso, gso_header);
    if (SendDirect(protocol::FrameType::kSuperPacket, gso_header, packet)) return Push::kQueued;
    const std::span<uint8_t> out = data_queue_.AppendFrame(
        protocol::FrameType::kSuperPacket, protocol::kSuperPacketHeaderSize + packet.size(), &dropped);
    std::copy(std::begin(gso_header), std::end(gso_header), out.begin());
    std::copy(packet.begin(), packet.end(), out.begin() + protocol::kSuperPacketHeaderSize);
    dropped_count = dropped;
  } else {
    packet::SuperPacketLayout layout;
    if (packet::ParseSuperPacket(packet, gso, &layout) != packet::GsoVerdict::kOk) {
      ++counters_.bad_super_packets;
      return Push::kClosed;
    }
    ++counters_.super_packets_split;
    for (std::size_t i = 0; i < layout.segments; ++i) {
      const std::span<uint8_t> out = data_queue_.AppendFrame(
          protocol::FrameType::kData, packet::SegmentSize(layout, gso, i), &dropped);
      packet::BuildSegment(packet, gso, layout, i, out);
      dropped_count += dropped;
    }
  }
  wake_writer_.cancel();
  if (dropped_count == 0) return Push::kQueued;
  counters_.data_dropped_queue_full += dropped_count;
  return Push::kQueuedDroppedOldest;
}

FramedLink::Push FramedLink::SendSealed(std::span<const uint8_t> payload) {
  if (closing_) return Push::kClosed;
  if (SendDirect(protocol::FrameType::kSealed, {}, payload)) return Push::kQueued;
  const bool dropped = data_queue_.PushDropOldest(protocol::FrameType::kSealed, payload);
  wake_writer_.cancel();
  if (!dropped) return Push::kQueued;
  ++counters_.data_dropped_queue_full;
  return Push::kQueuedDroppedOldest;
}

FramedLink::Push FramedLink::SendSealedParts(std::span<const uint8_t> header, std::span<const uint8_t> body,
                                             std::span<const uint8_t> tag) {
  if (closing_) return Push::kClosed;
  if (SendDirect(protocol::FrameType::kSealed, header, body, tag)) return Push::kQueued;
  Push push = Push::kQueued;
  const std::span<uint8_t> out = AppendSealed(header.size() + body.size() + tag.size(), &push);
  if (push == Push::kClosed) return push;
  std::copy(header.begin(), header.end(), out.begin());
  std::copy(body.begin(), body.end(), out.begin() + header.size());
  std::copy(tag.begin(), tag.end(), out.begin() + header.size() + body.size());
  return push;
}

std::span<uint8_t> FramedLink::AppendSealed(std::size_t size, Push* push) {
  if (closing_) {
    *push = Push::kClosed;
    return {};
  }
  bool dropped = false;
  const std::span<uint8_t> out = data_queue_.AppendFrame(protocol::FrameType::kSealed, size, &dropped);
  wake_writer_.cancel();
  *push = dropped ? Push::kQueuedDroppedOldest : Push::kQueued;
  if (dropped) ++counters_.data_dropped_queue_full;
  return out;
}

std::size_t FramedLink::FramesFor(std::span<const uint8_t> packet, packet::Gso gso) const {
  if (!gso.super() || peer_takes_super_packets_) return 1;
  packet::SuperPacketLayout layout;
  if (packet::ParseSuperPacket(packet, gso, &layout) != packet::GsoVerdict::kOk) return 1;
  return layout.segments;
}

}  // namespace mnedc::link
