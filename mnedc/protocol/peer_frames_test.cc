#include "mnedc/protocol/peer_frames.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "mnedc/protocol/control_codec.h"

namespace mnedc::protocol {
namespace {

// Parses every frame of `bytes` as a ControlMessage, failing on leftovers.
std::vector<ControlMessage> Frames(const std::vector<uint8_t>& bytes, std::size_t* max_payload = nullptr) {
  std::vector<ControlMessage> messages;
  std::span<const uint8_t> rest(bytes);
  while (!rest.empty()) {
    const ParseResult frame = ParseFrame(rest);
    EXPECT_EQ(frame.status, ParseStatus::kFrame);
    if (frame.status != ParseStatus::kFrame) break;
    EXPECT_EQ(frame.type, FrameType::kControl);
    if (max_payload) *max_payload = std::max(*max_payload, frame.payload.size());
    ControlMessage message;
    EXPECT_TRUE(DecodeControl(frame.payload, message));
    messages.push_back(message);
    rest = rest.subspan(frame.consumed);
  }
  return messages;
}

TEST(PeerFrames, TheIpv6AddressReachesEitherForm) {
  const std::string address6(16, '\x7f');
  for (const PeerMode mode : {PEERS_BATCHED, PEERS_EACH}) {
    PeerFrameBuilder builder(mode);
    builder.Add(EncodePeerChange("deva", 0x0a000002, "192.0.2.1:4000", false, address6), false);
    builder.Add(EncodePeerChange("deva", 0x0a000002, "", true, address6), true);
    builder.Add(EncodePeerChange("devb", 0x0a000003, "192.0.2.1:4001", false), false);
    builder.Flush();
    const auto messages = Frames(builder.out());
    if (mode == PEERS_BATCHED) {
      ASSERT_EQ(messages.size(), 1u);
      ASSERT_EQ(messages[0].peer_list().changes_size(), 3);
      EXPECT_EQ(messages[0].peer_list().changes(0).address6(), address6);
      EXPECT_EQ(messages[0].peer_list().changes(1).address6(), address6);
      EXPECT_EQ(messages[0].peer_list().changes(2).address6(), "");
    } else {
      ASSERT_EQ(messages.size(), 3u);
      EXPECT_EQ(messages[0].peer_announce().address6(), address6);
      EXPECT_EQ(messages[1].peer_gone().address6(), address6);
      EXPECT_EQ(messages[2].peer_announce().address6(), "");
    }
  }
}

TEST(PeerFrames, TheSealingKeysReachEitherForm) {
  const std::string public_key(32, '\x11'), session_key(32, '\x22');
  for (const PeerMode mode : {PEERS_BATCHED, PEERS_EACH}) {
    PeerFrameBuilder builder(mode);
    builder.Add(EncodePeerChange("deva", 0x0a000002, "192.0.2.1:4000", false, {}, {public_key, session_key}), false);
    builder.Add(EncodePeerChange("devb", 0x0a000003, "192.0.2.1:4001", false), false);
    builder.Flush();
    const auto messages = Frames(builder.out());
    if (mode == PEERS_BATCHED) {
      ASSERT_EQ(messages.size(), 1u);
      ASSERT_EQ(messages[0].peer_list().changes_size(), 2);
      EXPECT_EQ(messages[0].peer_list().changes(0).public_key(), public_key);
      EXPECT_EQ(messages[0].peer_list().changes(0).session_key(), session_key);
      EXPECT_EQ(messages[0].peer_list().changes(1).public_key(), "");
    } else {
      ASSERT_EQ(messages.size(), 2u);
      EXPECT_EQ(messages[0].peer_announce().public_key(), public_key);
      EXPECT_EQ(messages[0].peer_announce().session_key(), session_key);
      EXPECT_EQ(messages[1].peer_announce().session_key(), "");
    }
  }
}

TEST(PeerFrames, BatchedChangesArriveInOrderInOnePeerList) {
  PeerFrameBuilder builder(PEERS_BATCHED);
  builder.Add(EncodePeerChange("deva", 0x0a000002, "192.0.2.1:4000", false), false);
  builder.Add(EncodePeerChange("devb", 0x0a000003, "", true), true);
  builder.Add(EncodePeerChange("devc", 0x0a000004, "[2001:db8::1]:5", false), false);
  builder.Flush();
  const auto messages = Frames(builder.out());
  ASSERT_EQ(messages.size(), 1u);
  ASSERT_TRUE(messages[0].has_peer_list());
  const PeerList& list = messages[0].peer_list();
  EXPECT_FALSE(list.snapshot_end());
  ASSERT_EQ(list.changes_size(), 3);
  EXPECT_EQ(list.changes(0).device_id(), "deva");
  EXPECT_EQ(list.changes(0).address(), 0x0a000002u);
  EXPECT_EQ(list.changes(0).seen_from(), "192.0.2.1:4000");
  EXPECT_FALSE(list.changes(0).gone());
  EXPECT_EQ(list.changes(1).device_id(), "devb");
  EXPECT_TRUE(list.changes(1).gone());
  EXPECT_EQ(list.changes(2).seen_from(), "[2001:db8::1]:5");
}

TEST(PeerFrames, ABigSnapshotSplitsIntoFramesWithinTheLimitAndEndsOnce) {
  PeerFrameBuilder builder(PEERS_BATCHED, 1000);
  const int kPeers = 300;
  for (int i = 0; i < kPeers; ++i) {
    builder.Add(EncodePeerChange("device-" + std::to_string(i), 0x0a000000u + i, "10.1.1.1:1", false),
                false);
  }
  builder.EndSnapshot();
  std::size_t largest = 0;
  const auto messages = Frames(builder.out(), &largest);
  EXPECT_LE(largest, 1000u);
  EXPECT_GT(messages.size(), 5u);
  int seen = 0;
  for (std::size_t m = 0; m < messages.size(); ++m) {
    ASSERT_TRUE(messages[m].has_peer_list());
    EXPECT_EQ(messages[m].peer_list().snapshot_end(), m + 1 == messages.size());
    for (const auto& change : messages[m].peer_list().changes()) {
      EXPECT_EQ(change.device_id(), "device-" + std::to_string(seen));
      ++seen;
    }
  }
  EXPECT_EQ(seen, kPeers);
}

TEST(PeerFrames, SnapshotEndAloneIsAnEmptyPeerListWithTheFlag) {
  PeerFrameBuilder builder(PEERS_BATCHED);
  builder.EndSnapshot();
  const auto messages = Frames(builder.out());
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_TRUE(messages[0].peer_list().snapshot_end());
  EXPECT_EQ(messages[0].peer_list().changes_size(), 0);
}

TEST(PeerFrames, EachFormIsWhatOlderClientsParse) {
  PeerFrameBuilder builder(PEERS_EACH);
  builder.Add(EncodePeerChange("deva", 7, "198.51.100.1:9", false), false);
  builder.EndSnapshot();
  builder.Add(EncodePeerChange("deva", 7, "", true), true);
  const auto messages = Frames(builder.out());
  ASSERT_EQ(messages.size(), 3u);
  ASSERT_TRUE(messages[0].has_peer_announce());
  EXPECT_EQ(messages[0].peer_announce().device_id(), "deva");
  EXPECT_EQ(messages[0].peer_announce().address(), 7u);
  EXPECT_EQ(messages[0].peer_announce().seen_from(), "198.51.100.1:9");
  EXPECT_TRUE(messages[1].has_snapshot_end());
  ASSERT_TRUE(messages[2].has_peer_gone());
  EXPECT_EQ(messages[2].peer_gone().device_id(), "deva");
  EXPECT_EQ(messages[2].peer_gone().address(), 7u);
}

TEST(PeerFrames, TheLongestDeviceIdStillFitsTheSmallestFrame) {
  const std::string id(128, 'x');
  PeerFrameBuilder builder(PEERS_BATCHED, 400);
  for (int i = 0; i < 10; ++i) builder.Add(EncodePeerChange(id, i, "[ffff::ffff]:65535", false), false);
  builder.EndSnapshot();
  std::size_t largest = 0;
  const auto messages = Frames(builder.out(), &largest);
  EXPECT_LE(largest, 400u);
  EXPECT_EQ(messages.size(), 5u);  // Two of ~170 bytes per frame.
}

}  // namespace
}  // namespace mnedc::protocol
