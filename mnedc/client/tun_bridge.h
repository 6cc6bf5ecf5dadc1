#pragma once
// Joins a Client to the device's packet port (its TUN): every lease is
// applied to the port, what the relay delivers is written into it, and what
// applications send through it goes to the relay, read only while the
// connection's queue has room so that local TCP slows down instead of losing
// packets. The client binary is this plus flags; tests plug in a fake port.
#include <boost/asio/awaitable.hpp>
#include <functional>
#include <span>
#include <string>

#include "mnedc/client/client.h"
#include "mnedc/tun/packet_port.h"

namespace mnedc::client {

class TunBridge {
 public:
  // Takes the client's OnLease and OnPacket handlers.
  TunBridge(Client& client, tun::PacketPort& port);
  TunBridge(const TunBridge&) = delete;
  TunBridge& operator=(const TunBridge&) = delete;

  // Moves packets from the port to the client until the port is closed
  // (returns true), or until the port fails for good or a lease cannot be
  // applied: then the client is stopped and it returns false, with failure().
  boost::asio::awaitable<bool> Run();

  const std::string& failure() const { return failure_; }

  // Offers every packet read from the port to `intercept` first: one it
  // returns true for (it answered it, as DnsResponder does) does not go to
  // the relay. Call before Run().
  // Called after each lease has been applied to the port.
  void AfterLease(std::function<void(const LeaseInfo&)> after) { after_lease_ = std::move(after); }

  void InterceptReads(std::function<bool(std::span<const uint8_t>)> intercept) { intercept_ = std::move(intercept); }

 private:
  void Fail(std::string why);
  void ConfigureIpv6(const LeaseInfo& lease);

  Client& client_;
  tun::PacketPort& port_;
  std::string failure_;
  std::function<bool(std::span<const uint8_t>)> intercept_;
  std::function<void(const LeaseInfo&)> after_lease_;
};

}  // namespace mnedc::client
