// The accept loop out of file descriptors: it pauses instead of spinning, and
// takes the waiting connection once descriptors are free again.
#include "mnedc/transport/accept_loop.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <vector>

namespace mnedc::transport {
namespace {
namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

TEST(AcceptLoopTest, OutOfDescriptorsItPausesThenServesTheWaitingConnection) {
  asio::io_context io;
  tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  uint64_t errors = 0;
  int served = 0;
  asio::co_spawn(io,
                 AcceptLoop(acceptor,
                            [&served](tcp::socket) -> asio::awaitable<void> {
                              ++served;
                              co_return;
                            },
                            {"test port", 100ms, &errors}),
                 asio::detached);
  io.run_for(10ms);

  // A client connects (the kernel completes it), then the process runs out
  // of descriptors: every accept() now fails with EMFILE.
  tcp::socket client(io);
  client.connect(acceptor.local_endpoint());
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  std::vector<int> filler;
  const int probe = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(probe, 0);
  rlimit tight = saved;
  tight.rlim_cur = static_cast<rlim_t>(probe + 1);  // Nothing above what is open.
  ::close(probe);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &tight), 0);
  for (int fd; (fd = ::open("/dev/null", O_RDONLY)) >= 0;) filler.push_back(fd);

  io.run_for(500ms);
  EXPECT_EQ(served, 0);
  EXPECT_GE(errors, 1u);
  // About one attempt per 100 ms pause; a loop that retried at once would
  // have failed many thousands of times.
  EXPECT_LE(errors, 10u) << "the accept loop spins on EMFILE";

  for (int fd : filler) ::close(fd);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
  const auto deadline = std::chrono::steady_clock::now() + 3s;
  while (served == 0 && std::chrono::steady_clock::now() < deadline) io.run_for(10ms);
  EXPECT_EQ(served, 1);
  acceptor.close();
  io.run_for(10ms);
}

}  // namespace
}  // namespace mnedc::transport
