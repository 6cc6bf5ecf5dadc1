#include "mnedc/client/dns_forwarder.h"

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "mnedc/base/coro.h"

namespace mnedc::client {
namespace asio = boost::asio;

DnsForwarder::DnsForwarder(asio::any_io_executor executor, asio::ip::udp::endpoint upstream, AnswerHandler answer)
    : upstream_(upstream),
      socket_(executor),
      expire_timer_(executor),
      answer_(std::move(answer)),
      random_(std::random_device{}()),
      buffer_(65536) {
  boost::system::error_code ignored;
  socket_.open(upstream.protocol(), ignored);  // Bound to a random port by the first send.
}

bool DnsForwarder::Forward(std::span<const uint8_t> query, const dns::UdpFlow& flow) {
  if (stopped_ || query.size() < 12 || !socket_.is_open()) return false;
  if (pending_.size() >= kMaxPending) {
    ++counters_.overflow;
    return false;
  }
  uint16_t id;
  do {
    id = static_cast<uint16_t>(random_());
  } while (pending_.count(id));
  std::vector<uint8_t>& out = buffer_;
  out.assign(query.begin(), query.end());
  const uint16_t asker_id = static_cast<uint16_t>((out[0] << 8) | out[1]);
  out[0] = static_cast<uint8_t>(id >> 8);
  out[1] = static_cast<uint8_t>(id);
  boost::system::error_code error;
  socket_.send_to(asio::buffer(out), upstream_, 0, error);
  if (error) {
    ++counters_.rejected;
    return false;
  }
  pending_[id] = Pending{asker_id, flow, std::chrono::steady_clock::now()};
  ++counters_.forwarded;
  return true;
}

asio::awaitable<void> DnsForwarder::Run() {
  using namespace asio::experimental::awaitable_operators;
  co_await (ReceiveLoop() || ExpireLoop());
}

asio::awaitable<void> DnsForwarder::ReceiveLoop() {
  co_await base::NoThrowOnCancel();
  std::vector<uint8_t> answer(65536);
  while (!stopped_ && socket_.is_open()) {
    asio::ip::udp::endpoint from;
    auto [error, size] = co_await socket_.async_receive_from(asio::buffer(answer), from, base::kUse);
    if (error == asio::error::operation_aborted || stopped_) co_return;
    if (error) continue;  // ICMP unreachable and the like: the query times out.
    // From the upstream, an answer (QR), to a query that waits.
    if (from != upstream_ || size < 12 || (answer[2] & 0x80) == 0) {
      ++counters_.rejected;
      continue;
    }
    const uint16_t id = static_cast<uint16_t>((answer[0] << 8) | answer[1]);
    const auto found = pending_.find(id);
    if (found == pending_.end()) {
      ++counters_.rejected;
      continue;
    }
    answer[0] = static_cast<uint8_t>(found->second.asker_id >> 8);
    answer[1] = static_cast<uint8_t>(found->second.asker_id);
    const dns::UdpFlow flow = found->second.flow;
    pending_.erase(found);
    ++counters_.answered;
    answer_(flow, std::span<const uint8_t>(answer.data(), size));
  }
}

asio::awaitable<void> DnsForwarder::ExpireLoop() {
  co_await base::NoThrowOnCancel();
  while (!stopped_) {
    expire_timer_.expires_after(std::chrono::milliseconds(500));
    auto [error] = co_await expire_timer_.async_wait(base::kUse);
    if (error || stopped_) co_return;
    Expire(std::chrono::steady_clock::now());
  }
}

void DnsForwarder::Expire(std::chrono::steady_clock::time_point now) {
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (now - it->second.sent >= kTimeout) {
      ++counters_.timed_out;
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
}

void DnsForwarder::Stop() {
  stopped_ = true;
  boost::system::error_code ignored;
  socket_.close(ignored);
  expire_timer_.cancel();
}

}  // namespace mnedc::client
