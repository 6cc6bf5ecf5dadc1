#pragma once
// The relay's operations endpoint, plain HTTP (keep it on loopback or a
// management network):
//   GET /metrics   Prometheus text format: members, joins, leaves, packets and
//                  bytes forwarded, drops by reason, authentication failures,
//                  sessions per transport
//   GET /healthz   "ok"
//   GET /v1/peers  JSON list: device id, address, transport, connected since,
//                  bytes each way
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <string>

#include "mnedc/relay/relay.h"

namespace mnedc::admin {

// Serves requests on `acceptor` until it is closed.
boost::asio::awaitable<void> ServeAdmin(boost::asio::ip::tcp::acceptor& acceptor,
                                        const relay::Relay& relay);

// The bodies, exposed for tests.
std::string RenderMetrics(const relay::Relay& relay);
std::string RenderPeersJson(const relay::Relay& relay);

}  // namespace mnedc::admin
