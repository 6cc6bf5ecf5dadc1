// mnedc ctl: asks a client how it is doing (its local status socket) and tells
// a relay what to do (its operations endpoint).
#include <gflags/gflags.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <string>
#include <vector>

#include "mnedc/cli/cli_support.h"
#include "mnedc/cli/status_socket.h"
#include "mnedc/transport/endpoint.h"

DEFINE_bool(json, false, "Print the endpoint's JSON as it is, for scripts.");
DEFINE_string(socket, "",
              "status, metrics: the client's status socket. Default: /run/mnedc/<--tun_name>.sock");
DEFINE_string(tun_name, "mnedc0", "status, metrics: the client's TUN name, to find its socket.");
DEFINE_string(admin, "127.0.0.1:9334", "peers, kick, forget-key, reload: the relay's --admin_listen.");
DEFINE_string(admin_token_file, "",
              "kick, forget-key, reload from another host: the relay's --admin_token_file.");
DEFINE_string(reason, "", "kick: why, told to the device and logged on both sides.");

namespace {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using mnedc::cli::Fail;

constexpr char kUsage[] =
    "mnedc ctl: how a device is doing, and what a relay should do.\n"
    "\n"
    "Usage: ctl status [--json] [--socket=PATH]   this device: address, relay, peers\n"
    "       ctl metrics [--socket=PATH]           this device's counters (Prometheus)\n"
    "       ctl peers [--json] [--admin=HOST:PORT] the relay's members\n"
    "       ctl kick DEVICE [--reason=TEXT]       close one device's session on the relay\n"
    "       ctl forget-key DEVICE                 let the device join with a new key (the relay\n"
    "                                             binds each device to the first key it joins with)\n"
    "       ctl reload                            make the relay re-read its token files\n"
    "status and metrics need the client's user (root); peers, kick, forget-key and reload talk to the\n"
    "relay's operations endpoint (loopback, or --admin_token_file from elsewhere).\n"
    "Example: bazel run //mnedc/cli:ctl -- status";

struct Reply {
  unsigned status = 0;
  std::string body;
};

template <class Socket>
Reply Exchange(Socket& socket, http::verb method, const std::string& target,
               const std::string& authorization, const std::string& where) {
  http::request<http::empty_body> request{method, target, 11};
  request.set(http::field::host, "mnedc");
  request.set(http::field::user_agent, "mnedc-ctl");
  if (!authorization.empty()) request.set(http::field::authorization, authorization);
  request.prepare_payload();
  boost::system::error_code ec;
  http::write(socket, request, ec);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 << 20);
  if (!ec) http::read(socket, buffer, parser, ec);
  if (ec) Fail("no answer from " + where + ": " + ec.message());
  return {parser.get().result_int(), parser.get().body()};
}

Reply AskClient(const std::string& target) {
  const std::string path =
      FLAGS_socket.empty() ? "/run/mnedc/" + FLAGS_tun_name + ".sock" : FLAGS_socket;
  if (const std::string problem = mnedc::cli::UnixSocketPathProblem(path); !problem.empty()) {
    Fail("--socket=" + path + ": " + problem);
  }
  asio::io_context io;
  asio::local::stream_protocol::socket socket(io);
  boost::system::error_code ec;
  socket.connect(asio::local::stream_protocol::endpoint(path), ec);
  if (ec == asio::error::access_denied) {
    Fail("cannot open " + path + ": permission denied (the status socket is the client's " +
         "owner's only: run ctl as root)");
  }
  if (ec) {
    Fail("no client answers on " + path + " (" + ec.message() +
         "): is the client running? Its --status_socket says where it serves.");
  }
  return Exchange(socket, http::verb::get, target, "", path);
}

Reply AskRelay(http::verb method, const std::string& target) {
  std::string error;
  const auto admin = mnedc::transport::ParseHostPort(FLAGS_admin, 9334, &error);
  if (!admin) Fail("--admin=" + error);
  std::string authorization;
  if (!FLAGS_admin_token_file.empty()) {
    authorization = "Bearer " + mnedc::cli::ReadTokenFile("--admin_token_file",
                                                          FLAGS_admin_token_file);
  }
  asio::io_context io;
  asio::ip::tcp::resolver resolver(io);
  boost::system::error_code ec;
  const auto endpoints = resolver.resolve(admin->host, std::to_string(admin->port), ec);
  asio::ip::tcp::socket socket(io);
  if (!ec) asio::connect(socket, endpoints, ec);
  if (ec) {
    Fail("cannot reach the relay's operations endpoint at " + admin->ToString() + ": " +
         ec.message() + " (is the relay running? see its --admin_listen)");
  }
  return Exchange(socket, method, target, authorization, admin->ToString());
}

json::value ParseJson(const Reply& reply) {
  boost::system::error_code ec;
  json::value value = json::parse(reply.body, ec);
  if (ec) Fail("the answer is not JSON: " + ec.message());
  return value;
}

std::string Text(const json::value& value) {
  if (const auto* s = value.if_string()) return std::string(s->c_str());
  if (value.is_null()) return "";
  return json::serialize(value);
}

// "3m ago" for an RFC 3339 time from the endpoints.
std::string Ago(const std::string& rfc3339) {
  std::tm utc{};
  if (rfc3339.empty() || !strptime(rfc3339.c_str(), "%Y-%m-%dT%H:%M:%SZ", &utc)) return "";
  const auto seconds = static_cast<long long>(std::time(nullptr) - timegm(&utc));
  if (seconds < 0) return "";
  if (seconds < 120) return std::to_string(seconds) + "s ago";
  if (seconds < 7200) return std::to_string(seconds / 60) + "m ago";
  if (seconds < 172800) return std::to_string(seconds / 3600) + "h ago";
  return std::to_string(seconds / 86400) + "d ago";
}

std::string Bytes(uint64_t bytes) {
  char text[32];
  if (bytes < 10000) return std::to_string(bytes) + " B";
  if (bytes < 10'000'000) std::snprintf(text, sizeof(text), "%.1f kB", bytes / 1e3);
  else if (bytes < 10'000'000'000) std::snprintf(text, sizeof(text), "%.1f MB", bytes / 1e6);
  else std::snprintf(text, sizeof(text), "%.1f GB", bytes / 1e9);
  return text;
}

uint64_t Number(const json::object& object, const char* key) {
  const auto* value = object.if_contains(key);
  return value && value->is_number() ? value->to_number<uint64_t>() : 0;
}

// An entry's "address6", or "-" on an IPv4-only network (or from an older version).
std::string Address6Column(const json::object& entry) {
  const auto* value = entry.if_contains("address6");
  return value && value->is_string() ? Text(*value) : "-";
}

void PrintStatus(const json::object& status) {
  const std::string state = Text(status.at("state"));
  std::printf("device      %s (%s)\n", Text(status.at("device_id")).c_str(), state.c_str());
  if (state == "joined") {
    // IPv6 beside IPv4 on a dual-stack network (a client older than IPv6 does not say).
    std::string address6;
    if (const auto* v6 = status.if_contains("address6"); v6 && v6->is_string()) {
      address6 = " and " + Text(*v6) + "/" + Text(status.at("prefix_length6"));
    }
    std::printf("address     %s/%s%s on %s, mtu %s\n", Text(status.at("address")).c_str(),
                Text(status.at("prefix_length")).c_str(), address6.c_str(), Text(status.at("interface")).c_str(),
                Text(status.at("mtu")).c_str());
    const std::string since = Text(status.at("joined_since"));
    std::printf("relay       %s, connected to %s over %s since %s (%s)\n",
                Text(status.at("relay")).c_str(), Text(status.at("relay_endpoint")).c_str(),
                Text(status.at("transport")).c_str(), since.c_str(), Ago(since).c_str());
    // A client older than offloads does not say.
    if (status.contains("offloads")) {
      const bool super_packets = status.at("super_packets").is_bool() && status.at("super_packets").as_bool();
      std::printf("offloads    TUN %s; super-packets to and from the relay: %s\n",
                  Text(status.at("offloads")).c_str(), super_packets ? "yes" : "no");
    }
  } else {
    std::printf("relay       %s, not joined\n", Text(status.at("relay")).c_str());
  }
  // Several relays known (a client older than relay lists does not say).
  if (status.contains("relays") && status.at("relays").is_array() && status.at("relays").as_array().size() > 1) {
    std::string relays;
    for (const auto& relay : status.at("relays").as_array()) relays += (relays.empty() ? "" : ", ") + Text(relay);
    std::printf("relays      %s (tried in this order when one fails)\n", relays.c_str());
  }
  const std::string last_error = Text(status.at("last_error"));
  std::printf("last error  %s\n", last_error.empty() ? "none" : last_error.c_str());
  const auto& c = status.at("counters").as_object();
  std::printf("traffic     sent %llu packets (%s), received %llu (%s); reconnects %llu\n",
              static_cast<unsigned long long>(Number(c, "packets_to_relay")),
              Bytes(Number(c, "bytes_to_relay")).c_str(),
              static_cast<unsigned long long>(Number(c, "packets_from_relay")),
              Bytes(Number(c, "bytes_from_relay")).c_str(),
              static_cast<unsigned long long>(Number(c, "reconnects")));
  std::printf("drops       not connected %llu, queue full %llu, TUN write %llu; TUN errors read %llu, "
              "write %llu; TUN re-created %llu\n",
              static_cast<unsigned long long>(Number(c, "drops_not_connected")),
              static_cast<unsigned long long>(Number(c, "drops_queue_full")),
              static_cast<unsigned long long>(Number(c, "drops_tun_write")),
              static_cast<unsigned long long>(Number(c, "tun_read_errors")),
              static_cast<unsigned long long>(Number(c, "tun_write_errors")),
              static_cast<unsigned long long>(Number(c, "tun_recreations")));
  const auto* sealing = status.if_contains("sealing");
  if (const auto* key = status.if_contains("public_key");
      key && key->is_string() && sealing && sealing->is_bool() && sealing->as_bool()) {
    const uint64_t dropped = Number(c, "unsealed_unknown_peer") + Number(c, "unsealed_not_for_me") +
                             Number(c, "unsealed_replayed") + Number(c, "unsealed_bad_tag") +
                             Number(c, "unsealed_spoofed_inner") + Number(c, "unsealed_malformed") +
                             Number(c, "unsealed_key_failures");
    const auto* cipher = status.if_contains("cipher");
    std::printf("sealing     key %s; seals with %s; sealed %llu packets to peers, opened %llu; dropped %llu (changed "
                "on the way %llu, replayed %llu)\n",
                Text(*key).c_str(), cipher ? Text(*cipher).c_str() : "chacha20-poly1305",
                static_cast<unsigned long long>(Number(c, "sealed_out")),
                static_cast<unsigned long long>(Number(c, "sealed_in")), static_cast<unsigned long long>(dropped),
                static_cast<unsigned long long>(Number(c, "unsealed_bad_tag")),
                static_cast<unsigned long long>(Number(c, "unsealed_replayed")));
  } else if (key && key->is_string()) {
    std::printf("sealing     off (--seal=false): nothing to or from this device is sealed; its key %s\n",
                Text(*key).c_str());
  }
  const auto& peers = status.at("peers").as_array();
  if (const auto* direct = status.if_contains("direct"); direct && direct->is_object()) {
    const auto& d = direct->as_object();
    std::size_t direct_peers = 0;
    for (const auto& entry : peers) {
      if (const auto* path = entry.as_object().if_contains("path"); path && Text(*path) == "direct") ++direct_peers;
    }
    std::printf("direct      UDP port %s, outside %s; %zu peer%s direct; packets direct out %llu, in %llu; "
                "back to the relay %llu times\n",
                Text(d.at("port")).c_str(), Text(d.at("outside")).c_str(), direct_peers,
                direct_peers == 1 ? "" : "s", static_cast<unsigned long long>(Number(c, "direct_packets_out")),
                static_cast<unsigned long long>(Number(c, "direct_packets_in")),
                static_cast<unsigned long long>(Number(c, "direct_fell_back")));
  } else if (direct) {
    std::printf("direct      off: every packet goes through the relay\n");
  }
  std::printf("\n%zu peer%s\n", peers.size(), peers.size() == 1 ? "" : "s");
  if (peers.empty()) return;
  std::printf("  %-24s %-16s %-24s %-7s %-36s %-24s %s\n", "ID", "ADDRESS", "ADDRESS6", "SEALED", "PATH (RTT, FOR)",
              "SEEN FROM", "SINCE");
  for (const auto& entry : peers) {
    const auto& peer = entry.as_object();
    const std::string since = Text(peer.at("since"));
    // A client older than sealing does not say: nothing is sealed there.
    const auto* sealed = peer.if_contains("sealed");
    // Nor an older one about paths: all through the relay.
    std::string path = "relay";
    if (const auto* p = peer.if_contains("path"); p && Text(*p) == "direct") {
      char rtt[32];
      std::snprintf(rtt, sizeof rtt, "%.2f", peer.at("rtt_ms").to_number<double>());
      // Since when: "12s ago" says it in as few characters as the column has.
      const std::string since_direct = Ago(Text(peer.at("path_since")));
      path = "direct " + Text(peer.at("direct_endpoint")) + " " + rtt + "ms" +
             (since_direct.empty() ? "" : ", " + since_direct.substr(0, since_direct.find(' ')));
    }
    std::printf("  %-24s %-16s %-24s %-7s %-36s %-24s %s (%s)\n", Text(peer.at("device_id")).c_str(),
                Text(peer.at("address")).c_str(), Address6Column(peer).c_str(),
                sealed && sealed->is_bool() && sealed->as_bool() ? "yes" : "no", path.c_str(),
                Text(peer.at("seen_from")).c_str(), since.c_str(), Ago(since).c_str());
  }
}

void PrintRelayPeers(const json::array& members) {
  std::printf("%zu member%s\n", members.size(), members.size() == 1 ? "" : "s");
  if (members.empty()) return;
  std::printf("  %-24s %-16s %-24s %-5s %-24s %-22s %10s %10s\n", "ID", "ADDRESS", "ADDRESS6", "VIA",
              "SEEN FROM", "SINCE", "FROM DEV", "TO DEV");
  for (const auto& entry : members) {
    const auto& m = entry.as_object();
    std::printf("  %-24s %-16s %-24s %-5s %-24s %-22s %10s %10s\n", Text(m.at("device_id")).c_str(),
                Text(m.at("address")).c_str(), Address6Column(m).c_str(), Text(m.at("transport")).c_str(),
                Text(m.at("seen_from")).c_str(), Text(m.at("connected_since")).c_str(),
                Bytes(Number(m, "bytes_from_device")).c_str(),
                Bytes(Number(m, "bytes_to_device")).c_str());
  }
}

// Percent-encodes a query value (device IDs are printable ASCII).
std::string QueryValue(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char escaped[4];
      std::snprintf(escaped, sizeof(escaped), "%%%02X", c);
      out += escaped;
    }
  }
  return out;
}

int Finish(const Reply& reply) {
  std::fputs(reply.body.c_str(), reply.status == 200 ? stdout : stderr);
  if (reply.status == 200) return 0;
  std::fprintf(stderr, "ctl: the relay answered %u\n", reply.status);
  return 1;
}
}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> words;
  mnedc::cli::Init(&argc, &argv, kUsage, &words);
  if (words.empty()) Fail("say what: status, metrics, peers, kick DEVICE, forget-key DEVICE or reload; see --help");
  const std::string& command = words[0];
  const bool takes_device = command == "kick" || command == "forget-key";
  if (words.size() != (takes_device ? 2u : 1u)) {
    Fail(takes_device ? command + " needs one DEVICE (ctl " + command + " DEVICE)"
                      : "'" + command + "' takes no arguments; see --help");
  }
  if (command == "status") {
    const Reply reply = AskClient("/v1/status");
    if (reply.status != 200) Fail("the client answered " + std::to_string(reply.status));
    if (FLAGS_json) {
      std::fputs(reply.body.c_str(), stdout);
      return 0;
    }
    const json::value status = ParseJson(reply);
    if (!status.is_object()) Fail("the client's status is not a JSON object");
    PrintStatus(status.as_object());
    return 0;
  }
  if (command == "metrics") return Finish(AskClient("/metrics"));
  if (command == "peers") {
    const Reply reply = AskRelay(http::verb::get, "/v1/peers");
    if (reply.status != 200 || FLAGS_json) return Finish(reply);
    const json::value members = ParseJson(reply);
    if (!members.is_array()) Fail("the relay's /v1/peers is not a JSON list");
    PrintRelayPeers(members.as_array());
    return 0;
  }
  if (command == "kick") {
    std::string target = "/v1/kick?device=" + QueryValue(words[1]);
    if (!FLAGS_reason.empty()) target += "&reason=" + QueryValue(FLAGS_reason);
    return Finish(AskRelay(http::verb::post, target));
  }
  if (command == "forget-key") return Finish(AskRelay(http::verb::post, "/v1/forget-key?device=" + QueryValue(words[1])));
  if (command == "reload") return Finish(AskRelay(http::verb::post, "/v1/reload"));
  Fail("unknown command '" + command + "'; see --help");
}
