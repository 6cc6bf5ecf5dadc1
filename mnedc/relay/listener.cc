// The listener: accepting connections on the relay's ports, the connection
// limit, and the transport handshakes (TLS, WebSocket) before a session.
#include "mnedc/relay/relay.h"

#include <glog/logging.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mnedc/base/coro.h"
#include "mnedc/protocol/control_codec.h"
#include "mnedc/transport/accept.h"
#include "mnedc/transport/accept_loop.h"
#include "mnedc/transport/endpoint.h"
#include "mnedc/transport/tcp_stream.h"

namespace mnedc::relay {
namespace asio = boost::asio;
using base::Ipv4ToString;
using protocol::ControlMessage;

namespace {
// Tells a connection the relay cannot take it (an Error frame, BUSY, sent
// without waiting: it fits any empty socket buffer) and closes it. A client
// of this version backs off for seconds; a TLS or WebSocket client sees its
// handshake fail.
void RefuseBusy(int fd, const std::string& why) {
  std::vector<uint8_t> bytes;
  ControlMessage error;
  error.mutable_error()->set_code(protocol::Error::BUSY);
  error.mutable_error()->set_text(why);
  protocol::EncodeControlFrame(error, bytes);
  (void)::send(fd, bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
}

std::string LocalEndpointText(const asio::ip::tcp::acceptor& acceptor) {
  boost::system::error_code ec;
  const auto endpoint = acceptor.local_endpoint(ec);
  if (ec) return "?";
  return transport::HostPort{endpoint.address().to_string(), endpoint.port()}.ToString();
}
}  // namespace

asio::awaitable<void> Relay::AcceptLoop(asio::ip::tcp::acceptor& acceptor) {
  // On EMFILE and friends it pauses and keeps serving the members we have.
  transport::AcceptLoopOptions options;
  options.what = "relay port " + LocalEndpointText(acceptor);
  options.errors = &counters_.accept_errors;
  options.refused = &counters_.connections_refused;
  options.refuse = [](int fd) {
    RefuseBusy(fd, "the relay is out of file descriptors: try again later");
    ::close(fd);
  };
  auto serve = [this](asio::ip::tcp::socket socket) { return ServeSocket(std::move(socket)); };
  // Named, not temporaries in the co_await: GCC 12 may destroy those twice.
  co_await transport::AcceptLoop(acceptor, std::move(serve), std::move(options));
}

asio::awaitable<void> Relay::ServeStun(asio::ip::udp::socket& socket) {
  stun::Responder& responder = stun_responders_.emplace_back(socket);
  co_await responder.Run();
}

stun::ResponderCounters Relay::stun_counters() const {
  stun::ResponderCounters sum;
  for (const auto& responder : stun_responders_) {
    const auto& c = responder.counters();
    sum.answered += c.answered;
    sum.malformed += c.malformed;
    sum.unsupported += c.unsupported;
    sum.not_stun += c.not_stun;
    sum.rate_limited += c.rate_limited;
    sum.send_errors += c.send_errors;
  }
  return sum;
}

asio::awaitable<void> Relay::ServeSocket(asio::ip::tcp::socket socket) {
  const auto accepted_at = std::chrono::steady_clock::now();
  const std::string peer = transport::PeerText(socket);
  if (shutting_down_) co_return;
  if (connection_count() >= options_.max_connections) {
    ++counters_.connections_refused;
    LOG_EVERY_N(WARNING, 100) << peer << ": refused: already serving " << connection_count()
                              << " connections (the limit)";
    RefuseBusy(socket.native_handle(), "the relay serves its maximum of " +
                                           std::to_string(options_.max_connections) +
                                           " connections: try again later");
    co_return;
  }
  // The states of the sockets still to come, made together (see
  // SocketStateReserve), ahead of the burst the accept loop may take next.
  constexpr std::size_t kAhead = transport::kAcceptBurst + 1;
  socket_states_.Ensure(connection_count() + kAhead, options_.max_connections + kAhead);
  const int fd = socket.native_handle();
  handshaking_.insert(fd);
  auto accept = options_.accept;
  accept.timeout = options_.link.handshake_timeout;
  auto outcome = co_await transport::AcceptStream(std::move(socket), accept);
  handshaking_.erase(fd);
  if (outcome.stream && shutting_down_) co_return;
  if (!outcome.stream && outcome.wrong_mesh_key) {
    ++counters_.connections_refused;
    ++counters_.mesh_auth_failures;
    LOG_EVERY_N(WARNING, 10) << "mesh: " << peer << " refused: " << outcome.refused << " (refusal #"
                             << google::COUNTER << ")";
    co_return;
  }
  if (!outcome.stream) {
    ++counters_.connections_refused;
    // Scanners hit exposed relays all day: log the first of every 20 (all are counted).
    LOG_EVERY_N(INFO, 20) << peer << ": refused: " << outcome.refused << " (refusal #"
                          << google::COUNTER << ")";
    co_return;
  }
  co_await Serve(std::move(outcome.stream), accepted_at);
}

}  // namespace mnedc::relay
