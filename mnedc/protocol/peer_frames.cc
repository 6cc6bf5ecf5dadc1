#include "mnedc/protocol/peer_frames.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include <cstring>

namespace mnedc::protocol {
namespace {
using google::protobuf::io::CodedOutputStream;
using google::protobuf::internal::WireFormatLite;

void AppendVarint(uint32_t value, std::string& out) {
  uint8_t bytes[5];
  const uint8_t* end = CodedOutputStream::WriteVarint32ToArray(value, bytes);
  out.append(reinterpret_cast<const char*>(bytes), end - bytes);
}

// A length-delimited field: tag, length, bytes.
void AppendField(int field, std::string_view bytes, std::string& out) {
  AppendVarint(WireFormatLite::MakeTag(field, WireFormatLite::WIRETYPE_LENGTH_DELIMITED), out);
  AppendVarint(static_cast<uint32_t>(bytes.size()), out);
  out.append(bytes);
}

std::size_t FieldSize(std::size_t bytes) {
  // Tags here are below 16: one byte.
  return 1 + CodedOutputStream::VarintSize32(static_cast<uint32_t>(bytes)) + bytes;
}

constexpr int kPeerListChanges = PeerList::kChangesFieldNumber;
constexpr int kPeerListSnapshotEnd = PeerList::kSnapshotEndFieldNumber;
}  // namespace

std::string EncodePeerChange(std::string_view device_id, uint32_t address,
                             std::string_view seen_from, bool gone, std::string_view address6,
                             MemberKeys keys) {
  PeerChange change;
  change.set_device_id(std::string(device_id));
  change.set_address(address);
  if (!gone) change.set_seen_from(std::string(seen_from));
  change.set_gone(gone);
  if (!address6.empty()) change.set_address6(std::string(address6));
  if (!keys.public_key.empty()) change.set_public_key(std::string(keys.public_key));
  if (!keys.session_key.empty()) change.set_session_key(std::string(keys.session_key));
  if (!keys.session_key.empty()) change.set_ciphers(keys.ciphers);
  return change.SerializeAsString();
}

PeerFrameBuilder::PeerFrameBuilder(PeerMode mode, std::size_t max_payload)
    : mode_(mode), max_payload_(max_payload) {}

void PeerFrameBuilder::AppendFrame(int field, std::string_view body) {
  // Written in place: frame header, the field's tag and length, the body.
  uint8_t head[10];
  uint8_t* end = CodedOutputStream::WriteVarint32ToArray(
      WireFormatLite::MakeTag(field, WireFormatLite::WIRETYPE_LENGTH_DELIMITED), head);
  end = CodedOutputStream::WriteVarint32ToArray(static_cast<uint32_t>(body.size()), end);
  const std::size_t head_size = static_cast<std::size_t>(end - head);
  const std::size_t payload = head_size + body.size();
  const std::size_t at = out_.size();
  out_.resize(at + kFrameHeaderSize + payload);
  uint8_t* frame = out_.data() + at;
  WriteFrameHeader(FrameType::kControl, static_cast<uint32_t>(payload), frame);
  std::memcpy(frame + kFrameHeaderSize, head, head_size);
  if (!body.empty()) std::memcpy(frame + kFrameHeaderSize + head_size, body.data(), body.size());
}

void PeerFrameBuilder::Add(std::string_view change, bool gone) {
  if (mode_ == PEERS_EACH) {
    AppendFrame(gone ? ControlMessage::kPeerGoneFieldNumber : ControlMessage::kPeerAnnounceFieldNumber,
                change);
    return;
  }
  // The PeerList (plus its tag and length inside ControlMessage, and room for
  // snapshot_end) must stay within one frame.
  const std::size_t after = body_.size() + FieldSize(change.size()) + 2;
  if (!body_.empty() && FieldSize(after) > max_payload_) Flush();
  AppendField(kPeerListChanges, change, body_);
}

void PeerFrameBuilder::EndSnapshot() {
  if (mode_ == PEERS_EACH) {
    AppendFrame(ControlMessage::kSnapshotEndFieldNumber, {});
    return;
  }
  AppendVarint(WireFormatLite::MakeTag(kPeerListSnapshotEnd, WireFormatLite::WIRETYPE_VARINT), body_);
  AppendVarint(1, body_);
  Flush();
}

void PeerFrameBuilder::Flush() {
  if (body_.empty()) return;
  AppendFrame(ControlMessage::kPeerListFieldNumber, body_);
  body_.clear();
}

}  // namespace mnedc::protocol
