#include "mnedc/admin/admin_server.h"

#include <glog/logging.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <map>
#include <sstream>

#include "mnedc/base/ipv4.h"
#include "mnedc/base/ipv6.h"
#include "mnedc/link/framed_link.h"
#include "mnedc/relay/join_policy.h"

namespace mnedc::admin {
namespace {
namespace asio = boost::asio;

void Metric(std::ostringstream& out, const char* name, const char* type, const char* help,
            uint64_t value) {
  out << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n"
      << name << " " << value << "\n";
}

bool Authorized(const HttpRequest& request, const AdminOptions& options) {
  if (request.from_local) return true;
  if (options.admin_token.empty()) return false;
  const std::string_view prefix = "Bearer ";
  if (request.authorization.rfind(prefix, 0) != 0) return false;
  const auto want = relay::DigestToken(options.admin_token);
  const auto got = relay::DigestToken(std::string_view(request.authorization).substr(prefix.size()));
  return CRYPTO_memcmp(want.data(), got.data(), want.size()) == 0;
}

HttpResponse Text(unsigned status, std::string body) {
  return HttpResponse{status, "text/plain", std::move(body)};
}
}  // namespace

std::string RenderMetrics(const relay::Relay& relay, const tun::PortCounters* tun) {
  const auto& c = relay.counters();
  std::ostringstream out;
  Metric(out, "mnedc_members", "gauge", "Devices joined now.", relay.member_count());
  Metric(out, "mnedc_connections", "gauge", "Connections open, joined or still handshaking.",
         relay.connection_count());
  Metric(out, "mnedc_mesh_links", "gauge", "Mesh links to other relays of the cluster, up now.",
         relay.mesh_link_count());
  Metric(out, "mnedc_remote_members", "gauge", "Devices other relays of the cluster serve, as they told this one.",
         relay.remote_member_count());
  Metric(out, "mnedc_mesh_auth_failures_total", "counter",
         "Mesh links refused: a wrong cluster secret on either side, or no cluster here.", c.mesh_auth_failures);
  Metric(out, "mnedc_joins_total", "counter", "Successful joins.", c.joins);
  Metric(out, "mnedc_leaves_total", "counter", "Members that left.", c.leaves);
  Metric(out, "mnedc_joins_rejected_total", "counter", "Hellos answered with an Error.",
         c.joins_rejected);
  Metric(out, "mnedc_auth_failures_total", "counter", "Hellos without the right join token.",
         c.auth_failures);
  Metric(out, "mnedc_connections_refused_total", "counter",
         "Connections that failed the transport handshake.", c.connections_refused);
  Metric(out, "mnedc_accept_errors_total", "counter",
         "Failed accepts (EMFILE: out of file descriptors, ...); each is followed by a pause.",
         c.accept_errors);
  Metric(out, "mnedc_superseded_total", "counter", "Sessions replaced by a newer one.",
         c.superseded);
  Metric(out, "mnedc_packets_forwarded_total", "counter", "Packets forwarded.", c.packets_forwarded);
  Metric(out, "mnedc_sealed_routed_total", "counter",
         "Packets sealed end to end between devices, routed on unopened (also in packets_forwarded).",
         c.sealed_routed);
  const auto stun = relay.stun_counters();
  Metric(out, "mnedc_stun_answered_total", "counter",
         "STUN Binding requests answered (devices learning their outside address).", stun.answered);
  out << "# HELP mnedc_stun_ignored_total STUN datagrams not answered, by reason.\n"
      << "# TYPE mnedc_stun_ignored_total counter\n"
      << "mnedc_stun_ignored_total{reason=\"malformed\"} " << stun.malformed << "\n"
      << "mnedc_stun_ignored_total{reason=\"unsupported\"} " << stun.unsupported << "\n"
      << "mnedc_stun_ignored_total{reason=\"not_stun\"} " << stun.not_stun << "\n"
      << "mnedc_stun_ignored_total{reason=\"rate_limited\"} " << stun.rate_limited << "\n"
      << "mnedc_stun_ignored_total{reason=\"send_error\"} " << stun.send_errors << "\n";
  Metric(out, "mnedc_bytes_forwarded_total", "counter", "IP bytes forwarded.", c.bytes_forwarded);
  Metric(out, "mnedc_broadcast_packets_total", "counter", "Broadcast and multicast packets.",
         c.broadcast_packets);
  Metric(out, "mnedc_pushbacks_total", "counter", "Times a sender waited for a full receiver.",
         c.pushbacks);
  Metric(out, "mnedc_revoked_total", "counter",
         "Members disconnected because a reload no longer accepted their token.", c.revoked);
  Metric(out, "mnedc_kicked_total", "counter", "Members disconnected by an operator.", c.kicked);
  Metric(out, "mnedc_stalled_receivers_total", "counter",
         "Times a receiver did not drain in time and was dropped to.", c.stalled_receivers);
  Metric(out, "mnedc_flood_pauses_total", "counter",
         "Times a sender whose packets only went to stalled receivers was not read for a while.",
         c.flood_pauses);
  Metric(out, "mnedc_rate_limited_total", "counter",
         "Times a sender was read more slowly for its --rate_limit.", c.rate_limited);
  out << "# HELP mnedc_drops_total Packets dropped, by reason.\n# TYPE mnedc_drops_total counter\n";
  for (std::size_t i = 0; i < c.drops.size(); ++i) {
    out << "mnedc_drops_total{reason=\"" << relay::DropReasonName(static_cast<relay::DropReason>(i))
        << "\"} " << c.drops[i] << "\n";
  }
  std::map<std::string, uint64_t> per_transport = {{"tcp", 0}, {"tls", 0}, {"ws", 0}, {"wss", 0}};
  for (const auto& member : relay.Members()) ++per_transport[member.transport];
  const link::LinkCounters links = relay.LinkTotals();
  out << "# HELP mnedc_super_packets_total Super-packets (up to 64 KiB of one flow) received from and sent "
         "whole to members.\n# TYPE mnedc_super_packets_total counter\n"
      << "mnedc_super_packets_total{direction=\"in\"} " << links.super_packets_in << "\n"
      << "mnedc_super_packets_total{direction=\"out\"} " << links.super_packets_out << "\n";
  Metric(out, "mnedc_super_packets_split_total", "counter",
         "Super-packets cut into segments for a member that does not take them whole.", links.super_packets_split);
  Metric(out, "mnedc_bad_super_packets_total", "counter",
         "Super-packets received whose header does not fit the packet: dropped.", links.bad_super_packets);
  Metric(out, "mnedc_direct_sends_total", "counter",
         "Super-packets sent straight from the buffer they were read into (no copy into a queue).",
         links.direct_sends);
  Metric(out, "mnedc_spliced_frames_total", "counter",
         "Frames passed from one member's TCP connection to another's by splice, never read into the "
         "relay's memory (--splice).",
         links.spliced_out);
  out << "# HELP mnedc_sessions Joined members by transport.\n# TYPE mnedc_sessions gauge\n";
  for (const auto& [transport, count] : per_transport) {
    out << "mnedc_sessions{transport=\"" << transport << "\"} " << count << "\n";
  }
  if (tun) {
    out << "# HELP mnedc_tun_packets_total Packets through the relay's own TUN, by direction.\n"
           "# TYPE mnedc_tun_packets_total counter\n"
        << "mnedc_tun_packets_total{direction=\"read\"} " << tun->packets_read << "\n"
        << "mnedc_tun_packets_total{direction=\"written\"} " << tun->packets_written << "\n";
    Metric(out, "mnedc_tun_write_drops_total", "counter",
           "Packets the kernel would not take from the relay's TUN.", tun->write_drops);
    Metric(out, "mnedc_tun_read_errors_total", "counter", "Failed reads from the relay's TUN.",
           tun->read_errors);
    Metric(out, "mnedc_tun_write_errors_total", "counter", "Failed writes to the relay's TUN.",
           tun->write_errors);
    Metric(out, "mnedc_tun_recreations_total", "counter",
           "Times the relay's TUN was deleted under it and created again.", tun->recreations);
  }
  return out.str();
}

std::string RenderPeersJson(const relay::Relay& relay) {
  auto members = relay.Members();
  std::sort(members.begin(), members.end(),
            [](const auto& a, const auto& b) { return a.address < b.address; });
  std::ostringstream out;
  out << "[";
  for (std::size_t i = 0; i < members.size(); ++i) {
    const auto& m = members[i];
    out << (i ? ",\n " : "\n ") << "{\"device_id\":" << JsonString(m.device_id)
        << ",\"address\":\"" << base::Ipv4ToString(m.address) << "\",\"address6\":"
        << (relay.Ipv6Of(m.address) ? "\"" + base::Ipv6ToString(*relay.Ipv6Of(m.address)) + "\"" : std::string("null"))
        << ",\"transport\":\""
        << m.transport << "\",\"seen_from\":" << JsonString(m.seen_from)
        << ",\"public_key\":" << (m.public_key.empty() ? std::string("null") : JsonString(m.public_key))
        << ",\"connected_since\":\"" << Rfc3339(m.connected_since)
        << "\",\"bytes_from_device\":" << m.link.bytes_in
        << ",\"bytes_to_device\":" << m.link.bytes_out << "}";
  }
  out << (members.empty() ? "]\n" : "\n]\n");
  return out.str();
}

HttpResponse HandleAdminRequest(const HttpRequest& request, relay::Relay& relay,
                                const AdminOptions& options) {
  const std::string& path = request.path;
  if (path == "/v1/kick" || path == "/v1/reload" || path == "/v1/forget-key") {
    if (request.method != "POST") return Text(405, "use POST for " + path + "\n");
    if (!Authorized(request, options)) {
      LOG_EVERY_N(WARNING, 20) << "operations endpoint: refused " << path
                               << " from a non-loopback peer "
                               << (request.authorization.empty() ? "without" : "with a wrong")
                               << " admin token";
      return Text(403, "changes are accepted from loopback, or with the admin token "
                       "(Authorization: Bearer ...; the relay's --admin_token_file)\n");
    }
    if (path == "/v1/reload") {
      if (!options.reload) return Text(501, "this relay has nothing to reload\n");
      std::string message;
      const bool ok = options.reload(&message);
      return Text(ok ? 200 : 500, message + "\n");
    }
    const auto device = request.query.find("device");
    if (device == request.query.end() || device->second.empty()) {
      return Text(400, path == "/v1/kick" ? "say which: POST /v1/kick?device=ID[&reason=TEXT]\n"
                                          : "say which: POST /v1/forget-key?device=ID\n");
    }
    if (path == "/v1/forget-key") {
      if (relay.clustered()) {
        return Text(409, "this relay is one of a cluster: device keys are bound in etcd, under the cluster's "
                         "prefix: etcdctl del PREFIXkey/" + device->second + " (PREFIX: the relays' --cluster_prefix)\n");
      }
      if (!relay.ForgetKey(device->second)) return Text(404, "no key is bound to " + device->second + "\n");
      LOG(WARNING) << "operator: device " << device->second << " may bind a new key at its next join";
      return Text(200, "forgot the key of " + device->second + ": its next join binds the key it presents\n");
    }
    const auto reason = request.query.find("reason");
    const std::string why = reason == request.query.end() || reason->second.empty()
                                ? "no reason given"
                                : reason->second.substr(0, 200);
    if (!relay.Kick(device->second, why)) {
      return Text(404, "no device " + device->second + " is joined\n");
    }
    return Text(200, "kicked " + device->second + "\n");
  }
  if (request.method != "GET") return Text(405, "only GET here\n");
  if (path == "/metrics") {
    const tun::PortCounters* tun = options.tun_counters ? options.tun_counters() : nullptr;
    return HttpResponse{200, "text/plain; version=0.0.4", RenderMetrics(relay, tun)};
  }
  if (path == "/healthz") return Text(200, "ok\n");
  if (path == "/v1/peers") return HttpResponse{200, "application/json", RenderPeersJson(relay)};
  return Text(404, "not found; try /metrics, /healthz, /v1/peers, POST /v1/kick, /v1/forget-key or /v1/reload\n");
}

asio::awaitable<void> ServeAdmin(asio::ip::tcp::acceptor& acceptor, relay::Relay& relay,
                                 AdminOptions options) {
  return ServeHttp(acceptor, [&relay, options = std::move(options)](const HttpRequest& request) {
    return HandleAdminRequest(request, relay, options);
  });
}

}  // namespace mnedc::admin
