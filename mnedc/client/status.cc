#include "mnedc/client/status.h"

#include <chrono>
#include <sstream>

#include "mnedc/base/ipv4.h"
#include "mnedc/base/ipv6.h"
#include "mnedc/seal/aead.h"
#include "mnedc/seal/keys.h"


namespace mnedc::client {
namespace {
using admin::JsonString;
using base::Ipv4ToString;

const char* State(const Client& client) {
  if (client.joined()) return "joined";
  return "connecting";
}

struct Counter {
  const char* json_key;
  const char* name;
  const char* labels;
  const char* help;
  uint64_t value;
};

std::vector<Counter> Counters(const StatusSources& sources) {
  const auto& c = sources.client->counters();
  tun::PortCounters t;
  if (sources.tun) t = sources.tun->counters();
  const dns::DnsCounters d = sources.dns ? sources.dns->counters() : dns::DnsCounters{};
  const ForwarderCounters f = sources.dns ? sources.dns->forwarder_counters() : ForwarderCounters{};
  const SealingCounters s = sources.client->sealing() ? sources.client->sealing()->counters() : SealingCounters{};
  const DirectCounters x = sources.client->direct() ? sources.client->direct()->counters() : DirectCounters{};
  return {
      {"direct_packets_out", "mnedc_client_direct_packets_total", "direction=\"out\"",
       "Packets sent to and received from peers on a direct path (not through the relay).", x.packets_out},
      {"direct_packets_in", "mnedc_client_direct_packets_total", "direction=\"in\"", nullptr, x.packets_in},
      {"direct_datagrams_out", "mnedc_client_direct_datagrams_total", "direction=\"out\"",
       "UDP datagrams on the direct path's socket (packets, segments of super-packets, probes).", x.datagrams_out},
      {"direct_datagrams_in", "mnedc_client_direct_datagrams_total", "direction=\"in\"", nullptr, x.datagrams_in},
      {"direct_send_calls", "mnedc_client_direct_send_calls_total", "",
       "System calls that sent the direct datagrams out (packets read from the TUN together go in one).",
       x.send_calls},
      {"direct_send_drops", "mnedc_client_direct_drops_total", "reason=\"socket_full\"",
       "Direct datagrams dropped, by reason: the socket's buffer full, another send error, did not open (from no "
       "peer, changed on the way, replayed: the unsealed counters say which), neither mnedc's nor our STUN answer, a "
       "super-packet missing a fragment.",
       x.send_drops},
      {"direct_send_errors", "mnedc_client_direct_drops_total", "reason=\"send_error\"", nullptr, x.send_errors},
      {"direct_unopened", "mnedc_client_direct_drops_total", "reason=\"unopened\"", nullptr, x.unopened},
      {"direct_not_ours", "mnedc_client_direct_drops_total", "reason=\"not_ours\"", nullptr, x.not_ours},
      {"direct_reassembly_drops", "mnedc_client_direct_drops_total", "reason=\"reassembly\"", nullptr,
       x.reassembly_drops},
      {"direct_fragments_in", "mnedc_client_direct_fragments_total", "",
       "Datagrams carrying part of a super-packet sealed whole (put back together before it is opened).",
       x.fragments_in},
      {"direct_pings_sent", "mnedc_client_direct_probes_total", "kind=\"ping_sent\"",
       "Probes on the direct path: pings sent, pongs sent and received, CallMeMaybe through the relay.",
       x.pings_sent},
      {"direct_pongs_sent", "mnedc_client_direct_probes_total", "kind=\"pong_sent\"", nullptr, x.pongs_sent},
      {"direct_pongs_received", "mnedc_client_direct_probes_total", "kind=\"pong_received\"", nullptr,
       x.pongs_received},
      {"direct_call_me_maybe_sent", "mnedc_client_direct_probes_total", "kind=\"call_me_maybe_sent\"", nullptr,
       x.call_me_maybe_sent},
      {"direct_call_me_maybe_received", "mnedc_client_direct_probes_total", "kind=\"call_me_maybe_received\"",
       nullptr, x.call_me_maybe_received},
      {"direct_went", "mnedc_client_direct_path_changes_total", "to=\"direct\"",
       "Times a peer's path became direct, and went back to the relay (a direct path that went silent).",
       x.went_direct},
      {"direct_fell_back", "mnedc_client_direct_path_changes_total", "to=\"relay\"", nullptr, x.fell_back},
      {"stun_requests", "mnedc_client_stun_total", "kind=\"request\"",
       "STUN Binding requests to the relay, and answers (this device's outside address).", x.stun_requests},
      {"stun_answers", "mnedc_client_stun_total", "kind=\"answer\"", nullptr, x.stun_answers},
      {"sealed_out", "mnedc_client_sealed_total", "direction=\"out\"",
       "Packets sealed end to end to a peer, and opened from one.", s.sealed_out},
      {"sealed_in", "mnedc_client_sealed_total", "direction=\"in\"", nullptr, s.opened},
      {"unsealed_unknown_peer", "mnedc_client_unsealed_drops_total", "reason=\"unknown_peer\"",
       "Sealed packets dropped, by reason: from no peer with keys, for another device, a counter taken before, a "
       "tag that does not check (changed on the way), another source inside than the sender's, not a packet inside, "
       "unusable keys.",
       s.unknown_peer},
      {"unsealed_not_for_me", "mnedc_client_unsealed_drops_total", "reason=\"not_for_me\"", nullptr, s.not_for_me},
      {"unsealed_replayed", "mnedc_client_unsealed_drops_total", "reason=\"replayed\"", nullptr, s.replayed},
      {"unsealed_bad_tag", "mnedc_client_unsealed_drops_total", "reason=\"bad_tag\"", nullptr, s.bad_tag},
      {"unsealed_spoofed_inner", "mnedc_client_unsealed_drops_total", "reason=\"spoofed_inner\"", nullptr,
       s.spoofed_inner},
      {"unsealed_malformed", "mnedc_client_unsealed_drops_total", "reason=\"malformed\"", nullptr,
       s.malformed_inner},
      {"unsealed_key_failures", "mnedc_client_unsealed_drops_total", "reason=\"unusable_keys\"", nullptr,
       s.key_failures},
      {"dns_queries", "mnedc_client_dns_queries_total", "", "DNS queries to the relay's overlay address, answered here.",
       d.queries},
      {"dns_answered", "mnedc_client_dns_answers_total", "rcode=\"noerror\"", "DNS answers, by result.", d.answered},
      {"dns_nxdomain", "mnedc_client_dns_answers_total", "rcode=\"nxdomain\"", nullptr, d.nxdomain},
      {"dns_refused", "mnedc_client_dns_answers_total", "rcode=\"refused\"", nullptr, d.refused},
      {"dns_formerr", "mnedc_client_dns_answers_total", "rcode=\"formerr\"", nullptr, d.formerr},
      {"dns_notimp", "mnedc_client_dns_answers_total", "rcode=\"notimp\"", nullptr, d.notimp},
      {"dns_dropped", "mnedc_client_dns_dropped_total", "", "DNS datagrams not answered (responses, no header).",
       d.dropped},
      {"dns_forwarded", "mnedc_client_dns_forwarded_total", "result=\"sent\"",
       "Queries for names outside the overlay passed to --dns_forward, by what became of them.", f.forwarded},
      {"dns_forward_answered", "mnedc_client_dns_forwarded_total", "result=\"answered\"", nullptr, f.answered},
      {"dns_forward_timed_out", "mnedc_client_dns_forwarded_total", "result=\"timed_out\"", nullptr, f.timed_out},
      {"dns_forward_overflow", "mnedc_client_dns_forwarded_total", "result=\"overflow\"", nullptr, f.overflow},
      {"dns_forward_rejected", "mnedc_client_dns_forward_rejected_total", "",
       "Datagrams from the forwarding socket that answered no pending query.", f.rejected},
      {"packets_to_relay", "mnedc_client_packets_total", "direction=\"to_relay\"", "IP packets, by direction.",
       c.packets_sent},
      {"packets_from_relay", "mnedc_client_packets_total", "direction=\"from_relay\"", nullptr, c.packets_received},
      {"bytes_to_relay", "mnedc_client_bytes_total", "direction=\"to_relay\"", "IP bytes, by direction.",
       c.bytes_sent},
      {"bytes_from_relay", "mnedc_client_bytes_total", "direction=\"from_relay\"", nullptr, c.bytes_received},
      {"drops_not_connected", "mnedc_client_drops_total", "reason=\"not_connected\"", "Packets dropped, by reason.",
       c.dropped_not_connected},
      {"drops_queue_full", "mnedc_client_drops_total", "reason=\"queue_full\"", nullptr, c.dropped_queue_full},
      {"drops_tun_write", "mnedc_client_drops_total", "reason=\"tun_write\"", nullptr, t.write_drops},
      {"connect_attempts", "mnedc_client_connect_attempts_total", "", "Connections attempted to the relay.",
       c.connect_attempts},
      {"connect_failures", "mnedc_client_connect_failures_total", "", "Connection attempts that failed.",
       c.connect_failures},
      {"joins", "mnedc_client_joins_total", "", "Joins completed (the first and every rejoin).", c.joins},
      {"reconnects", "mnedc_client_reconnects_total", "", "Joins after the first.",
       c.joins > 0 ? c.joins - 1 : 0},
      {"tun_read_errors", "mnedc_client_tun_read_errors_total", "", "Failed reads from the TUN interface.",
       t.read_errors},
      {"tun_write_errors", "mnedc_client_tun_write_errors_total", "", "Failed writes to the TUN interface.",
       t.write_errors},
      {"tun_recreations", "mnedc_client_tun_recreations_total", "",
       "Times the TUN interface was deleted under the client and created again.", t.recreations},
      {"tun_super_packets_read", "mnedc_client_tun_super_packets_total", "direction=\"read\"",
       "Super-packets (up to 64 KiB of one flow) read from or written whole to the TUN.", t.super_packets_read},
      {"tun_super_packets_written", "mnedc_client_tun_super_packets_total", "direction=\"written\"", nullptr,
       t.super_packets_written},
      {"tun_segments_joined", "mnedc_client_tun_segments_joined_total", "",
       "Ordinary TCP packets joined into super-packets before being written to the TUN.", t.segments_joined},
      {"tun_super_packets_split", "mnedc_client_tun_super_packets_split_total", "",
       "Super-packets cut into segments because the TUN cannot take them whole.", t.super_packets_split},
      {"tun_acks_superseded", "mnedc_client_tun_acks_superseded_total", "",
       "Pure TCP ACKs not written to the TUN because a newer ACK of the same connection came right behind them.",
       t.acks_superseded},
  };
}
}  // namespace

// The peers, as /v1/status and /v1/peers list them.
void RenderPeers(const Client& client, std::ostream& out) {
  out << "[";
  const auto peers = client.peers().Snapshot();
  const auto steady_now = std::chrono::steady_clock::now();
  const auto system_now = std::chrono::system_clock::now();
  for (std::size_t i = 0; i < peers.size(); ++i) {
    const auto& peer = peers[i];
    const PathState* path = client.direct() ? client.direct()->PathTo(peer.address) : nullptr;
    out << (i ? ",\n  " : "\n  ") << "{\"device_id\":" << JsonString(peer.device_id)
        << ",\"address\":" << JsonString(Ipv4ToString(peer.address))
        << ",\"address6\":" << (peer.address6 ? JsonString(base::Ipv6ToString(*peer.address6)) : "null")
        << ",\"seen_from\":" << JsonString(peer.seen_from)
        << ",\"public_key\":" << (peer.keys ? JsonString(seal::EncodeKey(peer.keys->public_key)) : "null")
        << ",\"sealed\":" << (client.sealing() && client.sealing()->Seals(peer) ? "true" : "false")
        << ",\"cipher\":"
        << (client.sealing() && client.sealing()->Seals(peer)
                ? JsonString(seal::CipherName(client.sealing()->CipherTo(peer)))
                : "null")
        << ",\"path\":\"" << (path && path->direct() ? "direct" : "relay") << "\"";
    if (path && path->direct()) {
      const auto since = system_now - std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                          steady_now - path->since());
      out << ",\"path_since\":" << JsonString(admin::Rfc3339(since))
          << ",\"direct_endpoint\":" << JsonString(path->endpoint()->address().to_string() + ":" +
                                                    std::to_string(path->endpoint()->port()))
          << ",\"rtt_ms\":" << std::chrono::duration<double, std::milli>(path->rtt()).count();
    } else {
      out << ",\"path_since\":null,\"direct_endpoint\":null,\"rtt_ms\":null";
    }
    out << ",\"since\":" << JsonString(admin::Rfc3339(peer.since)) << "}";
  }
  out << (peers.empty() ? "]" : "\n ]");
}

std::string RenderStatusJson(const StatusSources& sources) {
  const Client& client = *sources.client;
  std::ostringstream out;
  const auto& lease = client.lease();
  out << "{\"device_id\":" << JsonString(client.options().device_id) << ",\"state\":\""
      << State(client) << "\",\"address\":"
      << (lease ? JsonString(Ipv4ToString(lease->address)) : "null")
      << ",\"prefix_length\":" << (lease ? lease->prefix_length : 0) << ",\"address6\":"
      << (lease && lease->address6 ? JsonString(base::Ipv6ToString(*lease->address6)) : "null")
      << ",\"prefix_length6\":" << (lease && lease->address6 ? lease->prefix_length6 : 0)
      << ",\"mtu\":" << (lease ? lease->mtu : 0)
      << ",\"interface\":" << JsonString(sources.tun ? sources.tun->name() : "")
      << ",\"dns_domain\":" << (sources.dns ? JsonString(sources.dns->domain()) : "null")
      << ",\"public_key\":"
      << (client.options().device_key ? JsonString(seal::EncodeKey(client.options().device_key->public_key())) : "null")
      << ",\"sealing\":" << (client.sealing() ? "true" : "false")
      << ",\"cipher\":" << (client.sealing() ? JsonString(seal::CipherName(client.sealing()->seals_with())) : "null")
      << ",\"relay\":" << JsonString(client.relay().ToString()) << ",\"relays\":[";
  for (std::size_t i = 0; i < client.known_relays().size(); ++i) {
    out << (i ? "," : "") << JsonString(client.known_relays()[i].ToString());
  }
  out << "]"
      << ",\"relay_endpoint\":" << JsonString(client.relay_peer())
      << ",\"transport\":" << JsonString(client.transport())
      << ",\"offloads\":" << JsonString(sources.tun ? sources.tun->offloads().ToString() : "none")
      << ",\"super_packets\":" << (lease && lease->super_packets ? "true" : "false") << ",\"joined_since\":"
      << (client.joined() ? JsonString(admin::Rfc3339(client.joined_since())) : "null")
      << ",\"last_error\":" << JsonString(client.last_error()) << ",\n \"counters\":{";
  bool first = true;
  for (const auto& counter : Counters(sources)) {
    out << (first ? "" : ",") << JsonString(counter.json_key) << ":" << counter.value;
    first = false;
  }
  out << "},\n \"direct\":";
  if (const Direct* direct = client.direct()) {
    out << "{\"port\":" << direct->port() << ",\"outside\":"
        << (direct->outside() ? JsonString(direct->outside()->address().to_string() + ":" +
                                           std::to_string(direct->outside()->port()))
                              : "null")
        << ",\"candidates\":[";
    for (std::size_t i = 0; i < direct->candidates().size(); ++i) {
      const auto& c = direct->candidates()[i];
      out << (i ? "," : "") << JsonString(c.address().to_string() + ":" + std::to_string(c.port()));
    }
    out << "]}";
  } else {
    out << "null";
  }
  out << ",\n \"peers\":";
  RenderPeers(client, out);
  out << "}\n";
  return out.str();
}

std::string RenderClientMetrics(const StatusSources& sources) {
  std::ostringstream out;
  out << "# HELP mnedc_client_joined 1 while joined to a relay.\n# TYPE mnedc_client_joined gauge\n"
      << "mnedc_client_joined " << (sources.client->joined() ? 1 : 0) << "\n"
      << "# HELP mnedc_client_peers Peers known now.\n# TYPE mnedc_client_peers gauge\n"
      << "mnedc_client_peers " << sources.client->peers().size() << "\n";
  if (const auto& lease = sources.client->lease()) {
    out << "# HELP mnedc_client_lease_info The addresses this device holds (1 while it has a lease).\n"
        << "# TYPE mnedc_client_lease_info gauge\nmnedc_client_lease_info{address=\"" << Ipv4ToString(lease->address)
        << "\",address6=\"" << (lease->address6 ? base::Ipv6ToString(*lease->address6) : "") << "\"} 1\n";
  }
  // Per peer with a path looked for: which, since when, its round trip.
  const auto peers = sources.client->peers().Snapshot();
  const Direct* direct = sources.client->direct();
  auto per_peer = [&](const char* name, const char* help, bool direct_only, auto value) {
    bool headed = false;
    for (const auto& peer : peers) {
      const PathState* path = direct ? direct->PathTo(peer.address) : nullptr;
      if (!path || (direct_only && !path->direct())) continue;
      if (!headed) out << "# HELP " << name << " " << help << "\n# TYPE " << name << " gauge\n";
      headed = true;
      out << name << "{peer=\"" << Ipv4ToString(peer.address) << "\"} " << value(*path) << "\n";
    }
  };
  per_peer("mnedc_client_peer_direct", "1 while packets to the peer go on a direct path, 0 through the relay.", false,
           [](const PathState& path) { return path.direct() ? 1 : 0; });
  per_peer("mnedc_client_peer_rtt_seconds", "The last round trip measured on the peer's direct path.", true,
           [](const PathState& path) { return std::chrono::duration<double>(path.rtt()).count(); });
  per_peer("mnedc_client_peer_path_seconds", "How long the peer's direct path has been in use.", true,
           [](const PathState& path) {
             return std::chrono::duration<double>(std::chrono::steady_clock::now() - path.since()).count();
           });
  for (const auto& counter : Counters(sources)) {
    if (counter.help) {
      out << "# HELP " << counter.name << " " << counter.help << "\n# TYPE " << counter.name
          << " counter\n";
    }
    out << counter.name;
    if (*counter.labels) out << "{" << counter.labels << "}";
    out << " " << counter.value << "\n";
  }
  return out.str();
}

admin::HttpResponse HandleStatusRequest(const admin::HttpRequest& request,
                                        const StatusSources& sources) {
  if (request.method != "GET") return {405, "text/plain", "only GET here\n"};
  if (request.path == "/v1/status") {
    return {200, "application/json", RenderStatusJson(sources)};
  }
  if (request.path == "/v1/peers") {
    std::ostringstream out;
    RenderPeers(*sources.client, out);
    out << "\n";
    return {200, "application/json", out.str()};
  }
  if (request.path == "/metrics") {
    return {200, "text/plain; version=0.0.4", RenderClientMetrics(sources)};
  }
  if (request.path == "/healthz") {
    return sources.client->joined() ? admin::HttpResponse{200, "text/plain", "ok\n"}
                                    : admin::HttpResponse{503, "text/plain", "not joined\n"};
  }
  return {404, "text/plain", "not found; try /v1/status, /v1/peers, /metrics or /healthz\n"};
}

}  // namespace mnedc::client
