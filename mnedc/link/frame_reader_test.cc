#include "mnedc/link/frame_reader.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

namespace mnedc::link {
namespace {

std::vector<uint8_t> Frame(uint8_t type, std::size_t size, uint8_t fill) {
  std::vector<uint8_t> frame(protocol::kFrameHeaderSize + size, fill);
  protocol::WriteFrameHeader(static_cast<protocol::FrameType>(type), static_cast<uint32_t>(size),
                             frame.data());
  return frame;
}

// Feeds `bytes` in pieces of `piece`, collecting each frame's (type, size, first byte).
std::vector<std::tuple<uint8_t, std::size_t, uint8_t>> Feed(FrameReader& reader,
                                                            const std::vector<uint8_t>& bytes,
                                                            std::size_t piece) {
  std::vector<std::tuple<uint8_t, std::size_t, uint8_t>> frames;
  std::size_t offset = 0;
  while (offset < bytes.size()) {
    auto space = reader.Space();
    const std::size_t n = std::min({piece, space.size(), bytes.size() - offset});
    std::memcpy(space.data(), bytes.data() + offset, n);
    reader.Commit(n);
    offset += n;
    for (;;) {
      const auto frame = reader.Next();
      if (frame.status == protocol::ParseStatus::kNeedMore) break;
      EXPECT_NE(frame.status, protocol::ParseStatus::kOversize);
      if (frame.status != protocol::ParseStatus::kFrame) continue;
      frames.emplace_back(frame.raw_type, frame.payload.size(),
                          frame.payload.empty() ? 0 : frame.payload[0]);
    }
  }
  return frames;
}

TEST(FrameReaderTest, EveryWayOfCuttingTheStreamGivesTheSameFrames) {
  std::vector<uint8_t> stream;
  for (auto frame : {Frame(1, 0, 1), Frame(1, 1400, 2), Frame(0x42, 7, 3), Frame(2, 33, 4),
                     Frame(1, 65535, 5), Frame(1, 20, 6)}) {
    stream.insert(stream.end(), frame.begin(), frame.end());
  }
  const std::vector<std::tuple<uint8_t, std::size_t, uint8_t>> want = {
      {1, 0, 0}, {1, 1400, 2}, {2, 33, 4}, {1, 65535, 5}, {1, 20, 6}};  // 0x42: skipped.
  for (std::size_t piece : {std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{5},
                            std::size_t{7}, std::size_t{1000}, std::size_t{4096},
                            std::size_t{100000}}) {
    FrameReader reader(4096);
    EXPECT_EQ(Feed(reader, stream, piece), want) << "pieces of " << piece;
    EXPECT_FALSE(reader.mid_frame());
    // It grew for the 64 KiB frame, and no further than the largest frame.
    EXPECT_GE(reader.capacity(), protocol::kFrameHeaderSize + 65535);
    EXPECT_LE(reader.capacity(), protocol::kMaxFrameSize);
  }
}

TEST(FrameReaderTest, AnOversizeLengthIsRefusedBeforeAnyRoomIsMade) {
  FrameReader reader(64, /*max_payload=*/1000);
  const std::vector<uint8_t> header = {1, 0x7f, 0xff, 0xff, 0xff};
  auto space = reader.Space();
  std::memcpy(space.data(), header.data(), header.size());
  reader.Commit(header.size());
  const auto frame = reader.Next();
  EXPECT_EQ(frame.status, protocol::ParseStatus::kOversize);
  EXPECT_EQ(frame.announced_length, 0x7fffffffu);
  reader.Space();
  EXPECT_EQ(reader.capacity(), 64u);  // No 2 GiB buffer for a liar.
}

TEST(FrameReaderTest, ATruncatedFrameIsMidFrame) {
  FrameReader reader(64);
  const auto frame = Frame(1, 10, 9);
  auto space = reader.Space();
  std::memcpy(space.data(), frame.data(), 8);
  reader.Commit(8);
  EXPECT_EQ(reader.Next().status, protocol::ParseStatus::kNeedMore);
  EXPECT_TRUE(reader.mid_frame());
}

TEST(FrameReaderTest, StartsSmallGrowsForABurstAndGivesItBackWhenIdle) {
  using namespace std::chrono_literals;
  FrameReader reader(/*small_capacity=*/1024, protocol::kMaxFramePayload, /*large_capacity=*/16384,
                     /*release_after=*/10s);
  const FrameReader::Clock::time_point t0{};
  auto space = reader.Space(t0);
  EXPECT_EQ(space.size(), 1024u);
  // A burst: the read fills the buffer, so the next one gets the large size.
  const auto frames = Frame(1, 2000, 7);
  std::memcpy(space.data(), frames.data(), space.size());
  reader.Commit(space.size());
  EXPECT_EQ(reader.Next().status, protocol::ParseStatus::kNeedMore);
  space = reader.Space(t0);
  EXPECT_EQ(reader.capacity(), 16384u);
  std::memcpy(space.data(), frames.data() + 1024, frames.size() - 1024);
  reader.Commit(frames.size() - 1024);
  EXPECT_EQ(reader.Next().status, protocol::ParseStatus::kFrame);
  // Quiet for less than release_after: the large buffer stays (no allocation per read).
  reader.Space(t0 + 9s);
  EXPECT_EQ(reader.capacity(), 16384u);
  reader.Commit(0);
  // Quiet for release_after: it goes back to small.
  reader.Space(t0 + 10s);
  EXPECT_EQ(reader.capacity(), 1024u);
}

// A stream of large super-packet frames read as a socket gives them, a few
// tens of KiB at a time that end mid-frame: every frame arrives whole, and a
// partial frame's bytes move to the front only when it would not fit where
// it is, not after every read.
TEST(FrameReaderTest, PartialLargeFramesAreSeldomMoved) {
  std::vector<uint8_t> stream;
  std::vector<std::tuple<uint8_t, std::size_t, uint8_t>> want;
  for (int i = 0; i < 40; ++i) {
    const std::size_t size = 60000 - static_cast<std::size_t>(i % 3) * 1000;
    const auto frame = Frame(static_cast<uint8_t>(protocol::FrameType::kSuperPacket), size, static_cast<uint8_t>(i));
    stream.insert(stream.end(), frame.begin(), frame.end());
    want.emplace_back(static_cast<uint8_t>(protocol::FrameType::kSuperPacket), size, static_cast<uint8_t>(i));
  }
  FrameReader reader(256, protocol::kMaxFramePayload, 2 * protocol::kMaxFrameSize);
  EXPECT_EQ(Feed(reader, stream, 40000), want);
  EXPECT_LE(reader.capacity(), 2 * protocol::kMaxFrameSize);
  // Moving every partial frame to the front would copy about half of the
  // stream again.
  EXPECT_LT(reader.bytes_moved(), stream.size() / 8) << "of " << stream.size() << " bytes";
}

TEST(FrameReaderTest, APartialFrameIsNeverReleased) {
  using namespace std::chrono_literals;
  FrameReader reader(64, protocol::kMaxFramePayload, 4096, 1s);
  const FrameReader::Clock::time_point t0{};
  const auto frame = Frame(1, 3000, 5);
  auto space = reader.Space(t0);
  std::memcpy(space.data(), frame.data(), 10);
  reader.Commit(10);
  EXPECT_EQ(reader.Next().status, protocol::ParseStatus::kNeedMore);
  space = reader.Space(t0 + 100s);
  ASSERT_GE(space.size(), frame.size() - 10);  // Room for all of it, first bytes kept.
  std::memcpy(space.data(), frame.data() + 10, frame.size() - 10);
  reader.Commit(frame.size() - 10);
  const auto parsed = reader.Next();
  ASSERT_EQ(parsed.status, protocol::ParseStatus::kFrame);
  EXPECT_EQ(parsed.payload.size(), 3000u);
  EXPECT_EQ(parsed.payload[2999], 5);
}

}  // namespace
}  // namespace mnedc::link
