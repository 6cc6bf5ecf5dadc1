#pragma once
// Encoding of ControlMessage into CONTROL frames and back.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "mnedc/protocol/control.pb.h"

namespace mnedc::protocol {

// Replaces `out` with one complete CONTROL frame (header + serialized message).
// Returns false if the message is larger than kMaxFramePayload.
bool EncodeControlFrame(const ControlMessage& message, std::vector<uint8_t>& out);

// Parses a CONTROL frame payload. Returns false on bytes that are not a valid
// ControlMessage; an unknown oneof case parses fine and shows as BODY_NOT_SET.
bool DecodeControl(std::span<const uint8_t> payload, ControlMessage& out);

// "Hello", "Lease", ... or "unknown" for a body this version does not know.
std::string ControlKind(const ControlMessage& message);

}  // namespace mnedc::protocol
