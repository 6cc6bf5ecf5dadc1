#pragma once
// Stream implementations over TLS and WebSocket (plain or over TLS), built from
// already established connections. Dial() and AcceptStream() make them.
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <memory>
#include <string>
#include <vector>

#include "mnedc/transport/stream.h"

namespace mnedc::transport {

using TlsSocket = boost::asio::ssl::stream<boost::asio::ip::tcp::socket>;

// Native frames over TLS. `already_read` holds plaintext the acceptor read while
// telling TLS-native from WebSocket; it is returned by the first reads.
std::unique_ptr<Stream> MakeTlsStream(TlsSocket socket, std::vector<uint8_t> already_read = {});

// Frames in binary WebSocket messages, after the opening handshake.
std::unique_ptr<Stream> MakeWebSocketStream(
    boost::beast::websocket::stream<boost::asio::ip::tcp::socket> socket);
std::unique_ptr<Stream> MakeWebSocketStream(boost::beast::websocket::stream<TlsSocket> socket);

}  // namespace mnedc::transport
