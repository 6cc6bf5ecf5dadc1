#pragma once
// Peer changes encoded once and framed for many receivers. The relay
// serializes each member's PeerChange once (at join and at leave), and
// builds the CONTROL frames that carry a batch of changes by concatenating
// those bytes under the right field tags (protobuf's wire format defines a
// message as the concatenation of its fields), so a change sent to ten
// thousand members is encoded once, and a snapshot costs a copy per entry,
// not an encode.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mnedc/protocol/control.pb.h"
#include "mnedc/protocol/frame.h"

namespace mnedc::protocol {

// A member's sealing keys as its Hello gave them (32 bytes each), or empty.
struct MemberKeys {
  std::string_view public_key;
  std::string_view session_key;
  uint32_t ciphers = 0;  // CipherBits.
};

// A serialized PeerChange; `address6` is 16 bytes, or empty on an IPv4-only network.
std::string EncodePeerChange(std::string_view device_id, uint32_t address,
                             std::string_view seen_from, bool gone, std::string_view address6 = {},
                             MemberKeys keys = {});

// Appends whole CONTROL frames to `out()`:
//   PEERS_BATCHED: PeerList frames of up to `max_payload` bytes each;
//   PEERS_EACH: one PeerAnnounce or PeerGone frame per change, SnapshotEnd frames.
// (PEERS_NONE receivers get nothing, so there is no builder for them.)
class PeerFrameBuilder {
 public:
  explicit PeerFrameBuilder(PeerMode mode, std::size_t max_payload = kMaxFramePayload);

  // `change` is an EncodePeerChange() result.
  void Add(std::string_view change, bool gone);
  // Ends the snapshot: the last PeerList gets snapshot_end (a PeerList of its
  // own if none is open), or a SnapshotEnd frame follows.
  void EndSnapshot();
  // Closes the open PeerList, if any. out() then holds only whole frames.
  void Flush();

  bool empty() const { return out_.empty() && body_.empty(); }
  // Bytes so far, the open PeerList included.
  std::size_t size() const { return out_.size() + body_.size(); }
  std::vector<uint8_t>& out() { return out_; }

 private:
  void AppendFrame(int field, std::string_view body);

  PeerMode mode_;
  std::size_t max_payload_;
  std::string body_;  // The open PeerList's fields (batched).
  std::vector<uint8_t> out_;
};

}  // namespace mnedc::protocol
