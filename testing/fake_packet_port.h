#pragma once
// An in-memory PacketPort for tests: what a test injects comes out of
// ReadLoop as if an application had sent it through the TUN, what is written
// is kept, and Fail() ends ReadLoop as a deleted interface does.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <optional>
#include <vector>

#include "mnedc/tun/packet_port.h"

namespace mnedc::testing {

class FakePacketPort final : public tun::PacketPort {
 public:
  struct Config {
    uint32_t address, prefix_length, mtu;
    bool operator==(const Config&) const = default;
  };

  FakePacketPort(boost::asio::any_io_executor executor, std::string name = "fake0");

  // Queues a packet (or a super-packet) for ReadLoop's handler.
  void Inject(std::span<const uint8_t> packet, packet::Gso gso = {});
  // Makes ReadLoop return `error`; the port then reads nothing more.
  void Fail(boost::system::error_code error);

  const std::vector<std::vector<uint8_t>>& written() const { return written_; }
  // The Gso of each written packet (none for ordinary ones and segments).
  const std::vector<packet::Gso>& written_offloads() const { return written_offloads_; }
  int flushes() const { return flushes_; }
  // While false (the default), a super-packet written is kept as its
  // segments, as a TUN without offloads would take it.
  void set_takes_super_packets(bool takes) { takes_super_packets_ = takes; }
  const std::optional<Config>& config() const { return config_; }
  bool closed() const { return closed_; }
  // While false, Write() drops (as a full kernel queue would) and Configure fails.
  void set_accepting(bool accepting) { accepting_ = accepting; }

  bool Configure(uint32_t address, uint32_t prefix_length, uint32_t mtu,
                 std::string* error) override;
  // Kept as config6(); fails like Configure while not accepting.
  bool ConfigureIpv6(const base::Ipv6Address& address, uint32_t prefix_length, std::string* error) override;
  const std::optional<std::pair<base::Ipv6Address, uint32_t>>& config6() const { return config6_; }
  boost::asio::awaitable<boost::system::error_code> ReadLoop(tun::PacketHandler handler,
                                                             tun::FlowControl flow) override;
  bool Write(std::span<const uint8_t> packet, packet::Gso gso) override;
  void Flush() override { ++flushes_; }
  void Close() override;
  const std::string& name() const override { return name_; }
  const tun::PortCounters& counters() const override { return counters_; }

 private:
  boost::asio::steady_timer wake_;
  std::string name_;
  std::deque<std::pair<std::vector<uint8_t>, packet::Gso>> inbound_;
  std::vector<std::vector<uint8_t>> written_;
  std::vector<packet::Gso> written_offloads_;
  int flushes_ = 0;
  bool takes_super_packets_ = false;
  std::optional<Config> config_;
  std::optional<std::pair<base::Ipv6Address, uint32_t>> config6_;
  boost::system::error_code failure_;
  tun::PortCounters counters_;
  bool accepting_ = true;
  bool closed_ = false;
};

}  // namespace mnedc::testing
