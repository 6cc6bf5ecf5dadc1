// The frame reader and control decoding: every byte a relay or client reads
// from the network goes through these first. The input is cut into reads of
// varying sizes (from its first byte), as the network would.
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "mnedc/link/frame_reader.h"
#include "mnedc/packet/gso.h"
#include "mnedc/protocol/control_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace mnedc;
  if (size < 1) return 0;
  uint32_t cut = data[0];
  ++data;
  --size;
  link::FrameReader reader(64, protocol::kMaxFramePayload, 4096);
  protocol::ControlMessage message;
  std::size_t offset = 0;
  while (offset < size) {
    const auto space = reader.Space();
    cut = cut * 1103515245u + 12345u;
    const std::size_t n = std::min({space.size(), size - offset, std::size_t{1} + (cut >> 16) % 300});
    std::memcpy(space.data(), data + offset, n);
    reader.Commit(n);
    offset += n;
    for (;;) {
      const protocol::ParseResult frame = reader.Next();
      if (frame.status == protocol::ParseStatus::kNeedMore) break;
      if (frame.status == protocol::ParseStatus::kOversize) {
        if (frame.announced_length <= protocol::MaxPayloadOf(frame.raw_type, protocol::kMaxFramePayload)) {
          std::abort();
        }
        return 0;
      }
      if (frame.status == protocol::ParseStatus::kUnknownType) continue;
      if (frame.payload.size() > protocol::MaxPayloadOf(frame.raw_type, protocol::kMaxFramePayload)) {
        std::abort();
      }
      if (frame.type == protocol::FrameType::kSuperPacket) {
        // What a receiver does with one: check it, and cut it into segments.
        packet::Gso gso;
        std::span<const uint8_t> packet;
        packet::SuperPacketLayout layout;
        if (!protocol::ReadSuperPacketHeader(frame.payload, &gso, &packet)) continue;
        const packet::GsoVerdict verdict = packet::ParseSuperPacket(packet, gso, &layout);
        // What a relay that peeks at it (splice) decides from its first 73
        // bytes, which hold any IP and TCP header's fields it reads: the same.
        packet::SuperPacketLayout peeked;
        const packet::GsoVerdict peeked_verdict =
            packet::ParseSuperPacketHead(packet.first(std::min<std::size_t>(packet.size(), 73)), packet.size(), gso, &peeked);
        if (peeked_verdict != verdict ||
            (verdict == packet::GsoVerdict::kOk && (peeked.headers_length != layout.headers_length ||
                                                    peeked.segments != layout.segments ||
                                                    peeked.payload_length != layout.payload_length))) {
          std::abort();
        }
        if (verdict != packet::GsoVerdict::kOk) continue;
        static uint8_t segment[65536];
        std::size_t total = 0;
        for (std::size_t i = 0; i < layout.segments; ++i) {
          total += packet::BuildSegment(packet, gso, layout, i, segment) - layout.headers_length;
        }
        if (total != layout.payload_length) std::abort();
        continue;
      }
      if (frame.type != protocol::FrameType::kControl) continue;
      message.Clear();
      if (!protocol::DecodeControl(frame.payload, message)) continue;
      protocol::ControlKind(message);
      // What a client does with a peer list: read every change.
      std::size_t bytes = 0;
      for (const auto& change : message.peer_list().changes()) bytes += change.device_id().size();
      (void)bytes;
    }
  }
  if (reader.capacity() > protocol::kMaxFrameSize) std::abort();  // Never grows past one frame.
  return 0;
}
