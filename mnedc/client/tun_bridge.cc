#include "mnedc/client/tun_bridge.h"

#include <glog/logging.h>

#include "mnedc/base/ipv4.h"
#include "mnedc/base/ipv6.h"

namespace mnedc::client {
using base::Ipv4ToString;

TunBridge::TunBridge(Client& client, tun::PacketPort& port) : client_(client), port_(port) {
  client_.OnLease([this](const LeaseInfo& lease) {
    std::string error;
    if (!port_.Configure(lease.address, lease.prefix_length, lease.mtu, &error)) {
      Fail(error);
      return;
    }
    // A relay that does not take super-packets would only get them cut up
    // here: let the kernel segment instead.
    port_.SetSuperPacketReads(lease.super_packets);
    LOG(INFO) << port_.name() << " is " << Ipv4ToString(lease.address) << "/" << lease.prefix_length
              << " mtu " << lease.mtu << "; relay is " << Ipv4ToString(lease.relay_address);
    if (lease.address6) ConfigureIpv6(lease);
    if (after_lease_) after_lease_(lease);
  });
  // A packet the kernel will not take is counted by the port.
  client_.OnSuperPacket([this](std::span<const uint8_t> packet, packet::Gso gso) { port_.Write(packet, gso); });
  client_.OnReadBatchEnd([this] { port_.Flush(); });
}

void TunBridge::ConfigureIpv6(const LeaseInfo& lease) {
  std::string error;
  // Without IPv6 on this host the device still has its IPv4 address: a
  // warning, not a failure.
  if (!port_.ConfigureIpv6(*lease.address6, lease.prefix_length6, &error)) {
    LOG_EVERY_N(WARNING, 100) << error << "; this device uses IPv4 only";
    return;
  }
  LOG(INFO) << port_.name() << " is also " << base::Ipv6ToString(*lease.address6) << "/" << lease.prefix_length6
            << "; relay is " << base::Ipv6ToString(lease.relay_address6);
}

void TunBridge::Fail(std::string why) {
  if (!failure_.empty()) return;
  failure_ = std::move(why);
  LOG(ERROR) << failure_ << "; stopping";
  client_.Stop();
  port_.Close();
}

boost::asio::awaitable<bool> TunBridge::Run() {
  const boost::system::error_code error = co_await port_.ReadLoop(
      [this](std::span<uint8_t> packet, packet::Gso gso) {
        // Super-packets are TCP or UDP bulk, never a query.
        if (intercept_ && !gso.super() && intercept_(packet)) return;
        client_.SendOwnedPacket(packet, gso);  // The TUN's buffer: the client may seal it in place.
      },
      {[this] { return client_.HasRoom(); }, [this] { return client_.WaitForRoom(); }});
  if (error) Fail("TUN " + port_.name() + " failed and could not be created again: " + error.message());
  co_return failure_.empty();
}

}  // namespace mnedc::client
