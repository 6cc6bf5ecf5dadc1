#pragma once
// Plain TCP implementation of Stream, and connecting with a deadline.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <memory>

#include "mnedc/transport/endpoint.h"
#include "mnedc/transport/stream.h"

namespace mnedc::transport {

// Wraps an accepted or connected socket. Sets TCP_NODELAY (frames are written
// whole, batching is done by the link's gather write) and TCP keepalive.
std::unique_ptr<Stream> MakeTcpStream(boost::asio::ip::tcp::socket socket);

// Resolves and connects to `target` within `timeout` (error timed_out past it).
// transport::Dial() builds TLS, WebSocket and proxies on top of this.
boost::asio::awaitable<std::pair<boost::system::error_code, boost::asio::ip::tcp::socket>>
DialTcpSocket(HostPort target, std::chrono::steady_clock::duration timeout);

// Socket options every mnedc TCP connection gets (no delay, keepalive, low
// unsent-data watermark), whatever runs on top of it.
void TuneTcpSocket(boost::asio::ip::tcp::socket& socket);

// "ip:port" of a connected socket's peer ("?" if unknown), for logs.
std::string PeerText(const boost::asio::ip::tcp::socket& socket);

}  // namespace mnedc::transport
