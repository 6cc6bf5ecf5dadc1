#pragma once
// The relay's operations endpoint, plain HTTP (keep it on loopback or a
// management network):
//   GET /metrics   Prometheus text format: members, joins, leaves, packets and
//                  bytes forwarded, drops by reason, authentication failures,
//                  sessions per transport
//   GET /healthz   "ok"
//   GET /v1/peers  JSON list: device id, addresses, transport, public key,
//                  connected since, bytes each way
//   POST /v1/kick?device=ID[&reason=TEXT]
//                  closes that device's session (it is told why, and logs it)
//   POST /v1/forget-key?device=ID
//                  drops the public key the device is bound to: its next join
//                  binds the key it presents (it has a new one)
//   POST /v1/reload
//                  re-reads the token files; members no longer allowed are
//                  disconnected
// Requests that change state are refused (403) unless they come from a
// loopback address or carry "Authorization: Bearer <admin token>".
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <functional>
#include <string>

#include "mnedc/admin/http_service.h"
#include "mnedc/relay/relay.h"
#include "mnedc/tun/packet_port.h"

namespace mnedc::admin {

struct AdminOptions {
  // Lets requests from other hosts change state; empty: loopback only.
  std::string admin_token;
  // Re-reads the token files and applies them; false with `message` saying
  // why when they could not be read (the old ones stay in force). Null: 501.
  std::function<bool(std::string* message)> reload;
  // The relay's own TUN, whose counters /metrics shows; null without one.
  std::function<const tun::PortCounters*()> tun_counters;
};

// Serves requests on `acceptor` until it is closed.
boost::asio::awaitable<void> ServeAdmin(boost::asio::ip::tcp::acceptor& acceptor,
                                        relay::Relay& relay, AdminOptions options = {});

// One request, as ServeAdmin answers it.
HttpResponse HandleAdminRequest(const HttpRequest& request, relay::Relay& relay,
                                const AdminOptions& options);

// The bodies, exposed for tests.
std::string RenderMetrics(const relay::Relay& relay, const tun::PortCounters* tun = nullptr);
std::string RenderPeersJson(const relay::Relay& relay);

}  // namespace mnedc::admin
