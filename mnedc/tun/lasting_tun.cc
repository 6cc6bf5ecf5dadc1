#include "mnedc/tun/lasting_tun.h"

#include <glog/logging.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <optional>

#include "mnedc/base/coro.h"
#include "mnedc/tun/tun_device.h"

namespace mnedc::tun {
namespace {
namespace asio = boost::asio;
using boost::system::error_code;

void Add(PortCounters& sum, const PortCounters& more) {
  sum.packets_read += more.packets_read;
  sum.packets_written += more.packets_written;
  sum.write_drops += more.write_drops;
  sum.read_errors += more.read_errors;
  sum.write_errors += more.write_errors;
  sum.recreations += more.recreations;
  sum.super_packets_read += more.super_packets_read;
  sum.super_packets_written += more.super_packets_written;
  sum.segments_joined += more.segments_joined;
  sum.super_packets_split += more.super_packets_split;
  sum.acks_superseded += more.acks_superseded;
}

class LastingPort final : public PacketPort {
 public:
  LastingPort(asio::any_io_executor executor, PortOpener open, std::unique_ptr<PacketPort> first,
              LastingOptions options)
      : open_(std::move(open)),
        port_(std::move(first)),
        name_(port_->name()),
        options_(options),
        retry_timer_(executor) {}

  bool Configure(uint32_t address, uint32_t prefix_length, uint32_t mtu,
                 std::string* error) override {
    lease_ = Lease{address, prefix_length, mtu};
    if (!port_) {
      if (error) *error = "TUN " + name_ + " is being created again";
      return false;
    }
    return port_->Configure(address, prefix_length, mtu, error);
  }

  bool ConfigureIpv6(const base::Ipv6Address& address, uint32_t prefix_length, std::string* error) override {
    lease6_ = Lease6{address, prefix_length};
    if (!port_) {
      if (error) *error = "TUN " + name_ + " is being created again";
      return false;
    }
    return port_->ConfigureIpv6(address, prefix_length, error);
  }

  asio::awaitable<error_code> ReadLoop(PacketHandler handler, FlowControl flow) override {
    for (;;) {
      const error_code failure = co_await port_->ReadLoop(handler, flow);
      if (!failure || closed_) co_return error_code{};
      LOG(WARNING) << "TUN " << name_ << " failed (" << failure.message()
                   << "; was the interface deleted?): creating it again";
      Retire();
      if (!co_await Recreate()) co_return closed_ ? error_code{} : failure;
    }
  }

  bool Write(std::span<const uint8_t> packet, packet::Gso gso) override {
    if (!port_) {
      ++retired_.write_drops;
      return false;
    }
    return port_->Write(packet, gso);
  }

  void Flush() override {
    if (port_) port_->Flush();
  }

  Offloads offloads() const override { return port_ ? port_->offloads() : Offloads{}; }

  void SetSuperPacketReads(bool on) override {
    super_packet_reads_ = on;
    if (port_) port_->SetSuperPacketReads(on);
  }

  void Close() override {
    closed_ = true;
    retry_timer_.cancel();
    if (port_) port_->Close();
  }

  const std::string& name() const override { return name_; }

  const PortCounters& counters() const override {
    total_ = retired_;
    if (port_) Add(total_, port_->counters());
    return total_;
  }

 private:
  struct Lease {
    uint32_t address, prefix_length, mtu;
  };
  struct Lease6 {
    base::Ipv6Address address;
    uint32_t prefix_length;
  };

  // The failed port's counts stay in the totals.
  void Retire() {
    Add(retired_, port_->counters());
    port_->Close();
    port_.reset();
  }

  // Opens and configures a new port, a few spaced attempts; false if none took.
  asio::awaitable<bool> Recreate() {
    std::string error;
    for (int attempt = 1; attempt <= options_.max_attempts && !closed_; ++attempt) {
      std::unique_ptr<PacketPort> port = open_(&error);
      if (port && (!lease_ || port->Configure(lease_->address, lease_->prefix_length,
                                              lease_->mtu, &error))) {
        port_ = std::move(port);
        port_->SetSuperPacketReads(super_packet_reads_);
        // IPv6 is the lease's lesser half: the port serves IPv4 without it, as at the join.
        std::string error6;
        if (lease6_ && !port_->ConfigureIpv6(lease6_->address, lease6_->prefix_length, &error6)) {
          LOG(WARNING) << "TUN " << name_ << " created again without its IPv6 address: " << error6;
        }
        ++retired_.recreations;
        LOG(WARNING) << "TUN " << name_ << " created again"
                     << (lease_ ? " with its address" : "");
        co_return true;
      }
      if (port) port->Close();
      LOG(WARNING) << "cannot create TUN " << name_ << " again (attempt " << attempt << " of "
                   << options_.max_attempts << "): " << error;
      if (attempt == options_.max_attempts) break;
      retry_timer_.expires_after(options_.retry_interval);
      co_await retry_timer_.async_wait(base::kUse);
    }
    if (!closed_) {
      LOG(ERROR) << "TUN " << name_ << " is gone and could not be created again: " << error;
    }
    co_return false;
  }

  PortOpener open_;
  std::unique_ptr<PacketPort> port_;  // Null only while being created again.
  std::string name_;
  LastingOptions options_;
  asio::steady_timer retry_timer_;
  std::optional<Lease> lease_;
  std::optional<Lease6> lease6_;
  PortCounters retired_;
  mutable PortCounters total_;
  bool closed_ = false;
  bool super_packet_reads_ = true;
};

}  // namespace

std::unique_ptr<PacketPort> OpenLastingPort(asio::any_io_executor executor, PortOpener open,
                                            std::string* error, LastingOptions options) {
  std::unique_ptr<PacketPort> first = open(error);
  if (!first) return nullptr;
  return std::make_unique<LastingPort>(executor, std::move(open), std::move(first), options);
}

std::unique_ptr<PacketPort> OpenLastingTun(asio::any_io_executor executor, const std::string& name,
                                           std::string* error, TunOptions options) {
  return OpenLastingPort(
      executor,
      [executor, name, options](std::string* why) { return OpenTun(executor, name, why, options); },
      error);
}

}  // namespace mnedc::tun
