#include "mnedc/admin/admin_server.h"

#include <glog/logging.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <ctime>
#include <map>
#include <sstream>

#include "mnedc/protocol/control_codec.h"

namespace mnedc::admin {
namespace {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
constexpr auto kUse = asio::as_tuple(asio::use_awaitable);
constexpr auto kIdleTimeout = std::chrono::seconds(10);

void Metric(std::ostringstream& out, const char* name, const char* type, const char* help,
            uint64_t value) {
  out << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n"
      << name << " " << value << "\n";
}

std::string Rfc3339(std::chrono::system_clock::time_point when) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(when);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

// Device IDs are printable ASCII (the relay refuses others), so escaping
// quotes and backslashes is all JSON needs; the rest is escaped defensively.
std::string JsonString(const std::string& text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      char escaped[8];
      std::snprintf(escaped, sizeof(escaped), "\\u%04x", c);
      out += escaped;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

asio::awaitable<void> ServeConnection(asio::ip::tcp::socket socket, const relay::Relay& relay) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  for (;;) {
    stream.expires_after(kIdleTimeout);
    http::request_parser<http::empty_body> parser;
    parser.header_limit(8192);
    parser.body_limit(0);
    auto [read_error, n] = co_await http::async_read(stream, buffer, parser, kUse);
    if (read_error) co_return;  // Closed, timed out or malformed: nothing to answer.
    const auto& request = parser.get();
    http::response<http::string_body> response{http::status::ok, request.version()};
    response.set(http::field::server, "mnedc");
    response.keep_alive(request.keep_alive());
    const std::string target(request.target());
    if (request.method() != http::verb::get && request.method() != http::verb::head) {
      response.result(http::status::method_not_allowed);
      response.set(http::field::allow, "GET, HEAD");
      response.body() = "only GET\n";
    } else if (target == "/metrics") {
      response.set(http::field::content_type, "text/plain; version=0.0.4");
      response.body() = RenderMetrics(relay);
    } else if (target == "/healthz") {
      response.set(http::field::content_type, "text/plain");
      response.body() = "ok\n";
    } else if (target == "/v1/peers") {
      response.set(http::field::content_type, "application/json");
      response.body() = RenderPeersJson(relay);
    } else {
      response.result(http::status::not_found);
      response.set(http::field::content_type, "text/plain");
      response.body() = "not found; try /metrics, /healthz or /v1/peers\n";
    }
    response.prepare_payload();
    if (request.method() == http::verb::head) response.body().clear();
    auto [write_error, written] = co_await http::async_write(stream, response, kUse);
    if (write_error || !response.keep_alive()) co_return;
  }
}
}  // namespace

std::string RenderMetrics(const relay::Relay& relay) {
  const auto& c = relay.counters();
  std::ostringstream out;
  Metric(out, "mnedc_members", "gauge", "Devices joined now.", relay.member_count());
  Metric(out, "mnedc_connections", "gauge", "Connections open, joined or still handshaking.",
         relay.connection_count());
  Metric(out, "mnedc_joins_total", "counter", "Successful joins.", c.joins);
  Metric(out, "mnedc_leaves_total", "counter", "Members that left.", c.leaves);
  Metric(out, "mnedc_joins_rejected_total", "counter", "Hellos answered with an Error.",
         c.joins_rejected);
  Metric(out, "mnedc_auth_failures_total", "counter", "Hellos without the right join token.",
         c.auth_failures);
  Metric(out, "mnedc_connections_refused_total", "counter",
         "Connections that failed the transport handshake.", c.connections_refused);
  Metric(out, "mnedc_superseded_total", "counter", "Sessions replaced by a newer one.",
         c.superseded);
  Metric(out, "mnedc_packets_forwarded_total", "counter", "Packets forwarded.", c.packets_forwarded);
  Metric(out, "mnedc_bytes_forwarded_total", "counter", "IP bytes forwarded.", c.bytes_forwarded);
  Metric(out, "mnedc_broadcast_packets_total", "counter", "Broadcast and multicast packets.",
         c.broadcast_packets);
  Metric(out, "mnedc_pushbacks_total", "counter", "Times a sender waited for a full receiver.",
         c.pushbacks);
  Metric(out, "mnedc_stalled_receivers_total", "counter",
         "Times a receiver did not drain in time and was dropped to.", c.stalled_receivers);
  out << "# HELP mnedc_drops_total Packets dropped, by reason.\n# TYPE mnedc_drops_total counter\n";
  for (std::size_t i = 0; i < c.drops.size(); ++i) {
    out << "mnedc_drops_total{reason=\"" << relay::DropReasonName(static_cast<relay::DropReason>(i))
        << "\"} " << c.drops[i] << "\n";
  }
  std::map<std::string, uint64_t> per_transport = {{"tcp", 0}, {"tls", 0}, {"ws", 0}, {"wss", 0}};
  for (const auto& member : relay.Members()) ++per_transport[member.transport];
  out << "# HELP mnedc_sessions Joined members by transport.\n# TYPE mnedc_sessions gauge\n";
  for (const auto& [transport, count] : per_transport) {
    out << "mnedc_sessions{transport=\"" << transport << "\"} " << count << "\n";
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
        << ",\"address\":\"" << protocol::Ipv4ToString(m.address) << "\",\"transport\":\""
        << m.transport << "\",\"seen_from\":" << JsonString(m.seen_from)
        << ",\"connected_since\":\"" << Rfc3339(m.connected_since)
        << "\",\"bytes_from_device\":" << m.link.bytes_in
        << ",\"bytes_to_device\":" << m.link.bytes_out << "}";
  }
  out << (members.empty() ? "]\n" : "\n]\n");
  return out.str();
}

asio::awaitable<void> ServeAdmin(asio::ip::tcp::acceptor& acceptor, const relay::Relay& relay) {
  auto executor = co_await asio::this_coro::executor;
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(kUse);
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec) {
      LOG(WARNING) << "admin accept failed: " << ec.message();
      continue;
    }
    asio::co_spawn(executor, ServeConnection(std::move(socket), relay), asio::detached);
  }
}

}  // namespace mnedc::admin
