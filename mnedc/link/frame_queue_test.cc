#include "mnedc/link/frame_queue.h"

#include <gtest/gtest.h>

#include <set>

namespace mnedc::link {
namespace {

using protocol::FrameType;
using protocol::kFrameHeaderSize;

TEST(FrameQueue, KeepsOrderAndDropsOldestWhenFull) {
  FrameQueue queue(3);
  std::vector<std::vector<uint8_t>> out(3);
  for (uint8_t i = 0; i < 5; ++i) {
    const uint8_t payload[] = {i};
    EXPECT_EQ(queue.PushDropOldest(FrameType::kData, payload), i >= 3) << int(i);
  }
  ASSERT_EQ(queue.TakeAll(out), 3u);
  for (uint8_t i = 0; i < 3; ++i) {
    ASSERT_EQ(out[i].size(), kFrameHeaderSize + 1);
    EXPECT_EQ(out[i][0], static_cast<uint8_t>(FrameType::kData));
    EXPECT_EQ(out[i][kFrameHeaderSize], i + 2);  // 0 and 1 were dropped.
  }
  EXPECT_TRUE(queue.empty());
}

TEST(FrameQueue, WarmQueueReusesStorage) {
  FrameQueue queue(2);
  std::vector<std::vector<uint8_t>> out(2);
  const std::vector<uint8_t> big(1400, 0xab);
  // Warm up: the four blocks (two slots, two out vectors) trade places each round.
  std::set<const uint8_t*> blocks;
  for (int round = 0; round < 4; ++round) {
    queue.PushDropOldest(FrameType::kData, big);
    queue.PushDropOldest(FrameType::kData, big);
    queue.TakeAll(out);
    for (auto& v : out) blocks.insert(v.data());
  }
  ASSERT_EQ(blocks.size(), 4u);
  for (int round = 0; round < 50; ++round) {
    queue.PushDropOldest(FrameType::kData, std::span(big).first(20 + round));
    queue.PushDropOldest(FrameType::kData, big);
    queue.PushDropOldest(FrameType::kData, big);  // Drops one: still no allocation.
    queue.TakeAll(out);
    for (auto& v : out) EXPECT_TRUE(blocks.count(v.data())) << "a new buffer was allocated";
  }
}

}  // namespace
}  // namespace mnedc::link
