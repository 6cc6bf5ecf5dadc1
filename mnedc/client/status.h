#pragma once
// What a client says about itself on its local status endpoint (a Unix socket,
// owner-only): this device's address and relay, the session, the last error,
// the peers, and counters in Prometheus format. `ctl status` reads it.
//   GET /v1/status  JSON (below)
//   GET /v1/peers   the peers alone (as in /v1/status), with the path to each
//   GET /metrics    Prometheus text format
//   GET /healthz    "ok" while joined, 503 otherwise
#include <string>

#include "mnedc/admin/http_service.h"
#include "mnedc/client/client.h"
#include "mnedc/client/dns_responder.h"
#include "mnedc/tun/packet_port.h"

namespace mnedc::client {

struct StatusSources {
  const Client* client = nullptr;
  const tun::PacketPort* tun = nullptr;  // May be null (no TUN, as in tests).
  const DnsResponder* dns = nullptr;     // Null with --dns=false.
};

// {"device_id", "state" (joined|connecting|stopped), "address", "prefix_length",
//  "mtu", "interface", "relay" (as configured), "relay_endpoint" (ip:port),
//  "transport", "joined_since", "last_error", "counters": {...},
//  "direct": {"port", "outside", "candidates"} or null,
//  "peers": [{"device_id", "address", "address6", "seen_from", "public_key", "sealed",
//             "path" (direct|relay), "path_since", "direct_endpoint", "rtt_ms", "since"}]}
std::string RenderStatusJson(const StatusSources& sources);
std::string RenderClientMetrics(const StatusSources& sources);

admin::HttpResponse HandleStatusRequest(const admin::HttpRequest& request,
                                        const StatusSources& sources);

}  // namespace mnedc::client
