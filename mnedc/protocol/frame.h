#pragma once
// The mnedc frame codec. A connection carries a sequence of frames:
//
//   +--------+----------------------+------------------+
//   | type u8| length u32 big-endian| payload (length) |
//   +--------+----------------------+------------------+
//
//   DATA    (0x01): payload is one raw IP packet, nothing else (hot path: no protobuf).
//   CONTROL (0x02): payload is one serialized mnedc.protocol.ControlMessage.
//   SUPER   (0x03): payload is a super-packet (see mnedc/packet/gso.h): one TCP
//                   or UDP packet of up to 64 KiB standing for a run of
//                   segments of one flow, after a 4-byte header:
//                     kind u8 (1 TCP, 2 UDP) | flags u8 (0) | segment_size u16 BE
//                   Sent only to a peer that said it takes them (Hello and
//                   Lease super_packets); a receiver checks the header against
//                   the packet (packet::ParseSuperPacket) and drops and counts
//                   what does not fit, never trusting it. Up to
//                   kMaxSuperFramePayload bytes.
//   SEALED  (0x04): a packet or super-packet sealed end to end from one device
//                   to another (mnedc/seal), after a 20-byte header that is
//                   authenticated but not encrypted:
//                     gso header (4, as SUPER's; kind 0 for one packet) |
//                     destination u32 BE | source u32 BE | counter u64 BE
//                   then the sealed packet and its 16-byte tag. The relay
//                   routes it by destination (the receiver's IPv4 lease),
//                   checks source against the sender's lease, and forwards it
//                   unchanged, to members that presented keys only; only the
//                   receiver can open it. Up to kMaxSealedFramePayload bytes.
//   Any other type is skipped whole by the receiver, so later versions can add frames.
//
// A length above the receiver's maximum closes the connection before anything is
// allocated for it. Over WebSocket each binary message carries whole frames.
#include <cstddef>
#include <cstdint>
#include <span>

#include "mnedc/packet/gso.h"

namespace mnedc::protocol {

inline constexpr uint32_t kProtocolVersion = 1;
inline constexpr std::size_t kFrameHeaderSize = 5;
// The largest IPv4/IPv6 packet without jumbogram options; also bounds control messages.
inline constexpr uint32_t kMaxFramePayload = 65535;
inline constexpr std::size_t kSuperPacketHeaderSize = 4;
inline constexpr uint32_t kMaxSuperFramePayload =
    static_cast<uint32_t>(kSuperPacketHeaderSize + packet::kMaxSuperPacket);
inline constexpr std::size_t kSealedHeaderSize = 20;
inline constexpr std::size_t kSealedTagSize = 16;
inline constexpr uint32_t kMaxSealedFramePayload =
    static_cast<uint32_t>(kSealedHeaderSize + packet::kMaxSuperPacket + kSealedTagSize);
// The largest frame of any type this version sends or takes.
inline constexpr std::size_t kMaxFrameSize = kFrameHeaderSize + kMaxSealedFramePayload;

enum class FrameType : uint8_t {
  kData = 0x01,
  kControl = 0x02,
  kSuperPacket = 0x03,
  kSealed = 0x04,
};

// The payload length a frame header (kFrameHeaderSize bytes at `header`)
// announces, unchecked.
inline uint32_t FramePayloadLength(const uint8_t* header) {
  return (uint32_t{header[1]} << 24) | (uint32_t{header[2]} << 16) | (uint32_t{header[3]} << 8) | header[4];
}
// Writes the 5-byte header for a frame of `type` carrying `length` payload bytes.
void WriteFrameHeader(FrameType type, uint32_t length, uint8_t* out);

enum class ParseStatus {
  kNeedMore,     // `input` holds no complete frame yet; read more and call again.
  kFrame,        // A DATA, CONTROL or SUPER frame; see `type` and `payload`.
  kUnknownType,  // A complete frame of a type this version does not know: skip `consumed` bytes.
  kOversize,     // The header announces more than the maximum: the stream is unusable.
};

struct ParseResult {
  ParseStatus status = ParseStatus::kNeedMore;
  FrameType type = FrameType::kData;
  uint8_t raw_type = 0;
  std::span<const uint8_t> payload;  // Points into the caller's input.
  std::size_t consumed = 0;          // Bytes of input that this frame occupied.
  uint32_t announced_length = 0;     // Set for kOversize, for the log line.
};

// Parses the first frame of `input` without copying. Checks the length against
// `max_payload` (SUPER frames: kMaxSuperFramePayload) as soon as the header is
// complete, before waiting for the payload.
ParseResult ParseFrame(std::span<const uint8_t> input, uint32_t max_payload = kMaxFramePayload);

// The largest payload a frame of `raw_type` may announce, where other types
// may announce `max_payload`.
inline uint32_t MaxPayloadOf(uint8_t raw_type, uint32_t max_payload) {
  if (raw_type == static_cast<uint8_t>(FrameType::kSuperPacket)) return kMaxSuperFramePayload;
  if (raw_type == static_cast<uint8_t>(FrameType::kSealed)) return kMaxSealedFramePayload;
  return max_payload;
}

// The 4-byte header of a SUPER frame's payload.
void WriteSuperPacketHeader(packet::Gso gso, uint8_t* out);
// The clear header of a SEALED frame.
struct SealedHeader {
  packet::Gso gso;           // Of the sealed packet (not checked here).
  uint32_t destination = 0;  // IPv4, host order.
  uint32_t source = 0;
  uint64_t counter = 0;
};
void WriteSealedHeader(const SealedHeader& header, uint8_t* out);
// False if `payload` cannot hold a header and a tag.
bool ReadSealedHeader(std::span<const uint8_t> payload, SealedHeader* header);

// Splits a SUPER frame's payload into its header and the packet; false if it
// is too short to hold the header. The Gso is not checked here.
bool ReadSuperPacketHeader(std::span<const uint8_t> payload, packet::Gso* gso,
                           std::span<const uint8_t>* packet);

}  // namespace mnedc::protocol
