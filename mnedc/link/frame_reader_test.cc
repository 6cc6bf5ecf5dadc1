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
    // It grew for the 64 KiB frame, exactly to its size.
    EXPECT_EQ(reader.capacity(), protocol::kFrameHeaderSize + 65535);
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

}  // namespace
}  // namespace mnedc::link
