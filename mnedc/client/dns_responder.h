#pragma once
// Names on the device itself: DNS queries the device's applications send to
// the relay's overlay address (10.0.0.1:53, [PREFIX::1]:53) never leave the
// device: the client answers them from its own peer table as they come out
// of its TUN, and writes the answer back into the TUN as if the relay had
// sent it. No round trip, and nothing to run or configure on the relay.
#include <boost/asio/ip/udp.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "mnedc/client/client.h"
#include "mnedc/client/dns_forwarder.h"
#include "mnedc/dns/name_service.h"
#include "mnedc/dns/names.h"
#include "mnedc/tun/packet_port.h"

namespace mnedc::client {

class DnsResponder {
 public:
  // Follows `client`'s lease and peer table (it subscribes to the table),
  // and answers into `port`. With `forward`, queries for names outside the
  // overlay go there (DnsForwarder) instead of being refused.
  DnsResponder(Client& client, std::string domain, tun::PacketPort& port,
               std::optional<boost::asio::ip::udp::endpoint> forward = std::nullopt);
  DnsResponder(const DnsResponder&) = delete;
  DnsResponder& operator=(const DnsResponder&) = delete;

  // If `packet` (read from the TUN) is a DNS query to the relay's overlay
  // address, answers it into `port` (or drops it, counted) and returns true;
  // false for every other packet, which goes on to the relay.
  bool Intercept(std::span<const uint8_t> packet);
  // Takes the forwarder's answers until Stop() (returns at once without one).
  boost::asio::awaitable<void> Run();
  void Stop();

  const std::string& domain() const { return domain_; }
  // All zero before the first lease.
  dns::DnsCounters counters() const;
  // All zero without --dns_forward.
  ForwarderCounters forwarder_counters() const {
    return forwarder_ ? forwarder_->counters() : ForwarderCounters{};
  }

 private:
  // Takes a new lease's addresses (the zone's prefixes and this device's name).
  void Follow(const LeaseInfo& lease);

  Client& client_;
  std::string domain_;
  tun::PacketPort& port_;
  std::unique_ptr<DnsForwarder> forwarder_;
  dns::NameTable names_;
  std::optional<LeaseInfo> lease_;  // As last followed.
  std::optional<dns::NameService> service_;
  dns::DnsCounters earlier_;  // Of services replaced by a new lease.
  std::vector<uint8_t> answer_;  // Reused.
};

}  // namespace mnedc::client
