#include "mnedc/protocol/frame.h"

namespace mnedc::protocol {

void WriteFrameHeader(FrameType type, uint32_t length, uint8_t* out) {
  out[0] = static_cast<uint8_t>(type);
  out[1] = static_cast<uint8_t>(length >> 24);
  out[2] = static_cast<uint8_t>(length >> 16);
  out[3] = static_cast<uint8_t>(length >> 8);
  out[4] = static_cast<uint8_t>(length);
}

ParseResult ParseFrame(std::span<const uint8_t> input, uint32_t max_payload) {
  ParseResult result;
  if (input.size() < kFrameHeaderSize) return result;
  const uint32_t length = FramePayloadLength(input.data());
  result.raw_type = input[0];
  max_payload = MaxPayloadOf(result.raw_type, max_payload);
  if (length > max_payload) {
    result.status = ParseStatus::kOversize;
    result.announced_length = length;
    return result;
  }
  if (input.size() - kFrameHeaderSize < length) return result;
  result.consumed = kFrameHeaderSize + length;
  result.payload = input.subspan(kFrameHeaderSize, length);
  switch (result.raw_type) {
    case static_cast<uint8_t>(FrameType::kData):
    case static_cast<uint8_t>(FrameType::kControl):
    case static_cast<uint8_t>(FrameType::kSuperPacket):
    case static_cast<uint8_t>(FrameType::kSealed):
      result.status = ParseStatus::kFrame;
      result.type = static_cast<FrameType>(result.raw_type);
      break;
    default:
      result.status = ParseStatus::kUnknownType;
      break;
  }
  return result;
}

void WriteSuperPacketHeader(packet::Gso gso, uint8_t* out) {
  out[0] = static_cast<uint8_t>(gso.kind);
  out[1] = 0;
  out[2] = static_cast<uint8_t>(gso.segment_size >> 8);
  out[3] = static_cast<uint8_t>(gso.segment_size);
}

bool ReadSuperPacketHeader(std::span<const uint8_t> payload, packet::Gso* gso,
                           std::span<const uint8_t>* packet) {
  if (payload.size() < kSuperPacketHeaderSize) return false;
  gso->kind = static_cast<packet::GsoKind>(payload[0]);
  gso->segment_size = static_cast<uint16_t>((payload[2] << 8) | payload[3]);
  *packet = payload.subspan(kSuperPacketHeaderSize);
  return true;
}

void WriteSealedHeader(const SealedHeader& header, uint8_t* out) {
  WriteSuperPacketHeader(header.gso, out);
  for (int i = 0; i < 4; ++i) out[4 + i] = static_cast<uint8_t>(header.destination >> (24 - 8 * i));
  for (int i = 0; i < 4; ++i) out[8 + i] = static_cast<uint8_t>(header.source >> (24 - 8 * i));
  for (int i = 0; i < 8; ++i) out[12 + i] = static_cast<uint8_t>(header.counter >> (56 - 8 * i));
}

bool ReadSealedHeader(std::span<const uint8_t> payload, SealedHeader* header) {
  if (payload.size() < kSealedHeaderSize + kSealedTagSize) return false;
  std::span<const uint8_t> rest;
  ReadSuperPacketHeader(payload, &header->gso, &rest);
  header->destination = header->source = 0;
  header->counter = 0;
  for (int i = 0; i < 4; ++i) header->destination = (header->destination << 8) | payload[4 + i];
  for (int i = 0; i < 4; ++i) header->source = (header->source << 8) | payload[8 + i];
  for (int i = 0; i < 8; ++i) header->counter = (header->counter << 8) | payload[12 + i];
  return true;
}

}  // namespace mnedc::protocol
