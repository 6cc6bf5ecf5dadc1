#include "testing/fake_packet_port.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace mnedc::testing {
namespace asio = boost::asio;
using boost::system::error_code;

FakePacketPort::FakePacketPort(asio::any_io_executor executor, std::string name)
    : wake_(executor), name_(std::move(name)) {}

void FakePacketPort::Inject(std::span<const uint8_t> packet) {
  inbound_.emplace_back(packet.begin(), packet.end());
  wake_.cancel();
}

void FakePacketPort::Fail(error_code error) {
  failure_ = error;
  wake_.cancel();
}

bool FakePacketPort::Configure(uint32_t address, uint32_t prefix_length, uint32_t mtu,
                               std::string* error) {
  if (!accepting_) {
    if (error) *error = "cannot configure " + name_ + ": refused by the test";
    return false;
  }
  config_ = Config{address, prefix_length, mtu};
  return true;
}

asio::awaitable<error_code> FakePacketPort::ReadLoop(
    std::function<void(std::span<const uint8_t>)> handler, tun::FlowControl flow) {
  for (;;) {
    if (closed_) co_return error_code{};
    if (failure_) {
      ++counters_.read_errors;
      co_return failure_;
    }
    if (!inbound_.empty() && flow.has_room && !flow.has_room()) {
      co_await flow.wait_for_room();
      continue;
    }
    if (inbound_.empty()) {
      wake_.expires_at(asio::steady_timer::time_point::max());
      co_await wake_.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    std::vector<uint8_t> packet = std::move(inbound_.front());
    inbound_.pop_front();
    ++counters_.packets_read;
    handler(packet);
  }
}

bool FakePacketPort::Write(std::span<const uint8_t> packet) {
  if (closed_ || !accepting_) {
    ++counters_.write_drops;
    return false;
  }
  written_.emplace_back(packet.begin(), packet.end());
  ++counters_.packets_written;
  return true;
}

void FakePacketPort::Close() {
  closed_ = true;
  wake_.cancel();
}

}  // namespace mnedc::testing
