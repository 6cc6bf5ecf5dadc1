#include "mnedc/protocol/control_codec.h"

#include "mnedc/protocol/frame.h"

namespace mnedc::protocol {

bool EncodeControlFrame(const ControlMessage& message, std::vector<uint8_t>& out) {
  const std::size_t size = message.ByteSizeLong();
  if (size > kMaxFramePayload) return false;
  out.resize(kFrameHeaderSize + size);
  WriteFrameHeader(FrameType::kControl, static_cast<uint32_t>(size), out.data());
  return message.SerializeWithCachedSizesToArray(out.data() + kFrameHeaderSize) ==
         out.data() + out.size();
}

bool DecodeControl(std::span<const uint8_t> payload, ControlMessage& out) {
  return out.ParseFromArray(payload.data(), static_cast<int>(payload.size()));
}

std::string ControlKind(const ControlMessage& message) {
  switch (message.body_case()) {
    case ControlMessage::kHello:
      return "Hello";
    case ControlMessage::kLease:
      return "Lease";
    case ControlMessage::kPeerAnnounce:
      return "PeerAnnounce";
    case ControlMessage::kPeerGone:
      return "PeerGone";
    case ControlMessage::kPing:
      return "Ping";
    case ControlMessage::kPong:
      return "Pong";
    case ControlMessage::kError:
      return "Error";
    case ControlMessage::kSnapshotEnd:
      return "SnapshotEnd";
    case ControlMessage::kPeerList:
      return "PeerList";
    case ControlMessage::BODY_NOT_SET:
      break;
  }
  return "unknown";
}

}  // namespace mnedc::protocol
