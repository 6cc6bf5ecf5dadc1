// "No per-packet heap allocation once warm", measured: this binary counts every
// operator new and every aligned allocation while packets flow through a real
// relay between two real clients on 127.0.0.1, after a warm-up, all inside one
// io_context::run() as the relay and the client run.
#include <gtest/gtest.h>

#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <cstdlib>
#include <functional>
#include <memory>
#include <new>
#include <optional>

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

// Aligned storage is counted too: Asio allocates coroutine frames and
// handlers with aligned_alloc (its recycling allocator's fallback), which
// operator new never sees.
extern "C" void* aligned_alloc(std::size_t alignment, std::size_t size) {
  ++allocations;
  void* p = nullptr;
  return posix_memalign(&p, alignment < sizeof(void*) ? sizeof(void*) : alignment, size ? size : 1) == 0 ? p
                                                                                                          : nullptr;
}
void* operator new(std::size_t size, std::align_val_t alignment) {
  if (void* p = aligned_alloc(static_cast<std::size_t>(alignment), size)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size, std::align_val_t alignment) { return operator new(size, alignment); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

namespace mnedc::testing {
namespace {

using namespace std::chrono_literals;

// A pump moves test traffic: called again and again, it sends what it may
// and says whether all it sent has arrived.
using Pump = std::function<bool()>;

// `count` packets a -> b as fast as a's queue takes them.
Pump Burst(Node& a, Node& b, int count, std::vector<uint8_t> packet, packet::Gso gso = {},
           std::size_t arrivals_each = 1) {
  auto target = std::make_shared<std::optional<std::size_t>>();
  auto sent = std::make_shared<int>(0);
  return [&a, &b, count, packet = std::move(packet), gso, arrivals_each, target, sent] {
    if (!*target) *target = b.received.size() + count * arrivals_each;
    while (*sent < count && a.client->HasRoom()) {
      a.client->SendPacket(packet, gso);
      ++*sent;
    }
    return b.received.size() >= **target;
  };
}

Pump Packets(Node& a, Node& b, int count, int size) {
  return Burst(a, b, count, MakeIpv4Packet(a.address(), b.address(), size, 7));
}

// Interactive traffic: each packet goes alone, the next only once it has
// arrived (a ping, a keystroke, a request and its answer), so every read and
// write on the path, at the relay and at both ends, carries one packet.
Pump OneAtATime(Node& a, Node& b, int count) {
  auto start = std::make_shared<std::optional<std::size_t>>();
  auto sent = std::make_shared<int>(0);
  return [&a, &b, count, packet = MakeIpv4Packet(a.address(), b.address(), 100, 7), start, sent] {
    if (!*start) *start = b.received.size();
    const std::size_t arrived = b.received.size() - **start;
    if (arrived == static_cast<std::size_t>(*sent) && *sent < count) {
      a.client->SendPacket(packet);
      ++*sent;
    }
    return arrived >= static_cast<std::size_t>(count);
  };
}

Pump Then(Pump first, Pump second) {
  auto first_done = std::make_shared<bool>(false);
  return [first = std::move(first), second = std::move(second), first_done] {
    if (!*first_done) *first_done = first();
    return *first_done && second();
  };
}

struct Counted {
  bool finished = false;       // Both pumps' traffic arrived within the time allowed.
  uint64_t allocations = 0;    // While `counted` ran, less one per packet `into` received.
};

// Runs `warm_up`, then `counted`, in one io_context::run(), a pump turn
// after each round of ready handlers, and counts the allocations while
// `counted` runs. One run() as in the relay and the client: Asio keeps the
// coroutine frames and handlers it recycles per run() call, so a test that
// polled in small steps would count its own restarts. What `into` stores of
// each packet it receives (a vector) is the test's own and is left out.
Counted CountAfterWarmUp(LoopbackNet& net, Node& into, Pump warm_up, Pump counted) {
  auto& io = net.io();
  io.restart();
  Counted result;
  bool warm = false, timed_out = false;
  uint64_t before = 0;
  std::size_t received_before = 0;
  boost::asio::steady_timer watchdog(io, 60s);
  watchdog.async_wait([&](boost::system::error_code ec) {
    if (ec) return;
    timed_out = true;
    io.stop();
  });
  std::function<void()> turn;
  turn = [&] {
    if (timed_out) return;
    if (!warm && warm_up()) {
      warm = true;
      before = allocations.load();
      received_before = into.received.size();
    }
    if (warm && counted()) {
      const uint64_t during = allocations.load() - before;
      const uint64_t bookkeeping = into.received.size() - received_before;
      result.allocations = during > bookkeeping ? during - bookkeeping : 0;
      result.finished = true;
      watchdog.cancel();
      io.stop();
      return;
    }
    boost::asio::post(io, [&turn] { turn(); });
  };
  boost::asio::post(io, [&turn] { turn(); });
  io.run();
  io.restart();
  io.poll();  // The watchdog's cancelled wait, while what it refers to is here.
  return result;
}

class Allocation : public ::testing::TestWithParam<transport::Scheme> {
 protected:
  static void SetUpTestSuite() {
    const char* dir = std::getenv("TEST_TMPDIR");
    pki_ = MakeTestPki(dir ? dir : "/tmp");
  }
  // Prints what was counted over the transport under test, and holds it to
  // the bound: a stray timer or bookkeeping allocation may happen; one per
  // packet must not.
  static void Expect(const char* what, const Counted& counted) {
    ASSERT_TRUE(counted.finished);
    std::printf("%s: allocations on the data path for %s: %lu\n",
                std::string(transport::SchemeName(GetParam())).c_str(), what,
                static_cast<unsigned long>(counted.allocations));
    EXPECT_LT(counted.allocations, 20u);
  }
  static TestPki pki_;
};
TestPki Allocation::pki_;

// Joins a and b to a relay that also takes TLS, over the transport under test.
void JoinOver(LoopbackNet& net, const TestPki& pki, transport::Scheme scheme, Node** a, Node** b) {
  relay::RelayOptions relay_options;
  std::string error;
  relay_options.accept.tls = transport::MakeTlsServerContext({pki.server_cert, pki.server_key, ""}, &error);
  ASSERT_TRUE(relay_options.accept.tls) << error;
  net.StartRelay(relay_options);
  auto via = [&pki, scheme](client::ClientOptions& options) {
    options.server.scheme = scheme;
    options.server.path = "/mnedc";
    if (options.server.uses_tls()) {
      std::string error;
      options.dial.tls = transport::MakeTlsClientContext({.ca_file = pki.ca_cert}, &error);
      ASSERT_TRUE(options.dial.tls) << error;
    }
  };
  *a = &net.AddClient("a", via);
  *b = &net.AddClient("b", via);
  ASSERT_TRUE(net.RunUntil([&] { return (*a)->client->joined() && (*b)->client->joined(); }));
}

TEST_P(Allocation, NoneAfterWarmUpOnTheDataPath) {
  LoopbackNet net;
  Node* a = nullptr;
  Node* b = nullptr;
  ASSERT_NO_FATAL_FAILURE(JoinOver(net, pki_, GetParam(), &a, &b));
  // The receiving test node stores packets in a vector: keep its storage out of the count.
  b->received.reserve(40000);
  // Warm-up: queues, buffers, coroutine frames.
  const Counted counted = CountAfterWarmUp(net, *b, Packets(*a, *b, 10000, 1400), Packets(*a, *b, 20000, 1400));
  RecordProperty("allocations_on_path_per_20000_packets", static_cast<int>(counted.allocations));
  Expect("20000 packets", counted);
}

// One packet a turn: no batch to spread a coroutine frame or a handler over,
// so each turn on the path must reuse them.
TEST_P(Allocation, NoneAfterWarmUpForOnePacketAtATime) {
  LoopbackNet net;
  Node* a = nullptr;
  Node* b = nullptr;
  ASSERT_NO_FATAL_FAILURE(JoinOver(net, pki_, GetParam(), &a, &b));
  b->received.reserve(4000);
  Expect("2000 packets one at a time",
         CountAfterWarmUp(net, *b, OneAtATime(*a, *b, 200), OneAtATime(*a, *b, 2000)));
}

// Super-packets: whole between members that take them, and cut into
// segments by the relay for one that does not.
Pump SuperPackets(Node& a, Node& b, int count, std::size_t arrivals_each) {
  packet::testing::Flow flow;
  flow.source4 = a.address();
  flow.destination4 = b.address();
  return Burst(a, b, count, packet::testing::MakePacket(flow, 60000), {packet::GsoKind::kTcp, 1400}, arrivals_each);
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
  Counted counted = CountAfterWarmUp(net, b, SuperPackets(a, b, 1000, 1), SuperPackets(a, b, 2000, 1));
  ASSERT_TRUE(counted.finished);
  std::printf("super-packets whole: allocations on the data path for 2000: %lu\n",
              static_cast<unsigned long>(counted.allocations));
  EXPECT_LT(counted.allocations, 20u);
  counted = CountAfterWarmUp(net, old, SuperPackets(a, old, 300, segments), SuperPackets(a, old, 1000, segments));
  ASSERT_TRUE(counted.finished);
  std::printf("super-packets cut for an older member: allocations for 1000 (%zu segments each): %lu\n", segments,
              static_cast<unsigned long>(counted.allocations));
  EXPECT_LT(counted.allocations, 20u);
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
  const Pump warm_up = Then(Packets(a, b, 10000, 1400), SuperPackets(a, b, 1000, 1));
  Counted counted = CountAfterWarmUp(net, b, warm_up, Packets(a, b, 20000, 1400));
  ASSERT_TRUE(counted.finished);
  std::printf("sealed packets: allocations on the data path for 20000: %lu\n",
              static_cast<unsigned long>(counted.allocations));
  EXPECT_LT(counted.allocations, 20u);
  b.received.clear();
  b.received_offloads.clear();
  counted = CountAfterWarmUp(net, b, SuperPackets(a, b, 1000, 1), SuperPackets(a, b, 2000, 1));
  ASSERT_TRUE(counted.finished);
  std::printf("sealed super-packets: allocations on the data path for 2000: %lu\n",
              static_cast<unsigned long>(counted.allocations));
  EXPECT_LT(counted.allocations, 20u);
  // All of them were opened: 10000 + 1000 and 20000, then 1000 + 2000.
  EXPECT_GE(b.client->sealing()->counters().opened, 34000u);
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
