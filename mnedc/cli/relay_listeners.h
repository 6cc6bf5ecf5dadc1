#pragma once
// Where the relay listens: TCP for devices (--listen, every transport on each
// port), UDP for STUN (--stun_listen), and the operations endpoint
// (--admin_listen). Errors come back as one line naming the flag, for the
// binary to print and exit with.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mnedc::cli {

// HOST:PORT (PORT defaults to `default_port`) as an address to bind; HOST must
// be an IP address. nullopt with `error` ("--listen=...").
std::optional<boost::asio::ip::tcp::endpoint> BindEndpoint(const char* flag, const std::string& value,
                                                           uint16_t default_port, std::string* error);

// Opens, binds and listens (address reuse on, `backlog` deep); false with
// `error` ("cannot listen on --listen=...: Address already in use").
bool ListenTcp(boost::asio::ip::tcp::acceptor& acceptor, const boost::asio::ip::tcp::endpoint& endpoint,
               int backlog, const char* flag, const std::string& value, std::string* error);

// "0.0.0.0:3334", "[::]:443": where an acceptor is bound.
std::string BoundText(const boost::asio::ip::tcp::acceptor& acceptor);

struct RelayListeners {
  std::vector<std::unique_ptr<boost::asio::ip::tcp::acceptor>> tcp;
  std::vector<std::unique_ptr<boost::asio::ip::udp::socket>> stun;

  std::string TcpText() const;   // "0.0.0.0:3334, 0.0.0.0:443"
  std::string StunText() const;  // Likewise; empty without STUN.
  void Close();                  // Ends the accept and STUN loops.
};

// Every --listen address (`listen`, at least one, port 3334 by default), then
// STUN per `stun_listen`: "auto" answers on the UDP port of each --listen
// address (one another program holds is skipped, with a warning: the relay
// serves on without it), "none" or "" not at all, or HOST:PORT list, each of
// which must open. False with `error`, and nothing left open, on the first
// address that cannot be used.
bool OpenRelayListeners(boost::asio::io_context& io, const std::vector<std::string>& listen,
                        const std::string& stun_listen, int backlog, RelayListeners* out, std::string* error);

}  // namespace mnedc::cli
