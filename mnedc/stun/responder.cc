#include "mnedc/stun/responder.h"

#include <glog/logging.h>

#include <array>
#include <chrono>

#include "mnedc/base/coro.h"
#include "mnedc/stun/message.h"

namespace mnedc::stun {
namespace asio = boost::asio;
static_assert(kMaxResponseSize == 44);

Responder::Responder(asio::ip::udp::socket& socket, ResponderOptions options)
    : socket_(socket), options_(options) {}

bool Responder::Allow(const asio::ip::address& source, uint64_t now_seconds) {
  if (now_seconds != window_) {
    window_ = now_seconds;
    answered_in_window_.clear();
  }
  auto found = answered_in_window_.find(source);
  if (found == answered_in_window_.end()) {
    if (answered_in_window_.size() >= options_.max_sources) return false;
    found = answered_in_window_.emplace(source, 0).first;
  }
  if (found->second >= options_.per_source_per_second) return false;
  ++found->second;
  return true;
}

std::size_t Responder::Handle(std::span<const uint8_t> datagram, const asio::ip::udp::endpoint& from,
                              uint64_t now_seconds, std::span<uint8_t, 44> answer) {
  BindingRequest request;
  switch (ParseBindingRequest(datagram, &request)) {
    case RequestVerdict::kBinding:
      break;
    case RequestVerdict::kNotStun:
      ++counters_.not_stun;
      return 0;
    case RequestVerdict::kMalformed:
      ++counters_.malformed;
      return 0;
    case RequestVerdict::kNotBindingRequest:
    case RequestVerdict::kUnknownRequired:
      ++counters_.unsupported;
      return 0;
  }
  if (from.port() == 0 || !Allow(from.address(), now_seconds)) {
    ++counters_.rate_limited;
    return 0;
  }
  return WriteBindingResponse(request, from, answer);
}

asio::awaitable<void> Responder::Run() {
  co_await base::NoThrowOnCancel();
  // A STUN request is small; anything larger than this is not one (and is
  // cut short here, then found not to parse).
  std::array<uint8_t, 576> datagram;
  std::array<uint8_t, kMaxResponseSize> answer;
  asio::ip::udp::endpoint from;
  for (;;) {
    auto [error, size] = co_await socket_.async_receive_from(asio::buffer(datagram), from, base::kUse);
    if (error == asio::error::operation_aborted || error == asio::error::bad_descriptor) co_return;
    if (error) {
      // ICMP errors from earlier answers surface here (connection refused):
      // nothing to do about them.
      continue;
    }
    const uint64_t now = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now().time_since_epoch())
            .count());
    const std::size_t answer_size = Handle(std::span(datagram.data(), size), from, now, answer);
    if (answer_size == 0) continue;
    boost::system::error_code send_error;
    socket_.send_to(asio::buffer(answer.data(), answer_size), from, 0, send_error);
    if (send_error) {
      ++counters_.send_errors;
    } else {
      ++counters_.answered;
    }
  }
}

}  // namespace mnedc::stun
