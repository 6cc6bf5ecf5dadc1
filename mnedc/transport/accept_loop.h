#pragma once
// The one accept loop of every listening socket (the relay's ports, the
// operations endpoint, the client's status socket). A failed accept (EMFILE
// when the process is out of file descriptors, ENFILE, ENOBUFS, ...) is
// counted, logged at most once a second, and followed by a pause: retrying at
// once would spin a core and flood the log while nothing can be accepted.
// Connections that wait meanwhile are accepted once descriptors free up.
#include <glog/logging.h>

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
};

// Accepts until the acceptor is closed; `serve(socket)` returns the awaitable
// that serves one connection, spawned on its own.
template <class Acceptor, class Serve>
boost::asio::awaitable<void> AcceptLoop(Acceptor& acceptor, Serve serve, AcceptLoopOptions options) {
  namespace asio = boost::asio;
  auto executor = co_await asio::this_coro::executor;
  // Made before anything can fail: under EMFILE nothing new is created.
  asio::steady_timer pause(executor);
  auto last_log = std::chrono::steady_clock::time_point{};
  uint64_t unlogged = 0;
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(base::kUse);
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
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
      pause.expires_after(options.pause_after_error);
      co_await pause.async_wait(base::kUse);
      continue;
    }
    asio::co_spawn(executor, serve(std::move(socket)), asio::detached);
  }
}

}  // namespace mnedc::transport
