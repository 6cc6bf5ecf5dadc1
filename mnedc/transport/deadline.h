#pragma once
// Bounds a multi-step handshake (TCP connect, proxy, TLS, WebSocket) by one
// deadline, inside the caller's coroutine tree: the handshake and a timer run
// as the two halves of one `||`. When the deadline passes first, the socket
// is shut down, so whatever layer's operation is pending fails at once
// (whether or not it supports cancellation), and the handshake's own result
// (an error, worded with `expired` set) is returned. When the handshake
// finishes first, the timer is cancelled and waited for: nothing outlives
// the call, so no expiry can touch a socket that finished its handshake.
#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <optional>

#include "mnedc/base/coro.h"

namespace mnedc::transport {
namespace deadline_detail {

template <typename T>
boost::asio::awaitable<void> Finish(boost::asio::awaitable<T> operation, std::optional<T>& result) {
  // Cancellation (the caller stopping) arrives as error codes, not exceptions.
  co_await boost::asio::this_coro::throw_if_cancelled(false);
  result.emplace(co_await std::move(operation));
}

inline boost::asio::awaitable<void> ShutDownAt(std::chrono::steady_clock::time_point deadline,
                                               int fd, const bool& finished, bool& expired) {
  co_await boost::asio::this_coro::throw_if_cancelled(false);
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, deadline);
  auto [ec] = co_await timer.async_wait(base::kUse);
  if (ec || finished) co_return;
  expired = true;
  ::shutdown(fd, SHUT_RDWR);
  // Wait for the failing handshake to end the `||` (which cancels this wait).
  timer.expires_at(std::chrono::steady_clock::time_point::max());
  co_await timer.async_wait(base::kUse);
}

}  // namespace deadline_detail

// Runs `operation` (which works on socket `fd`) until `deadline`. `expired`
// is set before the shutdown, so the operation can say "timed out".
template <typename T>
boost::asio::awaitable<T> WithDeadline(boost::asio::awaitable<T> operation,
                                       std::chrono::steady_clock::time_point deadline, int fd,
                                       bool& expired) {
  using namespace boost::asio::experimental::awaitable_operators;
  std::optional<T> result;
  bool finished = false;
  auto finish = [](boost::asio::awaitable<T> operation, std::optional<T>& result,
                   bool& finished) -> boost::asio::awaitable<void> {
    co_await deadline_detail::Finish(std::move(operation), result);
    finished = true;
  };
  // A `||` waits for both halves: when it returns, `result` is set.
  co_await (finish(std::move(operation), result, finished) ||
            deadline_detail::ShutDownAt(deadline, fd, finished, expired));
  co_return std::move(*result);
}

}  // namespace mnedc::transport
