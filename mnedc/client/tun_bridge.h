#pragma once
// Joins a Client to the device's packet port (its TUN): every lease is
// applied to the port, what the relay delivers is written into it, and what
// applications send through it goes to the relay, read only while the
// connection's queue has room so that local TCP slows down instead of losing
// packets. The client binary is this plus flags; tests plug in a fake port.
#include <boost/asio/awaitable.hpp>
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

 private:
  void Fail(std::string why);

  Client& client_;
  tun::PacketPort& port_;
  std::string failure_;
};

}  // namespace mnedc::client
