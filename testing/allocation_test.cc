// "No per-packet heap allocation once warm", measured: this binary counts every
// operator new while packets flow through a real relay between two real
// clients on 127.0.0.1, after a warm-up.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "mnedc/transport/tls_context.h"
#include "mnedc/packet/gso.h"
#include "mnedc/packet/test_packets.h"
#include "mnedc/seal/keys.h"
#include "testing/ip_packets.h"
#include "testing/loopback_net.h"
#include "testing/test_pki.h"

namespace {
std::atomic<uint64_t> allocations{0};
}

void* operator new(std::size_t size) {
  ++allocations;
  if (void* p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return operator new(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace mnedc::testing {
namespace {

using namespace std::chrono_literals;

// Sends `count` packets a -> b as fast as a's queue takes them; returns when b has them all.
bool Pump(LoopbackNet& net, Node& a, Node& b, int count, int size) {
  const std::size_t target = b.received.size() + count;
  const auto packet = MakeIpv4Packet(a.address(), b.address(), size, 7);
  int sent = 0;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (b.received.size() < target && std::chrono::steady_clock::now() < deadline) {
    while (sent < count && a.client->HasRoom()) {
      a.client->SendPacket(packet);
      ++sent;
    }
    net.io().poll();
  }
  return b.received.size() == target;
}

class Allocation : public ::testing::TestWithParam<transport::Scheme> {
 protected:
  static void SetUpTestSuite() {
    const char* dir = std::getenv("TEST_TMPDIR");
    pki_ = MakeTestPki(dir ? dir : "/tmp");
  }
  static TestPki pki_;
};
TestPki Allocation::pki_;

TEST_P(Allocation, NoneAfterWarmUpOnTheDataPath) {
  LoopbackNet net;
  relay::RelayOptions relay_options;
  std::string error;
  relay_options.accept.tls =
      transport::MakeTlsServerContext({pki_.server_cert, pki_.server_key, ""}, &error);
  ASSERT_TRUE(relay_options.accept.tls) << error;
  net.StartRelay(relay_options);
  auto via = [](client::ClientOptions& options) {
    options.server.scheme = GetParam();
    options.server.path = "/mnedc";
    if (options.server.uses_tls()) {
      std::string error;
      options.dial.tls = transport::MakeTlsClientContext({.ca_file = pki_.ca_cert}, &error);
      ASSERT_TRUE(options.dial.tls) << error;
    }
  };
  Node& a = net.AddClient("a", via);
  Node& b = net.AddClient("b", via);
  ASSERT_TRUE(net.RunUntil([&] { return a.client->joined() && b.client->joined(); }));
  // The receiving test node stores packets in a vector: keep its storage out of the count.
  b.received.reserve(40000);
  ASSERT_TRUE(Pump(net, a, b, 10000, 1400));  // Warm-up: queues, buffers, coroutine frames.
  b.received.clear();

  const uint64_t before = allocations.load();
  // Count only our own storage of what arrives: one vector per packet received.
  ASSERT_TRUE(Pump(net, a, b, 20000, 1400));
  const uint64_t during = allocations.load() - before;
  const uint64_t test_bookkeeping = b.received.size();  // b.received.emplace_back copies.
  const uint64_t path = during > test_bookkeeping ? during - test_bookkeeping : 0;
  RecordProperty("allocations_on_path_per_20000_packets", static_cast<int>(path));
  std::printf("%s: allocations on the data path for 20000 packets: %lu\n",
              std::string(transport::SchemeName(GetParam())).c_str(),
              static_cast<unsigned long>(path));
  // A stray timer or bookkeeping allocation may happen; one per packet must not.
  EXPECT_LT(path, 20u);
}

// Super-packets: whole between members that take them, and cut into
// segments by the relay for one that does not.
bool PumpSuper(LoopbackNet& net, Node& a, Node& b, int count, std::size_t segments_each) {
  packet::testing::Flow flow;
  flow.source4 = a.address();
  flow.destination4 = b.address();
  const auto packet = packet::testing::MakePacket(flow, 60000);
  const packet::Gso gso{packet::GsoKind::kTcp, 1400};
  const std::size_t target = b.received.size() + count * segments_each;
  int sent = 0;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (b.received.size() < target && std::chrono::steady_clock::now() < deadline) {
    while (sent < count && a.client->HasRoom()) {
      a.client->SendPacket(packet, gso);
      ++sent;
    }
    net.io().poll();
  }
  return b.received.size() == target;
}

TEST(SuperPacketAllocation, NoneAfterWarmUpWholeOrCut) {
  LoopbackNet net;
  net.StartRelay();
  auto with_super = [](client::ClientOptions& options) { options.super_packets = true; };
  Node& a = net.AddClient("a", with_super);
  Node& b = net.AddClient("b", with_super);
  Node& old = net.AddClient("old");
  ASSERT_TRUE(net.RunUntil([&] { return a.client->joined() && b.client->joined() && old.client->joined(); }));
  b.received.reserve(10000);
  b.received_offloads.reserve(10000);
  old.received.reserve(100000);
  old.received_offloads.reserve(100000);
  const std::size_t segments = (60000 + 1399) / 1400;
  ASSERT_TRUE(PumpSuper(net, a, b, 1000, 1));
  ASSERT_TRUE(PumpSuper(net, a, old, 300, segments));
  b.received.clear();
  b.received_offloads.clear();
  old.received.clear();
  old.received_offloads.clear();

  uint64_t before = allocations.load();
  ASSERT_TRUE(PumpSuper(net, a, b, 2000, 1));
  uint64_t path = allocations.load() - before - b.received.size();
  std::printf("super-packets whole: allocations on the data path for 2000: %lu\n", static_cast<unsigned long>(path));
  EXPECT_LT(path, 20u);
  before = allocations.load();
  ASSERT_TRUE(PumpSuper(net, a, old, 1000, segments));
  path = allocations.load() - before - old.received.size();
  std::printf("super-packets cut for an older member: allocations for 1000 (%zu segments): %lu\n",
              old.received.size(), static_cast<unsigned long>(path));
  EXPECT_LT(path, 20u);
}

// Sealed end to end: the sealing goes straight into the queue's slots and
// the opening happens in the read buffer. (OpenSSL's own allocations are not
// operator new's: mnedc/seal:aead_allocation_test counts those.)
TEST(SealedAllocation, NoneAfterWarmUpForPacketsAndSuperPackets) {
  LoopbackNet net;
  net.StartRelay();
  auto keyed = [](client::ClientOptions& options) {
    seal::KeyPair key;
    ASSERT_TRUE(seal::KeyPair::Generate(&key));
    options.device_key = key;
    options.super_packets = true;
  };
  Node& a = net.AddClient("a", keyed);
  Node& b = net.AddClient("b", keyed);
  ASSERT_TRUE(net.RunUntil([&] { return a.client->peers().size() == 1 && b.client->peers().size() == 1; }));
  b.received.reserve(40000);
  b.received_offloads.reserve(40000);
  ASSERT_TRUE(Pump(net, a, b, 10000, 1400));
  ASSERT_TRUE(PumpSuper(net, a, b, 1000, 1));
  b.received.clear();
  b.received_offloads.clear();

  uint64_t before = allocations.load();
  ASSERT_TRUE(Pump(net, a, b, 20000, 1400));
  uint64_t path = allocations.load() - before - b.received.size();
  std::printf("sealed packets: allocations on the data path for 20000: %lu\n", static_cast<unsigned long>(path));
  EXPECT_LT(path, 20u);
  b.received.clear();
  b.received_offloads.clear();
  before = allocations.load();
  ASSERT_TRUE(PumpSuper(net, a, b, 2000, 1));
  path = allocations.load() - before - b.received.size();
  std::printf("sealed super-packets: allocations on the data path for 2000: %lu\n", static_cast<unsigned long>(path));
  EXPECT_LT(path, 20u);
  EXPECT_GE(b.client->sealing()->counters().opened, 22000u + 11000u);
}

// On a direct path: sealed into the send batch (super-packets sealed whole,
// then in fragments, a GSO run each), opened in the receive
// buffer (a super-packet in its reassembly slot). In batches the
// receiver keeps up with (UDP has no flow control: a burst past the socket's
// buffer is dropped, as on any network).
bool PumpDirect(LoopbackNet& net, Node& a, Node& b, int count, packet::Gso gso, std::span<const uint8_t> packet,
                std::size_t per_packet) {
  for (int sent = 0; sent < count; sent += 50) {
    const std::size_t target = b.received.size() + 50 * per_packet;
    for (int i = 0; i < 50; ++i) a.client->SendPacket(packet, gso);
    if (!net.RunUntil([&] { return b.received.size() >= target; })) return false;
  }
  return true;
}

TEST(DirectAllocation, NoneAfterWarmUpForPacketsAndSuperPackets) {
  LoopbackNet net;
  net.StartRelay();
  auto keyed = [](client::ClientOptions& options) {
    seal::KeyPair key;
    ASSERT_TRUE(seal::KeyPair::Generate(&key));
    options.device_key = key;
    options.direct = true;
  };
  Node& a = net.AddClient("a", keyed);
  Node& b = net.AddClient("b", keyed);
  ASSERT_TRUE(net.RunUntil([&] { return a.client->peers().size() == 1 && b.client->peers().size() == 1; }));
  const auto packet = MakeIpv4Packet(a.address(), b.address(), 1400, 7);
  // The first packet looks for a path: direct once a probe round-trips
  // (over this host's own addresses, whichever it has besides loopback).
  a.client->SendPacket(packet);
  if (!net.RunUntil([&] {
        const auto* path = a.client->direct() ? a.client->direct()->PathTo(b.address()) : nullptr;
        return path && path->direct();
      })) {
    GTEST_SKIP() << "no direct path between two clients on this host (it has no address but loopback)";
  }
  packet::testing::Flow flow;
  flow.source4 = a.address();
  flow.destination4 = b.address();
  const auto super = packet::testing::MakePacket(flow, 8 * 1360);
  const packet::Gso gso{packet::GsoKind::kTcp, 1360};
  b.received.reserve(40000);
  b.received_offloads.reserve(40000);
  ASSERT_TRUE(PumpDirect(net, a, b, 2000, {}, packet, 1));
  ASSERT_TRUE(PumpDirect(net, a, b, 200, gso, super, 8));
  b.received.clear();
  b.received_offloads.clear();

  const uint64_t direct_before = b.client->direct()->counters().packets_in;
  const uint64_t calls_before = a.client->direct()->counters().send_calls;
  uint64_t before = allocations.load();
  ASSERT_TRUE(PumpDirect(net, a, b, 10000, {}, packet, 1));
  uint64_t path = allocations.load() - before - b.received.size();
  std::printf("direct packets: allocations on the data path for 10000: %lu\n", static_cast<unsigned long>(path));
  EXPECT_LT(path, 20u);
  // Sent 50 in a turn, as a TUN read batch hands them: a system call per
  // batch (a few more for probes and heartbeats), not one per packet.
  const uint64_t calls = a.client->direct()->counters().send_calls - calls_before;
  std::printf("direct packets: system calls that sent 10000 (50 a turn): %lu\n", static_cast<unsigned long>(calls));
  EXPECT_LE(calls, 10000u / 50 + 50);
  b.received.clear();
  b.received_offloads.clear();
  const uint64_t super_calls_before = a.client->direct()->counters().send_calls;
  before = allocations.load();
  ASSERT_TRUE(PumpDirect(net, a, b, 1000, gso, super, 8));
  path = allocations.load() - before - b.received.size();
  std::printf("direct super-packets (8 segments each): allocations on the data path for 1000: %lu\n",
              static_cast<unsigned long>(path));
  EXPECT_LT(path, 20u);
  // Their fragments share the batch: as many super-packets per system call
  // as its 64 datagrams hold (8 of 8-9 fragments each), not one call each.
  const uint64_t super_calls = a.client->direct()->counters().send_calls - super_calls_before;
  std::printf("direct super-packets: system calls that sent 1000 (50 a turn): %lu\n",
              static_cast<unsigned long>(super_calls));
  EXPECT_LE(super_calls, 1000u / 4);
  // They did go direct (a super-packet, sealed whole in fragments, counts once).
  EXPECT_GE(b.client->direct()->counters().packets_in - direct_before, 10000u + 1000u);
}

INSTANTIATE_TEST_SUITE_P(Transports, Allocation,
                         ::testing::Values(transport::Scheme::kTcp, transport::Scheme::kWs,
                                           transport::Scheme::kTls, transport::Scheme::kWss),
                         [](const auto& info) {
                           return std::string(transport::SchemeName(info.param));
                         });

}  // namespace
}  // namespace mnedc::testing
