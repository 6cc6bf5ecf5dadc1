#include "mnedc/transport/socket_state_reserve.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/resource.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <cstdlib>
#include <new>
#include <vector>

// Counts heap allocations, to see whether opening a socket allocated its state.
static std::atomic<long> allocations{0};
void* operator new(std::size_t size) {
  ++allocations;
  if (void* p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace mnedc::transport {
namespace {

namespace asio = boost::asio;

// Opens `count` more sockets into `open` (the connections a relay holds);
// returns the allocations that made.
long AllocationsToOpen(asio::io_context& io, std::vector<asio::ip::udp::socket>& open, int count) {
  const long before = allocations;
  for (int i = 0; i < count; ++i) open.emplace_back(io).open(asio::ip::udp::v4());
  return allocations - before;
}

TEST(SocketStateReserve, SocketsOpenedWithinTheReserveAllocateNothing) {
  asio::io_context io;
  std::vector<asio::ip::udp::socket> open;
  open.reserve(2000);
  // Without a reserve, asio allocates a state for each new socket.
  EXPECT_GE(AllocationsToOpen(io, open, 10), 10);
  SocketStateReserve reserve(io.get_executor());
  EXPECT_EQ(reserve.Ensure(open.size(), 10000), 64u);
  EXPECT_EQ(reserve.reserved(), 74u);
  EXPECT_EQ(AllocationsToOpen(io, open, 30), 0);  // 40 open now.
  // 74 states for 40 open: more than half a block (32) left, nothing made.
  EXPECT_EQ(reserve.Ensure(open.size(), 10000), 0u);
  EXPECT_EQ(AllocationsToOpen(io, open, 20), 0);  // 60 open: 14 left.
  EXPECT_EQ(reserve.Ensure(open.size(), 10000), 64u);
  EXPECT_EQ(reserve.reserved(), 124u);
  EXPECT_EQ(AllocationsToOpen(io, open, 64), 0);  // 124 open.
  // Closed sockets leave their states for the next ones.
  open.erase(open.begin() + 24, open.end());
  EXPECT_EQ(reserve.Ensure(open.size(), 10000), 0u);
  EXPECT_EQ(AllocationsToOpen(io, open, 100), 0);
  // Blocks grow with the sockets open, up to 1024 at a time.
  EXPECT_EQ(reserve.Ensure(open.size(), 10000), 124u);
  EXPECT_EQ(AllocationsToOpen(io, open, 124), 0);
  EXPECT_EQ(reserve.Ensure(5000, 100000), 1024u);
}

TEST(SocketStateReserve, StaysWithinTheLimitAndTheDescriptorsThereAre) {
  asio::io_context io;
  SocketStateReserve reserve(io.get_executor());
  EXPECT_EQ(reserve.Ensure(100, 120), 20u);  // Never more states than the limit needs.
  EXPECT_EQ(reserve.Ensure(120, 120), 0u);
  // With 10 descriptors to spare it makes what it can, and no error.
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  int highest = 0;
  for (int fd = 0; fd < 1024; ++fd) {
    if (::fcntl(fd, F_GETFD) >= 0) highest = fd;
  }
  rlimit low = saved;
  low.rlim_cur = highest + 11;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  SocketStateReserve tight(io.get_executor());
  const std::size_t made = tight.Ensure(500, 100000);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &saved), 0);
  EXPECT_GE(made, 1u);
  EXPECT_LE(made, 10u);
  EXPECT_EQ(tight.reserved(), 500 + made);
}

}  // namespace
}  // namespace mnedc::transport
