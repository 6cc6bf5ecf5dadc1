#include "mnedc/cli/relay_listeners.h"

#include <glog/logging.h>

#include <sstream>

#include "mnedc/cli/cli_support.h"
#include "mnedc/transport/endpoint.h"

namespace mnedc::cli {
namespace asio = boost::asio;

std::optional<asio::ip::tcp::endpoint> BindEndpoint(const char* flag, const std::string& value,
                                                    uint16_t default_port, std::string* error) {
  std::string why;
  const auto listen = transport::ParseHostPort(value, default_port, &why);
  if (!listen) {
    *error = std::string(flag) + "=" + why;
    return std::nullopt;
  }
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(listen->host, ec);
  if (ec) {
    *error = std::string(flag) + " needs an IP address to bind, not '" + listen->host + "'";
    return std::nullopt;
  }
  return asio::ip::tcp::endpoint{address, listen->port};
}

bool ListenTcp(asio::ip::tcp::acceptor& acceptor, const asio::ip::tcp::endpoint& endpoint, int backlog,
               const char* flag, const std::string& value, std::string* error) {
  boost::system::error_code ec;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(backlog, ec);
  if (!ec) return true;
  *error = std::string("cannot listen on ") + flag + "=" + value + ": " + ec.message();
  acceptor.close(ec);
  return false;
}

namespace {
// "host:port" of what a socket or acceptor is bound to.
template <typename Bound>
std::string LocalText(const Bound& bound_socket) {
  const auto bound = bound_socket.local_endpoint();
  return transport::HostPort{bound.address().to_string(), bound.port()}.ToString();
}
}  // namespace

std::string BoundText(const asio::ip::tcp::acceptor& acceptor) { return LocalText(acceptor); }

std::string RelayListeners::TcpText() const {
  std::string text;
  for (const auto& acceptor : tcp) text += (text.empty() ? "" : ", ") + BoundText(*acceptor);
  return text;
}

std::string RelayListeners::StunText() const {
  std::string text;
  for (const auto& socket : stun) text += (text.empty() ? "" : ", ") + LocalText(*socket);
  return text;
}

void RelayListeners::Close() {
  boost::system::error_code ignored;
  for (auto& acceptor : tcp) acceptor->close(ignored);
  for (auto& socket : stun) socket->close(ignored);
}

bool OpenRelayListeners(asio::io_context& io, const std::vector<std::string>& listen,
                        const std::string& stun_listen, int backlog, RelayListeners* out, std::string* error) {
  RelayListeners opened;
  if (listen.empty()) {
    *error = "--listen needs at least one HOST:PORT";
    return false;
  }
  for (const std::string& value : listen) {
    const auto endpoint = BindEndpoint("--listen", value, 3334, error);
    if (!endpoint) return false;
    opened.tcp.push_back(std::make_unique<asio::ip::tcp::acceptor>(io));
    if (!ListenTcp(*opened.tcp.back(), *endpoint, backlog, "--listen", value, error)) return false;
  }
  if (stun_listen != "none" && !stun_listen.empty()) {
    const bool automatic = stun_listen == "auto";
    std::vector<std::string> values;
    if (!automatic && !SplitList(stun_listen, &values, error)) {
      *error = "--stun_listen: " + *error;
      return false;
    }
    const std::size_t count = automatic ? opened.tcp.size() : values.size();
    for (std::size_t i = 0; i < count; ++i) {
      asio::ip::udp::endpoint endpoint;
      if (automatic) {
        const auto tcp = opened.tcp[i]->local_endpoint();
        endpoint = {tcp.address(), tcp.port()};
      } else {
        const auto tcp = BindEndpoint("--stun_listen", values[i], 3334, error);
        if (!tcp) return false;
        endpoint = {tcp->address(), tcp->port()};
      }
      auto socket = std::make_unique<asio::ip::udp::socket>(io);
      boost::system::error_code ec;
      socket->open(endpoint.protocol(), ec);
      if (!ec) socket->bind(endpoint, ec);
      if (ec && automatic) {
        LOG(WARNING) << "no STUN on UDP " << endpoint << ": " << ec.message()
                     << " (devices behind it find no direct path through this relay; --stun_listen "
                        "chooses another port)";
        continue;
      }
      if (ec) {
        *error = "cannot listen on --stun_listen=" + values[i] + ": " + ec.message();
        return false;
      }
      opened.stun.push_back(std::move(socket));
    }
  }
  *out = std::move(opened);
  return true;
}

}  // namespace mnedc::cli
