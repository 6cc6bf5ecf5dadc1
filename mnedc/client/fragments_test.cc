#include "mnedc/client/fragments.h"

#include <gtest/gtest.h>

#include <numeric>
#include <vector>

namespace mnedc::client {
namespace {
namespace ip = boost::asio::ip;
using Endpoint = Reassembly::Endpoint;

const Endpoint kA(ip::make_address("192.0.2.1"), 1000);
const Endpoint kB(ip::make_address("192.0.2.2"), 2000);

std::vector<uint8_t> Message(std::size_t size, uint8_t seed) {
  std::vector<uint8_t> m(size);
  for (std::size_t i = 0; i < size; ++i) m[i] = static_cast<uint8_t>(i * 7 + seed);
  return m;
}

// The datagrams WriteFragments made, one vector each.
std::vector<std::vector<uint8_t>> Split(std::span<const uint8_t> message, std::size_t datagram, uint32_t number) {
  std::vector<uint8_t> out(message.size() + kMaxFragments * kFragmentHeaderSize);
  const std::size_t size = WriteFragments(message, datagram, number, out);
  const std::size_t each = FragmentDatagramSize(message, datagram);
  std::vector<std::vector<uint8_t>> datagrams;
  for (std::size_t at = 0; at < size; at += each) {
    datagrams.emplace_back(out.begin() + at, out.begin() + std::min(size, at + each));
  }
  return datagrams;
}

TEST(FragmentsTest, AMessageComesBackWholeFromItsFragmentsInAnyOrder) {
  const auto message = Message(65000, 3);
  auto datagrams = Split(message, 1437, 7);
  ASSERT_EQ(datagrams.size(), 46u);  // 65000 / 1428, rounded up.
  for (std::size_t i = 0; i + 1 < datagrams.size(); ++i) ASSERT_EQ(datagrams[i].size(), 1437u);
  Reassembly reassembly(70000);
  std::swap(datagrams[3], datagrams[40]);  // Reordered on the way.
  std::span<uint8_t> whole;
  for (std::size_t i = 0; i < datagrams.size(); ++i) {
    whole = reassembly.Add(kA, datagrams[i]);
    if (i + 1 < datagrams.size()) ASSERT_TRUE(whole.empty()) << i;
  }
  ASSERT_EQ(std::vector<uint8_t>(whole.begin(), whole.end()), message);
  EXPECT_EQ(reassembly.counters().messages, 1u);
  // A one-fragment message too.
  const auto small = Message(100, 9);
  const auto one = Split(small, 1437, 8);
  ASSERT_EQ(one.size(), 1u);
  whole = reassembly.Add(kA, one[0]);
  EXPECT_EQ(std::vector<uint8_t>(whole.begin(), whole.end()), small);
}

TEST(FragmentsTest, ALostFragmentLosesItsMessageOnlyAndIsCounted) {
  Reassembly reassembly(70000);
  const auto first = Message(5000, 1), second = Message(5000, 2);
  auto a = Split(first, 1437, 1), b = Split(second, 1437, 2);
  a.erase(a.begin() + 1);  // Lost.
  for (const auto& d : a) EXPECT_TRUE(reassembly.Add(kA, d).empty());
  std::span<uint8_t> whole;
  for (const auto& d : b) whole = reassembly.Add(kA, d);
  EXPECT_EQ(std::vector<uint8_t>(whole.begin(), whole.end()), second);
  EXPECT_EQ(reassembly.counters().incomplete, 1u);
}

TEST(FragmentsTest, SendersAreKeptApartAndSlotsAreBounded) {
  Reassembly reassembly(70000);
  const auto from_a = Split(Message(3000, 1), 1437, 5), from_b = Split(Message(3000, 2), 1437, 5);
  // Interleaved, same message number: each sender's own.
  EXPECT_TRUE(reassembly.Add(kA, from_a[0]).empty());
  EXPECT_TRUE(reassembly.Add(kB, from_b[0]).empty());
  EXPECT_TRUE(reassembly.Add(kA, from_a[1]).empty());
  EXPECT_TRUE(reassembly.Add(kB, from_b[1]).empty());
  auto whole = reassembly.Add(kA, from_a[2]);
  EXPECT_EQ(std::vector<uint8_t>(whole.begin(), whole.end()), Message(3000, 1));
  // Many senders, each a message half-sent: the oldest give way, counted.
  for (uint16_t port = 1; port <= 20; ++port) {
    EXPECT_TRUE(reassembly.Add(Endpoint(kA.address(), port), from_a[0]).empty());
  }
  EXPECT_GE(reassembly.counters().incomplete, 20u - Reassembly::kSlots);
}

TEST(FragmentsTest, FragmentsThatDoNotHoldTogetherAreRefusedBeforeAnythingIsCopied) {
  Reassembly reassembly(10000);
  auto fragment = [](uint8_t index, uint8_t count, uint16_t per, std::size_t size) {
    std::vector<uint8_t> d(kFragmentHeaderSize + size, 0xEE);
    d[0] = kFragmentMarker;
    d[1] = index;
    d[2] = count;
    d[3] = static_cast<uint8_t>(per >> 8);
    d[4] = static_cast<uint8_t>(per);
    d[5] = d[6] = d[7] = d[8] = 0;
    return d;
  };
  EXPECT_TRUE(reassembly.Add(kA, fragment(0, 0, 100, 100)).empty());   // No fragments.
  EXPECT_TRUE(reassembly.Add(kA, fragment(3, 3, 100, 100)).empty());   // Index past the count.
  EXPECT_TRUE(reassembly.Add(kA, fragment(0, 65, 100, 100)).empty());  // Too many.
  EXPECT_TRUE(reassembly.Add(kA, fragment(0, 2, 100, 99)).empty());    // Not the last, yet short.
  EXPECT_TRUE(reassembly.Add(kA, fragment(1, 2, 100, 101)).empty());   // The last, longer than the rest.
  EXPECT_TRUE(reassembly.Add(kA, fragment(0, 2, 0, 0)).empty());       // Nothing in it.
  EXPECT_TRUE(reassembly.Add(kA, fragment(0, 11, 1000, 1000)).empty());  // 10 x 1000 + more: past the maximum.
  EXPECT_TRUE(reassembly.Add(kA, std::vector<uint8_t>{kFragmentMarker, 0, 1}).empty());  // No header.
  EXPECT_EQ(reassembly.counters().malformed, 8u);
  EXPECT_EQ(reassembly.counters().messages, 0u);
  // The same index twice counts once.
  const auto d = Split(Message(300, 4), 200, 9);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_TRUE(reassembly.Add(kA, d[0]).empty());
  EXPECT_TRUE(reassembly.Add(kA, d[0]).empty());
  EXPECT_FALSE(reassembly.Add(kA, d[1]).empty());
}

TEST(FragmentsTest, WriteFragmentsRefusesWhatWouldTakeTooMany) {
  const auto message = Message(10000, 1);
  std::vector<uint8_t> out(20000);
  EXPECT_EQ(WriteFragments(message, 100, 1, out), 0u);  // 110 fragments of 91 bytes.
  EXPECT_EQ(WriteFragments(message, kFragmentHeaderSize, 1, out), 0u);
  EXPECT_EQ(WriteFragments(message, 1437, 1, std::span(out).first(100)), 0u);  // No room.
}

TEST(FragmentsTest, FragmentCountIsWhatWriteFragmentsMakes) {
  std::vector<uint8_t> out(70000);
  for (const std::size_t size : {1, 1428, 1429, 10000, 65000}) {
    const auto message = Message(size, 3);
    const std::size_t count = FragmentCount(size, 1437);  // 1428 payload bytes each.
    ASSERT_EQ(count, (size + 1427) / 1428) << size;
    EXPECT_EQ(WriteFragments(message, 1437, 1, out), size + count * kFragmentHeaderSize) << size;
  }
  EXPECT_EQ(FragmentCount(10000, 100), 0u);  // More than kMaxFragments.
  EXPECT_EQ(FragmentCount(0, 1437), 0u);
  EXPECT_EQ(FragmentCount(100, kFragmentHeaderSize), 0u);
}

}  // namespace
}  // namespace mnedc::client
