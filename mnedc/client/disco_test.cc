#include "mnedc/client/disco.h"

#include <gtest/gtest.h>

#include <vector>

namespace mnedc::client {
namespace {
namespace ip = boost::asio::ip;

TEST(DiscoTest, PingPongAndCallMeMaybeRoundTrip) {
  ProbeId id{};
  for (std::size_t i = 0; i < id.size(); ++i) id[i] = static_cast<uint8_t>(i + 1);
  std::array<uint8_t, kPingSize> ping;
  ASSERT_EQ(WritePing(id, ping), kPingSize);
  EXPECT_TRUE(IsDisco(ping));
  DiscoMessage message;
  ASSERT_TRUE(ParseDisco(ping, &message));
  EXPECT_EQ(message.type, DiscoType::kPing);
  EXPECT_EQ(message.id, id);

  std::array<uint8_t, kPongSize> pong;
  const ip::udp::endpoint seen(ip::make_address("203.0.113.9"), 51000);
  ASSERT_EQ(WritePong(id, seen, pong), kPongSize);
  ASSERT_TRUE(ParseDisco(pong, &message));
  EXPECT_EQ(message.type, DiscoType::kPong);
  EXPECT_EQ(message.id, id);
  EXPECT_EQ(message.seen_from, seen);
  EXPECT_LE(pong.size(), ping.size());  // Answering never amplifies.

  std::vector<ip::udp::endpoint> candidates;
  for (int i = 0; i < 10; ++i) candidates.emplace_back(ip::make_address("192.0.2.1"), 1000 + i);
  candidates[1] = ip::udp::endpoint(ip::make_address("2001:db8::7"), 443);
  std::array<uint8_t, kMaxCallMeMaybeSize> call;
  const std::size_t size = WriteCallMeMaybe(candidates, call);
  EXPECT_EQ(size, kMaxCallMeMaybeSize);  // The first 8 only.
  ASSERT_TRUE(ParseDisco(std::span(call.data(), size), &message));
  EXPECT_EQ(message.type, DiscoType::kCallMeMaybe);
  ASSERT_EQ(message.candidate_count, kMaxCandidates);
  for (std::size_t i = 0; i < kMaxCandidates; ++i) EXPECT_EQ(message.candidates[i], candidates[i]);
  // None at all is a CallMeMaybe too ("tell me yours").
  ASSERT_EQ(WriteCallMeMaybe({}, call), 2u);
  ASSERT_TRUE(ParseDisco(std::span(call.data(), 2), &message));
  EXPECT_EQ(message.candidate_count, 0u);
}

TEST(DiscoTest, PacketsAreNotDiscoAndMalformedMessagesAreRefused) {
  const uint8_t ipv4[] = {0x45, 0, 0, 20};
  const uint8_t ipv6[] = {0x60, 0, 0, 0};
  EXPECT_FALSE(IsDisco(ipv4));
  EXPECT_FALSE(IsDisco(ipv6));
  EXPECT_FALSE(IsDisco({}));
  DiscoMessage message;
  std::array<uint8_t, kPingSize> ping{};
  WritePing({}, ping);
  EXPECT_FALSE(ParseDisco(std::span(ping.data(), kPingSize - 1), &message));  // Short.
  std::vector<uint8_t> longer(ping.begin(), ping.end());
  longer.push_back(0);
  EXPECT_FALSE(ParseDisco(longer, &message));
  std::array<uint8_t, kPongSize> pong;
  WritePong({}, ip::udp::endpoint(ip::make_address("192.0.2.1"), 1), pong);
  pong[13] = 5;  // Neither IPv4 nor IPv6.
  EXPECT_FALSE(ParseDisco(pong, &message));
  // A count past the maximum, or past the bytes there.
  const uint8_t too_many[] = {3, 9};
  EXPECT_FALSE(ParseDisco(too_many, &message));
  const uint8_t short_list[] = {3, 1, 4, 0, 1};
  EXPECT_FALSE(ParseDisco(short_list, &message));
  const uint8_t unknown[] = {0x0f, 1, 2, 3};
  EXPECT_FALSE(ParseDisco(unknown, &message));
}

}  // namespace
}  // namespace mnedc::client
