#pragma once
// Native mnedc frames in binary WebSocket messages, plain (ws) or over TLS
// (wss), after the opening handshake. Dial() and AcceptStream() make them.
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <memory>

#include "mnedc/transport/stream.h"
#include "mnedc/transport/tls_stream.h"

namespace mnedc::transport {

std::unique_ptr<Stream> MakeWebSocketStream(
    boost::beast::websocket::stream<boost::asio::ip::tcp::socket> socket);
std::unique_ptr<Stream> MakeWebSocketStream(boost::beast::websocket::stream<TlsSocket> socket);

}  // namespace mnedc::transport
