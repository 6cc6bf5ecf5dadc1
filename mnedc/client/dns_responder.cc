#include "mnedc/client/dns_responder.h"

#include <algorithm>

#include "mnedc/dns/udp_exchange.h"

namespace mnedc::client {
namespace {
void Add(dns::DnsCounters& to, const dns::DnsCounters& from) {
  to.queries += from.queries;
  to.answered += from.answered;
  to.nxdomain += from.nxdomain;
  to.refused += from.refused;
  to.formerr += from.formerr;
  to.notimp += from.notimp;
  to.dropped += from.dropped;
}
}  // namespace

DnsResponder::DnsResponder(Client& client, std::string domain, tun::PacketPort& port,
                           std::optional<boost::asio::ip::udp::endpoint> forward)
    : client_(client), domain_(std::move(domain)), port_(port) {
  if (forward) {
    forwarder_ = std::make_unique<DnsForwarder>(client.executor(), *forward,
                                                [this](const dns::UdpFlow& flow, std::span<const uint8_t> answer) {
                                                  dns::BuildUdpAnswer(flow, answer, &answer_);
                                                  port_.Write(answer_);
                                                  port_.Flush();
                                                });
  }
  client_.peers().Subscribe([this](discovery::PeerEvent event, const discovery::Peer& peer) {
    if (event == discovery::PeerEvent::kUp) {
      names_.Put({peer.device_id, peer.address, peer.address6});
    } else {
      names_.Remove(peer.device_id);
    }
  });
}

void DnsResponder::Follow(const LeaseInfo& lease) {
  if (service_) Add(earlier_, service_->counters());
  dns::ZoneOptions options;
  options.domain = domain_;
  options.prefix = {lease.address & base::PrefixMask(lease.prefix_length), lease.prefix_length};
  if (lease.address6 && lease.prefix_length6 == 64) {
    options.prefix6.emplace();
    std::copy_n(lease.address6->begin(), 8, options.prefix6->network.begin());
  }
  service_.emplace(std::move(options));
  names_.Put({client_.options().device_id, lease.address, lease.address6});
  lease_ = lease;
}

bool DnsResponder::Intercept(std::span<const uint8_t> packet) {
  const std::optional<LeaseInfo>& lease = client_.lease();
  if (!lease) return false;
  dns::UdpFlow flow;
  const auto query = dns::DnsQueryIn(
      packet, lease->relay_address,
      lease->address6 ? std::optional<base::Ipv6Address>(lease->relay_address6) : std::nullopt, &flow);
  if (!query) return false;
  if (lease_ != lease) Follow(*lease);
  bool outside = false;
  const auto answer = service_->Answer(*query, names_, &outside);
  // Not the overlay's name: upstream, if there is one that takes it.
  if (outside && forwarder_ && forwarder_->Forward(*query, flow)) return true;
  if (answer) {
    dns::BuildUdpAnswer(flow, *answer, &answer_);
    port_.Write(answer_);
    port_.Flush();
  }
  return true;
}

boost::asio::awaitable<void> DnsResponder::Run() {
  if (forwarder_) co_await forwarder_->Run();
}

void DnsResponder::Stop() {
  if (forwarder_) forwarder_->Stop();
}

dns::DnsCounters DnsResponder::counters() const {
  dns::DnsCounters total = earlier_;
  if (service_) Add(total, service_->counters());
  return total;
}

}  // namespace mnedc::client
