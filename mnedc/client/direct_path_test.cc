#include "mnedc/client/direct_path.h"

#include <gtest/gtest.h>

namespace mnedc::client {
namespace {
using namespace std::chrono_literals;
using Endpoint = PathState::Endpoint;
using Clock = PathState::Clock;

const Endpoint kLan(boost::asio::ip::make_address("192.168.1.2"), 40000);
const Endpoint kOutside(boost::asio::ip::make_address("203.0.113.9"), 51000);

ProbeId Id(uint8_t n) {
  ProbeId id{};
  id[0] = n;
  return id;
}

class PathStateTest : public ::testing::Test {
 protected:
  // Sends what is due now, numbering the pings; returns where they went.
  std::vector<Endpoint> Tick() {
    std::vector<Endpoint> to;
    path.Due(now, &to);
    for (const Endpoint& e : to) {
      sent.emplace_back(e, Id(++ids));
      path.PingSent(e, Id(ids), now);
    }
    return to;
  }
  // Advances the clock in 10 ms steps, ticking, and returns every ping sent.
  std::vector<Endpoint> Run(Clock::duration how_long) {
    std::vector<Endpoint> all;
    for (const auto end = now + how_long; now < end;) {
      now += 10ms;
      for (const Endpoint& e : Tick()) all.push_back(e);
    }
    return all;
  }
  // Makes the path direct on kOutside with a 20 ms round trip.
  void GoDirect() {
    const Endpoint candidates[] = {kOutside};
    path.SetCandidates(candidates, now);
    ASSERT_EQ(Tick().size(), 1u);
    now += 20ms;
    ASSERT_TRUE(path.OnPong(kOutside, sent.back().second, now));
    ASSERT_TRUE(path.direct());
  }

  Clock::time_point now = Clock::time_point{} + 1h;
  PathState path;
  std::vector<std::pair<Endpoint, ProbeId>> sent;
  uint8_t ids = 0;
};

TEST_F(PathStateTest, WithoutCandidatesNothingIsProbed) {
  EXPECT_TRUE(Run(2min).empty());
  EXPECT_FALSE(path.direct());
  EXPECT_EQ(path.NextDue(), Clock::time_point::max());
}

TEST_F(PathStateTest, ARoundPingsEveryCandidateEveryHalfSecondForFiveSecondsThenWaits) {
  const Endpoint candidates[] = {kLan, kOutside};
  path.SetCandidates(candidates, now);
  EXPECT_EQ(Tick().size(), 2u);  // At once.
  EXPECT_TRUE(path.probing(now));
  // 5 s of rounds: 9 more times both (at 0.5 s, 1 s, ... 4.5 s), then nothing for 30 s.
  EXPECT_EQ(Run(5s).size(), 18u);
  EXPECT_FALSE(path.probing(now));
  EXPECT_TRUE(Run(29s).empty());
  EXPECT_EQ(Run(1s).size(), 2u);  // The next round, 30 s after the last ended.
}

TEST_F(PathStateTest, OnlyAPongToOurPingFromWhereItWentMakesThePathDirect) {
  const Endpoint candidates[] = {kLan, kOutside};
  path.SetCandidates(candidates, now);
  Tick();
  now += 15ms;
  EXPECT_FALSE(path.OnPong(kOutside, Id(99), now));  // Not our ping.
  EXPECT_FALSE(path.OnPong(kLan, sent[1].second, now));  // Our ping to kOutside, from kLan.
  EXPECT_FALSE(path.direct());
  EXPECT_TRUE(path.OnPong(kOutside, sent[1].second, now));
  EXPECT_TRUE(path.direct());
  EXPECT_EQ(*path.endpoint(), kOutside);
  EXPECT_EQ(path.rtt(), 15ms);
  EXPECT_EQ(path.since(), now);
  EXPECT_FALSE(path.OnPong(kOutside, sent[1].second, now + 1ms));  // The same pong again.
  // The round goes on for the other candidates; the LAN answers in under
  // 70% of that: it takes over.
  now += 485ms;  // Half a second after the round's first pings.
  const auto pings = Tick();
  ASSERT_EQ(pings.size(), 1u);
  EXPECT_EQ(pings[0], kLan);
  now += 2ms;
  EXPECT_TRUE(path.OnPong(kLan, sent.back().second, now));
  EXPECT_EQ(*path.endpoint(), kLan);
  EXPECT_EQ(path.rtt(), 2ms);
}

TEST_F(PathStateTest, ASlowerAnswerDoesNotTakeOver) {
  const Endpoint candidates[] = {kLan, kOutside};
  path.SetCandidates(candidates, now);
  Tick();
  now += 10ms;
  ASSERT_TRUE(path.OnPong(kLan, sent[0].second, now));
  now += 2ms;
  ASSERT_TRUE(path.OnPong(kOutside, sent[1].second, now));
  EXPECT_EQ(*path.endpoint(), kLan);
}

TEST_F(PathStateTest, HeartbeatsAreFastWhileTrafficFlowsAndSlowWhenIdle) {
  GoDirect();
  path.OnSent(now);
  // Answered at once: 4 a second while active (traffic in the last 5 s).
  int pings = 0;
  for (int i = 0; i < 100; ++i) {  // 1 s.
    now += 10ms;
    for (const Endpoint& e : Tick()) {
      EXPECT_EQ(e, kOutside);
      ++pings;
      path.OnPong(e, sent.back().second, now);
    }
  }
  EXPECT_EQ(pings, 4);
  // Idle: after the active 5 s, one every 10 s.
  pings = 0;
  for (int i = 0; i < 3000; ++i) {  // 30 s.
    now += 10ms;
    for (const Endpoint& e : Tick()) {
      ++pings;
      path.OnPong(e, sent.back().second, now);
    }
  }
  EXPECT_EQ(pings, 15 + 2);  // The rest of the active 5 s, then 2 in the idle 26 s.
  EXPECT_TRUE(path.direct());
}

TEST_F(PathStateTest, APathSilentForTheSilenceFallsBackAndProbesAgain) {
  GoDirect();
  path.OnSent(now);
  const auto direct_since = now;
  // Nothing answers from here on: the first heartbeat goes 250 ms after the
  // pong, and 800 ms later the path is gone.
  Clock::time_point fell_back{};
  for (int i = 0; i < 200 && path.direct(); ++i) {
    now += 10ms;
    Tick();
    if (!path.direct()) fell_back = now;
  }
  ASSERT_FALSE(path.direct());
  EXPECT_EQ(fell_back - direct_since, 250ms + 800ms);
  EXPECT_EQ(path.since(), fell_back);
  EXPECT_EQ(path.fallbacks(), 1u);
  EXPECT_TRUE(path.probing(now));
  EXPECT_EQ(sent.back().first, kOutside);  // Probing the candidate again, at once.
  EXPECT_EQ(sent.size(), 1u + 4u + 1u);    // The probe, 4 heartbeats, the new round's first probe.
}

TEST_F(PathStateTest, TrafficHeardKeepsThePathThoughPongsAreLost) {
  GoDirect();
  path.OnSent(now);
  for (int i = 0; i < 300; ++i) {  // 3 s of packets from the peer every 10 ms, no pong.
    now += 10ms;
    Tick();
    path.OnHeard(kOutside, now);
  }
  EXPECT_TRUE(path.direct());
  // From another address it does not count.
  for (int i = 0; i < 150; ++i) {
    now += 10ms;
    Tick();
    path.OnHeard(kLan, now);
  }
  EXPECT_FALSE(path.direct());
}

TEST_F(PathStateTest, CandidatesAreBoundedAndAPingersAddressIsOne) {
  std::vector<Endpoint> many;
  for (int i = 0; i < 20; ++i) many.emplace_back(boost::asio::ip::make_address("198.51.100.1"), 1000 + i);
  path.SetCandidates(many, now);
  EXPECT_EQ(path.candidates().size(), PathConfig{}.max_candidates);
  EXPECT_EQ(Tick().size(), PathConfig{}.max_candidates);

  PathState fresh;
  fresh.OnPingFrom(kOutside, now);  // Unannounced, but authenticated by the caller.
  std::vector<Endpoint> to;
  fresh.Due(now, &to);
  ASSERT_EQ(to.size(), 1u);
  EXPECT_EQ(to[0], kOutside);
  // Zero ports and unspecified addresses are not candidates.
  const Endpoint junk[] = {Endpoint(boost::asio::ip::make_address("0.0.0.0"), 5), Endpoint(kLan.address(), 0)};
  PathState other;
  other.SetCandidates(junk, now);
  EXPECT_TRUE(other.candidates().empty());
}

TEST_F(PathStateTest, NextDueSaysWhenTheNextPingIs) {
  const Endpoint candidates[] = {kOutside};
  path.SetCandidates(candidates, now);
  Tick();
  EXPECT_EQ(path.NextDue(), now + 500ms);
  now += 20ms;
  path.OnPong(kOutside, sent.back().second, now);
  path.OnSent(now);
  EXPECT_EQ(path.NextDue(), now + 250ms);
}

}  // namespace
}  // namespace mnedc::client

namespace mnedc::client {
namespace {

// A peer that names someone else's address, and sends CallMeMaybe (or pings
// from new addresses) as fast as it likes, gets no more pings sent there
// than the cap: at most one round per 35 s.
TEST_F(PathStateTest, WhatAPeerSendsCannotMakeItPingMore) {
  const Endpoint victim(boost::asio::ip::make_address("198.51.100.77"), 80);
  const Endpoint candidates[] = {victim};
  std::size_t to_victim = 0;
  for (int i = 0; i < 6900; ++i) {  // 69 s: a CallMeMaybe every 10 ms.
    path.SetCandidates(candidates, now);
    path.OnPingFrom(Endpoint(victim.address(), static_cast<uint16_t>(1000 + i % 50)), now);
    now += 10ms;
    for (const Endpoint& e : Tick()) to_victim += e.address() == victim.address();
  }
  // Rounds at 0 s and 35 s: 10 probes of at most 8 candidates each.
  EXPECT_EQ(path.rounds(), 2u);
  EXPECT_LE(to_victim, 2u * 10u * PathConfig{}.max_candidates);
}

}  // namespace
}  // namespace mnedc::client
