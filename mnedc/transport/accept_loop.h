#pragma once
// The one accept loop of every listening socket (the relay's ports, the
// operations endpoint, the client's status socket). A failed accept (EMFILE
// when the process is out of file descriptors, ENFILE, ENOBUFS, ...) is
// counted, logged at most once a second, and followed by a pause: retrying at
// once would spin a core and flood the log while nothing can be accepted.
// Connections that wait meanwhile are accepted once descriptors free up.
//
// With `refuse`, the loop keeps one descriptor in reserve: when accepts fail
// for want of descriptors, it frees the reserve, accepts the waiting
// connections one at a time and hands each to `refuse` (which tells the peer
// why and closes it), so devices are answered and back off instead of
// hanging in the kernel's queue until they time out.
#include <fcntl.h>
#include <glog/logging.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <string>

#include "mnedc/base/coro.h"

namespace mnedc::transport {

struct AcceptLoopOptions {
  std::string what;  // For the log: "relay port 0.0.0.0:3334", "operations endpoint".
  std::chrono::steady_clock::duration pause_after_error = std::chrono::milliseconds(100);
  uint64_t* errors = nullptr;  // Counts failed accepts, if given.
  // Told about each connection refused for want of descriptors (an fd it
  // must close); counted in `refused` if given.
  std::function<void(int fd)> refuse;
  uint64_t* refused = nullptr;
};

// Connections a loop accepts in one turn beyond the one it awaited: that many
// can be open before the first of them is served.
inline constexpr int kAcceptBurst = 64;

namespace accept_detail {
inline bool OutOfDescriptors(const boost::system::error_code& ec) {
  return ec == boost::system::errc::too_many_files_open ||
         ec == boost::system::errc::too_many_files_open_in_system;
}
}  // namespace accept_detail

// Accepts until the acceptor is closed; `serve(socket)` returns the awaitable
// that serves one connection, spawned on its own.
template <class Acceptor, class Serve>
boost::asio::awaitable<void> AcceptLoop(Acceptor& acceptor, Serve serve, AcceptLoopOptions options) {
  namespace asio = boost::asio;
  auto executor = co_await asio::this_coro::executor;
  // Made before anything can fail: under EMFILE nothing new is created.
  asio::steady_timer pause(executor);
  {
    boost::system::error_code ignored;
    acceptor.non_blocking(true, ignored);  // The burst below must not block.
  }
  auto last_log = std::chrono::steady_clock::time_point{};
  uint64_t unlogged = 0;
  int reserve = options.refuse ? ::open("/dev/null", O_RDONLY | O_CLOEXEC) : -1;
  struct CloseReserve {
    int& fd;
    ~CloseReserve() {
      if (fd >= 0) ::close(fd);
    }
  } close_reserve{reserve};
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(base::kUse);
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec && accept_detail::OutOfDescriptors(ec) && options.refuse && reserve < 0) {
      reserve = ::open("/dev/null", O_RDONLY | O_CLOEXEC);  // Lost earlier: try again.
    }
    // Linux takes the descriptor before it looks at the queue: at the limit
    // accept fails even with nobody waiting. Once the queue is empty, wait
    // until someone arrives (to be accepted or refused), not a fixed pause.
    bool drained = false;
    if (ec && accept_detail::OutOfDescriptors(ec) && reserve >= 0) {
      // Answer who waits with the descriptor kept for this, one at a time.
      ::close(reserve);
      for (int i = 0; i < 256; ++i) {
        const int fd = ::accept4(acceptor.native_handle(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
          drained = errno == EAGAIN || errno == EWOULDBLOCK;
          break;
        }
        if (options.refused) ++*options.refused;
        options.refuse(fd);  // Closes it, so the next accept has a descriptor.
      }
      reserve = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    if (ec) {
      if (options.errors) ++*options.errors;
      const auto now = std::chrono::steady_clock::now();
      if (now - last_log >= std::chrono::seconds(1)) {
        LOG(WARNING) << options.what << ": accept failed: " << ec.message()
                     << (unlogged ? " (and " + std::to_string(unlogged) + " more since the last line)"
                                  : std::string())
                     << "; pausing";
        last_log = now;
        unlogged = 0;
      } else {
        ++unlogged;
      }
      if (drained && reserve >= 0) {
        auto [wait_error] = co_await acceptor.async_wait(Acceptor::wait_read, base::kUse);
        if (wait_error == asio::error::operation_aborted || !acceptor.is_open()) co_return;
        if (!wait_error) continue;
      }
      pause.expires_after(options.pause_after_error);
      co_await pause.async_wait(base::kUse);
      continue;
    }
    asio::co_spawn(executor, serve(std::move(socket)), asio::detached);
    // A storm of connects: take what else waits now, in this turn, instead of
    // one per turn of a loop that also runs every member's writer (the
    // kernel's queue overflows, and resets devices, when accepting lags).
    for (int i = 0; i < kAcceptBurst; ++i) {
      boost::system::error_code more_error;
      auto more = acceptor.accept(more_error);
      if (more_error) break;  // Nobody else waits (or an error the next accept reports).
      asio::co_spawn(executor, serve(std::move(more)), asio::detached);
    }
  }
}

}  // namespace mnedc::transport
