#pragma once
// What every coroutine here uses: the completion token that reports errors as
// values (the data path has no exceptions), and the cancellation checks.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace mnedc::base {

// `auto [ec, n] = co_await socket.async_read_some(buffer, kUse);`
inline constexpr auto kUse = boost::asio::as_tuple(boost::asio::use_awaitable);

// Makes cancellation of the calling coroutine (an `||` that another branch
// won) arrive as operation_aborted error codes instead of exceptions.
inline boost::asio::awaitable<void> NoThrowOnCancel() {
  co_await boost::asio::this_coro::throw_if_cancelled(false);
}

// True once the calling coroutine has been asked to stop.
inline boost::asio::awaitable<bool> Cancelled() {
  co_return (co_await boost::asio::this_coro::cancellation_state).cancelled() !=
      boost::asio::cancellation_type::none;
}

}  // namespace mnedc::base
