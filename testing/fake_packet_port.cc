#include "testing/fake_packet_port.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace mnedc::testing {
namespace asio = boost::asio;
using boost::system::error_code;

FakePacketPort::FakePacketPort(asio::any_io_executor executor, std::string name)
    : wake_(executor), name_(std::move(name)) {}

void FakePacketPort::Inject(std::span<const uint8_t> packet, packet::Gso gso) {
  inbound_.emplace_back(std::vector<uint8_t>(packet.begin(), packet.end()), gso);
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

bool FakePacketPort::ConfigureIpv6(const base::Ipv6Address& address, uint32_t prefix_length, std::string* error) {
  if (!accepting_) {
    if (error) *error = "cannot configure IPv6 on " + name_ + ": refused by the test";
    return false;
  }
  config6_.emplace(address, prefix_length);
  return true;
}

asio::awaitable<error_code> FakePacketPort::ReadLoop(tun::PacketHandler handler, tun::FlowControl flow) {
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
    auto [packet, gso] = std::move(inbound_.front());
    inbound_.pop_front();
    ++counters_.packets_read;
    handler(packet, gso);
  }
}

bool FakePacketPort::Write(std::span<const uint8_t> packet, packet::Gso gso) {
  if (closed_ || !accepting_) {
    ++counters_.write_drops;
    return false;
  }
  if (!gso.super() || takes_super_packets_) {
    written_.emplace_back(packet.begin(), packet.end());
    written_offloads_.push_back(gso);
    ++counters_.packets_written;
    return true;
  }
  // As a TUN without offloads: cut into its segments.
  std::vector<uint8_t> scratch(65536);
  const bool parsed = packet::ForEachSegment(packet, gso, scratch, [&](std::span<const uint8_t> segment) {
    written_.emplace_back(segment.begin(), segment.end());
    written_offloads_.push_back({});
    ++counters_.packets_written;
  });
  if (!parsed) {
    ++counters_.write_drops;
    return false;
  }
  ++counters_.super_packets_split;
  return true;
}

void FakePacketPort::Close() {
  closed_ = true;
  wake_.cancel();
}

}  // namespace mnedc::testing
